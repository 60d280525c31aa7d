//! The server bound to port 0 while models are swapped, and the real `kam serve` executable.

use super::*;

/// The server on 127.0.0.1:0: its base URL and a shutdown trigger.
async fn spawn_app(
    state: AppState,
) -> (String, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<std::io::Result<()>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(kam::http::serve(listener, state, async {
        let _ = rx.await;
    }));
    (format!("http://{addr}"), tx, handle)
}

/// Waits until every counter has reached `at_least` (bounded, so a stuck server fails the test).
async fn wait_for(counts: &[AtomicUsize], at_least: &[usize]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while counts.iter().zip(at_least).any(|(c, n)| c.load(Ordering::SeqCst) < *n) {
        assert!(tokio::time::Instant::now() < deadline, "clients made no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_clients_see_no_failure_and_one_switch_while_models_are_swapped() {
    const CLIENTS: usize = 8;
    let s = models_copy();
    let f = fixture();
    let (base, stop_server, server) = spawn_app(state(&s.path().join("models"), keys(), Limits::default())).await;
    let client = reqwest::Client::new();
    let mut sorted: Vec<&String> = f.transactions.keys().collect();
    sorted.sort();
    let body = json!({"customers": sorted.iter().take(20).map(|id| by_transactions(id)).collect::<Vec<_>>()});
    let stop = Arc::new(AtomicBool::new(false));
    let counts: Arc<Vec<AtomicUsize>> = Arc::new((0..CLIENTS).map(|_| AtomicUsize::new(0)).collect());
    let mut clients = Vec::new();
    for k in 0..CLIENTS {
        let (client, base, body, stop, counts) =
            (client.clone(), base.clone(), body.clone(), stop.clone(), counts.clone());
        clients.push(tokio::spawn(async move {
            let mut seen: Vec<String> = Vec::new();
            let mut failures = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let r =
                    client.post(format!("{base}/v1/predict")).header("x-api-key", READ_KEY).json(&body).send().await;
                match r {
                    Ok(r) if r.status() == 200 => {
                        let v: Value = r.json().await.unwrap();
                        assert_eq!(v["predictions"].as_array().unwrap().len(), 20);
                        seen.push(v["model_id"].as_str().unwrap().to_string());
                    }
                    Ok(r) => failures.push(format!("{} {}", r.status(), r.text().await.unwrap_or_default())),
                    Err(e) => failures.push(e.to_string()),
                }
                counts[k].fetch_add(1, Ordering::SeqCst);
            }
            (seen, failures)
        }));
    }
    let activate =
        |id: &str| client.post(format!("{base}/v1/models/{id}/activate")).header("x-api-key", ADMIN_KEY).send();
    let snapshot =
        |c: &[AtomicUsize], more: usize| c.iter().map(|x| x.load(Ordering::SeqCst) + more).collect::<Vec<_>>();
    // Every client is under way with model A; a broken model is refused meanwhile.
    wait_for(&counts, &[5; CLIENTS]).await;
    assert_eq!(activate(&f.mismatched).await.unwrap().status(), 422);
    wait_for(&counts, &snapshot(&counts, 2)).await;
    assert_eq!(activate(&f.b).await.unwrap().status(), 200);
    // Every client answers a few more times (now from B), while another broken model is refused.
    wait_for(&counts, &snapshot(&counts, 3)).await;
    assert_eq!(activate(&f.truncated).await.unwrap().status(), 422);
    wait_for(&counts, &snapshot(&counts, 3)).await;
    stop.store(true, Ordering::SeqCst);
    let mut total = 0;
    for c in clients {
        let (seen, failures) = c.await.unwrap();
        assert!(failures.is_empty(), "failed requests: {failures:?}");
        let switches = seen.windows(2).filter(|w| w[0] != w[1]).count();
        assert_eq!(switches, 1, "one switch per client");
        assert_eq!(seen.first(), Some(&f.a));
        assert_eq!(seen.last(), Some(&f.b));
        total += seen.len();
    }
    assert!(total >= CLIENTS * 13, "{total} requests");
    stop_server.send(()).unwrap();
    server.await.unwrap().unwrap();
}

/// Kills a child process if a test fails while it runs.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn kam_serve_runs_the_real_executable_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader, Read, Write};
    let s = models_copy();
    // Logs into a file: plain text by default (no colour codes), one JSON object per line with
    // --log-format json.
    for format in ["text", "json"] {
        let log = s.path().join(format!("serve-{format}.log"));
        let mut child = KillOnDrop(
            std::process::Command::new(env!("CARGO_BIN_EXE_kam"))
                .args(["serve", "--models", "models", "--addr", "127.0.0.1:0", "--log-format", format])
                .current_dir(s.path())
                .env_remove("KAM_API_KEYS")
                .env_remove("RUST_LOG")
                .stdout(std::process::Stdio::piped())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap(),
        );
        let mut line = String::new();
        BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr =
            line.trim().strip_prefix("kam serve: listening on http://").unwrap_or_else(|| panic!("{line}")).to_string();
        let mut conn = std::net::TcpStream::connect(&addr).unwrap();
        conn.write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains(&fixture().a), "{answer}");
        let killed = std::process::Command::new("kill").args(["-TERM", &child.0.id().to_string()]).status().unwrap();
        assert!(killed.success());
        let status = child.0.wait().unwrap();
        assert!(status.success(), "{status:?}");
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(!text.contains('\u{1b}'), "colour codes in a log file: {text:?}");
        let serving = text.lines().find(|l| l.contains("serving model")).unwrap_or_else(|| panic!("{text}"));
        assert!(serving.contains(&fixture().a), "{serving}");
        if format == "json" {
            for l in text.lines() {
                let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
                assert!(
                    v["level"].is_string() && v["timestamp"].is_string() && v["fields"]["message"].is_string(),
                    "{l}"
                );
            }
            assert!(text.lines().any(|l| l.contains("shutting down")), "{text}");
        } else {
            assert!(serving.contains(" INFO "), "{serving}");
        }
    }
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_kam"))
        .args(["serve", "--models", "models", "--log-format", "xml"])
        .current_dir(s.path())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");

    // Without keys, only loopback.
    let r: crate::util::Run = std::process::Command::new(env!("CARGO_BIN_EXE_kam"))
        .args(["serve", "--models", "models", "--addr", "0.0.0.0:0"])
        .current_dir(s.path())
        .env_remove("KAM_API_KEYS")
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("without API keys"), "{}", r.stderr);
}

/// Issue 13, item 10: connections that drip their headers are cut off after the header-read
/// timeout, at most `max_connections` are open at once (the rest wait, then are served), and a
/// shutdown with connections still open returns within the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_connections_are_capped_and_shutdown_is_bounded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = models_copy();
    let limits = Limits {
        max_connections: 4,
        header_read_timeout: Duration::from_millis(500),
        shutdown_grace: Duration::from_millis(500),
        ..Limits::default()
    };
    let (base, stop_server, server) = spawn_app(state(&s.path().join("models"), keys(), limits)).await;
    let addr = base.trim_start_matches("http://").to_string();
    // Four slow clients take every connection, sending half a request line.
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        slow.push(c);
    }
    // A fifth is served once the header timeout has closed them, not before.
    let started = std::time::Instant::now();
    let r = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300), "served past the connection cap");
    // Each slow client was closed by the server (EOF, or a 408 and then EOF).
    for mut c in slow {
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "a dripping connection is still open");
    }
    // A connection left open mid-request does not hold the shutdown beyond the grace period.
    let mut open = tokio::net::TcpStream::connect(&addr).await.unwrap();
    open.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let stopping = std::time::Instant::now();
    stop_server.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server).await.expect("shutdown within its grace").unwrap().unwrap();
    assert!(stopping.elapsed() < Duration::from_secs(5));
}
