//! The Gamma–Gamma model of spend per purchase (Fader, Hardie & Lee 2005, "RFM and CLV"; Colombo &
//! Jiang 1999): a customer's purchases are Gamma(p, ν) with ν ~ Gamma(q, γ) across customers, so
//! its mean spend over x purchases, m_x, is shrunk toward the population mean by how many purchases
//! back it. Fitted by maximum likelihood on the customers with at least one (repeat) purchase.

use super::{BtydError, fit_positive};
use statrs::function::gamma::ln_gamma;

/// One customer's (or, weighted, several identical customers') spend summary: `x` purchases with
/// mean spend `mean`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpendSummary {
    pub x: f64,
    pub mean: f64,
    pub weight: f64,
}

/// Gamma–Gamma parameters p, q, γ (called v in the papers).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GammaGammaParams {
    pub p: f64,
    pub q: f64,
    pub v: f64,
}

/// A fitted Gamma–Gamma model.
#[derive(Clone, Debug, PartialEq)]
pub struct GammaGamma {
    params: GammaGammaParams,
    standard_errors: [Option<f64>; 3],
    log_likelihood: f64,
}

/// The log density of one customer's mean spend:
/// ln Γ(px + q) − ln Γ(px) − ln Γ(q) + q ln γ + (px − 1) ln m_x + px ln x − (px + q) ln(γ + x m_x).
pub fn log_likelihood_of(g: &GammaGammaParams, s: &SpendSummary) -> f64 {
    let GammaGammaParams { p, q, v } = *g;
    let px = p * s.x;
    ln_gamma(px + q) - ln_gamma(px) - ln_gamma(q) + q * v.ln() + (px - 1.0) * s.mean.ln() + px * s.x.ln()
        - (px + q) * (v + s.x * s.mean).ln()
}

fn log_likelihood(g: &GammaGammaParams, data: &[SpendSummary]) -> f64 {
    data.iter().map(|s| s.weight * log_likelihood_of(g, s)).sum()
}

impl GammaGamma {
    /// Maximum likelihood on the customers with `x ≥ 1` and a positive mean (others are left
    /// out: the model is of spend per purchase).
    pub fn fit(summaries: &[SpendSummary]) -> Result<Self, BtydError> {
        let data: Vec<SpendSummary> =
            summaries.iter().copied().filter(|s| s.x >= 1.0 && s.mean > 0.0 && s.mean.is_finite()).collect();
        if data.is_empty() {
            return Err(BtydError::Empty);
        }
        let params = |v: &[f64]| GammaGammaParams { p: v[0], q: v[1], v: v[2] };
        let (g, standard_errors, log_likelihood) = fit_positive::<3>(|v| self::log_likelihood(&params(v), &data))?;
        Ok(Self { params: params(&g), standard_errors, log_likelihood })
    }

    pub fn params(&self) -> GammaGammaParams {
        self.params
    }

    pub fn standard_errors(&self) -> [Option<f64>; 3] {
        self.standard_errors
    }

    pub fn log_likelihood(&self) -> f64 {
        self.log_likelihood
    }

    /// A model with these parameters, as fitted elsewhere (no standard errors).
    pub fn with_params(params: GammaGammaParams) -> Self {
        Self { params, standard_errors: [None; 3], log_likelihood: f64::NAN }
    }

    /// Expected spend per purchase of a customer with `x` purchases of mean `mean`:
    /// p(γ + x m_x) / (px + q − 1), a weighted mean of the population mean pγ/(q − 1) and m_x.
    /// For a customer without purchases, the population mean (∞ when q ≤ 1).
    pub fn expected_spend(&self, x: f64, mean: f64) -> f64 {
        let GammaGammaParams { p, q, v } = self.params;
        if x <= 0.0 {
            return if q > 1.0 { p * v / (q - 1.0) } else { f64::INFINITY };
        }
        p * (v + x * mean) / (p * x + q - 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_density_of_one_mean_by_hand() {
        // p = q = γ = 1, x = 1, m = 1: Γ(2)/(Γ(1)Γ(1)) · 1 · 1⁰ · 1¹ / (1 + 1)² = 1/4.
        let g = GammaGammaParams { p: 1.0, q: 1.0, v: 1.0 };
        let s = SpendSummary { x: 1.0, mean: 1.0, weight: 1.0 };
        assert!((log_likelihood_of(&g, &s) - 0.25f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn expected_spend_shrinks_the_own_mean_toward_the_population_mean() {
        let m = GammaGamma {
            params: GammaGammaParams { p: 6.0, q: 4.0, v: 15.0 },
            standard_errors: [None; 3],
            log_likelihood: 0.0,
        };
        let population = 6.0 * 15.0 / 3.0;
        assert_eq!(m.expected_spend(0.0, 0.0), population);
        // One purchase of 100: 6·(15 + 100)/(6 + 3) = 76.67, between 30 and 100.
        assert!((m.expected_spend(1.0, 100.0) - 6.0 * 115.0 / 9.0).abs() < 1e-12);
        // Many purchases: close to the own mean.
        assert!((m.expected_spend(1000.0, 100.0) - 100.0).abs() < 1.0);
    }
}
