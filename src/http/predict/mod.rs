//! `POST /v1/predict`: forecasts for 1..=10,000 customers under the model being served.
//!
//! Each customer is given either by its raw transactions — placed exactly as `kam score` places
//! it ([`crate::model::place::snapshot`]), so the answer equals `kam score`'s row — or by its
//! current features (segment and/or RFM). For features:
//!
//! - `segment` may be left out when `tenure_periods`, `purchases` and `monetary` are given (and
//!   `periods_since_purchase` when `purchases` is 0): it is then derived with the model's own
//!   cut-points. A given segment wins over the features.
//! - Missing features take the smallest values consistent with the segment, and spend the
//!   model's mean spend in a period spent in that segment: `purchases` 1 in `new` and the tiers,
//!   0 when inactive; `frequency` = `purchases`; `spend` = the segment's mean period spend;
//!   `monetary` = `spend`; `periods_since_purchase` 0 when active, else the least the segment
//!   allows; `tenure_periods` 0 in `new`, else at least 1 and `periods_since_purchase`;
//!   `recency_days` half a period when active, plus `periods_since_purchase` whole periods when
//!   inactive; attributes the training mean. The response lists the defaulted fields.

use super::AppState;
use super::error::{ApiError, ErrorResponse};
use super::json::{JsonBody, parse};
use super::{Deadline, Forecasts, Served};
use crate::app::views::{HorizonIntervals, ValueIntervals};
use crate::domain::forecast::{ByState, ForecastParams};
use crate::model::artifact::ModelArtifact;
use crate::model::place::features::PartialFeatures;
use crate::model::place::{CustomerNow, Rfm, snapshot};
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::NaiveDate;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most customers in one request.
pub const MAX_CUSTOMERS: usize = 10_000;
/// Most transactions in one request, over all customers.
pub const MAX_TRANSACTIONS: usize = 2_000_000;
/// Most problems reported for one request.
pub(crate) const MAX_DETAILS: usize = 100;

fn default_horizon() -> usize {
    crate::domain::forecast::DEFAULT_HORIZON
}

fn default_discount() -> f64 {
    crate::domain::forecast::DEFAULT_DISCOUNT_RATE
}

/// The request body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictRequest {
    pub customers: Vec<CustomerInput>,
    /// Horizons 1..=horizon periods (1 to 120; default 4).
    #[serde(default = "default_horizon")]
    pub horizon: usize,
    /// Discount rate per period (default 0.025, as `kam score`).
    #[serde(default = "default_discount")]
    pub discount_rate: f64,
    /// For customers given by transactions: place them at the end of the last complete period
    /// on or before this date (default: the model's as-of date).
    #[serde(default)]
    pub as_of: Option<NaiveDate>,
    /// Add 90% intervals (`*_lo`, `*_hi`) from 200 posterior draws, as `kam score` (default
    /// true).
    #[serde(default = "default_intervals")]
    pub intervals: bool,
}

fn default_intervals() -> bool {
    true
}

/// One customer: by features or by transactions.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerInput {
    /// A string, or an integer (`42` is the customer `"42"`); answers give it as a string.
    #[serde(deserialize_with = "super::json::customer_id")]
    pub id: String,
    pub segment: Option<String>,
    pub recency_days: Option<u32>,
    pub frequency: Option<u32>,
    pub monetary: Option<f64>,
    pub tenure_periods: Option<u32>,
    pub purchases: Option<u32>,
    pub spend: Option<f64>,
    pub periods_since_purchase: Option<u32>,
    /// Numeric attributes of the model's spend design, by name.
    pub attributes: Option<BTreeMap<String, f64>>,
    /// With features: the customer's purchase history at the as-of date (`x`, `t_x`, `t`,
    /// `repeat_mean_spend`, as answers give it), for the BTYD numbers (`p_alive`, own spend, risk).
    #[schema(value_type = Option<Object>)]
    pub purchase_history: Option<crate::domain::btyd::baselines::PurchaseHistory>,
    /// With features: its spend in the last W − 1 periods, the as-of period first (as answers
    /// give it), for the probability of leaving its tier.
    pub recent_spend: Option<Vec<f64>>,
    pub transactions: Option<Vec<TransactionInput>>,
}

impl CustomerInput {
    /// The features as given (request to domain value at the edge).
    fn features(&self) -> PartialFeatures<'_> {
        PartialFeatures {
            segment: self.segment.as_deref(),
            recency_days: self.recency_days,
            frequency: self.frequency,
            monetary: self.monetary,
            tenure_periods: self.tenure_periods,
            purchases: self.purchases,
            spend: self.spend,
            periods_since_purchase: self.periods_since_purchase,
            attributes: self.attributes.as_ref(),
        }
    }
}

/// One transaction of a customer.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransactionInput {
    /// `YYYY-MM-DD`, `YYYYMMDD` or an RFC 3339 timestamp (its date as written).
    pub date: String,
    /// Amount; negative for a return.
    pub amount: f64,
    pub margin: Option<f64>,
}

/// One horizon of a prediction.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HorizonOut<'a> {
    pub h: usize,
    #[schema(value_type = BTreeMap<String, f64>)]
    pub distribution: ByState<'a>,
    pub most_likely: &'a str,
    pub p_key: f64,
    pub churn: f64,
    pub reactivation: Option<f64>,
    pub expected_spend: f64,
    /// Expected purchase days from the as-of date to the end of this period (BTYD; `null`
    /// where `p_alive` is).
    pub expected_purchases: Option<f64>,
    /// P(no purchase day from the as-of date to the end of this period) (BTYD; `null` where
    /// `p_alive` is).
    pub p_no_purchase: Option<f64>,
    /// P(not in its value tier or a higher one at this period's end: for a key account, of not
    /// being key) from its own purchase rate and recent spend; `null` where `p_alive` is or
    /// the customer has no tier yet.
    pub p_leave_tier: Option<f64>,
    /// P(key at this period's end) from its own purchase rate and recent spend (a purchase in
    /// the period with a trailing value at the key cut or above), beside the chain's `p_key` for
    /// its state; `null` where `p_alive` is or the scheme has no tiers.
    pub p_key_own: Option<f64>,
    /// Intervals on this horizon's numbers (unless `intervals` is false).
    #[serde(flatten)]
    pub intervals: Option<HorizonIntervals<'a>>,
}

/// One customer's prediction: the fields of a `kam score --out x.jsonl` line, plus, for a
/// customer given by features, where its segment came from and which features took defaults.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Prediction<'a> {
    pub customer_id: &'a str,
    pub segment: &'a str,
    pub previous_segment: Option<&'a str>,
    pub rfm: Option<Rfm>,
    /// The purchase history the BTYD quantities come from, at the as-of date: `x` repeat purchase
    /// days, the last `t_x` days after the first, `t` days from the first to the as-of date,
    /// `repeat_mean_spend` (customers given by transactions; absent for features).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub purchase_history: Option<crate::domain::btyd::baselines::PurchaseHistory>,
    /// Its spend in the last W − 1 periods (W the trailing window), the as-of period first: what
    /// stays in its trailing value over the next periods (customers given by transactions).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recent_spend: Vec<f64>,
    pub next_spend: f64,
    /// Standard error of `next_spend` (the spend regression's coefficient uncertainty).
    pub next_spend_se: f64,
    pub expected_periods_to_lapse: Option<f64>,
    pub value_horizon: f64,
    pub value_infinite: Option<f64>,
    /// Probability that the customer is still "alive" (has not dropped out for good) under the
    /// model's BTYD fit; `null` for customers given by features or a model without a BTYD fit.
    pub p_alive: Option<f64>,
    /// Its expected value over the horizon if it stays (keeps buying at its own rate, under the
    /// model's BTYD fit); `null` where `p_alive` is.
    pub value_if_retained: Option<f64>,
    /// `value_if_retained` less `value_horizon` (0 at least); `null` where `p_alive` is.
    pub value_at_risk: Option<f64>,
    /// Its mean days between purchases (`null` with one purchase day, or where `p_alive` is).
    pub usual_gap_days: Option<f64>,
    /// Spend in the newer half of `recent_spend` against the older half, as a change (−0.4:
    /// down 40%); `null` without spend in the older half.
    pub spend_change: Option<f64>,
    /// Intervals on the customer's own numbers (unless `intervals` is false).
    #[serde(flatten)]
    pub intervals: Option<ValueIntervals>,
    pub horizons: Vec<HorizonOut<'a>>,
    /// `given` or `derived` (from the RFM features with the model's cut-points); features only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment_from: Option<&'static str>,
    /// Features that took a default; features only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub defaulted: Option<Vec<&'static str>>,
}

/// The response body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PredictResponse<'a> {
    pub model_id: &'a str,
    pub as_of: NaiveDate,
    pub horizon: usize,
    pub discount_rate: f64,
    pub predictions: Vec<Prediction<'a>>,
}

mod place;
use place::{Placed, place};

pub(super) fn output<'a>(
    model: &'a Served,
    id: &'a str,
    now: &CustomerNow,
    forecasts: &Forecasts,
    features: Option<(&'static str, Vec<&'static str>)>,
    as_of: NaiveDate,
) -> Prediction<'a> {
    let states = &model.segments.states;
    let params = forecasts.forecaster.params();
    let outlook = model.purchases.as_ref();
    let purchases = outlook.and_then(|p| p.of(now, as_of, params.horizon));
    // A customer with its own first-step row keeps its state's intervals (see the README).
    let mut f = forecasts.forecaster.customer_given(now.state, now.first_step.as_deref(), now.next_spend);
    if let (Some(o), Some(own)) = (outlook, &purchases) {
        o.serve_into(&mut f, own, params.discount_rate);
    }
    let standing = purchases
        .as_ref()
        .map(|p| crate::model::place::purchases::standing(now, p, params.discount_rate, f.value_horizon));
    let bands = forecasts.bands.as_ref().map(|b| b.customer(now.state, now.next_spend, now.next_spend_se));
    let mut horizon_bands = bands.as_ref().map(|b| b.horizons.iter());
    Prediction {
        customer_id: id,
        segment: &states[now.state],
        previous_segment: now.previous_state.map(|s| states[s].as_str()),
        rfm: now.last.as_ref().map(Rfm::from),
        purchase_history: now.history,
        recent_spend: now.recent_spend.clone(),
        next_spend: now.next_spend,
        next_spend_se: now.next_spend_se,
        expected_periods_to_lapse: f.expected_periods_to_lapse,
        value_horizon: f.value_horizon,
        value_infinite: f.value_infinite,
        p_alive: purchases.as_ref().map(|p| p.p_alive),
        value_if_retained: standing.map(|s| s.value_if_retained),
        value_at_risk: standing.map(|s| s.value_at_risk),
        usual_gap_days: standing.and_then(|s| s.usual_gap_days),
        spend_change: standing.and_then(|s| s.spend_change),
        intervals: bands.as_ref().map(|b| ValueIntervals::from(b)),
        horizons: f
            .horizons
            .into_iter()
            .map(|h| HorizonOut {
                intervals: horizon_bands.as_mut().and_then(|it| it.next()).map(|b| HorizonIntervals::new(b, states)),
                h: h.h,
                distribution: ByState { names: states, values: h.distribution },
                most_likely: &states[h.most_likely],
                p_key: h.p_key,
                churn: h.churn,
                reactivation: h.reactivation,
                expected_spend: h.expected_spend,
                expected_purchases: purchases.as_ref().map(|p| p.expected_purchases[h.h - 1]),
                p_no_purchase: purchases.as_ref().map(|p| p.p_no_purchase[h.h - 1]),
                p_leave_tier: purchases.as_ref().and_then(|p| p.p_leave_tier.get(h.h - 1).copied()),
                p_key_own: purchases.as_ref().and_then(|p| p.p_key.get(h.h - 1).copied()),
            })
            .collect(),
        segment_from: features.as_ref().map(|f| f.0),
        defaulted: features.map(|f| f.1),
    }
}

/// A request checked and placed, ready to forecast customer by customer.
struct Prepared<'a> {
    req: &'a PredictRequest,
    model: &'a Served,
    placed: Vec<Placed>,
    snap: Option<crate::model::place::Snapshot>,
    forecasts: std::sync::Arc<Forecasts>,
    next_value: crate::domain::value::NextValue,
    as_of: NaiveDate,
}

impl<'a> Prepared<'a> {
    fn new(req: &'a PredictRequest, model: &'a Served) -> Result<Self, ApiError> {
        let (placed, tx, attrs) = place(req, model)?;
        let params = ForecastParams { horizon: req.horizon, discount_rate: req.discount_rate };
        let forecasts = model.forecasts(params, req.intervals)?;
        let mut as_of = model.periods.as_of;
        let snap = if tx.customer_ids.is_empty() {
            None
        } else {
            let activity = crate::model::place::activity_of(&tx, model)
                .map_err(|e| ApiError::invalid("customers", e.to_string()))?;
            let s = snapshot(&activity, model, req.as_of, attrs.as_ref()).map_err(|e| {
                ApiError::invalid(if req.as_of.is_some() { "as_of" } else { "customers" }, e.to_string())
            })?;
            as_of = s.as_of;
            Some(s)
        };
        Ok(Self { req, model, placed, snap, forecasts, next_value: model.next_value(), as_of })
    }

    /// The prediction of the request's `i`-th customer; `x` is scratch for its features.
    fn prediction(&self, i: usize, x: &mut Vec<f64>) -> Prediction<'a> {
        let model: &'a ModelArtifact = self.model;
        let id: &'a str = self.req.customers[i].id.as_str();
        match &self.placed[i] {
            Placed::Features(c, history) => {
                let design = model.spend.model.design();
                x.resize(design.len(), 0.0);
                design.features(c.state, &c.row, &c.attributes, x);
                let (next_spend, next_spend_se) = self.next_value.predict(&model.spend.model, c.state, x);
                let now = CustomerNow {
                    customer: 0,
                    state: c.state,
                    previous_state: None,
                    last: Some(c.row),
                    next_spend,
                    next_spend_se,
                    first_step: self.model.first_step.as_ref().and_then(|f| f.row_of(c.state, &c.row, &c.attributes)),
                    history: *history,
                    recent_spend: self.req.customers[i].recent_spend.clone().unwrap_or_default(),
                };
                output(self.model, id, &now, &self.forecasts, Some((c.segment_from, c.defaulted.clone())), self.as_of)
            }
            Placed::Transactions(k) => {
                let now = &self.snap.as_ref().expect("a snapshot for transaction customers").customers[*k as usize];
                output(self.model, id, now, &self.forecasts, None, self.as_of)
            }
        }
    }
}

/// Checks, places and forecasts every customer of a request (pure; may run on the blocking pool).
pub fn predict<'a>(req: &'a PredictRequest, model: &'a Served) -> Result<PredictResponse<'a>, ApiError> {
    let p = Prepared::new(req, model)?;
    let mut x = Vec::new();
    let predictions = (0..p.placed.len()).map(|i| p.prediction(i, &mut x)).collect();
    Ok(PredictResponse {
        model_id: &model.id,
        as_of: p.as_of,
        horizon: req.horizon,
        discount_rate: req.discount_rate,
        predictions,
    })
}

/// Bodies from this size on are parsed, computed and serialized on the blocking pool.
const BLOCKING_BODY_BYTES: usize = 256 * 1024;

/// Batches from this many customers are forecast and serialized in parallel chunks.
const PARALLEL_FROM: usize = 2_000;

/// The response body of a request, serialized, as consecutive pieces. Large batches are
/// forecast and serialized in chunks on all cores; the pieces, in order, are the bytes of a
/// serial [`crate::app::numbers::to_vec`] of [`predict`]'s response (they are sent as they are, without
/// being copied into one buffer).
///
/// Before the bulk of the work, the response's size is estimated from the first customer's
/// answer and refused (422 on `customers`) when over `max_response_bytes`; the loops check the
/// `deadline` every [`DEADLINE_EVERY`] customers.
pub fn respond(
    req: &PredictRequest,
    model: &Served,
    max_response_bytes: usize,
    deadline: Deadline,
) -> Result<Vec<Vec<u8>>, ApiError> {
    let internal = |e: serde_json::Error| ApiError::Internal(e.to_string());
    use crate::app::numbers::{to_vec, to_writer};
    let n = req.customers.len();
    let p = Prepared::new(req, model)?;
    deadline.check()?;
    // The envelope with an empty list, split before its closing `]}`; the predictions go between.
    let mut head = to_vec(&PredictResponse {
        model_id: &model.id,
        as_of: p.as_of,
        horizon: req.horizon,
        discount_rate: req.discount_rate,
        predictions: Vec::new(),
    })
    .map_err(internal)?;
    let tail = head.split_off(head.len() - 2);
    debug_assert_eq!(tail, b"]}");
    // The first prediction, serialized once: its size gives the estimate and each buffer's
    // capacity, and its bytes open the first chunk.
    let first = to_vec(&p.prediction(0, &mut Vec::new())).map_err(internal)?;
    let one = first.len() + 1;
    let estimate = head.len() + n.saturating_mul(one);
    if estimate > max_response_bytes {
        return Err(ApiError::invalid(
            "customers",
            format!(
                "the response would be about {} MB, over the server's limit of {} MB: send fewer customers, a \
                 shorter horizon, or \"intervals\": false",
                estimate.div_ceil(1 << 20),
                max_response_bytes >> 20
            ),
        ));
    }
    // Asked once: on Linux the answer reads cgroup files, too slow for every request.
    let threads = if n < PARALLEL_FROM { 1 } else { rayon::current_num_threads().min(8) };
    let per = n.div_ceil(threads);
    let chunk = |start: usize| -> Result<Vec<u8>, ApiError> {
        let mut buf = Vec::with_capacity(per * (one + one / 8 + 2));
        let mut x = Vec::new();
        let from = if start == 0 {
            buf.extend_from_slice(&first);
            1
        } else {
            start
        };
        for i in from..(start + per).min(n) {
            if i > 0 {
                buf.push(b',');
            }
            if i % DEADLINE_EVERY == 0 {
                deadline.check()?;
            }
            to_writer(&mut buf, &p.prediction(i, &mut x)).map_err(internal)?;
        }
        Ok(buf)
    };
    let starts: Vec<usize> = (0..n).step_by(per).collect();
    let chunks: Vec<Result<Vec<u8>, ApiError>> = if threads == 1 {
        starts.into_iter().map(chunk).collect()
    } else {
        starts.into_par_iter().map(chunk).collect()
    };
    if threads == 1 {
        // One buffer for a small answer: sent as a plain body, not a stream.
        let mut body = head;
        for c in chunks {
            body.extend_from_slice(&c?);
        }
        body.extend_from_slice(&tail);
        return Ok(vec![body]);
    }
    let mut pieces = Vec::with_capacity(chunks.len() + 2);
    pieces.push(head);
    for c in chunks {
        pieces.push(c?);
    }
    pieces.push(tail);
    Ok(pieces)
}

/// How often (in customers) the forecast loops check the request's deadline.
pub const DEADLINE_EVERY: usize = 64;

/// Whether a request by features or transactions is light enough to answer on the async
/// thread: a built forecaster, few (customer × horizon) cells, a small body.
fn is_light(req: &PredictRequest, model: &Served, blocking_from: usize) -> bool {
    let params = ForecastParams { horizon: req.horizon, discount_rate: req.discount_rate };
    let transactions: usize = req.customers.iter().filter_map(|c| c.transactions.as_ref()).map(Vec::len).sum();
    req.customers.len() < blocking_from
        && req.customers.len().saturating_mul(req.horizon) <= LIGHT_CELLS
        && transactions <= LIGHT_CELLS
        && model.has_forecasts(params, req.intervals)
}

/// Most (customer × horizon) cells, or transactions, of a request answered on the async thread.
const LIGHT_CELLS: usize = 2_000;

/// Forecasts for 1..=10,000 customers, each by features or by transactions.
#[utoipa::path(post, path = "/v1/predict", tag = "predict", security(("api_key" = []), ("bearer" = [])),
    request_body = PredictRequest, responses(
        (status = 200, description = "One prediction per customer, in request order", body = PredictResponse),
        (status = 400, description = "Not JSON", body = ErrorResponse),
        (status = 413, description = "Body too large", body = ErrorResponse),
        (status = 415, description = "Not application/json", body = ErrorResponse),
        (status = 422, description = "Invalid values, each named by its JSON path", body = ErrorResponse),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse),
        (status = 403, description = "The key's role may not use this route", body = ErrorResponse),
        (status = 503, description = "No model loaded (`no_model`)", body = ErrorResponse)))]
pub async fn handler(State(state): State<AppState>, JsonBody(body): JsonBody) -> Result<Response, ApiError> {
    let model = state.model()?;
    let max = state.limits.max_response_bytes;
    let mut pieces = if body.len() >= BLOCKING_BODY_BYTES {
        super::compute(&state, true, move |d| respond(&parse(&body)?, &model, max, d)).await?
    } else {
        let req: PredictRequest = parse(&body)?;
        let heavy = !is_light(&req, &model, state.limits.blocking_from);
        super::compute(&state, heavy, move |d| respond(&req, &model, max, d)).await?
    };
    let length: usize = pieces.iter().map(Vec::len).sum();
    let body = if pieces.len() == 1 {
        axum::body::Body::from(pieces.pop().expect("one piece"))
    } else {
        let stream = futures_util::stream::iter(
            pieces.into_iter().map(|p| Ok::<_, std::convert::Infallible>(bytes::Bytes::from(p))),
        );
        axum::body::Body::from_stream(stream)
    };
    Ok(([(header::CONTENT_TYPE, "application/json".to_string()), (header::CONTENT_LENGTH, length.to_string())], body)
        .into_response())
}

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/predict", post(handler))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both paths of `respond` — serial for small batches, parallel chunks for large ones — give
    /// the same bytes as serializing [`predict`]'s whole response.
    #[test]
    fn small_and_large_batches_serialize_to_the_same_bytes_as_the_whole_response() {
        let store = crate::store::ModelStore::new("models");
        let id = store.current().unwrap().expect("the committed default model");
        let served = Served::new(store.load(&id).unwrap(), None);
        let segments = ["key", "core", "occasional", "dormant", "lapsed", "new"];
        let customers: Vec<serde_json::Value> = (0..PARALLEL_FROM + 777)
            .map(|i| {
                serde_json::json!({"id": format!("C{i}"), "segment": segments[i % 6], "monetary": 50 + i % 900,
                    "recency_days": i % 80, "frequency": 1 + i % 5})
            })
            .collect();
        for (n, intervals) in [(customers.len(), true), (customers.len(), false), (3, true), (1, false)] {
            let body = serde_json::json!({"customers": &customers[..n], "intervals": intervals}).to_string();
            let req: PredictRequest = parse(body.as_bytes()).unwrap();
            let serial = crate::app::numbers::to_vec(&predict(&req, &served).unwrap()).unwrap();
            let pieces =
                respond(&req, &served, usize::MAX, Deadline::after(std::time::Duration::from_secs(60))).unwrap();
            assert_eq!(pieces.len() == 1, n < PARALLEL_FROM, "{n} customers: {} pieces", pieces.len());
            assert_eq!(pieces.concat(), serial, "{n} customers");
        }
    }
}
