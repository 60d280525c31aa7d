//! The prediction API (`kam serve`): an axum router over a shared state of `Arc`s.
//!
//! - [`AppState`]: the model store, the active model behind an [`ArcSwapOption`] (hot swap: a
//!   request holds the `Arc` it started with, so an activation never changes a response half way),
//!   API keys, metrics and limits.
//! - [`router`] builds the whole `Router` (tested without a socket through `oneshot`);
//!   [`serve`] runs it on a bound listener until a shutdown future completes.
//! - One file per resource: [`health`] (`/healthz`, `/readyz`), [`model`] (`/v1/model…`),
//!   [`models`] (`/v1/models…`, activation), [`predict`] (`/v1/predict`), [`forecast`]
//!   (`/v1/forecast`), [`customers`] (`/v1/customers/{id}`, `/v1/model/customers/summary`),
//!   [`jobs`] (`/v1/train`, `/v1/jobs`, `/v1/jobs/{id}`), [`metrics`] (`/metrics`), [`openapi`]
//!   (`/openapi.json`), [`dashboard`] (`/`, the HTML dashboard); infrastructure in
//!   [`auth`], [`json`] and [`error`] (the one error type, mapped to status codes and a JSON body).

pub mod auth;
pub mod customers;
pub mod dashboard;
pub mod error;
pub mod forecast;
pub mod health;
pub mod jobs;
pub mod json;
pub mod metrics;
pub mod model;
pub mod models;
pub mod openapi;
pub mod predict;
pub mod upload;

use crate::domain::forecast::intervals::{ForecastBands, IntervalParams};
use crate::domain::forecast::portfolio::{Outlook, OutlookByState, Ranking};
use crate::domain::forecast::{ForecastParams, Forecaster};
use crate::model::artifact::ModelArtifact;
use crate::store::ModelStore;
use arc_swap::ArcSwapOption;
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware;
use error::ApiError;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tower::{BoxError, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};

pub use auth::{ApiKeys, Role};

/// Limits of the server.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Longest time a request may take before it is answered with 503 `timeout`.
    pub timeout: Duration,
    /// Batches of at least this many customers are computed on the blocking thread pool.
    pub blocking_from: usize,
    /// The directory `POST /v1/train` reads from (`kam serve --data-dir`): a job names a file
    /// relative to it and cannot leave it; `None` refuses training by path.
    pub data_dir: Option<std::path::PathBuf>,
    /// Largest transactions (or attributes) file a training job reads, in bytes.
    pub max_train_bytes: u64,
    /// Largest response a prediction request may build, in bytes (estimated from its first
    /// customer's answer before the rest is computed); a larger one is refused with 422.
    pub max_response_bytes: usize,
    /// Most heavy requests (large batches, uncached forecasters, summaries) computed at once on
    /// the blocking pool; the others wait for a turn within their timeout.
    pub heavy_tasks: usize,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Longest a connection may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// Longest the server waits, once asked to stop, for requests in flight.
    pub shutdown_grace: Duration,
}

/// Default of [`Limits::max_response_bytes`]: 256 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 256 << 20;

/// Default of [`Limits::max_train_bytes`]: 8 GiB.
pub const DEFAULT_MAX_TRAIN_BYTES: u64 = 8 << 30;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024 * 1024,
            timeout: Duration::from_secs(30),
            blocking_from: 1000,
            data_dir: None,
            max_train_bytes: DEFAULT_MAX_TRAIN_BYTES,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            heavy_tasks: std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            max_connections: 512,
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// A model being served, with its customer snapshot when one is stored beside it; derefs to the
/// artifact.
#[derive(Debug)]
pub struct Served {
    pub artifact: ModelArtifact,
    pub customers: Option<crate::store::snapshot::CustomerSnapshot>,
    /// The kept covariate models (customers' own first-step rows), if any.
    pub first_step: Option<crate::domain::chain::covariates::FirstStep>,
    /// The model's BTYD purchase model (P(alive), expected purchases), if it has a fit.
    pub purchases: Option<crate::model::place::purchases::PurchaseOutlook>,
    /// Forecasters (and their posterior draws) already built for this model, by settings.
    forecasts: std::sync::Mutex<std::collections::HashMap<ForecastKey, Arc<Forecasts>>>,
    /// The snapshot's customers in listing order, by settings and ranking (`GET /v1/customers`
    /// pages through one of these).
    listings: std::sync::Mutex<std::collections::HashMap<ListingKey, Arc<Vec<Outlook>>>>,
}

/// Settings a listing was ordered for: horizon, discount rate (bits), ranking.
type ListingKey = (usize, u64, Ranking);

/// Most cached listings per model; the cache starts over when full.
const LISTING_CACHE: usize = 8;

/// Settings a [`Forecasts`] was built for: horizon, discount rate (bits), with intervals.
type ForecastKey = (usize, u64, bool);

/// Most cached forecast settings per model; the cache starts over when full.
const FORECAST_CACHE: usize = 32;

/// A model's per-state forecasts for one setting, and their intervals when asked for.
#[derive(Debug)]
pub struct Forecasts {
    pub forecaster: Forecaster,
    pub bands: Option<ForecastBands>,
}

impl Served {
    pub fn new(artifact: ModelArtifact, customers: Option<crate::store::snapshot::CustomerSnapshot>) -> Self {
        let first_step = artifact.first_step().ok().flatten();
        let purchases = crate::model::place::purchases::PurchaseOutlook::new(&artifact);
        Self { artifact, customers, first_step, purchases, forecasts: Default::default(), listings: Default::default() }
    }

    fn forecast_key(params: ForecastParams, intervals: bool) -> ForecastKey {
        (params.horizon, params.discount_rate.to_bits(), intervals)
    }

    /// Whether [`Served::forecasts`] has `params` built already (then it costs nothing).
    pub fn has_forecasts(&self, params: ForecastParams, intervals: bool) -> bool {
        let key = Self::forecast_key(params, intervals);
        self.forecasts.lock().unwrap_or_else(|e| e.into_inner()).contains_key(&key)
    }

    /// The forecaster for `params` (with posterior-draw intervals when `intervals`), built once
    /// per model and setting: building it is most of the work of a single-customer request.
    pub fn forecasts(&self, params: ForecastParams, intervals: bool) -> Result<Arc<Forecasts>, ApiError> {
        let key = Self::forecast_key(params, intervals);
        if let Some(f) = self.forecasts.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(f.clone());
        }
        let forecaster = self.artifact.forecaster(params).map_err(|e| ApiError::Internal(e.to_string()))?;
        let bands = if intervals { self.artifact.bands(params, IntervalParams::default()) } else { None };
        let built = Arc::new(Forecasts { forecaster, bands });
        let mut cache = self.forecasts.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= FORECAST_CACHE {
            cache.clear();
        }
        cache.insert(key, built.clone());
        Ok(built)
    }
}

impl Served {
    /// The snapshot's customers with their value and churn for `params`, ordered by `ranking`:
    /// built once per model and setting, so that paging through them costs a page each. 404
    /// when the model has no snapshot.
    pub fn listing(&self, params: ForecastParams, ranking: Ranking) -> Result<Arc<Vec<Outlook>>, ApiError> {
        let key = (params.horizon, params.discount_rate.to_bits(), ranking);
        if let Some(l) = self.listings.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(l.clone());
        }
        let snapshot = self
            .customers
            .as_ref()
            .ok_or_else(|| ApiError::NotFound(format!("model {} has no customer snapshot", self.id)))?;
        let forecasts = self.forecasts(params, false)?;
        let by_state = OutlookByState::new(&forecasts.forecaster, self.segments.states.len());
        let mut outlooks =
            snapshot.outlooks(&by_state, &forecasts.forecaster, self.purchases.as_ref(), self.periods.as_of);
        ranking.sort(&mut outlooks);
        let built = Arc::new(outlooks);
        let mut cache = self.listings.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= LISTING_CACHE {
            cache.clear();
        }
        cache.insert(key, built.clone());
        Ok(built)
    }

    /// Whether [`Served::listing`] has this listing built already.
    pub fn has_listing(&self, params: ForecastParams, ranking: Ranking) -> bool {
        let key = (params.horizon, params.discount_rate.to_bits(), ranking);
        self.listings.lock().unwrap_or_else(|e| e.into_inner()).contains_key(&key)
    }
}

impl std::ops::Deref for Served {
    type Target = ModelArtifact;

    fn deref(&self) -> &ModelArtifact {
        &self.artifact
    }
}

/// Shared state: cheap to clone (every field is an `Arc`).
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<ModelStore>,
    /// The model being served; `None` until one is loaded.
    pub active: Arc<ArcSwapOption<Served>>,
    pub keys: Arc<ApiKeys>,
    pub metrics: Arc<metrics::Metrics>,
    pub limits: Arc<Limits>,
    /// Serializes activations, so `CURRENT` and the model in memory move together.
    activation: Arc<tokio::sync::Mutex<()>>,
    /// Training jobs started by `POST /v1/train`.
    pub jobs: Arc<jobs::Jobs>,
    /// Turns for heavy requests ([`Limits::heavy_tasks`]).
    heavy: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    /// A state with no model loaded yet (see [`AppState::load_current`]).
    pub fn new(store: ModelStore, keys: ApiKeys, limits: Limits) -> Self {
        Self {
            jobs: Arc::new(jobs::Jobs::open(store.dir())),
            store: Arc::new(store),
            active: Arc::new(ArcSwapOption::empty()),
            keys: Arc::new(keys),
            metrics: Arc::new(metrics::Metrics::default()),
            heavy: Arc::new(tokio::sync::Semaphore::new(limits.heavy_tasks.max(1))),
            limits: Arc::new(limits),
            activation: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Loads the model named by `CURRENT`, if any, checking that it can be served. Returns its id.
    pub fn load_current(&self) -> Result<Option<String>, ApiError> {
        let Some(id) = self.store.current().map_err(|e| ApiError::Internal(e.to_string()))? else {
            return Ok(None);
        };
        let model = models::load_served(&self.store, &id)?;
        self.active.store(Some(Arc::new(model)));
        Ok(Some(id))
    }

    /// The model being served, or 503 `no_model`. The caller keeps this `Arc` for the whole
    /// request, so a concurrent activation does not affect it.
    pub fn model(&self) -> Result<Arc<Served>, ApiError> {
        self.active.load_full().ok_or(ApiError::NoModel)
    }
}

/// The whole API. `with_state` is called once, here.
pub fn router(state: AppState) -> Router {
    let limit = state.limits.timeout;
    let read = Router::new()
        .merge(model::router())
        .merge(models::router())
        .merge(predict::router())
        .merge(forecast::router())
        .merge(customers::router())
        .merge(metrics::router())
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::require_read));
    let admin = models::admin_router()
        .merge(jobs::admin_router())
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::require_admin));
    Router::new()
        .merge(health::router())
        .merge(dashboard::router())
        .merge(openapi::router())
        .merge(read)
        .merge(admin)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.limits.max_body_bytes))
        .layer(
            // tower's timeout; its elapsed error becomes the API's 503 `timeout`.
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(move |e: BoxError| async move { timed_out(e, limit) }))
                .timeout(limit),
        )
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(
            // A line per request at DEBUG (`RUST_LOG=tower_http=debug`); failures (5xx) are
            // logged at ERROR whatever the level. Request counts and latencies are in /metrics.
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(tracing::Level::DEBUG))
                .on_response(DefaultOnResponse::new().level(tracing::Level::DEBUG)),
        )
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes, then lets in-flight requests finish
/// for at most [`Limits::shutdown_grace`] before returning.
///
/// Each connection must send its request headers within [`Limits::header_read_timeout`]
/// (HTTP/1; a client dripping headers is cut off), and at most [`Limits::max_connections`] are
/// open at once: beyond that, new connections wait in the listen backlog until one closes, so
/// file descriptors are never exhausted and `/healthz` keeps its turn.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;
    let limits = state.limits.clone();
    let app = router(state);
    let open = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    // HTTP/2: pings at the same interval find peers that went away without closing.
    builder.http2().timer(TokioTimer::new()).keep_alive_interval(Some(limits.header_read_timeout));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = open.clone().acquire_owned() => p.expect("the connection semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // wait a little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(app.clone()))
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(
            grace_secs = limits.shutdown_grace.as_secs(),
            "connections still open after the shutdown grace period: closing them"
        );
    }
    Ok(())
}

async fn not_found(req: Request) -> ApiError {
    ApiError::NotFound(format!("no route {} {}", req.method(), req.uri().path()))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::MethodNotAllowed(format!("{} is not allowed on {}", req.method(), req.uri().path()))
}

/// The answer when tower's timeout layer stops a request (the only error it raises).
fn timed_out(e: BoxError, limit: std::time::Duration) -> ApiError {
    if e.is::<tower::timeout::error::Elapsed>() {
        ApiError::Timeout(limit.as_millis())
    } else {
        ApiError::Internal(e.to_string())
    }
}

/// When a request's work must stop: its timeout, counted from when the work was handed over.
/// Long loops call [`Deadline::check`], so that a request answered with 503 `timeout` does not
/// go on using a core.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    at: std::time::Instant,
    limit: Duration,
}

impl Deadline {
    pub fn after(limit: Duration) -> Self {
        Self { at: std::time::Instant::now() + limit, limit }
    }

    /// `Err(Timeout)` once the deadline has passed.
    pub fn check(&self) -> Result<(), ApiError> {
        if std::time::Instant::now() > self.at { Err(ApiError::Timeout(self.limit.as_millis())) } else { Ok(()) }
    }
}

/// Runs a request's work: when `heavy`, on the blocking pool, at most
/// [`Limits::heavy_tasks`] at once (waiting for a turn is inside the request's timeout), so that
/// the async threads stay free for every other request; inline otherwise.
pub(crate) async fn compute<T: Send + 'static>(
    state: &AppState,
    heavy: bool,
    f: impl FnOnce(Deadline) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let deadline = Deadline::after(state.limits.timeout);
    if heavy {
        let permit = state.heavy.clone().acquire_owned().await.map_err(|e| ApiError::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            deadline.check()?;
            f(deadline)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("worker failed: {e}")))?
    } else {
        f(deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use tower::ServiceExt;

    async fn body_json(r: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(r.into_body(), usize::MAX).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn a_panicking_handler_gives_a_500_in_the_error_format_without_the_panic_text() {
        async fn boom() -> &'static str {
            panic!("secret detail /etc/passwd")
        }
        let app: Router = Router::new().route("/boom", get(boom)).layer(CatchPanicLayer::custom(error::panic_response));
        let r = app.oneshot(Request::builder().uri("/boom").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let v = body_json(r).await;
        assert_eq!(v["error"]["code"], "internal");
        assert!(!v.to_string().contains("secret"), "{v}");
    }

    #[tokio::test]
    async fn internal_errors_do_not_leak_their_cause() {
        let v = body_json(ApiError::Internal("/srv/models: permission denied".into()).into_response()).await;
        assert_eq!(
            v,
            serde_json::json!({"error": {"code": "internal", "message": "internal server error", "details": []}})
        );
    }
}
