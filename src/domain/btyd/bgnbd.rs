//! The BG/NBD model (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while
//! alive a customer buys as a Poisson process with rate λ ~ Gamma(r, α); after every purchase it
//! drops out with probability p ~ Beta(a, b). Fitted by maximum likelihood on grouped
//! (x, t_x, T) summaries; the likelihood is computed in logs (log-sum-exp of its two terms).

use super::{BtydError, Summary, fit_positive, group};
use statrs::function::beta::ln_beta;
use statrs::function::gamma::ln_gamma;

/// BG/NBD parameters: purchase rates Gamma(r, α), dropout probabilities Beta(a, b).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BgNbdParams {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// A fitted BG/NBD model.
#[derive(Clone, Debug, PartialEq)]
pub struct BgNbd {
    params: BgNbdParams,
    /// Standard errors of (r, α, a, b), from the observed information; `None` where the
    /// numerical Hessian is not positive definite.
    standard_errors: [Option<f64>; 4],
    log_likelihood: f64,
    customers: f64,
}

/// The log-likelihood of one summary under `p` (Fader, Hardie & Lee 2005, eq. 6).
pub fn log_likelihood_of(p: &BgNbdParams, s: &Summary) -> f64 {
    let BgNbdParams { r, alpha, a, b } = *p;
    let x = s.x;
    let common = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
    let ln_beta_ab = ln_beta(a, b);
    let alive = ln_beta(a, b + x) - ln_beta_ab - (r + x) * (alpha + s.t).ln();
    if x == 0.0 {
        return common + alive;
    }
    let dropped = ln_beta(a + 1.0, b + x - 1.0) - ln_beta_ab - (r + x) * (alpha + s.t_x).ln();
    let m = alive.max(dropped);
    common + m + ((alive - m).exp() + (dropped - m).exp()).ln()
}

/// The log-likelihood of grouped summaries.
pub fn log_likelihood(p: &BgNbdParams, grouped: &[Summary]) -> f64 {
    grouped.iter().map(|s| s.weight * log_likelihood_of(p, s)).sum()
}

impl BgNbd {
    /// Maximum likelihood on `summaries` (grouped first).
    pub fn fit(summaries: &[Summary]) -> Result<Self, BtydError> {
        let grouped = group(summaries)?;
        let params = |v: &[f64]| BgNbdParams { r: v[0], alpha: v[1], a: v[2], b: v[3] };
        let (p, standard_errors, log_likelihood) = fit_positive::<4>(|v| self::log_likelihood(&params(v), &grouped))?;
        Ok(Self {
            params: params(&p),
            standard_errors,
            log_likelihood,
            customers: grouped.iter().map(|s| s.weight).sum(),
        })
    }

    pub fn params(&self) -> BgNbdParams {
        self.params
    }

    pub fn standard_errors(&self) -> [Option<f64>; 4] {
        self.standard_errors
    }

    pub fn log_likelihood(&self) -> f64 {
        self.log_likelihood
    }

    /// Customers fitted on (the sum of the weights).
    pub fn customers(&self) -> f64 {
        self.customers
    }

    /// P(alive at T | x, t_x, T) = 1 / (1 + δ_{x>0} · a/(b + x − 1) · ((α + T)/(α + t_x))^(r + x)).
    pub fn p_alive(&self, s: &Summary) -> f64 {
        if s.x == 0.0 {
            return 1.0;
        }
        let BgNbdParams { r, alpha, a, b } = self.params;
        let odds = (a / (b + s.x - 1.0)).ln() + (r + s.x) * ((alpha + s.t) / (alpha + s.t_x)).ln();
        1.0 / (1.0 + odds.exp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(x: f64, t_x: f64, t: f64) -> Summary {
        Summary { x, t_x, t, weight: 1.0 }
    }

    #[test]
    fn the_likelihood_of_one_customer_by_hand() {
        // r = α = a = b = 1, x = 1, t_x = 1, T = 2:
        // Γ(2)/Γ(1)·1 · [B(1, 2)/B(1, 1) · 3⁻² + B(2, 1)/B(1, 1) · 2⁻²] = 1/18 + 1/8 = 13/72.
        let p = BgNbdParams { r: 1.0, alpha: 1.0, a: 1.0, b: 1.0 };
        let ll = log_likelihood_of(&p, &one(1.0, 1.0, 2.0));
        assert!((ll - (13.0f64 / 72.0).ln()).abs() < 1e-12, "{ll}");
        // No repeat: Γ(1)/Γ(1) · B(1, 1)/B(1, 1) · (1 + 2)⁻¹ = 1/3.
        assert!((log_likelihood_of(&p, &one(0.0, 0.0, 2.0)) - (1.0f64 / 3.0).ln()).abs() < 1e-12);
    }

    #[test]
    fn p_alive_by_hand_and_for_customers_without_repeats() {
        let m = BgNbd {
            params: BgNbdParams { r: 1.0, alpha: 1.0, a: 1.0, b: 1.0 },
            standard_errors: [None; 4],
            log_likelihood: 0.0,
            customers: 1.0,
        };
        // 1 / (1 + 1/1 · (3/2)²) = 4/13.
        assert!((m.p_alive(&one(1.0, 1.0, 2.0)) - 4.0 / 13.0).abs() < 1e-12);
        assert_eq!(m.p_alive(&one(0.0, 0.0, 2.0)), 1.0);
    }

    #[test]
    fn grouping_adds_the_weights_of_identical_summaries_and_refuses_impossible_ones() {
        let g = group(&[one(1.0, 1.0, 2.0), one(0.0, 0.0, 2.0), one(1.0, 1.0, 2.0)]).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[1].weight, 2.0);
        assert!(matches!(group(&[one(1.0, 3.0, 2.0)]), Err(BtydError::BadSummary { index: 0, .. })));
        assert!(matches!(group(&[one(2.0, 0.0, 2.0)]), Err(BtydError::BadSummary { .. })));
        assert_eq!(group(&[]), Err(BtydError::Empty));
    }
}
