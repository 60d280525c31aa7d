//! "Buy 'til you die" models fitted on the customers' (x, t_x, T) summaries: x repeat purchases,
//! the last at t_x, over an observation period of length T since the first purchase.
//! [`bgnbd`]: the BG/NBD model (Fader, Hardie & Lee 2005); [`pareto_nbd`]: the Pareto/NBD model
//! (Schmittlein, Morrison & Colombo 1987); [`gamma_gamma`]: spend per purchase. Summaries are
//! grouped by identical tuples ([`group`]), so a fit costs one term per distinct tuple, not per
//! customer. Each is checked against the published CDNOW parameters (`tests/btyd.rs`).

pub mod baselines;
pub mod bgnbd;
pub mod blend;
pub mod gamma_gamma;
pub mod hypergeometric;
pub mod pareto_nbd;
pub mod tiers_ahead;

use crate::domain::shards::Parallel;

/// One customer's (or, weighted, several identical customers') purchase summary.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Repeat purchases (occasions after the first).
    pub x: f64,
    /// Time of the last purchase since the first (0 without repeats).
    pub t_x: f64,
    /// Length of the observation period since the first purchase.
    pub t: f64,
    /// How many customers share this summary.
    pub weight: f64,
}

/// What a fitted purchase model (BG/NBD, Pareto/NBD) forecasts for a customer with summary `s`
/// over the next `t` (the summaries' time unit).
pub trait PurchaseModel {
    fn p_alive(&self, s: &Summary) -> f64;
    fn expected_purchases(&self, s: &Summary, t: f64) -> f64;
    fn p_no_purchase(&self, s: &Summary, t: f64) -> f64;
}

impl PurchaseModel for bgnbd::BgNbd {
    fn p_alive(&self, s: &Summary) -> f64 {
        self.p_alive(s)
    }
    fn expected_purchases(&self, s: &Summary, t: f64) -> f64 {
        self.expected_purchases(s, t)
    }
    fn p_no_purchase(&self, s: &Summary, t: f64) -> f64 {
        self.p_no_purchase(s, t)
    }
}

impl PurchaseModel for pareto_nbd::ParetoNbd {
    fn p_alive(&self, s: &Summary) -> f64 {
        self.p_alive(s)
    }
    fn expected_purchases(&self, s: &Summary, t: f64) -> f64 {
        self.expected_purchases(s, t)
    }
    fn p_no_purchase(&self, s: &Summary, t: f64) -> f64 {
        self.p_no_purchase(s, t)
    }
}

/// Why summaries cannot be fitted.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum BtydError {
    #[error("no customer to fit")]
    Empty,
    #[error(
        "summary {index}: need 0 ≤ t_x ≤ T, x ≥ 0, a whole x and t_x > 0 when x > 0; got x = {x}, t_x = {t_x}, T = {t}"
    )]
    BadSummary { index: usize, x: f64, t_x: f64, t: f64 },
    #[error("the likelihood did not reach a finite maximum")]
    NoMaximum,
    #[error("not fitted")]
    NotFitted,
}

/// Checks `summaries` and merges identical (x, t_x, T) tuples, adding their weights; sorted.
pub fn group(summaries: &[Summary]) -> Result<Vec<Summary>, BtydError> {
    if summaries.is_empty() {
        return Err(BtydError::Empty);
    }
    for (index, s) in summaries.iter().enumerate() {
        let ok = s.x >= 0.0
            && s.x.fract() == 0.0
            && s.t_x >= 0.0
            && s.t_x <= s.t
            && s.t >= 0.0
            && (s.x == 0.0 || s.t_x > 0.0)
            && s.weight > 0.0
            && [s.x, s.t_x, s.t, s.weight].iter().all(|v| v.is_finite());
        if !ok {
            return Err(BtydError::BadSummary { index, x: s.x, t_x: s.t_x, t: s.t });
        }
    }
    let mut sorted = summaries.to_vec();
    sorted.sort_by(|a, b| (a.x, a.t_x, a.t).partial_cmp(&(b.x, b.t_x, b.t)).expect("finite"));
    let mut out: Vec<Summary> = Vec::with_capacity(sorted.len());
    for s in sorted {
        match out.last_mut() {
            Some(last) if (last.x, last.t_x, last.t) == (s.x, s.t_x, s.t) => last.weight += s.weight,
            _ => out.push(s),
        }
    }
    Ok(out)
}

/// Σ weight · `term(summary)` over `grouped`, summed per shard on `par` and then in shard order.
pub(crate) fn sharded_sum(par: &impl Parallel, grouped: &[Summary], term: impl Fn(&Summary) -> f64 + Sync) -> f64 {
    par.in_shards(grouped.len(), |r| grouped[r].iter().map(|c| c.weight * term(c)).sum::<f64>()).into_iter().sum()
}

/// A maximum-likelihood fit: the estimate, its standard errors and the maximum.
pub(crate) type Fitted<const N: usize> = ([f64; N], [Option<f64>; N], f64);

/// Maximum likelihood for a model whose `N` parameters are all positive: maximizes
/// `log_likelihood(params)` over their logarithms from all ones, and returns the estimate, its
/// standard errors (observed information on the natural scale) and the maximum.
pub(crate) fn fit_positive<const N: usize>(log_likelihood: impl Fn(&[f64]) -> f64) -> Result<Fitted<N>, BtydError> {
    fit_positive_capped(log_likelihood, [f64::INFINITY; N], [1.0; N])
}

/// [`fit_positive`] with parameter i held below `caps[i]` (∞: no cap) by the smooth map
/// pᵢ = 1 / (e^−uᵢ + 1/capᵢ) of the free variable uᵢ, which is pᵢ = e^uᵢ where pᵢ ≪ capᵢ: for a
/// shape parameter whose likelihood has no interior maximum (a heterogeneity the data cannot
/// tell from none, so the optimizer would walk to infinity along a ridge). The estimate then
/// sits just below the cap, where the model is the homogeneous limit to within 1/√cap in CV.
/// The search starts at `start` (each below its cap), on the data's scale where the model has
/// scale parameters: a start far from it sends the first line searches to extreme values.
pub(crate) fn fit_positive_capped<const N: usize>(
    log_likelihood: impl Fn(&[f64]) -> f64,
    caps: [f64; N],
    start: [f64; N],
) -> Result<Fitted<N>, BtydError> {
    let natural = |p: &[f64]| if p.iter().any(|v| *v <= 0.0) { f64::INFINITY } else { -log_likelihood(p) };
    let from_free = |u: &[f64]| -> [f64; N] {
        std::array::from_fn(|i| if caps[i].is_finite() { 1.0 / ((-u[i]).exp() + 1.0 / caps[i]) } else { u[i].exp() })
    };
    let to_free: [f64; N] =
        std::array::from_fn(
            |i| if caps[i].is_finite() { -(1.0 / start[i] - 1.0 / caps[i]).ln() } else { start[i].ln() },
        );
    let free = minimize(|u: &[f64]| natural(&from_free(u)), &to_free)?;
    let params = from_free(&free);
    let se = standard_errors(natural, &params);
    Ok((params, std::array::from_fn(|i| se[i]), log_likelihood(&params)))
}

/// Minimizes `f` over ℝⁿ from `start`: L-BFGS (argmin, Moré–Thuente line search) on central
/// finite-difference gradients, ~25 iterations of 2n + 2 evaluations on the CDNOW fits; Nelder–Mead
/// (restarted until it stops moving) only where that does not converge.
fn minimize(f: impl Fn(&[f64]) -> f64, start: &[f64]) -> Result<Vec<f64>, BtydError> {
    use argmin::core::{CostFunction, Executor, Gradient, State, TerminationReason, TerminationStatus};
    use argmin::solver::linesearch::MoreThuenteLineSearch;
    use argmin::solver::neldermead::NelderMead;
    use argmin::solver::quasinewton::LBFGS;
    struct Problem<F>(F);
    impl<F: Fn(&[f64]) -> f64> CostFunction for Problem<F> {
        type Param = Vec<f64>;
        type Output = f64;
        fn cost(&self, p: &Vec<f64>) -> Result<f64, argmin::core::Error> {
            let v = (self.0)(p);
            Ok(if v.is_finite() { v } else { f64::MAX })
        }
    }
    impl<F: Fn(&[f64]) -> f64> Gradient for Problem<F> {
        type Param = Vec<f64>;
        type Gradient = Vec<f64>;
        fn gradient(&self, p: &Vec<f64>) -> Result<Vec<f64>, argmin::core::Error> {
            let mut q = p.clone();
            let mut g = vec![0.0; p.len()];
            for i in 0..p.len() {
                let h = 1e-6 * p[i].abs().max(1.0);
                q[i] = p[i] + h;
                let up = (self.0)(&q);
                q[i] = p[i] - h;
                let down = (self.0)(&q);
                q[i] = p[i];
                g[i] = (up - down) / (2.0 * h);
                if !g[i].is_finite() {
                    return Err(argmin::core::Error::msg("non-finite gradient"));
                }
            }
            Ok(g)
        }
    }
    let mut best = start.to_vec();
    // Scaled to O(1) at the start, so the first line search does not step to overflowing rates.
    let scale = f(start).abs().max(1.0);
    let scaled = |p: &[f64]| if p.iter().all(|v| v.abs() < 50.0) { f(p) / scale } else { f64::INFINITY };
    let lbfgs = LBFGS::new(MoreThuenteLineSearch::new(), 7)
        .with_tolerance_grad(1e-8)
        .and_then(|s| s.with_tolerance_cost(1e-15))
        .map_err(|_| BtydError::NoMaximum)?;
    let run = Executor::new(Problem(&scaled), lbfgs).configure(|s| s.param(start.to_vec()).max_iters(500)).run();
    let converged = match run {
        Ok(result) => {
            let state = result.state();
            let done = matches!(
                state.get_termination_status(),
                TerminationStatus::Terminated(TerminationReason::SolverConverged)
            );
            if let Some(found) = state.get_best_param().filter(|p| f(p).is_finite() && f(p) <= f(&best)) {
                best = found.clone();
            }
            done
        }
        Err(_) => false,
    };
    // Where the quasi-Newton run did not converge, Nelder–Mead from its best point, restarted
    // until it no longer moves (it can stall).
    for _ in 0..if converged { 0 } else { 4 } {
        let mut simplex = vec![best.clone()];
        for i in 0..best.len() {
            let mut p = best.clone();
            p[i] += 0.5;
            simplex.push(p);
        }
        let solver = NelderMead::new(simplex).with_sd_tolerance(1e-10).map_err(|_| BtydError::NoMaximum)?;
        let result = Executor::new(Problem(&f), solver)
            .configure(|s| s.max_iters(5000))
            .run()
            .map_err(|_| BtydError::NoMaximum)?;
        let found = result.state().get_best_param().cloned().ok_or(BtydError::NoMaximum)?;
        let moved = found.iter().zip(&best).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        best = found;
        if moved < 1e-7 {
            break;
        }
    }
    if !f(&best).is_finite() {
        return Err(BtydError::NoMaximum);
    }
    Ok(best)
}

/// Standard errors from the inverse of the numerical Hessian of `f` (a negative log-likelihood)
/// at its minimum `at`; `None` where the Hessian is not positive definite.
fn standard_errors(f: impl Fn(&[f64]) -> f64, at: &[f64]) -> Vec<Option<f64>> {
    let n = at.len();
    let h: Vec<f64> = at.iter().map(|x| 1e-4 * x.abs().max(1e-2)).collect();
    let eval = |d: &[(usize, f64)]| {
        let mut p = at.to_vec();
        for &(i, s) in d {
            p[i] += s;
        }
        f(&p)
    };
    let mut hess = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in i..n {
            let v = (eval(&[(i, h[i]), (j, h[j])]) - eval(&[(i, h[i]), (j, -h[j])]) - eval(&[(i, -h[i]), (j, h[j])])
                + eval(&[(i, -h[i]), (j, -h[j])]))
                / (4.0 * h[i] * h[j]);
            hess[i][j] = v;
            hess[j][i] = v;
        }
    }
    (0..n)
        .map(|i| {
            let mut e = vec![0.0; n];
            e[i] = 1.0;
            crate::domain::linalg::solve(hess.clone(), e).map(|col| col[i]).filter(|v| *v > 0.0).map(f64::sqrt)
        })
        .collect()
}
