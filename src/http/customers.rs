//! `GET /v1/customers/{id}`: a known customer's forecast from the per-customer snapshot stored
//! beside the model, `models/<id>.customers.jsonl` — one JSON object per line with at least
//! `customer_id`, `segment`, `previous_segment`, `rfm` and `next_spend` (the first columns of
//! `kam score --out <file>.jsonl` at the model's as-of date, which is such a file). The
//! forecast is recomputed for the `horizon` and `discount_rate` of the query (defaults 4 and
//! 0.025), so it equals `kam score`'s line for the same settings.
//!
//! `GET /v1/model/customers/summary`: the same customers at a glance — value concentration
//! curve, churn-risk histogram, key accounts with the most value at risk
//! ([`crate::domain::forecast::portfolio`]); the dashboard's per-customer charts.
//!
//! The snapshot is loaded with the model and swapped with it; a model without one answers 404.

use super::AppState;
use super::error::{ApiError, ErrorResponse};
use super::json::Json;
use super::predict::{Prediction, output};
use crate::app::views::SummaryResponse;
use crate::domain::forecast::portfolio::OutlookByState;
use crate::domain::forecast::{DEFAULT_DISCOUNT_RATE, DEFAULT_HORIZON, ForecastParams};
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::{Deserialize, Serialize};

/// Query parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CustomerQuery {
    /// Horizons 1..=horizon periods (1 to 120; default 4).
    pub horizon: Option<usize>,
    /// Discount rate per period (default 0.025).
    pub discount_rate: Option<f64>,
    /// Add 90% intervals (`*_lo`, `*_hi`) from 200 posterior draws (default true).
    pub intervals: Option<bool>,
}

/// The response body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CustomerResponse<'a> {
    pub model_id: &'a str,
    pub as_of: chrono::NaiveDate,
    pub horizon: usize,
    pub discount_rate: f64,
    pub prediction: Prediction<'a>,
}

fn checked_params(horizon: Option<usize>, discount_rate: Option<f64>) -> Result<ForecastParams, ApiError> {
    let params = ForecastParams {
        horizon: horizon.unwrap_or(DEFAULT_HORIZON),
        discount_rate: discount_rate.unwrap_or(DEFAULT_DISCOUNT_RATE),
    };
    params.check().map_err(|e| ApiError::invalid(e.field(), e.problem()))?;
    Ok(params)
}

/// A known customer's segment, RFM and forecast at the model's as-of date.
#[utoipa::path(get, path = "/v1/customers/{id}", tag = "predict", security(("api_key" = []), ("bearer" = [])),
    params(("id" = String, Path, description = "Customer id"), CustomerQuery), responses(
        (status = 200, description = "The customer's prediction", body = CustomerResponse),
        (status = 404, description = "Unknown customer, or the model has no customer snapshot", body = ErrorResponse),
        (status = 422, description = "Invalid horizon or discount rate", body = ErrorResponse),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse),
        (status = 503, description = "No model loaded (`no_model`)", body = ErrorResponse)))]
pub async fn customer(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<CustomerQuery>, QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let params = checked_params(q.horizon, q.discount_rate)?;
    let served = state.model()?;
    let snapshot = served
        .customers
        .as_ref()
        .ok_or_else(|| ApiError::NotFound(format!("model {} has no customer snapshot", served.id)))?;
    if snapshot.get(&id).is_none() {
        return Err(ApiError::NotFound(format!("no customer {id:?} in model {}", served.id)));
    }
    let intervals = q.intervals.unwrap_or(true);
    // Building a forecaster for new settings is heavy; answering from a built one is not.
    let heavy = !served.has_forecasts(params, intervals);
    super::compute(&state, heavy, move |_| {
        let forecasts = served.forecasts(params, intervals)?;
        let c = served.customers.as_ref().and_then(|s| s.get(&id)).expect("looked up above");
        let now = c.now();
        Ok(Json(CustomerResponse {
            model_id: &served.id,
            as_of: served.periods.as_of,
            horizon: params.horizon,
            discount_rate: params.discount_rate,
            prediction: output(&served, &id, &now, &forecasts, None),
        })
        .into_response())
    })
    .await
}

/// Query parameters of the summary.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SummaryQuery {
    /// Horizon of the expected value and churn probability (1 to 120 periods; default 4).
    pub horizon: Option<usize>,
    /// Discount rate per period (default 0.025).
    pub discount_rate: Option<f64>,
    /// Key accounts listed in `at_risk` (at most 1,000; default 20).
    pub top: Option<usize>,
}

/// The served model's customers at a glance: value concentration curve, churn-risk histogram,
/// and the key accounts with the most value at risk (expected value × churn probability).
#[utoipa::path(get, path = "/v1/model/customers/summary", tag = "model", security(("api_key" = []), ("bearer" = [])),
    params(SummaryQuery), responses(
        (status = 200, description = "`{model_id, as_of, horizon, discount_rate, source, customers, total_value, \
            concentration: [{customer_share, value_share}], top_shares, churn: {edges, counts, lapsed_now}, key_state, \
            key_accounts, key_value_at_risk, at_risk: [{customer_id, segment, value, churn, value_at_risk}]}`",
            body = serde_json::Value),
        (status = 404, description = "The model has no customer snapshot", body = ErrorResponse),
        (status = 422, description = "Invalid horizon, discount rate or top", body = ErrorResponse),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse),
        (status = 503, description = "No model loaded (`no_model`)", body = ErrorResponse)))]
pub async fn summary(
    State(state): State<AppState>,
    query: Result<Query<SummaryQuery>, QueryRejection>,
) -> Result<Json<SummaryResponse>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let params = checked_params(q.horizon, q.discount_rate)?;
    let top = q.top.unwrap_or(20);
    if top > 1000 {
        return Err(ApiError::invalid("top", format!("must be at most 1000, got {top}")));
    }
    let served = state.model()?;
    // A forecaster for the settings and a pass over every known customer: always heavy.
    super::compute(&state, true, move |_| {
        let snapshot = served
            .customers
            .as_ref()
            .ok_or_else(|| ApiError::NotFound(format!("model {} has no customer snapshot", served.id)))?;
        let forecaster = served.forecaster(params).map_err(|e| ApiError::Internal(e.to_string()))?;
        let by_state = OutlookByState::new(&forecaster, served.segments.states.len());
        let outlooks = snapshot.outlooks(&by_state, &forecaster);
        let source = "snapshot".to_string();
        Ok(Json(SummaryResponse::new(&served, &outlooks, params.horizon, Some(params.discount_rate), source, top)))
    })
    .await
}

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/customers/{id}", get(customer)).route("/v1/model/customers/summary", get(summary))
}
