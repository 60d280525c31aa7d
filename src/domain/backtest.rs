//! The backtest's record: what a forecast made at a calibration end scored on the holdout that
//! followed, beside naive baselines (the pipeline that makes it is [`crate::model::backtest`]).

use crate::domain::btyd::baselines::FitReport;
use crate::domain::btyd::blend::BlendInfo;
use crate::domain::metrics::{CalibrationBin, SpendErrors};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Log-loss and accuracy of next-segment predictions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentScores {
    pub log_loss: f64,
    pub accuracy: f64,
}

/// Scores of a probability of "no purchase in the holdout".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChurnScores {
    /// Undefined (null) when every customer bought, or none did.
    #[serde(with = "crate::domain::metrics::nullable")]
    pub auc: f64,
    pub brier: f64,
    pub log_loss: f64,
    pub calibration: Vec<CalibrationBin>,
}

/// Predicted and actual segment sizes in one holdout period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SizesAt {
    pub period_start: NaiveDate,
    pub predicted: Vec<f64>,
    /// 90% prediction interval on each count (posterior draws of the chain plus the chance of
    /// each customer's move; see [`crate::domain::forecast::intervals`]). Empty in older artifacts.
    #[serde(default)]
    pub predicted_lo: Vec<f64>,
    #[serde(default)]
    pub predicted_hi: Vec<f64>,
    pub actual: Vec<u64>,
    /// Σ|predicted − actual| / 2 / customers: the share of customers placed in the wrong segment.
    pub misplaced_share: f64,
}

/// The whole backtest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub calibration_end: NaiveDate,
    pub holdout_start: NaiveDate,
    pub holdout_end: NaiveDate,
    pub holdout_periods: usize,
    pub states: Vec<String>,
    /// Customers with a purchase by the calibration end (the ones evaluated).
    pub customers: usize,
    /// Customers whose first purchase falls in the holdout (not evaluated).
    pub customers_new_in_holdout: usize,
    pub next_segment: Baselined<SegmentScores>,
    /// Share of evaluated customers with no purchase in the holdout.
    pub no_purchase_rate: f64,
    pub no_purchase: Baselined<ChurnScores>,
    pub holdout_spend: Baselined<SpendErrors>,
    pub segment_sizes: Vec<SizesAt>,
    /// How often the actual segment sizes fell inside their prediction intervals.
    #[serde(default)]
    pub segment_size_coverage: Option<IntervalCoverage>,
    /// Customers whose forecasts used their own first-step row (a kept covariate model); their
    /// segment sizes still come from the pooled chain.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub customers_with_covariate_rows: usize,
    /// The BTYD baselines' fitted parameters (time in days), and why a fit failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub btyd_fits: Vec<FitReport>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub btyd_failures: Vec<String>,
    /// The model's blend of its chain with a BTYD model, where it has one (then `model` is the
    /// blend and `chain` the chain alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blend: Option<BlendInfo>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Coverage of prediction intervals in a backtest: `covered` of `cells` actual values inside
/// their interval at `level` (cells with a point interval at 0 and an actual 0 are not counted).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IntervalCoverage {
    pub level: f64,
    pub covered: u64,
    pub cells: u64,
}

/// A metric for the model and for the naive baselines.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Baselined<T> {
    pub model: T,
    /// Last state persists (next segment = current; no purchase iff currently inactive; holdout
    /// spend = this period's spend in every holdout period).
    pub persistence: T,
    /// Segment averages (next segment = the segment's pooled next-state mix — the chain's own
    /// first step, so omitted for segments; no purchase = the segment's next-period no-purchase
    /// rate; holdout spend = the segment's expected next-period spend, one step of the chain times
    /// the states' mean spend, in every holdout period).
    pub segment_average: Option<T>,
    /// BG/NBD (purchases) with Gamma–Gamma (spend per purchase), fitted on the customers'
    /// (x, t_x, T) histories at the calibration end, in days: P(no purchase in the holdout) and
    /// expected purchases × expected spend. Absent for next segments, in older records, and when
    /// the fit failed.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub bg_nbd: Option<T>,
    /// Pareto/NBD with Gamma–Gamma, as `bg_nbd`.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub pareto_nbd: Option<T>,
    /// The chain alone, where `model` is its blend with a BTYD model.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub chain: Option<T>,
}

/// A missing baseline in an older record (a function, so serde asks no `T: Default`).
fn none<T>() -> Option<T> {
    None
}
