//! `kam evaluate`: backtest on a calibration / holdout split, beside naive baselines.

use super::input::{ConfigArgs, InputArgs, stage_message};
use super::progress::Progress;
use super::table::{Table, thousands};
use crate::domain::backtest::{ChurnScores, Evaluation};
use crate::domain::calendar::{Calendar, date_of};
use crate::domain::states::Grouping;
use crate::model::backtest::{HoldoutEnd, evaluate};
use anyhow::Context;
use chrono::NaiveDate;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Train on complete periods ending on or before this date.
    #[arg(long, required_unless_present = "last", conflicts_with = "last")]
    pub calibration_end: Option<NaiveDate>,
    /// Hold out the last K complete periods of the data instead.
    #[arg(long)]
    pub last: Option<usize>,
    /// End of the holdout (default: the end of the last complete period in the data).
    #[arg(long, conflicts_with = "holdout_periods")]
    pub holdout_end: Option<NaiveDate>,
    /// Length of the holdout in periods.
    #[arg(long)]
    pub holdout_periods: Option<usize>,
    /// Print the evaluation as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write the evaluation as JSON to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub states: super::input::StatesArgs,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let config = a.config.resolve()?;
    let progress = Progress::new();
    let params = config.check()?;
    let (activity, source, attributes) = a.input.activity(&progress, &|first| params.period_unit(first))?;
    let (first, last) = (activity.first_day, activity.last_day);
    let (calibration_end, holdout) = match (a.calibration_end, a.last) {
        (Some(d), _) => (
            d,
            match (a.holdout_end, a.holdout_periods) {
                (Some(e), _) => HoldoutEnd::Date(e),
                (None, Some(k)) => HoldoutEnd::Periods(k),
                (None, None) => HoldoutEnd::DataEnd,
            },
        ),
        (None, Some(k)) => {
            anyhow::ensure!(k >= 1, "--last must be at least 1 period");
            let unit = config.check()?.period_unit(date_of(first));
            let (cal, _) = Calendar::fit(unit, first, last, a.holdout_end)?;
            anyhow::ensure!(
                cal.len() > k,
                "the data have {} complete periods; --last {k} leaves none to train on",
                cal.len()
            );
            (date_of(cal.end(cal.len() - 1 - k)), HoldoutEnd::Periods(k))
        }
        (None, None) => unreachable!("clap requires one"),
    };
    let mut on_stage = |s| progress.step(stage_message(s));
    let (model, ev) =
        evaluate(&activity, attributes.as_ref(), &config, source, calibration_end, holdout, &mut on_stage)
            .with_context(|| format!("backtest on {} failed", a.input.path().display()))?;
    drop(progress);
    let json = serde_json::to_string_pretty(&ev)? + "\n";
    if let Some(p) = &a.out {
        std::fs::write(p, &json).with_context(|| format!("cannot write {}", p.display()))?;
    }
    if a.json {
        print!("{json}");
    } else {
        print!("{}", report(&ev, &a.states.grouping(&model)));
        if let Some(sel) = &model.spend.selection {
            println!("spend model of the calibration fit: {}", sel.reason);
        }
    }
    Ok(())
}

fn f3(x: f64) -> String {
    if x.is_nan() { "n/a".into() } else { format!("{x:.3}") }
}

fn money(x: f64) -> String {
    format!("{x:.0}")
}

/// The chain-alone (only when the model is a blend) and BTYD cells of one row ("—" where a fit
/// failed).
fn cells<T>(b: [Option<&T>; 3], f: &dyn Fn(&T) -> String) -> Vec<String> {
    let blended = b[0].is_some();
    b.iter().enumerate().filter(|(i, _)| *i > 0 || blended).map(|(_, o)| o.map_or_else(|| "—".to_string(), f)).collect()
}

/// The readable backtest report, states shown as `shown` groups them.
pub fn report(ev: &Evaluation, shown: &Grouping) -> String {
    let mut s = format!(
        "backtest: trained through {}, holdout {}..{} ({} periods); {} customers evaluated ({} first bought in the holdout, not evaluated)\n\n",
        ev.calibration_end,
        ev.holdout_start,
        ev.holdout_end,
        ev.holdout_periods,
        thousands(ev.customers as u64),
        thousands(ev.customers_new_in_holdout as u64)
    );
    let head = |first: &str| vec![first.to_string(), "model".into(), "persistence".into(), "segment avg".into()];
    let mut t = Table::new(head("next segment"));
    let n = &ev.next_segment;
    t.row(vec!["log-loss".into(), f3(n.model.log_loss), f3(n.persistence.log_loss), "—".into()]);
    t.row(vec!["accuracy".into(), f3(n.model.accuracy), f3(n.persistence.accuracy), "—".into()]);
    s.push_str(&t.render(2));
    s.push('\n');

    // The BTYD columns, where their fits succeeded.
    let blended = ev.blend.is_some();
    let with_btyd = |first: &str| {
        let mut h = head(first);
        if blended {
            h[1] = "model (blend)".into();
            h.push("chain alone".into());
        }
        h.extend(["BG/NBD+GG".to_string(), "Pareto/NBD+GG".to_string()]);
        h
    };
    let c = &ev.no_purchase;
    let seg = c.segment_average.as_ref().expect("churn has a segment baseline");
    let cb = [c.chain.as_ref(), c.bg_nbd.as_ref(), c.pareto_nbd.as_ref()];
    let mut t = Table::new(with_btyd(&format!("no purchase in holdout (rate {:.3})", ev.no_purchase_rate)));
    let churn_rows: [(&str, fn(&ChurnScores) -> f64); 3] =
        [("AUC", |c| c.auc), ("Brier", |c| c.brier), ("log-loss", |c| c.log_loss)];
    for (name, f) in churn_rows {
        let mut row = vec![name.into(), f3(f(&c.model)), f3(f(&c.persistence)), f3(f(seg))];
        row.extend(cells(cb, &|x| f3(f(x))));
        t.row(row);
    }
    s.push_str(&t.render(2));
    s.push('\n');

    let sp = &ev.holdout_spend;
    let sseg = sp.segment_average.as_ref().expect("spend has a segment baseline");
    let sb = [sp.chain.as_ref(), sp.bg_nbd.as_ref(), sp.pareto_nbd.as_ref()];
    let mut t = Table::new(with_btyd("holdout spend per customer"));
    let rows: [(&str, fn(&crate::domain::metrics::SpendErrors) -> String); 7] = [
        ("MAE", |e| format!("{:.2}", e.mae)),
        ("RMSE", |e| format!("{:.2}", e.rmse)),
        ("Spearman", |e| f3(e.spearman)),
        ("predicted total", |e| money(e.predicted_total)),
        ("actual total", |e| money(e.actual_total)),
        ("total error %", |e| format!("{:+.1}", e.total_error_pct)),
        ("top-20% capture", |e| f3(e.top20_capture)),
    ];
    for (name, f) in rows {
        let mut row = vec![name.into(), f(&sp.model), f(&sp.persistence), f(sseg)];
        row.extend(cells(sb, &|x| f(x)));
        t.row(row);
    }
    s.push_str(&t.render(2));
    for fit in &ev.btyd_fits {
        let params: Vec<String> = fit.parameters.iter().map(|(n, v, _)| format!("{n} = {v:.4}")).collect();
        let unit = if fit.model == "gamma_gamma" { "" } else { ", time in days" };
        s.push_str(&format!(
            "  {} ({} customers{unit}): {}; log-likelihood {:.1}\n",
            fit.model,
            thousands(fit.customers as u64),
            params.join(", "),
            fit.log_likelihood
        ));
    }
    for why in &ev.btyd_failures {
        s.push_str(&format!("  not fitted: {why}\n"));
    }
    if let Some(b) = &ev.blend {
        s.push_str(&format!(
            "  blend: chain with {} — weight of the chain {:.2} on P(no purchase), {:.2} on spend; set on {}..{} ({} periods, {} customers)\n",
            match b.with {
                crate::domain::btyd::blend::BtydModel::BgNbd => "BG/NBD + GG",
                crate::domain::btyd::blend::BtydModel::ParetoNbd => "Pareto/NBD + GG",
            },
            b.churn.weight,
            b.spend.weight,
            b.calibration_end,
            b.holdout_end,
            b.holdout_periods,
            thousands(b.customers as u64)
        ));
    }
    s.push('\n');

    let mut t =
        Table::new(vec!["calibration (model)".into(), "customers".into(), "predicted".into(), "observed".into()]);
    for b in &c.model.calibration {
        t.row(vec![
            format!("decile {}", b.decile),
            thousands(b.customers as u64),
            f3(b.mean_predicted),
            f3(b.observed_rate),
        ]);
    }
    s.push_str(&t.render(2));
    s.push('\n');

    if !ev.purchases_by_frequency.is_empty() {
        let mut t = Table::new(
            ["repeat purchases (calibration)", "customers", "holdout purchases", "BG/NBD", "Pareto/NBD"]
                .map(String::from)
                .to_vec(),
        );
        let opt = |x: Option<f64>| x.map_or("—".to_string(), |v| format!("{v:.2}"));
        for b in &ev.purchases_by_frequency {
            t.row(vec![
                format!("{}{}", b.frequency, if b.or_more { "+" } else { "" }),
                thousands(b.customers),
                format!("{:.2}", b.actual),
                opt(b.bg_nbd),
                opt(b.pareto_nbd),
            ]);
        }
        s.push_str("mean purchase days in the holdout by calibration frequency, actual and expected\n");
        s.push_str(&t.render(2));
        s.push('\n');
    }
    if let Some(first) = ev.purchases_by_period.first() {
        let mut t = Table::new(
            ["period", "actual", "BG/NBD", "Pareto/NBD", "cumulative actual", "cumulative BG/NBD"]
                .map(String::from)
                .to_vec(),
        );
        let opt = |x: Option<f64>| x.map_or("—".to_string(), |v| format!("{v:.3}"));
        let (mut actual, mut bg) = (0.0, Some(0.0));
        for p in &ev.purchases_by_period {
            actual += p.actual;
            bg = bg.zip(p.bg_nbd).map(|(a, b)| a + b);
            t.row(vec![
                p.period_start.to_string(),
                format!("{:.3}", p.actual),
                opt(p.bg_nbd),
                opt(p.pareto_nbd),
                format!("{actual:.3}"),
                opt(bg),
            ]);
        }
        s.push_str(&format!(
            "purchase days per customer in each holdout period, actual and expected ({} customers with a history)\n",
            thousands(first.customers)
        ));
        s.push_str(&t.render(2));
        s.push('\n');
    }
    s.push_str("segment sizes, predicted / actual (customers evaluated)\n");
    let mut header = vec!["period".to_string()];
    header.extend(shown.names.iter().cloned());
    header.push("misplaced".into());
    let mut t = Table::new(header);
    for z in &ev.segment_sizes {
        let mut row = vec![z.period_start.to_string()];
        let actual: Vec<f64> = z.actual.iter().map(|&a| a as f64).collect();
        row.extend(shown.sum(&z.predicted).iter().zip(shown.sum(&actual)).map(|(p, a)| format!("{p:.0} / {a:.0}")));
        row.push(format!("{:.1}%", 100.0 * z.misplaced_share));
        t.row(row);
    }
    s.push_str(&t.render(2));
    if let Some(c) = &ev.segment_size_coverage {
        s.push_str(&format!(
            "  actual state sizes inside their {:.0}% prediction intervals: {} of {} ({:.1}%)\n",
            100.0 * c.level,
            c.covered,
            c.cells,
            100.0 * c.covered as f64 / c.cells.max(1) as f64
        ));
    }
    s
}
