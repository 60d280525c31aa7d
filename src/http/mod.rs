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
//!   [`jobs`] (`/v1/train`, `/v1/jobs/{id}`), [`metrics`] (`/metrics`), [`openapi`]
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

use crate::domain::forecast::intervals::{ForecastBands, IntervalParams};
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
}

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
    /// Forecasters (and their posterior draws) already built for this model, by settings.
    forecasts: std::sync::Mutex<std::collections::HashMap<ForecastKey, Arc<Forecasts>>>,
}

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
        Self { artifact, customers, first_step, forecasts: Default::default() }
    }

    /// The forecaster for `params` (with posterior-draw intervals when `intervals`), built once
    /// per model and setting: building it is most of the work of a single-customer request.
    pub fn forecasts(&self, params: ForecastParams, intervals: bool) -> Result<Arc<Forecasts>, ApiError> {
        let key = (params.horizon, params.discount_rate.to_bits(), intervals);
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
}

impl AppState {
    /// A state with no model loaded yet (see [`AppState::load_current`]).
    pub fn new(store: ModelStore, keys: ApiKeys, limits: Limits) -> Self {
        Self {
            store: Arc::new(store),
            active: Arc::new(ArcSwapOption::empty()),
            keys: Arc::new(keys),
            metrics: Arc::new(metrics::Metrics::default()),
            limits: Arc::new(limits),
            activation: Arc::new(tokio::sync::Mutex::new(())),
            jobs: Arc::new(jobs::Jobs::default()),
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

/// Serves the API on `listener` until `shutdown` completes, then lets in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
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

/// Runs CPU-heavy work on the blocking pool when `big`, inline otherwise.
pub(crate) async fn compute<T: Send + 'static>(
    big: bool,
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    if big {
        tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::Internal(format!("worker failed: {e}")))?
    } else {
        f()
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
