//! `GET /metrics`: request counts and latency histograms by method, route and status, and the
//! model being served, in the OpenMetrics text format of the Prometheus project's own client
//! (`prometheus-client`). Methods outside the standard set are counted as `other` and paths
//! without a route as `unmatched`, so no client can grow the label space.

use super::AppState;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Mutex;
use std::time::Instant;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    model_id: String,
}

type Durations = Family<RequestLabels, Histogram, fn() -> Histogram>;

fn durations() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The server's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Durations,
    loaded: Gauge,
    model: Family<ModelLabels, Gauge>,
    /// Scrapes set the model gauges, then encode: one at a time.
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let durations = Durations::new_with_constructor(durations);
        let loaded = Gauge::default();
        let model = Family::<ModelLabels, Gauge>::default();
        registry.register("kam_http_requests", "HTTP requests answered", requests.clone());
        registry.register("kam_http_request_duration_seconds", "Time to answer HTTP requests", durations.clone());
        registry.register("kam_model_loaded", "Whether a model is being served", loaded.clone());
        registry.register("kam_model_info", "The model being served", model.clone());
        Self { registry, requests, durations, loaded, model, scrape: Mutex::new(()) }
    }
}

/// The method as a label: the standard ones by name, any other as `other`.
fn method_label(m: &Method) -> &'static str {
    [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
        Method::PATCH,
        Method::CONNECT,
        Method::TRACE,
    ]
    .iter()
    .find(|k| *k == m)
    .map_or("other", |k| k.as_str())
}

impl Metrics {
    pub fn observe(&self, method: &Method, route: &str, status: u16, seconds: f64) {
        let labels = RequestLabels { method: method_label(method), route: route.to_string(), status };
        self.requests.get_or_create(&labels).inc();
        self.durations.get_or_create(&labels).observe(seconds);
    }

    /// The exposition text, with `model_id` the model being served.
    pub fn render(&self, model_id: Option<&str>) -> String {
        let _one = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        self.loaded.set(i64::from(model_id.is_some()));
        self.model.clear();
        if let Some(id) = model_id {
            self.model.get_or_create(&ModelLabels { model_id: id.to_string() }).set(1);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("text into a string");
        out
    }
}

/// Middleware recording every request under its route pattern (`unmatched` for 404s).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route =
        req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(req).await;
    state.metrics.observe(&method, &route, response.status().as_u16(), start.elapsed().as_secs_f64());
    response
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "health", security(("api_key" = []), ("bearer" = [])), responses(
        (status = 200, description = "Request counts and latency histograms by route and status; the served model", body = String, content_type = "application/openmetrics-text")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let model = state.active.load_full();
    let text = state.metrics.render(model.as_deref().map(|m| m.id.as_str()));
    let mut r = text.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.observe(&Method::GET, "/healthz", 200, 0.003);
        m.observe(&Method::GET, "/healthz", 200, 0.2);
        let text = m.render(Some("m1"));
        assert!(text.contains("kam_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2"));
        let bucket =
            |le: &str, n: u32| format!("_bucket{{le=\"{le}\",method=\"GET\",route=\"/healthz\",status=\"200\"}} {n}");
        assert!(text.contains(&bucket("0.0025", 0)), "{text}");
        assert!(text.contains(&bucket("0.005", 1)), "{text}");
        assert!(text.contains(&bucket("0.25", 2)), "{text}");
        assert!(text.contains("kam_model_info{model_id=\"m1\"} 1"));
        // Another model: only it is named.
        let text = m.render(Some("m2"));
        assert!(text.contains("kam_model_info{model_id=\"m2\"} 1") && !text.contains("m1"));
    }

    #[test]
    fn unknown_methods_share_one_label() {
        let m = Metrics::default();
        for k in 0..50 {
            m.observe(&Method::from_bytes(format!("X{k}").as_bytes()).unwrap(), "unmatched", 405, 0.001);
        }
        let text = m.render(None);
        assert!(text.contains("kam_http_requests_total{method=\"other\",route=\"unmatched\",status=\"405\"} 50"));
        assert!(!text.contains("X1"));
    }
}
