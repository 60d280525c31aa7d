//! Quantiles of the Beta and Gamma distributions that finish, and stay accurate, for any
//! shapes — the credible intervals of transition probabilities reach Beta(a, b) with b in the
//! millions on a big book, where statrs' `inv_beta_reg` never returns.
//!
//! - Both shapes large (min(a, b) ≥ [`CORNISH_FISHER_FROM`]): the Cornish–Fisher expansion
//!   with skewness and kurtosis (error O(min^-3/2) standard deviations); statrs' continued
//!   fraction stops after 140 terms and is off there.
//! - Otherwise, a + b ≤ [`EXACT_BETA_UP_TO`] (ten million): safeguarded Newton, in ln x, on the
//!   regularized incomplete Beta function (statrs' continued fraction; a power series for tiny
//!   values, which statrs loses), bisection whenever a step would leave the bracket, at most
//!   [`MAX_STEPS`] steps.
//! - One shape beyond that, the other small: −(b + (a − 1)/2)·ln(1 − X) is Gamma(a, 1) to O(b⁻²), so the
//!   quantile is 1 − exp(−g/(b + (a − 1)/2)) for the Gamma(a) quantile g, found by safeguarded
//!   Newton on the regularized lower incomplete Gamma function.

use statrs::function::beta::{beta_reg, ln_beta};
use statrs::function::gamma::{gamma_lr, ln_gamma};

/// The largest a + b for which the Beta quantile inverts the incomplete Beta function itself.
pub const EXACT_BETA_UP_TO: f64 = 1e7;

/// The smallest min(a, b) from which the Cornish–Fisher expansion is used.
pub const CORNISH_FISHER_FROM: f64 = 2000.0;

/// Most Newton or bisection steps of one inversion.
pub const MAX_STEPS: usize = 200;

/// Solves cdf(x) = p for x in (0, hi] for an increasing `cdf` with density `pdf`, in u = ln x
/// (so that quantiles near 0 come out to full relative precision): Newton steps kept inside the
/// bracket, bisection otherwise; at most [`MAX_STEPS`] steps.
fn invert(cdf: impl Fn(f64) -> f64, pdf: impl Fn(f64) -> f64, p: f64, hi: f64, start: f64) -> f64 {
    // ln of the least positive f64.
    let (mut lo, mut hi) = (-744.0_f64, hi.ln());
    let mut u = start.ln().clamp(lo, hi);
    for _ in 0..MAX_STEPS {
        let x = u.exp();
        let f = cdf(x) - p;
        if f == 0.0 {
            return x;
        }
        if f < 0.0 {
            lo = u;
        } else {
            hi = u;
        }
        let d = pdf(x) * x;
        let newton = u - f / d;
        let next = if d > 0.0 && newton.is_finite() && newton > lo && newton < hi { newton } else { 0.5 * (lo + hi) };
        if (next - u).abs() <= 1e-14 || hi - lo <= 1e-14 {
            return next.exp();
        }
        u = next;
    }
    u.exp()
}

/// The regularized lower incomplete Gamma function P(a, x): its power series where it converges
/// fast (x < a + 1; statrs returns 0 there for tiny x), statrs' continued fraction beyond.
fn lower_gamma(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= a + 1.0 {
        return gamma_lr(a, x);
    }
    // P(a, x) = x^a e^-x / Γ(a + 1) · Σ_n x^n / ((a + 1)…(a + n)).
    let (mut term, mut sum) = (1.0, 1.0);
    for n in 1..10_000 {
        term *= x / (a + f64::from(n));
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    (a * x.ln() - x - ln_gamma(a + 1.0) + sum.ln()).exp().min(1.0)
}

/// The regularized incomplete Beta function I_x(a, b): its power series
/// x^a (1 − x)^b / (a·B(a, b)) · ₂F₁(a + b, 1; a + 1; x) where it converges fast ((a + b)·x < ½;
/// statrs loses tiny values there), statrs' continued fraction beyond.
fn incomplete_beta(a: f64, b: f64, x: f64, ln_b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if (a + b) * x >= 0.5 {
        return beta_reg(a, b, x);
    }
    let (mut term, mut sum) = (1.0, 1.0);
    for n in 0..10_000 {
        let n = f64::from(n);
        term *= (a + b + n) / (a + 1.0 + n) * x;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    (a * x.ln() + b * (-x).ln_1p() - a.ln() - ln_b + sum.ln()).exp().min(1.0)
}

/// The p-quantile of Gamma(shape, 1), shape > 0, 0 < p < 1.
pub fn gamma_quantile(shape: f64, p: f64) -> f64 {
    debug_assert!(shape > 0.0 && p > 0.0 && p < 1.0);
    let ln_g = ln_gamma(shape);
    let pdf = |x: f64| if x > 0.0 { ((shape - 1.0) * x.ln() - x - ln_g).exp() } else { 0.0 };
    // Start: Wilson–Hilferty, or the small-x form P(x) ≈ x^a / Γ(a + 1) when that is smaller;
    // the bracket grows until it holds the quantile.
    let z = standard_normal_quantile(p);
    let c = 1.0 / (9.0 * shape);
    let wilson_hilferty = shape * (1.0 - c + z * c.sqrt()).powi(3);
    let small = ((p.ln() + ln_gamma(shape + 1.0)) / shape).exp();
    let start = if wilson_hilferty > 0.0 { wilson_hilferty.min(small) } else { small }.max(f64::MIN_POSITIVE);
    let mut hi = (shape + 10.0 * shape.sqrt() + 10.0).max(2.0 * start);
    while lower_gamma(shape, hi) < p {
        hi *= 2.0;
    }
    invert(|x| lower_gamma(shape, x), pdf, p, hi, start)
}

/// The p-quantile of the standard normal distribution (Acklam's rational approximation refined
/// by one Halley step on erfc: relative error below 1e-15).
pub fn standard_normal_quantile(p: f64) -> f64 {
    use statrs::function::erf::erfc;
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383_577_518_672_69e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] =
        [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let tail = |q: f64| {
        let r = (-2.0 * q.ln()).sqrt();
        (((((C[0] * r + C[1]) * r + C[2]) * r + C[3]) * r + C[4]) * r + C[5])
            / ((((D[0] * r + D[1]) * r + D[2]) * r + D[3]) * r + 1.0)
    };
    let x = if p < 0.02425 {
        tail(p)
    } else if p > 1.0 - 0.02425 {
        -tail(1.0 - p)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    // One Halley step.
    let e = 0.5 * erfc(-x / std::f64::consts::SQRT_2) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

/// The p-quantile of Beta(a, b), a, b > 0, 0 ≤ p ≤ 1.
pub fn beta_quantile(a: f64, b: f64, p: f64) -> f64 {
    debug_assert!(a > 0.0 && b > 0.0 && (0.0..=1.0).contains(&p));
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    if a.min(b) >= CORNISH_FISHER_FROM {
        let n = a + b;
        let mean = a / n;
        let sd = (a * b / (n * n * (n + 1.0))).sqrt();
        let g1 = 2.0 * (b - a) * (n + 1.0).sqrt() / ((n + 2.0) * (a * b).sqrt());
        let g2 = 6.0 * ((a - b).powi(2) * (n + 1.0) - a * b * (n + 2.0)) / (a * b * (n + 2.0) * (n + 3.0));
        let z = standard_normal_quantile(p);
        let w = z + g1 / 6.0 * (z * z - 1.0) + g2 / 24.0 * (z.powi(3) - 3.0 * z)
            - g1 * g1 / 36.0 * (2.0 * z.powi(3) - 5.0 * z);
        return (mean + sd * w).clamp(0.0, 1.0);
    }
    if a + b <= EXACT_BETA_UP_TO {
        // Below the mean in x, above it in 1 − x, so that both tails keep their precision.
        let mean = a / (a + b);
        return if p > incomplete_beta(a, b, mean, ln_beta(a, b)) {
            1.0 - exact_beta_below_mean(b, a, 1.0 - p)
        } else {
            exact_beta_below_mean(a, b, p)
        };
    }
    let one_large = |a: f64, b: f64, p: f64| -(-gamma_quantile(a, p) / (b + (a - 1.0) / 2.0)).exp_m1();
    if a <= b { one_large(a, b, p) } else { 1.0 - one_large(b, a, 1.0 - p) }
}

/// The p-quantile of Beta(a, b) by inverting the incomplete Beta function, for a p at most the
/// cdf at the mean (the quantile is at most the mean).
fn exact_beta_below_mean(a: f64, b: f64, p: f64) -> f64 {
    let ln_b = ln_beta(a, b);
    let mean = a / (a + b);
    let pdf = |x: f64| {
        if x <= 0.0 || x >= 1.0 {
            return 0.0;
        }
        ((a - 1.0) * x.ln() + (b - 1.0) * (-x).ln_1p() - ln_b).exp()
    };
    // Start: the small-x form I_x(a, b) ≈ x^a / (a·B(a, b)) when it is below the mean.
    let small = ((p.ln() + a.ln() + ln_b) / a).exp();
    invert(|x| incomplete_beta(a, b, x, ln_b), pdf, p, mean, small.min(mean))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference quantiles from SciPy 1.x (`scipy.stats.beta.ppf`), shapes on both sides of each
    /// regime boundary and the shapes that hang statrs.
    const SCIPY_BETA: &[(f64, f64, f64, f64)] = include!("quantile_scipy.in");

    #[test]
    fn beta_quantiles_match_scipy_in_every_regime() {
        for &(a, b, p, want) in SCIPY_BETA {
            let got = beta_quantile(a, b, p);
            let tol = 2e-6 * want.min(1.0 - want) + 1e-300;
            assert!((got - want).abs() <= tol.max(1e-12 * want), "Beta({a}, {b}) at {p}: {got} vs {want}");
        }
    }

    #[test]
    fn beta_quantiles_match_statrs_where_it_returns() {
        use statrs::distribution::{Beta, ContinuousCDF};
        for &a in &[0.05, 0.5, 1.0, 3.0, 40.0, 900.0] {
            for &b in &[0.1, 1.0, 7.0, 120.0, 5000.0] {
                let d = Beta::new(a, b).unwrap();
                for &p in &[0.001, 0.05, 0.5, 0.95, 0.999] {
                    let (got, want) = (beta_quantile(a, b, p), d.inverse_cdf(p));
                    assert!((got - want).abs() <= 1e-9 + 1e-7 * want, "Beta({a}, {b}) at {p}: {got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn the_quantile_is_increasing_and_its_cdf_returns_p() {
        for &(a, b) in &[(0.3, 8e6), (2.0, 8e6), (8e6, 2.0), (1500.0, 9e6), (3e6, 5e6), (50.0, 2e7)] {
            let mut last = 0.0;
            for i in 1..100 {
                let p = f64::from(i) / 100.0;
                let x = beta_quantile(a, b, p);
                assert!(x > last, "Beta({a}, {b}): not increasing at {p}");
                last = x;
            }
        }
        for &(a, p) in &[(0.01, 0.05), (0.7, 0.5), (3.0, 0.95), (1999.0, 0.05), (250.0, 0.999)] {
            let g = gamma_quantile(a, p);
            assert!((lower_gamma(a, g) - p).abs() < 1e-12, "Gamma({a}) at {p}");
        }
    }

    #[test]
    fn the_normal_quantile_is_exact_to_rounding() {
        use statrs::function::erf::erfc;
        for &p in &[1e-12, 0.001, 0.02, 0.05, 0.3, 0.5, 0.77, 0.95, 0.999] {
            let z = standard_normal_quantile(p);
            let back = 0.5 * erfc(-z / std::f64::consts::SQRT_2);
            assert!((back - p).abs() <= 1e-14 * p.max(1e-3), "{p}: {z} gives {back}");
        }
    }
}
