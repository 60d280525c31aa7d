//! The model being served: `GET /v1/model` (what it is) and `GET /v1/model/transitions` (its
//! chain).

use super::AppState;
use super::error::{ApiError, ErrorResponse};
use super::json::Json;
use crate::app::views;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The served model: id, as-of date, period unit, states, thresholds, data fingerprint, spend
/// regression and backtest.
#[utoipa::path(get, path = "/v1/model", tag = "model", security(("api_key" = []), ("bearer" = [])), responses(
        (status = 200, description = "The model's description", body = views::ModelView),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse),
        (status = 403, description = "The key's role may not use this route", body = ErrorResponse),
        (status = 503, description = "No model loaded (`no_model`)", body = ErrorResponse)))]
pub async fn model(State(state): State<AppState>) -> Result<Response, ApiError> {
    let served = state.model()?;
    Ok(Json(views::ModelView::new(&served)).into_response())
}

/// The served model's chain: states, prior, counts, matrix with credible intervals, allowed
/// moves, diagnostics (time-homogeneity test).
#[utoipa::path(get, path = "/v1/model/transitions", tag = "model", security(("api_key" = []), ("bearer" = [])), responses(
        (status = 200, description = "The transition model", body = views::ChainView),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse),
        (status = 403, description = "The key's role may not use this route", body = ErrorResponse),
        (status = 503, description = "No model loaded (`no_model`)", body = ErrorResponse)))]
pub async fn transitions(State(state): State<AppState>) -> Result<Response, ApiError> {
    let served = state.model()?;
    Ok(Json(views::ChainView::new(&served)).into_response())
}

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/model", get(model)).route("/v1/model/transitions", get(transitions))
}
