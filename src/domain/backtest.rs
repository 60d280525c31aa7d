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
    /// Holdout purchases against calibration frequency, the BTYD papers' check of the
    /// conditional expectations (empty in older records).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub purchases_by_frequency: Vec<PurchasesByFrequency>,
    /// The tracking of purchase days per holdout period, actual and expected (conditional on
    /// each customer's calibration history) by each BTYD baseline (empty in older records).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub purchases_by_period: Vec<PurchasesInPeriod>,
}

/// Purchase days per customer in one holdout period, over the customers with a calibration
/// history (a hash sample of about 50,000 beyond that many): actual, and expected by BG/NBD and
/// Pareto/NBD (`None` where the fit failed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PurchasesInPeriod {
    pub period_start: NaiveDate,
    pub customers: u64,
    pub actual: f64,
    pub bg_nbd: Option<f64>,
    pub pareto_nbd: Option<f64>,
}

/// Customers with `frequency` repeat purchase days in the calibration period (the last bin is
/// that many or more): their mean purchase days in the holdout, actual and expected by each
/// BTYD baseline (`None` where its fit failed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PurchasesByFrequency {
    pub frequency: u32,
    /// Whether the bin holds `frequency` or more.
    pub or_more: bool,
    pub customers: u64,
    pub actual: f64,
    pub bg_nbd: Option<f64>,
    pub pareto_nbd: Option<f64>,
}

/// Calibration frequencies 0..=7, the last bin "7 or more" (as the papers' figures).
pub const FREQUENCY_BINS: u32 = 8;

/// Bins customers by calibration frequency: `x[i]` repeat purchases, `actual[i]` holdout
/// purchases, `bg_nbd` and `pareto_nbd` each customer's expected holdout purchases (a column
/// absent where that fit failed). Empty bins are left out.
pub fn purchases_by_frequency(
    x: &[u32],
    actual: &[f64],
    bg_nbd: Option<&[f64]>,
    pareto_nbd: Option<&[f64]>,
) -> Vec<PurchasesByFrequency> {
    let bins = FREQUENCY_BINS as usize;
    let mut n = vec![0u64; bins];
    let mut sums = vec![[0.0; 3]; bins];
    for (i, &f) in x.iter().enumerate() {
        let b = (f as usize).min(bins - 1);
        n[b] += 1;
        sums[b][0] += actual[i];
        sums[b][1] += bg_nbd.map_or(0.0, |c| c[i]);
        sums[b][2] += pareto_nbd.map_or(0.0, |c| c[i]);
    }
    (0..bins)
        .filter(|&b| n[b] > 0)
        .map(|b| {
            let m = n[b] as f64;
            PurchasesByFrequency {
                frequency: b as u32,
                or_more: b == bins - 1,
                customers: n[b],
                actual: sums[b][0] / m,
                bg_nbd: bg_nbd.map(|_| sums[b][1] / m),
                pareto_nbd: pareto_nbd.map(|_| sums[b][2] / m),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customers_are_binned_by_frequency_with_a_last_open_bin() {
        let x = [0, 0, 1, 9, 7];
        let actual = [0.0, 2.0, 1.0, 5.0, 3.0];
        let bg = [0.5, 0.5, 1.5, 6.0, 4.0];
        let bins = purchases_by_frequency(&x, &actual, Some(&bg), None);
        assert_eq!(bins.iter().map(|b| (b.frequency, b.customers)).collect::<Vec<_>>(), [(0, 2), (1, 1), (7, 2)]);
        assert_eq!((bins[0].actual, bins[0].bg_nbd, bins[0].pareto_nbd), (1.0, Some(0.5), None));
        assert!(bins[2].or_more && !bins[1].or_more);
        assert_eq!((bins[2].actual, bins[2].bg_nbd), (4.0, Some(5.0)));
    }
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
