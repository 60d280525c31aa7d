//! The BG/NBD model (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while
//! alive a customer buys as a Poisson process with rate λ ~ Gamma(r, α); after every purchase it
//! drops out with probability p ~ Beta(a, b). Fitted by maximum likelihood on grouped
//! (x, t_x, T) summaries; the likelihood is computed in logs (log-sum-exp of its two terms).

use super::hypergeometric::{hyp2f1_signed, ln_hyp2f1};
use super::{BtydError, Summary, fit_positive, group};
use crate::domain::shards::{Parallel, Serial};
use statrs::function::beta::ln_beta;
use statrs::function::gamma::ln_gamma;

/// BG/NBD parameters: purchase rates Gamma(r, α), dropout probabilities Beta(a, b).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
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

/// The parts of a summary's log-likelihood that depend on x alone (and the parameters):
/// ln Γ(r + x) − ln Γ(r) + r ln α, ln B(a, b + x) − ln B(a, b) and ln B(a + 1, b + x − 1) − ln B(a, b).
#[derive(Clone, Copy)]
struct ByCount {
    x: f64,
    common: f64,
    alive: f64,
    dropped: f64,
}

impl ByCount {
    fn new(p: &BgNbdParams, x: f64) -> Self {
        let BgNbdParams { r, alpha, a, b } = *p;
        let ln_beta_ab = ln_beta(a, b);
        Self {
            x,
            common: ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln(),
            alive: ln_beta(a, b + x) - ln_beta_ab,
            dropped: if x > 0.0 { ln_beta(a + 1.0, b + x - 1.0) - ln_beta_ab } else { f64::NEG_INFINITY },
        }
    }

    fn log_likelihood(&self, p: &BgNbdParams, s: &Summary) -> f64 {
        let k = p.r + s.x;
        let alive = self.alive - k * (p.alpha + s.t).ln();
        if s.x == 0.0 {
            return self.common + alive;
        }
        let dropped = self.dropped - k * (p.alpha + s.t_x).ln();
        let m = alive.max(dropped);
        self.common + m + ((alive - m).exp() + (dropped - m).exp()).ln()
    }
}

/// The log-likelihood of one summary under `p` (Fader, Hardie & Lee 2005, eq. 6).
pub fn log_likelihood_of(p: &BgNbdParams, s: &Summary) -> f64 {
    ByCount::new(p, s.x).log_likelihood(p, s)
}

/// The log-likelihood of grouped summaries.
pub fn log_likelihood(p: &BgNbdParams, grouped: &[Summary]) -> f64 {
    sum_by_count(p, grouped)
}

/// Σ weight · log-likelihood over `grouped` (sorted by x, as [`group`] leaves them), the parts
/// that depend on x alone computed once per run of equal x.
fn sum_by_count(p: &BgNbdParams, grouped: &[Summary]) -> f64 {
    let mut by: Option<ByCount> = None;
    grouped
        .iter()
        .map(|s| {
            let c = match by {
                Some(c) if c.x == s.x => c,
                _ => *by.insert(ByCount::new(p, s.x)),
            };
            s.weight * c.log_likelihood(p, s)
        })
        .sum()
}

impl BgNbd {
    /// Maximum likelihood on `summaries` (grouped first).
    pub fn fit(summaries: &[Summary]) -> Result<Self, BtydError> {
        Self::fit_with(summaries, &Serial)
    }

    /// [`Self::fit`] with the likelihood summed over shards of the grouped summaries on `par`
    /// (the same result whatever the threads).
    pub fn fit_with(summaries: &[Summary], par: &impl Parallel) -> Result<Self, BtydError> {
        let grouped = group(summaries)?;
        let params = |v: &[f64]| BgNbdParams { r: v[0], alpha: v[1], a: v[2], b: v[3] };
        let (p, standard_errors, log_likelihood) = fit_positive::<4>(|v| {
            let p = params(v);
            par.in_shards(grouped.len(), |r| sum_by_count(&p, &grouped[r])).into_iter().sum()
        })?;
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

    /// A model with these parameters, as fitted elsewhere (no standard errors).
    pub fn with_params(params: BgNbdParams) -> Self {
        Self { params, standard_errors: [None; 4], log_likelihood: f64::NAN, customers: 0.0 }
    }

    /// Expected purchases in (T, T + t] (Fader, Hardie & Lee 2005, eq. 10):
    /// P(alive) · (a + b + x − 1)/(a − 1) · [1 − ((α + T)/(α + T + t))^(r+x)
    /// ₂F₁(r + x, b + x; a + b + x − 1; t/(α + T + t))], the product in logs. `NaN` where the
    /// series cannot be summed (a + b + x − 1 a non-positive integer).
    pub fn expected_purchases(&self, s: &Summary, t: f64) -> f64 {
        let BgNbdParams { r, alpha, a, b } = self.params;
        // At a = 1 the formula is 0/0; its limit is approached closely enough a hair away.
        let a = if (a - 1.0).abs() < 1e-7 { 1.0 + 1e-7 } else { a };
        let (k, c) = (r + s.x, a + b + s.x - 1.0);
        let z = t / (alpha + s.t + t);
        let ln_f = if c > 0.0 {
            ln_hyp2f1(k, b + s.x, c, z)
        } else {
            hyp2f1_signed(k, b + s.x, c, z).filter(|f| *f > 0.0).map(f64::ln)
        };
        let Some(ln_f) = ln_f else { return f64::NAN };
        let ln_product = -k * (t / (alpha + s.t)).ln_1p() + ln_f;
        self.p_alive(s) * c / (a - 1.0) * -ln_product.exp_m1()
    }

    /// P(no purchase in (T, T + t] | x, t_x, T) = 1 − P(alive) + P(alive) · ((α + T)/(α + T + t))^(r+x):
    /// alive at T, it drops out only right after a purchase, so none comes with probability
    /// E[e^−λt], λ ~ Gamma(r + x, α + T).
    pub fn p_no_purchase(&self, s: &Summary, t: f64) -> f64 {
        let BgNbdParams { r, alpha, .. } = self.params;
        let alive = self.p_alive(s);
        1.0 - alive + alive * (-(r + s.x) * (t / (alpha + s.t)).ln_1p()).exp()
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

    /// ∫₀¹ p^(a−1) (1 − p)^(b−1) g(p) dp / B(a, b) by the tanh–sinh rule (p = σ(π sinh τ)),
    /// which is exact to ~1e−12 even where the Beta density is infinite at an end.
    fn beta_mean(a: f64, b: f64, g: impl Fn(f64) -> f64) -> f64 {
        let h = 1.0 / 64.0;
        let sum: f64 = (-6 * 64..=6 * 64)
            .map(|i| {
                let tau = f64::from(i) * h;
                let u = std::f64::consts::PI * tau.sinh();
                let (p, q) = (1.0 / (1.0 + (-u).exp()), 1.0 / (1.0 + u.exp()));
                if p == 0.0 || q == 0.0 {
                    return 0.0;
                }
                (a * p.ln() + b * q.ln()).exp() * g(p) * std::f64::consts::PI * tau.cosh()
            })
            .sum();
        sum * h / ln_beta(a, b).exp()
    }

    #[test]
    fn expected_purchases_and_no_purchase_match_their_integral_definitions() {
        // Alive at T, p ~ Beta(a, b + x), λ ~ Gamma(r + x, α + T), and while alive purchases come
        // at rate λ and death at rate λp: E[purchases in t] = E[(1 − e^−λpt)/p]
        // = ∫ Beta(p) (1 − (A/(A + pt))^k)/p dp. The last (a, b) has a + b − 1 < 0, so a
        // customer without repeats takes the signed series.
        for (a, b) in [(2.0, 3.0), (0.79, 2.43), (1.5, 0.3), (0.5, 0.3)] {
            let m = BgNbd::with_params(BgNbdParams { r: 0.24, alpha: 4.41, a, b });
            for s in [one(0.0, 0.0, 38.86), one(2.0, 30.43, 38.86), one(60.0, 38.0, 38.86)] {
                let (t, k, big_a) = (39.0, 0.24 + s.x, 4.41 + s.t);
                let g = |p: f64| -(-k * (p * t / big_a).ln_1p()).exp_m1() / p;
                let want = m.p_alive(&s) * beta_mean(a, b + s.x, g);
                let got = m.expected_purchases(&s, t);
                assert!((got - want).abs() < 1e-8 * want.max(1.0), "a = {a}, b = {b}, x = {}: {got} vs {want}", s.x);
                let none = 1.0 - m.p_alive(&s) + m.p_alive(&s) * (big_a / (big_a + t)).powf(k);
                assert!((m.p_no_purchase(&s, t) - none).abs() < 1e-12);
            }
        }
    }
}
