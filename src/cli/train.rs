//! `kam train`: transactions → model artifact under the models directory.

use super::input::{ConfigArgs, InputArgs, stage_message};
use super::progress::Progress;
use super::table::{Table, thousands};
use crate::app::publish::{PublishError, PublishOptions, Published, Step, move_current, train_and_publish};
use crate::domain::calendar::PeriodUnit;
use crate::domain::spend::SpendModelKind;
use crate::domain::states::Grouping;
use crate::model::artifact::ModelArtifact;
use crate::store::ModelStore;
use chrono::{Datelike, NaiveDate};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Models directory.
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
    /// Also backtest the configuration: train on all but the last K periods, forecast them,
    /// and store the metrics in the artifact.
    #[arg(long, value_name = "K")]
    pub backtest_last: Option<usize>,
    /// Store the model without making it the active one.
    #[arg(long)]
    pub no_activate: bool,
    /// Do not write the per-customer snapshot (models/<id>.customers.jsonl: each customer's
    /// segment, RFM values and predicted next-period spend at the as-of date, which `kam serve`
    /// answers GET /v1/customers/{id} from).
    #[arg(long)]
    pub no_snapshot: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub states: super::input::StatesArgs,
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
    let config = a.config.resolve()?;
    let progress = Progress::new();
    let params = config.check()?;
    let (activity, source, attributes) = a.input.activity(&progress, &|first| params.period_unit(first))?;
    let options = PublishOptions { backtest_last: a.backtest_last, snapshot: !a.no_snapshot, activate: !a.no_activate };
    let store = ModelStore::new(&a.models);
    let mut on_step = |s: Step| match s {
        Step::Training(stage) => progress.step(stage_message(stage)),
        Step::Backtesting(k) => progress.step(format!("backtesting on the last {k} periods")),
        Step::WritingModel => progress.step("writing the model"),
        Step::WritingSnapshot => progress.step("writing the customer snapshot"),
        Step::Activating => progress.step("activating the model"),
    };
    let published = train_and_publish(
        &store,
        &activity,
        source,
        attributes.as_ref(),
        &config,
        options,
        &mut on_step,
        &mut move_current,
    )
    .map_err(|e| match e {
        PublishError::Train(e) => {
            anyhow::Error::new(e).context(format!("training on {} failed", a.input.path().display()))
        }
        PublishError::BacktestLast { k, periods } => anyhow::anyhow!(
            "--backtest-last {k}: the model has {periods} periods; K must be between 1 and {}",
            periods.saturating_sub(1)
        ),
        e => e.into(),
    })?;
    drop(activity);
    let Published { artifact, saved, .. } = published;
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
        print!("{}", summary(&artifact, &a.states.grouping(&artifact)));
        if let Some(ev) = &artifact.backtest {
            print!("{}\n", super::evaluate::report(ev, &a.states.grouping(&artifact)));
        }
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

/// Above this many states the summary groups them.
fn pct(x: f64) -> String {
    format!("{:.3}", x)
}

/// What the spend model's coefficients are on, in words.
fn spend_scale(kind: SpendModelKind) -> &'static str {
    match kind {
        SpendModelKind::Ols => "spend",
        SpendModelKind::LogOls => "ln(1 + spend), smeared back",
        SpendModelKind::Tweedie => "ln E[spend], Tweedie GLM",
    }
}

/// The spend model: the held-out comparison, the choice, and its coefficients with standard
/// errors.
pub fn spend_summary(m: &ModelArtifact, shown: &Grouping) -> String {
    let mut s = String::new();
    let sp = &m.spend.model;
    let target = if m.spend.value_basis == "revenue" {
        "next-period spend".to_string()
    } else {
        format!("next-period value ({})", m.spend.value_basis)
    };
    if let Some(sel) = &m.spend.selection {
        match &sel.held_out {
            Some(h) => {
                s.push_str(&format!(
                    "\nspend models on held-out moves into the last period ({} scored of {}; fitted on {} earlier moves)\n",
                    thousands(h.scored),
                    thousands(h.held_out_moves),
                    thousands(h.fit_moves)
                ));
                let mut t = Table::new(
                    ["model", "MAE", "RMSE", "Spearman", "total error %", "top-20%"].map(String::from).to_vec(),
                );
                for c in &sel.candidates {
                    let mark = if c.model == sel.chosen { " *" } else { "" };
                    match &c.held_out {
                        Some(e) => t.row(vec![
                            format!("{}{mark}", c.model),
                            format!("{:.2}", e.mae),
                            format!("{:.2}", e.rmse),
                            format!("{:.3}", e.spearman),
                            format!("{:+.1}", e.total_error_pct),
                            format!("{:.3}", e.top20_capture),
                        ]),
                        None => t.row(vec![
                            format!("{}{mark}", c.model),
                            c.failed.clone().unwrap_or_else(|| "not scored".into()),
                            String::new(),
                            String::new(),
                            String::new(),
                            String::new(),
                        ]),
                    }
                }
                s.push_str(&t.render(2));
            }
            None => s.push('\n'),
        }
        s.push_str(&format!("spend model: {}\n", sel.reason));
    } else {
        s.push('\n');
    }
    s.push_str(&format!(
        "spend regression: {target}, {} ({}) on {} customer-periods; R² {:.3}, RMSE {:.2}, mean {:.2}",
        sp.kind(),
        spend_scale(sp.kind()),
        thousands(sp.observations()),
        sp.r_squared(),
        sp.rmse(),
        sp.mean_target()
    ));
    if sp.kind() == SpendModelKind::LogOls {
        s.push_str(&format!("; smearing factor {:.4}", sp.smearing()));
    }
    if let Some(g) = sp.glm() {
        s.push_str(&format!(
            "; power {}, dispersion {:.3}, {} iterations{}",
            g.power,
            g.dispersion,
            g.iterations,
            if g.converged { "" } else { " (not converged)" }
        ));
    }
    s.push('\n');
    let se = sp.standard_errors();
    let mut t = Table::new(vec!["feature".into(), "coefficient".into(), "std. error".into()]);
    t.row(vec!["(intercept)".into(), format!("{:.4}", sp.intercept()), format!("{:.4}", se[0])]);
    // Grouped into families, the per-state effects are summarised in one line.
    let grouped = shown.names.len() < m.segments.states.len();
    let mut state_effects = 0;
    for ((n, b), e) in sp.feature_names().iter().zip(sp.coefficients()).zip(&se[1..]) {
        if grouped && n.starts_with("state=") {
            state_effects += 1;
            continue;
        }
        t.row(vec![n.clone(), format!("{b:.4}"), format!("{e:.4}")]);
    }
    s.push_str(&t.render(2));
    if state_effects > 0 {
        s.push_str(&format!("  and {state_effects} per-state effects (state=…): see --states detailed or --json\n"));
    }
    s
}

/// The readable training summary.
pub fn summary(m: &ModelArtifact, shown: &Grouping) -> String {
    let mut s = String::new();
    let d = &m.data;
    s.push_str(&format!(
        "data: {} rows ({} skipped), {} customers, {} to {}\n",
        thousands(d.rows),
        thousands(d.rows_skipped),
        thousands(d.customers),
        d.first_date,
        d.last_date
    ));
    if let Some(r) = &d.date_range {
        s.push_str(&format!("  --date-range {r}\n"));
    }
    for w in &d.warnings {
        s.push_str(&format!("  warning: {w}\n"));
    }
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
        "segments: window {}, lapsed after {} silent; trailing-value cuts: {}\n\n",
        p.unit.count(seg.scheme.window as usize),
        p.unit.count(seg.scheme.lapse_after as usize),
        if cuts.is_empty() { "none".into() } else { cuts.join(", ") }
    ));

    // Grouped into families unless --states detailed; --json has every state.
    let groups = m.segments.scheme.families();
    let compact = shown.names.len() < seg.states.len();
    s.push_str(if compact {
        "segment sizes per period (customers; inactive states summed over recency levels and tiers)\n"
    } else {
        "segment sizes per period (customers)\n"
    });
    let names: Vec<String> = if compact { groups.iter().map(|g| g.0.clone()).collect() } else { seg.states.clone() };
    let mut t = Table::new(std::iter::once("period".to_string()).chain(names.iter().cloned()).collect());
    for (k, sizes) in seg.sizes_by_period.iter().enumerate() {
        let cells: Vec<String> = if compact {
            groups.iter().map(|g| thousands(g.1.iter().map(|&i| sizes[i]).sum())).collect()
        } else {
            sizes.iter().map(|n| thousands(*n)).collect()
        };
        t.row(std::iter::once(period_label(p.unit, p.spans[k].0)).chain(cells).collect());
    }
    s.push_str(&t.render(2));

    let tm = &m.transitions.model;
    if compact {
        s.push_str(&format!(
            "\ntransitions between families (each state's row weighted by its moves; prior {} on allowed moves; {} moves; --states detailed for every state)\n",
            tm.prior(),
            thousands(m.transitions.moves)
        ));
        let weights: Vec<f64> = tm.row_totals().iter().map(|&n| n as f64).collect();
        let fm = shown.matrix(tm.matrix(), &weights);
        let mut t = Table::new(
            std::iter::once("from \\ to".to_string())
                .chain(shown.names.iter().cloned())
                .chain(["moves".to_string()])
                .collect(),
        );
        let moves = shown.sum(&weights);
        for (f, row) in fm.iter().enumerate() {
            t.row(
                std::iter::once(shown.names[f].clone())
                    .chain(row.iter().map(|p| pct(*p)))
                    .chain([thousands(moves[f] as u64)])
                    .collect(),
            );
        }
        s.push_str(&t.render(2));
    } else if seg.states.len() > 10 {
        s.push_str(&format!(
            "\ntransitions (the likeliest next states of each state; prior {} on allowed moves; {} moves)\n",
            tm.prior(),
            thousands(m.transitions.moves)
        ));
        let mut t = Table::new(vec!["from".into(), "moves".into(), "likeliest next states".into()]);
        for (i, row) in tm.matrix().iter().enumerate() {
            let mut order: Vec<usize> = (0..row.len()).filter(|&j| row[j] > 0.0).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
            let top: Vec<String> =
                order.iter().take(4).map(|&j| format!("{} {}", tm.states()[j], pct(row[j]))).collect();
            t.row(vec![tm.states()[i].clone(), thousands(tm.row_totals()[i]), top.join(", ")]);
        }
        s.push_str(&t.render(2));
    } else {
        s.push_str(&format!(
            "\ntransition matrix (row: from, column: to; prior {} on allowed moves; {} moves)\n",
            tm.prior(),
            thousands(m.transitions.moves)
        ));
        let mut t = Table::new(
            std::iter::once("from \\ to".to_string())
                .chain(tm.states().iter().cloned())
                .chain(["moves".to_string()])
                .collect(),
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
    }
    let borrowed: Vec<String> = tm
        .borrowed_from()
        .iter()
        .enumerate()
        .filter_map(|(i, b)| b.as_ref().map(|b| format!("{} from {b}", tm.states()[i])))
        .collect();
    if !tm.unobserved_origins().is_empty() {
        s.push_str(&format!("  no move observed out of: {}\n", tm.unobserved_origins().join(", ")));
        if !borrowed.is_empty() {
            s.push_str(&format!(
                "  purchase probabilities borrowed (a longer silence is no likelier to end): {}\n",
                borrowed.join(", ")
            ));
        }
    }

    if let Some(fit) = m.config.transitions.recent_periods {
        s.push_str(&format!("  matrix fitted on the moves of the last {fit} periods only (recent_periods)\n"));
    }
    if let Some(t) = &m.transitions.time_homogeneity {
        s.push_str(&format!("  time-homogeneity: {}\n", t.verdict));
    }
    if let Some(c) = &m.transitions.recent_window {
        s.push_str(&format!("  recent periods: {}\n", c.verdict));
    }
    if let Some(t) = &m.transitions.order {
        s.push_str(&format!("  order: {}\n", t.verdict));
    }
    if let Some(t) = &m.transitions.thin_rows {
        s.push_str(&format!("  thin rows: {}\n", t.verdict));
    }
    s.push_str(&format!(
        "  every probability has a {:.0}% credible interval (Dirichlet posterior): see --json or `kam models show`\n",
        100.0 * tm.credible_level()
    ));

    s.push_str(&spend_summary(m, shown));
    if !m.spend.model.dropped().is_empty() {
        s.push_str(&format!("  constant zero in training, fixed at 0: {}\n", m.spend.model.dropped().join(", ")));
    }
    s.push('\n');
    s
}
