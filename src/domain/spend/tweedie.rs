//! The Tweedie GLM with log link, fitted by iteratively reweighted least squares.

use super::model::ETA_LIMIT;
use super::moments::Normal;
use super::{GlmFit, SpendDesign, SpendError, SpendModel, SpendModelKind, SpendMoments, SpendSample};
use crate::domain::shards::Parallel;

impl SpendModel {
    /// A Tweedie GLM with log link and variance power `power` (1 < p < 2) of max(spend, 0) on
    /// `sample`, by iteratively reweighted least squares: each iteration is one weighted
    /// moments pass (in fixed shards, merged in order) with working response z = η + (y − μ)/μ
    /// and weight w = μ^(2−p), solved like OLS, which also gives the deviance at the current
    /// estimate; a step that raises the deviance is halved. Starts from `start` (intercept and
    /// coefficients, e.g. a fit on part of the data) or the log of the mean, and stops when the
    /// deviance changes by less than 1e-8 relative (R's `glm` rule; at most 50 iterations). The
    /// covariance is φ̂ (X'WX)⁻¹ at the estimate with φ̂ the Pearson dispersion: the sample's
    /// standard errors, not those of the full data.
    pub fn fit_tweedie(
        design: SpendDesign,
        sample: &SpendSample,
        power: f64,
        start: Option<&[f64]>,
        par: &impl Parallel,
    ) -> Result<Self, SpendError> {
        debug_assert!(power > 1.0 && power < 2.0);
        let n = sample.len();
        if n == 0 {
            return Err(SpendError::NoObservations);
        }
        let names = design.feature_names();
        let k = design.len();
        let p = k + 1;
        let mean = (0..n).map(|i| sample.target(i).max(0.0)).sum::<f64>() / n as f64;
        if mean <= 0.0 {
            return Err(SpendError::NoPositiveSpend);
        }
        let mut beta = match start {
            Some(b) if b.len() == p => b.to_vec(),
            _ => {
                let mut b = vec![0.0; p];
                b[0] = mean.ln();
                b
            }
        };
        let mut at = irls_pass(sample, k, &beta, power, par);
        let (mut iterations, mut converged) = (0, false);
        while iterations < 50 {
            iterations += 1;
            let full = Normal::solve(&at.moments).beta;
            let mut step = 1.0;
            let mut next = full.clone();
            let mut next_at = irls_pass(sample, k, &next, power, par);
            while next_at.deviance > at.deviance * (1.0 + 1e-12) && step > 1e-3 {
                step /= 2.0;
                next = beta.iter().zip(&full).map(|(b, c)| b + step * (c - b)).collect();
                next_at = irls_pass(sample, k, &next, power, par);
            }
            let change = (at.deviance - next_at.deviance).abs() / (next_at.deviance.abs() + 0.1);
            beta = next;
            at = next_at;
            if change < 1e-8 {
                converged = true;
                break;
            }
        }
        // Information and dispersion at the estimate.
        let normal = Normal::solve(&at.moments);
        let q = normal.keep.len();
        let dispersion = at.pearson / (n as f64 - q as f64).max(1.0);
        let mut model = Self {
            kind: SpendModelKind::Tweedie,
            dropped: normal.dropped(&names),
            design,
            feature_names: names,
            intercept: beta[0],
            coefficients: beta[1..].to_vec(),
            observations: n as u64,
            mean_target: 0.0,
            r_squared: 0.0,
            rmse: 0.0,
            covariance: normal.covariance(dispersion),
            smearing: 1.0,
            glm: Some(GlmFit { power, dispersion, deviance: at.deviance, iterations, converged }),
        };
        model.measure_on(sample);
        Ok(model)
    }
}

/// One IRLS pass at `beta` (intercept first): the weighted moments of the working response,
/// the deviance and the Pearson χ².
pub(super) struct IrlsPass {
    pub(super) moments: SpendMoments,
    pub(super) deviance: f64,
    pub(super) pearson: f64,
}

pub(super) fn irls_pass(
    sample: &SpendSample,
    features: usize,
    beta: &[f64],
    power: f64,
    par: &impl Parallel,
) -> IrlsPass {
    let shards = par.in_shards(sample.len(), |range| {
        let mut m = SpendMoments::new(features);
        let (mut deviance, mut pearson) = (0.0, 0.0);
        let mut nz = Vec::with_capacity(features + 1);
        for i in range {
            sample.non_zero(i, &mut nz);
            let eta = nz.iter().map(|&(j, v)| beta[j] * v).sum::<f64>().clamp(-ETA_LIMIT, ETA_LIMIT);
            let mu = eta.exp();
            let y = sample.target(i).max(0.0);
            let mu_1p = mu.powf(1.0 - power);
            // μ^(2−p) = μ·μ^(1−p); μ^p = μ / μ^(1−p).
            let w = mu * mu_1p;
            m.add_non_zero(&nz, eta + (y - mu) / mu, w);
            deviance += tweedie_unit_deviance_with(y, w, mu_1p, power);
            pearson += (y - mu).powi(2) * mu_1p / mu;
        }
        (m, deviance, pearson)
    });
    let mut shards = shards.into_iter();
    let (mut moments, mut deviance, mut pearson) = shards.next().expect("at least one shard");
    for (m, d, q) in shards {
        moments.merge(&m);
        deviance += d;
        pearson += q;
    }
    IrlsPass { moments, deviance, pearson }
}

/// [`tweedie_unit_deviance`] from precomputed powers μ^(2−p) and μ^(1−p).
pub(super) fn tweedie_unit_deviance_with(y: f64, mu_2p: f64, mu_1p: f64, p: f64) -> f64 {
    let last = mu_2p / (2.0 - p);
    if y <= 0.0 {
        return 2.0 * last;
    }
    2.0 * (y.powf(2.0 - p) / ((1.0 - p) * (2.0 - p)) - y * mu_1p / (1.0 - p) + last)
}

/// Unit deviance of the Tweedie family with power 1 < p < 2:
/// 2 [y^(2−p)/((1−p)(2−p)) − y·μ^(1−p)/(1−p) + μ^(2−p)/(2−p)] (for y = 0 only the last term).
pub fn tweedie_unit_deviance(y: f64, mu: f64, p: f64) -> f64 {
    let last = mu.powf(2.0 - p) / (2.0 - p);
    if y <= 0.0 {
        return 2.0 * last;
    }
    2.0 * (y.powf(2.0 - p) / ((1.0 - p) * (2.0 - p)) - y * mu.powf(1.0 - p) / (1.0 - p) + last)
}
