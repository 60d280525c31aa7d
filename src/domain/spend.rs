//! Spend regression: next-period spend from the customer's current state, log RFM features,
//! tenure and numeric attributes, by ordinary least squares.
//!
//! Fitting uses only sufficient statistics (X'X, X'y, y'y), which add across shards, so the
//! regression runs on every customer-period without holding the design matrix in memory (a
//! million customers over a dozen periods would need ~1 GB for it). The coefficients live in
//! kam's own type so a saved model is rebuilt from its numbers alone.

use super::panel::PanelRow;
use serde::{Deserialize, Serialize};

/// Names of the RFM features, in design order after the state indicators.
pub const RFM_FEATURES: [&str; 4] = ["ln_recency_days", "ln_frequency", "ln_monetary", "tenure_periods"];

/// Sign-preserving ln(1 + |x|), so returns (negative spend) stay on the scale.
pub fn signed_ln1p(x: f64) -> f64 {
    x.signum() * x.abs().ln_1p()
}

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
        out[k] = f64::from(row.recency_days).ln_1p();
        out[k + 1] = f64::from(row.frequency).ln_1p();
        out[k + 2] = signed_ln1p(row.monetary);
        out[k + 3] = f64::from(row.tenure);
        out[k + 4..].copy_from_slice(attributes);
    }
}

/// Sufficient statistics of a least-squares fit with intercept. Mergeable.
#[derive(Clone, Debug, PartialEq)]
pub struct SpendMoments {
    p: usize,
    xtx: Vec<f64>,
    xty: Vec<f64>,
    yty: f64,
    n: u64,
    /// Scratch: the non-zero features of the observation being added.
    nz: Vec<(usize, f64)>,
}

impl SpendMoments {
    /// Empty moments for `features` features (plus intercept).
    pub fn new(features: usize) -> Self {
        let p = features + 1;
        Self { p, xtx: vec![0.0; p * p], xty: vec![0.0; p], yty: 0.0, n: 0, nz: Vec::with_capacity(p) }
    }

    /// Adds one observation (upper triangle only; mirrored on fit). The state indicators are
    /// one-hot, so only the few non-zero features are visited.
    #[inline]
    pub fn add(&mut self, x: &[f64], y: f64) {
        let p = self.p;
        debug_assert_eq!(x.len() + 1, p);
        let mut nz = std::mem::take(&mut self.nz);
        nz.clear();
        nz.push((0, 1.0));
        nz.extend(x.iter().enumerate().filter(|(_, v)| **v != 0.0).map(|(i, v)| (i + 1, *v)));
        for (k, &(i, a)) in nz.iter().enumerate() {
            let row = &mut self.xtx[i * p..(i + 1) * p];
            for &(j, b) in &nz[k..] {
                row[j] += a * b;
            }
            self.xty[i] += a * y;
        }
        self.nz = nz;
        self.yty += y * y;
        self.n += 1;
    }

    pub fn merge(&mut self, other: &SpendMoments) {
        assert_eq!(self.p, other.p);
        self.xtx.iter_mut().zip(&other.xtx).for_each(|(a, b)| *a += b);
        self.xty.iter_mut().zip(&other.xty).for_each(|(a, b)| *a += b);
        self.yty += other.yty;
        self.n += other.n;
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
}

/// A fitted spend regression.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpendModel {
    design: SpendDesign,
    feature_names: Vec<String>,
    intercept: f64,
    coefficients: Vec<f64>,
    /// Features that were constant zero in training (their coefficient is fixed at 0).
    dropped: Vec<String>,
    /// Customer-periods with an observed next period.
    observations: u64,
    mean_target: f64,
    r_squared: f64,
    rmse: f64,
    /// Sampling covariance of (intercept, coefficients…): σ̂² (X'X)⁻¹ with σ̂² = SSE / (n − p),
    /// row-major (p + 1)²; zero rows and columns for dropped features. Empty in artifacts written
    /// before kam stored it (then spend intervals are points).
    #[serde(default)]
    covariance: Vec<f64>,
}

impl SpendModel {
    /// Least squares from moments: scales columns to unit diagonal, then solves the normal
    /// equations by Cholesky (with a tiny ridge for numerical safety, grown until the system is
    /// positive definite, so collinear or too few observations still give the minimum-norm-like
    /// ridge solution; [`Self::observations`] tells how much data stood behind it).
    pub fn fit(design: SpendDesign, m: &SpendMoments) -> Result<Self, SpendError> {
        let p = m.p;
        if m.n == 0 {
            return Err(SpendError::NoObservations);
        }
        let names = design.feature_names();
        let mut full = vec![0.0; p * p];
        for i in 0..p {
            for j in i..p {
                full[i * p + j] = m.xtx[i * p + j];
                full[j * p + i] = m.xtx[i * p + j];
            }
        }
        let keep: Vec<usize> = (0..p).filter(|&i| full[i * p + i] > 0.0).collect();
        let dropped = (1..p).filter(|i| !keep.contains(i)).map(|i| names[i - 1].clone()).collect();
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
        // SSE = y'y − 2β'X'y + β'X'Xβ.
        let mut bxtxb = 0.0;
        for i in 0..p {
            for j in 0..p {
                bxtxb += beta[i] * full[i * p + j] * beta[j];
            }
        }
        let bxty: f64 = beta.iter().zip(&m.xty).map(|(b, v)| b * v).sum();
        let sse = (m.yty - 2.0 * bxty + bxtxb).max(0.0);
        let n = m.n as f64;
        let mean = m.xty[0] / n;
        let sst = (m.yty - n * mean * mean).max(0.0);
        // Covariance: σ̂² (X'X)⁻¹, from the scaled system's inverse.
        let sigma2 = sse / (n - q as f64).max(1.0);
        let mut covariance = vec![0.0; p * p];
        let mut unit = vec![0.0; q];
        for (c, &j) in keep.iter().enumerate() {
            unit.fill(0.0);
            unit[c] = 1.0;
            let column = solve_spd(&a, &unit, q);
            for (r, &i) in keep.iter().enumerate() {
                covariance[i * p + j] = sigma2 * column[r] / (scale[r] * scale[c]);
            }
        }
        Ok(Self {
            design,
            feature_names: names,
            intercept: beta[0],
            coefficients: beta[1..].to_vec(),
            dropped,
            observations: m.n,
            mean_target: mean,
            r_squared: if sst > 0.0 { 1.0 - sse / sst } else { 0.0 },
            rmse: (sse / n).sqrt(),
            covariance,
        })
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

    /// Predicted next-period spend for features laid out by [`SpendDesign::features`].
    pub fn predict(&self, features: &[f64]) -> f64 {
        self.intercept + self.coefficients.iter().zip(features).map(|(b, x)| b * x).sum::<f64>()
    }

    /// Standard errors of (intercept, coefficients…), from [`Self::covariance`]'s diagonal.
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

    /// Standard error of the predicted mean spend x'β̂ at `features`: √(x̃' Σ x̃) with x̃ = (1, x),
    /// visiting only the non-zero features (the state indicators are one-hot). 0 for artifacts
    /// without a covariance.
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
        v.max(0.0).sqrt()
    }
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
}
