//! `GET /healthz` (the process answers) and `GET /readyz` (a model is loaded; 503 otherwise).
//! Neither needs an API key.

use super::AppState;
use super::error::{ApiError, ErrorResponse};
use super::json::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "`{\"status\": \"ok\"}`", body = serde_json::Value)))]
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// A model is loaded: its id.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
        (status = 200, description = "`{\"status\": \"ready\", \"model_id\": …}`", body = serde_json::Value),
        (status = 503, description = "No model loaded (`no_model`)", body = ErrorResponse)))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let model = state.model()?;
    Ok(Json(json!({ "status": "ready", "model_id": model.id })))
}

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}
