//! `kam report`: one self-contained HTML file (no network needed to view it) with the model's
//! charts — segment sizes and their forecast, transition heatmap, value concentration, churn
//! risk, key accounts most at risk, backtest and diagnostics.
//!
//! The page embeds the same JSON the API answers (`GET /v1/model`, `GET /v1/model/transitions`,
//! `POST /v1/forecast`, `GET /v1/model/customers/summary`) and the same script the dashboard
//! runs (see [`crate::report`]). Customers come from `--scores` (a `kam score` file: CSV or
//! JSON Lines) or else from the customer snapshot stored beside the model.

use super::input::ModelArgs;
use super::progress::Progress;
use crate::domain::forecast::intervals::IntervalParams;
use crate::domain::forecast::portfolio::{Outlook, OutlookByState, PortfolioParams, summarise};
use crate::domain::forecast::{ForecastParams, Forecaster};
use crate::http::customers::{SummaryResponse, snapshot_path};
use crate::http::forecast::ForecastResponse;
use crate::model::artifact::ModelArtifact;
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::io::BufRead;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub store: ModelArgs,
    /// Per-customer forecasts written by `kam score` (.csv or .jsonl). Default: the customer
    /// snapshot stored beside the model (`<models>/<id>.customers.jsonl`), forecast here.
    #[arg(long)]
    pub scores: Option<PathBuf>,
    /// Periods of the population forecast (and of the customers' value and churn when they come
    /// from the snapshot; a scores file keeps its own horizon).
    #[arg(long, default_value_t = 4)]
    pub horizon: usize,
    /// Discount rate per period for the customers' expected value (snapshot only).
    #[arg(long, default_value_t = 0.025)]
    pub discount_rate: f64,
    /// Key accounts listed in the at-risk table.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// The HTML file to write.
    #[arg(long)]
    pub out: PathBuf,
}

/// Customers read from a file, with the horizon and discount rate their values stand for
/// (`None`: not recorded in the file).
struct Customers {
    outlooks: Vec<Outlook>,
    horizon: usize,
    discount_rate: Option<f64>,
    source: String,
}

/// Reads a JSON Lines file of `kam score` lines (value and churn taken as written) or snapshot
/// lines (`customer_id`, `segment`, `next_spend`: value and churn forecast with `by_state`).
fn read_jsonl(
    path: &Path,
    model: &ModelArtifact,
    by_state: &OutlookByState,
    forecaster: &Forecaster,
) -> anyhow::Result<(Vec<Outlook>, bool)> {
    #[derive(serde::Deserialize)]
    struct ChurnAt {
        churn: f64,
    }
    #[derive(serde::Deserialize)]
    struct Line {
        customer_id: String,
        segment: String,
        next_spend: Option<f64>,
        value_horizon: Option<f64>,
        #[serde(default)]
        horizons: Vec<ChurnAt>,
        #[serde(default)]
        first_step: Option<Vec<f64>>,
    }
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path.display();
    let mut out = Vec::new();
    let mut scored = true;
    for (k, line) in std::io::BufReader::new(file).lines().enumerate() {
        let n = k + 1;
        let line = line.with_context(|| format!("{name}: line {n}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let l: Line = serde_json::from_str(&line).with_context(|| format!("{name}: line {n}"))?;
        let state = model.state_index(&l.segment).with_context(|| {
            format!(
                "{name}: line {n}: unknown segment {:?}; the model's segments are {:?}",
                l.segment, model.segments.states
            )
        })?;
        let (value, churn) = match (l.value_horizon, l.horizons.last(), l.next_spend) {
            (Some(v), Some(h), _) => (v, h.churn),
            (_, _, Some(next_spend)) => {
                scored = false;
                match &l.first_step {
                    Some(q) if q.len() == model.segments.states.len() => {
                        let f = forecaster.customer_with_first_step(state, q, next_spend);
                        (f.value_horizon, f.horizons.last().map_or(0.0, |h| h.churn))
                    }
                    _ => by_state.value_and_churn(state, next_spend),
                }
            }
            _ => bail!("{name}: line {n}: neither value_horizon with horizons (kam score) nor next_spend (a snapshot)"),
        };
        out.push(Outlook { customer_id: l.customer_id, state, value, churn });
    }
    Ok((out, scored))
}

/// Reads `kam score`'s CSV: `customer_id`, `segment`, `value_horizon` and the churn column of
/// the last horizon (`h<H>_churn`). Returns the customers and H.
fn read_csv(path: &Path, model: &ModelArtifact) -> anyhow::Result<(Vec<Outlook>, usize)> {
    let name = path.display();
    let mut r = csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let header = r.headers().with_context(|| format!("{name}: line 1"))?.clone();
    let col = |c: &str| {
        header.iter().position(|h| h == c).with_context(|| format!("{name}: no column {c:?} (is it a kam score file?)"))
    };
    let (id, segment, value) = (col("customer_id")?, col("segment")?, col("value_horizon")?);
    let horizon = (1..=120)
        .rev()
        .find(|h| header.iter().any(|c| c == format!("h{h}_churn")))
        .with_context(|| format!("{name}: no churn column h1_churn, h2_churn, … (is it a kam score file?)"))?;
    let churn = col(&format!("h{horizon}_churn"))?;
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec.with_context(|| format!("{name}: bad CSV"))?;
        let line = rec.position().map_or(0, |p| p.line());
        let number = |i: usize| -> anyhow::Result<f64> {
            let text = rec.get(i).unwrap_or("");
            text.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .with_context(|| format!("{name}: line {line}, column {:?}: not a number: {text:?}", &header[i]))
        };
        let seg = rec.get(segment).unwrap_or("");
        let state = model.state_index(seg).with_context(|| {
            format!(
                "{name}: line {line}: unknown segment {seg:?}; the model's segments are {:?}",
                model.segments.states
            )
        })?;
        out.push(Outlook {
            customer_id: rec.get(id).unwrap_or("").to_string(),
            state,
            value: number(value)?,
            churn: number(churn)?,
        });
    }
    Ok((out, horizon))
}

fn read_customers(a: &Args, model: &ModelArtifact, params: ForecastParams) -> anyhow::Result<Option<Customers>> {
    let forecaster = model.forecaster(params)?;
    let by_state = OutlookByState::new(&forecaster, model.segments.states.len());
    let from_snapshot = |outlooks| Customers {
        outlooks,
        horizon: params.horizon,
        discount_rate: Some(params.discount_rate),
        source: "snapshot".into(),
    };
    let Some(path) = &a.scores else {
        let path = snapshot_path(&a.store.models, &model.id);
        if !path.exists() {
            return Ok(None);
        }
        let (outlooks, _) = read_jsonl(&path, model, &by_state, &forecaster)?;
        return Ok(Some(from_snapshot(outlooks)));
    };
    let file = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ext.as_deref() {
        Some("jsonl") | Some("ndjson") => {
            let (outlooks, scored) = read_jsonl(path, model, &by_state, &forecaster)?;
            if !scored {
                return Ok(Some(Customers { source: file, ..from_snapshot(outlooks) }));
            }
            // kam score's JSON Lines carry one horizon entry per period.
            let horizon = horizon_of_jsonl(path).unwrap_or(params.horizon);
            Ok(Some(Customers { outlooks, horizon, discount_rate: None, source: file }))
        }
        Some("csv") | Some("txt") => {
            let (outlooks, horizon) = read_csv(path, model)?;
            Ok(Some(Customers { outlooks, horizon, discount_rate: None, source: file }))
        }
        Some(other) => bail!("--scores: cannot read .{other} files; use kam score --out FILE.csv or FILE.jsonl"),
        None => bail!("--scores: {} has no extension; use a .csv or .jsonl file written by kam score", path.display()),
    }
}

/// The number of horizons on the first line of a `kam score` JSON Lines file.
fn horizon_of_jsonl(path: &Path) -> Option<usize> {
    let file = std::fs::File::open(path).ok()?;
    let first = std::io::BufReader::new(file).lines().find_map(|l| l.ok().filter(|l| !l.trim().is_empty()))?;
    let v: Value = serde_json::from_str(&first).ok()?;
    v["horizons"].as_array().map(Vec::len)
}

/// The population forecast as `POST /v1/forecast` answers it for the training mix.
fn population_forecast(model: &ModelArtifact, horizon: usize) -> Value {
    let bands = model.bands(ForecastParams { horizon, discount_rate: 0.0 }, IntervalParams::default());
    let response = ForecastResponse::new(model, &model.training_mix(), "training", horizon, 0.0, bands.as_ref());
    serde_json::to_value(response).expect("a forecast serializes")
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let params = ForecastParams { horizon: a.horizon, discount_rate: a.discount_rate };
    params.check().map_err(|e| anyhow::anyhow!("--{e}"))?;
    let (store, id) = a.store.resolve()?;
    let progress = Progress::new();
    progress.step(format!("loading model {id}"));
    let model = store.load(&id)?;
    model.check().map_err(|reason| anyhow::anyhow!("model {id} cannot be reported: {reason}"))?;
    progress.step(match &a.scores {
        Some(p) => format!("reading {}", p.display()),
        None => "reading the customer snapshot".into(),
    });
    let customers = read_customers(&a, &model, params)?;
    progress.step("summarising customers");
    let customers_view = match &customers {
        Some(c) => {
            let portfolio = summarise(
                &c.outlooks,
                &model.segments.states,
                model.key_index(),
                &model.lapsed_states(),
                PortfolioParams { top: a.top, ..PortfolioParams::default() },
            );
            serde_json::to_value(SummaryResponse {
                model_id: model.id.clone(),
                as_of: model.periods.as_of,
                horizon: c.horizon,
                discount_rate: c.discount_rate,
                source: c.source.clone(),
                portfolio,
            })?
        }
        None => json!({"missing": format!(
            "No per-customer data: model {} has no customer snapshot and no --scores file was given.", model.id
        )}),
    };
    let data = json!({
        "model": crate::http::model::describe(&model),
        "transitions": crate::http::model::chain(&model),
        "forecast": population_forecast(&model, a.horizon),
        "customers": customers_view,
    });
    progress.step(format!("writing {}", a.out.display()));
    let html = crate::report::report(&format!("kam report — {}", model.id), &data);
    std::fs::write(&a.out, &html).with_context(|| format!("cannot write {}", a.out.display()))?;
    drop(progress);
    let n = customers.as_ref().map_or(0, |c| c.outlooks.len());
    println!(
        "wrote {} ({} KB): model {}, {} customers{}",
        a.out.display(),
        html.len().div_ceil(1024),
        model.id,
        super::table::thousands(n as u64),
        customers.as_ref().map_or(String::new(), |c| format!(" from {}", c.source))
    );
    Ok(())
}
