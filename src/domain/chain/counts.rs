//! Moves between consecutive periods, counted per customer and pooled; count tables add.

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
        Self { n, pooled: vec![vec![0; n]; n], by_period: vec![vec![vec![0; n]; n]; periods.saturating_sub(1)] }
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

/// The sum of count tables (`n` × `n` each): e.g. the last K periods' moves.
pub fn sum_tables(tables: &[Vec<Vec<u64>>], n: usize) -> Vec<Vec<u64>> {
    let mut pooled = vec![vec![0u64; n]; n];
    for table in tables {
        for (a, b) in pooled.iter_mut().zip(table) {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        }
    }
    pooled
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn tables_add_cell_by_cell() {
        let t = [vec![vec![1, 2], vec![0, 3]], vec![vec![4, 0], vec![5, 6]]];
        assert_eq!(sum_tables(&t, 2), [vec![5, 2], vec![5, 9]]);
        assert_eq!(sum_tables(&[], 2), [vec![0, 0], vec![0, 0]]);
    }
}
