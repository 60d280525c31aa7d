//! The smoothed transition matrix: the one Dirichlet smoothing of count rows, the fit (with
//! borrowed rows for unobserved inactive origins), credible intervals and the posterior.

use crate::domain::states::Borrow;
use serde::{Deserialize, Serialize};

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
    /// Level of the credible intervals (0.9: from the 5% to the 95% posterior quantile).
    credible_level: f64,
    /// Lower and upper ends of each probability's equal-tailed credible interval: the Beta
    /// marginals of the row's Dirichlet posterior (counts + prior on allowed moves).
    interval_lo: Vec<Vec<f64>>,
    interval_hi: Vec<Vec<f64>>,
}

/// The Dirichlet posterior of one row: its counts plus the prior α on every move the scheme
/// allows — the one smoothing behind the matrix, its credible intervals and posterior draws,
/// the covariate models' baseline and the recent-window check. A row with neither counts nor
/// prior gets a flat Dirichlet over its allowed moves.
pub fn dirichlet_row(counts: &[u64], allowed: &[bool], prior: f64) -> Vec<f64> {
    let row: Vec<f64> = counts.iter().zip(allowed).map(|(&n, &ok)| n as f64 + if ok { prior } else { 0.0 }).collect();
    if row.iter().sum::<f64>() > 0.0 { row } else { allowed.iter().map(|&ok| f64::from(u8::from(ok))).collect() }
}

/// The smoothed maximum likelihood row, the mean of [`dirichlet_row`]:
/// p_ij = (n_ij + α·a_ij) / (n_i + α·Σ_j a_ij), a_ij = 1 for allowed moves; all zeros for a row
/// with no allowed move.
pub fn smoothed_row(counts: &[u64], allowed: &[bool], prior: f64) -> Vec<f64> {
    let d = dirichlet_row(counts, allowed, prior);
    let total: f64 = d.iter().sum();
    d.iter().map(|x| if total > 0.0 { x / total } else { 0.0 }).collect()
}

/// [`smoothed_row`] of every row.
pub fn smoothed_rows(counts: &[Vec<u64>], allowed: &[Vec<bool>], prior: f64) -> Vec<Vec<f64>> {
    counts.iter().zip(allowed).map(|(row, ok)| smoothed_row(row, ok, prior)).collect()
}

/// Level of the credible intervals reported on transition probabilities.
pub const CREDIBLE_LEVEL: f64 = 0.9;

/// Equal-tailed credible interval of a Beta(a, b) marginal; degenerate shapes give points.
fn beta_interval(a: f64, b: f64, level: f64) -> (f64, f64) {
    use crate::domain::quantile::beta_quantile;
    match (a > 0.0, b > 0.0) {
        (false, _) => (0.0, 0.0),
        (true, false) => (1.0, 1.0),
        (true, true) => {
            let tail = (1.0 - level) / 2.0;
            (beta_quantile(a, b, tail), beta_quantile(a, b, 1.0 - tail))
        }
    }
}

/// Errors in transition parameters.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TransitionError {
    #[error("transitions.prior: must be a finite number between 0 and 1e6, got {0}")]
    BadPrior(f64),
}

/// The largest prior count accepted per allowed move: far beyond any useful smoothing, and small
/// enough that the Beta shapes of the intervals stay finite.
pub const MAX_PRIOR: f64 = 1e6;

impl TransitionParams {
    pub fn check(&self) -> Result<(), TransitionError> {
        if !self.prior.is_finite() || self.prior < 0.0 || self.prior > MAX_PRIOR {
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
        // Dirichlet posterior parameters of each row.
        let mut post: Vec<Vec<f64>> = Vec::with_capacity(states.len());
        let mut unobserved = Vec::new();
        for (i, row) in counts.iter().enumerate() {
            let a = &allowed[i];
            let n_i: u64 = row.iter().sum();
            if n_i == 0 {
                unobserved.push(states[i].clone());
            }
            let dirichlet = dirichlet_row(row, a, alpha);
            let total: f64 = dirichlet.iter().sum();
            matrix.push(dirichlet.iter().map(|x| x / total).collect());
            post.push(dirichlet);
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
            // The source row's posterior on purchase moves; its remaining mass on our own
            // no-purchase move(s).
            let buy_cells: Vec<usize> = (0..states.len()).filter(|&j| !inactive[j] && allowed[i][j]).collect();
            let source_total: f64 = post[b].iter().sum();
            let buy_mass: f64 = buy_cells.iter().map(|&j| post[b][j]).sum();
            let mut dirichlet = vec![0.0; states.len()];
            for &j in &buy_cells {
                dirichlet[j] = post[b][j];
            }
            for &j in stay {
                dirichlet[j] = (source_total - buy_mass) / stay.len() as f64;
            }
            let total: f64 = dirichlet.iter().sum();
            matrix[i] = dirichlet.iter().map(|x| x / total).collect();
            post[i] = dirichlet;
            borrowed_from[i] = Some(states[b].clone());
        }
        let mut interval_lo = vec![vec![0.0; states.len()]; states.len()];
        let mut interval_hi = vec![vec![0.0; states.len()]; states.len()];
        for (i, row) in post.iter().enumerate() {
            let total: f64 = row.iter().sum();
            for (j, &a) in row.iter().enumerate() {
                let (lo, hi) = beta_interval(a, total - a, CREDIBLE_LEVEL);
                interval_lo[i][j] = lo;
                interval_hi[i][j] = hi;
            }
        }
        Self {
            states,
            prior: alpha,
            allowed,
            counts: counts.to_vec(),
            matrix,
            unobserved_origins: unobserved,
            borrowed_from,
            credible_level: CREDIBLE_LEVEL,
            interval_lo,
            interval_hi,
        }
    }

    /// Level of [`Self::interval`].
    pub fn credible_level(&self) -> f64 {
        self.credible_level
    }

    /// The credible interval of p_ij.
    pub fn interval(&self, i: usize, j: usize) -> (f64, f64) {
        (self.interval_lo[i][j], self.interval_hi[i][j])
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

    /// The Dirichlet posterior of each row: counts plus the prior on allowed moves (a flat
    /// Dirichlet over the allowed moves for a row with neither); a row that borrowed another's
    /// purchase probabilities carries that row's total, spread as its own matrix row.
    pub fn posterior(&self) -> Vec<Vec<f64>> {
        let own = |i: usize| dirichlet_row(&self.counts[i], &self.allowed[i], self.prior);
        (0..self.states.len())
            .map(|i| match self.borrowed_from[i].as_ref().and_then(|b| self.states.iter().position(|s| s == b)) {
                Some(b) => {
                    let total: f64 = own(b).iter().sum();
                    self.matrix[i].iter().map(|p| p * total).collect()
                }
                None => own(i),
            })
            .collect()
    }

    /// Observed moves out of each state.
    pub fn row_totals(&self) -> Vec<u64> {
        self.counts.iter().map(|r| r.iter().sum()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 13, item 2: an origin with ~8M moves and a rare destination (statrs'
    /// `inv_beta_reg` never returned for these shapes) gets its interval at once.
    #[test]
    fn the_interval_of_a_rare_move_from_a_huge_origin_finishes() {
        for &(a, b) in &[(0.5, 8e6), (1.5, 8.2e6), (3.0, 7.9e6), (8e6, 0.5), (4e6, 4e6), (0.01, 1e9)] {
            let (lo, hi) = beta_interval(a, b, CREDIBLE_LEVEL);
            assert!(0.0 <= lo && lo < a / (a + b).max(1.0) + 1e-9 && lo < hi && hi <= 1.0, "Beta({a}, {b}): {lo} {hi}");
        }
    }

    #[test]
    fn the_posterior_reproduces_the_matrix_and_its_intervals() {
        let states = names(3);
        let allowed = vec![vec![true; 3]; 3];
        let counts = vec![vec![5, 3, 2], vec![1, 0, 0], vec![0, 0, 0]];
        let borrow = vec![
            Borrow { from: vec![], rest_to: vec![] },
            Borrow { from: vec![], rest_to: vec![] },
            Borrow { from: vec![1], rest_to: vec![2] },
        ];
        let m = TransitionModel::fit(
            states,
            allowed,
            &counts,
            &[false, true, true],
            &borrow,
            TransitionParams { prior: 0.5 },
        );
        assert_eq!(m.borrowed_from()[2].as_deref(), Some("s1"));
        for (i, row) in m.posterior().iter().enumerate() {
            let total: f64 = row.iter().sum();
            for (j, a) in row.iter().enumerate() {
                assert!((a / total - m.matrix()[i][j]).abs() < 1e-12, "row {i}");
                let (lo, hi) = beta_interval(*a, total - a, CREDIBLE_LEVEL);
                assert!((lo - m.interval(i, j).0).abs() < 1e-9 && (hi - m.interval(i, j).1).abs() < 1e-9, "{i},{j}");
            }
        }
    }

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("s{i}")).collect()
    }

    #[test]
    fn smoothing_adds_the_prior_only_to_allowed_moves() {
        let allowed = vec![vec![true, true, false], vec![true, true, true], vec![false, false, true]];
        let counts = vec![vec![3, 1, 0], vec![0, 0, 0], vec![0, 0, 5]];
        let m = TransitionModel::fit(
            names(3),
            allowed,
            &counts,
            &[false; 3],
            &vec![Borrow::default(); 3],
            TransitionParams { prior: 1.0 },
        );
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
        let m = TransitionModel::fit(
            names(4),
            allowed,
            &counts,
            &[false; 4],
            &vec![Borrow::default(); 4],
            TransitionParams { prior: 0.0 },
        );
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
        let m = TransitionModel::fit(
            names(4),
            allowed,
            &counts,
            &[false, false, true, true],
            &[Borrow::default(), Borrow::default(), Borrow::default(), Borrow { from: vec![2], rest_to: vec![3] }],
            TransitionParams { prior: 0.0 },
        );
        assert_eq!(m.matrix()[3], vec![0.0, 0.25, 0.0, 0.75]);
        assert_eq!(m.borrowed_from()[3].as_deref(), Some("s2"));
        assert_eq!(m.unobserved_origins(), ["s3"]);
    }

    #[test]
    fn intervals_are_the_beta_marginals_of_the_dirichlet_posterior() {
        let allowed = vec![vec![true, true], vec![true, true]];
        let counts = vec![vec![30, 70], vec![0, 0]];
        let m = TransitionModel::fit(
            names(2),
            allowed,
            &counts,
            &[false; 2],
            &vec![Borrow::default(); 2],
            TransitionParams { prior: 0.5 },
        );
        // Row 0: Beta(30.5, 70.5): mean 0.302, 90% interval by the normal approximation
        // 0.302 ± 1.645·sqrt(0.302·0.698/102.0) = (0.227, 0.377).
        let (lo, hi) = m.interval(0, 0);
        assert!((lo - 0.229).abs() < 0.005 && (hi - 0.378).abs() < 0.005, "{lo} {hi}");
        assert!(lo < m.matrix()[0][0] && m.matrix()[0][0] < hi);
        // Complementary cells of a two-way row mirror each other.
        let (lo1, hi1) = m.interval(0, 1);
        assert!((lo1 - (1.0 - hi)).abs() < 1e-9 && (hi1 - (1.0 - lo)).abs() < 1e-9);
        // An unobserved row: the prior Beta(0.5, 0.5) alone, nearly the whole unit interval.
        let (lo, hi) = m.interval(1, 0);
        assert!(lo < 0.01 && hi > 0.99);
    }
}
