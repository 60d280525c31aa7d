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
use super::predict::{Prediction, output};
use crate::domain::forecast::portfolio::{Outlook, OutlookByState, Portfolio, PortfolioParams, summarise};
use crate::domain::forecast::{ForecastParams, Forecaster};
use crate::domain::panel::PanelRow;
use crate::model::artifact::ModelArtifact;
use crate::model::place::CustomerLine;
use crate::model::place::CustomerNow;
use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::BufRead;

/// One stored customer.
#[derive(Clone, Debug)]
struct Stored {
    state: u32,
    previous: Option<u32>,
    last: Option<PanelRow>,
    next_spend: f64,
    next_spend_se: f64,
    first_step: Option<Vec<f64>>,
}

/// Customers at the model's as-of date, by id.
#[derive(Debug, Default)]
pub struct CustomerSnapshot {
    index: HashMap<String, Stored>,
}

/// Where a model's snapshot lies.
pub fn snapshot_path(dir: &std::path::Path, id: &str) -> std::path::PathBuf {
    dir.join(format!("{id}.customers.jsonl"))
}

impl CustomerSnapshot {
    /// Reads a snapshot for `model`; `Ok(None)` when there is none. Errors name the line.
    pub fn load(path: &std::path::Path, model: &ModelArtifact) -> Result<Option<Self>, String> {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read its customer snapshot: {e}")),
        };
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut index = HashMap::new();
        let state = |s: &str, n: usize| {
            model.state_index(s).map(|i| i as u32).ok_or_else(|| format!("{name}: line {n}: unknown segment {s:?}"))
        };
        for (k, line) in std::io::BufReader::new(file).lines().enumerate() {
            let n = k + 1;
            let line = line.map_err(|e| format!("{name}: line {n}: {e}"))?;
            if line.trim().is_empty() {
                continue;
            }
            let l: CustomerLine = serde_json::from_str(&line).map_err(|e| format!("{name}: line {n}: {e}"))?;
            if let Some(q) = &l.first_step
                && (q.len() != model.segments.states.len()
                    || q.iter().any(|p| !(0.0..=1.0).contains(p))
                    || (q.iter().sum::<f64>() - 1.0).abs() > 1e-6)
            {
                return Err(format!("{name}: line {n}: first_step is not a distribution over the model's states"));
            }
            let stored = Stored {
                state: state(&l.segment, n)?,
                previous: l.previous_segment.as_deref().map(|s| state(s, n)).transpose()?,
                last: l.rfm.map(|r| r.to_row()),
                next_spend: l.next_spend,
                next_spend_se: l.next_spend_se,
                first_step: l.first_step,
            };
            if index.insert(l.customer_id.clone(), stored).is_some() {
                return Err(format!("{name}: line {n}: customer {:?} appears twice", l.customer_id));
            }
        }
        Ok(Some(Self { index }))
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Every customer's value and churn over the forecaster's horizon.
    /// Customers with their own first-step row get it from `forecaster`.
    pub fn outlooks(&self, by_state: &OutlookByState, forecaster: &Forecaster) -> Vec<Outlook> {
        self.index
            .iter()
            .map(|(id, c)| {
                let (value, churn) = match &c.first_step {
                    Some(q) => {
                        let f = forecaster.customer_with_first_step(c.state as usize, q, c.next_spend);
                        (f.value_horizon, f.horizons.last().map_or(0.0, |h| h.churn))
                    }
                    None => by_state.value_and_churn(c.state as usize, c.next_spend),
                };
                Outlook { customer_id: id.clone(), state: c.state as usize, value, churn }
            })
            .collect()
    }
}

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
    let params = ForecastParams { horizon: horizon.unwrap_or(4), discount_rate: discount_rate.unwrap_or(0.025) };
    params.check().map_err(|e| {
        let path =
            if matches!(e, crate::domain::forecast::ForecastError::Horizon(_)) { "horizon" } else { "discount_rate" };
        ApiError::invalid(path, e.to_string())
    })?;
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
    let c = snapshot
        .index
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no customer {id:?} in model {}", served.id)))?;
    let forecasts = served.forecasts(params, q.intervals.unwrap_or(true))?;
    let now = CustomerNow {
        customer: 0,
        state: c.state as usize,
        previous_state: c.previous.map(|s| s as usize),
        last: c.last,
        next_spend: c.next_spend,
        next_spend_se: c.next_spend_se,
        first_step: c.first_step.clone(),
    };
    Ok(Json(CustomerResponse {
        model_id: &served.id,
        as_of: served.periods.as_of,
        horizon: params.horizon,
        discount_rate: params.discount_rate,
        prediction: output(&served, &id, &now, &forecasts, None),
    })
    .into_response())
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

/// The summary's response body: the settings, then the [`Portfolio`] fields.
#[derive(Debug, Serialize)]
pub struct SummaryResponse {
    pub model_id: String,
    pub as_of: chrono::NaiveDate,
    pub horizon: usize,
    /// `None` when the values come from a scores file that does not record it.
    pub discount_rate: Option<f64>,
    /// Where the customers come from: `snapshot` (here), or a scores file (in `kam report`).
    pub source: String,
    #[serde(flatten)]
    pub portfolio: Portfolio,
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
    let size = served.customers.as_ref().map_or(0, CustomerSnapshot::len);
    let big = size >= 10 * state.limits.blocking_from;
    super::compute(big, move || {
        let snapshot = served
            .customers
            .as_ref()
            .ok_or_else(|| ApiError::NotFound(format!("model {} has no customer snapshot", served.id)))?;
        let forecaster = served.forecaster(params).map_err(|e| ApiError::Internal(e.to_string()))?;
        let by_state = OutlookByState::new(&forecaster, served.segments.states.len());
        let portfolio = summarise(
            &snapshot.outlooks(&by_state, &forecaster),
            &served.segments.states,
            served.key_index(),
            &served.lapsed_states(),
            PortfolioParams { top, ..PortfolioParams::default() },
        );
        Ok(Json(SummaryResponse {
            model_id: served.id.clone(),
            as_of: served.periods.as_of,
            horizon: params.horizon,
            discount_rate: Some(params.discount_rate),
            source: "snapshot".into(),
            portfolio,
        }))
    })
    .await
}

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/customers/{id}", get(customer)).route("/v1/model/customers/summary", get(summary))
}
