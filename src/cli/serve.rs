//! `kam serve`: the prediction API over HTTP (see `crate::http`). Parses arguments, binds, and
//! runs until SIGINT or SIGTERM, then lets requests in flight finish.

use crate::http::{self, ApiKeys, AppState, Limits};
use crate::store::ModelStore;
use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Models directory; the model named by its CURRENT file is served.
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// API keys file: one `key:role` per line, role `read` or `admin` (also: the KAM_API_KEYS
    /// environment variable, `key1:read,key2:admin`). Without keys the server binds loopback only
    /// and refuses admin routes.
    #[arg(long)]
    pub keys_file: Option<PathBuf>,
    /// Largest accepted request body, in bytes.
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// The directory `POST /v1/train` may read: jobs name files relative to it. Without it,
    /// training through the API is refused (403).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Largest file a training job reads, in bytes.
    #[arg(long, default_value_t = http::DEFAULT_MAX_TRAIN_BYTES)]
    pub max_train_bytes: u64,
    /// Largest response a prediction may build, in bytes (refused with 422 beyond).
    #[arg(long, default_value_t = http::DEFAULT_MAX_RESPONSE_BYTES)]
    pub max_response_bytes: usize,
    /// Most heavy requests computed at once (default: the number of cores).
    #[arg(long)]
    pub heavy_tasks: Option<usize>,
    /// Most connections open at once (more wait in the listen backlog).
    #[arg(long, default_value_t = 512)]
    pub max_connections: usize,
    /// Longest a connection may take to send a request's headers, in seconds.
    #[arg(long, default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// Longest SIGTERM waits for requests in flight, in seconds.
    #[arg(long, default_value_t = 10)]
    pub shutdown_grace_secs: u64,
    /// Longest a request may take, in seconds, before it is answered with 503.
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
    /// Log lines on stderr: `text` (coloured only on a terminal) or `json` (one object per line,
    /// for log collectors). The level comes from RUST_LOG (default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How `kam serve` writes its log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the log writer: stderr, at RUST_LOG's level (default info).
fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        // Colours only on a terminal: a log file gets plain text.
        LogFormat::Text => logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).try_init(),
        LogFormat::Json => logs.json().with_ansi(false).try_init(),
    };
}

fn keys(a: &Args) -> anyhow::Result<ApiKeys> {
    let mut spec = std::env::var("KAM_API_KEYS").unwrap_or_default();
    if let Some(path) = &a.keys_file {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        spec.push('\n');
        spec.push_str(&text);
    }
    ApiKeys::parse(&spec).context("bad API keys")
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing requests in flight");
}

pub fn run(a: Args) -> anyhow::Result<()> {
    init_logs(a.log_format);
    let keys = keys(&a)?;
    if keys.is_empty() && !a.addr.ip().is_loopback() {
        anyhow::bail!(
            "refusing to listen on {} without API keys: set KAM_API_KEYS or --keys-file, or listen on 127.0.0.1",
            a.addr
        );
    }
    if let Some(dir) = &a.data_dir {
        anyhow::ensure!(dir.is_dir(), "--data-dir {}: not a directory", dir.display());
    }
    let limits = Limits {
        max_body_bytes: a.max_body_bytes,
        timeout: Duration::from_secs(a.timeout_secs),
        data_dir: a.data_dir.clone(),
        max_train_bytes: a.max_train_bytes,
        max_response_bytes: a.max_response_bytes,
        heavy_tasks: a.heavy_tasks.unwrap_or(Limits::default().heavy_tasks).max(1),
        max_connections: a.max_connections.max(1),
        header_read_timeout: Duration::from_secs(a.header_timeout_secs.max(1)),
        shutdown_grace: Duration::from_secs(a.shutdown_grace_secs),
        ..Limits::default()
    };
    let no_keys = keys.is_empty();
    let n_keys = keys.len();
    let store = ModelStore::new(&a.models);
    let stale = store.remove_stale_temp_files();
    if stale > 0 {
        tracing::info!(files = stale, "removed temporary files of writes that never finished");
    }
    let state = AppState::new(store, keys, limits);
    match state.load_current() {
        Ok(Some(id)) => tracing::info!(model = %id, "serving model"),
        Ok(None) => {
            tracing::warn!(dir = %a.models.display(), "no active model (no CURRENT): /readyz answers 503 until one is activated")
        }
        Err(e) => {
            tracing::error!(error = %e, "the active model cannot be served: /readyz answers 503 until one is activated")
        }
    }
    if no_keys {
        tracing::warn!("no API keys: read routes are open on loopback and admin routes (model activation) are refused");
    } else {
        tracing::info!(keys = n_keys, "API keys loaded");
    }
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    runtime.block_on(async move {
        let listener =
            tokio::net::TcpListener::bind(a.addr).await.with_context(|| format!("cannot listen on {}", a.addr))?;
        let local = listener.local_addr()?;
        println!("kam serve: listening on http://{local}");
        http::serve(listener, state, shutdown_signal()).await.context("server failed")
    })
}
