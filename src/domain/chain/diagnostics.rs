//! Diagnostics of the chain's assumptions on the panel, beside the time-homogeneity test in
//! [`crate::domain::chain::fit`]: first- vs second-order (does the state before last change the next
//! move?), rows with too few observations to trust, and — for a chain that changes over time —
//! whether a chain fitted on recent periods only predicts the last period's moves better.

use crate::domain::chain::counts::sum_tables;
use crate::domain::chain::fit::{CREDIBLE_LEVEL, TransitionModel, smoothed_row};
use serde::{Deserialize, Serialize};

/// A chi-square test on the panel: statistic, degrees of freedom, p-value and a plain sentence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChiSquareTest {
    pub statistic: f64,
    pub df: f64,
    pub p_value: f64,
    pub verdict: String,
}

/// Likelihood-ratio test of time-homogeneity (Anderson & Goodman 1957): do the per-period
/// matrices differ from the pooled one? G² = 2 Σ_t Σ_i Σ_j n_tij ln(n_tij / (n_ti p̂_ij)) with
/// p̂ the pooled maximum likelihood estimate; degrees of freedom Σ_i (T_i − 1)(k_i − 1), where
/// T_i counts the periods with moves out of i and k_i the destinations ever reached from i.
/// `None` when there is nothing to compare (df = 0).
pub fn time_homogeneity(by_period: &[Vec<Vec<u64>>]) -> Option<ChiSquareTest> {
    use statrs::distribution::{ChiSquared, ContinuousCDF};
    let n = by_period.first()?.len();
    let pooled = sum_tables(by_period, n);
    let mut g2 = 0.0;
    let mut df = 0.0;
    for i in 0..n {
        let n_i: u64 = pooled[i].iter().sum();
        if n_i == 0 {
            continue;
        }
        let k_i = pooled[i].iter().filter(|&&x| x > 0).count() as f64;
        let mut t_i = 0.0;
        for table in by_period {
            let n_ti: u64 = table[i].iter().sum();
            if n_ti == 0 {
                continue;
            }
            t_i += 1.0;
            for j in 0..n {
                let x = table[i][j] as f64;
                if x > 0.0 {
                    let expected = n_ti as f64 * pooled[i][j] as f64 / n_i as f64;
                    g2 += 2.0 * x * (x / expected).ln();
                }
            }
        }
        df += (t_i - 1.0) * (k_i - 1.0);
    }
    if df <= 0.0 {
        return None;
    }
    let p = 1.0 - ChiSquared::new(df).expect("df > 0").cdf(g2.max(0.0));
    let verdict = if p < 0.01 {
        format!(
            "The moves between segments change over time (G² = {g2:.1}, df = {df}, {}): \
             the pooled matrix averages different periods (a cohort ageing, a market shifting), so \
             check its forecasts with a backtest (kam evaluate) before trusting long horizons.",
            format_p(p)
        )
    } else if p < 0.05 {
        format!("Weak evidence that the moves change over time (G² = {g2:.1}, df = {df}, p = {p:.3}).")
    } else {
        format!("No evidence that the moves change over time (G² = {g2:.1}, df = {df}, p = {p:.3}).")
    };
    Some(ChiSquareTest { statistic: g2, df, p_value: p, verdict })
}

/// A p-value for a sentence: `p < 1e-16` where it underflows, else three significant digits.
pub fn format_p(p: f64) -> String {
    if p < 1e-16 {
        "p < 1e-16".into()
    } else if p < 0.001 {
        format!("p = {p:.2e}")
    } else {
        format!("p = {p:.3}")
    }
}

/// Largest number of states for which second-order counts are kept (n³ cells per shard).
pub const MAX_STATES_FOR_ORDER_TEST: usize = 64;

/// Counts of (state before last, state, next state) triples. Mergeable.
#[derive(Clone, Debug, PartialEq)]
pub struct TripleCounts {
    n: usize,
    /// `cells[(i * n + j) * n + k]`.
    cells: Vec<u64>,
}

impl TripleCounts {
    /// Empty counts for `n` states (`None` above [`MAX_STATES_FOR_ORDER_TEST`]).
    pub fn new(n: usize) -> Option<Self> {
        (n <= MAX_STATES_FOR_ORDER_TEST).then(|| Self { n, cells: vec![0; n * n * n] })
    }

    #[inline]
    pub fn record(&mut self, before: usize, now: usize, next: usize) {
        self.cells[(before * self.n + now) * self.n + next] += 1;
    }

    pub fn merge(&mut self, other: &TripleCounts) {
        self.cells.iter_mut().zip(&other.cells).for_each(|(a, b)| *a += b);
    }

    fn get(&self, i: usize, j: usize, k: usize) -> u64 {
        self.cells[(i * self.n + j) * self.n + k]
    }
}

/// Likelihood-ratio test of first against second order (Anderson & Goodman 1957): for each
/// current state j, is the next state independent of the state before? G² = 2 Σ n_ijk
/// ln(n_ijk n_·j· / (n_ij· n_·jk)), df = Σ_j (r_j − 1)(c_j − 1) with r_j the earlier states and
/// c_j the next states seen around j. `None` when there is nothing to compare.
#[allow(clippy::needless_range_loop)] // three-index arithmetic reads clearer with indices
pub fn order_test(t: &TripleCounts) -> Option<ChiSquareTest> {
    let n = t.n;
    let mut g2 = 0.0;
    let mut df = 0.0;
    for j in 0..n {
        let row: Vec<u64> = (0..n).map(|i| (0..n).map(|k| t.get(i, j, k)).sum()).collect();
        let col: Vec<u64> = (0..n).map(|k| (0..n).map(|i| t.get(i, j, k)).sum()).collect();
        let total: u64 = row.iter().sum();
        if total == 0 {
            continue;
        }
        for i in 0..n {
            for k in 0..n {
                let x = t.get(i, j, k) as f64;
                if x > 0.0 {
                    let expected = row[i] as f64 * col[k] as f64 / total as f64;
                    g2 += 2.0 * x * (x / expected).ln();
                }
            }
        }
        let r = row.iter().filter(|&&x| x > 0).count() as f64;
        let c = col.iter().filter(|&&x| x > 0).count() as f64;
        df += (r - 1.0).max(0.0) * (c - 1.0).max(0.0);
    }
    if df <= 0.0 {
        return None;
    }
    let p = chi_square_sf(g2, df);
    let verdict = if p < 0.01 {
        format!(
            "The state before last changes the next move (G² = {g2:.1}, df = {df}, {}): the chain \
             forgets history that matters. States that carry more memory (kam's recency × tier inactive \
             states, a longer window) or covariate transitions may fit better; check with kam evaluate.",
            format_p(p)
        )
    } else if p < 0.05 {
        format!("Weak evidence that the state before last matters (G² = {g2:.1}, df = {df}, p = {p:.3}).")
    } else {
        format!(
            "No evidence that the state before last matters: a first-order chain fits (G² = {g2:.1}, df = {df}, p = {p:.3})."
        )
    };
    Some(ChiSquareTest { statistic: g2, df, p_value: p, verdict })
}

fn chi_square_sf(x: f64, df: f64) -> f64 {
    use statrs::distribution::{ChiSquared, ContinuousCDF};
    1.0 - ChiSquared::new(df).expect("df > 0").cdf(x.max(0.0))
}

/// Below this many observed moves a row is flagged whatever its intervals.
pub const MIN_ROW_MOVES: u64 = 30;
/// A row is flagged when one of its probabilities has a credible interval wider than this.
pub const MAX_INTERVAL_WIDTH: f64 = 0.2;

/// A row of the matrix with too little evidence to trust.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThinRow {
    pub state: String,
    /// Observed moves out of the state.
    pub moves: u64,
    /// Widest credible interval among its probabilities (upper − lower end).
    pub widest_interval: f64,
    /// The state whose purchase probabilities it borrowed, when it was never observed.
    pub borrowed_from: Option<String>,
}

/// Rows with too few observations: their list and a plain sentence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThinRows {
    pub min_moves: u64,
    pub max_interval_width: f64,
    pub rows: Vec<ThinRow>,
    pub verdict: String,
}

/// Flags rows with fewer than [`MIN_ROW_MOVES`] moves or a credible interval wider than
/// [`MAX_INTERVAL_WIDTH`].
pub fn thin_rows(m: &TransitionModel) -> ThinRows {
    let totals = m.row_totals();
    let n = m.states().len();
    let rows: Vec<ThinRow> = (0..n)
        .filter_map(|i| {
            let widest = (0..n).map(|j| m.interval(i, j)).map(|(lo, hi)| hi - lo).fold(0.0, f64::max);
            (totals[i] < MIN_ROW_MOVES || widest > MAX_INTERVAL_WIDTH).then(|| ThinRow {
                state: m.states()[i].clone(),
                moves: totals[i],
                widest_interval: widest,
                borrowed_from: m.borrowed_from()[i].clone(),
            })
        })
        .collect();
    let level = (CREDIBLE_LEVEL * 100.0).round();
    let verdict = if rows.is_empty() {
        format!(
            "Every row has at least {MIN_ROW_MOVES} observed moves and {level}% intervals narrower than {MAX_INTERVAL_WIDTH}."
        )
    } else {
        let names: Vec<String> = rows.iter().take(8).map(|r| format!("{} ({} moves)", r.state, r.moves)).collect();
        let more = if rows.len() > 8 { format!(" and {} more", rows.len() - 8) } else { String::new() };
        format!(
            "{} of {n} rows rest on too little data (fewer than {MIN_ROW_MOVES} moves or a {level}% interval wider \
             than {MAX_INTERVAL_WIDTH}): {}{more}. Forecasts from these states lean on the prior or a borrowed \
             row; their intervals say how much.",
            rows.len(),
            names.join(", ")
        )
    };
    ThinRows { min_moves: MIN_ROW_MOVES, max_interval_width: MAX_INTERVAL_WIDTH, rows, verdict }
}

/// Log-loss of the last period's moves under a chain fitted on the `window` periods before it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowScore {
    /// Periods of moves the chain was fitted on (the most recent before the last).
    pub periods: usize,
    pub log_loss: f64,
}

/// Would a chain fitted on recent periods only predict better? Each candidate window is fitted
/// on the moves before the last period and scored on the last period's moves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecentWindowCheck {
    /// Moves in the last period (the held-out ones).
    pub held_out_moves: u64,
    pub scores: Vec<WindowScore>,
    /// The window with the lowest log-loss.
    pub best_periods: usize,
    pub verdict: String,
}

/// Scores windows of 3, 6, 12 and all earlier periods (those available) on the last period's
/// moves, with the same additive prior on allowed moves as the fit. `None` with fewer than two
/// periods of moves.
pub fn recent_window_check(
    by_period: &[Vec<Vec<u64>>],
    allowed: &[Vec<bool>],
    prior: f64,
) -> Option<RecentWindowCheck> {
    let steps = by_period.len();
    if steps < 2 {
        return None;
    }
    let (held, earlier) = by_period.split_last().expect("two or more");
    let held_out_moves: u64 = held.iter().flatten().sum();
    if held_out_moves == 0 {
        return None;
    }
    let mut windows: Vec<usize> = [3, 6, 12].into_iter().filter(|&w| w < earlier.len()).collect();
    windows.push(earlier.len());
    let n = held.len();
    let scores: Vec<WindowScore> = windows
        .into_iter()
        .map(|w| {
            let pooled = sum_tables(&earlier[earlier.len() - w..], n);
            let mut loss = 0.0;
            for i in 0..n {
                let p = smoothed_row(&pooled[i], &allowed[i], prior);
                for j in 0..n {
                    let x = held[i][j];
                    if x > 0 {
                        loss -= x as f64 * p[j].max(1e-12).ln();
                    }
                }
            }
            WindowScore { periods: w, log_loss: loss / held_out_moves as f64 }
        })
        .collect();
    let best = scores.iter().min_by(|a, b| a.log_loss.total_cmp(&b.log_loss)).expect("one window at least");
    let all = scores.last().expect("one window at least");
    let verdict = if best.periods < all.periods && best.log_loss < all.log_loss - 0.005 {
        format!(
            "A chain fitted on the last {} periods predicts the last period's moves better than one on all {} \
             (log-loss {:.4} vs {:.4}); try `recent_periods = {}` under [transitions] and confirm with kam evaluate.",
            best.periods, all.periods, best.log_loss, all.log_loss, best.periods
        )
    } else {
        format!(
            "Fitting on recent periods only does not predict the last period's moves better (all {} periods: \
             log-loss {:.4}).",
            all.periods, all.log_loss
        )
    };
    Some(RecentWindowCheck { held_out_moves, best_periods: best.periods, scores, verdict })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_homogeneity_by_hand() {
        // One origin, two destinations; 8/2 then 2/8 against a pooled 0.5/0.5:
        // G² = 2·(16 ln 1.6 + 4 ln 0.4) = 7.7098, df 1, p = 0.0055.
        let t = time_homogeneity(&[vec![vec![8, 2], vec![0, 0]], vec![vec![2, 8], vec![0, 0]]]).unwrap();
        assert!((t.statistic - 7.7098).abs() < 1e-3, "{t:?}");
        assert_eq!(t.df, 1.0);
        assert!((t.p_value - 0.00549).abs() < 1e-4, "{t:?}");
        assert!(t.verdict.starts_with("The moves between segments change over time"));
        // Identical periods: G² = 0, p = 1.
        let t = time_homogeneity(&[vec![vec![5, 5], vec![0, 0]], vec![vec![5, 5], vec![0, 0]]]).unwrap();
        assert!(t.statistic.abs() < 1e-12 && (t.p_value - 1.0).abs() < 1e-12);
        assert!(time_homogeneity(&[vec![vec![5, 5], vec![0, 0]]]).is_none());
    }

    #[test]
    fn order_test_by_hand_on_one_middle_state() {
        // Middle state 0; before ∈ {1, 2}, next ∈ {1, 2}: a 2×2 table [[30, 10], [10, 30]].
        let mut t = TripleCounts::new(3).unwrap();
        for (i, k, x) in [(1, 1, 30), (1, 2, 10), (2, 1, 10), (2, 2, 30)] {
            for _ in 0..x {
                t.record(i, 0, k);
            }
        }
        let r = order_test(&t).unwrap();
        // Expected 20 in every cell: G² = 2 (2·30 ln 1.5 + 2·10 ln 0.5).
        let want = 2.0 * (60.0 * 1.5f64.ln() + 20.0 * 0.5f64.ln());
        assert!((r.statistic - want).abs() < 1e-9, "{r:?}");
        assert_eq!(r.df, 1.0);
        assert!(r.p_value < 1e-4);
        // Independent table: G² = 0.
        let mut t = TripleCounts::new(3).unwrap();
        for (i, k) in [(1, 1), (1, 2), (2, 1), (2, 2)] {
            for _ in 0..20 {
                t.record(i, 0, k);
            }
        }
        let r = order_test(&t).unwrap();
        assert!(r.statistic.abs() < 1e-9 && (r.p_value - 1.0).abs() < 1e-9);
    }

    #[test]
    fn recent_windows_are_scored_on_the_last_period() {
        // Two states; early periods stay put, recent ones swap. The last period swaps.
        let stay = vec![vec![50, 0], vec![0, 50]];
        let swap = vec![vec![0, 50], vec![50, 0]];
        let mut by_period = vec![stay.clone(); 8];
        by_period.extend(vec![swap.clone(); 4]);
        let allowed = vec![vec![true; 2]; 2];
        let c = recent_window_check(&by_period, &allowed, 0.5).unwrap();
        assert_eq!(c.held_out_moves, 100);
        assert_eq!(c.best_periods, 3);
        assert_eq!(c.scores.iter().map(|s| s.periods).collect::<Vec<_>>(), [3, 6, 11]);
        // Window 3 is all swaps: p(swap) = (150 + 0.5) / 151.
        let want = -((150.5f64) / 151.0).ln();
        assert!((c.scores[0].log_loss - want).abs() < 1e-12, "{c:?}");
        assert!(c.verdict.contains("recent_periods = 3"));
    }
}
