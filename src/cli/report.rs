//! `kam report`: one self-contained HTML file (no network needed to view it) with the model's
//! charts — segment sizes and their forecast, transition heatmap, value concentration, churn
//! risk, key accounts most at risk, backtest and diagnostics.
//!
//! The page embeds the same JSON the API answers (`GET /v1/model`, `GET /v1/model/transitions`,
//! `POST /v1/forecast`, `GET /v1/model/customers/summary`) and the same script the dashboard
//! runs (see [`crate::app::report`] and [`crate::app::page`]). Customers come from `--scores` (a `kam score` file: CSV or
//! JSON Lines) or else from the customer snapshot stored beside the model.

use super::input::ModelArgs;
use super::progress::Progress;
use crate::app::report::{ReportData, report_data};
use crate::domain::forecast::{DEFAULT_DISCOUNT_RATE, DEFAULT_HORIZON, ForecastParams};
use anyhow::Context;
use std::path::PathBuf;

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
    #[arg(long, default_value_t = DEFAULT_HORIZON)]
    pub horizon: usize,
    /// Discount rate per period for the customers' expected value (snapshot only).
    #[arg(long, default_value_t = DEFAULT_DISCOUNT_RATE)]
    pub discount_rate: f64,
    /// Key accounts listed in the at-risk table.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// The HTML file to write.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let params = ForecastParams { horizon: a.horizon, discount_rate: a.discount_rate };
    params.check().map_err(|e| anyhow::anyhow!("--{e}"))?;
    let (store, id) = a.store.resolve()?;
    let progress = Progress::new();
    progress.step(format!("loading model {id}"));
    let model = store.load(&id)?;
    progress.step(match &a.scores {
        Some(p) => format!("reading {}", p.display()),
        None => "reading the customer snapshot".into(),
    });
    let ReportData { data, customers } = report_data(&model, &a.store.models, a.scores.as_deref(), params, a.top)?;
    progress.step(format!("writing {}", a.out.display()));
    let html = crate::app::page::report(&format!("kam report — {}", model.id), &data);
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
