//! The Gauss hypergeometric function ₂F₁(a, b; c; z) for 0 ≤ z < 1, as the BTYD models need it.
//! With a, b, c > 0 every term of the power series is positive, so it is summed in logs and large
//! parameters (a customer with hundreds of purchases) cannot overflow; the published
//! implementations summed it in plain floating point and did.

/// Terms summed at most; the series converges like zⁿ, so this reaches z ≈ 0.9997.
const MAX_TERMS: u32 = 200_000;

/// ln ₂F₁(a, b; c; z) for a, b, c > 0 and 0 ≤ z < 1, by its power series (term ratio
/// (a + n)(b + n) z / ((c + n)(n + 1))) in floating point kept in range by a running scale held
/// in logs — no term or partial sum can overflow, and no logarithm is taken per term. Stopped
/// once the terms fall and one is below 10⁻¹⁷ of the sum. `None` outside that domain or when the
/// series has not converged in 200,000 terms.
pub fn ln_hyp2f1(a: f64, b: f64, c: f64, z: f64) -> Option<f64> {
    if !(a > 0.0 && b > 0.0 && c > 0.0 && (0.0..1.0).contains(&z)) {
        return None;
    }
    if z == 0.0 {
        return Some(0.0);
    }
    // sum and term are both multiplied by e^(−ln_scale).
    let (mut term, mut sum, mut ln_scale) = (1.0f64, 1.0f64, 0.0f64);
    const BIG: f64 = 1e250;
    for n in 0..MAX_TERMS {
        let n = f64::from(n);
        let ratio = (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        term *= ratio;
        sum += term;
        if sum > BIG {
            term /= BIG;
            sum /= BIG;
            ln_scale += BIG.ln();
        }
        if ratio < 1.0 && term < 1e-17 * sum {
            return Some(sum.ln() + ln_scale);
        }
    }
    None
}

/// ₂F₁(a, b; c; z) for 0 ≤ z < 1 with any real a, b and c not 0 or a negative integer, by its
/// power series in plain floating point: for parameters of moderate size whose terms may change
/// sign (the BG/NBD's c = a + b − 1 of a customer without repeats can be negative). Prefer
/// [`ln_hyp2f1`] when all three are positive. `None` where the series does not converge.
pub fn hyp2f1_signed(a: f64, b: f64, c: f64, z: f64) -> Option<f64> {
    if !(0.0..1.0).contains(&z) || (c <= 0.0 && c.fract() == 0.0) {
        return None;
    }
    let (mut term, mut sum) = (1.0f64, 1.0f64);
    for n in 0..MAX_TERMS {
        let n = f64::from(n);
        term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        sum += term;
        if !sum.is_finite() {
            return None;
        }
        if term == 0.0 || (term.abs() < 1e-17 * sum.abs() && n > (a.abs() + b.abs())) {
            return Some(sum);
        }
    }
    None
}

/// ln(eᵘ − eʷ) for u ≥ w (−∞ when they are equal).
pub fn ln_diff_exp(u: f64, w: f64) -> f64 {
    u + (-(w - u).exp()).ln_1p()
}

/// ln(eᵘ + eʷ).
pub fn ln_add_exp(u: f64, w: f64) -> f64 {
    let m = u.max(w);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + ((u - m).exp() + (w - m).exp()).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_forms() {
        // ₂F₁(1, 1; 2; z) = −ln(1 − z)/z; ₂F₁(a, b; b; z) = (1 − z)^(−a).
        for z in [0.1, 0.5, 0.9, 0.99] {
            let want = -(1.0f64 - z).ln() / z;
            let got = ln_hyp2f1(1.0, 1.0, 2.0, z).unwrap().exp();
            assert!((got - want).abs() < 1e-9 * want, "z = {z}: {got} vs {want}");
            let want = (1.0f64 - z).powf(-2.5);
            let got = ln_hyp2f1(2.5, 0.7, 0.7, z).unwrap().exp();
            assert!((got - want).abs() < 1e-9 * want, "z = {z}: {got} vs {want}");
            let signed = hyp2f1_signed(2.5, 0.7, 0.7, z).unwrap();
            assert!((signed - want).abs() < 1e-9 * want);
        }
        // Terms of both signs: ₂F₁(−1, b; c; z) = 1 − bz/c, a polynomial.
        assert!((hyp2f1_signed(-1.0, 3.0, -0.5, 0.4).unwrap() - (1.0 - 3.0 * 0.4 / -0.5)).abs() < 1e-12);
        assert_eq!(ln_hyp2f1(3.0, 2.0, 4.0, 0.0), Some(0.0));
        assert_eq!(ln_hyp2f1(-1.0, 2.0, 4.0, 0.5), None);
        assert_eq!(hyp2f1_signed(1.0, 2.0, -2.0, 0.5), None);
    }

    #[test]
    fn large_parameters_stay_finite_in_logs_where_plain_sums_overflow() {
        // (1 − z)^(−a) with a = 5000, z = 0.5: 2⁵⁰⁰⁰ ≈ 10¹⁵⁰⁵, far beyond f64.
        let got = ln_hyp2f1(5000.0, 4000.0, 4000.0, 0.5).unwrap();
        assert!((got - 5000.0 * 2f64.ln()).abs() < 1e-8 * got, "{got}");
        assert_eq!(hyp2f1_signed(5000.0, 4000.0, 4000.0, 0.5), None);
    }

    #[test]
    fn log_sums() {
        assert!((ln_add_exp(2f64.ln(), 3f64.ln()) - 5f64.ln()).abs() < 1e-15);
        assert!((ln_diff_exp(5f64.ln(), 3f64.ln()) - 2f64.ln()).abs() < 1e-15);
        assert_eq!(ln_diff_exp(1.0, 1.0), f64::NEG_INFINITY);
        assert_eq!(ln_add_exp(f64::NEG_INFINITY, f64::NEG_INFINITY), f64::NEG_INFINITY);
    }
}
