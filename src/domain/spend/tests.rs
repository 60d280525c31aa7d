//! Unit tests of the spend models, worked by hand or recovered from generated data.

use super::tweedie::irls_pass;
use super::*;
use crate::domain::metrics::SpendErrors;
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
        let x: Vec<f64> = (0..k).map(|j| if j == 0 { (next() < 0.3) as u8 as f64 } else { 10.0 * next() }).collect();
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
            let y = if rng.uniform() < 0.3 { 0.0 } else { mu / 0.7 * 0.5 * (rng.exponential() + rng.exponential()) };
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
            let y = if rng.uniform() < 0.3 { 0.0 } else { mu / 0.7 * 0.5 * (rng.exponential() + rng.exponential()) };
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
    let rmse = |k: SpendModelKind| sel.candidates.iter().find(|c| c.model == k).unwrap().held_out.clone().unwrap().rmse;
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
