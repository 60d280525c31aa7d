//! The Pareto/NBD model (Schmittlein, Morrison & Colombo 1987): while alive a customer buys as a
//! Poisson process with rate λ ~ Gamma(r, α); its lifetime is exponential with rate μ ~ Gamma(s, β).
//! The likelihood (Fader & Hardie 2005, "A note on deriving the Pareto/NBD model") needs the Gauss
//! hypergeometric function ₂F₁(a, b; a + 1; z), 0 ≤ z < 1; everything is computed in logs, so large
//! x does not overflow (the published implementations did).

use super::{BtydError, Summary, fit_positive, group};
use statrs::function::gamma::ln_gamma;

/// Pareto/NBD parameters: purchase rates Gamma(r, α), dropout rates Gamma(s, β).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParetoNbdParams {
    pub r: f64,
    pub alpha: f64,
    pub s: f64,
    pub beta: f64,
}

/// A fitted Pareto/NBD model.
#[derive(Clone, Debug, PartialEq)]
pub struct ParetoNbd {
    params: ParetoNbdParams,
    standard_errors: [Option<f64>; 4],
    log_likelihood: f64,
}

/// ln ₂F₁(a, b; a + 1; z) for a, b > 0 and 0 ≤ z < 1, by its power series summed in logs:
/// term ratio (a + n)(b + n) z / ((a + 1 + n)(n + 1)).
pub fn ln_hyp2f1_a_plus_one(a: f64, b: f64, z: f64) -> f64 {
    debug_assert!((0.0..1.0).contains(&z));
    if z == 0.0 {
        return 0.0;
    }
    let (mut ln_term, mut ln_sum) = (0.0f64, 0.0f64);
    let ln_z = z.ln();
    for n in 0..100_000u32 {
        let n = f64::from(n);
        ln_term += ((a + n) * (b + n) / ((a + 1.0 + n) * (n + 1.0))).ln() + ln_z;
        let m = ln_sum.max(ln_term);
        ln_sum = m + ((ln_sum - m).exp() + (ln_term - m).exp()).ln();
        if ln_term < ln_sum - 40.0 {
            break;
        }
    }
    ln_sum
}

/// ln(eᵘ − eʷ) for u ≥ w.
fn ln_diff_exp(u: f64, w: f64) -> f64 {
    u + (-(w - u).exp()).ln_1p()
}

/// The log-likelihood of one summary under `p`.
pub fn log_likelihood_of(p: &ParetoNbdParams, c: &Summary) -> f64 {
    let ParetoNbdParams { r, alpha, s, beta } = *p;
    let x = c.x;
    let common = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln() + s * beta.ln();
    let alive = -(r + x) * (alpha + c.t).ln() - s * (beta + c.t).ln();
    let rsx = r + s + x;
    // ₂F₁ over the larger of α, β keeps the argument in [0, 1).
    let (big, b_arg) = if alpha >= beta { (alpha, s + 1.0) } else { (beta, r + x) };
    let term = |t: f64| {
        let z = (alpha - beta).abs() / (big + t);
        ln_hyp2f1_a_plus_one(rsx, b_arg, z) - rsx * (big + t).ln()
    };
    let (at_tx, at_t) = (term(c.t_x), term(c.t));
    let a0 = if at_tx > at_t { ln_diff_exp(at_tx, at_t) } else { f64::NEG_INFINITY };
    let dropped = (s / rsx).ln() + a0;
    let m = alive.max(dropped);
    common + m + ((alive - m).exp() + (dropped - m).exp()).ln()
}

fn log_likelihood(p: &ParetoNbdParams, grouped: &[Summary]) -> f64 {
    grouped.iter().map(|c| c.weight * log_likelihood_of(p, c)).sum()
}

impl ParetoNbd {
    /// Maximum likelihood on `summaries` (grouped first).
    pub fn fit(summaries: &[Summary]) -> Result<Self, BtydError> {
        let grouped = group(summaries)?;
        let params = |v: &[f64]| ParetoNbdParams { r: v[0], alpha: v[1], s: v[2], beta: v[3] };
        let (p, standard_errors, log_likelihood) = fit_positive::<4>(|v| self::log_likelihood(&params(v), &grouped))?;
        Ok(Self { params: params(&p), standard_errors, log_likelihood })
    }

    pub fn params(&self) -> ParetoNbdParams {
        self.params
    }

    pub fn standard_errors(&self) -> [Option<f64>; 4] {
        self.standard_errors
    }

    pub fn log_likelihood(&self) -> f64 {
        self.log_likelihood
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hypergeometric_function_matches_closed_forms() {
        // ₂F₁(1, 1; 2; z) = −ln(1 − z)/z.
        for z in [0.1, 0.5, 0.9, 0.99] {
            let got = ln_hyp2f1_a_plus_one(1.0, 1.0, z).exp();
            let want = -(1.0f64 - z).ln() / z;
            assert!((got - want).abs() < 1e-9 * want, "z = {z}: {got} vs {want}");
        }
        // ₂F₁(a, b; a + 1; 0) = 1, and large parameters stay finite in logs.
        assert_eq!(ln_hyp2f1_a_plus_one(3.0, 2.0, 0.0), 0.0);
        assert!(ln_hyp2f1_a_plus_one(5000.0, 4000.0, 0.5).is_finite());
    }

    #[test]
    fn a_customer_without_repeats_by_hand_when_the_rates_share_a_scale() {
        // α = β: z = 0, ₂F₁ = 1. r = s = α = β = 1, x = 0, t_x = 0, T = 1:
        // L = 1/((2)(2)) + (1/2)·(1/(1)² − 1/(2)²) = 1/4 + 3/8 = 5/8.
        let p = ParetoNbdParams { r: 1.0, alpha: 1.0, s: 1.0, beta: 1.0 };
        let ll = log_likelihood_of(&p, &Summary { x: 0.0, t_x: 0.0, t: 1.0, weight: 1.0 });
        assert!((ll - (5.0f64 / 8.0).ln()).abs() < 1e-12, "{ll}");
    }
}
