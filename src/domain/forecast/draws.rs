//! The random parts of the intervals: Dirichlet draws of a transition matrix, multinomial
//! moves of whole customers, per-draw generators, and equal-tailed summaries of draws.

use rand::{Rng, SeedableRng};
use rand_distr::{Binomial, Distribution, Gamma};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

/// An interval: lower and upper end.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    pub const fn point(x: f64) -> Self {
        Self { lo: x, hi: x }
    }

    pub fn contains(&self, x: f64) -> bool {
        self.lo <= x && x <= self.hi
    }
}

/// The equal-tailed interval of `values` at `level` (linear interpolation between order
/// statistics, R's type 7). Reorders `values`.
pub fn equal_tailed(values: &mut [f64], level: f64) -> Interval {
    match values.len() {
        0 => return Interval::point(f64::NAN),
        1 => return Interval::point(values[0]),
        _ => {}
    }
    let tail = (1.0 - level) / 2.0;
    Interval { lo: quantile(values, tail), hi: quantile(values, 1.0 - tail) }
}

/// The q-quantile (type 7) by selection, O(n).
fn quantile(values: &mut [f64], q: f64) -> f64 {
    let pos = q * (values.len() - 1) as f64;
    let k = pos.floor() as usize;
    let frac = pos - k as f64;
    let (_, &mut a, rest) = values.select_nth_unstable_by(k, f64::total_cmp);
    if frac == 0.0 || rest.is_empty() {
        return a;
    }
    let b = rest.iter().copied().min_by(f64::total_cmp).unwrap_or(a);
    a + frac * (b - a)
}

/// A generator for draw `d` of a run seeded with `seed`.
pub(crate) fn rng_for(seed: u64, d: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed ^ d.wrapping_add(1).wrapping_mul(crate::domain::sampling::GOLDEN))
}

/// One transition matrix from the rows' Dirichlet posteriors (normalised Gamma draws; cells
/// with parameter 0 stay 0).
pub fn draw_matrix(posterior: &[Vec<f64>], rng: &mut impl Rng) -> Vec<Vec<f64>> {
    posterior
        .iter()
        .map(|row| {
            let mut out: Vec<f64> = row
                .iter()
                .map(|&a| if a > 0.0 { Gamma::new(a, 1.0).expect("positive shape").sample(rng) } else { 0.0 })
                .collect();
            let total: f64 = out.iter().sum();
            if total > 0.0 {
                out.iter_mut().for_each(|x| *x /= total);
            } else {
                // Shapes so small that every Gamma draw underflowed: fall back to the mean.
                let t: f64 = row.iter().sum();
                out = row.iter().map(|a| a / t).collect();
            }
            out
        })
        .collect()
}

/// Adds a Multinomial(n, p) draw to `out` (sequential conditional binomials).
pub(crate) fn multinomial(n: u64, p: &[f64], out: &mut [u64], rng: &mut impl Rng) {
    let mut left = n;
    let mut mass = 1.0;
    for (j, &pj) in p.iter().enumerate() {
        if left == 0 {
            break;
        }
        if pj <= 0.0 {
            continue;
        }
        let q = (pj / mass).clamp(0.0, 1.0);
        let x = if q >= 1.0 { left } else { Binomial::new(left, q).expect("0 ≤ q ≤ 1").sample(rng) };
        out[j] += x;
        left -= x;
        mass -= pj;
        if mass <= 0.0 {
            out[j] += left;
            left = 0;
        }
    }
    if left > 0 {
        // Rounding left some mass unassigned: it stays with the last possible destination.
        if let Some(j) = p.iter().rposition(|&x| x > 0.0) {
            out[j] += left;
        }
    }
}

/// The standard normal quantile at (1 + level) / 2.
pub(crate) fn z_quantile(level: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, Normal};
    Normal::new(0.0, 1.0).expect("standard normal").inverse_cdf((1.0 + level) / 2.0)
}
