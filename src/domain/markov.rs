//! Transition counts between consecutive periods and the smoothed transition matrix.

use super::segment::Borrow;
use serde::{Deserialize, Serialize};

/// Counts of moves between states, pooled and per period. Mergeable: counts from shards add.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransitionCounts {
    n: usize,
    /// `pooled[i][j]`: moves from state i in some period to state j in the next.
    pooled: Vec<Vec<u64>>,
    /// `by_period[t][i][j]`: moves from period t to period t + 1.
    by_period: Vec<Vec<Vec<u64>>>,
}

impl TransitionCounts {
    /// Empty counts for `n` states over `periods` periods (`periods - 1` steps).
    pub fn new(n: usize, periods: usize) -> Self {
        Self {
            n,
            pooled: vec![vec![0; n]; n],
            by_period: vec![vec![vec![0; n]; n]; periods.saturating_sub(1)],
        }
    }

    /// Records a move from `from` in period `t` to `to` in period `t + 1`.
    #[inline]
    pub fn record(&mut self, t: usize, from: usize, to: usize) {
        self.pooled[from][to] += 1;
        self.by_period[t][from][to] += 1;
    }

    /// Adds counts from another shard.
    pub fn merge(&mut self, other: &TransitionCounts) {
        assert_eq!(self.n, other.n);
        for (a, b) in self.pooled.iter_mut().zip(&other.pooled) {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        }
        for (pa, pb) in self.by_period.iter_mut().zip(&other.by_period) {
            for (a, b) in pa.iter_mut().zip(pb) {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
            }
        }
    }

    pub fn pooled(&self) -> &[Vec<u64>] {
        &self.pooled
    }

    pub fn by_period(&self) -> &[Vec<Vec<u64>>] {
        &self.by_period
    }

    pub fn total(&self) -> u64 {
        self.pooled.iter().flatten().sum()
    }
}

/// Parameters of the transition fit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransitionParams {
    /// Additive (Dirichlet) prior count on every move the scheme allows.
    pub prior: f64,
}

/// A fitted transition matrix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransitionModel {
    states: Vec<String>,
    prior: f64,
    allowed: Vec<Vec<bool>>,
    counts: Vec<Vec<u64>>,
    matrix: Vec<Vec<f64>>,
    /// States with no observed move out of them; their rows are not evidence (see `fit`).
    unobserved_origins: Vec<String>,
    /// For each unobserved inactive origin, the observed inactive state whose purchase
    /// probabilities it borrowed.
    borrowed_from: Vec<Option<String>>,
}

/// Errors in transition parameters.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TransitionError {
    #[error("transitions.prior: must be a finite number ≥ 0, got {0}")]
    BadPrior(f64),
}

impl TransitionParams {
    pub fn check(&self) -> Result<(), TransitionError> {
        if !self.prior.is_finite() || self.prior < 0.0 {
            return Err(TransitionError::BadPrior(self.prior));
        }
        Ok(())
    }
}

impl TransitionModel {
    /// Smoothed maximum likelihood: p_ij = (n_ij + α·a_ij) / (n_i + α·Σ_j a_ij), where a_ij = 1
    /// for moves the scheme allows and α is the prior.
    ///
    /// A row never observed as an origin is reported as unobserved. If one of the states in
    /// `borrow[i].from` (inactive states of shorter inactivity, nearest first) was observed, it
    /// borrows the first such state's purchase probabilities (moves into states not marked
    /// `inactive`) and puts the rest on its own no-purchase move(s) `borrow[i].rest_to`: a
    /// customer silent for longer is assumed no likelier to return than one silent for less —
    /// e.g. `lapsed` on a short history where nobody has lapsed yet. Otherwise its row is the
    /// prior alone (uniform over allowed moves).
    pub fn fit(
        states: Vec<String>,
        allowed: Vec<Vec<bool>>,
        counts: &[Vec<u64>],
        inactive: &[bool],
        borrow: &[Borrow],
        params: TransitionParams,
    ) -> Self {
        let alpha = params.prior;
        let mut matrix = Vec::with_capacity(states.len());
        let mut unobserved = Vec::new();
        for (i, row) in counts.iter().enumerate() {
            let a = &allowed[i];
            let n_i: u64 = row.iter().sum();
            if n_i == 0 {
                unobserved.push(states[i].clone());
            }
            let n_allowed = a.iter().filter(|x| **x).count() as f64;
            let denom = n_i as f64 + alpha * n_allowed;
            let p: Vec<f64> = if denom > 0.0 {
                row.iter().zip(a).map(|(&n, &ok)| (n as f64 + if ok { alpha } else { 0.0 }) / denom).collect()
            } else {
                a.iter().map(|&ok| if ok { 1.0 / n_allowed } else { 0.0 }).collect()
            };
            matrix.push(p);
        }
        let observed: Vec<bool> = counts.iter().map(|r| r.iter().sum::<u64>() > 0).collect();
        let mut borrowed_from = vec![None; states.len()];
        for i in 0..states.len() {
            if observed[i] {
                continue;
            }
            let Some(&b) = borrow[i].from.iter().find(|&&b| observed[b]) else { continue };
            let stay = &borrow[i].rest_to;
            if stay.is_empty() {
                continue;
            }
            let buy: f64 = (0..states.len()).filter(|&j| !inactive[j] && allowed[i][j]).map(|j| matrix[b][j]).sum();
            let mut row = vec![0.0; states.len()];
            for j in (0..states.len()).filter(|&j| !inactive[j] && allowed[i][j]) {
                row[j] = matrix[b][j];
            }
            for &j in stay {
                row[j] = (1.0 - buy) / stay.len() as f64;
            }
            matrix[i] = row;
            borrowed_from[i] = Some(states[b].clone());
        }
        Self {
            states,
            prior: alpha,
            allowed,
            counts: counts.to_vec(),
            matrix,
            unobserved_origins: unobserved,
            borrowed_from,
        }
    }

    /// For each state: the observed inactive state whose purchase probabilities it borrowed.
    pub fn borrowed_from(&self) -> &[Option<String>] {
        &self.borrowed_from
    }

    pub fn states(&self) -> &[String] {
        &self.states
    }

    pub fn matrix(&self) -> &[Vec<f64>] {
        &self.matrix
    }

    pub fn counts(&self) -> &[Vec<u64>] {
        &self.counts
    }

    pub fn allowed(&self) -> &[Vec<bool>] {
        &self.allowed
    }

    pub fn prior(&self) -> f64 {
        self.prior
    }

    pub fn unobserved_origins(&self) -> &[String] {
        &self.unobserved_origins
    }

    /// Observed moves out of each state.
    pub fn row_totals(&self) -> Vec<u64> {
        self.counts.iter().map(|r| r.iter().sum()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("s{i}")).collect()
    }

    #[test]
    fn smoothing_adds_the_prior_only_to_allowed_moves() {
        let allowed = vec![vec![true, true, false], vec![true, true, true], vec![false, false, true]];
        let counts = vec![vec![3, 1, 0], vec![0, 0, 0], vec![0, 0, 5]];
        let m = TransitionModel::fit(names(3), allowed, &counts, &[false; 3], &vec![Borrow::default(); 3], TransitionParams { prior: 1.0 });
        // Row 0: (3+1)/(4+2), (1+1)/(4+2), 0.
        assert_eq!(m.matrix()[0], vec![4.0 / 6.0, 2.0 / 6.0, 0.0]);
        // Row 1: no counts, prior only.
        assert_eq!(m.matrix()[1], vec![1.0 / 3.0; 3]);
        assert_eq!(m.matrix()[2], vec![0.0, 0.0, 1.0]);
        assert_eq!(m.unobserved_origins(), ["s1"]);
    }

    #[test]
    fn every_row_sums_to_one_even_without_a_prior() {
        let allowed = vec![vec![true; 4]; 4];
        let counts = vec![vec![1, 2, 3, 4], vec![0; 4], vec![7, 0, 0, 0], vec![0, 0, 0, 9]];
        let m = TransitionModel::fit(names(4), allowed, &counts, &[false; 4], &vec![Borrow::default(); 4], TransitionParams { prior: 0.0 });
        for row in m.matrix() {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        assert_eq!(m.matrix()[0][3], 0.4);
    }

    #[test]
    fn an_unobserved_lapsed_row_borrows_the_purchase_probabilities_of_dormant() {
        // States: new, buyer, dormant, lapsed.
        let allowed = vec![
            vec![false, true, true, false],
            vec![false, true, true, false],
            vec![false, true, false, true],
            vec![false, true, false, true],
        ];
        let counts = vec![vec![0, 5, 5, 0], vec![0, 6, 4, 0], vec![0, 1, 0, 3], vec![0, 0, 0, 0]];
        let m = TransitionModel::fit(names(4), allowed, &counts, &[false, false, true, true], &[Borrow::default(), Borrow::default(), Borrow::default(), Borrow { from: vec![2], rest_to: vec![3] }], TransitionParams { prior: 0.0 });
        assert_eq!(m.matrix()[3], vec![0.0, 0.25, 0.0, 0.75]);
        assert_eq!(m.borrowed_from()[3].as_deref(), Some("s2"));
        assert_eq!(m.unobserved_origins(), ["s3"]);
    }

    #[test]
    fn counts_from_shards_merge_to_the_counts_of_the_whole() {
        let mut a = TransitionCounts::new(2, 3);
        let mut b = TransitionCounts::new(2, 3);
        a.record(0, 0, 1);
        b.record(1, 0, 1);
        b.record(1, 1, 1);
        a.merge(&b);
        assert_eq!(a.pooled(), &[vec![0, 2], vec![0, 1]]);
        assert_eq!(a.by_period()[1], vec![vec![0, 1], vec![0, 1]]);
        assert_eq!(a.total(), 3);
    }
}
