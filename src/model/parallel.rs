//! The threads the pipelines run the domain's data-parallel loops on: rayon's global pool.
//! The work is cut by [`crate::domain::shards`], not by the pool, so results do not depend on
//! the number of threads.

use crate::domain::shards::Parallel;
use rayon::prelude::*;

/// Runs the pieces on rayon's global pool.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rayon;

impl Parallel for Rayon {
    fn map<T: Send>(&self, n: usize, work: impl Fn(usize) -> T + Sync) -> Vec<T> {
        (0..n).into_par_iter().map(|i| work(i)).collect()
    }
}
