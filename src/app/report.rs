//! The data of `kam report`: one object `{model, transitions, forecast, customers}` whose parts
//! are the API's own views ([`super::views`]), drawn by the page of [`super::page`]. Customers come
//! from a `kam score` file (CSV or JSON Lines) or else from the customer snapshot stored beside
//! the model, forecast here.

use super::views::{self, ForecastResponse, SummaryResponse};
use crate::domain::forecast::intervals::IntervalParams;
use crate::domain::forecast::portfolio::{Outlook, OutlookByState, Standing};
use crate::domain::forecast::{ForecastError, ForecastParams, MAX_HORIZON};
use crate::model::artifact::ModelArtifact;
#[cfg(doc)]
use crate::model::place::CustomerLine;
use crate::store::snapshot::{self, CustomerSnapshot, SnapshotError};
use serde_json::{Value, json};
use std::io::BufRead;
use std::path::Path;

/// Why the report's data cannot be assembled.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{file}: line {line}: {problem}")]
    Line { file: String, line: u64, problem: String },
    #[error("{file}: {problem}")]
    File { file: String, problem: String },
    #[error("--scores: {0}")]
    Scores(String),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Forecast(#[from] ForecastError),
}

/// Customers read for the report, with the horizon and discount rate their values stand for
/// (`None`: not recorded in the file) and where they came from.
#[derive(Debug)]
pub struct ReportCustomers {
    pub outlooks: Vec<Outlook>,
    pub horizon: usize,
    pub discount_rate: Option<f64>,
    pub source: String,
}

/// What the report shows.
#[derive(Debug)]
pub struct ReportData {
    /// `{model, transitions, forecast, customers}`.
    pub data: Value,
    /// The customers behind `customers`, if any.
    pub customers: Option<ReportCustomers>,
}

/// Assembles the report of `model` (stored in `models_dir`) for `params`, with customers from
/// `scores` or the stored snapshot, and `top` key accounts in the at-risk table.
pub fn report_data(
    model: &ModelArtifact,
    models_dir: &Path,
    scores: Option<&Path>,
    params: ForecastParams,
    top: usize,
) -> Result<ReportData, ReportError> {
    let customers = read_customers(model, models_dir, scores, params)?;
    let customers_view = match &customers {
        Some(c) => serde_json::to_value(SummaryResponse::new(
            model,
            &c.outlooks,
            c.horizon,
            c.discount_rate,
            c.source.clone(),
            top,
        ))
        .expect("a summary serializes"),
        None => json!({"missing": format!(
            "No per-customer data: model {} has no customer snapshot and no --scores file was given.", model.id
        )}),
    };
    let data = json!({
        "model": views::ModelView::new(model),
        "transitions": views::ChainView::new(model),
        "forecast": population_forecast(model, params.horizon),
        "customers": customers_view,
    });
    Ok(ReportData { data, customers })
}

/// The population forecast as `POST /v1/forecast` answers it for the training mix.
fn population_forecast(model: &ModelArtifact, horizon: usize) -> Value {
    let bands = model.bands(ForecastParams { horizon, discount_rate: 0.0 }, IntervalParams::default());
    let response = ForecastResponse::new(model, &model.training_mix(), "training", horizon, 0.0, bands.as_ref());
    serde_json::to_value(response).expect("a forecast serializes")
}

fn read_customers(
    model: &ModelArtifact,
    models_dir: &Path,
    scores: Option<&Path>,
    params: ForecastParams,
) -> Result<Option<ReportCustomers>, ReportError> {
    let forecaster = model.forecaster(params)?;
    let by_state = OutlookByState::new(&forecaster, model.segments.states.len());
    let purchases = crate::model::place::purchases::PurchaseOutlook::new(model);
    let as_of = model.periods.as_of;
    let from_snapshot = |outlooks, source: String| ReportCustomers {
        outlooks,
        horizon: params.horizon,
        discount_rate: Some(params.discount_rate),
        source,
    };
    let Some(path) = scores else {
        let Some(snap) = CustomerSnapshot::load(&snapshot::path(models_dir, &model.id), model)? else {
            return Ok(None);
        };
        return Ok(Some(from_snapshot(
            snap.outlooks(&by_state, &forecaster, purchases.as_ref(), as_of),
            "snapshot".into(),
        )));
    };
    let file = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ext.as_deref() {
        Some("jsonl") | Some("ndjson") => {
            if horizon_of_jsonl(path).is_none() {
                // Snapshot lines (no forecast of their own): forecast here, as the stored one.
                let snap = CustomerSnapshot::load(path, model)?.unwrap_or_default();
                return Ok(Some(from_snapshot(snap.outlooks(&by_state, &forecaster, purchases.as_ref(), as_of), file)));
            }
            let outlooks = read_jsonl(path, model)?;
            // kam score's JSON Lines carry one horizon entry per period.
            let horizon = horizon_of_jsonl(path).unwrap_or(params.horizon);
            Ok(Some(ReportCustomers { outlooks, horizon, discount_rate: None, source: file }))
        }
        Some("csv") | Some("txt") => {
            let (outlooks, horizon) = read_csv(path, model)?;
            Ok(Some(ReportCustomers { outlooks, horizon, discount_rate: None, source: file }))
        }
        Some(other) => {
            Err(ReportError::Scores(format!("cannot read .{other} files; use kam score --out FILE.csv or FILE.jsonl")))
        }
        None => Err(ReportError::Scores(format!(
            "{} has no extension; use a .csv or .jsonl file written by kam score",
            path.display()
        ))),
    }
}

/// Reads a JSON Lines file of `kam score` lines: value, churn and standing as written.
fn read_jsonl(path: &Path, model: &ModelArtifact) -> Result<Vec<Outlook>, ReportError> {
    #[derive(serde::Deserialize)]
    struct Horizon {
        churn: f64,
        #[serde(default)]
        p_leave_tier: Option<f64>,
        #[serde(default)]
        p_key_own: Option<f64>,
        #[serde(default)]
        p_no_purchase: Option<f64>,
    }
    #[derive(serde::Deserialize)]
    struct Recency {
        recency_days: u32,
    }
    /// What the report needs of a `kam score` line.
    #[derive(serde::Deserialize)]
    struct Line {
        customer_id: String,
        segment: String,
        #[serde(default)]
        previous_segment: Option<String>,
        value_horizon: f64,
        horizons: Vec<Horizon>,
        #[serde(default)]
        p_alive: Option<f64>,
        #[serde(default)]
        value_at_risk: Option<f64>,
        #[serde(default)]
        value_if_retained: Option<f64>,
        #[serde(default)]
        rfm: Option<Recency>,
        #[serde(default)]
        usual_gap_days: Option<f64>,
        #[serde(default)]
        spend_change: Option<f64>,
    }
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| ReportError::Read { path: name.clone(), source })?;
    let bad = |line: usize, problem: String| ReportError::Line { file: name.clone(), line: line as u64, problem };
    let mut out = Vec::new();
    for (k, line) in std::io::BufReader::new(file).lines().enumerate() {
        let n = k + 1;
        let line = line.map_err(|e| bad(n, e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let l: Line = serde_json::from_str(&line).map_err(|e| bad(n, e.to_string()))?;
        let state = state_of(model, &l.segment).map_err(|p| bad(n, p))?;
        let previous_state =
            l.previous_segment.as_deref().map(|s| state_of(model, s)).transpose().map_err(|p| bad(n, p))?;
        let last = l.horizons.last().ok_or_else(|| bad(n, "no horizons".into()))?;
        let standing = l.value_at_risk.zip(l.value_if_retained).map(|(value_at_risk, value_if_retained)| Standing {
            value_if_retained,
            value_at_risk,
            p_leave_tier: last.p_leave_tier,
            p_key: last.p_key_own,
            p_no_purchase: last.p_no_purchase.unwrap_or(f64::NAN),
            silent_days: l.rfm.as_ref().map_or(0, |r| r.recency_days),
            usual_gap_days: l.usual_gap_days,
            spend_change: l.spend_change,
        });
        out.push(Outlook {
            customer_id: l.customer_id,
            state,
            value: l.value_horizon,
            churn: last.churn,
            p_alive: l.p_alive,
            previous_state,
            standing,
        });
    }
    Ok(out)
}

fn state_of(model: &ModelArtifact, segment: &str) -> Result<usize, String> {
    model
        .state_index(segment)
        .ok_or_else(|| format!("unknown segment {segment:?}; the model's segments are {:?}", model.segments.states))
}

/// Reads `kam score`'s CSV: `customer_id`, `segment`, `value_horizon` and the churn column of
/// the last horizon (`h<H>_churn`). Returns the customers and H.
fn read_csv(path: &Path, model: &ModelArtifact) -> Result<(Vec<Outlook>, usize), ReportError> {
    let name = path.display().to_string();
    let file_error = |problem: String| ReportError::File { file: name.clone(), problem };
    let mut r = csv::Reader::from_path(path)
        .map_err(|e| ReportError::Read { path: name.clone(), source: std::io::Error::other(e) })?;
    let header = r.headers().map_err(|e| file_error(format!("line 1: {e}")))?.clone();
    let col = |c: &str| {
        header
            .iter()
            .position(|h| h == c)
            .ok_or_else(|| file_error(format!("no column {c:?} (is it a kam score file?)")))
    };
    let (id, segment, value) = (col("customer_id")?, col("segment")?, col("value_horizon")?);
    let horizon = (1..=MAX_HORIZON)
        .rev()
        .find(|h| header.iter().any(|c| c == format!("h{h}_churn")))
        .ok_or_else(|| file_error("no churn column h1_churn, h2_churn, … (is it a kam score file?)".into()))?;
    let churn = col(&format!("h{horizon}_churn"))?;
    let optional = |c: &str| header.iter().position(|h| h == c);
    let p_alive = optional("p_alive");
    let previous = optional("previous_segment");
    let (value_at_risk, value_if_retained) = (optional("value_at_risk"), optional("value_if_retained"));
    let at_horizon = |c: &str| optional(&format!("h{horizon}_{c}"));
    let (p_leave_tier, p_key, p_no_purchase) =
        (at_horizon("p_leave_tier"), at_horizon("p_key_own"), at_horizon("p_no_purchase"));
    let (recency, gap, change) = (optional("recency_days"), optional("usual_gap_days"), optional("spend_change"));
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| file_error(format!("bad CSV: {e}")))?;
        let line = rec.position().map_or(0, |p| p.line());
        let bad = |problem: String| ReportError::Line { file: name.clone(), line, problem };
        let number = |i: usize| -> Result<f64, ReportError> {
            let text = rec.get(i).unwrap_or("");
            text.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| bad(format!("column {:?}: not a number: {text:?}", &header[i])))
        };
        // An optional number: an empty cell (or no column) is none.
        let maybe =
            |i: Option<usize>| i.and_then(|i| rec.get(i)).and_then(|t| t.parse::<f64>().ok()).filter(|x| x.is_finite());
        let state = state_of(model, rec.get(segment).unwrap_or("")).map_err(&bad)?;
        let previous_state = previous
            .and_then(|i| rec.get(i))
            .filter(|t| !t.is_empty())
            .map(|t| state_of(model, t))
            .transpose()
            .map_err(&bad)?;
        let standing =
            maybe(value_at_risk).zip(maybe(value_if_retained)).map(|(value_at_risk, value_if_retained)| Standing {
                value_if_retained,
                value_at_risk,
                p_leave_tier: maybe(p_leave_tier),
                p_key: maybe(p_key),
                p_no_purchase: maybe(p_no_purchase).unwrap_or(f64::NAN),
                silent_days: maybe(recency).map_or(0, |d| d as u32),
                usual_gap_days: maybe(gap),
                spend_change: maybe(change),
            });
        out.push(Outlook {
            customer_id: rec.get(id).unwrap_or("").to_string(),
            state,
            value: number(value)?,
            churn: number(churn)?,
            p_alive: maybe(p_alive),
            previous_state,
            standing,
        });
    }
    Ok((out, horizon))
}

/// The number of horizons on the first line of a `kam score` JSON Lines file.
fn horizon_of_jsonl(path: &Path) -> Option<usize> {
    let file = std::fs::File::open(path).ok()?;
    let first = std::io::BufReader::new(file).lines().find_map(|l| l.ok().filter(|l| !l.trim().is_empty()))?;
    let v: Value = serde_json::from_str(&first).ok()?;
    v["horizons"].as_array().map(Vec::len)
}
