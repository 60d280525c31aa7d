//! The design of the spend regression: its features and target.

use crate::domain::panel::{PanelRow, RFM_FEATURES};
use serde::{Deserialize, Serialize};

/// Layout of the design: an indicator for every state but the first (the reference), the RFM
/// features, then attributes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpendDesign {
    pub states: Vec<String>,
    pub attributes: Vec<String>,
}

impl SpendDesign {
    /// Number of features (without the intercept).
    pub fn len(&self) -> usize {
        self.states.len() - 1 + RFM_FEATURES.len() + self.attributes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn feature_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.states[1..].iter().map(|s| format!("state={s}")).collect();
        v.extend(RFM_FEATURES.iter().map(|s| s.to_string()));
        v.extend(self.attributes.iter().cloned());
        v
    }

    /// Writes the features of a customer-period into `out` (length [`Self::len`]).
    pub fn features(&self, state: usize, row: &PanelRow, attributes: &[f64], out: &mut [f64]) {
        let k = self.states.len() - 1;
        out[..k].fill(0.0);
        if state > 0 {
            out[state - 1] = 1.0;
        }
        row.rfm_features(&mut out[k..k + 4]);
        out[k + 4..].copy_from_slice(attributes);
    }
}

/// ln(1 + max(y, 0)): the `log_ols` target. A period of returns only counts as no spend.
pub fn log_target(y: f64) -> f64 {
    y.max(0.0).ln_1p()
}
