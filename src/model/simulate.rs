//! A simulator with planted ground truth: customers arrive over time and move along a known
//! segment chain; each active state buys a known number of times with spend in a known range.
//! The planted states are exactly what kam derives from the transactions under the scheme in
//! [`Truth::config`] (window 1, lapse after 2 periods, fixed value cuts that fall in the gaps
//! between the tiers' spend ranges), so training can be checked against the truth.

use crate::domain::calendar::{PeriodUnit, date_of, day_of};
use crate::domain::sampling::{seed_for, unit_interval};
use crate::domain::shards::{Parallel, Serial};
use crate::domain::transactions::Transactions;
use crate::model::config::{RuleName, TrainConfig, UnitName};
use chrono::NaiveDate;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Poisson};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

/// What to simulate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimulationParams {
    pub customers: u32,
    /// Number of quarters.
    pub periods: u32,
    /// First day of the first quarter.
    pub start: NaiveDate,
    pub seed: u64,
    /// From this quarter (0-based) on, customers move by [`MATRIX_LATER`] instead: a chain
    /// that changes half-way, to test the homogeneity diagnostic.
    #[serde(default)]
    pub change_at: Option<u32>,
    /// Second order: a key account that slipped to core moves by [`ROW_AFTER_KEY_SLIP`] instead
    /// of core's row (it is likelier to win back key), to test the order diagnostic.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub second_order: bool,
    /// Strength s in [0, 1] of a customer attribute on key and core accounts' moves: each
    /// customer has an attribute a in [0, 1) ([`customer_attribute`]), and a key or core
    /// account's probability p of staying in its tier becomes p + s·(2a − 1)·min(p, 1 − p), its
    /// other moves scaled to match (so the planted matrix stays the average over customers).
    /// `None`: no attribute (the default simulation, unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_effect: Option<f64>,
}

impl Default for SimulationParams {
    fn default() -> Self {
        Self {
            customers: 10_000,
            periods: 12,
            start: NaiveDate::from_ymd_opt(2022, 1, 1).unwrap(),
            seed: 7,
            change_at: None,
            second_order: false,
            attribute_effect: None,
        }
    }
}

/// The planted truth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    pub params: SimulationParams,
    /// States in the model's order.
    pub states: Vec<String>,
    /// Planted transition matrix.
    pub matrix: Vec<Vec<f64>>,
    /// Per-period spend range of each state (0 for inactive states).
    pub spend_ranges: Vec<(f64, f64)>,
    /// Mean purchases per period of each state (0 for inactive ones).
    pub mean_purchases: Vec<f64>,
    /// Expected spend in the next period given the current state.
    pub expected_next_spend: Vec<f64>,
    /// Moves that the simulated paths actually made.
    pub realized_counts: Vec<Vec<u64>>,
    /// Customers per state per period in the simulated paths.
    pub realized_sizes: Vec<Vec<u64>>,
    /// The kam configuration that derives the planted states from the transactions.
    pub config: TrainConfig,
}

/// Planted chain over new, key, core, occasional, dormant, lapsed.
pub const STATES: [&str; 6] = ["new", "key", "core", "occasional", "dormant", "lapsed"];

/// Planted transition matrix (rows: from; columns: to), in [`STATES`] order.
pub const MATRIX: [[f64; 6]; 6] = [
    [0.0, 0.10, 0.25, 0.30, 0.35, 0.0],
    [0.0, 0.70, 0.15, 0.05, 0.10, 0.0],
    [0.0, 0.12, 0.50, 0.18, 0.20, 0.0],
    [0.0, 0.03, 0.15, 0.45, 0.37, 0.0],
    [0.0, 0.03, 0.10, 0.22, 0.0, 0.65],
    [0.0, 0.005, 0.015, 0.05, 0.0, 0.93],
];

/// The chain after `change_at`: key and core accounts hold on less.
pub const MATRIX_LATER: [[f64; 6]; 6] = [
    [0.0, 0.10, 0.25, 0.30, 0.35, 0.0],
    [0.0, 0.50, 0.20, 0.10, 0.20, 0.0],
    [0.0, 0.06, 0.40, 0.24, 0.30, 0.0],
    [0.0, 0.03, 0.15, 0.45, 0.37, 0.0],
    [0.0, 0.03, 0.10, 0.22, 0.0, 0.65],
    [0.0, 0.005, 0.015, 0.05, 0.0, 0.93],
];

/// Core's row for a customer who was key the period before (with `second_order`).
pub const ROW_AFTER_KEY_SLIP: [f64; 6] = [0.0, 0.40, 0.30, 0.10, 0.20, 0.0];

const SPEND: [(f64, f64); 6] = [(20.0, 600.0), (600.0, 2400.0), (120.0, 450.0), (15.0, 90.0), (0.0, 0.0), (0.0, 0.0)];
const EXTRA_PURCHASES: [f64; 6] = [1.0, 3.8, 1.9, 0.45, 0.0, 0.0];
const RETURN_RATE: f64 = 0.03;
const CHUNK: u32 = 4096;

/// The configuration whose scheme matches the planted states.
pub fn planted_config(params: &SimulationParams) -> TrainConfig {
    let mut c = TrainConfig::default();
    c.period.unit = UnitName::Quarter;
    let last = PeriodUnit::Quarter.ordinal(day_of(params.start)) + i64::from(params.periods) - 1;
    c.period.as_of = Some(date_of(PeriodUnit::Quarter.end(last)));
    c.segments.window = 1;
    c.segments.lapse_after = 2;
    c.segments.split_inactive = false;
    c.segments.inactive_tiers = false;
    c.segments.rule = RuleName::Fixed;
    c.segments.cuts = vec![500.0, 100.0];
    c.transitions.covariates = params.attribute_effect.is_some();
    c
}

/// The attribute of customer `c` (0-based) under `seed`: uniform in [0, 1), from a hash, so it
/// takes nothing from the simulation's random streams.
pub fn customer_attribute(seed: u64, c: u32) -> f64 {
    unit_interval(seed_for(seed ^ 0xA77_B0B5, u64::from(c) + 1))
}

/// A planted row with the stay probability of `state` moved by the attribute `a` at strength `s`.
fn row_with_attribute(row: &[f64; 6], state: usize, a: f64, s: f64) -> [f64; 6] {
    let p = row[state];
    let stay = p + s * (2.0 * a - 1.0) * p.min(1.0 - p);
    let scale = if p < 1.0 { (1.0 - stay) / (1.0 - p) } else { 0.0 };
    let mut out = row.map(|x| x * scale);
    out[state] = stay;
    out
}

struct Chunk {
    customer: Vec<u32>,
    day: Vec<i32>,
    cents: Vec<i64>,
    counts: Vec<Vec<u64>>,
    sizes: Vec<Vec<u64>>,
}

fn draw_state(rng: &mut Xoshiro256PlusPlus, row: &[f64; 6]) -> usize {
    let u: f64 = rng.random();
    let mut acc = 0.0;
    for (j, p) in row.iter().enumerate() {
        acc += p;
        if u < acc {
            return j;
        }
    }
    row.iter().rposition(|p| *p > 0.0).unwrap_or(0)
}

fn simulate_chunk(params: &SimulationParams, index: u32, starts: &[i32], ends: &[i32]) -> Chunk {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed_for(params.seed, u64::from(index)));
    let p = params.periods as usize;
    let mut out = Chunk {
        customer: Vec::new(),
        day: Vec::new(),
        cents: Vec::new(),
        counts: vec![vec![0; 6]; 6],
        sizes: vec![vec![0; 6]; p],
    };
    let poisson: Vec<Option<Poisson<f64>>> =
        EXTRA_PURCHASES.iter().map(|&l| (l > 0.0).then(|| Poisson::new(l).unwrap())).collect();
    let lo = index * CHUNK;
    let hi = (lo + CHUNK).min(params.customers);
    let mut days = Vec::new();
    for c in lo..hi {
        let arrival = rng.random_range(0..p);
        let mut state = 0usize;
        let mut before = None;
        for t in arrival..p {
            if t > arrival {
                let matrix = if params.change_at.is_some_and(|c| t as u32 >= c) { &MATRIX_LATER } else { &MATRIX };
                let row = if params.second_order && state == 2 && before == Some(1) {
                    &ROW_AFTER_KEY_SLIP
                } else {
                    &matrix[state]
                };
                let next = match params.attribute_effect {
                    Some(s) if state == 1 || state == 2 => {
                        draw_state(&mut rng, &row_with_attribute(row, state, customer_attribute(params.seed, c), s))
                    }
                    _ => draw_state(&mut rng, row),
                };
                out.counts[state][next] += 1;
                before = Some(state);
                state = next;
            }
            out.sizes[t][state] += 1;
            let (lo_s, hi_s) = SPEND[state];
            if hi_s == 0.0 {
                continue;
            }
            let n = 1 + poisson[state].as_ref().map_or(0, |d| d.sample(&mut rng) as usize);
            let total_cents = (rng.random_range(lo_s..hi_s) * 100.0).round() as i64;
            // Split the total over n purchases with weights in [0.5, 1.5); the last takes the rest.
            let weights: Vec<f64> = (0..n).map(|_| rng.random_range(0.5..1.5)).collect();
            let wsum: f64 = weights.iter().sum();
            days.clear();
            days.extend((0..n).map(|_| rng.random_range(starts[t]..=ends[t])));
            days.sort_unstable();
            let mut left = total_cents;
            for (k, &d) in days.iter().enumerate() {
                let cents = if k + 1 == n { left } else { (total_cents as f64 * weights[k] / wsum).round() as i64 };
                left -= cents;
                if rng.random_bool(RETURN_RATE) {
                    // A purchase partly returned the same day: the net is unchanged.
                    let back = (cents as f64 * rng.random_range(0.1..0.5)).round() as i64;
                    out.customer.extend([c, c]);
                    out.day.extend([d, d]);
                    out.cents.extend([cents + back, -back]);
                } else {
                    out.customer.push(c);
                    out.day.push(d);
                    out.cents.push(cents);
                }
            }
        }
    }
    out
}

/// Simulates transactions (ids `C0000001`, …, amounts in whole cents) and returns them with the
/// truth. Deterministic for a seed whatever the number of threads.
pub fn simulate(params: &SimulationParams, par: &impl Parallel) -> (Transactions, Truth) {
    let first = PeriodUnit::Quarter.ordinal(day_of(params.start));
    let starts: Vec<i32> = (0..params.periods).map(|t| PeriodUnit::Quarter.start(first + i64::from(t))).collect();
    let ends: Vec<i32> = (0..params.periods).map(|t| PeriodUnit::Quarter.end(first + i64::from(t))).collect();
    let n_chunks = params.customers.div_ceil(CHUNK);
    let chunks: Vec<Chunk> = par.map(n_chunks as usize, |i| simulate_chunk(params, i as u32, &starts, &ends));
    let total: usize = chunks.iter().map(|c| c.customer.len()).sum();
    let mut tx = Transactions {
        customer_ids: (1..=params.customers).map(|i| format!("C{i:07}")).collect(),
        customer: Vec::with_capacity(total),
        day: Vec::with_capacity(total),
        amount: Vec::with_capacity(total),
        margin: None,
    };
    let mut counts = vec![vec![0u64; 6]; 6];
    let mut sizes = vec![vec![0u64; 6]; params.periods as usize];
    for c in chunks {
        tx.customer.extend(c.customer);
        tx.day.extend(c.day);
        tx.amount.extend(c.cents.iter().map(|&x| x as f64 / 100.0));
        for (a, b) in counts.iter_mut().flatten().zip(c.counts.iter().flatten()) {
            *a += b;
        }
        for (a, b) in sizes.iter_mut().flatten().zip(c.sizes.iter().flatten()) {
            *a += b;
        }
    }
    let mean_spend: Vec<f64> = SPEND.iter().map(|(a, b)| (a + b) / 2.0).collect();
    let truth = Truth {
        params: params.clone(),
        states: STATES.iter().map(|s| s.to_string()).collect(),
        matrix: MATRIX.iter().map(|r| r.to_vec()).collect(),
        spend_ranges: SPEND.to_vec(),
        mean_purchases: EXTRA_PURCHASES
            .iter()
            .zip(&SPEND)
            .map(|(l, s)| if s.1 > 0.0 { 1.0 + l } else { 0.0 })
            .collect(),
        expected_next_spend: MATRIX.iter().map(|r| r.iter().zip(&mean_spend).map(|(p, m)| p * m).sum()).collect(),
        realized_counts: counts,
        realized_sizes: sizes,
        config: planted_config(params),
    };
    (tx, truth)
}

/// Trains on `sets` simulated data sets of `customers` customers (seeds 1..=sets) and counts how
/// many 90% intervals of allowed, observed transition probabilities hold the planted value.
pub fn coverage(sets: u64, customers: u32) -> (u64, u64) {
    use crate::model::train::{SourceInfo, activity_for, train};
    let (mut covered, mut total) = (0, 0);
    for seed in 1..=sets {
        let params = SimulationParams { customers, seed, ..Default::default() };
        let (tx, truth) = simulate(&params, &Serial);
        let source = SourceInfo::default();
        let activity = activity_for(&tx, &truth.config).expect("simulated data aggregate");
        let model = train(&activity, None, &truth.config, source, &mut |_| {}).expect("simulated data train");
        let m = &model.transitions.model;
        for i in 0..STATES.len() {
            if m.row_totals()[i] == 0 {
                continue;
            }
            for j in 0..STATES.len() {
                if m.allowed()[i][j] {
                    let (lo, hi) = m.interval(i, j);
                    covered += u64::from(lo <= MATRIX[i][j] && MATRIX[i][j] <= hi);
                    total += 1;
                }
            }
        }
    }
    (covered, total)
}

/// Coverage of the 90% intervals on next-period segment sizes over `sets` generated data sets:
/// train on all quarters but the last, forecast the last from the mix before it, and count how
/// often (a) the interval on expected sizes covers the planted chain's expectation (mix · P) and
/// (b) the prediction interval on realized sizes covers the simulated count. Newcomers of the
/// last quarter are left out (no inflow), so the `new` state is not counted. Returns
/// (expected covered, realized covered, cells).
pub fn share_coverage(sets: u64, customers: u32, draws: usize) -> (u64, u64, u64) {
    use crate::domain::forecast::ForecastParams;
    use crate::domain::forecast::intervals::IntervalParams;
    use crate::model::train::{SourceInfo, activity_for, train};
    let (mut expected, mut realized, mut total) = (0, 0, 0);
    for seed in 1..=sets {
        let params = SimulationParams { customers, seed, ..Default::default() };
        let (tx, truth) = simulate(&params, &Serial);
        let config = planted_config(&SimulationParams { periods: params.periods - 1, ..params.clone() });
        let source = SourceInfo::default();
        let activity = activity_for(&tx, &config).expect("simulated data aggregate");
        let model = train(&activity, None, &config, source, &mut |_| {}).expect("simulated data train");
        let mix = model.training_mix();
        let bands = model
            .bands(
                ForecastParams { horizon: 1, discount_rate: 0.0 },
                IntervalParams { draws, level: 0.9, seed: seed + 1000 },
            )
            .expect("draws > 0");
        let pop = bands.population(&mix, 1, 0.0, 0);
        let actual = &truth.realized_sizes[params.periods as usize - 1];
        for j in 1..STATES.len() {
            let planted: f64 = (0..STATES.len()).map(|i| mix[i] * MATRIX[i][j]).sum();
            expected += u64::from(pop.expected[0][j].contains(planted));
            realized += u64::from(pop.realized[0][j].contains(actual[j] as f64));
            total += 1;
        }
    }
    (expected, realized, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 90% intervals on next-period segment sizes cover the planted expectation and the
    /// simulated counts 85–95% of the time (40 data sets × 5 states).
    #[test]
    fn segment_size_intervals_cover_the_planted_chain_at_their_nominal_rate() {
        let (expected, realized, total) = share_coverage(40, 3000, 200);
        for (name, covered) in [("expected", expected), ("realized", realized)] {
            let rate = covered as f64 / total as f64;
            assert!((0.85..=0.95).contains(&rate), "{name}: coverage {rate} ({covered}/{total})");
        }
    }

    /// The full run (in the suite; 6 s in release with the next one):
    /// `cargo test --release --lib size_coverage_on_200 -- --nocapture`.
    #[test]
    fn size_coverage_on_200_data_sets() {
        let (expected, realized, total) = share_coverage(200, 3000, 400);
        println!(
            "90% intervals on next-period segment sizes: expected {expected}/{total} = {:.4}, realized {realized}/{total} = {:.4}",
            expected as f64 / total as f64,
            realized as f64 / total as f64
        );
        assert!((0.85..=0.95).contains(&(expected as f64 / total as f64)));
        assert!((0.85..=0.95).contains(&(realized as f64 / total as f64)));
    }

    #[test]
    fn planted_rows_sum_to_one() {
        for row in MATRIX {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }

    /// 90% intervals on transition probabilities cover the planted values 85–95% of the time
    /// (20 data sets × 24 allowed moves).
    #[test]
    fn credible_intervals_cover_the_planted_chain_at_their_nominal_rate() {
        let (covered, total) = coverage(20, 3000);
        let rate = covered as f64 / total as f64;
        assert!((0.85..=0.95).contains(&rate), "coverage {rate} ({covered}/{total})");
    }

    /// The full run: `cargo test --release --lib coverage_on_200 -- --nocapture`.
    #[test]
    fn coverage_on_200_data_sets() {
        let (covered, total) = coverage(200, 3000);
        let rate = covered as f64 / total as f64;
        println!("90% intervals on transition probabilities: {covered}/{total} = {rate:.4} cover the planted value");
        assert!((0.85..=0.95).contains(&rate));
    }

    fn homogeneity_p(seed: u64, change_at: Option<u32>) -> f64 {
        use crate::model::train::{SourceInfo, activity_for, train};
        let params = SimulationParams { customers: 3000, seed, change_at, ..Default::default() };
        let (tx, truth) = simulate(&params, &Serial);
        let source = SourceInfo::default();
        let m = train(&activity_for(&tx, &truth.config).unwrap(), None, &truth.config, source, &mut |_| {}).unwrap();
        m.transitions.time_homogeneity.unwrap().p_value
    }

    #[test]
    fn the_homogeneity_test_rejects_a_chain_that_changes_half_way_and_not_a_stationary_one() {
        for seed in 1..=5 {
            let p = homogeneity_p(seed, Some(6));
            assert!(p < 0.01, "seed {seed}: p = {p}");
        }
        let kept = (1..=20).filter(|&seed| homogeneity_p(seed, None) >= 0.05).count();
        assert!(kept >= 18, "stationary chain rejected at 0.05 in {} of 20 seeds", 20 - kept);
    }

    fn order_p(seed: u64, second_order: bool) -> f64 {
        use crate::model::train::{SourceInfo, activity_for, train};
        let params = SimulationParams { customers: 3000, seed, second_order, ..Default::default() };
        let (tx, truth) = simulate(&params, &Serial);
        let source = SourceInfo::default();
        let m = train(&activity_for(&tx, &truth.config).unwrap(), None, &truth.config, source, &mut |_| {}).unwrap();
        m.transitions.order.unwrap().p_value
    }

    #[test]
    fn the_order_test_rejects_a_second_order_chain_and_not_a_first_order_one() {
        for seed in 1..=5 {
            let p = order_p(seed, true);
            assert!(p < 0.01, "seed {seed}: p = {p}");
        }
        let kept = (1..=20).filter(|&seed| order_p(seed, false) >= 0.05).count();
        assert!(kept >= 18, "first-order chain rejected at 0.05 in {} of 20 seeds", 20 - kept);
    }

    #[test]
    fn the_same_seed_gives_the_same_data_whatever_the_threads() {
        let p = SimulationParams { customers: 9000, ..Default::default() };
        let (a, ta) = simulate(&p, &Serial);
        let (b, tb) = simulate(&p, &crate::model::parallel::Rayon);
        assert_eq!(a, b);
        assert_eq!(ta, tb);
        let (c, _) = simulate(&SimulationParams { seed: 8, ..p }, &Serial);
        assert_ne!(a.amount, c.amount);
    }
}
