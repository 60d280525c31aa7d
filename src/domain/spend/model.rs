//! A fitted spend regression: least squares (`ols`, `log_ols`) and its predictions.

use super::design::log_target;
use super::moments::Normal;
use super::{SpendDesign, SpendMoments, SpendSample};
use serde::{Deserialize, Serialize};

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
    /// Every candidate, simplest first (the order that breaks ties in [`super::select()`]).
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

pub(super) fn one() -> f64 {
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
    pub(super) kind: SpendModelKind,
    pub(super) design: SpendDesign,
    pub(super) feature_names: Vec<String>,
    /// On the model's link scale: spend (`ols`), ln(1 + spend) (`log_ols`), ln E[spend]
    /// (`tweedie`).
    pub(super) intercept: f64,
    pub(super) coefficients: Vec<f64>,
    /// Features that were constant zero in training (their coefficient is fixed at 0).
    pub(super) dropped: Vec<String>,
    /// Customer-periods the coefficients were fitted on (for `tweedie`, the sample).
    pub(super) observations: u64,
    /// Mean next-period spend over those customer-periods.
    pub(super) mean_target: f64,
    /// 1 − SSE/SST and √(SSE/n) of the predicted spend, in spend units (`ols`: on every
    /// customer-period; the others: on the sample).
    pub(super) r_squared: f64,
    pub(super) rmse: f64,
    /// Sampling covariance of (intercept, coefficients…) on the link scale, row-major
    /// (p + 1)²; zero rows and columns for dropped features. `ols` and `log_ols`: σ̂² (X'X)⁻¹
    /// with σ̂² = SSE / (n − p); `tweedie`: φ̂ (X'WX)⁻¹ at the estimate. Empty in artifacts
    /// written before kam stored it (then spend intervals are points).
    #[serde(default)]
    pub(super) covariance: Vec<f64>,
    /// Duan's smearing factor, mean exp(residual) of the log fit (`log_ols`); 1 otherwise.
    #[serde(default = "one")]
    pub(super) smearing: f64,
    /// The GLM's family and how its fit ended (`tweedie`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) glm: Option<GlmFit>,
}

/// Largest |linear predictor| a log-link model exponentiates (e^50 ≈ 5·10²¹).
pub(super) const ETA_LIMIT: f64 = 50.0;

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
    /// Sets mean target, R² and RMSE from the predictions on `sample`, in spend units.
    pub(super) fn measure_on(&mut self, sample: &SpendSample) {
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
