//! The model being served: `GET /v1/model` (what it is) and `GET /v1/model/transitions` (its
//! chain).

use super::AppState;
use super::error::{ApiError, ErrorResponse};
use crate::model::artifact::ModelArtifact;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

/// A model's description: id, as-of date, period unit and spans, states, segment sizes by
/// period, data fingerprint, thresholds, spend regression and backtest.
pub fn describe(m: &ModelArtifact) -> Value {
    let spend = &m.spend.model;
    json!({
        "id": m.id,
        "kam_version": m.kam_version,
        "schema_version": m.schema_version,
        "as_of": m.periods.as_of,
        "period": {
            "unit": m.periods.unit.to_string(),
            "periods": m.periods.spans.len(),
            "first_day": m.periods.spans.first().map(|s| s.0),
            "last_day": m.periods.spans.last().map(|s| s.1),
        },
        "states": m.segments.states,
        "key_state": m.key_index().map(|k| m.segments.states[k].clone()),
        "lapsed_states": m.segments.states.iter().zip(m.lapsed_states()).filter(|(_, l)| *l).map(|(s, _)| s.clone()).collect::<Vec<_>>(),
        "scheme": m.segments.scheme,
        "thresholds": m.segments.thresholds,
        "data": m.data,
        "period_spans": m.periods.spans,
        "sizes_by_period": m.segments.sizes_by_period,
        "segment_sizes_last_period": m.segments.sizes_by_period.last().map(|sizes| {
            m.segments.states.iter().cloned().zip(sizes.iter().map(|n| json!(n))).collect::<serde_json::Map<_, _>>()
        }),
        "backtest": m.backtest,
        "spend": {
            "model": spend.kind(),
            "value_basis": m.spend.value_basis,
            "selection": m.spend.selection,
            "features": spend.feature_names(),
            "attributes": spend.design().attributes,
            "observations": spend.observations(),
            "r_squared": spend.r_squared(),
            "rmse": spend.rmse(),
            "spend_by_state": m.segments.states.iter().cloned().zip(m.spend.spend_by_state.iter().map(|v| json!(v))).collect::<serde_json::Map<_, _>>(),
        },
    })
}

/// The served model: id, as-of date, period unit, states, thresholds, data fingerprint, spend
/// regression and backtest.
#[utoipa::path(get, path = "/v1/model", tag = "model", security(("api_key" = []), ("bearer" = [])), responses(
        (status = 200, description = "The model's description", body = serde_json::Value),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse),
        (status = 403, description = "The key's role may not use this route", body = ErrorResponse),
        (status = 503, description = "No model loaded (`no_model`)", body = ErrorResponse)))]
pub async fn model(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(describe(&*state.model()?)))
}

/// The served model's chain: states, prior, counts, matrix with credible intervals, allowed
/// moves, diagnostics (time-homogeneity test).
#[utoipa::path(get, path = "/v1/model/transitions", tag = "model", security(("api_key" = []), ("bearer" = [])), responses(
        (status = 200, description = "The transition model", body = serde_json::Value),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse),
        (status = 403, description = "The key's role may not use this route", body = ErrorResponse),
        (status = 503, description = "No model loaded (`no_model`)", body = ErrorResponse)))]
pub async fn transitions(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(chain(&state.model()?.artifact)))
}

/// A model's chain: states, prior, counts, matrix with credible intervals, allowed moves, and its
/// diagnostics — every field of the artifact's `transitions` beside the model, the per-period
/// counts and the move total (the time-homogeneity test, and any test added there later).
pub fn chain(m: &ModelArtifact) -> Value {
    let t = &m.transitions.model;
    let n = t.states().len();
    let bound = |upper: bool| -> Vec<Vec<f64>> {
        (0..n).map(|i| (0..n).map(|j| if upper { t.interval(i, j).1 } else { t.interval(i, j).0 }).collect()).collect()
    };
    let mut diagnostics = match serde_json::to_value(&m.transitions) {
        Ok(Value::Object(fields)) => fields,
        _ => serde_json::Map::new(),
    };
    for field in ["model", "counts_by_period", "moves"] {
        diagnostics.remove(field);
    }
    json!({
        "model_id": m.id,
        "states": t.states(),
        "prior": t.prior(),
        "moves": m.transitions.moves,
        "counts": t.counts(),
        "matrix": t.matrix(),
        "credible_level": t.credible_level(),
        "interval_lo": bound(false),
        "interval_hi": bound(true),
        "allowed": t.allowed(),
        "unobserved_origins": t.unobserved_origins(),
        "diagnostics": diagnostics,
    })
}

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/model", get(model)).route("/v1/model/transitions", get(transitions))
}
