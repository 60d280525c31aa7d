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
//! `GET /v1/customers`: the same customers listed — filtered by family or state, ordered by
//! value at risk, value, churn, dropout or id, a page at a time with a cursor (the ordered list is built
//! once per model and setting, [`super::Served::listing`]).
//!
//! The snapshot is loaded with the model and swapped with it; a model without one answers 404.

use super::AppState;
use super::error::{ApiError, ErrorResponse};
use super::json::Json;
use super::predict::{Prediction, output};
use crate::app::views::SummaryResponse;
use crate::domain::forecast::portfolio::{OutlookByState, Ranking};
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
            prediction: output(&served, &id, &now, &forecasts, None, served.periods.as_of),
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
/// the key accounts (and accounts key a period ago) with the most value at risk (expected value
/// if retained less expected value) and why, and the moves into and out of key.
#[utoipa::path(get, path = "/v1/model/customers/summary", tag = "model", security(("api_key" = []), ("bearer" = [])),
    params(SummaryQuery), responses(
        (status = 200, description = "`{model_id, as_of, horizon, discount_rate, source, customers, total_value, \
            concentration: [{customer_share, value_share}], top_shares, churn: {edges, counts, lapsed_now}, key_state, \
            key_accounts, key_value_at_risk, at_risk: [{customer_id, segment, previous_segment, value, churn, \
            value_at_risk, value_if_retained, p_alive, p_leave_key, p_no_purchase, silent_days, usual_gap_days, \
            spend_change}], key_moves: {entered, left, entered_from, left_to, entered_top, left_top}}`",
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
        let outlooks = snapshot.outlooks(&by_state, &forecaster, served.purchases.as_ref(), served.periods.as_of);
        let source = "snapshot".to_string();
        Ok(Json(SummaryResponse::new(&served, &outlooks, params.horizon, Some(params.discount_rate), source, top)))
    })
    .await
}

/// Most customers on one page of the listing.
pub const MAX_PAGE: usize = 1000;

/// Query parameters of the customer listing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only customers of this family: `new`, `key`, `core`, `occasional`, `dormant`, `lapsed` (the
    /// scheme's names).
    pub family: Option<String>,
    /// Only customers in this (detailed) state, e.g. `dormant_1_key`.
    pub segment: Option<String>,
    /// Order, largest first (ties by customer id): `value_at_risk` (the default), `leave_tier`
    /// (P(leaving its tier by the horizon)), `value`, `churn`, `dropout` (1 − P(alive): the
    /// accounts most likely gone first), or `id` (ascending).
    pub sort: Option<String>,
    /// Customers per page (1 to 1000; default 100).
    pub limit: Option<usize>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Horizon of the value and churn probability (1 to 120 periods; default 4).
    pub horizon: Option<usize>,
    /// Discount rate per period (default 0.025).
    pub discount_rate: Option<f64>,
}

/// One customer of the listing.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListedCustomer<'a> {
    pub customer_id: &'a str,
    /// Its state now.
    pub segment: &'a str,
    /// The state's family.
    pub family: &'a str,
    /// Expected (discounted) value over the horizon.
    pub value: f64,
    /// Probability of lapsing by the horizon.
    pub churn: f64,
    /// `value_if_retained − value` (0 at least) where the purchase history is known, else
    /// `value × churn`.
    pub value_at_risk: f64,
    /// Expected value over the horizon if it keeps buying at its own rate (`null` without a
    /// purchase history or a BTYD fit, as every field below).
    pub value_if_retained: Option<f64>,
    /// P(alive) under the model's BTYD fit.
    pub p_alive: Option<f64>,
    /// P(not in its tier or a higher one at the horizon; for a key account: of not being key).
    pub p_leave_tier: Option<f64>,
    /// P(key at the horizon) from its own purchase rate and recent spend.
    pub p_key_own: Option<f64>,
    /// P(no purchase by the horizon).
    pub p_no_purchase: Option<f64>,
    /// Days since its last purchase, and its mean days between purchases.
    pub silent_days: Option<u32>,
    pub usual_gap_days: Option<f64>,
    /// Spend in the newer half of its trailing window against the older half (−0.4: down 40%).
    pub spend_change: Option<f64>,
    /// Its state a period before.
    pub previous_segment: Option<&'a str>,
}

/// A page of the customer listing.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CustomerList<'a> {
    pub model_id: &'a str,
    pub as_of: chrono::NaiveDate,
    pub horizon: usize,
    pub discount_rate: f64,
    pub sort: &'a str,
    pub family: Option<&'a str>,
    pub segment: Option<&'a str>,
    /// Customers matching the filters, over all pages.
    pub matching: u64,
    pub customers: Vec<ListedCustomer<'a>>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// A cursor's check: which model and settings its position belongs to.
fn cursor_tag(model: &str, params: ForecastParams, sort: &str, family: Option<&str>, segment: Option<&str>) -> String {
    let text = format!("{model}|{}|{}|{sort}|{family:?}|{segment:?}", params.horizon, params.discount_rate.to_bits());
    blake3::hash(text.as_bytes()).to_hex()[..12].to_string()
}

/// The known customers (the served model's snapshot), filtered by family or state, ordered,
/// a page at a time.
#[utoipa::path(get, path = "/v1/customers", tag = "predict", security(("api_key" = []), ("bearer" = [])),
    params(ListQuery), responses(
        (status = 200, description = "A page of customers", body = CustomerList),
        (status = 404, description = "The model has no customer snapshot", body = ErrorResponse),
        (status = 422, description = "Invalid filter, sort, limit, cursor, horizon or discount rate; a cursor \
            of another model or other filters", body = ErrorResponse),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse),
        (status = 503, description = "No model loaded (`no_model`)", body = ErrorResponse)))]
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let params = checked_params(q.horizon, q.discount_rate)?;
    let sort = q.sort.as_deref().unwrap_or("value_at_risk");
    let Some(&(sort, ranking)) = Ranking::ALL.iter().find(|(name, _)| *name == sort) else {
        let names: Vec<&str> = Ranking::ALL.iter().map(|(name, _)| *name).collect();
        return Err(ApiError::invalid("sort", format!("must be one of {}, got {sort:?}", names.join(", "))));
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid("limit", format!("must be 1 to {MAX_PAGE}, got {limit}")));
    }
    let served = state.model()?;
    let families = served.segments.scheme.families();
    let mut family_of = vec![String::new(); served.segments.states.len()];
    for (name, states) in &families {
        for &s in states {
            family_of[s].clone_from(name);
        }
    }
    let mut problems = Vec::new();
    if let Some(f) = q.family.as_deref().filter(|f| !families.iter().any(|(n, _)| n == f)) {
        let names: Vec<&str> = families.iter().map(|(n, _)| n.as_str()).collect();
        problems.push(super::error::Detail::new("family", format!("must be one of {}, got {f:?}", names.join(", "))));
    }
    if let Some(s) = q.segment.as_deref().filter(|s| !served.segments.states.iter().any(|n| n == s)) {
        problems.push(super::error::Detail::new("segment", format!("no state {s:?} in the model")));
    }
    let tag = cursor_tag(&served.id, params, sort, q.family.as_deref(), q.segment.as_deref());
    let from = match q.cursor.as_deref() {
        None => 0,
        Some(c) => match c.split_once('.').and_then(|(pos, t)| Some((usize::from_str_radix(pos, 16).ok()?, t))) {
            Some((pos, t)) if t == tag => pos,
            _ => {
                problems.push(super::error::Detail::new(
                    "cursor",
                    "is not a cursor of this listing (the model or the filters changed since): start again without it",
                ));
                0
            }
        },
    };
    if !problems.is_empty() {
        return Err(ApiError::Invalid(problems));
    }
    let heavy = !served.has_listing(params, ranking);
    super::compute(&state, heavy, move |_| {
        let listing = served.listing(params, ranking)?;
        let wanted = |s: usize| {
            q.family.as_deref().is_none_or(|f| family_of[s] == f)
                && q.segment.as_deref().is_none_or(|n| served.segments.states[s] == n)
        };
        let matching = listing.iter().filter(|c| wanted(c.state)).count() as u64;
        let mut customers = Vec::with_capacity(limit.min(listing.len()));
        let mut next = None;
        for (i, c) in listing.iter().enumerate().skip(from).filter(|(_, c)| wanted(c.state)) {
            if customers.len() == limit {
                next = Some(format!("{i:x}.{tag}"));
                break;
            }
            customers.push(ListedCustomer {
                customer_id: &c.customer_id,
                segment: &served.segments.states[c.state],
                family: &family_of[c.state],
                value: c.value,
                churn: c.churn,
                value_at_risk: c.value_at_risk(),
                value_if_retained: c.standing.map(|s| s.value_if_retained),
                p_alive: c.p_alive,
                p_leave_tier: c.standing.and_then(|s| s.p_leave_tier),
                p_key_own: c.standing.and_then(|s| s.p_key),
                p_no_purchase: c.standing.map(|s| s.p_no_purchase),
                silent_days: c.standing.map(|s| s.silent_days),
                usual_gap_days: c.standing.and_then(|s| s.usual_gap_days),
                spend_change: c.standing.and_then(|s| s.spend_change),
                previous_segment: c.previous_state.map(|s| served.segments.states[s].as_str()),
            });
        }
        Ok(Json(CustomerList {
            model_id: &served.id,
            as_of: served.periods.as_of,
            horizon: params.horizon,
            discount_rate: params.discount_rate,
            sort,
            family: q.family.as_deref(),
            segment: q.segment.as_deref(),
            matching,
            customers,
            next_cursor: next,
        })
        .into_response())
    })
    .await
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/customers", get(list))
        .route("/v1/customers/{id}", get(customer))
        .route("/v1/model/customers/summary", get(summary))
}
