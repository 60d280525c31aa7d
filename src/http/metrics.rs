//! `GET /metrics`: Prometheus text exposition, hand-rolled — request counts and latency
//! histograms by route and status, and the id of the model being served.

use super::AppState;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Clone, Debug, Default)]
struct Series {
    count: u64,
    sum: f64,
    /// Cumulative counts per bucket of [`BUCKETS`].
    buckets: [u64; BUCKETS.len()],
}

/// Request counters, keyed by (method, route, status).
#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<(String, String, u16), Series>>,
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut map = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let s = map.entry((method.to_string(), route.to_string(), status)).or_default();
        s.count += 1;
        s.sum += seconds;
        for (b, le) in s.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= le {
                *b += 1;
            }
        }
    }

    /// The exposition text.
    pub fn render(&self, model_id: Option<&str>) -> String {
        let map = self.series.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut out = String::new();
        out.push_str(
            "# HELP kam_http_requests_total HTTP requests answered.\n# TYPE kam_http_requests_total counter\n",
        );
        for ((m, r, st), s) in &map {
            let _ =
                writeln!(out, "kam_http_requests_total{{method=\"{m}\",route=\"{r}\",status=\"{st}\"}} {}", s.count);
        }
        out.push_str(
            "# HELP kam_http_request_duration_seconds Time to answer HTTP requests.\n\
             # TYPE kam_http_request_duration_seconds histogram\n",
        );
        for ((m, r, st), s) in &map {
            let labels = format!("method=\"{m}\",route=\"{r}\",status=\"{st}\"");
            for (b, le) in s.buckets.iter().zip(BUCKETS) {
                let _ = writeln!(out, "kam_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {b}");
            }
            let _ = writeln!(out, "kam_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", s.count);
            let _ = writeln!(out, "kam_http_request_duration_seconds_sum{{{labels}}} {}", s.sum);
            let _ = writeln!(out, "kam_http_request_duration_seconds_count{{{labels}}} {}", s.count);
        }
        out.push_str("# HELP kam_model_loaded Whether a model is being served.\n# TYPE kam_model_loaded gauge\n");
        let _ = writeln!(out, "kam_model_loaded {}", u8::from(model_id.is_some()));
        out.push_str("# HELP kam_model_info The model being served.\n# TYPE kam_model_info gauge\n");
        if let Some(id) = model_id {
            let _ = writeln!(out, "kam_model_info{{model_id=\"{id}\"}} 1");
        }
        out
    }
}

/// Middleware recording every request under its route pattern (`unmatched` for 404s).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    let route =
        req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(req).await;
    state.metrics.observe(&method, &route, response.status().as_u16(), start.elapsed().as_secs_f64());
    response
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "health", security(("api_key" = []), ("bearer" = [])), responses(
        (status = 200, description = "Request counts and latency histograms by route and status; the served model", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let model = state.active.load_full();
    let text = state.metrics.render(model.as_deref().map(|m| m.id.as_str()));
    let mut r = text.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
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
        m.observe("GET", "/healthz", 200, 0.003);
        m.observe("GET", "/healthz", 200, 0.2);
        let text = m.render(Some("m1"));
        assert!(text.contains("kam_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2"));
        assert!(text.contains("route=\"/healthz\",status=\"200\",le=\"0.0025\"} 0"));
        assert!(text.contains("route=\"/healthz\",status=\"200\",le=\"0.005\"} 1"));
        assert!(text.contains("route=\"/healthz\",status=\"200\",le=\"0.25\"} 2"));
        assert!(text.contains("kam_model_info{model_id=\"m1\"} 1"));
    }
}
