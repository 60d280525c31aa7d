//! The Pareto/NBD model (Schmittlein, Morrison & Colombo 1987): while alive a customer buys as a
//! Poisson process with rate λ ~ Gamma(r, α); its lifetime is exponential with rate μ ~ Gamma(s, β).
//! The likelihood (Fader & Hardie 2005, "A note on deriving the Pareto/NBD model") needs the Gauss
//! hypergeometric function ₂F₁(a, b; a + 1; z), 0 ≤ z < 1; everything is computed in logs, so large
//! x does not overflow (the published implementations did).

use super::hypergeometric::{ln_add_exp, ln_diff_exp, ln_hyp2f1};
use super::{BtydError, Summary, fit_positive_capped, group, sharded_sum};
use crate::domain::shards::{Parallel, Serial};
use statrs::function::gamma::ln_gamma;

/// Pareto/NBD parameters: purchase rates Gamma(r, α), dropout rates Gamma(s, β).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
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

/// ln ₂F₁(a, b; a + 1; z) for a, b > 0, b < a + 1 and 0 ≤ z < 1 ([`ln_hyp2f1`] in logs). Where
/// b > 1 the terms of the plain series climb for ~bz/(1 − z) steps before they fall (thousands
/// for a customer with many purchases, or z near 1); Euler's transformation ₂F₁(a, b; a + 1; z)
/// = (1 − z)^(1−b) ₂F₁(1, a + 1 − b; a + 1; z) gives a series of positive terms whose ratio
/// z(a + 1 − b + n)/(a + 1 + n) is below z from the start.
pub fn ln_hyp2f1_a_plus_one(a: f64, b: f64, z: f64) -> f64 {
    let f = if b > 1.0 && b < a + 1.0 {
        ln_hyp2f1(1.0, a + 1.0 - b, a + 1.0, z).map(|f| f + (1.0 - b) * (-z).ln_1p())
    } else {
        ln_hyp2f1(a, b, a + 1.0, z)
    };
    f.unwrap_or(f64::NAN)
}

/// ln of ∫_u^∞ (α + τ)^−(r+x) (β + τ)^−(s+1) dτ · (r + s + x): the antiderivative both the
/// likelihood and the conditional forecasts need, by the substitution y = 1/(max(α, β) + τ), which
/// turns it into y^(r+s+x) ₂F₁(r + s + x, ·; r + s + x + 1; |α − β| y).
fn ln_tail(p: &ParetoNbdParams, x: f64, u: f64) -> f64 {
    let ParetoNbdParams { r, alpha, s, beta } = *p;
    let rsx = r + s + x;
    // ₂F₁ over the larger of α, β keeps the argument in [0, 1).
    let (big, b_arg) = if alpha >= beta { (alpha, s + 1.0) } else { (beta, r + x) };
    let z = (alpha - beta).abs() / (big + u);
    ln_hyp2f1_a_plus_one(rsx, b_arg, z) - rsx * (big + u).ln()
}

/// The two parts of one customer's log-likelihood, without the common factor: alive at T, and
/// dropped out between t_x and T.
fn ln_parts(p: &ParetoNbdParams, c: &Summary) -> (f64, f64) {
    let ParetoNbdParams { r, alpha, s, beta } = *p;
    let x = c.x;
    let alive = -(r + x) * (alpha + c.t).ln() - s * (beta + c.t).ln();
    let (at_tx, at_t) = (ln_tail(p, x, c.t_x), ln_tail(p, x, c.t));
    let a0 = if at_tx > at_t { ln_diff_exp(at_tx, at_t) } else { f64::NEG_INFINITY };
    (alive, (s / (r + s + x)).ln() + a0)
}

/// The log-likelihood of one summary under `p`: Γ(r + x) αʳ βˢ / Γ(r) times
/// [(α + T)^−(r+x) (β + T)^−s + s ∫_{t_x}^T (α + τ)^−(r+x) (β + τ)^−(s+1) dτ].
pub fn log_likelihood_of(p: &ParetoNbdParams, c: &Summary) -> f64 {
    let ParetoNbdParams { r, alpha, s, beta } = *p;
    let common = ln_gamma(r + c.x) - ln_gamma(r) + r * alpha.ln() + s * beta.ln();
    let (alive, dropped) = ln_parts(p, c);
    common + ln_add_exp(alive, dropped)
}

/// Caps on the shape parameters r and s in the fit (see [`super::fit_positive_capped`]). Where the
/// data cannot tell dropout (or purchase-rate) heterogeneity from none, the likelihood rises
/// along a ridge s, β → ∞ with s/β fixed; on it the ₂F₁ argument z = |α − β|/(β + u) tends to 1
/// and its series needs ~β/(α + T) terms, so an uncapped fit of 600 B2B accounts took 17 minutes.
/// At s = 100 the rates' CV is 0.1, the homogeneous limit in all but name, and the series needs
/// ~100 × (mean lifetime)/(α + T) terms.
pub const SHAPE_CAP: f64 = 100.0;
const SHAPE_CAPS: [f64; 4] = [SHAPE_CAP, f64::INFINITY, SHAPE_CAP, f64::INFINITY];

impl ParetoNbd {
    /// Maximum likelihood on `summaries` (grouped first), with r and s below [`SHAPE_CAP`].
    pub fn fit(summaries: &[Summary]) -> Result<Self, BtydError> {
        Self::fit_with(summaries, &Serial)
    }

    /// [`Self::fit`] with the likelihood summed over shards of the grouped summaries on `par`
    /// (the same result whatever the threads).
    pub fn fit_with(summaries: &[Summary], par: &impl Parallel) -> Result<Self, BtydError> {
        let grouped = group(summaries)?;
        let params = |v: &[f64]| ParetoNbdParams { r: v[0], alpha: v[1], s: v[2], beta: v[3] };
        let (p, standard_errors, log_likelihood) = fit_positive_capped::<4>(
            |v| sharded_sum(par, &grouped, |c| log_likelihood_of(&params(v), c)),
            SHAPE_CAPS,
            {
                // α and β start at the customers' mean T: the time scale of the data (days or weeks).
                let (sum, n) = grouped.iter().fold((0.0, 0.0), |(s, n), c| (s + c.weight * c.t, n + c.weight));
                let scale = (sum / n).max(1.0);
                [1.0, scale, 1.0, scale]
            },
        )?;
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

    /// A model with these parameters, as fitted elsewhere (no standard errors).
    pub fn with_params(params: ParetoNbdParams) -> Self {
        Self { params, standard_errors: [None; 4], log_likelihood: f64::NAN }
    }

    /// P(alive at T | x, t_x, T): the likelihood's "alive" part over the whole.
    pub fn p_alive(&self, c: &Summary) -> f64 {
        let (alive, dropped) = ln_parts(&self.params, c);
        (alive - ln_add_exp(alive, dropped)).exp()
    }

    /// Expected purchases in (T, T + t]: P(alive) · E[λ | alive] · E[min(τ, t) | alive] with
    /// λ ~ Gamma(r + x, α + T), the remaining lifetime τ ~ Exp(μ), μ ~ Gamma(s, β + T):
    /// P(alive) · (r + x)(β + T) / ((α + T)(s − 1)) · [1 − ((β + T)/(β + T + t))^(s−1)].
    pub fn expected_purchases(&self, c: &Summary, t: f64) -> f64 {
        let ParetoNbdParams { r, alpha, s, beta } = self.params;
        let (a, b) = (alpha + c.t, beta + c.t);
        let lifetime = if (s - 1.0).abs() < 1e-9 {
            b * (t / b).ln_1p()
        } else {
            b / (s - 1.0) * -((s - 1.0) * (b / (b + t)).ln()).exp_m1()
        };
        self.p_alive(c) * (r + c.x) / a * lifetime
    }

    /// P(no purchase in (T, T + t] | x, t_x, T) = 1 − P(alive) + P(alive) · [E e^−(λ+μ)t +
    /// ∫₀ᵗ E[μ e^−μu] E[e^−λu] du], the integral by the same antiderivative as the likelihood's.
    pub fn p_no_purchase(&self, c: &Summary, t: f64) -> f64 {
        let ParetoNbdParams { r, alpha, s, beta } = self.params;
        let k = r + c.x;
        let (a, b) = (alpha + c.t, beta + c.t);
        let survives = -k * (t / a).ln_1p() - s * (t / b).ln_1p();
        let (at_t, at_end) = (ln_tail(&self.params, c.x, c.t), ln_tail(&self.params, c.x, c.t + t));
        let ends = if at_t > at_end {
            (s / (r + s + c.x)).ln() + k * a.ln() + s * b.ln() + ln_diff_exp(at_t, at_end)
        } else {
            f64::NEG_INFINITY
        };
        let alive = self.p_alive(c);
        (1.0 - alive + alive * ln_add_exp(survives, ends).exp()).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_customer_without_repeats_by_hand_when_the_rates_share_a_scale() {
        // α = β: z = 0, ₂F₁ = 1. r = s = α = β = 1, x = 0, t_x = 0, T = 1:
        // L = 1/((2)(2)) + (1/2)·(1/(1)² − 1/(2)²) = 1/4 + 3/8 = 5/8.
        let p = ParetoNbdParams { r: 1.0, alpha: 1.0, s: 1.0, beta: 1.0 };
        let ll = log_likelihood_of(&p, &Summary { x: 0.0, t_x: 0.0, t: 1.0, weight: 1.0 });
        assert!((ll - (5.0f64 / 8.0).ln()).abs() < 1e-12, "{ll}");
    }

    /// ∫_lo^hi e^(f(τ) − shift) dτ by composite Simpson on `n` (even) panels.
    fn simpson(f: impl Fn(f64) -> f64, lo: f64, hi: f64, n: usize, shift: f64) -> f64 {
        let h = (hi - lo) / n as f64;
        let w = |i: usize| {
            if i == 0 || i == n {
                1.0
            } else if i % 2 == 1 {
                4.0
            } else {
                2.0
            }
        };
        (0..=n).map(|i| w(i) * (f(lo + i as f64 * h) - shift).exp()).sum::<f64>() * h / 3.0
    }

    /// ln of the likelihood computed straight from its integral form by quadrature, the
    /// integrand scaled by its value at t_x so that nothing under- or overflows.
    fn ln_likelihood_by_quadrature(p: &ParetoNbdParams, c: &Summary) -> f64 {
        let ParetoNbdParams { r, alpha, s, beta } = *p;
        let k = r + c.x;
        let f = |tau: f64| -k * (alpha + tau).ln() - (s + 1.0) * (beta + tau).ln();
        let shift = f(c.t_x);
        let dropped = s.ln() + shift + simpson(f, c.t_x, c.t, 200_000, shift).ln();
        let alive = -k * (alpha + c.t).ln() - s * (beta + c.t).ln();
        ln_gamma(k) - ln_gamma(r) + r * alpha.ln() + s * beta.ln() + ln_add_exp(alive, dropped)
    }

    #[test]
    fn the_likelihood_at_large_x_matches_quadrature_where_plain_sums_overflow() {
        let cdnow = ParetoNbdParams { r: 0.55, alpha: 10.58, s: 0.61, beta: 11.67 };
        let slow_dropout = ParetoNbdParams { beta: 100.0, ..cdnow };
        let slow_buying = ParetoNbdParams { alpha: 100.0, ..cdnow };
        for p in [cdnow, slow_dropout, slow_buying] {
            for c in [
                Summary { x: 2.0, t_x: 30.43, t: 38.86, weight: 1.0 },
                Summary { x: 800.0, t_x: 30.0, t: 38.86, weight: 1.0 },
                Summary { x: 3000.0, t_x: 70.0, t: 78.0, weight: 1.0 },
            ] {
                let got = log_likelihood_of(&p, &c);
                let want = ln_likelihood_by_quadrature(&p, &c);
                assert!(
                    got.is_finite() && (got - want).abs() < 1e-7 * want.abs(),
                    "{p:?}, x = {}: {got} vs {want}",
                    c.x
                );
            }
        }
        // At x = 3000 with β = 100 the series' terms reach ~10⁶⁰⁰ (and (α + T)^(r+x) ~10⁵⁰⁰⁰):
        // a plain floating-point sum overflows, the sum in logs does not.
        let (rsx, z) = (0.55 + 0.61 + 3000.0, (100.0 - 10.58) / (100.0 + 70.0));
        assert!(super::super::hypergeometric::hyp2f1_signed(rsx, 3000.55, rsx + 1.0, z).is_none());
        assert!(ln_hyp2f1_a_plus_one(rsx, 3000.55, z).is_finite());
        assert!((10.58f64 + 78.0).powf(3000.55).is_infinite());
    }

    #[test]
    fn conditional_forecasts_match_their_integral_definitions() {
        let m = ParetoNbd::with_params(ParetoNbdParams { r: 0.55, alpha: 10.58, s: 0.61, beta: 11.67 });
        let ParetoNbdParams { r, alpha, s, beta } = m.params();
        let t = 39.0;
        for c in [
            Summary { x: 0.0, t_x: 0.0, t: 38.86, weight: 1.0 },
            Summary { x: 2.0, t_x: 30.43, t: 38.86, weight: 1.0 },
            Summary { x: 40.0, t_x: 38.0, t: 38.86, weight: 1.0 },
        ] {
            let (a, b, k) = (alpha + c.t, beta + c.t, r + c.x);
            let alive = m.p_alive(&c);
            assert!((0.0..=1.0).contains(&alive));
            // P(no purchase | alive) = E e^−(λ+μ)t + ∫₀ᵗ s/B (B/(B+u))^(s+1) (A/(A+u))^k du.
            let f = |u: f64| (s / b).ln() + (s + 1.0) * (b / (b + u)).ln() + k * (a / (a + u)).ln();
            let none = (a / (a + t)).powf(k) * (b / (b + t)).powf(s) + simpson(f, 0.0, t, 20_000, 0.0);
            let want = 1.0 - alive + alive * none;
            let got = m.p_no_purchase(&c, t);
            assert!((got - want).abs() < 1e-9, "x = {}: {got} vs {want}", c.x);
            // E[purchases] = P(alive) · (k/A) · ∫₀ᵗ P(τ > u) du, P(τ > u) = (B/(B+u))^s.
            let g = |u: f64| s * (b / (b + u)).ln();
            let want = alive * k / a * simpson(g, 0.0, t, 20_000, 0.0);
            let got = m.expected_purchases(&c, t);
            assert!((got - want).abs() < 1e-9 * want.max(1.0), "x = {}: {got} vs {want}", c.x);
        }
        // A frequent buyer seen recently is likely alive; the same buyer silent for long, not.
        let recent = Summary { x: 20.0, t_x: 38.0, t: 38.86, weight: 1.0 };
        let silent = Summary { x: 20.0, t_x: 5.0, t: 38.86, weight: 1.0 };
        assert!(m.p_alive(&recent) > 0.9 && m.p_alive(&silent) < 0.01);
        assert!(m.p_no_purchase(&recent, t) < m.p_no_purchase(&silent, t));
    }

    #[test]
    fn conditional_forecasts_agree_with_lifetimes() {
        // lifetimes 0.11.3's ParetoNBDFitter with these parameters: conditional_probability_alive,
        // conditional_expected_number_of_purchases_up_to_time(39, …) and
        // conditional_probability_of_n_purchases_up_to_time(0, 39, …).
        let m = ParetoNbd::with_params(ParetoNbdParams { r: 0.5533, alpha: 10.58, s: 0.6062, beta: 11.67 });
        for (x, t_x, alive, expected, none) in [
            (0.0, 0.0, 0.29514246060693267, 0.10707688908799604, 0.9307216420887771),
            (2.0, 30.43, 0.8691281786669014, 1.4550873234200388, 0.4080883235846941),
            (40.0, 38.0, 0.9849726680614347, 26.191101348974634, 0.029232828542969568),
            (10.0, 5.0, 5.082082732804266e-05, 0.0003516684409400532, 0.9999519614639544),
        ] {
            let c = Summary { x, t_x, t: 38.86, weight: 1.0 };
            for (what, got, want) in [
                ("P(alive)", m.p_alive(&c), alive),
                ("E[purchases]", m.expected_purchases(&c, 39.0), expected),
                ("P(none)", m.p_no_purchase(&c, 39.0), none),
            ] {
                assert!((got - want).abs() < 1e-6 * want.max(1e-3), "x = {x}, {what}: {got} vs {want}");
            }
        }
    }
}
