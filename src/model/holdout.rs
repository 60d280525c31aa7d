//! Scoring a trained model on the holdout after its as-of date: what it forecast against what
//! happened, beside naive baselines and the BTYD models — per customer ([`HoldoutColumns`], what
//! the blend weights are set on) and as the backtest record ([`Evaluation`]).

use crate::domain::activity::Activity;
use crate::domain::backtest::{
    Baselined, ChurnScores, Evaluation, IntervalCoverage, PurchasesInPeriod, SegmentScores, SizesAt,
};
use crate::domain::btyd::baselines::{BtydBaselines, BtydForecast, History, histories};
use crate::domain::calendar::{Calendar, date_of};
use crate::domain::forecast::intervals::IntervalParams;
use crate::domain::forecast::{ForecastParams, Forecaster, population};
use crate::domain::metrics::{auc, binary_log_loss, brier, calibration_deciles, spend_errors};
use crate::domain::transactions::CustomerAttributes;
use crate::model::artifact::BtydModel;
use crate::model::artifact::ModelArtifact;
use crate::model::parallel::Rayon;
use crate::model::place::{aligned_attributes, for_each_customer};
use crate::model::train::TrainError;
use chrono::NaiveDate;

/// Where the holdout ends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HoldoutEnd {
    /// The end of the last complete period in the data.
    DataEnd,
    /// The last period ending on or before this date.
    Date(NaiveDate),
    /// This many periods after the calibration end.
    Periods(usize),
}

/// Why a backtest could not run.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Calendar(#[from] crate::domain::calendar::CalendarError),
    #[error(transparent)]
    Forecast(#[from] crate::domain::forecast::ForecastError),
    #[error("the holdout has no complete period after the calibration end {0}")]
    EmptyHoldout(NaiveDate),
    #[error("no customer with a purchase by the calibration end")]
    NoCustomers,
    #[error("the trained model's covariate transitions are unusable: {0}")]
    Covariates(#[from] crate::domain::chain::covariates::CovariateError),
}

struct Observed {
    state: usize,
    next_state: usize,
    later_states: Vec<usize>,
    bought_in_holdout: bool,
    /// Purchase occasions in the holdout, and in each holdout period.
    holdout_purchases: u32,
    purchases_by_period: Vec<u32>,
    holdout_spend: f64,
    /// Gross value (spend or margin) of the current period.
    current_spend: f64,
    /// Service cost subtracted from the current period's value (≤ 0; 0 without one).
    current_cost: f64,
    next_spend: f64,
    /// The customer's own first-step row (a kept covariate model), if any.
    first_step: Option<Vec<f64>>,
    /// Its (x, t_x, T) purchase history at the calibration end, for the BTYD baselines.
    history: Option<History>,
}

/// One BTYD baseline's per-customer forecasts; complete only when every customer has one.
#[derive(Default)]
struct BtydColumns {
    p_no_purchase: Vec<f64>,
    spend: Vec<f64>,
    missing: bool,
}

impl BtydColumns {
    fn push(&mut self, f: Option<BtydForecast>) {
        match f {
            Some(f) if f.p_no_purchase.is_finite() && f.expected_spend.is_finite() => {
                self.p_no_purchase.push(f.p_no_purchase);
                self.spend.push(f.expected_spend);
            }
            _ => self.missing = true,
        }
    }

    fn complete(&self) -> Option<&Self> {
        (!self.missing).then_some(self)
    }
}

/// Which BTYD baselines a holdout fits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Baselines {
    /// BG/NBD and Pareto/NBD, each with Gamma–Gamma (`kam evaluate`).
    Standard,
    /// BG/NBD with Gamma–Gamma only: what the blend is set with (see [`crate::model::blend`]).
    ForBlend,
}

/// Per-customer forecasts and outcomes of a holdout, for the blend.
#[derive(Clone, Debug, Default)]
pub struct HoldoutColumns {
    /// No purchase in the holdout.
    pub no_purchase: Vec<bool>,
    pub actual_spend: Vec<f64>,
    /// The chain alone.
    pub chain_no_purchase: Vec<f64>,
    pub chain_spend: Vec<f64>,
    /// BG/NBD and Pareto/NBD with Gamma–Gamma, where fitted for every customer.
    pub bg_nbd: Option<(Vec<f64>, Vec<f64>)>,
    pub pareto_nbd: Option<(Vec<f64>, Vec<f64>)>,
}

/// Scores `model` (trained on `activity` up to its as-of date) on the holdout from its as-of date to
/// `holdout_end`: the customers who had bought by then, forecast and observed with the model's
/// own cut-points. Where the model carries a blend, its column is the blend and the chain alone is
/// reported beside it.
pub fn score_holdout(
    activity: &Activity,
    attributes: Option<&CustomerAttributes>,
    model: &ModelArtifact,
    holdout_end: HoldoutEnd,
    baselines: Baselines,
) -> Result<(Evaluation, HoldoutColumns), EvaluateError> {
    let (first, last) = (activity.first_day, activity.last_day);
    let t = model.periods.spans.len() - 1;
    let unit = model.periods.unit;
    let holdout_as_of = match holdout_end {
        HoldoutEnd::DataEnd => None,
        HoldoutEnd::Date(d) => Some(d),
        HoldoutEnd::Periods(k) => {
            Some(date_of(unit.end(unit.ordinal(crate::domain::calendar::day_of(model.periods.as_of)) + k as i64)))
        }
    };
    let (calendar, _) = Calendar::fit(unit, first, last, holdout_as_of)?;
    if calendar.len() <= t + 1 {
        return Err(EvaluateError::EmptyHoldout(model.periods.as_of));
    }
    let k = calendar.len() - 1 - t;
    let n_states = model.segments.states.len();
    let inactive = model.inactive_states();

    // What happened, with the model's cut-points.
    let attrs = aligned_attributes(model, attributes, activity.customers());
    let na = model.spend.model.design().attributes.len();
    let design = model.spend.model.design().clone();
    let mut x = vec![0.0; design.len()];
    let first_step = model.first_step()?;
    let next_value = model.next_value();
    let flow = model.value_flow().expect("a trained model has a valid value flow");
    let lapsed = model.lapsed_states();
    let mut observed = Vec::new();
    let mut new_in_holdout = 0usize;
    let t32 = t as u32;
    let calibration_day = crate::domain::calendar::day_of(model.periods.as_of);
    let histories = histories(activity, calibration_day);
    for_each_customer(activity, model, &calendar, |c, rows, states| {
        let Some(pos) = rows.iter().position(|r| r.period == t32) else {
            new_in_holdout += 1;
            return;
        };
        let r = &rows[pos];
        let own = &attrs[c as usize * na..(c as usize + 1) * na];
        design.features(states[pos], r, own, &mut x);
        let holdout = &rows[pos + 1..];
        // Value flows on the model's basis (plain spend by default).
        let current_cost = if lapsed[states[pos]] || !flow.has_cost() { 0.0 } else { -flow.service_cost(own) };
        observed.push(Observed {
            state: states[pos],
            next_state: states[pos + 1],
            later_states: states[pos + 1..].to_vec(),
            bought_in_holdout: holdout.iter().any(|r| r.purchases > 0),
            holdout_purchases: holdout.iter().map(|r| r.purchases).sum(),
            purchases_by_period: holdout.iter().map(|r| r.purchases).collect(),
            holdout_spend: holdout.iter().zip(&states[pos + 1..]).map(|(r, &s)| flow.flow(r, lapsed[s], own)).sum(),
            current_spend: flow.gross(r),
            current_cost,
            next_spend: next_value.predict(&model.spend.model, states[pos], &x).0,
            first_step: first_step.as_ref().and_then(|f| f.row_of(states[pos], r, own)),
            history: histories[c as usize],
        });
    });
    if observed.is_empty() {
        return Err(EvaluateError::NoCustomers);
    }

    let p = model.transitions.model.matrix();
    let forecaster: Forecaster = model.forecaster(ForecastParams { horizon: k, discount_rate: 0.0 })?;
    let counts = model.transitions.model.counts();

    // Next segment.
    let clip = |q: f64| q.clamp(1e-15, 1.0);
    let total_moves: u64 = counts.iter().flatten().sum();
    let stay = (0..n_states).map(|i| counts[i][i]).sum::<u64>() as f64 / total_moves.max(1) as f64;
    let (mut ll_m, mut acc_m, mut ll_p, mut acc_p) = (0.0, 0.0, 0.0, 0.0);
    // Churn and spend.
    let mut no_purchase = Vec::with_capacity(observed.len());
    let mut p_model = Vec::with_capacity(observed.len());
    let mut p_persist = Vec::with_capacity(observed.len());
    let mut p_segment = Vec::with_capacity(observed.len());
    let mut spend_actual = Vec::with_capacity(observed.len());
    let mut spend_model = Vec::with_capacity(observed.len());
    let mut spend_persist = Vec::with_capacity(observed.len());
    let mut spend_segment = Vec::with_capacity(observed.len());
    let mut sizes_actual = vec![vec![0u64; n_states]; k];
    let mut mix = vec![0.0; n_states];
    let segment_no_purchase: Vec<f64> = (0..n_states)
        .map(|i| {
            let n: u64 = counts[i].iter().sum();
            let q: u64 = (0..n_states).filter(|&j| inactive[j]).map(|j| counts[i][j]).sum();
            if n > 0 { q as f64 / n as f64 } else { 0.5 }
        })
        .collect();
    let m = &model.spend.spend_by_state;
    let r: Vec<f64> = p.iter().map(|row| row.iter().zip(m).map(|(a, b)| a * b).sum()).collect();
    // No purchase in the k − 1 periods after a first step into each state (for first-step rows).
    let no_purchase_after: Vec<f64> =
        (0..n_states).map(|j| Forecaster::no_purchase_probability(p, &inactive, j, k - 1)).collect();
    let mut with_first_step = 0usize;
    // The baseline columns: the BTYD models fitted on the evaluated customers' histories, over
    // the holdout's days.
    let btyd = BtydBaselines::fit_models(
        &observed.iter().map(|o| o.history).collect::<Vec<_>>(),
        &Rayon,
        baselines == Baselines::Standard,
    );
    // The model's own BTYD model, for its blend.
    let own = model.btyd.as_ref().map(|info| info.baselines());
    let holdout_days = f64::from(crate::domain::calendar::day_of(date_of(calendar.as_of())) - calibration_day);
    let mut bg_nbd = BtydColumns::default();
    let mut pareto_nbd = BtydColumns::default();
    let blend = model.btyd.as_ref().and_then(|b| b.blend.as_ref());
    let mut own_forecasts = BtydColumns::default();
    // Holdout purchases by calibration frequency, for customers with a history.
    let (mut freq_x, mut freq_actual, mut freq_bg, mut freq_pareto) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut bg_ok, mut pareto_ok) = (true, true);
    // The tracking of purchases per holdout period: actual, and each model's expected purchases
    // by the end of each period (differenced below), summed over the customers with a history.
    let period_days: Vec<f64> = (0..k).map(|h| f64::from(calendar.end(t + 1 + h) - calibration_day)).collect();
    // On a deterministic hash sample of about FIT_SAMPLE customers (each forecast costs a
    // hypergeometric series for Pareto/NBD), as means per customer.
    let with_history = observed.iter().filter(|o| o.history.is_some()).count();
    let keep = crate::domain::btyd::baselines::FIT_SAMPLE as f64 / with_history.max(1) as f64;
    let mut tracked = vec![[0.0; 3]; k];
    let mut sampled = 0usize;
    for (i, o) in observed.iter().enumerate() {
        let picked = keep >= 1.0
            || crate::domain::sampling::unit_interval(crate::domain::sampling::splitmix64(
                i as u64 ^ crate::domain::sampling::GOLDEN,
            )) < keep;
        if let Some(h) = o.history.as_ref().filter(|_| picked) {
            sampled += 1;
            for (p, &d) in period_days.iter().enumerate() {
                tracked[p][0] += f64::from(o.purchases_by_period.get(p).copied().unwrap_or(0));
                tracked[p][1] += btyd.bg_nbd_forecast(h, d).map_or(f64::NAN, |f| f.expected_purchases);
                tracked[p][2] += btyd.pareto_nbd_forecast(h, d).map_or(f64::NAN, |f| f.expected_purchases);
            }
        }
    }
    for o in &observed {
        let (bg, pareto) = match o.history {
            Some(h) => (btyd.bg_nbd_forecast(&h, holdout_days), btyd.pareto_nbd_forecast(&h, holdout_days)),
            None => (None, None),
        };
        if let Some(h) = o.history {
            freq_x.push(h.summary.x as u32);
            freq_actual.push(f64::from(o.holdout_purchases));
            bg_ok &= bg.is_some();
            pareto_ok &= pareto.is_some();
            freq_bg.push(bg.map_or(f64::NAN, |f| f.expected_purchases));
            freq_pareto.push(pareto.map_or(f64::NAN, |f| f.expected_purchases));
        }
        bg_nbd.push(bg);
        pareto_nbd.push(pareto);
        if let (Some(own), Some(b)) = (&own, blend) {
            own_forecasts.push(o.history.and_then(|h| match b.with {
                BtydModel::BgNbd => own.bg_nbd_forecast(&h, holdout_days),
                BtydModel::ParetoNbd => own.pareto_nbd_forecast(&h, holdout_days),
            }));
        }
        let f = match &o.first_step {
            Some(q) => forecaster.customer_with_first_step(o.state, q, o.next_spend),
            None => forecaster.customer(o.state, o.next_spend),
        };
        let dist = &f.horizons[0].distribution;
        ll_m -= clip(dist[o.next_state]).ln();
        acc_m += f64::from(u8::from(f.horizons[0].most_likely == o.next_state));
        let persist_p = if o.next_state == o.state { stay } else { (1.0 - stay) / (n_states - 1) as f64 };
        ll_p -= clip(persist_p).ln();
        acc_p += f64::from(u8::from(o.next_state == o.state));

        no_purchase.push(!o.bought_in_holdout);
        p_model.push(match &o.first_step {
            Some(q) => {
                with_first_step += 1;
                (0..n_states).filter(|&j| inactive[j]).map(|j| q[j] * no_purchase_after[j]).sum()
            }
            None => Forecaster::no_purchase_probability(p, &inactive, o.state, k),
        });
        p_persist.push(if inactive[o.state] { 0.99 } else { 0.01 });
        p_segment.push(segment_no_purchase[o.state]);

        spend_actual.push(o.holdout_spend);
        spend_model.push(f.horizons.iter().map(|h| h.expected_spend).sum());
        spend_persist.push((o.current_spend.max(0.0) + o.current_cost) * k as f64);
        spend_segment.push(r[o.state] * k as f64);

        mix[o.state] += 1.0;
        for (h, &s) in o.later_states.iter().enumerate() {
            sizes_actual[h][s] += 1;
        }
    }
    let columns = HoldoutColumns {
        no_purchase: no_purchase.clone(),
        actual_spend: spend_actual.clone(),
        chain_no_purchase: p_model.clone(),
        chain_spend: spend_model.clone(),
        bg_nbd: bg_nbd.complete().map(|c| (c.p_no_purchase.clone(), c.spend.clone())),
        pareto_nbd: pareto_nbd.complete().map(|c| (c.p_no_purchase.clone(), c.spend.clone())),
    };
    // The model's own column: the blend where it has one (and its BTYD model forecasts every
    // customer; else the chain alone).
    let blended = blend.and_then(|b| {
        let own = own_forecasts.complete()?;
        let (p, s) = (&own.p_no_purchase, &own.spend);
        let mix =
            |a: &[f64], c: &[f64], w: f64| a.iter().zip(c).map(|(a, c)| w * a + (1.0 - w) * c).collect::<Vec<_>>();
        Some((mix(&p_model, p, b.churn.weight), mix(&spend_model, s, b.spend.weight)))
    });
    let (p_model, spend_model, is_blend) = match blended {
        Some((p, s)) => (p, s, true),
        None => (p_model, spend_model, false),
    };
    let n = observed.len() as f64;
    let churn = |p: &[f64]| ChurnScores {
        auc: auc(p, &no_purchase),
        brier: brier(p, &no_purchase),
        log_loss: binary_log_loss(p, &no_purchase),
        calibration: calibration_deciles(p, &no_purchase),
    };
    let predicted_sizes = population(p, &mix, k, 0.0, 0);
    let intervals = IntervalParams::default();
    let bands = model
        .bands(ForecastParams { horizon: k, discount_rate: 0.0 }, intervals)
        .map(|b| b.population(&mix, k, 0.0, 0).realized);
    let mut coverage = IntervalCoverage { level: intervals.level, covered: 0, cells: 0 };
    let segment_sizes = (0..k)
        .map(|h| {
            let miss: f64 = predicted_sizes[h].iter().zip(&sizes_actual[h]).map(|(a, &b)| (a - b as f64).abs()).sum();
            let band = bands.as_ref().map(|b| &b[h]);
            if let Some(band) = band {
                for (i, &a) in band.iter().zip(&sizes_actual[h]) {
                    if i.hi > 0.0 || a > 0 {
                        coverage.cells += 1;
                        coverage.covered += u64::from(i.contains(a as f64));
                    }
                }
            }
            SizesAt {
                period_start: date_of(calendar.start(t + 1 + h)),
                predicted: predicted_sizes[h].clone(),
                predicted_lo: band.map(|b| b.iter().map(|i| i.lo).collect()).unwrap_or_default(),
                predicted_hi: band.map(|b| b.iter().map(|i| i.hi).collect()).unwrap_or_default(),
                actual: sizes_actual[h].clone(),
                misplaced_share: miss / 2.0 / n,
            }
        })
        .collect();

    let evaluation = Evaluation {
        calibration_end: model.periods.as_of,
        holdout_start: date_of(calendar.start(t + 1)),
        holdout_end: date_of(calendar.as_of()),
        holdout_periods: k,
        states: model.segments.states.clone(),
        customers: observed.len(),
        customers_new_in_holdout: new_in_holdout,
        next_segment: Baselined {
            model: SegmentScores { log_loss: ll_m / n, accuracy: acc_m / n },
            persistence: SegmentScores { log_loss: ll_p / n, accuracy: acc_p / n },
            segment_average: None,
            bg_nbd: None,
            pareto_nbd: None,
            chain: None,
        },
        no_purchase_rate: no_purchase.iter().filter(|x| **x).count() as f64 / n,
        no_purchase: Baselined {
            model: churn(&p_model),
            persistence: churn(&p_persist),
            segment_average: Some(churn(&p_segment)),
            bg_nbd: bg_nbd.complete().map(|c| churn(&c.p_no_purchase)),
            pareto_nbd: pareto_nbd.complete().map(|c| churn(&c.p_no_purchase)),
            chain: is_blend.then(|| churn(&columns.chain_no_purchase)),
        },
        holdout_spend: Baselined {
            model: spend_errors(&spend_model, &spend_actual),
            persistence: spend_errors(&spend_persist, &spend_actual),
            segment_average: Some(spend_errors(&spend_segment, &spend_actual)),
            bg_nbd: bg_nbd.complete().map(|c| spend_errors(&c.spend, &spend_actual)),
            pareto_nbd: pareto_nbd.complete().map(|c| spend_errors(&c.spend, &spend_actual)),
            chain: is_blend.then(|| spend_errors(&columns.chain_spend, &spend_actual)),
        },
        segment_sizes,
        segment_size_coverage: bands.is_some().then_some(coverage),
        customers_with_covariate_rows: with_first_step,
        btyd_fits: btyd.reports(),
        btyd_failures: btyd.failures(),
        blend: blend.cloned(),
        purchases_by_period: (0..k)
            .map(|i| {
                let before = if i == 0 { [0.0; 3] } else { tracked[i - 1] };
                let per = sampled.max(1) as f64;
                let finite = |x: f64| x.is_finite().then_some(x / per);
                PurchasesInPeriod {
                    period_start: date_of(calendar.start(t + 1 + i)),
                    customers: sampled as u64,
                    actual: tracked[i][0] / per,
                    bg_nbd: finite(tracked[i][1] - before[1]),
                    pareto_nbd: finite(tracked[i][2] - before[2]),
                }
            })
            .collect(),
        purchases_by_frequency: crate::domain::backtest::purchases_by_frequency(
            &freq_x,
            &freq_actual,
            bg_ok.then_some(&freq_bg[..]),
            pareto_ok.then_some(&freq_pareto[..]),
        ),
    };
    Ok((evaluation, columns))
}
