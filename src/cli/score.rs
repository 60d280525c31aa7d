//! `kam score`: one row per customer with its segment, RFM values and forecasts.

use super::input::{InputArgs, IntervalArgs, ModelArgs};
use super::output::{Cell, ColType, Column, ParquetSink, RowSink, write_csv_parallel};
use super::progress::Progress;
use super::table::{Table, thousands};
use crate::app::views::{HorizonIntervals, ValueIntervals};
use crate::domain::forecast::intervals::ForecastBands;
use crate::domain::forecast::portfolio::{Concentration, Outlook, PortfolioParams, Standing, summarise};
use crate::domain::forecast::{CustomerForecast, DEFAULT_DISCOUNT_RATE, DEFAULT_HORIZON, ForecastParams, population};
use crate::model::artifact::ModelArtifact;
use crate::model::place::purchases::{CustomerPurchases, PurchaseOutlook, standing};
use crate::model::place::{CustomerNow, Snapshot, snapshot};
use anyhow::Context;
use chrono::NaiveDate;
use rayon::prelude::*;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub intervals: IntervalArgs,
    #[command(flatten)]
    pub store: ModelArgs,
    /// Place customers at the end of the last complete period on or before this date (default:
    /// the model's as-of date).
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
    /// Forecast horizons 1..=H periods.
    #[arg(long, default_value_t = DEFAULT_HORIZON)]
    pub horizon: usize,
    /// Discount rate per period for expected value.
    #[arg(long, default_value_t = DEFAULT_DISCOUNT_RATE)]
    pub discount_rate: f64,
    /// Output file: .csv, .jsonl or .parquet (default: CSV on stdout, unless --summary).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the key-account movement report.
    #[arg(long)]
    pub summary: bool,
    /// In the report's population forecast, add new customers at the recent average rate.
    #[arg(long)]
    pub inflow: bool,
    /// Accounts listed in each part of the report.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    #[command(flatten)]
    pub states: super::input::StatesArgs,
}

fn column_name(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// Interval columns after `value_infinite`.
const VALUE_INTERVAL_COLUMNS: [&str; 8] = [
    "next_spend_lo",
    "next_spend_hi",
    "expected_periods_to_lapse_lo",
    "expected_periods_to_lapse_hi",
    "value_horizon_lo",
    "value_horizon_hi",
    "value_infinite_lo",
    "value_infinite_hi",
];

/// Interval columns of each horizon, after its spend.
const HORIZON_INTERVAL_COLUMNS: [&str; 6] = ["churn_lo", "churn_hi", "p_key_lo", "p_key_hi", "spend_lo", "spend_hi"];

fn columns(model: &ModelArtifact, horizon: usize, intervals: bool) -> Vec<Column> {
    let mut c: Vec<Column> = [
        ("customer_id", ColType::Str),
        ("segment", ColType::Str),
        ("previous_segment", ColType::Str),
        ("purchases", ColType::F64),
        ("spend", ColType::F64),
        ("recency_days", ColType::F64),
        ("frequency", ColType::F64),
        ("monetary", ColType::F64),
        ("tenure_periods", ColType::F64),
        ("next_spend", ColType::F64),
        ("expected_periods_to_lapse", ColType::F64),
        ("value_horizon", ColType::F64),
        ("value_infinite", ColType::F64),
        ("p_alive", ColType::F64),
        ("value_if_retained", ColType::F64),
        ("value_at_risk", ColType::F64),
        ("usual_gap_days", ColType::F64),
        ("spend_change", ColType::F64),
    ]
    .iter()
    .map(|(n, t)| Column { name: n.to_string(), ty: *t })
    .collect();
    if intervals {
        c.extend(VALUE_INTERVAL_COLUMNS.iter().map(|n| Column { name: n.to_string(), ty: ColType::F64 }));
    }
    for h in 1..=horizon {
        for (n, t) in [
            ("most_likely", ColType::Str),
            ("churn", ColType::F64),
            ("reactivation", ColType::F64),
            ("spend", ColType::F64),
            ("expected_purchases", ColType::F64),
            ("p_no_purchase", ColType::F64),
            ("p_leave_tier", ColType::F64),
            ("p_key_own", ColType::F64),
        ] {
            c.push(Column { name: format!("h{h}_{n}"), ty: t });
        }
        if intervals {
            c.extend(HORIZON_INTERVAL_COLUMNS.iter().map(|n| Column { name: format!("h{h}_{n}"), ty: ColType::F64 }));
        }
        for s in &model.segments.states {
            c.push(Column { name: format!("h{h}_p_{}", column_name(s)), ty: ColType::F64 });
        }
    }
    c
}

/// A customer's forecast: the chain forecast of its state, its own first-period spend and its
/// BTYD quantities. Only the first period's spend and the values depend on the customer beyond
/// its state in the chain, so the chain part is computed once per state; where the model blends,
/// the spend per period and the values are the served (blended) ones.
#[derive(Clone)]
struct Scored<'a> {
    base: &'a CustomerForecast,
    next_spend: f64,
    value_horizon: f64,
    value_infinite: Option<f64>,
    purchases: Option<CustomerPurchases>,
    /// Its standing at the horizon, from `purchases` and the served value, computed once.
    standing: Option<Standing>,
    /// The served spend per period where the model blends (`None`: the chain's).
    served_spend: Option<Vec<f64>>,
}

impl<'a> Scored<'a> {
    /// `base` is the state's forecast with a first-period spend of 0.
    fn new(
        base: &'a CustomerForecast,
        now: &CustomerNow,
        discount_rate: f64,
        outlook: Option<&PurchaseOutlook>,
        purchases: Option<CustomerPurchases>,
    ) -> Self {
        let next_spend = now.next_spend;
        let first = next_spend / (1.0 + discount_rate);
        let mut scored = Self {
            base,
            next_spend,
            value_horizon: base.value_horizon + first,
            value_infinite: base.value_infinite.map(|v| v + first),
            purchases,
            standing: None,
            served_spend: None,
        };
        if let (Some(o), Some(own)) = (outlook, &scored.purchases) {
            let chain: Vec<f64> = (0..base.horizons.len()).map(|h| scored.spend(h + 1)).collect();
            if let Some(v) = o.serve(&chain, scored.value_horizon, scored.value_infinite, own, discount_rate) {
                (scored.value_horizon, scored.value_infinite) = (v.value_horizon, v.value_infinite);
                scored.served_spend = Some(v.spend);
            }
        }
        scored.standing = scored.purchases.as_ref().map(|p| standing(now, p, discount_rate, scored.value_horizon));
        scored
    }

    /// Expected spend in period h.
    fn spend(&self, h: usize) -> f64 {
        match &self.served_spend {
            Some(s) => s[h - 1],
            None if h == 1 => self.next_spend,
            None => self.base.horizons[h - 1].expected_spend,
        }
    }
}

fn cells<'a>(
    ids: &'a [String],
    states: &'a [String],
    now: &CustomerNow,
    f: &Scored<'a>,
    bands: Option<&ForecastBands>,
    out: &mut Vec<Cell<'a>>,
) {
    let purchases = &f.purchases;
    out.clear();
    out.push(Cell::Str(&ids[now.customer as usize]));
    out.push(Cell::Str(&states[now.state]));
    out.push(now.previous_state.map_or(Cell::Null, |s| Cell::Str(&states[s])));
    match &now.last {
        Some(r) => out.extend([
            Cell::F64(f64::from(r.purchases)),
            Cell::F64(r.spend),
            Cell::F64(f64::from(r.recency_days)),
            Cell::F64(f64::from(r.frequency)),
            Cell::F64(r.monetary),
            Cell::F64(f64::from(r.tenure)),
        ]),
        None => out.extend([Cell::Null; 6]),
    }
    out.push(Cell::F64(now.next_spend));
    out.push(f.base.expected_periods_to_lapse.map_or(Cell::Null, Cell::F64));
    out.push(Cell::F64(f.value_horizon));
    out.push(f.value_infinite.map_or(Cell::Null, Cell::F64));
    out.push(purchases.as_ref().map_or(Cell::Null, |p| Cell::F64(p.p_alive)));
    let standing = f.standing;
    out.push(standing.map_or(Cell::Null, |s| Cell::F64(s.value_if_retained)));
    out.push(standing.map_or(Cell::Null, |s| Cell::F64(s.value_at_risk)));
    out.push(standing.and_then(|s| s.usual_gap_days).map_or(Cell::Null, Cell::F64));
    out.push(standing.and_then(|s| s.spend_change).map_or(Cell::Null, Cell::F64));
    let values = bands.map(|b| b.values(now.state, now.next_spend, now.next_spend_se, &mut Vec::new()));
    if let (Some(b), Some((first, value, infinite))) = (bands, values) {
        let to_lapse = b.state_periods_to_lapse(now.state);
        out.extend([
            Cell::F64(first.lo),
            Cell::F64(first.hi),
            to_lapse.map_or(Cell::Null, |i| Cell::F64(i.lo)),
            to_lapse.map_or(Cell::Null, |i| Cell::F64(i.hi)),
            Cell::F64(value.lo),
            Cell::F64(value.hi),
            infinite.map_or(Cell::Null, |i| Cell::F64(i.lo)),
            infinite.map_or(Cell::Null, |i| Cell::F64(i.hi)),
        ]);
    }
    for h in &f.base.horizons {
        out.push(Cell::Str(&states[h.most_likely]));
        out.push(Cell::F64(h.churn));
        out.push(h.reactivation.map_or(Cell::Null, Cell::F64));
        out.push(Cell::F64(f.spend(h.h)));
        out.push(purchases.as_ref().map_or(Cell::Null, |p| Cell::F64(p.expected_purchases[h.h - 1])));
        out.push(purchases.as_ref().map_or(Cell::Null, |p| Cell::F64(p.p_no_purchase[h.h - 1])));
        out.push(purchases.as_ref().and_then(|p| p.p_leave_tier.get(h.h - 1)).map_or(Cell::Null, |p| Cell::F64(*p)));
        out.push(purchases.as_ref().and_then(|p| p.p_key.get(h.h - 1)).map_or(Cell::Null, |p| Cell::F64(*p)));
        if let (Some(b), Some((first, _, _))) = (bands, values) {
            let hb = &b.state_horizons(now.state)[h.h - 1];
            let spend = if h.h == 1 { first } else { hb.expected_spend };
            out.extend(
                [hb.churn.lo, hb.churn.hi, hb.p_key.lo, hb.p_key.hi, spend.lo, spend.hi].into_iter().map(Cell::F64),
            );
        }
        out.extend(h.distribution.iter().map(|p| Cell::F64(*p)));
    }
}

#[derive(serde::Serialize)]
struct JsonHorizon<'a> {
    h: usize,
    distribution: serde_json::Map<String, serde_json::Value>,
    most_likely: &'a str,
    p_key: f64,
    churn: f64,
    reactivation: Option<f64>,
    expected_spend: f64,
    expected_purchases: Option<f64>,
    p_no_purchase: Option<f64>,
    p_leave_tier: Option<f64>,
    p_key_own: Option<f64>,
    #[serde(flatten)]
    intervals: Option<HorizonIntervals<'a>>,
}

fn json_line(
    ids: &[String],
    states: &[String],
    now: &CustomerNow,
    f: &CustomerForecast,
    bands: Option<&ForecastBands>,
    purchases: Option<&CustomerPurchases>,
    standing: Option<Standing>,
) -> serde_json::Value {
    let bands = bands.map(|b| b.customer(now.state, now.next_spend, now.next_spend_se));
    let mut horizon_bands = bands.as_ref().map(|b| b.horizons.iter());
    let horizons: Vec<JsonHorizon> = f
        .horizons
        .iter()
        .map(|h| JsonHorizon {
            intervals: horizon_bands.as_mut().and_then(|it| it.next()).map(|b| HorizonIntervals::new(b, states)),
            h: h.h,
            distribution: states.iter().cloned().zip(h.distribution.iter().map(|p| serde_json::json!(p))).collect(),
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
        .collect();
    let mut line = serde_json::to_value(now.line(ids, states)).expect("a line serializes");
    let fields = line.as_object_mut().expect("a line is an object");
    fields.insert("expected_periods_to_lapse".into(), serde_json::json!(f.expected_periods_to_lapse));
    fields.insert("value_horizon".into(), serde_json::json!(f.value_horizon));
    fields.insert("value_infinite".into(), serde_json::json!(f.value_infinite));
    fields.insert("p_alive".into(), serde_json::json!(purchases.as_ref().map(|p| p.p_alive)));
    fields.insert("value_if_retained".into(), serde_json::json!(standing.map(|s| s.value_if_retained)));
    fields.insert("value_at_risk".into(), serde_json::json!(standing.map(|s| s.value_at_risk)));
    fields.insert("usual_gap_days".into(), serde_json::json!(standing.and_then(|s| s.usual_gap_days)));
    fields.insert("spend_change".into(), serde_json::json!(standing.and_then(|s| s.spend_change)));
    if let Some(b) = &bands {
        let v: ValueIntervals = ValueIntervals::from(b);
        if let serde_json::Value::Object(m) = serde_json::to_value(v).expect("intervals serialize") {
            fields.extend(m);
        }
    }
    fields.insert("horizons".into(), serde_json::json!(horizons));
    line
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let params = ForecastParams { horizon: a.horizon, discount_rate: a.discount_rate };
    params.check().map_err(|e| anyhow::anyhow!("--{e}"))?;
    let (store, id) = a.store.resolve()?;
    let model = store.load(&id)?;
    let progress = Progress::new();
    let unit = model.periods.unit;
    let (activity, _, attributes) = a.input.activity(&progress, &|_| unit)?;
    progress.step("placing customers");
    let snap = snapshot(&activity, &model, a.as_of, attributes.as_ref())
        .with_context(|| format!("scoring {} failed", a.input.path().display()))?;
    let forecaster = model.forecaster(params)?;
    let interval_params = a.intervals.params()?;
    if interval_params.draws > 0 {
        progress.step(format!("drawing {} chains from the posterior", interval_params.draws));
    }
    let bands = model.bands(params, interval_params);
    let bands = bands.as_ref();
    let ids = &activity.customer_ids;
    let states = &model.segments.states;
    progress.step("forecasting");
    let per_state: Vec<CustomerForecast> = (0..states.len()).map(|s| forecaster.customer(s, 0.0)).collect();
    // Customers with their own first-step row (a kept covariate model) get their own chain part.
    let own: Vec<Option<CustomerForecast>> = snap
        .customers
        .iter()
        .map(|c| c.first_step.as_ref().map(|q| forecaster.customer_with_first_step(c.state, q, 0.0)))
        .collect();
    // P(alive), expected purchases and the customer's own standing from the model's BTYD fit,
    // where it has one; with its blend, the served spend and values.
    let outlook = PurchaseOutlook::new(&model);
    let purchases_of = |c: &CustomerNow| outlook.as_ref().and_then(|o| o.of(c, snap.as_of, a.horizon));
    let forecasts: Vec<Scored> = snap
        .customers
        .par_iter()
        .zip(&own[..])
        .map(|(c, o)| {
            let base = o.as_ref().unwrap_or(&per_state[c.state]);
            Scored::new(base, c, a.discount_rate, outlook.as_ref(), purchases_of(c))
        })
        .collect();
    let write_rows = a.out.is_some() || !a.summary;
    if write_rows {
        progress.step("writing scores");
        let ext = a.out.as_ref().and_then(|p| p.extension()).map(|e| e.to_string_lossy().to_ascii_lowercase());
        match ext.as_deref() {
            Some("jsonl") | Some("ndjson") => {
                let path = a.out.as_ref().unwrap();
                let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
                let mut w = std::io::BufWriter::new(file);
                for (c, scored) in snap.customers.iter().zip(&forecasts) {
                    let mut f = forecaster.customer_given(c.state, c.first_step.as_deref(), c.next_spend);
                    if let (Some(o), Some(own)) = (&outlook, &scored.purchases) {
                        o.serve_into(&mut f, own, a.discount_rate);
                    }
                    let line = json_line(ids, states, c, &f, bands, scored.purchases.as_ref(), scored.standing);
                    crate::app::numbers::to_writer(&mut w, &line)?;
                    w.write_all(b"\n")?;
                }
                w.flush()?;
            }
            ext => {
                let cols = columns(&model, a.horizon, bands.is_some());
                let n = snap.customers.len();
                let (customers, forecasts) = (&snap.customers, &forecasts);
                match (ext, &a.out) {
                    (Some("parquet") | Some("pq"), Some(p)) => {
                        let mut sink: Box<dyn RowSink> = Box::new(ParquetSink::create(p, &cols)?);
                        let mut row = Vec::with_capacity(cols.len());
                        for i in 0..n {
                            cells(ids, states, &customers[i], &forecasts[i], bands, &mut row);
                            sink.write_row(&row)?;
                        }
                        sink.finish()?;
                    }
                    (Some("csv") | Some("txt") | None, Some(p)) => {
                        let file =
                            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?;
                        write_csv_parallel(std::io::BufWriter::with_capacity(1 << 20, file), &cols, n, |i, row| {
                            cells(ids, states, &customers[i], &forecasts[i], bands, row)
                        })?;
                    }
                    (None, None) => {
                        write_csv_parallel(std::io::BufWriter::new(std::io::stdout().lock()), &cols, n, |i, row| {
                            cells(ids, states, &customers[i], &forecasts[i], bands, row)
                        })?
                    }
                    (Some(other), _) => {
                        anyhow::bail!("--out: unknown extension .{other}; use .csv, .jsonl or .parquet")
                    }
                }
            }
        }
    }
    drop(progress);
    if a.summary {
        print!("{}", summary(&model, &snap, &forecasts, ids, bands, &a));
    }
    Ok(())
}

fn summary(
    model: &ModelArtifact,
    snap: &Snapshot,
    forecasts: &[Scored],
    ids: &[String],
    bands: Option<&ForecastBands>,
    a: &Args,
) -> String {
    let states = &model.segments.states;
    let n_states = states.len();
    let h = a.horizon;
    let unit = model.periods.unit;
    let horizon = unit.count(h);
    let shown = a.states.grouping(model);
    let mut s = format!(
        "\nkey-account report: {} customers as of {} under model {}; horizon: the next {horizon}, discount {} per {unit}\n\n",
        thousands(snap.customers.len() as u64),
        snap.as_of,
        model.id,
        a.discount_rate
    );
    let mut mix = vec![0.0; n_states];
    for c in &snap.customers {
        if c.last.is_some() {
            mix[c.state] += 1.0;
        }
    }
    let total: f64 = mix.iter().sum();
    let mut t = Table::new(vec!["segment now".into(), "customers".into(), "share".into()]);
    for (name, n) in shown.names.iter().zip(shown.sum(&mix)) {
        t.row(vec![name.clone(), thousands(n as u64), format!("{:.1}%", 100.0 * n / total.max(1.0))]);
    }
    let unknown = snap.customers.iter().filter(|c| c.last.is_none()).count();
    s.push_str(&t.render(2));
    if unknown > 0 {
        s.push_str(&format!(
            "  ({} customers with no purchase by the as-of date are scored as new)\n",
            thousands(unknown as u64)
        ));
    }

    let trailing: Vec<f64> = snap.customers.iter().filter_map(|c| c.last.map(|r| r.monetary)).collect();
    let expected: Vec<f64> = forecasts.iter().map(|f| f.value_horizon).collect();
    let (trailing, expected) = (Concentration::new(&trailing), Concentration::new(&expected));
    let mut t = Table::new(vec![
        "value concentration".into(),
        format!("trailing value ({})", unit.count(model.segments.scheme.window as usize)),
        format!("expected value, next {horizon}"),
    ]);
    for share in [0.01, 0.05, 0.10, 0.20] {
        t.row(vec![
            format!("top {:.0}% of customers hold", share * 100.0),
            format!("{:.1}%", 100.0 * trailing.share_of_top(share)),
            format!("{:.1}%", 100.0 * expected.share_of_top(share)),
        ]);
    }
    s.push('\n');
    s.push_str(&t.render(2));

    if let Some(key) = model.key_index() {
        let outlooks: Vec<Outlook> = snap
            .customers
            .iter()
            .zip(forecasts)
            .map(|(c, f)| Outlook {
                customer_id: ids[c.customer as usize].clone(),
                state: c.state,
                value: f.value_horizon,
                churn: f.base.horizons[h - 1].churn,
                p_alive: f.purchases.as_ref().map(|p| p.p_alive),
                previous_state: c.previous_state,
                standing: f.standing,
            })
            .collect();
        let lapsed = model.lapsed_states();
        // Named as shown: moves to "dormant", not to dormant_1_key (with --states detailed, so).
        let names: Vec<String> = (0..n_states).map(|i| shown.name_of(i).to_string()).collect();
        let portfolio =
            summarise(&outlooks, &names, Some(key), &lapsed, PortfolioParams { top: a.top, ..Default::default() });
        s.push_str(&super::key_report::key_report(&portfolio, &states[key], &horizon));
    }

    let sizes = &model.segments.sizes_by_period;
    let recent = &sizes[sizes.len().saturating_sub(4)..];
    let inflow =
        if a.inflow { recent.iter().map(|p| p[0] as f64).sum::<f64>() / recent.len().max(1) as f64 } else { 0.0 };
    let forecast = population(model.transitions.model.matrix(), &mix, h, inflow, 0);
    let mut header = vec![format!("population forecast ({unit}s ahead)")];
    header.extend(shown.names.iter().cloned());
    let mut t = Table::new(header);
    let mut row = vec![format!("now ({})", super::train::period_label(unit, snap.as_of))];
    row.extend(shown.sum(&mix).iter().map(|x| format!("{x:.0}")));
    t.row(row);
    let realized = bands.map(|b| b.population_grouped(&mix, h, inflow, 0, &shown.of_state).realized);
    for (k, m) in forecast.iter().enumerate() {
        let m = shown.sum(m);
        let mut row = vec![format!("+{}", k + 1)];
        match &realized {
            Some(r) => row.extend(m.iter().zip(&r[k]).map(|(x, i)| format!("{x:.0} [{:.0}–{:.0}]", i.lo, i.hi))),
            None => row.extend(m.iter().map(|x| format!("{x:.0}"))),
        }
        t.row(row);
    }
    s.push('\n');
    s.push_str(&t.render(2));
    if let Some(b) = bands {
        s.push_str(&format!(
            "  [lo–hi]: {:.0}% prediction interval on the counts ({} posterior draws of the chain and each customer's move)\n",
            100.0 * b.params().level,
            b.params().draws
        ));
    }
    if a.inflow {
        s.push_str(&format!(
            "  with {inflow:.0} new customers per period (the average of the last {} training periods)\n",
            recent.len()
        ));
    }
    s
}
