//! `kam train`: transactions → model artifact under the models directory.

use super::progress::Progress;
use super::table::{thousands, Table};
use crate::domain::config::{RuleName, TrainConfig, UnitName};
use crate::domain::model::ModelArtifact;
use crate::domain::period::PeriodUnit;
use crate::domain::train::{train, SourceInfo, Stage};
use crate::ingest::{self, ColumnRef, Delimiter, HeaderMode, OnBadRow, ReadOptions};
use crate::store::ModelStore;
use anyhow::Context;
use chrono::{Datelike, NaiveDate};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Transactions file: CSV or other delimited text, or Parquet (.parquet).
    pub input: PathBuf,
    /// Training configuration (TOML); flags below override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Period length: week, month, quarter, year or days.
    #[arg(long, value_parser = parse_unit)]
    pub period: Option<UnitName>,
    /// Period length in days (with --period days).
    #[arg(long)]
    pub length_days: Option<u32>,
    /// A day on which a period starts (with --period days).
    #[arg(long)]
    pub anchor: Option<NaiveDate>,
    /// Train on complete periods ending on or before this date.
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
    /// Trailing window in periods for frequency and monetary value.
    #[arg(long)]
    pub window: Option<u32>,
    /// Periods without a purchase after which a customer is lapsed.
    #[arg(long)]
    pub lapse_after: Option<u32>,
    /// Split the inactive state by periods since the last purchase.
    #[arg(long)]
    pub split_inactive: bool,
    /// Tier rule: top_share, value_share or fixed.
    #[arg(long, value_parser = parse_rule)]
    pub tier_rule: Option<RuleName>,
    /// Tier cuts, comma-separated (e.g. 0.2,0.5).
    #[arg(long, value_delimiter = ',')]
    pub cuts: Option<Vec<f64>>,
    /// Additive prior count on every allowed move.
    #[arg(long)]
    pub prior: Option<f64>,
    /// Customer attributes file (CSV with customer_id and numeric columns) for the spend regression.
    #[arg(long)]
    pub customers: Option<PathBuf>,
    /// Field delimiter: auto, whitespace, tab, comma, semicolon, pipe or one character.
    #[arg(long, default_value = "auto")]
    pub delimiter: Delimiter,
    /// The first line is a header.
    #[arg(long, conflicts_with = "no_header")]
    pub header: bool,
    /// The file has no header line.
    #[arg(long)]
    pub no_header: bool,
    /// Customer id column: a header name or a 1-based position.
    #[arg(long)]
    pub customer_col: Option<ColumnRef>,
    /// Date column: a header name or a 1-based position.
    #[arg(long)]
    pub date_col: Option<ColumnRef>,
    /// Amount column: a header name or a 1-based position.
    #[arg(long)]
    pub amount_col: Option<ColumnRef>,
    /// Margin column: a header name or a 1-based position.
    #[arg(long)]
    pub margin_col: Option<ColumnRef>,
    /// What to do with a row that does not parse: fail or skip.
    #[arg(long, default_value = "fail")]
    pub on_bad_row: OnBadRow,
    /// Models directory.
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
    /// Store the model without making it the active one.
    #[arg(long)]
    pub no_activate: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_unit(s: &str) -> Result<UnitName, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| format!("unknown period {s:?}: expected week, month, quarter, year or days"))
}

fn parse_rule(s: &str) -> Result<RuleName, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| format!("unknown tier rule {s:?}: expected top_share, value_share or fixed"))
}

/// The configuration: the file (if any) with flags applied over it.
fn config(a: &Args) -> anyhow::Result<TrainConfig> {
    let mut c = match &a.config {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
            TrainConfig::from_toml(&text).with_context(|| format!("{} is not a valid kam configuration", p.display()))?
        }
        None => TrainConfig::default(),
    };
    if let Some(u) = a.period {
        c.period.unit = u;
    }
    if a.length_days.is_some() {
        c.period.length_days = a.length_days;
    }
    if a.anchor.is_some() {
        c.period.anchor = a.anchor;
    }
    if a.as_of.is_some() {
        c.period.as_of = a.as_of;
    }
    if let Some(w) = a.window {
        c.segments.window = w;
    }
    if let Some(l) = a.lapse_after {
        c.segments.lapse_after = l;
    }
    if a.split_inactive {
        c.segments.split_inactive = true;
    }
    if let Some(r) = a.tier_rule {
        c.segments.rule = r;
    }
    if let Some(cuts) = &a.cuts {
        c.segments.cuts = cuts.clone();
    }
    if let Some(p) = a.prior {
        c.transitions.prior = p;
    }
    if let Err(e) = c.check() {
        match &a.config {
            Some(p) => anyhow::bail!("invalid configuration ({} and flags): {e}", p.display()),
            None => anyhow::bail!("invalid configuration: {e}"),
        }
    }
    Ok(c)
}

/// A short label of period `t`.
pub fn period_label(unit: PeriodUnit, start: NaiveDate) -> String {
    match unit {
        PeriodUnit::Quarter => format!("{}Q{}", start.year(), start.month0() / 3 + 1),
        PeriodUnit::Month => start.format("%Y-%m").to_string(),
        PeriodUnit::Year => start.year().to_string(),
        _ => start.to_string(),
    }
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let config = config(&a)?;
    let options = ReadOptions {
        delimiter: a.delimiter,
        header: if a.header {
            HeaderMode::Yes
        } else if a.no_header {
            HeaderMode::No
        } else {
            HeaderMode::Auto
        },
        customer: a.customer_col.clone(),
        date: a.date_col.clone(),
        amount: a.amount_col.clone(),
        margin: a.margin_col.clone(),
        on_bad_row: a.on_bad_row,
    };
    let progress = Progress::new();
    progress.step(format!("reading {}", a.input.display()));
    let ingested = ingest::read_transactions(&a.input, &options)?;
    if ingested.rows_skipped > 0 {
        eprintln!(
            "warning: skipped {} bad row(s) in {}; the first:",
            thousands(ingested.rows_skipped),
            a.input.display()
        );
        for e in &ingested.first_skipped {
            eprintln!("  {e}");
        }
    }
    let attributes = match &a.customers {
        Some(p) => {
            progress.step(format!("reading {}", p.display()));
            let (attrs, report) = ingest::attributes::read(p, &ingested.transactions.customer_ids)?;
            if !report.ignored_columns.is_empty() {
                eprintln!("note: non-numeric attribute columns not used: {}", report.ignored_columns.join(", "));
            }
            if report.unknown_customers > 0 {
                eprintln!("note: {} attribute row(s) name customers with no transactions", report.unknown_customers);
            }
            Some(attrs)
        }
        None => None,
    };
    let source = SourceInfo {
        name: ingested.source_name.clone(),
        content_hash: ingested.content_hash.clone(),
        rows_skipped: ingested.rows_skipped,
    };
    let mut on_stage = |s: Stage| {
        progress.step(match s {
            Stage::Aggregating => "grouping transactions by customer and period",
            Stage::LearningTiers => "learning value tiers",
            Stage::Counting => "counting transitions and spend moments",
            Stage::Fitting => "fitting",
        })
    };
    let mut artifact = train(&ingested.transactions, attributes.as_ref(), &config, source, &mut on_stage)
        .with_context(|| format!("training on {} failed", a.input.display()))?;
    drop(ingested);
    progress.step("writing the model");
    let store = ModelStore::new(&a.models);
    let saved = store.save(&mut artifact)?;
    if !a.no_activate {
        store.activate(&saved.id)?;
    }
    drop(progress);
    if a.json {
        let out = serde_json::json!({
            "model_id": saved.id,
            "path": saved.path,
            "activated": !a.no_activate,
            "already_stored": saved.existed,
            "model": artifact,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", summary(&artifact));
        println!(
            "model {} {} {}{}",
            saved.id,
            if saved.existed { "already stored as" } else { "written to" },
            saved.path.display(),
            if a.no_activate { " (not activated)" } else { "; active" }
        );
    }
    Ok(())
}

fn pct(x: f64) -> String {
    format!("{:.3}", x)
}

/// The readable training summary.
pub fn summary(m: &ModelArtifact) -> String {
    let mut s = String::new();
    let d = &m.data;
    s.push_str(&format!(
        "data: {} — {} rows ({} skipped), {} customers, {} to {}\n",
        d.source,
        thousands(d.rows),
        thousands(d.rows_skipped),
        thousands(d.customers),
        d.first_date,
        d.last_date
    ));
    let p = &m.periods;
    s.push_str(&format!(
        "periods: {} × {}, as of {}; {} rows after it left out\n",
        p.spans.len(),
        p.unit,
        p.as_of,
        thousands(d.rows_after_as_of)
    ));
    if let Some((a, b, last)) = p.partial_period_left_out {
        s.push_str(&format!("  the trailing partial period {a}..{b} (data end {last}) was left out\n"));
    }
    let seg = &m.segments;
    s.push_str(&format!(
        "panel: {} customers with a purchase, {} customer-periods",
        thousands(seg.customers_in_panel),
        thousands(seg.panel_rows)
    ));
    if seg.customers_without_purchase > 0 {
        s.push_str(&format!("; {} customers without one by the as-of date", thousands(seg.customers_without_purchase)));
    }
    s.push('\n');
    let cuts: Vec<String> =
        seg.thresholds.iter().map(|t| format!("{} ≥ {:.2}", t.tier, t.min_trailing_value)).collect();
    s.push_str(&format!(
        "segments: window {} period(s), lapsed after {}; trailing-value cuts: {}\n\n",
        seg.scheme.window,
        seg.scheme.lapse_after,
        if cuts.is_empty() { "none".into() } else { cuts.join(", ") }
    ));

    s.push_str("segment sizes per period (customers)\n");
    let mut t = Table::new(std::iter::once("period".to_string()).chain(seg.states.iter().cloned()).collect());
    for (k, sizes) in seg.sizes_by_period.iter().enumerate() {
        t.row(
            std::iter::once(period_label(p.unit, p.spans[k].0))
                .chain(sizes.iter().map(|n| thousands(*n)))
                .collect(),
        );
    }
    s.push_str(&t.render(2));

    let tm = &m.transitions.model;
    s.push_str(&format!(
        "\ntransition matrix (row: from, column: to; prior {} on allowed moves; {} moves)\n",
        tm.prior(),
        thousands(m.transitions.moves)
    ));
    let mut t = Table::new(
        std::iter::once("from \\ to".to_string()).chain(tm.states().iter().cloned()).chain(["moves".to_string()]).collect(),
    );
    for (i, row) in tm.matrix().iter().enumerate() {
        t.row(
            std::iter::once(tm.states()[i].clone())
                .chain(row.iter().zip(&tm.allowed()[i]).map(|(p, ok)| if *ok { pct(*p) } else { "·".into() }))
                .chain([thousands(tm.row_totals()[i])])
                .collect(),
        );
    }
    s.push_str(&t.render(2));
    if !tm.unobserved_origins().is_empty() {
        s.push_str(&format!(
            "  no move observed out of: {} (their rows are the prior alone)\n",
            tm.unobserved_origins().join(", ")
        ));
    }

    let sp = &m.spend.model;
    s.push_str(&format!(
        "\nspend regression: next-period spend, OLS on {} customer-periods; R² {:.3}, RMSE {:.2}, mean {:.2}\n",
        thousands(sp.observations()),
        sp.r_squared(),
        sp.rmse(),
        sp.mean_target()
    ));
    let mut t = Table::new(vec!["feature".into(), "coefficient".into()]);
    t.row(vec!["(intercept)".into(), format!("{:.4}", sp.intercept())]);
    for (n, b) in sp.feature_names().iter().zip(sp.coefficients()) {
        t.row(vec![n.clone(), format!("{b:.4}")]);
    }
    s.push_str(&t.render(2));
    if !sp.dropped().is_empty() {
        s.push_str(&format!("  constant zero in training, fixed at 0: {}\n", sp.dropped().join(", ")));
    }
    s.push('\n');
    s
}
