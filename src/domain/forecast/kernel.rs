//! The one kernel of chain arithmetic: what a chain P with per-state value flows m says of a
//! customer starting in one state, for horizons 1..=H — the state distribution, first passage
//! into the lapsed states (churn), re-activation of a lapsed customer, the chain's expected
//! value flow, the expected periods to lapse and the discounted tails. The point forecast runs
//! it on the fitted matrix ([`super::Forecaster`]); the intervals run it on every posterior draw
//! ([`super::intervals`]).

use crate::domain::linalg::{mat_vec, solve, vec_mat};

/// Per-horizon quantities from one starting state (index h − 1).
#[derive(Clone, Debug, PartialEq)]
pub struct Paths {
    /// `distribution[h - 1][j]`: P(state j at horizon h).
    pub distribution: Vec<Vec<f64>>,
    /// `churn[h - 1]`: P(first reach a lapsed state by h); 1 from a lapsed state.
    pub churn: Vec<f64>,
    /// `reactivation[h - 1]`: for a lapsed starting state, P(left the lapsed states by h).
    pub reactivation: Option<Vec<f64>>,
    /// `chain_spend[h - 1]`: π_h·m, the chain's expected value flow at h.
    pub chain_spend: Vec<f64>,
}

/// The paths from state `s` over `horizon` periods.
pub fn paths(p: &[Vec<f64>], lapsed: &[bool], m: &[f64], s: usize, horizon: usize) -> Paths {
    let n = p.len();
    let mut pi = vec![0.0; n];
    pi[s] = 1.0;
    // Mass that has reached a lapsed state stays there (first passage).
    let mut reached = pi.clone();
    // Mass that has stayed within the lapsed states throughout.
    let mut stay = pi.clone();
    let mut out = Paths {
        distribution: Vec::with_capacity(horizon),
        churn: Vec::with_capacity(horizon),
        reactivation: lapsed[s].then(|| Vec::with_capacity(horizon)),
        chain_spend: Vec::with_capacity(horizon),
    };
    for _ in 0..horizon {
        pi = vec_mat(&pi, p);
        let mut next = vec![0.0; n];
        for (i, &a) in reached.iter().enumerate() {
            if a == 0.0 {
                continue;
            }
            if lapsed[i] {
                next[i] += a;
            } else {
                for (x, q) in next.iter_mut().zip(&p[i]) {
                    *x += a * q;
                }
            }
        }
        reached = next;
        out.chain_spend.push(pi.iter().zip(m).map(|(a, b)| a * b).sum());
        out.churn.push(if lapsed[s] {
            1.0
        } else {
            reached.iter().zip(lapsed).filter(|(_, l)| **l).map(|(x, _)| x).sum()
        });
        if let Some(r) = out.reactivation.as_mut() {
            stay = vec_mat(&stay, p);
            for (j, x) in stay.iter_mut().enumerate() {
                if !lapsed[j] {
                    *x = 0.0;
                }
            }
            r.push(1.0 - stay.iter().sum::<f64>());
        }
        out.distribution.push(pi.clone());
    }
    out
}

/// Expected periods until a lapsed state is first reached, per starting state: 0 from a lapsed
/// state, else the solution t of (I − Q) t = 1 over the other states; `None` where it is not a
/// finite non-negative number (a chain that never lapses).
pub fn periods_to_lapse(p: &[Vec<f64>], lapsed: &[bool]) -> Vec<Option<f64>> {
    let n = p.len();
    let others: Vec<usize> = (0..n).filter(|&i| !lapsed[i]).collect();
    let q: Vec<Vec<f64>> =
        others.iter().map(|&i| others.iter().map(|&j| f64::from(u8::from(i == j)) - p[i][j]).collect()).collect();
    let steps = solve(q, vec![1.0; others.len()]);
    (0..n)
        .map(|s| {
            if lapsed[s] {
                return Some(0.0);
            }
            let t = steps.as_ref()?[others.iter().position(|&i| i == s)?];
            (t.is_finite() && t >= 0.0 && t < 1e9).then_some(t)
        })
        .collect()
}

/// Infinite-horizon value per starting state, V = [I − P/(1+d)]⁻¹ m (Pfeifer & Carraway 2000):
/// the value flow m of the current period plus the discounted flows of all later ones. `None`
/// when the system is singular (d = 0 with a chain that never stops spending).
///
/// Pfeifer & Carraway's example: recency states 1–4, purchase probabilities .5, .2, .1, 0 (a
/// purchase returns the customer to state 1), m = (100, 0, 0, 0), d = 0.1:
///
/// ```
/// use kam::domain::forecast::pc_value;
/// let p = vec![
///     vec![0.5, 0.5, 0.0, 0.0],
///     vec![0.2, 0.0, 0.8, 0.0],
///     vec![0.1, 0.0, 0.0, 0.9],
///     vec![0.0, 0.0, 0.0, 1.0],
/// ];
/// let v = pc_value(&p, &[100.0, 0.0, 0.0, 0.0], 0.1).unwrap();
/// let rounded: Vec<f64> = v.iter().map(|x| (x * 100.0).round() / 100.0).collect();
/// assert_eq!(rounded, [231.08, 57.29, 21.01, 0.0]);
/// ```
pub fn pc_value(p: &[Vec<f64>], m: &[f64], d: f64) -> Option<Vec<f64>> {
    let n = m.len();
    let a: Vec<Vec<f64>> =
        (0..n).map(|i| (0..n).map(|j| f64::from(u8::from(i == j)) - p[i][j] / (1.0 + d)).collect()).collect();
    solve(a, m.to_vec())
}

/// Discounted flows after the first period, per starting state (`None` with d = 0 or a
/// singular system).
#[derive(Clone, Debug, PartialEq)]
pub struct Tails {
    /// Σ_{h ≥ 1} π_h·m / (1+d)^h = (P V)_s / (1+d).
    pub future: Vec<f64>,
    /// Σ_{h ≥ 2} π_h·m / (1+d)^h = (P² V)_s / (1+d)².
    pub beyond_first: Vec<f64>,
}

/// The discounted tails of chain `p` with flows `m` at rate `d` (see [`Tails`]).
pub fn tails(p: &[Vec<f64>], m: &[f64], d: f64) -> Option<Tails> {
    if d <= 0.0 {
        return None;
    }
    let v = pc_value(p, m, d)?;
    let pv = mat_vec(p, &v);
    let ppv = mat_vec(p, &pv);
    Some(Tails {
        future: pv.iter().map(|x| x / (1.0 + d)).collect(),
        beyond_first: ppv.iter().map(|x| x / ((1.0 + d) * (1.0 + d))).collect(),
    })
}
