//! The per-customer snapshot beside a stored model, `<id>.customers.jsonl`: one
//! [`CustomerLine`] per customer (id, segment, previous segment, RFM, predicted next-period
//! spend and its standard error, any own first-step row) at the model's as-of date — the first
//! fields of `kam score`'s JSON Lines. Written and read here only.

use super::{StoreError, check_id, write_atomically_with};
use crate::domain::forecast::Forecaster;
use crate::domain::forecast::portfolio::{Outlook, OutlookByState};
use crate::domain::panel::PanelRow;
use crate::model::artifact::ModelArtifact;
use crate::model::place::{CustomerLine, CustomerNow, PlaceScratch, Placer};
use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// Where the snapshot of model `id` lies in the models directory `dir`.
pub fn path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.customers.jsonl"))
}

/// Customers placed and written per task of [`write`].
const CUSTOMERS_PER_CHUNK: usize = 16_384;

/// Writes the snapshot of model `id` into `dir`, atomically, with the caller's customer ids and
/// the model's state names: customers are placed and written a chunk at a time, the chunks of a
/// window on all cores and appended in order, so neither the placed customers nor the file's
/// bytes are ever all in memory.
pub fn write(dir: &Path, id: &str, placer: &Placer, ids: &[String], states: &[String]) -> Result<PathBuf, StoreError> {
    use rayon::prelude::*;
    check_id(id)?;
    let n = placer.customers();
    let chunks: Vec<std::ops::Range<usize>> =
        (0..n).step_by(CUSTOMERS_PER_CHUNK).map(|a| a..(a + CUSTOMERS_PER_CHUNK).min(n)).collect();
    let window = rayon::current_num_threads().max(1);
    write_atomically_with(dir, &format!("{id}.customers.jsonl"), &mut |out| {
        for batch in chunks.chunks(window) {
            let parts: Vec<Vec<u8>> = batch
                .par_iter()
                .map(|range| {
                    let mut scratch = PlaceScratch::default();
                    let mut bytes = Vec::with_capacity(range.len() * 200);
                    for c in range.clone() {
                        serde_json::to_writer(&mut bytes, &placer.place(c, &mut scratch).line(ids, states))
                            .expect("JSON into memory");
                        bytes.push(b'\n');
                    }
                    bytes
                })
                .collect();
            for part in parts {
                out.write_all(&part)?;
            }
        }
        Ok(())
    })
}

/// Why a snapshot cannot be read. The line errors name the file (not its directory) and line.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read its customer snapshot: {0}")]
    Io(#[from] std::io::Error),
    #[error("{file}: line {line}: {problem}")]
    Line { file: String, line: usize, problem: String },
}

/// One customer of a snapshot, with its states as the model's indices.
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotCustomer {
    pub state: u32,
    pub previous: Option<u32>,
    pub last: Option<PanelRow>,
    pub next_spend: f64,
    pub next_spend_se: f64,
    pub first_step: Option<Vec<f64>>,
    pub history: Option<crate::domain::btyd::baselines::PurchaseHistory>,
    pub recent_spend: Vec<f64>,
}

impl SnapshotCustomer {
    /// This customer as placed at the as-of date (its number is not kept: 0).
    pub fn now(&self) -> CustomerNow {
        CustomerNow {
            customer: 0,
            state: self.state as usize,
            previous_state: self.previous.map(|s| s as usize),
            last: self.last,
            next_spend: self.next_spend,
            next_spend_se: self.next_spend_se,
            first_step: self.first_step.clone(),
            history: self.history,
            recent_spend: self.recent_spend.clone(),
        }
    }
}

/// A model's customers at its as-of date, in file order and by id.
#[derive(Debug, Default)]
pub struct CustomerSnapshot {
    ids: Vec<String>,
    customers: Vec<SnapshotCustomer>,
    index: HashMap<String, u32>,
}

impl CustomerSnapshot {
    /// Reads the snapshot at `path` for `model`; `Ok(None)` when there is none.
    pub fn load(path: &Path, model: &ModelArtifact) -> Result<Option<Self>, SnapshotError> {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let bad = |line: usize, problem: String| SnapshotError::Line { file: file_name.clone(), line, problem };
        let state = |s: &str, n: usize| {
            model.state_index(s).map(|i| i as u32).ok_or_else(|| bad(n, format!("unknown segment {s:?}")))
        };
        let mut snapshot = Self::default();
        for (k, line) in std::io::BufReader::new(file).lines().enumerate() {
            let n = k + 1;
            let line = line.map_err(|e| bad(n, e.to_string()))?;
            if line.trim().is_empty() {
                continue;
            }
            let l: CustomerLine = serde_json::from_str(&line).map_err(|e| bad(n, e.to_string()))?;
            if let Some(q) = &l.first_step
                && (q.len() != model.segments.states.len()
                    || q.iter().any(|p| !(0.0..=1.0).contains(p))
                    || (q.iter().sum::<f64>() - 1.0).abs() > 1e-6)
            {
                return Err(bad(n, "first_step is not a distribution over the model's states".into()));
            }
            if l.purchase_history.is_some_and(|h| !h.is_valid()) {
                return Err(bad(
                    n,
                    "purchase_history is not a possible history (need t_x ≤ t, t_x > 0 exactly with repeats)".into(),
                ));
            }
            let customer = SnapshotCustomer {
                state: state(&l.segment, n)?,
                previous: l.previous_segment.as_deref().map(|s| state(s, n)).transpose()?,
                last: l.rfm.map(|r| r.to_row()),
                next_spend: l.next_spend,
                next_spend_se: l.next_spend_se,
                first_step: l.first_step,
                history: l.purchase_history,
                recent_spend: l.recent_spend,
            };
            let at = snapshot.customers.len() as u32;
            if snapshot.index.insert(l.customer_id.clone(), at).is_some() {
                return Err(bad(n, format!("customer {:?} appears twice", l.customer_id)));
            }
            snapshot.ids.push(l.customer_id);
            snapshot.customers.push(customer);
        }
        Ok(Some(snapshot))
    }

    pub fn len(&self) -> usize {
        self.customers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.customers.is_empty()
    }

    /// The customer with this id.
    pub fn get(&self, id: &str) -> Option<&SnapshotCustomer> {
        self.index.get(id).map(|&k| &self.customers[k as usize])
    }

    /// Every customer with its id, in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &SnapshotCustomer)> {
        self.ids.iter().map(String::as_str).zip(&self.customers)
    }

    /// Every customer's outlook over the forecaster's horizon, in file order
    /// ([`crate::model::place::purchases::outlook`]), at the model's as-of date `as_of`.
    pub fn outlooks(
        &self,
        by_state: &OutlookByState,
        forecaster: &Forecaster,
        purchases: Option<&crate::model::place::purchases::PurchaseOutlook>,
        as_of: chrono::NaiveDate,
    ) -> Vec<Outlook> {
        self.iter()
            .map(|(id, c)| {
                crate::model::place::purchases::outlook(
                    id.to_string(),
                    &c.now(),
                    by_state,
                    forecaster,
                    purchases,
                    as_of,
                )
            })
            .collect()
    }
}
