//! `GET /`: the dashboard — the same page as `kam report`, without data: its script fetches the
//! served model's views from the read routes (`/v1/model`, `/v1/model/transitions`,
//! `POST /v1/forecast`, `/v1/model/customers/summary`) with the key the user enters. The page
//! itself carries no data, so it needs no key; it only says whether the server wants one.

use super::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

/// What the page may load: nothing but itself and the API of its own origin.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
     connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub async fn page(State(state): State<AppState>) -> Response {
    let mut r = Html(crate::app::page::dashboard(!state.keys.is_empty())).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(page))
}
