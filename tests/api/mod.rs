//! The prediction API: the router through `oneshot` (no socket), the server on 127.0.0.1:0, and
//! the real `kam serve` executable. Models are trained once, in a temporary directory, from 2,000
//! generated customers.

use crate::util::Sandbox;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use kam::http::{ApiKeys, AppState, Limits, router};
use kam::store::ModelStore;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tower::ServiceExt;

// Activation and training jobs (admin): the served model and CURRENT move together, or not at all.
mod jobs;

// The server on port 0 during a model swap, and the real executable under SIGTERM.
mod server;

// Known customers from the snapshot, their summary, and the dashboard page.
mod customers;

// Bounded work: dates within the model's range, the response-size cap, the deadline.
mod limits;

// Predictions by transactions (equal to kam score) and by features; ids; invalid values by path.
mod predict;

const READ_KEY: &str = "reader-key-0123456789";
const ADMIN_KEY: &str = "admin-key-0123456789";

/// Two trained models (A active, B not), two broken artifacts, and `kam score`'s output for A.
struct Fixture {
    sandbox: Sandbox,
    a: String,
    b: String,
    /// A copy of A under another id: refused as corrupt.
    mismatched: String,
    /// Half a file: refused as corrupt.
    truncated: String,
    /// `kam score` JSON lines of model A, by customer id.
    scores: HashMap<String, Value>,
    /// The generated transactions, by customer id: (date, amount).
    transactions: HashMap<String, Vec<(String, f64)>>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let s = Sandbox::new();
        s.ok(&["generate", "--customers", "2000", "--seed", "5", "--out", "data/g.csv"]);
        let id = |r: crate::util::Run| {
            let v: Value = serde_json::from_str(&r.stdout).unwrap();
            v["model_id"].as_str().unwrap().to_string()
        };
        let a = id(s.ok(&["train", "data/g.csv", "--config", "data/g.kam.toml", "--models", "models", "--json"]));
        let b = id(s.ok(&["train", "data/g.csv", "--models", "models", "--no-activate", "--window", "2", "--json"]));
        assert_ne!(a, b);
        let a_bytes = std::fs::read(s.path().join(format!("models/{a}.json"))).unwrap();
        let mismatched = "2024-12-31-0000deadbeef".to_string();
        std::fs::write(s.path().join(format!("models/{mismatched}.json")), &a_bytes).unwrap();
        let truncated = "2024-12-31-00000000abcd".to_string();
        std::fs::write(s.path().join(format!("models/{truncated}.json")), &a_bytes[..a_bytes.len() / 2]).unwrap();
        // `kam train` wrote each model's per-customer snapshot beside it; `kam score` must agree.
        assert!(s.path().join(format!("models/{a}.customers.jsonl")).exists());
        s.ok(&["score", "data/g.csv", "--models", "models", "--model", &a, "--out", "scores.jsonl"]);
        let scores = std::fs::read_to_string(s.path().join("scores.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (v["customer_id"].as_str().unwrap().to_string(), v)
            })
            .collect();
        let mut transactions: HashMap<String, Vec<(String, f64)>> = HashMap::new();
        let mut r = csv::Reader::from_path(s.path().join("data/g.csv")).unwrap();
        for rec in r.records() {
            let rec = rec.unwrap();
            transactions.entry(rec[0].to_string()).or_default().push((rec[1].to_string(), rec[2].parse().unwrap()));
        }
        Fixture { sandbox: s, a, b, mismatched, truncated, scores, transactions }
    })
}

/// A fresh copy of the fixture's models directory (activation moves CURRENT).
fn models_copy() -> Sandbox {
    let f = fixture();
    let s = Sandbox::new();
    let dst = s.path().join("models");
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(f.sandbox.path().join("models")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    s
}

fn state(models: &Path, keys: ApiKeys, limits: Limits) -> AppState {
    let st = AppState::new(ModelStore::new(models), keys, limits);
    st.load_current().unwrap();
    st
}

fn keys() -> ApiKeys {
    ApiKeys::parse(&format!("{READ_KEY}:read,{ADMIN_KEY}:admin")).unwrap()
}

/// A router serving model A, without keys.
fn app() -> (Sandbox, Router) {
    let s = models_copy();
    let r = router(state(&s.path().join("models"), ApiKeys::none(), Limits::default()));
    (s, r)
}

/// Sends a request through the router: status and body (JSON, or a JSON string for text).
async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let (status, _, body) = send_for_headers(app, method, uri, content_type, body, headers).await;
    (status, body)
}

/// [`send`], with the response's headers.
async fn send_for_headers(
    app: &Router,
    method: &str,
    uri: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let res = app.clone().oneshot(b.body(Body::from(body)).unwrap()).await.unwrap();
    let (status, response_headers) = (res.status(), res.headers().clone());
    let is_json =
        res.headers().get("content-type").is_some_and(|v| v.to_str().unwrap().starts_with("application/json"));
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
    let body = if is_json {
        serde_json::from_slice(&bytes).unwrap()
    } else {
        Value::String(String::from_utf8_lossy(&bytes).into_owned())
    };
    (status, response_headers, body)
}

async fn get(app: &Router, uri: &str) -> (StatusCode, Value) {
    send(app, "GET", uri, None, vec![], &[]).await
}

async fn post(app: &Router, uri: &str, body: Value) -> (StatusCode, Value) {
    send(app, "POST", uri, Some("application/json"), serde_json::to_vec(&body).unwrap(), &[]).await
}

/// Asserts the error format, and returns the details' paths.
fn assert_error(got: &(StatusCode, Value), status: StatusCode, code: &str) -> Vec<String> {
    assert_eq!(got.0, status, "{}", got.1);
    let e = &got.1["error"];
    assert_eq!(e["code"], code, "{}", got.1);
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", got.1);
    let details = e["details"].as_array().unwrap_or_else(|| panic!("no details array: {}", got.1));
    for d in details {
        assert!(d["path"].is_string() && d["problem"].is_string(), "{d}");
        // The path is said once: a problem does not repeat it ("horizon: horizon: …").
        let (path, problem) = (d["path"].as_str().unwrap(), d["problem"].as_str().unwrap());
        assert!(!problem.starts_with(&format!("{path}:")), "doubled path in {d}");
        assert!(!e["message"].as_str().unwrap().contains(&format!("{path}: {path}:")), "{}", got.1);
    }
    details.iter().map(|d| d["path"].as_str().unwrap().to_string()).collect()
}

/// The transactions of a generated customer as an API customer.
fn by_transactions(id: &str) -> Value {
    let tx = &fixture().transactions[id];
    json!({ "id": id, "transactions": tx.iter().map(|(d, a)| json!({"date": d, "amount": a})).collect::<Vec<_>>() })
}

#[tokio::test]
async fn healthz_and_readyz_answer_when_a_model_is_loaded() {
    let (_s, app) = app();
    assert_eq!(get(&app, "/healthz").await, (StatusCode::OK, json!({"status": "ok"})));
    assert_eq!(get(&app, "/readyz").await, (StatusCode::OK, json!({"status": "ready", "model_id": fixture().a})));
}

#[tokio::test]
async fn without_a_model_readyz_and_predictions_are_503_and_health_is_200() {
    let s = Sandbox::new();
    let app = router(state(&s.path().join("models"), ApiKeys::none(), Limits::default()));
    assert_eq!(get(&app, "/healthz").await.0, StatusCode::OK);
    assert_error(&get(&app, "/readyz").await, StatusCode::SERVICE_UNAVAILABLE, "no_model");
    assert_error(&get(&app, "/v1/model").await, StatusCode::SERVICE_UNAVAILABLE, "no_model");
    let p = post(&app, "/v1/predict", json!({"customers": [{"id": "x", "segment": "key"}]})).await;
    assert_error(&p, StatusCode::SERVICE_UNAVAILABLE, "no_model");
}

#[tokio::test]
async fn the_model_routes_describe_the_served_model_and_its_chain() {
    let (_s, app) = app();
    let f = fixture();
    let (st, m) = get(&app, "/v1/model").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(m["id"], f.a);
    assert_eq!(m["as_of"], "2024-12-31");
    assert_eq!(m["period"]["unit"], "quarter");
    assert_eq!(m["states"], json!(["new", "key", "core", "occasional", "dormant", "lapsed"]));
    assert_eq!(m["data"]["customers"], 2000);
    assert_eq!(
        m["thresholds"],
        json!([{"tier": "key", "min_trailing_value": 500}, {"tier": "core", "min_trailing_value": 100}])
    );
    let (st, t) = get(&app, "/v1/model/transitions").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(t["states"], m["states"]);
    let matrix = t["matrix"].as_array().unwrap();
    assert_eq!(matrix.len(), 6);
    for row in matrix {
        let total: f64 = row.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).sum();
        // Six entries of 6 decimals each.
        assert!((total - 1.0).abs() < 6.0 * 5e-7, "{total}");
    }
    let moves: u64 =
        t["counts"].as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap()).map(|x| x.as_u64().unwrap()).sum();
    assert_eq!(t["moves"], moves);
}

#[tokio::test]
async fn models_are_listed_shown_and_an_unknown_one_is_404() {
    let (_s, app) = app();
    let f = fixture();
    let (st, l) = get(&app, "/v1/models").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(l["serving"], f.a);
    let models = l["models"].as_array().unwrap();
    assert_eq!(models.len(), 4);
    let a = models.iter().find(|m| m["id"] == f.a).unwrap();
    assert_eq!(a["active"], true);
    assert!(a["problem"].is_null());
    let broken = models.iter().find(|m| m["id"] == f.mismatched).unwrap();
    assert!(broken["problem"].is_string());
    let (st, b) = get(&app, &format!("/v1/models/{}", f.b)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(b["id"], f.b);
    assert_error(&get(&app, "/v1/models/2024-12-31-ffffffffffff").await, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn bad_bodies_are_400_413_415_in_the_error_format() {
    let s = models_copy();
    let app =
        router(state(&s.path().join("models"), ApiKeys::none(), Limits { max_body_bytes: 4096, ..Limits::default() }));
    let got = send(&app, "POST", "/v1/predict", Some("application/json"), b"{\"customers\": [".to_vec(), &[]).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "malformed_json");
    let got = send(&app, "POST", "/v1/predict", Some("application/json"), b"".to_vec(), &[]).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "malformed_json");
    let got = send(&app, "POST", "/v1/predict", Some("text/plain"), b"{}".to_vec(), &[]).await;
    assert_error(&got, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    let got = send(&app, "POST", "/v1/predict", None, b"{}".to_vec(), &[]).await;
    assert_error(&got, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    let big: Vec<Value> = (0..500).map(|i| json!({"id": format!("c{i}"), "segment": "key"})).collect();
    let got = post(&app, "/v1/predict", json!({"customers": big})).await;
    assert_error(&got, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    // A charset parameter is fine.
    let got = send(
        &app,
        "POST",
        "/v1/predict",
        Some("application/json; charset=utf-8"),
        br#"{"customers": [{"id": "a", "segment": "key"}]}"#.to_vec(),
        &[],
    )
    .await;
    assert_eq!(got.0, StatusCode::OK);
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_in_the_error_format() {
    let (_s, app) = app();
    assert_error(&get(&app, "/v2/nothing").await, StatusCode::NOT_FOUND, "not_found");
    assert_error(
        &send(&app, "DELETE", "/v1/model", None, vec![], &[]).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    assert_error(&get(&app, "/v1/predict").await, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

#[tokio::test]
async fn api_keys_gate_routes_by_role_and_without_keys_admin_routes_are_refused() {
    let s = models_copy();
    let app = router(state(&s.path().join("models"), keys(), Limits::default()));
    let b = &fixture().b;
    let activate = format!("/v1/models/{b}/activate");
    assert_eq!(get(&app, "/healthz").await.0, StatusCode::OK);
    assert_eq!(get(&app, "/readyz").await.0, StatusCode::OK);
    assert_error(&get(&app, "/v1/model").await, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_error(
        &send(&app, "GET", "/v1/model", None, vec![], &[("x-api-key", "wrong-key-0123456789")]).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_error(&send(&app, "GET", "/metrics", None, vec![], &[]).await, StatusCode::UNAUTHORIZED, "unauthorized");
    let bearer = format!("Bearer {READ_KEY}");
    assert_eq!(send(&app, "GET", "/v1/model", None, vec![], &[("authorization", &bearer)]).await.0, StatusCode::OK);
    assert_eq!(send(&app, "GET", "/v1/model", None, vec![], &[("x-api-key", ADMIN_KEY)]).await.0, StatusCode::OK);
    assert_error(&send(&app, "POST", &activate, None, vec![], &[]).await, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_error(
        &send(&app, "POST", &activate, None, vec![], &[("authorization", &bearer)]).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let (st, r) = send(&app, "POST", &activate, None, vec![], &[("x-api-key", ADMIN_KEY)]).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["model_id"], *b);
    // No keys: reads open, admin refused.
    let (_s2, open) = app_without_keys();
    assert_eq!(get(&open, "/v1/model").await.0, StatusCode::OK);
    assert_error(&send(&open, "POST", &activate, None, vec![], &[]).await, StatusCode::FORBIDDEN, "forbidden");
}

fn app_without_keys() -> (Sandbox, Router) {
    app()
}

#[tokio::test]
async fn the_population_forecast_starts_from_the_training_mix_or_a_given_one() {
    let (_s, app) = app();
    let (st, r) = post(&app, "/v1/forecast", json!({})).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["mix_source"], "training");
    let now: f64 = r["now"].as_object().unwrap().values().map(|v| v.as_f64().unwrap()).sum();
    let horizons = r["horizons"].as_array().unwrap();
    assert_eq!(horizons.len(), 4);
    for h in horizons {
        assert!((h["total"].as_f64().unwrap() - now).abs() < 1e-6);
    }
    let (_, t) = get(&app, "/v1/model/transitions").await;
    let (st, r) = post(&app, "/v1/forecast", json!({"mix": {"key": 100.0}, "horizon": 1, "inflow": 10.0})).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let key_row = t["matrix"][1].as_array().unwrap();
    for (j, s) in t["states"].as_array().unwrap().iter().enumerate() {
        let want = 100.0 * key_row[j].as_f64().unwrap() + if j == 0 { 10.0 } else { 0.0 };
        // Both sides carry 6 decimals (the matrix's rounding, times 100, is at most 5e-5).
        assert!((r["horizons"][0]["sizes"][s.as_str().unwrap()].as_f64().unwrap() - want).abs() < 1e-4);
    }
    let got = post(&app, "/v1/forecast", json!({"mix": {"vip": 1.0}, "horizon": 0})).await;
    assert_eq!(assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"), ["horizon", "mix.vip"]);
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_and_name_the_model() {
    let (_s, app) = app();
    get(&app, "/healthz").await;
    get(&app, "/healthz").await;
    post(&app, "/v1/predict", json!({"customers": []})).await;
    get(&app, "/nope").await;
    let (st, m) = get(&app, "/metrics").await;
    assert_eq!(st, StatusCode::OK);
    let m = m.as_str().unwrap();
    assert!(m.contains("kam_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2"), "{m}");
    assert!(m.contains("kam_http_requests_total{method=\"POST\",route=\"/v1/predict\",status=\"422\"} 1"), "{m}");
    assert!(m.contains("kam_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1"), "{m}");
    assert!(
        m.contains(
            "kam_http_request_duration_seconds_bucket{le=\"+Inf\",method=\"GET\",route=\"/healthz\",status=\"200\"} 2"
        ),
        "{m}"
    );
    assert!(m.contains(&format!("kam_model_info{{model_id=\"{}\"}} 1", fixture().a)), "{m}");
}

#[tokio::test]
async fn a_request_over_the_time_limit_is_503_timeout() {
    let s = models_copy();
    let limits = Limits { timeout: Duration::from_millis(1), blocking_from: 1, ..Limits::default() };
    let app = router(state(&s.path().join("models"), ApiKeys::none(), limits));
    let ids: Vec<&String> = fixture().transactions.keys().collect();
    let customers: Vec<Value> = ids
        .iter()
        .cycle()
        .take(10_000)
        .enumerate()
        .map(|(i, id)| {
            let mut c = by_transactions(id);
            c["id"] = json!(format!("{id}-{i}"));
            c
        })
        .collect();
    let got = post(&app, "/v1/predict", json!({"customers": customers})).await;
    assert_error(&got, StatusCode::SERVICE_UNAVAILABLE, "timeout");
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_and_every_listed_route_answers() {
    let (_s, app) = app();
    let (st, doc) = get(&app, "/openapi.json").await;
    assert_eq!(st, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with('3'));
    let paths = doc["paths"].as_object().unwrap();
    let mut listed: Vec<(String, String)> = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys().filter(|m| ["get", "post"].contains(&m.as_str())) {
            listed.push((method.to_uppercase(), path.clone()));
        }
    }
    listed.sort();
    let want = [
        ("GET", "/healthz"),
        ("GET", "/metrics"),
        ("GET", "/readyz"),
        ("GET", "/v1/customers"),
        ("GET", "/v1/customers/{id}"),
        ("GET", "/v1/jobs"),
        ("GET", "/v1/jobs/{id}"),
        ("GET", "/v1/model"),
        ("GET", "/v1/model/customers/summary"),
        ("GET", "/v1/model/transitions"),
        ("GET", "/v1/models"),
        ("GET", "/v1/models/{id}"),
        ("POST", "/v1/forecast"),
        ("POST", "/v1/models/{id}/activate"),
        ("POST", "/v1/predict"),
        ("POST", "/v1/train"),
    ];
    assert_eq!(listed, want.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect::<Vec<_>>());
    for (method, path) in &listed {
        let uri = path.replace("{id}", &fixture().b);
        let (status, body) = send(&app, method, &uri, Some("application/json"), b"{}".to_vec(), &[]).await;
        // The router has the route (a handler's own 404 names what it did not find).
        let no_route = body["error"]["message"].as_str().is_some_and(|m| m.starts_with("no route"));
        assert!(!no_route && status != StatusCode::METHOD_NOT_ALLOWED, "{method} {path}: {status} {body}");
    }
    let request = &doc["components"]["schemas"]["PredictRequest"];
    assert_eq!(request["required"], json!(["customers"]));
    for field in ["customers", "horizon", "discount_rate", "as_of"] {
        assert!(request["properties"][field].is_object(), "{field}: {request}");
    }
}
