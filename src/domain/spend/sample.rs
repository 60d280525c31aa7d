//! The deterministic sample of customer-periods that the fits needing rows use.

use super::SpendDesign;
use crate::domain::panel::RFM_FEATURES;
use crate::domain::sampling;

/// A deterministic sample of customer-periods kept in memory for the fits that need the rows
/// (smearing, the GLM, held-out scores): per row the state, the dense features after the state
/// indicators (RFM, attributes) and the next-period spend.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpendSample {
    /// Number of state indicators in the design (states − 1).
    pub(super) indicators: usize,
    /// Dense features per row (RFM + attributes).
    pub(super) width: usize,
    pub(super) state: Vec<u32>,
    pub(super) dense: Vec<f64>,
    pub(super) target: Vec<f64>,
}

/// Customer-periods the fitting sample holds at most (see [`sample_rate`]).
pub const FIT_SAMPLE: u64 = 200_000;
/// Held-out customer-periods scored at most.
pub const HELD_OUT_SAMPLE: u64 = 100_000;

/// The share of `rows` to keep so that about `at_most` are kept (1 when all fit).
pub fn sample_rate(rows: u64, at_most: u64) -> f64 {
    if rows <= at_most { 1.0 } else { at_most as f64 / rows as f64 }
}

/// A uniform number in [0, 1) from a customer number and a period
/// ([`crate::domain::sampling`]): the same customer-period always gets the same number, so
/// samples do not depend on threads.
pub fn sample_key(customer: u64, period: u32) -> f64 {
    sampling::unit_interval(sampling::customer_period_key(customer, period))
}

impl SpendSample {
    pub fn new(design: &SpendDesign) -> Self {
        Self {
            indicators: design.states.len() - 1,
            width: RFM_FEATURES.len() + design.attributes.len(),
            ..Self::default()
        }
    }

    /// Adds a row: features laid out by [`SpendDesign::features`] for `state`, next-period spend.
    pub fn push(&mut self, state: usize, features: &[f64], target: f64) {
        self.state.push(state as u32);
        self.dense.extend_from_slice(&features[self.indicators..]);
        self.target.push(target);
    }

    pub fn append(&mut self, other: &SpendSample) {
        self.state.extend_from_slice(&other.state);
        self.dense.extend_from_slice(&other.dense);
        self.target.extend_from_slice(&other.target);
    }

    pub fn len(&self) -> usize {
        self.target.len()
    }

    pub fn is_empty(&self) -> bool {
        self.target.is_empty()
    }

    /// Writes row `i`'s features into `out` (length of the design).
    pub fn features(&self, i: usize, out: &mut [f64]) {
        let k = self.indicators;
        out[..k].fill(0.0);
        let s = self.state[i] as usize;
        if s > 0 {
            out[s - 1] = 1.0;
        }
        out[k..].copy_from_slice(&self.dense[i * self.width..(i + 1) * self.width]);
    }

    /// Row `i`'s non-zero parameters as (index, value), the intercept (index 0) first.
    pub fn non_zero(&self, i: usize, out: &mut Vec<(usize, f64)>) {
        out.clear();
        out.push((0, 1.0));
        let s = self.state[i] as usize;
        if s > 0 {
            out.push((s, 1.0));
        }
        let base = 1 + self.indicators;
        let row = &self.dense[i * self.width..(i + 1) * self.width];
        out.extend(row.iter().enumerate().filter(|(_, v)| **v != 0.0).map(|(j, v)| (base + j, *v)));
    }

    /// Row `i`'s next-period spend.
    pub fn target(&self, i: usize) -> f64 {
        self.target[i]
    }
}
