//! How the domain's data-parallel loops are cut. The domain says what one piece of work is and
//! how the pieces merge; the caller says on which threads they run ([`Parallel`]). Customers are
//! cut into [`SHARDS`] contiguous ranges whatever the number of threads, and results merge in
//! shard order, so a fitted model does not depend on the machine.

use std::ops::Range;

/// Customers (or sample rows) are cut into this many contiguous shards.
pub const SHARDS: usize = 16;

/// The `k`-th of [`SHARDS`] contiguous ranges of `0..n`.
pub fn shard_range(n: usize, k: usize) -> Range<usize> {
    n * k / SHARDS..n * (k + 1) / SHARDS
}

/// Runs independent pieces of work; results come back in index order.
pub trait Parallel: Sync {
    /// `work(i)` for every `i` in `0..n`, in index order.
    fn map<T: Send>(&self, n: usize, work: impl Fn(usize) -> T + Sync) -> Vec<T>;

    /// `work(range)` on each of the [`SHARDS`] ranges of `0..n`, in shard order.
    fn in_shards<T: Send>(&self, n: usize, work: impl Fn(Range<usize>) -> T + Sync) -> Vec<T> {
        self.map(SHARDS, |k| work(shard_range(n, k)))
    }
}

/// Everything on the calling thread.
#[derive(Clone, Copy, Debug, Default)]
pub struct Serial;

impl Parallel for Serial {
    fn map<T: Send>(&self, n: usize, work: impl Fn(usize) -> T + Sync) -> Vec<T> {
        (0..n).map(work).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shards_cover_every_index_once_in_order() {
        for n in [0, 1, 5, 16, 17, 1000] {
            let all: Vec<usize> = Serial.in_shards(n, |r| r.collect::<Vec<_>>()).into_iter().flatten().collect();
            assert_eq!(all, (0..n).collect::<Vec<_>>());
        }
    }
}
