//! Spend regression: next-period spend from the customer's current state, log RFM features,
//! tenure and numeric attributes. Three candidates ([`SpendModelKind`]):
//!
//! - `ols`: ordinary least squares of spend;
//! - `log_ols`: least squares of ln(1 + max(spend, 0)) (a return-only period counts as no
//!   spend), back-transformed with Duan's smearing estimate s = mean(exp(residual)):
//!   E[spend | x] ≈ s·exp(x'β) − 1;
//! - `tweedie`: a Tweedie GLM (variance power 1 < p < 2, log link) of max(spend, 0) by iteratively
//!   reweighted least squares, which handles the many zero periods without a transform.
//!
//! Least-squares fits use only sufficient statistics (X'X, X'y, y'y), which add across shards, so
//! they run on every customer-period without holding the design matrix in memory (a million
//! customers over a dozen periods would need ~1 GB for it). The smearing factor and the GLM need
//! the rows themselves; they use a deterministic sample ([`SpendSample`], at most
//! [`FIT_SAMPLE`] customer-periods chosen by a hash). [`select`] compares the candidates on
//! held-out moves. The coefficients live in kam's own type so a saved model is rebuilt from its
//! numbers alone.

use crate::domain::metrics::{SpendErrors, spend_errors};
use crate::domain::panel::{PanelRow, RFM_FEATURES};
use crate::domain::sampling;
use crate::domain::shards::Parallel;
use serde::{Deserialize, Serialize};

/// Layout of the design: an indicator for every state but the first (the reference), the RFM
/// features, then attributes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpendDesign {
    pub states: Vec<String>,
    pub attributes: Vec<String>,
}

impl SpendDesign {
    /// Number of features (without the intercept).
    pub fn len(&self) -> usize {
        self.states.len() - 1 + RFM_FEATURES.len() + self.attributes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn feature_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.states[1..].iter().map(|s| format!("state={s}")).collect();
        v.extend(RFM_FEATURES.iter().map(|s| s.to_string()));
        v.extend(self.attributes.iter().cloned());
        v
    }

    /// Writes the features of a customer-period into `out` (length [`Self::len`]).
    pub fn features(&self, state: usize, row: &PanelRow, attributes: &[f64], out: &mut [f64]) {
        let k = self.states.len() - 1;
        out[..k].fill(0.0);
        if state > 0 {
            out[state - 1] = 1.0;
        }
        row.rfm_features(&mut out[k..k + 4]);
        out[k + 4..].copy_from_slice(attributes);
    }
}

/// Sufficient statistics of a least-squares fit with intercept, for one or more targets that
/// share the design (X'X once, X'y and y'y per target). Mergeable.
#[derive(Clone, Debug, PartialEq)]
pub struct SpendMoments {
    p: usize,
    targets: usize,
    xtx: Vec<f64>,
    /// `xty[t * p + i]`: target t.
    xty: Vec<f64>,
    yty: Vec<f64>,
    n: u64,
    /// Scratch: the non-zero features of the observation being added.
    nz: Vec<(usize, f64)>,
}

impl SpendMoments {
    /// Empty moments for `features` features (plus intercept) and one target.
    pub fn new(features: usize) -> Self {
        Self::with_targets(features, 1)
    }

    /// Empty moments for `features` features (plus intercept) and `targets` targets.
    pub fn with_targets(features: usize, targets: usize) -> Self {
        let p = features + 1;
        Self {
            p,
            targets,
            xtx: vec![0.0; p * p],
            xty: vec![0.0; p * targets],
            yty: vec![0.0; targets],
            n: 0,
            nz: Vec::with_capacity(p),
        }
    }

    /// Collects the non-zero features of `x` (with the intercept first) into the scratch list.
    #[inline]
    fn non_zero(&mut self, x: &[f64]) -> Vec<(usize, f64)> {
        debug_assert_eq!(x.len() + 1, self.p);
        let mut nz = std::mem::take(&mut self.nz);
        nz.clear();
        nz.push((0, 1.0));
        nz.extend(x.iter().enumerate().filter(|(_, v)| **v != 0.0).map(|(i, v)| (i + 1, *v)));
        nz
    }

    /// Adds one observation (upper triangle only; mirrored on fit). The state indicators are
    /// one-hot, so only the few non-zero features are visited.
    #[inline]
    pub fn add(&mut self, x: &[f64], y: f64) {
        debug_assert_eq!(self.targets, 1);
        self.add_targets(x, &[y]);
    }

    /// Adds one observation with a value for every target.
    #[inline]
    pub fn add_targets(&mut self, x: &[f64], y: &[f64]) {
        debug_assert_eq!(y.len(), self.targets);
        let p = self.p;
        let nz = self.non_zero(x);
        for (k, &(i, a)) in nz.iter().enumerate() {
            let row = &mut self.xtx[i * p..(i + 1) * p];
            for &(j, b) in &nz[k..] {
                row[j] += a * b;
            }
            for (t, yt) in y.iter().enumerate() {
                self.xty[t * p + i] += a * yt;
            }
        }
        self.nz = nz;
        for (s, yt) in self.yty.iter_mut().zip(y) {
            *s += yt * yt;
        }
        self.n += 1;
    }

    /// Adds one observation of a single-target fit with weight `w` (weighted least squares:
    /// X'WX, X'Wy, y'Wy).
    #[inline]
    pub fn add_weighted(&mut self, x: &[f64], y: f64, w: f64) {
        debug_assert_eq!(self.targets, 1);
        let nz = self.non_zero(x);
        self.add_non_zero(&nz, y, w);
        self.nz = nz;
    }

    /// [`Self::add_weighted`] for an observation given by its non-zero parameters (index,
    /// value), intercept included, in increasing index order.
    #[inline]
    pub fn add_non_zero(&mut self, nz: &[(usize, f64)], y: f64, w: f64) {
        debug_assert_eq!(self.targets, 1);
        let p = self.p;
        for (k, &(i, a)) in nz.iter().enumerate() {
            let wa = w * a;
            let row = &mut self.xtx[i * p..(i + 1) * p];
            for &(j, b) in &nz[k..] {
                row[j] += wa * b;
            }
            self.xty[i] += wa * y;
        }
        self.yty[0] += w * y * y;
        self.n += 1;
    }

    pub fn merge(&mut self, other: &SpendMoments) {
        assert_eq!((self.p, self.targets), (other.p, other.targets));
        self.xtx.iter_mut().zip(&other.xtx).for_each(|(a, b)| *a += b);
        self.xty.iter_mut().zip(&other.xty).for_each(|(a, b)| *a += b);
        self.yty.iter_mut().zip(&other.yty).for_each(|(a, b)| *a += b);
        self.n += other.n;
    }

    /// The single-target moments of target `t`.
    pub fn target(&self, t: usize) -> SpendMoments {
        let p = self.p;
        SpendMoments {
            p,
            targets: 1,
            xtx: self.xtx.clone(),
            xty: self.xty[t * p..(t + 1) * p].to_vec(),
            yty: vec![self.yty[t]],
            n: self.n,
            nz: Vec::with_capacity(p),
        }
    }

    pub fn n(&self) -> u64 {
        self.n
    }
}

/// Why the spend regression could not be fitted.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpendError {
    #[error("the spend regression has no customer-period with an observed next period (one period only?)")]
    NoObservations,
    #[error("the Tweedie spend model needs some positive next-period spend; every sampled period had none")]
    NoPositiveSpend,
}

/// Which regression predicts next-period spend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpendModelKind {
    /// Least squares of spend.
    #[default]
    Ols,
    /// Least squares of ln(1 + max(spend, 0)), back-transformed with Duan's smearing estimate.
    LogOls,
    /// Tweedie GLM with log link (1 < p < 2) of max(spend, 0), by IRLS.
    Tweedie,
}

impl SpendModelKind {
    /// Every candidate, simplest first (the order that breaks ties in [`select`]).
    pub const ALL: [SpendModelKind; 3] = [SpendModelKind::Ols, SpendModelKind::LogOls, SpendModelKind::Tweedie];

    pub fn name(self) -> &'static str {
        match self {
            SpendModelKind::Ols => "ols",
            SpendModelKind::LogOls => "log_ols",
            SpendModelKind::Tweedie => "tweedie",
        }
    }
}

impl std::fmt::Display for SpendModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn one() -> f64 {
    1.0
}

/// How an iteratively reweighted fit ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GlmFit {
    /// Variance power p of the Tweedie family (variance φ·μ^p).
    pub power: f64,
    /// Dispersion φ̂: Pearson χ² / (n − parameters).
    pub dispersion: f64,
    /// Total unit deviance at the estimate.
    pub deviance: f64,
    pub iterations: u32,
    pub converged: bool,
}

/// A fitted spend regression.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpendModel {
    /// Which regression this is; `ols` in artifacts written before kam had a choice.
    #[serde(default)]
    kind: SpendModelKind,
    design: SpendDesign,
    feature_names: Vec<String>,
    /// On the model's link scale: spend (`ols`), ln(1 + spend) (`log_ols`), ln E[spend]
    /// (`tweedie`).
    intercept: f64,
    coefficients: Vec<f64>,
    /// Features that were constant zero in training (their coefficient is fixed at 0).
    dropped: Vec<String>,
    /// Customer-periods the coefficients were fitted on (for `tweedie`, the sample).
    observations: u64,
    /// Mean next-period spend over those customer-periods.
    mean_target: f64,
    /// 1 − SSE/SST and √(SSE/n) of the predicted spend, in spend units (`ols`: on every
    /// customer-period; the others: on the sample).
    r_squared: f64,
    rmse: f64,
    /// Sampling covariance of (intercept, coefficients…) on the link scale, row-major
    /// (p + 1)²; zero rows and columns for dropped features. `ols` and `log_ols`: σ̂² (X'X)⁻¹
    /// with σ̂² = SSE / (n − p); `tweedie`: φ̂ (X'WX)⁻¹ at the estimate. Empty in artifacts
    /// written before kam stored it (then spend intervals are points).
    #[serde(default)]
    covariance: Vec<f64>,
    /// Duan's smearing factor, mean exp(residual) of the log fit (`log_ols`); 1 otherwise.
    #[serde(default = "one")]
    smearing: f64,
    /// The GLM's family and how its fit ended (`tweedie`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    glm: Option<GlmFit>,
}

/// The normal equations of a (weighted) least-squares fit, solved.
struct Normal {
    p: usize,
    /// Symmetric X'X (full).
    full: Vec<f64>,
    /// Parameters with a non-zero column; the others are fixed at 0.
    keep: Vec<usize>,
    /// √diagonal of the kept columns (the system is solved on unit-diagonal scale).
    scale: Vec<f64>,
    /// The scaled kept system.
    a: Vec<f64>,
    beta: Vec<f64>,
}

impl Normal {
    /// Least squares from moments: scales columns to unit diagonal, then solves the normal
    /// equations by Cholesky (with a tiny ridge for numerical safety, grown until the system is
    /// positive definite, so collinear or too few observations still give the
    /// minimum-norm-like ridge solution).
    fn solve(m: &SpendMoments) -> Self {
        let p = m.p;
        let mut full = vec![0.0; p * p];
        for i in 0..p {
            for j in i..p {
                full[i * p + j] = m.xtx[i * p + j];
                full[j * p + i] = m.xtx[i * p + j];
            }
        }
        let keep: Vec<usize> = (0..p).filter(|&i| full[i * p + i] > 0.0).collect();
        let q = keep.len();
        let scale: Vec<f64> = keep.iter().map(|&i| full[i * p + i].sqrt()).collect();
        let mut a = vec![0.0; q * q];
        let mut b = vec![0.0; q];
        for (r, &i) in keep.iter().enumerate() {
            for (c, &j) in keep.iter().enumerate() {
                a[r * q + c] = full[i * p + j] / (scale[r] * scale[c]);
            }
            b[r] = m.xty[i] / scale[r];
        }
        let solution = solve_spd(&a, &b, q);
        let mut beta = vec![0.0; p];
        for (r, &i) in keep.iter().enumerate() {
            beta[i] = solution[r] / scale[r];
        }
        Self { p, full, keep, scale, a, beta }
    }

    /// SSE = y'y − 2β'X'y + β'X'Xβ.
    fn sse(&self, m: &SpendMoments) -> f64 {
        let (p, beta, full) = (self.p, &self.beta, &self.full);
        let mut bxtxb = 0.0;
        for i in 0..p {
            for j in 0..p {
                bxtxb += beta[i] * full[i * p + j] * beta[j];
            }
        }
        let bxty: f64 = beta.iter().zip(&m.xty).map(|(b, v)| b * v).sum();
        (m.yty[0] - 2.0 * bxty + bxtxb).max(0.0)
    }

    /// factor · (X'X)⁻¹ over the kept parameters, zero elsewhere, from the scaled system.
    fn covariance(&self, factor: f64) -> Vec<f64> {
        let (p, q) = (self.p, self.keep.len());
        let mut covariance = vec![0.0; p * p];
        let mut unit = vec![0.0; q];
        for (c, &j) in self.keep.iter().enumerate() {
            unit.fill(0.0);
            unit[c] = 1.0;
            let column = solve_spd(&self.a, &unit, q);
            for (r, &i) in self.keep.iter().enumerate() {
                covariance[i * p + j] = factor * column[r] / (self.scale[r] * self.scale[c]);
            }
        }
        covariance
    }

    fn dropped(&self, names: &[String]) -> Vec<String> {
        (1..self.p).filter(|i| !self.keep.contains(i)).map(|i| names[i - 1].clone()).collect()
    }
}

/// ln(1 + max(y, 0)): the `log_ols` target. A period of returns only counts as no spend.
pub fn log_target(y: f64) -> f64 {
    y.max(0.0).ln_1p()
}

/// Largest |linear predictor| a log-link model exponentiates (e^50 ≈ 5·10²¹).
const ETA_LIMIT: f64 = 50.0;

impl SpendModel {
    /// Ordinary least squares of next-period spend from moments: columns scaled to unit
    /// diagonal, normal equations solved by Cholesky with a tiny ridge grown until positive
    /// definite, so collinear or too few observations still give the minimum-norm-like ridge
    /// solution ([`Self::observations`] tells how much data stood behind it).
    pub fn fit(design: SpendDesign, m: &SpendMoments) -> Result<Self, SpendError> {
        let p = m.p;
        if m.n == 0 {
            return Err(SpendError::NoObservations);
        }
        let names = design.feature_names();
        let normal = Normal::solve(m);
        let q = normal.keep.len();
        let sse = normal.sse(m);
        let n = m.n as f64;
        let mean = m.xty[0] / n;
        let sst = (m.yty[0] - n * mean * mean).max(0.0);
        // Covariance: σ̂² (X'X)⁻¹, from the scaled system's inverse.
        let sigma2 = sse / (n - q as f64).max(1.0);
        let covariance = normal.covariance(sigma2);
        debug_assert_eq!(covariance.len(), p * p);
        Ok(Self {
            kind: SpendModelKind::Ols,
            dropped: normal.dropped(&names),
            design,
            feature_names: names,
            intercept: normal.beta[0],
            coefficients: normal.beta[1..].to_vec(),
            observations: m.n,
            mean_target: mean,
            r_squared: if sst > 0.0 { 1.0 - sse / sst } else { 0.0 },
            rmse: (sse / n).sqrt(),
            covariance,
            smearing: 1.0,
            glm: None,
        })
    }

    /// Least squares of ln(1 + max(spend, 0)) from moments of that target (`log_moments`),
    /// with Duan's smearing factor s = mean exp(y' − x'β̂) over `sample` (whose targets are
    /// spend, not its log), so that E[spend | x] ≈ s·exp(x'β̂) − 1. R² and RMSE are measured on
    /// the sample in spend units.
    pub fn fit_log(design: SpendDesign, log_moments: &SpendMoments, sample: &SpendSample) -> Result<Self, SpendError> {
        let mut model = Self::fit(design, log_moments)?;
        model.kind = SpendModelKind::LogOls;
        let mut x = vec![0.0; model.design.len()];
        let mut smear = 0.0;
        for i in 0..sample.len() {
            sample.features(i, &mut x);
            smear += (log_target(sample.target(i)) - model.linear(&x)).exp();
        }
        model.smearing = if sample.is_empty() { 1.0 } else { smear / sample.len() as f64 };
        model.measure_on(sample);
        Ok(model)
    }

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

    /// Sets mean target, R² and RMSE from the predictions on `sample`, in spend units.
    fn measure_on(&mut self, sample: &SpendSample) {
        let n = sample.len();
        if n == 0 {
            return;
        }
        let mut x = vec![0.0; self.design.len()];
        let mean = (0..n).map(|i| sample.target(i)).sum::<f64>() / n as f64;
        let (mut sse, mut sst) = (0.0, 0.0);
        for i in 0..n {
            sample.features(i, &mut x);
            let y = sample.target(i);
            sse += (y - self.predict(&x)).powi(2);
            sst += (y - mean).powi(2);
        }
        self.mean_target = mean;
        self.r_squared = if sst > 0.0 { 1.0 - sse / sst } else { 0.0 };
        self.rmse = (sse / n as f64).sqrt();
    }

    pub fn kind(&self) -> SpendModelKind {
        self.kind
    }

    pub fn design(&self) -> &SpendDesign {
        &self.design
    }

    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    pub fn intercept(&self) -> f64 {
        self.intercept
    }

    pub fn coefficients(&self) -> &[f64] {
        &self.coefficients
    }

    pub fn observations(&self) -> u64 {
        self.observations
    }

    pub fn r_squared(&self) -> f64 {
        self.r_squared
    }

    pub fn rmse(&self) -> f64 {
        self.rmse
    }

    pub fn mean_target(&self) -> f64 {
        self.mean_target
    }

    pub fn dropped(&self) -> &[String] {
        &self.dropped
    }

    /// Duan's smearing factor (`log_ols`; 1 for the others).
    pub fn smearing(&self) -> f64 {
        self.smearing
    }

    /// The GLM's family and convergence (`tweedie`).
    pub fn glm(&self) -> Option<&GlmFit> {
        self.glm.as_ref()
    }

    /// The linear predictor η = intercept + β'x on the model's link scale.
    pub fn linear(&self, features: &[f64]) -> f64 {
        self.intercept + self.coefficients.iter().zip(features).map(|(b, x)| b * x).sum::<f64>()
    }

    /// Predicted next-period spend for features laid out by [`SpendDesign::features`]: η itself
    /// (`ols`), max(s·e^η − 1, 0) (`log_ols`), e^η (`tweedie`).
    pub fn predict(&self, features: &[f64]) -> f64 {
        let eta = self.linear(features);
        match self.kind {
            SpendModelKind::Ols => eta,
            SpendModelKind::LogOls => (self.smearing * eta.min(ETA_LIMIT).exp() - 1.0).max(0.0),
            SpendModelKind::Tweedie => eta.clamp(-ETA_LIMIT, ETA_LIMIT).exp(),
        }
    }

    /// Standard errors of (intercept, coefficients…) on the link scale, from
    /// [`Self::covariance`]'s diagonal.
    pub fn standard_errors(&self) -> Vec<f64> {
        let p = self.coefficients.len() + 1;
        if self.covariance.len() != p * p {
            return vec![0.0; p];
        }
        (0..p).map(|i| self.covariance[i * p + i].max(0.0).sqrt()).collect()
    }

    /// Sampling covariance of (intercept, coefficients…), row-major; empty for old artifacts.
    pub fn covariance(&self) -> &[f64] {
        &self.covariance
    }

    /// Standard error of the predicted mean spend at `features`. For `ols` it is √(x̃' Σ x̃)
    /// with x̃ = (1, x). For the log-link models it is the delta method: the prediction is
    /// g(η) with g(η) = s·e^η − 1 or e^η, so se ≈ g'(η)·√(x̃' Σ x̃) = s·e^η·√(x̃' Σ x̃) (the
    /// smearing factor taken as known). Visits only the non-zero features (the state indicators
    /// are one-hot). 0 for artifacts without a covariance.
    pub fn prediction_se(&self, features: &[f64]) -> f64 {
        let p = self.coefficients.len() + 1;
        if self.covariance.len() != p * p {
            return 0.0;
        }
        let all: Vec<(usize, f64)> =
            std::iter::once(&1.0).chain(features).copied().enumerate().filter(|(_, x)| *x != 0.0).collect();
        let mut v = 0.0;
        for &(i, a) in &all {
            let row = &self.covariance[i * p..(i + 1) * p];
            for &(j, b) in &all {
                v += a * row[j] * b;
            }
        }
        let linear_se = v.max(0.0).sqrt();
        match self.kind {
            SpendModelKind::Ols => linear_se,
            SpendModelKind::LogOls | SpendModelKind::Tweedie => {
                self.smearing * self.linear(features).clamp(-ETA_LIMIT, ETA_LIMIT).exp() * linear_se
            }
        }
    }
}

/// One IRLS pass at `beta` (intercept first): the weighted moments of the working response,
/// the deviance and the Pearson χ².
struct IrlsPass {
    moments: SpendMoments,
    deviance: f64,
    pearson: f64,
}

fn irls_pass(sample: &SpendSample, features: usize, beta: &[f64], power: f64, par: &impl Parallel) -> IrlsPass {
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
fn tweedie_unit_deviance_with(y: f64, mu_2p: f64, mu_1p: f64, p: f64) -> f64 {
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

/// A deterministic sample of customer-periods kept in memory for the fits that need the rows
/// (smearing, the GLM, held-out scores): per row the state, the dense features after the state
/// indicators (RFM, attributes) and the next-period spend.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpendSample {
    /// Number of state indicators in the design (states − 1).
    indicators: usize,
    /// Dense features per row (RFM + attributes).
    width: usize,
    state: Vec<u32>,
    dense: Vec<f64>,
    target: Vec<f64>,
}

/// Customer-periods the fitting sample holds at most (see [`sample_rate`]).
pub const FIT_SAMPLE: u64 = 200_000;
/// Held-out customer-periods scored at most.
pub const HELD_OUT_SAMPLE: u64 = 100_000;

/// The share of `rows` to keep so that about `at_most` are kept (1 when all fit).
pub fn sample_rate(rows: u64, at_most: u64) -> f64 {
    if rows <= at_most { 1.0 } else { at_most as f64 / rows as f64 }
}

/// A uniform number in [0, 1) from a customer number and a period
/// ([`crate::domain::sampling`]): the same customer-period always gets the same number, so
/// samples do not depend on threads.
pub fn sample_key(customer: u64, period: u32) -> f64 {
    sampling::unit_interval(sampling::customer_period_key(customer, period))
}

impl SpendSample {
    pub fn new(design: &SpendDesign) -> Self {
        Self {
            indicators: design.states.len() - 1,
            width: RFM_FEATURES.len() + design.attributes.len(),
            ..Self::default()
        }
    }

    /// Adds a row: features laid out by [`SpendDesign::features`] for `state`, next-period spend.
    pub fn push(&mut self, state: usize, features: &[f64], target: f64) {
        self.state.push(state as u32);
        self.dense.extend_from_slice(&features[self.indicators..]);
        self.target.push(target);
    }

    pub fn append(&mut self, other: &SpendSample) {
        self.state.extend_from_slice(&other.state);
        self.dense.extend_from_slice(&other.dense);
        self.target.extend_from_slice(&other.target);
    }

    pub fn len(&self) -> usize {
        self.target.len()
    }

    pub fn is_empty(&self) -> bool {
        self.target.is_empty()
    }

    /// Writes row `i`'s features into `out` (length of the design).
    pub fn features(&self, i: usize, out: &mut [f64]) {
        let k = self.indicators;
        out[..k].fill(0.0);
        let s = self.state[i] as usize;
        if s > 0 {
            out[s - 1] = 1.0;
        }
        out[k..].copy_from_slice(&self.dense[i * self.width..(i + 1) * self.width]);
    }

    /// Row `i`'s non-zero parameters as (index, value), the intercept (index 0) first.
    pub fn non_zero(&self, i: usize, out: &mut Vec<(usize, f64)>) {
        out.clear();
        out.push((0, 1.0));
        let s = self.state[i] as usize;
        if s > 0 {
            out.push((s, 1.0));
        }
        let base = 1 + self.indicators;
        let row = &self.dense[i * self.width..(i + 1) * self.width];
        out.extend(row.iter().enumerate().filter(|(_, v)| **v != 0.0).map(|(j, v)| (base + j, *v)));
    }

    /// Row `i`'s next-period spend.
    pub fn target(&self, i: usize) -> f64 {
        self.target[i]
    }
}

/// What [`select`] needs from training: the moments and samples of the moves before the last
/// training period (fit) and into it (held out), and of all moves.
pub struct SelectionInputs<'a> {
    pub design: &'a SpendDesign,
    /// Moments with targets (spend, ln(1 + max(spend, 0))) of the moves into periods before the
    /// last one.
    pub fit_moments: &'a SpendMoments,
    /// The same of the moves into the last period.
    pub held_out_moments: &'a SpendMoments,
    /// Sample of the moves before the last period, and of those into it, at the same rate.
    pub fit_sample: &'a SpendSample,
    pub last_sample: &'a SpendSample,
    /// The moves into the last period that are scored (its own rate).
    pub held_out_sample: &'a SpendSample,
    /// The requested model.
    pub choice: SpendChoice,
    pub tweedie_power: f64,
}

/// The configured spend model: a fixed one, or the held-out comparison's choice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpendChoice {
    /// Fit every candidate on all but the last period's moves, score them on those moves, and
    /// keep the one [`select`]'s rule picks.
    #[default]
    Auto,
    Ols,
    LogOls,
    Tweedie,
}

impl SpendChoice {
    pub fn fixed(self) -> Option<SpendModelKind> {
        match self {
            SpendChoice::Auto => None,
            SpendChoice::Ols => Some(SpendModelKind::Ols),
            SpendChoice::LogOls => Some(SpendModelKind::LogOls),
            SpendChoice::Tweedie => Some(SpendModelKind::Tweedie),
        }
    }
}

/// A candidate spend model: its held-out scores (fitted without the last period's moves) and
/// its coefficients with standard errors when fitted on every move.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpendCandidate {
    pub model: SpendModelKind,
    /// Scores on the held-out moves: MAE, RMSE, Spearman, totals, top-20% capture. `None` when
    /// there was no held-out comparison or the candidate could not be fitted.
    pub held_out: Option<SpendErrors>,
    /// Intercept and coefficients on the link scale (feature names as in the chosen model).
    pub intercept: f64,
    pub coefficients: Vec<f64>,
    /// Standard errors of (intercept, coefficients…).
    pub standard_errors: Vec<f64>,
    /// Duan's smearing factor (`log_ols`).
    pub smearing: f64,
    pub observations: u64,
    /// Why the candidate could not be fitted, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// The held-out moves the candidates were compared on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeldOut {
    /// Moves the candidates were fitted on (into periods before the last).
    pub fit_moves: u64,
    /// Moves into the last training period.
    pub held_out_moves: u64,
    /// Of those, the ones scored (a deterministic sample above [`HELD_OUT_SAMPLE`]).
    pub scored: u64,
}

/// Which spend model was chosen, why, and how every candidate did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpendSelection {
    /// The configured choice.
    pub requested: SpendChoice,
    pub chosen: SpendModelKind,
    /// The rule, in words, and what it found.
    pub reason: String,
    /// The comparison's data; `None` when there was none (fewer than three periods, or fewer
    /// than [`MIN_HELD_OUT`] moves on either side).
    pub held_out: Option<HeldOut>,
    pub candidates: Vec<SpendCandidate>,
}

/// Fewest moves on each side of the held-out split for a comparison.
pub const MIN_HELD_OUT: u64 = 20;

/// Tolerance of the selection rule, in percentage points of total error.
pub const TOTAL_ERROR_TOLERANCE_PP: f64 = 5.0;

/// The selection rule: among the candidates with held-out scores, those whose |total error| is
/// within [`TOTAL_ERROR_TOLERANCE_PP`] points of the smallest |total error| are admissible; the
/// admissible one with the lowest held-out RMSE wins; ties go to the simpler model (the order of
/// [`SpendModelKind::ALL`]). `None` without scores.
pub fn choose(scores: &[(SpendModelKind, SpendErrors)]) -> Option<SpendModelKind> {
    let abs_total = |e: &SpendErrors| if e.total_error_pct.is_finite() { e.total_error_pct.abs() } else { 0.0 };
    let best_total = scores.iter().map(|(_, e)| abs_total(e)).fold(f64::INFINITY, f64::min);
    let mut best: Option<(SpendModelKind, f64)> = None;
    for kind in SpendModelKind::ALL {
        let Some((_, e)) = scores.iter().find(|(k, _)| *k == kind) else { continue };
        if abs_total(e) > best_total + TOTAL_ERROR_TOLERANCE_PP || !e.rmse.is_finite() {
            continue;
        }
        if best.is_none_or(|(_, r)| e.rmse < r) {
            best = Some((kind, e.rmse));
        }
    }
    best.map(|b| b.0)
}

/// Fits one candidate: `moments` (targets spend, log spend) for the least-squares fits, `sample`
/// for smearing and the GLM.
fn fit_candidate(
    kind: SpendModelKind,
    design: &SpendDesign,
    moments: &SpendMoments,
    sample: &SpendSample,
    power: f64,
    start: Option<&[f64]>,
    par: &impl Parallel,
) -> Result<SpendModel, SpendError> {
    match kind {
        SpendModelKind::Ols => SpendModel::fit(design.clone(), &moments.target(0)),
        SpendModelKind::LogOls => SpendModel::fit_log(design.clone(), &moments.target(1), sample),
        SpendModelKind::Tweedie => SpendModel::fit_tweedie(design.clone(), sample, power, start, par),
    }
}

/// Held-out scores of `model` on `sample`.
pub fn score_on(model: &SpendModel, sample: &SpendSample) -> SpendErrors {
    let mut x = vec![0.0; model.design().len()];
    let mut predicted = Vec::with_capacity(sample.len());
    for i in 0..sample.len() {
        sample.features(i, &mut x);
        predicted.push(model.predict(&x));
    }
    spend_errors(&predicted, &sample.target)
}

/// Fits the candidates on the moves before the last period, scores them on the moves into it,
/// chooses by [`choose`] (or takes the configured model), and fits the chosen one and the others
/// on every move. Errors only when the chosen model cannot be fitted on every move.
pub fn select(inputs: &SelectionInputs, par: &impl Parallel) -> Result<(SpendModel, SpendSelection), SpendError> {
    let d = inputs.design;
    let power = inputs.tweedie_power;
    let mut all_moments = inputs.fit_moments.clone();
    all_moments.merge(inputs.held_out_moments);
    let mut all_sample = inputs.fit_sample.clone();
    all_sample.append(inputs.last_sample);

    let comparable = inputs.fit_moments.n() >= MIN_HELD_OUT && inputs.held_out_moments.n() >= MIN_HELD_OUT;
    let mut scores: Vec<(SpendModelKind, SpendErrors)> = Vec::new();
    let mut failures: Vec<(SpendModelKind, String)> = Vec::new();
    // The GLM on every move starts from its fit without the last period (fewer iterations).
    let mut glm_start: Option<Vec<f64>> = None;
    if comparable {
        for kind in SpendModelKind::ALL {
            match fit_candidate(kind, d, inputs.fit_moments, inputs.fit_sample, power, None, par) {
                Ok(m) => {
                    if kind == SpendModelKind::Tweedie {
                        glm_start =
                            Some(std::iter::once(m.intercept()).chain(m.coefficients().iter().copied()).collect());
                    }
                    scores.push((kind, score_on(&m, inputs.held_out_sample)))
                }
                Err(e) => failures.push((kind, e.to_string())),
            }
        }
    }
    let (chosen, reason) = match (inputs.choice.fixed(), choose(&scores)) {
        (Some(k), _) => (k, format!("{k}, as configured")),
        (None, Some(k)) => (
            k,
            format!(
                "{k}: the lowest held-out RMSE among the models whose total error is within {TOTAL_ERROR_TOLERANCE_PP} \
                 points of the best total error"
            ),
        ),
        (None, None) => (
            SpendModelKind::Ols,
            format!(
                "ols: no held-out comparison (it needs at least three periods and {MIN_HELD_OUT} moves into the last \
                 period and before it)"
            ),
        ),
    };
    let mut chosen_model = None;
    let mut candidates = Vec::new();
    for kind in SpendModelKind::ALL {
        let held_out = scores.iter().find(|(k, _)| *k == kind).map(|(_, e)| e.clone());
        match fit_candidate(kind, d, &all_moments, &all_sample, power, glm_start.as_deref(), par) {
            Ok(m) => {
                candidates.push(SpendCandidate {
                    model: kind,
                    held_out,
                    intercept: m.intercept(),
                    coefficients: m.coefficients().to_vec(),
                    standard_errors: m.standard_errors(),
                    smearing: m.smearing(),
                    observations: m.observations(),
                    failed: failures.iter().find(|(k, _)| *k == kind).map(|(_, e)| e.clone()),
                });
                if kind == chosen {
                    chosen_model = Some(m);
                }
            }
            Err(e) => {
                if kind == chosen {
                    return Err(e);
                }
                candidates.push(SpendCandidate {
                    model: kind,
                    held_out,
                    intercept: 0.0,
                    coefficients: Vec::new(),
                    standard_errors: Vec::new(),
                    smearing: 1.0,
                    observations: 0,
                    failed: Some(e.to_string()),
                });
            }
        }
    }
    let selection = SpendSelection {
        requested: inputs.choice,
        chosen,
        reason,
        held_out: comparable.then(|| HeldOut {
            fit_moves: inputs.fit_moments.n(),
            held_out_moves: inputs.held_out_moments.n(),
            scored: inputs.held_out_sample.len() as u64,
        }),
        candidates,
    };
    Ok((chosen_model.expect("the chosen model was fitted"), selection))
}

/// Solves A x = b for a symmetric positive (semi)definite A (n × n, row-major) by Cholesky,
/// adding a ridge of 1e-10 (relative to a unit diagonal) and growing it if a pivot fails.
fn solve_spd(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut ridge = 1e-10;
    loop {
        if let Some(l) = cholesky(a, n, ridge) {
            // Forward then back substitution.
            let mut y = vec![0.0; n];
            for i in 0..n {
                let s: f64 = (0..i).map(|k| l[i * n + k] * y[k]).sum();
                y[i] = (b[i] - s) / l[i * n + i];
            }
            let mut x = vec![0.0; n];
            for i in (0..n).rev() {
                let s: f64 = (i + 1..n).map(|k| l[k * n + i] * x[k]).sum();
                x[i] = (y[i] - s) / l[i * n + i];
            }
            return x;
        }
        ridge *= 100.0;
    }
}

fn cholesky(a: &[f64], n: usize, ridge: f64) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                let d = a[i * n + i] + ridge - s;
                if d <= 1e-12 {
                    return None;
                }
                l[i * n + i] = d.sqrt();
            } else {
                l[i * n + j] = (a[i * n + j] - s) / l[j * n + j];
            }
        }
    }
    Some(l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::shards::Serial;

    fn design() -> SpendDesign {
        SpendDesign { states: vec!["new".into(), "a".into()], attributes: vec![] }
    }

    #[test]
    fn least_squares_from_moments_recovers_an_exact_line() {
        // Regress on one free feature by abusing a 2-state design: y = 3 + 2·x1 exactly.
        let d = design();
        let mut m = SpendMoments::new(d.len());
        for i in 0..20 {
            let x = [f64::from(i % 2), f64::from(i), f64::from(i * i % 7), f64::from(i % 3), f64::from((i * 3) % 5)];
            m.add(&x, 3.0 + 2.0 * x[1] - x[2]);
        }
        let fit = SpendModel::fit(d, &m).unwrap();
        assert!((fit.intercept() - 3.0).abs() < 1e-6, "{fit:?}");
        assert!((fit.coefficients()[1] - 2.0).abs() < 1e-6);
        assert!((fit.coefficients()[2] + 1.0).abs() < 1e-6);
        assert!(fit.rmse() < 1e-6);
        assert!((fit.r_squared() - 1.0).abs() < 1e-9);
    }

    /// Simple regression by hand: SE(b) = σ̂ / √Σ(x − x̄)², SE(a) = σ̂ √(1/n + x̄²/Σ(x − x̄)²), with
    /// σ̂² = SSE / (n − 2); the prediction SE at x₀ is σ̂ √(1/n + (x₀ − x̄)²/Σ(x − x̄)²).
    #[test]
    fn standard_errors_match_the_simple_regression_formulas() {
        let d = design();
        let mut m = SpendMoments::new(d.len());
        let xs: Vec<f64> = (1..=12).map(f64::from).collect();
        let noise = [0.3, -0.2, 0.5, -0.4, 0.1, 0.0, -0.3, 0.2, 0.4, -0.5, 0.1, -0.2];
        for (x, e) in xs.iter().zip(noise) {
            m.add(&[0.0, *x, 0.0, 0.0, 0.0], 2.0 + 0.5 * x + e);
        }
        let fit = SpendModel::fit(d, &m).unwrap();
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let sxx: f64 = xs.iter().map(|x| (x - mean).powi(2)).sum();
        let sse: f64 = xs
            .iter()
            .zip(noise)
            .map(|(x, e)| {
                let y = 2.0 + 0.5 * x + e;
                (y - fit.intercept() - fit.coefficients()[1] * x).powi(2)
            })
            .sum();
        let sigma = (sse / (n - 2.0)).sqrt();
        let se = fit.standard_errors();
        assert!((se[2] - sigma / sxx.sqrt()).abs() < 1e-9, "{se:?}");
        assert!((se[0] - sigma * (1.0 / n + mean * mean / sxx).sqrt()).abs() < 1e-9);
        assert_eq!(se[1], 0.0, "a dropped feature has no variance");
        let want = sigma * (1.0 / n + (4.0 - mean).powi(2) / sxx).sqrt();
        assert!((fit.prediction_se(&[0.0, 4.0, 0.0, 0.0, 0.0]) - want).abs() < 1e-9);
    }

    #[test]
    fn a_feature_never_nonzero_is_dropped_not_fatal() {
        let d = design();
        let mut m = SpendMoments::new(d.len());
        for i in 0..10 {
            let x = [0.0, f64::from(i), 1.0 + f64::from(i % 4), 2.0, f64::from(i % 3)];
            m.add(&x, f64::from(i));
        }
        let fit = SpendModel::fit(d, &m).unwrap();
        assert_eq!(fit.dropped(), ["state=a"]);
        assert_eq!(fit.coefficients()[0], 0.0);
    }

    #[test]
    fn ols_from_moments_matches_linfa_linear_on_noisy_data() {
        use linfa::prelude::*;
        use linfa_linear::LinearRegression;
        use ndarray::{Array1, Array2};
        let d = design();
        let k = d.len();
        let mut m = SpendMoments::new(k);
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        let mut s = 12345u64;
        let mut next = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        for _ in 0..500 {
            let x: Vec<f64> =
                (0..k).map(|j| if j == 0 { (next() < 0.3) as u8 as f64 } else { 10.0 * next() }).collect();
            let y = 5.0 + x.iter().enumerate().map(|(j, v)| (j as f64 - 1.5) * v).sum::<f64>() + next() - 0.5;
            m.add(&x, y);
            xs.extend_from_slice(&x);
            ys.push(y);
        }
        let fit = SpendModel::fit(d, &m).unwrap();
        let ds = Dataset::new(Array2::from_shape_vec((500, k), xs).unwrap(), Array1::from(ys));
        let lin = LinearRegression::new().fit(&ds).unwrap();
        assert!((fit.intercept() - lin.intercept()).abs() < 1e-8);
        for (a, b) in fit.coefficients().iter().zip(lin.params()) {
            assert!((a - b).abs() < 1e-8, "{a} vs {b}");
        }
    }
    /// A small deterministic generator: uniforms, normals (Box–Muller), exponentials.
    struct Rng(u64);

    impl Rng {
        fn uniform(&mut self) -> f64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }
        fn normal(&mut self) -> f64 {
            let (u, v) = (self.uniform(), self.uniform());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        }
        fn exponential(&mut self) -> f64 {
            -self.uniform().ln()
        }
    }

    /// Features of the two-state test design with one free feature in the `ln_recency_days`
    /// slot.
    fn row(state: usize, x: f64) -> [f64; 5] {
        [state as f64, x, 0.0, 0.0, 0.0]
    }

    fn sample_of(rows: &[([f64; 5], f64)]) -> SpendSample {
        let d = design();
        let mut s = SpendSample::new(&d);
        for (x, y) in rows {
            s.push(x[0] as usize, x, *y);
        }
        s
    }

    fn log_moments_of(rows: &[([f64; 5], f64)]) -> SpendMoments {
        let mut m = SpendMoments::new(design().len());
        for (x, y) in rows {
            m.add(x, log_target(*y));
        }
        m
    }

    /// Two states, no other feature: the log fit is the mean of ln(1 + y) per state. `new`:
    /// ln(1 + y) = 1 and 3 → fitted 2, residuals −1 and +1; `a`: 2 and 2 → residuals 0, 0.
    /// Duan: s = (e⁻¹ + e + 1 + 1) / 4, and E[spend | new] = s·e² − 1.
    #[test]
    fn smearing_by_hand_on_four_customer_periods() {
        let e = std::f64::consts::E;
        let rows = [
            (row(0, 0.0), e.powi(1) - 1.0),
            (row(0, 0.0), e.powi(3) - 1.0),
            (row(1, 0.0), e.powi(2) - 1.0),
            (row(1, 0.0), e.powi(2) - 1.0),
        ];
        let fit = SpendModel::fit_log(design(), &log_moments_of(&rows), &sample_of(&rows)).unwrap();
        assert_eq!(fit.kind(), SpendModelKind::LogOls);
        assert!((fit.intercept() - 2.0).abs() < 1e-9 && fit.coefficients()[0].abs() < 1e-9, "{fit:?}");
        let s = (1.0 / e + e + 2.0) / 4.0;
        assert!((fit.smearing() - s).abs() < 1e-9, "{} vs {s}", fit.smearing());
        let want = s * e * e - 1.0;
        assert!((fit.predict(&row(0, 0.0)) - want).abs() < 1e-8, "{} vs {want}", fit.predict(&row(0, 0.0)));
        // A return-only period counts as no spend: ln(1 + max(−5, 0)) = 0.
        assert_eq!(log_target(-5.0), 0.0);
        // Delta method: se = s·e^η·√(x̃'Σx̃); Σ on the log scale is σ̂²(X'X)⁻¹ with
        // σ̂² = SSE/(n − 2) = 2/2 = 1 and (X'X)⁻¹ for the intercept = 1/2 (two `new` rows).
        let want = s * e * e * 0.5f64.sqrt();
        assert!((fit.prediction_se(&row(0, 0.0)) - want).abs() < 1e-8, "{} vs {want}", fit.prediction_se(&row(0, 0.0)));
    }

    /// An intercept-only Tweedie fit is the log of the mean, and its standard error is the delta
    /// method's sd/(√n·ȳ) (φ̂ (X'WX)⁻¹ with W = ȳ^(2−p) and φ̂ = Σ(y − ȳ)²/ȳ^p/(n − 1)); the
    /// prediction's standard error is the mean's, sd/√n. With a second group, the coefficient is
    /// the log ratio of the group means and Var = φ̂ (1/(n₁μ₁^(2−p)) + 1/(n₀μ₀^(2−p))), φ̂ pooled.
    #[test]
    fn tweedie_standard_errors_match_the_formulas_by_hand() {
        let ys = [0.0, 3.0, 10.0, 0.0, 7.0, 2.0];
        let rows: Vec<_> = ys.iter().map(|&y| (row(0, 0.0), y)).collect();
        let p = 1.5;
        let fit = SpendModel::fit_tweedie(design(), &sample_of(&rows), p, None, &Serial).unwrap();
        let n = ys.len() as f64;
        let mean = ys.iter().sum::<f64>() / n;
        let sd = (ys.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        assert!((fit.intercept() - mean.ln()).abs() < 1e-9, "{fit:?}");
        assert!((fit.standard_errors()[0] - sd / (n.sqrt() * mean)).abs() < 1e-9);
        assert!((fit.prediction_se(&row(0, 0.0)) - sd / n.sqrt()).abs() < 1e-9);
        assert!(fit.glm().unwrap().converged);

        let (g0, g1) = ([1.0, 4.0, 0.0, 3.0], [20.0, 0.0, 12.0, 16.0, 2.0]);
        let rows: Vec<_> = g0.iter().map(|&y| (row(0, 0.0), y)).chain(g1.iter().map(|&y| (row(1, 0.0), y))).collect();
        let fit = SpendModel::fit_tweedie(design(), &sample_of(&rows), p, None, &Serial).unwrap();
        let m0 = g0.iter().sum::<f64>() / 4.0;
        let m1 = g1.iter().sum::<f64>() / 5.0;
        assert!((fit.coefficients()[0] - (m1 / m0).ln()).abs() < 1e-8, "{fit:?}");
        let chi2: f64 = g0.iter().map(|y| (y - m0).powi(2) / m0.powf(p)).sum::<f64>()
            + g1.iter().map(|y| (y - m1).powi(2) / m1.powf(p)).sum::<f64>();
        let phi = chi2 / (9.0 - 2.0);
        let var = phi * (1.0 / (5.0 * m1.powf(2.0 - p)) + 1.0 / (4.0 * m0.powf(2.0 - p)));
        assert!((fit.standard_errors()[1] - var.sqrt()).abs() < 1e-8);
    }

    /// The deviance is minimal at the estimate: a finite-difference gradient of the total
    /// deviance vanishes there, and its Hessian is positive.
    #[test]
    fn tweedie_deviance_is_stationary_at_the_estimate() {
        let mut rng = Rng(7);
        let rows: Vec<_> = (0..400)
            .map(|i| {
                let x = 2.0 * rng.uniform();
                let mu = (0.5 + 0.8 * x).exp();
                let y =
                    if rng.uniform() < 0.3 { 0.0 } else { mu / 0.7 * 0.5 * (rng.exponential() + rng.exponential()) };
                (row(i % 2, x), y)
            })
            .collect();
        let sample = sample_of(&rows);
        let fit = SpendModel::fit_tweedie(design(), &sample, 1.5, None, &Serial).unwrap();
        let beta: Vec<f64> = std::iter::once(fit.intercept()).chain(fit.coefficients().iter().copied()).collect();
        let deviance = |b: &[f64]| irls_pass(&sample, 5, b, 1.5, &Serial).deviance;
        let h = 1e-4;
        for j in [0, 1, 2] {
            let (mut up, mut down) = (beta.clone(), beta.clone());
            up[j] += h;
            down[j] -= h;
            let (d_up, d_0, d_down) = (deviance(&up), deviance(&beta), deviance(&down));
            let gradient = (d_up - d_down) / (2.0 * h);
            let curvature = (d_up - 2.0 * d_0 + d_down) / (h * h);
            assert!(gradient.abs() < 1e-4 * curvature, "j {j}: gradient {gradient}, curvature {curvature}");
            assert!(curvature > 0.0);
        }
    }

    /// Spend drawn from a known log-linear model (30% zeros, gamma-distributed otherwise, mean
    /// exp(1 + 0.5·x − 0.7·[state a])): the GLM recovers the coefficients.
    #[test]
    fn a_tweedie_glm_recovers_a_known_log_linear_model() {
        let mut rng = Rng(11);
        let rows: Vec<_> = (0..20_000)
            .map(|i| {
                let state = usize::from(i % 3 == 0);
                let x = 3.0 * rng.uniform();
                let mu = (1.0 + 0.5 * x - 0.7 * state as f64).exp();
                let y =
                    if rng.uniform() < 0.3 { 0.0 } else { mu / 0.7 * 0.5 * (rng.exponential() + rng.exponential()) };
                (row(state, x), y)
            })
            .collect();
        let fit = SpendModel::fit_tweedie(design(), &sample_of(&rows), 1.5, None, &Serial).unwrap();
        let se = fit.standard_errors();
        for (got, want, se) in
            [(fit.intercept(), 1.0, se[0]), (fit.coefficients()[1], 0.5, se[2]), (fit.coefficients()[0], -0.7, se[1])]
        {
            assert!((got - want).abs() < 0.05, "{got} vs {want}");
            assert!((got - want).abs() < 4.0 * se, "{got} vs {want}: more than 4 standard errors ({se})");
        }
        assert!(fit.glm().unwrap().converged);
        assert_eq!(fit.dropped(), ["ln_frequency", "ln_monetary", "tenure_periods"]);
    }

    /// Moves split into fit (target period < last) and held out, as training does.
    fn selection(rows: &[([f64; 5], f64, bool)], choice: SpendChoice) -> (SpendModel, SpendSelection) {
        let d = design();
        let mut fit = SpendMoments::with_targets(d.len(), 2);
        let mut held = SpendMoments::with_targets(d.len(), 2);
        let (mut fs, mut ls) = (SpendSample::new(&d), SpendSample::new(&d));
        for (x, y, last) in rows {
            if *last { &mut held } else { &mut fit }.add_targets(x, &[*y, log_target(*y)]);
            if *last { &mut ls } else { &mut fs }.push(x[0] as usize, x, *y);
        }
        select(
            &SelectionInputs {
                design: &d,
                fit_moments: &fit,
                held_out_moments: &held,
                fit_sample: &fs,
                last_sample: &ls,
                held_out_sample: &ls,
                choice,
                tweedie_power: 1.5,
            },
            &Serial,
        )
        .unwrap()
    }

    fn generated(n: usize, seed: u64, spend: impl Fn(&mut Rng, usize, f64) -> f64) -> Vec<([f64; 5], f64, bool)> {
        let mut rng = Rng(seed);
        (0..n)
            .map(|i| {
                let state = usize::from(rng.uniform() < 0.4);
                let x = 3.0 * rng.uniform();
                (row(state, x), spend(&mut rng, state, x), i % 5 == 0)
            })
            .collect()
    }

    #[test]
    fn selection_picks_the_model_that_generated_the_data() {
        // Additive normal noise around a line, returns included: least squares.
        let linear = generated(5_000, 3, |r, s, x| 20.0 + 15.0 * x + 10.0 * s as f64 + 12.0 * r.normal());
        let (_, sel) = selection(&linear, SpendChoice::Auto);
        assert_eq!(sel.chosen, SpendModelKind::Ols, "{sel:#?}");
        // Multiplicative lognormal spend, never zero: a log model, not least squares.
        let lognormal = generated(5_000, 5, |r, s, x| (1.0 + 1.2 * x - 0.5 * s as f64 + 0.6 * r.normal()).exp());
        let (model, sel) = selection(&lognormal, SpendChoice::Auto);
        assert_ne!(sel.chosen, SpendModelKind::Ols, "{sel:#?}");
        assert_eq!(model.kind(), sel.chosen);
        let rmse =
            |k: SpendModelKind| sel.candidates.iter().find(|c| c.model == k).unwrap().held_out.clone().unwrap().rmse;
        assert!(rmse(SpendModelKind::LogOls) < 0.97 * rmse(SpendModelKind::Ols), "{sel:#?}");
        // Half the periods without spend, gamma spend otherwise: smearing a log fit over the zeros
        // overshoots the total, the GLM does not.
        let zeros = generated(5_000, 9, |r, s, x| {
            if r.uniform() < 0.5 {
                0.0
            } else {
                (1.0 + 1.2 * x - 0.5 * s as f64).exp() * 0.5 * (r.exponential() + r.exponential())
            }
        });
        let (_, sel) = selection(&zeros, SpendChoice::Auto);
        assert_eq!(sel.chosen, SpendModelKind::Tweedie, "{sel:#?}");
        assert!(sel.held_out.as_ref().is_some_and(|h| h.held_out_moves == 1_000 && h.fit_moves == 4_000));
        // A configured model is kept, with every candidate still scored.
        let (model, sel) = selection(&zeros, SpendChoice::LogOls);
        assert_eq!((model.kind(), sel.chosen), (SpendModelKind::LogOls, SpendModelKind::LogOls));
        assert!(sel.candidates.iter().all(|c| c.held_out.is_some() && c.standard_errors.len() == 6));
    }

    #[test]
    fn the_rule_trades_rmse_against_total_error() {
        let e = |rmse: f64, total: f64| SpendErrors {
            mae: 0.0,
            rmse,
            spearman: 0.0,
            predicted_total: 0.0,
            actual_total: 0.0,
            total_error_pct: total,
            top20_capture: 0.0,
        };
        use SpendModelKind::*;
        // Lowest RMSE wins when its total is within 5 points of the best total …
        assert_eq!(choose(&[(Ols, e(10.0, -4.0)), (LogOls, e(11.0, 0.5)), (Tweedie, e(12.0, 1.0))]), Some(Ols));
        // … and not when it is further off.
        assert_eq!(choose(&[(Ols, e(10.0, -6.0)), (LogOls, e(11.0, 0.5)), (Tweedie, e(10.5, 1.0))]), Some(Tweedie));
        // Ties go to the simpler model; no scores, no choice.
        assert_eq!(choose(&[(Tweedie, e(10.0, 0.0)), (LogOls, e(10.0, 0.0))]), Some(LogOls));
        assert_eq!(choose(&[]), None);
    }

    #[test]
    fn without_enough_periods_for_a_comparison_auto_is_ols() {
        let rows: Vec<_> =
            generated(100, 1, |r, _, x| 5.0 + x + r.normal()).into_iter().map(|(x, y, _)| (x, y, true)).collect();
        let (model, sel) = selection(&rows, SpendChoice::Auto);
        assert_eq!(model.kind(), SpendModelKind::Ols);
        assert!(sel.held_out.is_none() && sel.reason.contains("no held-out comparison"), "{sel:?}");
    }

    #[test]
    fn a_model_saved_before_the_choice_loads_as_ols() {
        let d = design();
        let mut m = SpendMoments::new(d.len());
        for i in 0..10 {
            m.add(&row(i % 2, f64::from(i as u32)), f64::from(i as u32));
        }
        let fit = SpendModel::fit(d, &m).unwrap();
        let mut json = serde_json::to_value(&fit).unwrap();
        let obj = json.as_object_mut().unwrap();
        obj.remove("kind");
        obj.remove("smearing");
        let old: SpendModel = serde_json::from_value(json).unwrap();
        assert_eq!(old, fit);
        assert_eq!((old.kind(), old.smearing()), (SpendModelKind::Ols, 1.0));
    }
}
