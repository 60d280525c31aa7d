//! The training pipeline: transactions → periods → panel → segments → transition counts and
//! spend moments → fitted chain and regression → model artifact. Pure and deterministic.

use crate::domain::activity::{Activity, ActivityError, aggregate_in, unusual_cells};
use crate::domain::calendar::{Calendar, CalendarError, date_of};
use crate::domain::chain::counts::{TransitionCounts, sum_tables};
use crate::domain::chain::covariates;
use crate::domain::chain::diagnostics::time_homogeneity;
use crate::domain::chain::diagnostics::{TripleCounts, order_test, recent_window_check, thin_rows};
use crate::domain::chain::fit::{TransitionModel, smoothed_rows};
use crate::domain::chain::moves::{MoveSampler, feature_names};
use crate::domain::panel::{PanelRow, customer_panel};
use crate::domain::shards::{Parallel, SHARDS};
use crate::domain::spend::{
    FIT_SAMPLE, HELD_OUT_SAMPLE, SelectionInputs, SpendDesign, SpendError, SpendMoments, SpendSample, log_target,
    sample_key, sample_rate, select,
};
use crate::domain::states::SegmentError;
use crate::domain::transactions::{CustomerAttributes, Transactions};
use crate::domain::value::{ValueError, ValueFlow};
use crate::model::artifact::{
    DataFingerprint, ModelArtifact, PeriodsInfo, SCHEMA_VERSION, SegmentsInfo, SpendInfo, TierThreshold,
    TransitionsInfo,
};
use crate::model::config::{ConfigError, TrainConfig};
use crate::model::parallel::Rayon;

/// How the transactions were read, for the fingerprint (the same whether kam or an engine
/// aggregated them).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SourceInfo {
    pub rows_skipped: u64,
    /// `--date-range` as given.
    pub date_range: Option<String>,
}

/// Why training failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Activity(#[from] ActivityError),
    #[error("the activity table is in {table} periods but the configuration asks for {config} periods")]
    UnitMismatch { table: String, config: String },
    #[error(transparent)]
    Calendar(#[from] CalendarError),
    #[error(transparent)]
    Segments(#[from] SegmentError),
    #[error(transparent)]
    Spend(#[from] SpendError),
    #[error(transparent)]
    Value(#[from] ValueError),
    #[error("no customer has a purchase on or before the as-of date {0}")]
    NoPurchases(chrono::NaiveDate),
}

/// Stages reported to a progress observer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Aggregating,
    LearningTiers,
    Counting,
    Fitting,
    /// The blend's BTYD fits ([`crate::model::blend`]).
    FittingBtyd,
    /// Its weights, on an inner backtest.
    SettingBlend,
}

/// Sums of one shard of customers in pass 2.
struct ShardStats {
    counts: TransitionCounts,
    sizes: Vec<Vec<u64>>,
    /// Spend-regression moments (targets: gross value, its log) of the moves into periods before
    /// the last, and into the last (held out when choosing the spend model).
    fit_moments: SpendMoments,
    held_out_moments: SpendMoments,
    /// Samples of those moves (see [`SpendSample`]).
    fit_sample: SpendSample,
    last_sample: SpendSample,
    held_out_sample: SpendSample,
    /// Sums of the value flows per state, their squares, and of revenue.
    spend_sum: Vec<f64>,
    spend_sq_sum: Vec<f64>,
    triples: Option<TripleCounts>,
    revenue_sum: Vec<f64>,
    without_attributes: u64,
    /// Moves with their covariates, for the covariate transitions (when configured).
    sampler: Option<MoveSampler>,
}

/// Aggregates transactions into the activity table in the configuration's periods (the
/// in-process feed of [`train`]).
pub fn activity_for(tx: &Transactions, config: &TrainConfig) -> Result<Activity, TrainError> {
    let params = config.check()?;
    Ok(aggregate_in(tx, |first| params.period_unit(first))?)
}

/// Trains a model on an activity table (from [`activity_for`], or read from an engine's
/// aggregates). `progress` hears each stage as it starts.
pub fn train(
    activity: &Activity,
    attributes: Option<&CustomerAttributes>,
    config: &TrainConfig,
    source: SourceInfo,
    progress: &mut dyn FnMut(Stage),
) -> Result<ModelArtifact, TrainError> {
    let params = config.check()?;
    let (first_day, last_day) = (activity.first_day, activity.last_day);
    let unit = params.period_unit(date_of(first_day));
    if unit != activity.unit {
        return Err(TrainError::UnitMismatch { table: activity.unit.to_string(), config: unit.to_string() });
    }
    let (calendar, note) = Calendar::fit(unit, first_day, last_day, params.as_of)?;
    progress(Stage::Aggregating);
    let last_period = calendar.len() as u32 - 1;
    let (rows, rows_used) = activity.rows(last_period);
    let ends = calendar.ends();
    let scheme = &params.scheme;
    let window = scheme.window;

    // Pass 1: trailing values of active, non-new customer-periods, for the tier cut-points.
    progress(Stage::LearningTiers);
    let customers = activity.customers();
    let pass1 = Rayon.in_shards(customers, |range| {
        let mut rows: Vec<PanelRow> = Vec::with_capacity(calendar.len());
        let (mut values, mut in_panel, mut panel_rows, mut into_last) = (Vec::new(), 0u64, 0u64, 0u64);
        for c in range {
            customer_panel(activity.customer(c), &ends, window, &mut rows);
            if let Some(last) = rows.last() {
                in_panel += 1;
                panel_rows += rows.len() as u64;
                into_last += u64::from(last.period == last_period && last.tenure > 0);
            }
            values.extend(rows.iter().filter(|r| r.tenure > 0 && r.purchases > 0).map(|r| r.monetary));
        }
        (values, in_panel, panel_rows, into_last)
    });
    let in_panel: u64 = pass1.iter().map(|p| p.1).sum();
    let panel_rows: u64 = pass1.iter().map(|p| p.2).sum();
    // Sampling rates of the spend model's row samples: moves are panel rows but each customer's
    // last; the held-out ones are the moves into the last period.
    let fit_rate = sample_rate(panel_rows - in_panel, FIT_SAMPLE);
    let held_out_rate = sample_rate(pass1.iter().map(|p| p.3).sum(), HELD_OUT_SAMPLE);
    let mut values: Vec<f64> = pass1.into_iter().flat_map(|p| p.0).collect();
    if in_panel == 0 {
        return Err(TrainError::NoPurchases(date_of(calendar.as_of())));
    }
    let thresholds = scheme.learn_thresholds(&mut values)?;
    drop(values);
    let segmenter = scheme.segmenter(thresholds.clone());

    // Attributes: means of observed values fill the gaps.
    let (attr_names, attr_values) = match attributes {
        Some(a) => (a.names.clone(), Some(&a.values)),
        None => (Vec::new(), None),
    };
    let k_attr = attr_names.len();
    let mut attr_means = vec![0.0; k_attr];
    if let Some(v) = attr_values {
        let mut n = vec![0u64; k_attr];
        for c in 0..customers {
            for k in 0..k_attr {
                let x = v[c * k_attr + k];
                if !x.is_nan() {
                    attr_means[k] += x;
                    n[k] += 1;
                }
            }
        }
        for k in 0..k_attr {
            attr_means[k] = if n[k] > 0 { attr_means[k] / n[k] as f64 } else { 0.0 };
        }
    }

    // Pass 2: states, transition counts, segment sizes, spend moments — per shard, merged in
    // shard order (the sums are mergeable, and the order fixed, so the result does not depend
    // on the number of threads).
    progress(Stage::Counting);
    let states = scheme.states();
    let n_states = states.len();
    let design = SpendDesign { states: states.clone(), attributes: attr_names };
    if config.value.basis == crate::domain::value::ValueBasis::Margin && !activity.has_margin {
        return Err(ValueError::NoMargin.into());
    }
    let flow = ValueFlow::new(&config.value, &design.attributes)?;
    let space = scheme.state_space();
    let lapsed: Vec<bool> = space.iter().map(|s| s.is_lapsed()).collect();
    let shards = Rayon.in_shards(customers, |range| {
        let mut st = ShardStats {
            counts: TransitionCounts::new(n_states, calendar.len()),
            sizes: vec![vec![0u64; n_states]; calendar.len()],
            fit_moments: SpendMoments::with_targets(design.len(), 2),
            held_out_moments: SpendMoments::with_targets(design.len(), 2),
            fit_sample: SpendSample::new(&design),
            last_sample: SpendSample::new(&design),
            held_out_sample: SpendSample::new(&design),
            spend_sum: vec![0.0; n_states],
            spend_sq_sum: vec![0.0; n_states],
            triples: TripleCounts::new(n_states),
            revenue_sum: vec![0.0; n_states],
            without_attributes: 0,
            sampler: params.covariates.then(|| {
                MoveSampler::new(n_states, crate::domain::panel::RFM_FEATURES.len() + k_attr, calendar.len(), SHARDS)
            }),
        };
        let mut rows: Vec<PanelRow> = Vec::with_capacity(calendar.len());
        let mut x = vec![0.0; design.len()];
        let mut attrs = vec![0.0; k_attr];
        let mut row_states = Vec::with_capacity(calendar.len());
        for c in range {
            customer_panel(activity.customer(c), &ends, window, &mut rows);
            if rows.is_empty() {
                continue;
            }
            if let Some(v) = attr_values {
                let mut missing = true;
                for k in 0..k_attr {
                    let val = v[c * k_attr + k];
                    missing &= val.is_nan();
                    attrs[k] = if val.is_nan() { attr_means[k] } else { val };
                }
                st.without_attributes += u64::from(missing && k_attr > 0);
            }
            row_states.clear();
            row_states.extend(rows.iter().map(|r| segmenter.state_of(r)));
            for (k, r) in rows.iter().enumerate() {
                let s = row_states[k];
                st.sizes[r.period as usize][s] += 1;
                let value = flow.flow(r, lapsed[s], &attrs);
                st.spend_sum[s] += value;
                st.spend_sq_sum[s] += value * value;
                st.revenue_sum[s] += r.spend;
                if k + 1 < rows.len() {
                    if k > 0
                        && let Some(t) = st.triples.as_mut()
                    {
                        t.record(row_states[k - 1], s, row_states[k + 1]);
                    }
                    st.counts.record(r.period as usize, s, row_states[k + 1]);
                    if let Some(sampler) = st.sampler.as_mut() {
                        sampler.record(c as u32, r, s, row_states[k + 1], &attrs);
                    }
                    design.features(s, r, &attrs, &mut x);
                    let next = &rows[k + 1];
                    let y = flow.gross(next);
                    let into_last = next.period == last_period;
                    let key = sample_key(c as u64, next.period);
                    if into_last {
                        st.held_out_moments.add_targets(&x, &[y, log_target(y)]);
                        if key < held_out_rate {
                            st.held_out_sample.push(s, &x, y);
                        }
                    } else {
                        st.fit_moments.add_targets(&x, &[y, log_target(y)]);
                    }
                    if key < fit_rate {
                        if into_last { &mut st.last_sample } else { &mut st.fit_sample }.push(s, &x, y);
                    }
                }
            }
        }
        st
    });
    let mut shards = shards;
    let samplers: Vec<MoveSampler> = shards.iter_mut().filter_map(|s| s.sampler.take()).collect();
    let mut shards = shards.into_iter();
    let mut total = shards.next().expect("at least one shard");
    for st in shards {
        total.counts.merge(&st.counts);
        for (a, b) in total.sizes.iter_mut().flatten().zip(st.sizes.iter().flatten()) {
            *a += b;
        }
        total.fit_moments.merge(&st.fit_moments);
        total.held_out_moments.merge(&st.held_out_moments);
        total.fit_sample.append(&st.fit_sample);
        total.last_sample.append(&st.last_sample);
        total.held_out_sample.append(&st.held_out_sample);
        for (a, b) in total.revenue_sum.iter_mut().zip(&st.revenue_sum) {
            *a += b;
        }
        for (a, b) in total.spend_sum.iter_mut().zip(&st.spend_sum) {
            *a += b;
        }
        for (a, b) in total.spend_sq_sum.iter_mut().zip(&st.spend_sq_sum) {
            *a += b;
        }
        if let (Some(a), Some(b)) = (total.triples.as_mut(), st.triples.as_ref()) {
            a.merge(b);
        }
        total.without_attributes += st.without_attributes;
    }
    let ShardStats {
        counts,
        sizes,
        fit_moments,
        held_out_moments,
        fit_sample,
        last_sample,
        held_out_sample,
        spend_sum,
        spend_sq_sum,
        revenue_sum,
        triples,
        without_attributes,
        ..
    } = total;

    progress(Stage::Fitting);
    let allowed = scheme.allowed();
    let covariate_model = (!samplers.is_empty()).then(|| {
        // The pooled chain on the moves before the held-out ones (into the last period).
        let steps = counts.by_period();
        let earlier = sum_tables(&steps[..steps.len().saturating_sub(1)], n_states);
        let baseline = smoothed_rows(&earlier, &allowed, params.transitions.prior);
        let samples = MoveSampler::merge(samplers);
        covariates::fit(&states, feature_names(&design.attributes), &samples, &baseline, &Rayon)
    });
    let inactive: Vec<bool> = space.iter().map(|s| s.is_inactive()).collect();
    // The matrix from all periods' moves, or from the last K periods' only.
    let fitted_counts: Vec<Vec<u64>> = match params.recent_periods {
        Some(k) if k < counts.by_period().len() => {
            sum_tables(&counts.by_period()[counts.by_period().len() - k..], n_states)
        }
        _ => counts.pooled().to_vec(),
    };
    let model = TransitionModel::fit(
        states.clone(),
        allowed.clone(),
        &fitted_counts,
        &inactive,
        &scheme.borrow_plan(),
        params.transitions,
    );
    let thin = thin_rows(&model);
    let (spend, selection) = select(
        &SelectionInputs {
            design: &design,
            fit_moments: &fit_moments,
            held_out_moments: &held_out_moments,
            fit_sample: &fit_sample,
            last_sample: &last_sample,
            held_out_sample: &held_out_sample,
            choice: config.spend.model,
            tweedie_power: config.spend.tweedie_power,
        },
        &Rayon,
    )?;
    drop((fit_sample, last_sample, held_out_sample));
    let state_rows: Vec<u64> = (0..n_states).map(|s| sizes.iter().map(|p| p[s]).sum()).collect();
    let revenue_by_state: Vec<f64> = if config.value.is_revenue() {
        Vec::new()
    } else {
        (0..n_states).map(|s| if state_rows[s] > 0 { revenue_sum[s] / state_rows[s] as f64 } else { 0.0 }).collect()
    };
    let moves = counts.total();
    let spend_by_state: Vec<f64> = (0..n_states)
        .map(|s| {
            let n: u64 = sizes.iter().map(|p| p[s]).sum();
            if n > 0 { spend_sum[s] / n as f64 } else { 0.0 }
        })
        .collect();
    let spend_se_by_state: Vec<f64> = (0..n_states)
        .map(|s| {
            let n = sizes.iter().map(|p| p[s]).sum::<u64>() as f64;
            if n < 2.0 {
                return 0.0;
            }
            let variance = ((spend_sq_sum[s] - n * spend_by_state[s] * spend_by_state[s]) / (n - 1.0)).max(0.0);
            (variance / n).sqrt()
        })
        .collect();

    Ok(ModelArtifact {
        schema_version: SCHEMA_VERSION,
        id: String::new(),
        kam_version: env!("CARGO_PKG_VERSION").to_string(),
        config: config.clone(),
        periods: PeriodsInfo {
            unit,
            as_of: date_of(calendar.as_of()),
            spans: (0..calendar.len()).map(|t| (date_of(calendar.start(t)), date_of(calendar.end(t)))).collect(),
            partial_period_left_out: note.partial_period_left_out,
        },
        data: DataFingerprint {
            content_hash: activity.content_hash(),
            rows,
            rows_skipped: source.rows_skipped,
            date_range: source.date_range,
            warnings: unusual_cells(activity),
            rows_used,
            rows_after_as_of: rows - rows_used,
            customers: customers as u64,
            first_date: date_of(first_day),
            last_date: date_of(last_day),
        },
        segments: SegmentsInfo {
            scheme: scheme.clone(),
            thresholds: scheme
                .tiers
                .iter()
                .zip(&thresholds)
                .map(|(t, v)| TierThreshold { tier: t.clone(), min_trailing_value: *v })
                .collect(),
            states,
            sizes_by_period: sizes,
            customers_in_panel: in_panel,
            customers_without_purchase: customers as u64 - in_panel,
            panel_rows,
        },
        transitions: TransitionsInfo {
            model,
            counts_by_period: counts.by_period().to_vec(),
            moves,
            time_homogeneity: time_homogeneity(counts.by_period()),
            order: triples.as_ref().and_then(order_test),
            thin_rows: Some(thin),
            recent_window: recent_window_check(counts.by_period(), &allowed, params.transitions.prior),
            covariates: covariate_model,
        },
        backtest: None,
        btyd: None,
        spend: SpendInfo {
            model: spend,
            selection: Some(selection),
            value_basis: config.value.describe(),
            revenue_by_state,
            attribute_means: attr_means,
            spend_by_state,
            spend_se_by_state,
            customers_without_attributes: without_attributes,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::calendar::day_of;
    use chrono::NaiveDate;

    fn day(s: &str) -> i32 {
        day_of(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap())
    }

    /// Three customers over four quarters of 2024, worked by hand.
    fn fixture() -> Transactions {
        let rows = [
            // a: buys every quarter, big.
            (0, "2024-01-10", 500.0),
            (0, "2024-04-10", 400.0),
            (0, "2024-07-10", 450.0),
            (0, "2024-10-10", 600.0),
            // b: buys in Q1 and Q3, small.
            (1, "2024-02-01", 20.0),
            (1, "2024-08-01", 30.0),
            // c: first buys in Q2, then nothing.
            (2, "2024-05-05", 50.0),
            (2, "2024-12-31", -10.0), // a return: not a purchase
        ];
        Transactions {
            customer_ids: vec!["a".into(), "b".into(), "c".into()],
            customer: rows.iter().map(|r| r.0).collect(),
            day: rows.iter().map(|r| day(r.1)).collect(),
            amount: rows.iter().map(|r| r.2).collect(),
            margin: None,
        }
    }

    fn fit(
        tx: &Transactions,
        attrs: Option<&CustomerAttributes>,
        config: &TrainConfig,
    ) -> Result<ModelArtifact, TrainError> {
        train(&activity_for(tx, config)?, attrs, config, SourceInfo::default(), &mut |_| {})
    }

    #[test]
    fn a_hand_worked_fixture_gives_the_expected_states_and_counts() {
        let config = quarterly_config();
        let m = fit(&fixture(), None, &config).unwrap();
        // Active non-new trailing values: a 400, 450, 600; b 30 → top 50% = 2 values: cut 450.
        assert_eq!(m.segments.thresholds[0].min_trailing_value, 450.0);
        assert_eq!(m.segments.states, ["new", "key", "rest", "dormant", "lapsed"]);
        // a: new, rest(400), key(450), key(600)
        // b: new, dormant, rest(30), dormant
        // c:       new, dormant, lapsed
        assert_eq!(
            m.segments.sizes_by_period,
            vec![vec![2, 0, 0, 0, 0], vec![1, 0, 1, 1, 0], vec![0, 1, 1, 1, 0], vec![0, 1, 0, 1, 1]]
        );
        let n = m.transitions.model.counts();
        assert_eq!(n[0], vec![0, 0, 1, 2, 0]); // new → rest (a), dormant (b, c)
        assert_eq!(n[1], vec![0, 1, 0, 0, 0]); // key → key
        assert_eq!(n[2], vec![0, 1, 0, 1, 0]); // rest → key (a), dormant (b)
        assert_eq!(n[3], vec![0, 0, 1, 0, 1]); // dormant → rest (b), lapsed (c)
        assert_eq!(m.transitions.moves, 8);
        assert_eq!(m.transitions.model.unobserved_origins(), ["lapsed"]);
        assert_eq!(m.data.rows_used, 8);
        assert_eq!(m.segments.panel_rows, 11);
        assert_eq!(m.transitions.model.matrix()[3], vec![0.0, 0.0, 0.5, 0.0, 0.5]);
    }

    #[test]
    fn training_twice_gives_equal_models() {
        let c = TrainConfig::default();
        let a = fit(&fixture(), None, &c);
        let b = fit(&fixture(), None, &c);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }

    /// The hand-worked fixture's scheme: quarters, W = 1, L = 2, tiers key/rest at the top 50%.
    fn quarterly_config() -> TrainConfig {
        let mut config = TrainConfig::default();
        config.period.unit = crate::model::config::UnitName::Quarter;
        config.segments.lapse_after = 2;
        config.segments.split_inactive = false;
        config.segments.inactive_tiers = false;
        config.segments.window = 1;
        config.segments.tiers = vec!["key".into(), "rest".into()];
        config.segments.cuts = vec![0.5];
        config.transitions.prior = 0.0;
        config
    }

    /// The fixture with a margin of 30% on every row, on a margin basis with a service cost of 5
    /// per period not lapsed. States as in the hand-worked fixture above:
    /// a: new 500, rest 400, key 450, key 600; b: new 20, dormant, rest 30, dormant;
    /// c: new 50, dormant, lapsed (a return of 10).
    #[test]
    fn margin_less_service_cost_gives_the_value_flows_by_hand() {
        let mut tx = fixture();
        tx.margin = Some(tx.amount.iter().map(|a| 0.3 * a).collect());
        let mut config = quarterly_config();
        config.value.basis = crate::domain::value::ValueBasis::Margin;
        config.value.service_cost_per_period = 5.0;
        let m = fit(&tx, None, &config).unwrap();
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9) && a.len() == b.len();
        // new: 150 − 5, 6 − 5, 15 − 5; key: 135 − 5, 180 − 5; rest: 120 − 5, 9 − 5;
        // dormant: −5 three times; lapsed: the return's margin −3, no cost.
        let want = [(145.0 + 1.0 + 10.0) / 3.0, (130.0 + 175.0) / 2.0, (115.0 + 4.0) / 2.0, -5.0, -3.0];
        assert!(close(&m.spend.spend_by_state, &want), "{:?}", m.spend.spend_by_state);
        assert!(close(&m.spend.revenue_by_state, &[190.0, 525.0, 215.0, 0.0, -10.0]), "{:?}", m.spend.revenue_by_state);
        assert_eq!(m.spend.value_basis, "margin net of service cost (5 per period) in every period not lapsed");
        // The regression's target is the next period's margin, gross of cost: a 120, 135, 180;
        // b 0, 9, 0; c 0, −3 → 441 / 8.
        assert!((m.spend.model.mean_target() - 441.0 / 8.0).abs() < 1e-9);
        // The customer's own next period: the prediction less 5 × P(not lapsed next period).
        let next = m.next_value();
        let x = [0.0, 0.0, 1.0, 0.0, 2.0, 0.0, 0.0, 3.0];
        let p_lapse = m.transitions.model.matrix()[3][4];
        assert_eq!(p_lapse, 0.5);
        let (v, se) = next.predict(&m.spend.model, 3, &x);
        assert!((v - (m.spend.model.predict(&x) - 5.0 * 0.5)).abs() < 1e-9);
        assert_eq!(se, m.spend.model.prediction_se(&x));
        // The default is revenue: value flows are the plain spend means.
        let r = fit(&fixture(), None, &quarterly_config()).unwrap();
        assert!(close(&r.spend.spend_by_state, &[190.0, 525.0, 215.0, 0.0, -10.0]));
        assert!(r.spend.revenue_by_state.is_empty() && r.spend.value_basis == "revenue");
    }

    #[test]
    fn a_margin_basis_without_a_margin_column_or_a_missing_cost_attribute_is_refused() {
        let mut config = quarterly_config();
        config.value.basis = crate::domain::value::ValueBasis::Margin;
        let e = fit(&fixture(), None, &config).unwrap_err();
        assert!(e.to_string().starts_with("value.basis = \"margin\" needs a margin column"), "{e}");
        let mut config = quarterly_config();
        config.value.service_cost_attribute = Some("cost_to_serve".into());
        let attrs = CustomerAttributes { names: vec!["size".into()], values: vec![1.0, 2.0, f64::NAN] };
        let e = fit(&fixture(), Some(&attrs), &config).unwrap_err();
        assert!(e.to_string().starts_with("value.service_cost_attribute: no numeric column \"cost_to_serve\""), "{e}");
    }

    /// The service cost from an attribute: customers without a value pay the mean.
    #[test]
    fn a_service_cost_attribute_is_charged_per_customer() {
        let mut config = quarterly_config();
        config.value.service_cost_attribute = Some("cost_to_serve".into());
        // a pays 10, b 2, c has no value: the mean 6.
        let attrs = CustomerAttributes { names: vec!["cost_to_serve".into()], values: vec![10.0, 2.0, f64::NAN] };
        let m = fit(&fixture(), Some(&attrs), &config).unwrap();
        // new: (500 − 10) + (20 − 2) + (50 − 6); dormant: b −2 twice, c −6; lapsed: −10.
        let want_new = (490.0 + 18.0 + 44.0) / 3.0;
        assert!((m.spend.spend_by_state[0] - want_new).abs() < 1e-9, "{:?}", m.spend.spend_by_state);
        assert!((m.spend.spend_by_state[3] - (-10.0 / 3.0)).abs() < 1e-9);
        assert_eq!(m.spend.spend_by_state[4], -10.0);
    }
}
