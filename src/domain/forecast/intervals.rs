//! Intervals on forecast numbers, from posterior draws.
//!
//! Each draw takes a transition matrix from the rows' Dirichlet posteriors
//! ([`TransitionModel::posterior`](crate::domain::chain::fit::TransitionModel::posterior)) and a value flow
//! per state from the sampling distribution of its mean spend (normal, with the stored standard
//! errors), and recomputes the chain's forecasts. Everything that depends on the state alone —
//! segment distributions, churn, probability of being key, re-activation, chain spend, periods
//! to lapse — is computed once per (state, draw) and summarised as equal-tailed intervals shared
//! by every customer in the state. A customer's own first-period spend x'β̂ is normal under the
//! sampling distribution of the regression coefficients (standard error √(x'Σx)); it enters the
//! value draws through one standard normal per draw, shared across customers (only each
//! customer's own marginal matters), so a customer's value interval costs one pass over the
//! draws.
//!
//! The intervals describe uncertainty in the model's parameters (how sure kam is of the
//! expected numbers). Population sizes also get prediction intervals for the counts that will
//! actually be observed, adding the chance of individual moves (multinomial draws).
//!
//! Deterministic: draw d uses its own generator seeded from (seed, d).

pub use crate::domain::forecast::draws::{Interval, equal_tailed};
use crate::domain::forecast::draws::{draw_matrix, multinomial, rng_for, z_quantile};
use crate::domain::forecast::kernel;
use crate::domain::linalg::vec_mat;
use rand::Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

/// How intervals are computed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct IntervalParams {
    /// Posterior draws (0: no intervals).
    pub draws: usize,
    /// Central probability of each interval (0.9: from the 5% to the 95% quantile).
    pub level: f64,
    pub seed: u64,
}

impl Default for IntervalParams {
    fn default() -> Self {
        Self { draws: DEFAULT_DRAWS, level: DEFAULT_LEVEL, seed: 1 }
    }
}

/// Posterior draws behind the intervals when none is said.
pub const DEFAULT_DRAWS: usize = 200;
/// Central probability of every interval when none is said.
pub const DEFAULT_LEVEL: f64 = 0.9;

/// Invalid interval settings.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum IntervalError {
    #[error("draws: must be between 0 and 100000, got {0}")]
    Draws(usize),
    #[error("level: must be between 0.5 and 0.999, got {0}")]
    Level(f64),
}

impl IntervalParams {
    pub fn check(&self) -> Result<(), IntervalError> {
        if self.draws > 100_000 {
            return Err(IntervalError::Draws(self.draws));
        }
        if !(0.5..=0.999).contains(&self.level) {
            return Err(IntervalError::Level(self.level));
        }
        Ok(())
    }
}

/// What the chain needs besides the posterior: which states are lapsed, the key state, the
/// value flows and their standard errors, and the forecast settings.
#[derive(Clone, Debug)]
pub struct ChainInputs<'a> {
    pub posterior: &'a [Vec<f64>],
    pub lapsed: &'a [bool],
    pub key: Option<usize>,
    pub spend: &'a [f64],
    pub spend_se: &'a [f64],
    pub horizon: usize,
    pub discount_rate: f64,
}

/// Intervals of one horizon's numbers for a customer in a given state.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HorizonBands {
    pub distribution: Vec<Interval>,
    pub p_key: Interval,
    pub churn: Interval,
    pub reactivation: Option<Interval>,
    /// The chain's expected spend π_h·m (for h = 1 a customer's own interval replaces it).
    pub expected_spend: Interval,
}

/// Intervals shared by every customer in a state, and the per-draw part of their values.
#[derive(Clone, Debug)]
struct StateBands {
    horizons: Vec<HorizonBands>,
    periods_to_lapse: Option<Interval>,
    /// Σ_{h=2..H} π_h·m / (1+d)^h, per draw.
    value_tail: Vec<f64>,
    /// Σ_{h≥2} π_h·m / (1+d)^h, per draw (`None` with d = 0 or a singular system).
    infinite_tail: Option<Vec<f64>>,
}

/// A customer's intervals.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CustomerBands {
    pub next_spend: Interval,
    pub value_horizon: Interval,
    pub value_infinite: Option<Interval>,
    pub expected_periods_to_lapse: Option<Interval>,
    /// Per horizon; `horizons[0].expected_spend` is the customer's `next_spend` interval.
    pub horizons: Vec<HorizonBands>,
}

/// Posterior draws of a chain and the intervals they give, per starting state.
#[derive(Clone, Debug)]
pub struct ForecastBands {
    params: IntervalParams,
    horizon: usize,
    discount_rate: f64,
    /// The drawn matrices (for population intervals).
    matrices: Vec<Vec<Vec<f64>>>,
    /// One standard normal per draw for the customers' own first-period spend.
    spend_z: Vec<f64>,
    /// The standard normal quantile at (1 + level) / 2.
    z: f64,
    per_state: Vec<StateBands>,
}

impl ForecastBands {
    /// Draws `params.draws` chains and summarises them per starting state. `None` with 0 draws.
    pub fn new(c: &ChainInputs, params: IntervalParams) -> Option<Self> {
        if params.draws == 0 {
            return None;
        }
        let n = c.posterior.len();
        let draws = params.draws;
        let d = c.discount_rate;
        let mut matrices = Vec::with_capacity(draws);
        let mut flows = Vec::with_capacity(draws);
        let mut to_lapse = Vec::with_capacity(draws);
        let mut tails = Vec::with_capacity(draws);
        let mut spend_z = Vec::with_capacity(draws);
        for k in 0..draws {
            let mut rng = rng_for(params.seed, k as u64);
            let p = draw_matrix(c.posterior, &mut rng);
            let m: Vec<f64> = c
                .spend
                .iter()
                .zip(c.spend_se)
                .map(|(mean, se)| mean + se * rng.sample::<f64, _>(StandardNormal))
                .collect();
            spend_z.push(rng.sample::<f64, _>(StandardNormal));
            to_lapse.push(kernel::periods_to_lapse(&p, c.lapsed));
            tails.push(kernel::tails(&p, &m, d).map(|t| t.beyond_first));
            matrices.push(p);
            flows.push(m);
        }
        let per_state = (0..n).map(|s| state_bands(s, c, &matrices, &flows, &to_lapse, &tails, params.level)).collect();
        Some(Self {
            params,
            horizon: c.horizon,
            discount_rate: d,
            matrices,
            spend_z,
            z: z_quantile(params.level),
            per_state,
        })
    }

    pub fn params(&self) -> IntervalParams {
        self.params
    }

    /// A customer in `state` whose own predicted next-period spend is `next_spend` with
    /// standard error `next_spend_se`.
    pub fn customer(&self, state: usize, next_spend: f64, next_spend_se: f64) -> CustomerBands {
        let b = &self.per_state[state];
        let (first, value_horizon, value_infinite) = self.values(state, next_spend, next_spend_se, &mut Vec::new());
        let mut horizons = b.horizons.clone();
        if let Some(h1) = horizons.first_mut() {
            h1.expected_spend = first;
        }
        CustomerBands {
            next_spend: first,
            value_horizon,
            value_infinite,
            expected_periods_to_lapse: b.periods_to_lapse,
            horizons,
        }
    }

    /// Only the customer-specific intervals — next-period spend, value over the horizon and
    /// over all periods — with `scratch` reused between customers.
    pub fn values(
        &self,
        state: usize,
        next_spend: f64,
        next_spend_se: f64,
        scratch: &mut Vec<f64>,
    ) -> (Interval, Interval, Option<Interval>) {
        let b = &self.per_state[state];
        let level = self.params.level;
        let z = self.z;
        let first = Interval { lo: next_spend - z * next_spend_se, hi: next_spend + z * next_spend_se };
        let discount = 1.0 + self.discount_rate;
        let own = |z: &f64| (next_spend + next_spend_se * z) / discount;
        scratch.clear();
        scratch.extend(b.value_tail.iter().zip(&self.spend_z).map(|(tail, z)| own(z) + tail));
        let value_horizon = equal_tailed(scratch, level);
        let value_infinite = b.infinite_tail.as_ref().map(|t| {
            scratch.clear();
            scratch.extend(t.iter().zip(&self.spend_z).map(|(tail, z)| own(z) + tail));
            equal_tailed(scratch, level)
        });
        (first, value_horizon, value_infinite)
    }

    /// The interval on expected periods until lapse from `state` (`None` where a draw never
    /// lapses).
    pub fn state_periods_to_lapse(&self, state: usize) -> Option<Interval> {
        self.per_state[state].periods_to_lapse
    }

    /// The intervals shared by every customer in `state`, per horizon (h = 1's expected spend is
    /// the chain's, not a customer's).
    pub fn state_horizons(&self, state: usize) -> &[HorizonBands] {
        &self.per_state[state].horizons
    }

    /// Intervals on population segment sizes for horizons 1..=H (H ≤ the bands' horizon) from
    /// `mix`, with `inflow` new customers per period entering `new_state`: `expected` from the
    /// drawn chains alone, `realized` adding the chance of individual moves (each draw moves
    /// round(mix) customers by multinomial draws).
    pub fn population(&self, mix: &[f64], horizon: usize, inflow: f64, new_state: usize) -> PopulationBands {
        let identity: Vec<usize> = (0..mix.len()).collect();
        self.population_grouped(mix, horizon, inflow, new_state, &identity)
    }

    /// [`Self::population`] of groups of states: `group_of[j]` is state j's group (groups
    /// 0..=max); each draw's sizes are summed per group before the intervals are taken.
    pub fn population_grouped(
        &self,
        mix: &[f64],
        horizon: usize,
        inflow: f64,
        new_state: usize,
        group_of: &[usize],
    ) -> PopulationBands {
        let n = mix.len();
        let groups = group_of.iter().max().map_or(0, |g| g + 1);
        let draws = self.matrices.len();
        let level = self.params.level;
        let mut expected = vec![vec![Vec::with_capacity(draws); groups]; horizon];
        let mut realized = vec![vec![Vec::with_capacity(draws); groups]; horizon];
        for (k, p) in self.matrices.iter().enumerate() {
            let mut m = mix.to_vec();
            let mut counts: Vec<u64> = mix.iter().map(|x| x.round().max(0.0) as u64).collect();
            let mut rng = rng_for(self.params.seed ^ 0x5151_5151, k as u64);
            let arrivals = inflow.round().max(0.0) as u64;
            for h in 0..horizon {
                m = vec_mat(&m, p);
                m[new_state] += inflow;
                let mut next = vec![0u64; n];
                for (i, &c) in counts.iter().enumerate() {
                    multinomial(c, &p[i], &mut next, &mut rng);
                }
                next[new_state] += arrivals;
                counts = next;
                let (mut e, mut r) = (vec![0.0; groups], vec![0.0; groups]);
                for j in 0..n {
                    e[group_of[j]] += m[j];
                    r[group_of[j]] += counts[j] as f64;
                }
                for g in 0..groups {
                    expected[h][g].push(e[g]);
                    realized[h][g].push(r[g]);
                }
            }
        }
        let summarise = |v: &mut Vec<Vec<Vec<f64>>>| -> Vec<Vec<Interval>> {
            v.iter_mut().map(|row| row.iter_mut().map(|x| equal_tailed(x, level)).collect()).collect()
        };
        PopulationBands { expected: summarise(&mut expected), realized: summarise(&mut realized) }
    }

    pub fn horizon(&self) -> usize {
        self.horizon
    }
}

/// Population size intervals: `expected[h - 1][j]` and `realized[h - 1][j]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PopulationBands {
    pub expected: Vec<Vec<Interval>>,
    pub realized: Vec<Vec<Interval>>,
}

/// Intervals for a customer starting in `s`, over the drawn chains: the kernel's paths on
/// every draw, summarised by equal-tailed intervals.
fn state_bands(
    s: usize,
    c: &ChainInputs,
    matrices: &[Vec<Vec<f64>>],
    flows: &[Vec<f64>],
    to_lapse: &[Vec<Option<f64>>],
    tails: &[Option<Vec<f64>>],
    level: f64,
) -> StateBands {
    let n = c.posterior.len();
    let h_max = c.horizon;
    let draws = matrices.len();
    let d = c.discount_rate;
    let lapsed = c.lapsed;
    // dist[h][j][draw], churn[h][draw], …
    let mut dist = vec![vec![Vec::with_capacity(draws); n]; h_max];
    let mut churn = vec![Vec::with_capacity(draws); h_max];
    let mut react = vec![Vec::with_capacity(draws); h_max];
    let mut spend = vec![Vec::with_capacity(draws); h_max];
    let mut value_tail = Vec::with_capacity(draws);
    for (p, m) in matrices.iter().zip(flows) {
        let paths = kernel::paths(p, lapsed, m, s, h_max);
        let mut tail = 0.0;
        for h in 0..h_max {
            if h >= 1 {
                tail += paths.chain_spend[h] / (1.0 + d).powi(h as i32 + 1);
            }
            for j in 0..n {
                dist[h][j].push(paths.distribution[h][j]);
            }
            churn[h].push(paths.churn[h]);
            spend[h].push(paths.chain_spend[h]);
            if let Some(r) = &paths.reactivation {
                react[h].push(r[h]);
            }
        }
        value_tail.push(tail);
    }
    let to_lapse: Option<Interval> = if lapsed[s] {
        Some(Interval::point(0.0))
    } else {
        let mut v: Vec<f64> = to_lapse.iter().filter_map(|t| t[s]).collect();
        // Only when every draw has a finite expected time (as the point forecast requires).
        (v.len() == draws).then(|| equal_tailed(&mut v, level))
    };
    let infinite_tail: Option<Vec<f64>> = tails.iter().map(|t| t.as_ref().map(|t| t[s])).collect();
    let horizons = (0..h_max)
        .map(|h| HorizonBands {
            distribution: dist[h].iter_mut().map(|v| equal_tailed(v, level)).collect(),
            p_key: c.key.map_or(Interval::point(0.0), |k| equal_tailed(&mut dist[h][k].clone(), level)),
            churn: equal_tailed(&mut churn[h], level),
            reactivation: lapsed[s].then(|| equal_tailed(&mut react[h], level)),
            expected_spend: equal_tailed(&mut spend[h], level),
        })
        .collect();
    StateBands { horizons, periods_to_lapse: to_lapse, value_tail, infinite_tail }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::forecast::{ForecastParams, Forecaster};

    /// Pfeifer & Carraway's chain as a posterior with `scale` pseudo-counts per row.
    fn pc_posterior(scale: f64) -> Vec<Vec<f64>> {
        [[0.5, 0.5, 0.0, 0.0], [0.2, 0.0, 0.8, 0.0], [0.1, 0.0, 0.0, 0.9], [0.0, 0.0, 0.0, 1.0]]
            .iter()
            .map(|r| r.iter().map(|p| p * scale).collect())
            .collect()
    }

    const LAPSED: [bool; 4] = [false, false, false, true];
    const SPEND: [f64; 4] = [100.0, 0.0, 0.0, 0.0];

    fn inputs<'a>(posterior: &'a [Vec<f64>], se: &'a [f64; 4]) -> ChainInputs<'a> {
        ChainInputs {
            posterior,
            lapsed: &LAPSED,
            key: Some(0),
            spend: &SPEND,
            spend_se: se,
            horizon: 3,
            discount_rate: 0.1,
        }
    }

    #[test]
    fn quantiles_follow_type_7() {
        let mut v: Vec<f64> = (1..=11).map(f64::from).rev().collect();
        let i = equal_tailed(&mut v, 0.9);
        assert!((i.lo - 1.5).abs() < 1e-12 && (i.hi - 10.5).abs() < 1e-12, "{i:?}");
        let mut v = vec![3.0, 1.0, 2.0];
        assert_eq!(equal_tailed(&mut v, 0.5), Interval { lo: 1.5, hi: 2.5 });
    }

    /// With a posterior concentrated on the point estimate, every interval shrinks onto the
    /// point forecast.
    #[test]
    fn a_sharp_posterior_gives_intervals_around_the_point_forecast() {
        let post = pc_posterior(1e7);
        let c = inputs(&post, &[0.0; 4]);
        let bands = ForecastBands::new(&c, IntervalParams { draws: 50, level: 0.9, seed: 3 }).unwrap();
        let matrix: Vec<Vec<f64>> = post.iter().map(|r| r.iter().map(|x| x / 1e7).collect()).collect();
        let f = Forecaster::new(&matrix, &LAPSED, Some(0), &SPEND, ForecastParams { horizon: 3, discount_rate: 0.1 })
            .unwrap();
        for s in 0..4 {
            let point = f.customer(s, 42.0);
            let b = bands.customer(s, 42.0, 0.0);
            let near = |i: Interval, x: f64| {
                let tol = 3e-3 * x.abs().max(1.0);
                (i.lo - x).abs() < tol && (i.hi - x).abs() < tol && i.lo <= x + 1e-9 && x <= i.hi + 1e-9
            };
            assert!(near(b.value_horizon, point.value_horizon), "{s}: {b:?} vs {point:?}");
            assert!(near(b.value_infinite.unwrap(), point.value_infinite.unwrap()));
            for (hb, hp) in b.horizons.iter().zip(&point.horizons) {
                assert!(near(hb.churn, hp.churn), "churn {hb:?} {hp:?}");
                assert!(near(hb.p_key, hp.p_key), "p_key {hb:?} {hp:?}");
                assert!(near(hb.expected_spend, hp.expected_spend), "spend {hb:?} {hp:?}");
                for (i, x) in hb.distribution.iter().zip(&hp.distribution) {
                    assert!(near(*i, *x));
                }
            }
            if let (Some(i), Some(x)) = (b.expected_periods_to_lapse, point.expected_periods_to_lapse) {
                assert!(near(i, x));
            }
        }
    }

    /// Draw by draw the intervals are what the definitions say: the first-step distribution's
    /// interval for a row is the Beta marginal's, checked against statrs with 4,000 draws.
    #[test]
    fn first_step_intervals_match_the_beta_marginals() {
        use statrs::distribution::{Beta, ContinuousCDF};
        let post = pc_posterior(20.0);
        let c = inputs(&post, &[0.0; 4]);
        let bands = ForecastBands::new(&c, IntervalParams { draws: 4000, level: 0.9, seed: 9 }).unwrap();
        let b = bands.customer(1, 0.0, 0.0);
        // Row 2: Dirichlet(4, 0, 16, 0): P(2 → 1) ~ Beta(4, 16).
        let beta = Beta::new(4.0, 16.0).unwrap();
        let i = b.horizons[0].distribution[0];
        assert!((i.lo - beta.inverse_cdf(0.05)).abs() < 0.01, "{i:?}");
        assert!((i.hi - beta.inverse_cdf(0.95)).abs() < 0.01, "{i:?}");
        // Churn at h = 2 from state 2 is p(2→3)·p(3→4): inside [0, 1] and around 0.72.
        let churn = b.horizons[1].churn;
        assert!(churn.lo < 0.72 && 0.72 < churn.hi && churn.lo >= 0.0 && churn.hi <= 1.0, "{churn:?}");
    }

    #[test]
    fn the_same_seed_gives_the_same_intervals_and_spend_uncertainty_widens_them() {
        let post = pc_posterior(50.0);
        let p = IntervalParams { draws: 100, level: 0.9, seed: 5 };
        let a = ForecastBands::new(&inputs(&post, &[0.0; 4]), p).unwrap().customer(0, 30.0, 0.0);
        let b = ForecastBands::new(&inputs(&post, &[0.0; 4]), p).unwrap().customer(0, 30.0, 0.0);
        assert_eq!(a, b);
        let wide = ForecastBands::new(&inputs(&post, &[20.0, 0.0, 0.0, 0.0]), p).unwrap().customer(0, 30.0, 10.0);
        assert!(wide.value_horizon.hi - wide.value_horizon.lo > a.value_horizon.hi - a.value_horizon.lo);
        let z = z_quantile(0.9);
        assert!((wide.next_spend.hi - (30.0 + z * 10.0)).abs() < 1e-9);
        assert_eq!(wide.horizons[0].expected_spend, wide.next_spend);
    }

    #[test]
    fn population_intervals_keep_the_total_and_realized_ones_are_wider() {
        let post = pc_posterior(200.0);
        let bands = ForecastBands::new(&inputs(&post, &[0.0; 4]), IntervalParams::default()).unwrap();
        let mix = [400.0, 300.0, 200.0, 100.0];
        let pop = bands.population(&mix, 2, 0.0, 0);
        for h in 0..2 {
            for j in 0..4 {
                let (e, r) = (pop.expected[h][j], pop.realized[h][j]);
                assert!(e.lo <= e.hi && r.lo <= r.hi);
                assert!(r.hi - r.lo >= e.hi - e.lo - 1.0, "h{h} j{j}: {e:?} {r:?}");
            }
        }
        // The absorbing state can only grow.
        assert!(pop.realized[0][3].lo >= 100.0);
        let mut out = vec![0u64; 4];
        let mut rng = rng_for(1, 1);
        multinomial(1000, &[0.2, 0.0, 0.8, 0.0], &mut out, &mut rng);
        assert_eq!(out.iter().sum::<u64>(), 1000);
        assert_eq!(out[1] + out[3], 0);
    }
}
