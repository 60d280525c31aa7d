//! Covariate-dependent transitions: per origin state, a multinomial logit of the next state on the
//! customer's RFM values (ln(1 + recency days), ln(1 + frequency), signed ln(1 + monetary),
//! tenure) and numeric attributes, so two customers in the same state get different first-step
//! rows.
//!
//! - **Samples.** Training sees every customer-period; per origin it keeps at most
//!   [`SAMPLE_CAP`] moves for fitting and as many moves into the last training period for the
//!   held-out check. The moves kept are those with the smallest hash of (customer, period)
//!   ([`sample_key`], in [`crate::domain::chain::moves`]), each of the training shards keeping its share, so memory and time are
//!   bounded and the sample (hence the artifact) does not depend on the number of threads.
//! - **Fit.** Features are standardized on the fit sample; the model is linfa-logistic's
//!   [`MultiLogisticRegression`] (L-BFGS on the summed log-loss with an L2 penalty [`PENALTY`] on
//!   the slopes, intercepts free) over the destinations observed from the origin. Destinations the
//!   scheme allows but the sample never saw keep their pooled probability; the observed ones share
//!   the rest. Origins with fewer than [`MIN_FIT_MOVES`] fit moves or [`MIN_HOLDOUT_MOVES`]
//!   held-out moves, or one destination only, are skipped and keep the pooled row.
//! - **Selection.** The fit uses the moves out of every period but the second-to-last; it is then
//!   scored on the moves into the last training period against the pooled chain estimated on the
//!   same earlier moves. It is kept only if its mean held-out log-loss is lower by at least
//!   [`KEEP_Z`] standard errors of the paired per-move difference. The coefficients stored are the
//!   ones that were scored.
//!
//! Forecasts use the customer's row for the first step only and the pooled chain after it (see
//! [`crate::domain::forecast::Forecaster::customer_with_first_step`]).

#[cfg(doc)]
use crate::domain::chain::moves::sample_key;
use crate::domain::chain::moves::{MoveSamples, SAMPLE_CAP, covariates_of};
use crate::domain::panel::PanelRow;
use crate::domain::shards::Parallel;
use linfa::prelude::*;
use linfa_logistic::MultiLogisticRegression;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

/// L2 penalty on the standardized slopes (the loss is summed over moves).
pub const PENALTY: f64 = 1.0;
/// Fewest sampled fit moves out of an origin for a model.
pub const MIN_FIT_MOVES: usize = 200;
/// Fewest held-out moves out of an origin to judge a model.
pub const MIN_HOLDOUT_MOVES: usize = 50;
/// Standard errors by which the held-out log-loss must improve for a model to be kept.
pub const KEEP_Z: f64 = 2.0;

/// Covariate models of the origins, as stored in the artifact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CovariateTransitions {
    /// Covariates in coefficient order.
    pub features: Vec<String>,
    /// L2 penalty on the standardized slopes.
    pub penalty: f64,
    /// Moves sampled per origin at most (fit and held out alike).
    pub sample_cap: usize,
    /// How a model is chosen, in words.
    pub selection: String,
    /// Every origin with enough moves to fit, kept or not.
    pub origins: Vec<OriginCovariates>,
    /// Origins without a model, and why.
    pub skipped: Vec<SkippedOrigin>,
}

/// An origin without a covariate model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SkippedOrigin {
    pub origin: String,
    pub reason: String,
}

/// The multinomial logit of one origin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OriginCovariates {
    pub origin: String,
    /// Used in forecasts: it beat the pooled row on the held-out moves.
    pub kept: bool,
    pub fit_moves: u64,
    pub holdout_moves: u64,
    /// Mean log-loss on the held-out moves: this model, and the pooled chain fitted on the same
    /// earlier moves.
    pub holdout_log_loss: f64,
    pub pooled_holdout_log_loss: f64,
    /// Paired mean improvement in held-out log-loss over its standard error.
    pub improvement_z: f64,
    /// Destinations modelled (observed in the fit sample); other allowed ones keep their pooled
    /// probability.
    pub destinations: Vec<String>,
    /// Standardization: covariate k enters as (x_k − mean_k) / scale_k.
    pub means: Vec<f64>,
    pub scales: Vec<f64>,
    /// Per destination: intercept and slopes on the standardized covariates.
    pub intercepts: Vec<f64>,
    pub coefficients: Vec<Vec<f64>>,
}

/// Probabilities over `intercepts.len()` destinations for standardized covariates `z`.
fn softmax(intercepts: &[f64], coefficients: &[Vec<f64>], z: &[f64], out: &mut [f64]) {
    for (k, o) in out.iter_mut().enumerate() {
        *o = intercepts[k] + coefficients[k].iter().zip(z).map(|(b, x)| b * x).sum::<f64>();
    }
    let max = out.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut total = 0.0;
    for o in out.iter_mut() {
        *o = (*o - max).exp();
        total += *o;
    }
    for o in out.iter_mut() {
        *o /= total;
    }
}

impl OriginCovariates {
    fn standardize(&self, x: &[f64], z: &mut [f64]) {
        for k in 0..z.len() {
            z[k] = (x[k] - self.means[k]) / self.scales[k];
        }
    }
}

/// Fits the covariate model of every origin and chooses per origin, against `baseline`: the
/// pooled rows estimated on the moves before the held-out ones (see the module docs).
pub fn fit(
    states: &[String],
    features: Vec<String>,
    samples: &MoveSamples,
    baseline: &[Vec<f64>],
    par: &impl Parallel,
) -> CovariateTransitions {
    let n = states.len();
    let results = par.map(n, |i| fit_origin(i, states, samples, &baseline[i]));
    let mut origins = Vec::new();
    let mut skipped = Vec::new();
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok(o) => origins.push(o),
            Err(reason) => skipped.push(SkippedOrigin { origin: states[i].clone(), reason }),
        }
    }
    CovariateTransitions {
        features,
        penalty: PENALTY,
        sample_cap: SAMPLE_CAP,
        selection: format!(
            "fitted on moves before the last training period, kept if its log-loss on the moves into \
             the last period beats the pooled chain's (fitted on the same earlier moves) by at least \
             {KEEP_Z} standard errors of the paired difference"
        ),
        origins,
        skipped,
    }
}

fn fit_origin(
    i: usize,
    states: &[String],
    samples: &MoveSamples,
    baseline: &[f64],
) -> Result<OriginCovariates, String> {
    let dim = samples.dim;
    let fit = &samples.fit[i];
    let held = &samples.holdout[i];
    let (n_fit, n_held) = (fit.to.len(), held.to.len());
    if n_fit < MIN_FIT_MOVES || n_held < MIN_HOLDOUT_MOVES {
        return Err(format!(
            "too few moves: {n_fit} to fit (need {MIN_FIT_MOVES}), {n_held} held out (need {MIN_HOLDOUT_MOVES})"
        ));
    }
    let mut destinations: Vec<usize> = fit.to.clone();
    destinations.sort_unstable();
    destinations.dedup();
    if destinations.len() < 2 {
        return Err("every sampled move goes to the same state".into());
    }
    let mut means = vec![0.0; dim];
    for row in fit.x.chunks_exact(dim) {
        means.iter_mut().zip(row).for_each(|(m, x)| *m += x);
    }
    means.iter_mut().for_each(|m| *m /= n_fit as f64);
    let mut scales = vec![0.0; dim];
    for row in fit.x.chunks_exact(dim) {
        scales.iter_mut().zip(row).zip(&means).for_each(|((s, x), m)| *s += (x - m) * (x - m));
    }
    scales.iter_mut().for_each(|s| {
        let sd = (*s / n_fit as f64).sqrt();
        *s = if sd > 1e-12 { sd } else { 1.0 };
    });
    let mut x = Array2::<f64>::zeros((n_fit, dim));
    for (r, row) in fit.x.chunks_exact(dim).enumerate() {
        for k in 0..dim {
            x[[r, k]] = (row[k] - means[k]) / scales[k];
        }
    }
    let y: Array1<usize> = fit.to.iter().copied().collect();
    // L-BFGS on the summed loss: the gradient's norm below 1e-5 per move, or 100 iterations (on
    // CDNOW every origin converges before 100; 20 were too few).
    let fitted = MultiLogisticRegression::default()
        .alpha(PENALTY)
        .max_iterations(100)
        .gradient_tolerance(1e-5 * n_fit as f64)
        .fit(&Dataset::new(x, y))
        .map_err(|e| format!("the logistic fit failed: {e}"))?;
    debug_assert_eq!(fitted.classes(), destinations.as_slice());
    let params = fitted.params();
    let mut model = OriginCovariates {
        origin: states[i].clone(),
        kept: false,
        fit_moves: n_fit as u64,
        holdout_moves: n_held as u64,
        holdout_log_loss: 0.0,
        pooled_holdout_log_loss: 0.0,
        improvement_z: 0.0,
        destinations: destinations.iter().map(|&j| states[j].clone()).collect(),
        means,
        scales,
        intercepts: fitted.intercept().to_vec(),
        coefficients: (0..destinations.len()).map(|k| params.column(k).to_vec()).collect(),
    };
    // Held-out check against the pooled row of the same earlier moves.
    let reserve: f64 =
        (0..baseline.len()).filter(|j| destinations.binary_search(j).is_err()).map(|j| baseline[j]).sum();
    let mut z = vec![0.0; dim];
    let mut prob = vec![0.0; destinations.len()];
    let (mut sum_cov, mut sum_pool, mut sum_d, mut sum_d2) = (0.0, 0.0, 0.0, 0.0);
    for (row, &to) in held.x.chunks_exact(dim).zip(&held.to) {
        model.standardize(row, &mut z);
        softmax(&model.intercepts, &model.coefficients, &z, &mut prob);
        let q = match destinations.binary_search(&to) {
            Ok(k) => (1.0 - reserve) * prob[k],
            Err(_) => baseline[to],
        };
        let ll_cov = -q.clamp(1e-15, 1.0).ln();
        let ll_pool = -baseline[to].clamp(1e-15, 1.0).ln();
        sum_cov += ll_cov;
        sum_pool += ll_pool;
        sum_d += ll_pool - ll_cov;
        sum_d2 += (ll_pool - ll_cov) * (ll_pool - ll_cov);
    }
    let m = n_held as f64;
    let mean_d = sum_d / m;
    let var_d = ((sum_d2 - m * mean_d * mean_d) / (m - 1.0)).max(0.0);
    let se = (var_d / m).sqrt();
    model.holdout_log_loss = sum_cov / m;
    model.pooled_holdout_log_loss = sum_pool / m;
    model.improvement_z = if se > 0.0 { mean_d / se } else { 0.0 };
    model.kept = mean_d > 0.0 && model.improvement_z >= KEEP_Z;
    Ok(model)
}

/// The kept models, ready to give customers their first-step rows.
#[derive(Clone, Debug)]
pub struct FirstStep {
    dim: usize,
    origins: Vec<Option<PreparedOrigin>>,
}

#[derive(Clone, Debug)]
struct PreparedOrigin {
    model: OriginCovariates,
    destinations: Vec<usize>,
    /// The pooled row with the modelled destinations set to 0.
    rest: Vec<f64>,
    /// 1 − Σ rest: the mass the modelled destinations share.
    share: f64,
}

/// Why stored covariate models do not fit the chain they were saved with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CovariateError {
    #[error("its covariate model names an unknown origin {0:?}")]
    UnknownOrigin(String),
    #[error("the covariate model of {0:?} names an unknown destination")]
    UnknownDestination(String),
    #[error("the covariate model of {0:?} does not match its features")]
    Mismatch(String),
}

impl FirstStep {
    /// The kept models of `c` over the chain `matrix` with states `states`; `None` when no model
    /// is kept.
    pub fn new(
        c: &CovariateTransitions,
        states: &[String],
        matrix: &[Vec<f64>],
    ) -> Result<Option<Self>, CovariateError> {
        let dim = c.features.len();
        let mut origins: Vec<Option<PreparedOrigin>> = vec![None; states.len()];
        for o in c.origins.iter().filter(|o| o.kept) {
            let i = states
                .iter()
                .position(|s| *s == o.origin)
                .ok_or_else(|| CovariateError::UnknownOrigin(o.origin.clone()))?;
            let destinations = o
                .destinations
                .iter()
                .map(|d| states.iter().position(|s| s == d))
                .collect::<Option<Vec<usize>>>()
                .ok_or_else(|| CovariateError::UnknownDestination(o.origin.clone()))?;
            let k = destinations.len();
            if o.means.len() != dim
                || o.scales.len() != dim
                || o.intercepts.len() != k
                || o.coefficients.len() != k
                || o.coefficients.iter().any(|c| c.len() != dim)
                || o.scales.iter().any(|s| s.is_nan() || *s <= 0.0)
            {
                return Err(CovariateError::Mismatch(o.origin.clone()));
            }
            let mut rest = matrix[i].clone();
            for &j in &destinations {
                rest[j] = 0.0;
            }
            let share = (1.0 - rest.iter().sum::<f64>()).max(0.0);
            origins[i] = Some(PreparedOrigin { model: o.clone(), destinations, rest, share });
        }
        Ok(origins.iter().any(Option::is_some).then_some(Self { dim, origins }))
    }

    /// Number of covariates expected by [`Self::row`].
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Whether customers in `state` get their own row.
    pub fn covers(&self, state: usize) -> bool {
        self.origins.get(state).is_some_and(Option::is_some)
    }

    /// The first-step row of a customer in `state` with covariates `x` (see [`covariates_of`]);
    /// `None` when the state keeps the pooled row.
    pub fn row(&self, state: usize, x: &[f64]) -> Option<Vec<f64>> {
        let o = self.origins.get(state)?.as_ref()?;
        let mut z = vec![0.0; self.dim];
        o.model.standardize(x, &mut z);
        let mut prob = vec![0.0; o.destinations.len()];
        softmax(&o.model.intercepts, &o.model.coefficients, &z, &mut prob);
        let mut q = o.rest.clone();
        for (k, &j) in o.destinations.iter().enumerate() {
            q[j] = o.share * prob[k];
        }
        Some(q)
    }

    /// [`Self::row`] from a customer-period and its attributes.
    pub fn row_of(&self, state: usize, row: &PanelRow, attributes: &[f64]) -> Option<Vec<f64>> {
        if !self.covers(state) {
            return None;
        }
        let mut x = vec![0.0; self.dim];
        covariates_of(row, attributes, &mut x);
        self.row(state, &x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::chain::fit::smoothed_rows;
    use crate::domain::chain::moves::{MoveSampler, OriginSamples, feature_names, sample_key};
    use crate::domain::forecast::{ForecastParams, Forecaster};
    use crate::domain::linalg::vec_mat;

    fn states(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("s{i}")).collect()
    }

    /// Moves out of origin 0 to destinations 1 or 2, with one covariate (the attribute, last)
    /// making 1 likelier by `effect` on the logit scale; the RFM covariates are noise.
    fn samples(n_fit: usize, n_held: usize, effect: f64) -> MoveSamples {
        let draw = |k: usize, salt: u64| -> (Vec<f64>, usize) {
            let u = |i: u64| crate::domain::sampling::unit_interval(sample_key(k as u32, (salt * 10 + i) as u32));
            let a = u(0) * 2.0 - 1.0;
            let x = vec![u(1) * 3.0, u(2), u(3) * 5.0, (u(4) * 8.0).floor(), a];
            let p1 = 1.0 / (1.0 + (-(0.3 + effect * a)).exp());
            (x, if u(5) < p1 { 1 } else { 2 })
        };
        let collect = |n: usize, salt: u64| {
            let mut o = OriginSamples::default();
            for k in 0..n {
                let (x, to) = draw(k, salt);
                o.x.extend(x);
                o.to.push(to);
            }
            o
        };
        MoveSamples {
            dim: 5,
            fit: vec![collect(n_fit, 1), OriginSamples::default(), OriginSamples::default()],
            holdout: vec![collect(n_held, 2), OriginSamples::default(), OriginSamples::default()],
        }
    }

    fn baseline(s: &MoveSamples) -> Vec<Vec<f64>> {
        let mut counts = vec![vec![0u64; 3]; 3];
        for &to in &s.fit[0].to {
            counts[0][to] += 1;
        }
        let allowed = vec![vec![false, true, true]; 3];
        smoothed_rows(&counts, &allowed, 0.5)
    }

    fn names() -> Vec<String> {
        feature_names(&["a".to_string()])
    }

    #[test]
    fn an_attribute_that_drives_the_moves_gives_a_kept_model_with_a_lower_held_out_log_loss() {
        let s = samples(4000, 1000, 2.0);
        let c = fit(&states(3), names(), &s, &baseline(&s), &crate::domain::shards::Serial);
        let o = &c.origins[0];
        assert_eq!(o.origin, "s0");
        assert!(o.kept, "{o:?}");
        assert!(o.holdout_log_loss < o.pooled_holdout_log_loss - 0.05, "{o:?}");
        // The attribute's slope dominates: destination 1 minus destination 2 on the attribute.
        let slope = o.coefficients[0][4] - o.coefficients[1][4];
        assert!(slope > 0.5, "{o:?}");
        for k in 0..4 {
            assert!((o.coefficients[0][k] - o.coefficients[1][k]).abs() < slope / 4.0, "{o:?}");
        }
        // Origins without moves are skipped with a reason.
        assert_eq!(c.skipped.len(), 2);
        assert!(c.skipped[0].reason.contains("too few moves"), "{:?}", c.skipped);
    }

    #[test]
    fn covariates_that_do_not_drive_the_moves_are_not_kept() {
        for n in [2000, 4000, 8000] {
            let s = samples(n, n / 4, 0.0);
            let c = fit(&states(3), names(), &s, &baseline(&s), &crate::domain::shards::Serial);
            let o = &c.origins[0];
            assert!(!o.kept, "{o:?}");
            assert!(o.improvement_z < KEEP_Z, "{o:?}");
        }
    }

    #[test]
    fn too_few_moves_skip_the_origin() {
        let s = samples(MIN_FIT_MOVES - 1, 100, 2.0);
        let c = fit(&states(3), names(), &s, &baseline(&s), &crate::domain::shards::Serial);
        assert!(c.origins.is_empty());
        assert_eq!(c.skipped.len(), 3);
    }

    #[test]
    fn a_first_step_row_is_a_distribution_that_leaves_unmodelled_allowed_moves_at_their_pooled_value() {
        let s = samples(4000, 1000, 2.0);
        let c = fit(&states(3), names(), &s, &baseline(&s), &crate::domain::shards::Serial);
        // The chain also allows 0 → 0, which no sampled move took: it keeps its pooled 0.1.
        let matrix = vec![vec![0.1, 0.5, 0.4], vec![0.0, 1.0, 0.0], vec![0.0, 0.0, 1.0]];
        let first = FirstStep::new(&c, &states(3), &matrix).unwrap().expect("a kept model");
        assert!(first.covers(0) && !first.covers(1));
        for a in [-1.0, 0.0, 1.0] {
            let q = first.row(0, &[1.0, 0.5, 2.0, 3.0, a]).unwrap();
            assert_eq!(q[0], 0.1);
            assert!((q.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{q:?}");
        }
        let low = first.row(0, &[1.0, 0.5, 2.0, 3.0, -1.0]).unwrap();
        let high = first.row(0, &[1.0, 0.5, 2.0, 3.0, 1.0]).unwrap();
        assert!(high[1] > low[1] + 0.3, "{low:?} {high:?}");
        assert_eq!(first.row(1, &[0.0; 5]), None);
        // A model naming a state the chain lacks is refused.
        assert!(FirstStep::new(&c, &["x".to_string(), "s1".into(), "s2".into()], &matrix).is_err());
    }

    #[test]
    fn the_sample_keeps_the_smallest_keys_whatever_the_shard_order() {
        let row = |t: u32| PanelRow { recency_days: t, ..PanelRow::empty(t, t) };
        let mut a = MoveSampler::new(2, 4, 10, 4);
        let mut b = MoveSampler::new(2, 4, 10, 4);
        for c in 0..3000u32 {
            for t in 0..8 {
                a.record(c, &row(t), 0, 1, &[]);
            }
        }
        for c in 3000..6000u32 {
            for t in 0..8 {
                b.record(c, &row(t), 0, 1, &[]);
            }
        }
        let ab = MoveSampler::merge(vec![a.clone(), b.clone()]);
        let ba = MoveSampler::merge(vec![b, a]);
        assert_eq!(ab, ba);
        // Each of the 4 shards' share: ⌈20,000 / 4⌉ = 5,000, for fitting and for the held-out
        // moves (out of period 8, the second-to-last of 10) alike.
        assert_eq!(ab.fit[0].to.len(), 10_000);
        assert_eq!(ab.holdout[0].to.len(), 0);
        assert!(ab.fit[1].to.is_empty());
        // The kept moves are the ones with the smallest keys.
        let mut keys: Vec<u64> = (0..6000u32).flat_map(|c| (0..8).map(move |t| sample_key(c, t))).collect();
        keys.sort_unstable();
        let threshold = keys[4999];
        let kept_a = (0..3000u32).flat_map(|c| (0..8).map(move |t| sample_key(c, t))).filter(|&k| k <= threshold);
        assert!(kept_a.count() <= 5000);
    }

    /// Pfeifer & Carraway's chain (state 3 lapsed) and a first-step row q: the mixture forecast
    /// equals q·P^{h−1} computed directly.
    #[test]
    fn the_mixture_forecast_equals_the_first_step_row_times_the_chain_to_the_h_minus_one() {
        let p = vec![
            vec![0.5, 0.5, 0.0, 0.0],
            vec![0.2, 0.0, 0.8, 0.0],
            vec![0.1, 0.0, 0.0, 0.9],
            vec![0.0, 0.0, 0.0, 1.0],
        ];
        let lapsed = [false, false, false, true];
        let m = [100.0, 0.0, 0.0, 0.0];
        let d = 0.1;
        let f = Forecaster::new(&p, &lapsed, Some(0), &m, ForecastParams { horizon: 5, discount_rate: d }).unwrap();
        let q = [0.3, 0.2, 0.4, 0.1];
        let c = f.customer_with_first_step(1, &q, 42.0);
        let mut absorbing = p.clone();
        absorbing[3] = vec![0.0, 0.0, 0.0, 1.0];
        let (mut pi, mut abs) = (q.to_vec(), q.to_vec());
        let mut value = 0.0;
        for h in 1..=5 {
            if h > 1 {
                pi = vec_mat(&pi, &p);
                abs = vec_mat(&abs, &absorbing);
            }
            let got = &c.horizons[h - 1];
            for j in 0..4 {
                assert!((got.distribution[j] - pi[j]).abs() < 1e-12, "h {h}: {:?} vs {pi:?}", got.distribution);
            }
            assert!((got.churn - abs[3]).abs() < 1e-12, "h {h}");
            assert!((got.p_key - pi[0]).abs() < 1e-12);
            let spend = if h == 1 { 42.0 } else { pi[0] * 100.0 };
            assert!((got.expected_spend - spend).abs() < 1e-9, "h {h}");
            value += spend / (1.0f64 + d).powi(h as i32);
        }
        // By hand at h = 2: q·P = (0.3·0.5 + 0.2·0.2 + 0.4·0.1, 0.3·0.5, 0.2·0.8, 0.4·0.9 + 0.1).
        let h2 = &c.horizons[1].distribution;
        let want = [0.23, 0.15, 0.16, 0.46];
        assert!(h2.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12), "{h2:?}");
        assert!((c.value_horizon - value).abs() < 1e-9);
        // Periods to lapse: 1 + q·t with t from the state forecasts.
        let t: Vec<f64> = (0..4).map(|s| f.customer(s, 0.0).expected_periods_to_lapse.unwrap()).collect();
        let want = 1.0 + q.iter().zip(&t).map(|(a, b)| a * b).sum::<f64>();
        assert!((c.expected_periods_to_lapse.unwrap() - want).abs() < 1e-9);
        // The infinite value equals a long horizon's sum.
        let long =
            Forecaster::new(&p, &lapsed, Some(0), &m, ForecastParams { horizon: 120, discount_rate: d }).unwrap();
        let c = long.customer_with_first_step(1, &q, 42.0);
        assert!((c.value_infinite.unwrap() - c.value_horizon).abs() < 1e-3);
        // With the state's pooled row it is the state forecast.
        let pooled = f.customer_with_first_step(1, &p[1], 42.0);
        let state = f.customer(1, 42.0);
        for (a, b) in pooled.horizons.iter().zip(&state.horizons) {
            assert!(a.distribution.iter().zip(&b.distribution).all(|(x, y)| (x - y).abs() < 1e-12));
            assert!((a.churn - b.churn).abs() < 1e-12 && (a.expected_spend - b.expected_spend).abs() < 1e-9);
        }
        assert!((pooled.value_infinite.unwrap() - state.value_infinite.unwrap()).abs() < 1e-9);
        // A lapsed customer: churned throughout, re-activation = 1 − mass kept in lapsed states.
        let r = f.customer_with_first_step(3, &[0.05, 0.0, 0.0, 0.95], 0.0);
        assert_eq!(r.horizons[0].churn, 1.0);
        assert!((r.horizons[0].reactivation.unwrap() - 0.05).abs() < 1e-12);
        assert!((r.horizons[2].reactivation.unwrap() - 0.05).abs() < 1e-12);
    }
}
