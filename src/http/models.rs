//! Stored models: `GET /v1/models` (list), `GET /v1/models/{id}` (describe one), and
//! `POST /v1/models/{id}/activate` (admin: load, check, swap in, move `CURRENT`).
//!
//! Activation loads and checks the artifact before anything changes: a missing model is 404, a
//! corrupt or unservable one 422, and the server keeps serving the model it had. Requests in
//! flight keep the model they started with.

use super::error::{ApiError, ErrorResponse};
use super::json::Json;
use super::{AppState, Served};
use crate::model::artifact::ModelArtifact;
use crate::store::snapshot::{self, CustomerSnapshot};
use crate::store::{ModelStore, StoreError};
use axum::Router;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::sync::Arc;

fn store_error(id: &str, e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound { .. } => ApiError::NotFound(format!("no model {id:?}")),
        StoreError::BadId(_) => ApiError::invalid("id", "not a model id (expected letters, digits and dashes)"),
        StoreError::Corrupt { reason, .. } => ApiError::UnusableModel { id: id.into(), reason },
        StoreError::SchemaVersion { found, .. } => ApiError::UnusableModel {
            id: id.into(),
            reason: format!(
                "schema version {found}; this server reads version {}",
                crate::model::artifact::SCHEMA_VERSION
            ),
        },
        e @ (StoreError::Io { .. } | StoreError::Unloadable { .. }) => ApiError::Internal(e.to_string()),
    }
}

/// Loads a model from the store; the store refuses one whose parts do not agree
/// ([`crate::model::artifact::ModelArtifact::check`]), as unusable.
pub fn load_servable(store: &ModelStore, id: &str) -> Result<ModelArtifact, ApiError> {
    store.load(id).map_err(|e| store_error(id, e))
}

/// [`load_servable`], plus the customer snapshot stored beside the model, if any.
pub fn load_served(store: &ModelStore, id: &str) -> Result<Served, ApiError> {
    let artifact = load_servable(store, id)?;
    let path = snapshot::path(store.dir(), id);
    let customers = CustomerSnapshot::load(&path, &artifact)
        .map_err(|e| ApiError::UnusableModel { id: id.into(), reason: e.to_string() })?;
    Ok(Served::new(artifact, customers))
}

/// Every stored model (`active`: named by CURRENT; `problem`: why it cannot load), and the one
/// being served.
#[utoipa::path(get, path = "/v1/models", tag = "models", security(("api_key" = []), ("bearer" = [])), responses(
        (status = 200, description = "`{\"serving\": id, \"models\": [...]}`", body = serde_json::Value),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse),
        (status = 403, description = "The key's role may not use this route", body = ErrorResponse)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let listed = tokio::task::spawn_blocking(move || store.list())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let serving = state.active.load_full().map(|m| m.id.clone());
    Ok(Json(json!({ "serving": serving, "models": listed })))
}

/// A stored model's description.
#[utoipa::path(get, path = "/v1/models/{id}", tag = "models", security(("api_key" = []), ("bearer" = [])),
    params(("id" = String, Path, description = "Model id")), responses(
        (status = 200, description = "The model's description", body = crate::app::views::ModelView),
        (status = 404, description = "No such model", body = ErrorResponse),
        (status = 422, description = "Not a model id, or an unusable artifact", body = ErrorResponse),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse),
        (status = 403, description = "The key's role may not use this route", body = ErrorResponse)))]
pub async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<axum::response::Response, ApiError> {
    let store = state.store.clone();
    let id2 = id.clone();
    let m = tokio::task::spawn_blocking(move || store.load(&id2))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| store_error(&id, e))?;
    Ok(Json(crate::app::views::ModelView::new(&m)).into_response())
}

/// Loads and checks a stored model, swaps it in and moves CURRENT (admin). Requests in flight
/// finish with the model they started with; a refused model leaves everything as it was.
#[utoipa::path(post, path = "/v1/models/{id}/activate", tag = "models", security(("api_key" = []), ("bearer" = [])),
    params(("id" = String, Path, description = "Model id")), responses(
        (status = 200, description = "`{\"model_id\": id, \"previous_model_id\": id}`", body = serde_json::Value),
        (status = 404, description = "No such model", body = ErrorResponse),
        (status = 422, description = "Corrupt, wrong schema or inconsistent (`unusable_model`), or not an id", body = ErrorResponse),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse),
        (status = 403, description = "The key's role may not use this route", body = ErrorResponse)))]
pub async fn activate(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let _guard = state.activation.lock().await;
    let previous = state.active.load_full().map(|m| m.id.clone());
    let store = state.store.clone();
    let id2 = id.clone();
    let model = tokio::task::spawn_blocking(move || -> Result<Served, ApiError> {
        let m = load_served(&store, &id2)?;
        store.activate(&id2).map_err(|e| store_error(&id2, e))?;
        Ok(m)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    state.active.store(Some(Arc::new(model)));
    tracing::info!(model = %id, previous = ?previous, "model activated");
    Ok(Json(json!({ "model_id": id, "previous_model_id": previous })))
}

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/models", get(list)).route("/v1/models/{id}", get(show))
}

/// Routes that need the admin role.
pub fn admin_router() -> Router<AppState> {
    Router::new().route("/v1/models/{id}/activate", post(activate))
}
