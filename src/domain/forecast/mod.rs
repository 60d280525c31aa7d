//! Forecasts from the chain: per customer for horizons 1..H (segment distribution, churn,
//! re-activation, expected spend, discounted value) and per population (segment sizes).
//!
//! Spend flows follow Pfeifer & Carraway (2000): with `m_j` the mean spend in a period spent in
//! state j, expected spend at horizon h ≥ 2 is π_h·m, and the infinite-horizon value of a state
//! vector is V = [I − P/(1+d)]⁻¹ m. The first period uses the customer's own spend regression
//! prediction.

mod draws;
pub mod intervals;
mod kernel;
pub mod portfolio;

pub use kernel::pc_value;

use crate::domain::linalg::vec_mat;
use serde::{Deserialize, Serialize};

/// Values by state name, serialized as a JSON object `{state: value}` without building a map.
#[derive(Clone, Debug, PartialEq)]
pub struct ByState<'a> {
    pub names: &'a [String],
    pub values: Vec<f64>,
}

impl Serialize for ByState<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.values.len()))?;
        for (k, v) in self.names.iter().zip(&self.values) {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// Longest forecast horizon, in periods (ten years of months).
pub const MAX_HORIZON: usize = 120;
/// Horizon when none is given: four periods.
pub const DEFAULT_HORIZON: usize = 4;
/// Discount rate per period when none is given.
pub const DEFAULT_DISCOUNT_RATE: f64 = 0.025;

/// Forecast settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForecastParams {
    /// Horizons 1..=horizon periods.
    pub horizon: usize,
    /// Discount rate per period (0.1 = 10%).
    pub discount_rate: f64,
}

impl Default for ForecastParams {
    fn default() -> Self {
        Self { horizon: DEFAULT_HORIZON, discount_rate: DEFAULT_DISCOUNT_RATE }
    }
}

/// Invalid forecast settings; shown as "field: problem".
#[derive(Debug, PartialEq)]
pub enum ForecastError {
    Horizon(usize),
    Discount(f64),
}

impl ForecastError {
    /// The setting at fault.
    pub fn field(&self) -> &'static str {
        match self {
            ForecastError::Horizon(_) => "horizon",
            ForecastError::Discount(_) => "discount_rate",
        }
    }

    /// The problem without the field's name, for messages that name it themselves (an API
    /// error's JSON path).
    pub fn problem(&self) -> String {
        match self {
            ForecastError::Horizon(h) => format!("must be between 1 and {MAX_HORIZON} periods, got {h}"),
            ForecastError::Discount(d) => format!("must be a finite number ≥ 0, got {d}"),
        }
    }
}

impl std::fmt::Display for ForecastError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field(), self.problem())
    }
}

impl std::error::Error for ForecastError {}

impl ForecastParams {
    pub fn check(&self) -> Result<(), ForecastError> {
        if !(1..=MAX_HORIZON).contains(&self.horizon) {
            return Err(ForecastError::Horizon(self.horizon));
        }
        if !self.discount_rate.is_finite() || self.discount_rate < 0.0 {
            return Err(ForecastError::Discount(self.discount_rate));
        }
        Ok(())
    }
}

/// Chain-only quantities from one starting state.
#[derive(Clone, Debug, PartialEq)]
struct StateForecast {
    /// `distribution[h - 1][j]`: P(state j at horizon h).
    distribution: Vec<Vec<f64>>,
    /// `churn[h - 1]`: P(first reach a lapsed state by h).
    churn: Vec<f64>,
    /// `reactivation[h - 1]`: for a lapsed state, P(left the lapsed states by h).
    reactivation: Option<Vec<f64>>,
    /// Expected periods until lapse (0 when lapsed; `None` when lapse is never reached).
    periods_to_lapse: Option<f64>,
    /// `chain_spend[h - 1]`: π_h·m, the chain's expected spend at h.
    chain_spend: Vec<f64>,
    /// Σ_{h ≥ 2} π_h·m / (1+d)^h, or `None` when d = 0.
    tail_value: Option<f64>,
    /// Σ_{h ≥ 1} π_h·m / (1+d)^h = (P V)_s / (1+d), or `None` when d = 0.
    future_value: Option<f64>,
}

/// One horizon of a customer forecast.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HorizonForecast {
    pub h: usize,
    pub distribution: Vec<f64>,
    pub most_likely: usize,
    pub p_key: f64,
    pub churn: f64,
    pub reactivation: Option<f64>,
    pub expected_spend: f64,
}

/// A customer's forecast.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CustomerForecast {
    pub horizons: Vec<HorizonForecast>,
    pub expected_periods_to_lapse: Option<f64>,
    /// Σ_{h=1..H} expected spend_h / (1+d)^h.
    pub value_horizon: f64,
    /// The same over all future periods (`None` with d = 0).
    pub value_infinite: Option<f64>,
}

/// Forecasts from a fitted chain, precomputed per starting state.
#[derive(Clone, Debug)]
pub struct Forecaster {
    params: ForecastParams,
    key: Option<usize>,
    lapsed: Vec<bool>,
    per_state: Vec<StateForecast>,
}

impl Forecaster {
    /// `p`: transition matrix; `lapsed`: which states are churn states; `key`: index of the top tier;
    /// `spend`: m, mean spend in a period spent in each state.
    pub fn new(
        p: &[Vec<f64>],
        lapsed: &[bool],
        key: Option<usize>,
        spend: &[f64],
        params: ForecastParams,
    ) -> Result<Self, ForecastError> {
        params.check()?;
        let to_lapse = kernel::periods_to_lapse(p, lapsed);
        let tails = kernel::tails(p, spend, params.discount_rate);
        let per_state = (0..p.len())
            .map(|s| {
                let paths = kernel::paths(p, lapsed, spend, s, params.horizon);
                StateForecast {
                    distribution: paths.distribution,
                    churn: paths.churn,
                    reactivation: paths.reactivation,
                    periods_to_lapse: to_lapse[s],
                    chain_spend: paths.chain_spend,
                    tail_value: tails.as_ref().map(|t| t.beyond_first[s]),
                    future_value: tails.as_ref().map(|t| t.future[s]),
                }
            })
            .collect();
        Ok(Self { params, key, lapsed: lapsed.to_vec(), per_state })
    }

    pub fn params(&self) -> ForecastParams {
        self.params
    }

    /// Forecast for a customer now in `state`, whose own predicted next-period spend is
    /// `first_spend` (from the spend regression).
    pub fn customer(&self, state: usize, first_spend: f64) -> CustomerForecast {
        let f = &self.per_state[state];
        let d = self.params.discount_rate;
        let mut horizons = Vec::with_capacity(self.params.horizon);
        let mut value = 0.0;
        for h in 1..=self.params.horizon {
            let dist = &f.distribution[h - 1];
            let spend = if h == 1 { first_spend } else { f.chain_spend[h - 1] };
            value += spend / (1.0 + d).powi(h as i32);
            let most_likely = (0..dist.len()).max_by(|&a, &b| dist[a].total_cmp(&dist[b]).then(b.cmp(&a))).unwrap_or(0);
            horizons.push(HorizonForecast {
                h,
                distribution: dist.clone(),
                most_likely,
                p_key: self.key.map_or(0.0, |k| dist[k]),
                churn: if self.lapsed[state] { 1.0 } else { f.churn[h - 1] },
                reactivation: f.reactivation.as_ref().map(|r| r[h - 1]),
                expected_spend: spend,
            });
        }
        CustomerForecast {
            horizons,
            expected_periods_to_lapse: f.periods_to_lapse,
            value_horizon: value,
            value_infinite: f.tail_value.map(|t| first_spend / (1.0 + d) + t),
        }
    }

    /// [`Self::customer_with_first_step`] when the customer has its own first-step row, else
    /// [`Self::customer`].
    pub fn customer_given(&self, state: usize, first_step: Option<&[f64]>, first_spend: f64) -> CustomerForecast {
        match first_step {
            Some(q) => self.customer_with_first_step(state, q, first_spend),
            None => self.customer(state, first_spend),
        }
    }

    /// Forecast for a customer now in `state` whose first step follows its own row `q` (a
    /// covariate model's, [`crate::domain::chain::covariates::FirstStep`]) and the pooled chain P after it: the
    /// distribution at h is q·P^{h−1}, a mixture of the per-state forecasts one step shorter —
    /// distribution_h = Σ_j q_j·dist_j(h−1), churn_h = Σ_j q_j·churn_j(h−1) (a lapsed j has
    /// churned), re-activation and chain spend likewise, periods to lapse 1 + Σ_j q_j·t_j and the
    /// value beyond h = 1 Σ_j q_j·(future value from j)/(1+d). With q the state's pooled row it
    /// equals [`Self::customer`] up to rounding.
    pub fn customer_with_first_step(&self, state: usize, q: &[f64], first_spend: f64) -> CustomerForecast {
        let n = self.per_state.len();
        let d = self.params.discount_rate;
        let used: Vec<usize> = (0..n).filter(|&j| q[j] > 0.0).collect();
        let mut horizons = Vec::with_capacity(self.params.horizon);
        let mut value = 0.0;
        for h in 1..=self.params.horizon {
            let mut dist = vec![0.0; n];
            let (mut churn, mut reactivation, mut chain_spend) = (0.0, 0.0, 0.0);
            for &j in &used {
                let f = &self.per_state[j];
                if h == 1 {
                    dist[j] += q[j];
                } else {
                    dist.iter_mut().zip(&f.distribution[h - 2]).for_each(|(a, b)| *a += q[j] * b);
                    chain_spend += q[j] * f.chain_spend[h - 2];
                }
                churn +=
                    q[j] * if self.lapsed[j] || h == 1 { f64::from(u8::from(self.lapsed[j])) } else { f.churn[h - 2] };
                reactivation += q[j]
                    * match (&f.reactivation, h) {
                        (None, _) => 1.0,
                        (Some(_), 1) => 0.0,
                        (Some(r), _) => r[h - 2],
                    };
            }
            let spend = if h == 1 { first_spend } else { chain_spend };
            value += spend / (1.0 + d).powi(h as i32);
            let most_likely = (0..n).max_by(|&a, &b| dist[a].total_cmp(&dist[b]).then(b.cmp(&a))).unwrap_or(0);
            horizons.push(HorizonForecast {
                h,
                most_likely,
                p_key: self.key.map_or(0.0, |k| dist[k]),
                churn: if self.lapsed[state] { 1.0 } else { churn },
                reactivation: self.lapsed[state].then_some(reactivation),
                expected_spend: spend,
                distribution: dist,
            });
        }
        let periods_to_lapse = if self.lapsed[state] {
            Some(0.0)
        } else {
            used.iter()
                .map(|&j| self.per_state[j].periods_to_lapse.map(|t| q[j] * t))
                .sum::<Option<f64>>()
                .map(|t| 1.0 + t)
        };
        let future: Option<f64> = used.iter().map(|&j| self.per_state[j].future_value.map(|v| q[j] * v)).sum();
        CustomerForecast {
            horizons,
            expected_periods_to_lapse: periods_to_lapse,
            value_horizon: value,
            value_infinite: future.map(|t| first_spend / (1.0 + d) + t / (1.0 + d)),
        }
    }

    /// Probability of no purchase in any of the next `k` periods from `state`, where `inactive`
    /// marks the states without a purchase: Σ over paths that stay inactive for k steps.
    pub fn no_purchase_probability(p: &[Vec<f64>], inactive: &[bool], state: usize, k: usize) -> f64 {
        let n = p.len();
        let mut mass = vec![0.0; n];
        mass[state] = 1.0;
        for _ in 0..k {
            let next = vec_mat(&mass, p);
            mass = (0..n).map(|j| if inactive[j] { next[j] } else { 0.0 }).collect();
        }
        mass.iter().sum()
    }
}

/// Segment sizes for horizons 1..=h from today's `mix`, with `inflow` new customers per period
/// entering state `new_state`.
pub fn population(p: &[Vec<f64>], mix: &[f64], horizon: usize, inflow: f64, new_state: usize) -> Vec<Vec<f64>> {
    let mut m = mix.to_vec();
    let mut out = Vec::with_capacity(horizon);
    for _ in 0..horizon {
        m = vec_mat(&m, p);
        m[new_state] += inflow;
        out.push(m.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAPSED: [bool; 4] = [false, false, false, true];

    /// Pfeifer & Carraway (2000): recency states 1–4 with purchase probabilities .5, .2, .1, 0;
    /// a purchase returns the customer to state 1, otherwise it moves on; state 4 absorbs.
    fn pc_chain() -> Vec<Vec<f64>> {
        vec![vec![0.5, 0.5, 0.0, 0.0], vec![0.2, 0.0, 0.8, 0.0], vec![0.1, 0.0, 0.0, 0.9], vec![0.0, 0.0, 0.0, 1.0]]
    }

    #[test]
    fn pfeifer_carraway_example_values() {
        let v = pc_value(&pc_chain(), &[100.0, 0.0, 0.0, 0.0], 0.1).unwrap();
        let want = [231.08, 57.29, 21.01, 0.0];
        for (a, b) in v.iter().zip(want) {
            assert!((a - b).abs() < 0.005, "{v:?}");
        }
    }

    #[test]
    fn distributions_sum_to_one_and_churn_is_first_passage() {
        let p = pc_chain();
        let f = Forecaster::new(
            &p,
            &LAPSED,
            Some(0),
            &[100.0, 0.0, 0.0, 0.0],
            ForecastParams { horizon: 3, discount_rate: 0.1 },
        )
        .unwrap();
        let c = f.customer(1, 20.0);
        for h in &c.horizons {
            assert!((h.distribution.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        // From state 2: lapse (state 4) first reachable at h = 2 via 3: 0.8 × 0.9.
        assert_eq!(c.horizons[0].churn, 0.0);
        assert!((c.horizons[1].churn - 0.72).abs() < 1e-12);
        // h = 3: 0.72 + paths 2→1→2→3? no: 2→1→… cannot lapse by 3; only 2→3→4 (0.72) so far.
        assert!((c.horizons[2].churn - 0.72).abs() < 1e-12);
        // Spend: own prediction at h = 1, then π_h·m: from state 2, π_1 = (0.2, 0, 0.8, 0) and
        // π_2 = 0.2·(0.5, 0.5, 0, 0) + 0.8·(0.1, 0, 0, 0.9) = (0.18, 0.1, 0, 0.72), so 18.
        assert_eq!(c.horizons[0].expected_spend, 20.0);
        assert!((c.horizons[1].expected_spend - 18.0).abs() < 1e-12);
        // Value over 3 periods, discounted.
        let want = 20.0 / 1.1 + 18.0 / 1.21 + c.horizons[2].expected_spend / 1.331;
        assert!((c.value_horizon - want).abs() < 1e-9);
    }

    #[test]
    fn infinite_value_equals_a_long_horizon_sum() {
        let p = pc_chain();
        let r = [100.0, 0.0, 0.0, 0.0];
        let long = Forecaster::new(&p, &LAPSED, None, &r, ForecastParams { horizon: 120, discount_rate: 0.1 }).unwrap();
        let c = long.customer(0, 100.0);
        assert!((c.value_infinite.unwrap() - c.value_horizon).abs() < 1e-3, "{c:?}");
        // With the chain's own first-period spend π_1·m = 50, the future value is (V − m)/(1+d)·…:
        // Σ_{h≥1} e_0 P^h m/(1+d)^h = V_0 − m_0.
        let v = pc_value(&p, &r, 0.1).unwrap();
        let c = long.customer(0, 50.0 / 1.0);
        assert!(
            (c.value_infinite.unwrap() - (v[0] - 100.0)).abs() < 1e-9,
            "{} vs {}",
            c.value_infinite.unwrap(),
            v[0] - 100.0
        );
    }

    #[test]
    fn expected_periods_to_lapse_solve_the_first_passage_equations() {
        // From 3: 1 + 0.1·t1; from 2: 1 + 0.2·t1 + 0.8·t3; from 1: 1 + 0.5·t1 + 0.5·t2.
        let f = Forecaster::new(&pc_chain(), &LAPSED, None, &[0.0; 4], ForecastParams::default()).unwrap();
        let t1 = f.customer(0, 0.0).expected_periods_to_lapse.unwrap();
        let t2 = f.customer(1, 0.0).expected_periods_to_lapse.unwrap();
        let t3 = f.customer(2, 0.0).expected_periods_to_lapse.unwrap();
        assert!((t3 - (1.0 + 0.1 * t1)).abs() < 1e-9);
        assert!((t2 - (1.0 + 0.2 * t1 + 0.8 * t3)).abs() < 1e-9);
        assert!((t1 - (1.0 + 0.5 * t1 + 0.5 * t2)).abs() < 1e-9);
        assert_eq!(f.customer(3, 0.0).expected_periods_to_lapse, Some(0.0));
    }

    #[test]
    fn no_purchase_probability_follows_inactive_paths() {
        let inactive = [false, true, true, true];
        // From state 1 over 2 periods: 1→2 (0.5) then 2→3 (0.8) = 0.4.
        assert!((Forecaster::no_purchase_probability(&pc_chain(), &inactive, 0, 2) - 0.4).abs() < 1e-12);
    }

    #[test]
    fn population_sizes_keep_their_total_plus_inflow() {
        let m = population(&pc_chain(), &[10.0, 0.0, 0.0, 0.0], 2, 5.0, 0);
        assert!((m[1].iter().sum::<f64>() - 20.0).abs() < 1e-12);
    }
}
