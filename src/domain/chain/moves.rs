//! The moves the covariate transitions learn from: per origin, the moves with the smallest
//! sampling keys of (customer, period), each with its covariates (the RFM features and the
//! numeric attributes), kept by every training shard and merged in shard order.

use crate::domain::panel::{PanelRow, RFM_FEATURES};
use std::collections::BinaryHeap;

/// Moves sampled per origin for fitting, and again for the held-out check, at most.
pub const SAMPLE_CAP: usize = 20_000;

/// Names of the covariates: the RFM features, then the attributes.
pub fn feature_names(attributes: &[String]) -> Vec<String> {
    RFM_FEATURES.iter().map(|s| s.to_string()).chain(attributes.iter().cloned()).collect()
}

/// Writes the covariates of a customer-period into `out` (length 4 + attributes).
pub fn covariates_of(row: &PanelRow, attributes: &[f64], out: &mut [f64]) {
    row.rfm_features(&mut out[..4]);
    out[4..].copy_from_slice(attributes);
}

/// The sampling key of a customer's move out of `period` ([`crate::domain::sampling`]).
pub fn sample_key(customer: u32, period: u32) -> u64 {
    crate::domain::sampling::customer_period_key(u64::from(customer), period)
}

/// The moves with the `cap` smallest keys seen so far.
#[derive(Clone, Debug)]
struct Reservoir {
    cap: usize,
    dim: usize,
    /// Largest key on top, with its slot.
    heap: BinaryHeap<(u64, u32)>,
    keys: Vec<u64>,
    x: Vec<f64>,
    to: Vec<u32>,
}

impl Reservoir {
    fn new(cap: usize, dim: usize) -> Self {
        Self { cap, dim, heap: BinaryHeap::new(), keys: Vec::new(), x: Vec::new(), to: Vec::new() }
    }

    #[inline]
    fn accepts(&self, key: u64) -> bool {
        self.heap.len() < self.cap || self.heap.peek().is_some_and(|&(top, _)| key < top)
    }

    fn insert(&mut self, key: u64, x: &[f64], to: usize) {
        let slot = if self.heap.len() < self.cap {
            self.keys.push(key);
            self.x.extend_from_slice(x);
            self.to.push(to as u32);
            self.keys.len() - 1
        } else {
            let (_, slot) = self.heap.pop().expect("a full reservoir");
            let s = slot as usize;
            self.keys[s] = key;
            self.x[s * self.dim..(s + 1) * self.dim].copy_from_slice(x);
            self.to[s] = to as u32;
            s
        };
        self.heap.push((key, slot as u32));
    }
}

/// One training shard's sample of moves, per origin state.
#[derive(Clone, Debug)]
pub struct MoveSampler {
    dim: usize,
    /// Moves out of this period (into the last training period) are held out.
    holdout_period: Option<u32>,
    fit: Vec<Reservoir>,
    holdout: Vec<Reservoir>,
    scratch: Vec<f64>,
}

impl MoveSampler {
    /// A sampler for `states` origins, `dim` covariates and a calendar of `periods` periods, as
    /// one of `shards` shards (each keeps its share of [`SAMPLE_CAP`]).
    pub fn new(states: usize, dim: usize, periods: usize, shards: usize) -> Self {
        let cap = SAMPLE_CAP.div_ceil(shards.max(1));
        Self {
            dim,
            holdout_period: (periods >= 3).then(|| (periods - 2) as u32),
            fit: (0..states).map(|_| Reservoir::new(cap, dim)).collect(),
            holdout: (0..states).map(|_| Reservoir::new(cap, dim)).collect(),
            scratch: vec![0.0; dim],
        }
    }

    /// Offers the move of `customer` from `from` (its row `row`) to `to` in the next period.
    #[inline]
    pub fn record(&mut self, customer: u32, row: &PanelRow, from: usize, to: usize, attributes: &[f64]) {
        let key = sample_key(customer, row.period);
        let r = if Some(row.period) == self.holdout_period { &mut self.holdout[from] } else { &mut self.fit[from] };
        if r.accepts(key) {
            covariates_of(row, attributes, &mut self.scratch);
            r.insert(key, &self.scratch, to);
        }
    }

    /// The shards' samples together, each origin's moves in key order.
    pub fn merge(shards: Vec<MoveSampler>) -> MoveSamples {
        let dim = shards.first().map_or(0, |s| s.dim);
        let states = shards.first().map_or(0, |s| s.fit.len());
        let gather = |pick: &dyn Fn(&MoveSampler) -> &Vec<Reservoir>, i: usize| {
            let mut all: Vec<(u64, &[f64], u32)> = Vec::new();
            for s in &shards {
                let r = &pick(s)[i];
                for k in 0..r.keys.len() {
                    all.push((r.keys[k], &r.x[k * dim..(k + 1) * dim], r.to[k]));
                }
            }
            all.sort_by_key(|a| a.0);
            OriginSamples {
                x: all.iter().flat_map(|a| a.1.iter().copied()).collect(),
                to: all.iter().map(|a| a.2 as usize).collect(),
            }
        };
        MoveSamples {
            dim,
            fit: (0..states).map(|i| gather(&|s| &s.fit, i)).collect(),
            holdout: (0..states).map(|i| gather(&|s| &s.holdout, i)).collect(),
        }
    }
}

/// Sampled moves out of one origin: covariates (row-major, `dim` per move) and destinations.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OriginSamples {
    pub x: Vec<f64>,
    pub to: Vec<usize>,
}

/// Sampled moves per origin: for fitting, and held out (into the last training period).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MoveSamples {
    pub dim: usize,
    pub fit: Vec<OriginSamples>,
    pub holdout: Vec<OriginSamples>,
}
