//! `POST /v1/forecast`: population segment sizes for horizons 1..=H from a given mix (customers
//! per segment) or, by default, the training-time mix (the last period of the model's
//! `sizes_by_period`), optionally with `inflow` new customers per period.

use super::AppState;
use super::error::{ApiError, Detail, ErrorResponse};
use super::json::ApiJson;
use super::json::Json;
use crate::app::views::ForecastResponse;
use crate::domain::forecast::ForecastParams;
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde::Deserialize;
use std::collections::BTreeMap;

fn default_horizon() -> usize {
    crate::domain::forecast::DEFAULT_HORIZON
}

/// The request body (`{}` is a valid request).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForecastRequest {
    /// Periods ahead (1 to 120; default 4).
    #[serde(default = "default_horizon")]
    pub horizon: usize,
    /// Customers now in each segment, by name (segments left out are 0). Default: the mix at
    /// the model's as-of date.
    pub mix: Option<BTreeMap<String, f64>>,
    /// New customers entering the first segment each period (default 0).
    #[serde(default)]
    pub inflow: f64,
    /// Add 90% intervals from 200 posterior draws (default true).
    #[serde(default = "default_intervals")]
    pub intervals: bool,
}

fn default_intervals() -> bool {
    true
}

/// Most customers in one segment of `mix`, or arriving per period (`inflow`): far beyond any
/// book, and small enough that the realized counts of the intervals (integers summed over 120
/// periods and every segment) cannot overflow.
pub const MAX_POPULATION: f64 = 1e12;

/// Population segment sizes for horizons 1..=H.
#[utoipa::path(post, path = "/v1/forecast", tag = "predict", security(("api_key" = []), ("bearer" = [])),
    request_body = ForecastRequest, responses(
        (status = 200, description = "Segment sizes per horizon", body = ForecastResponse),
        (status = 422, description = "Invalid values, each named by its JSON path", body = ErrorResponse),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse),
        (status = 403, description = "The key's role may not use this route", body = ErrorResponse),
        (status = 503, description = "No model loaded (`no_model`)", body = ErrorResponse)))]
pub async fn handler(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ForecastRequest>,
) -> Result<Json<ForecastResponse>, ApiError> {
    let model = state.model()?;
    let states = &model.segments.states;
    let mut problems = Vec::new();
    if !(1..=crate::domain::forecast::MAX_HORIZON).contains(&req.horizon) {
        problems.push(Detail::new("horizon", crate::domain::forecast::ForecastError::Horizon(req.horizon).problem()));
    }
    if !req.inflow.is_finite() || req.inflow < 0.0 {
        problems.push(Detail::new("inflow", "must be a finite number ≥ 0"));
    } else if req.inflow > MAX_POPULATION {
        problems.push(Detail::new("inflow", format!("must be at most {MAX_POPULATION:e} customers per period")));
    }
    let (mix, source) = match &req.mix {
        Some(given) => {
            let mut mix = vec![0.0; states.len()];
            for (name, v) in given {
                match model.state_index(name) {
                    Some(_) if !v.is_finite() || *v < 0.0 => {
                        problems.push(Detail::new(format!("mix.{name}"), "must be a finite number ≥ 0"))
                    }
                    Some(_) if *v > MAX_POPULATION => problems.push(Detail::new(
                        format!("mix.{name}"),
                        format!("must be at most {MAX_POPULATION:e} customers"),
                    )),
                    Some(s) => mix[s] = *v,
                    None => problems.push(Detail::new(
                        format!("mix.{name}"),
                        format!("unknown segment {name:?}; the model's segments are {states:?}"),
                    )),
                }
            }
            (mix, "given")
        }
        None => (model.training_mix(), "training"),
    };
    if !problems.is_empty() {
        return Err(ApiError::Invalid(problems));
    }
    let params = ForecastParams { horizon: req.horizon, discount_rate: 0.0 };
    // Posterior draws for new settings are heavy (1.6 s at horizon 120); the sizes alone are not.
    let heavy = req.intervals && !model.has_forecasts(params, true);
    super::compute(&state, heavy, move |_| {
        let forecasts = if req.intervals { Some(model.forecasts(params, true)?) } else { None };
        let bands = forecasts.as_ref().and_then(|f| f.bands.as_ref());
        Ok(Json(ForecastResponse::new(model.as_ref(), &mix, source, req.horizon, req.inflow, bands)))
    })
    .await
}

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/forecast", post(handler))
}
