//! Forecast accuracy metrics.

use serde::{Deserialize, Serialize};

/// Serde for metrics that may be undefined (NaN, e.g. an AUC with one class only): written as
/// `null`, read back as NaN, so artifacts holding them round-trip.
pub mod nullable {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        if x.is_finite() { s.serialize_f64(*x) } else { s.serialize_none() }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// Ranks (1-based) with ties sharing their average rank.
pub fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            ranks[k] = r;
        }
        i = j + 1;
    }
    ranks
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa == 0.0 || sbb == 0.0 { 0.0 } else { sab / (saa * sbb).sqrt() }
}

/// Spearman rank correlation (Pearson on average ranks).
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    pearson(&average_ranks(a), &average_ranks(b))
}

/// Area under the ROC curve of `score` for `label` (Mann–Whitney, ties count half).
pub fn auc(score: &[f64], label: &[bool]) -> f64 {
    let ranks = average_ranks(score);
    let pos = label.iter().filter(|l| **l).count() as f64;
    let neg = label.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return f64::NAN;
    }
    let rank_sum: f64 = ranks.iter().zip(label).filter(|(_, l)| **l).map(|(r, _)| r).sum();
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

/// Mean squared error of probabilities.
pub fn brier(p: &[f64], label: &[bool]) -> f64 {
    p.iter().zip(label).map(|(p, &l)| (p - f64::from(u8::from(l))).powi(2)).sum::<f64>() / p.len() as f64
}

/// Mean binary log-loss, probabilities clipped to [1e-15, 1 − 1e-15].
pub fn binary_log_loss(p: &[f64], label: &[bool]) -> f64 {
    p.iter()
        .zip(label)
        .map(|(&p, &l)| {
            let p = p.clamp(1e-15, 1.0 - 1e-15);
            -(if l { p.ln() } else { (1.0 - p).ln() })
        })
        .sum::<f64>()
        / p.len() as f64
}

/// One decile of a calibration table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    pub decile: usize,
    pub customers: usize,
    pub mean_predicted: f64,
    pub observed_rate: f64,
}

/// Customers sorted by predicted probability and cut into ten equal groups.
pub fn calibration_deciles(p: &[f64], label: &[bool]) -> Vec<CalibrationBin> {
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let n = idx.len();
    (0..10)
        .filter_map(|d| {
            let (lo, hi) = (d * n / 10, (d + 1) * n / 10);
            (hi > lo).then(|| {
                let group = &idx[lo..hi];
                let m = group.len() as f64;
                CalibrationBin {
                    decile: d + 1,
                    customers: group.len(),
                    mean_predicted: group.iter().map(|&i| p[i]).sum::<f64>() / m,
                    observed_rate: group.iter().filter(|&&i| label[i]).count() as f64 / m,
                }
            })
        })
        .collect()
}

/// Share of the actual total held by the top `share` of customers ranked by prediction (ties
/// broken by customer order).
pub fn top_share_capture(predicted: &[f64], actual: &[f64], share: f64) -> f64 {
    let mut idx: Vec<usize> = (0..predicted.len()).collect();
    idx.sort_by(|&a, &b| predicted[b].total_cmp(&predicted[a]).then(a.cmp(&b)));
    let k = ((predicted.len() as f64) * share).round() as usize;
    let total: f64 = actual.iter().sum();
    if total == 0.0 {
        return f64::NAN;
    }
    idx[..k].iter().map(|&i| actual[i]).sum::<f64>() / total
}

/// Point-forecast errors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpendErrors {
    pub mae: f64,
    pub rmse: f64,
    pub spearman: f64,
    pub predicted_total: f64,
    pub actual_total: f64,
    /// (predicted − actual) / actual total, in percent (undefined when nothing was spent).
    #[serde(with = "nullable")]
    pub total_error_pct: f64,
    /// Share of actual spend held by the top 20% predicted.
    #[serde(with = "nullable")]
    pub top20_capture: f64,
}

pub fn spend_errors(predicted: &[f64], actual: &[f64]) -> SpendErrors {
    let n = predicted.len() as f64;
    let mae = predicted.iter().zip(actual).map(|(p, a)| (p - a).abs()).sum::<f64>() / n;
    let rmse = (predicted.iter().zip(actual).map(|(p, a)| (p - a).powi(2)).sum::<f64>() / n).sqrt();
    let (pt, at) = (predicted.iter().sum::<f64>(), actual.iter().sum::<f64>());
    SpendErrors {
        mae,
        rmse,
        spearman: spearman(predicted, actual),
        predicted_total: pt,
        actual_total: at,
        total_error_pct: if at != 0.0 { 100.0 * (pt - at) / at } else { f64::NAN },
        top20_capture: top_share_capture(predicted, actual, 0.2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undefined_metrics_round_trip_through_json_as_null() {
        let e = spend_errors(&[1.0, 2.0], &[0.0, 0.0]);
        assert!(e.total_error_pct.is_nan() && e.top20_capture.is_nan());
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains("\"top20_capture\":null"), "{json}");
        let back: SpendErrors = serde_json::from_str(&json).unwrap();
        assert!(back.top20_capture.is_nan() && back.mae == e.mae);
    }

    #[test]
    fn ties_share_their_average_rank() {
        assert_eq!(average_ranks(&[10.0, 20.0, 10.0, 30.0]), vec![1.5, 3.0, 1.5, 4.0]);
    }

    #[test]
    fn auc_by_hand_with_a_tie() {
        // Positives scored 0.9 and 0.5; negatives 0.5 and 0.1. Pairs: (0.9>0.5) 1, (0.9>0.1) 1,
        // (0.5=0.5) ½, (0.5>0.1) 1 → 3.5 / 4.
        let auc = auc(&[0.9, 0.5, 0.5, 0.1], &[true, true, false, false]);
        assert!((auc - 0.875).abs() < 1e-12);
    }

    #[test]
    fn brier_and_log_loss_by_hand() {
        let p = [0.8, 0.4];
        let y = [true, false];
        assert!((brier(&p, &y) - (0.04 + 0.16) / 2.0).abs() < 1e-12);
        assert!((binary_log_loss(&p, &y) - (-(0.8f64.ln()) - 0.6f64.ln()) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn spearman_of_a_monotone_transform_is_one() {
        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [1.0, 8.0, 27.0, 64.0];
        assert!((spearman(&a, &b) - 1.0).abs() < 1e-12);
        assert!((spearman(&a, &[4.0, 3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
    }

    #[test]
    fn top_capture_by_hand() {
        // Five customers; top 20% = 1 customer: the one predicted 9, who spent 50 of 100.
        let c = top_share_capture(&[1.0, 9.0, 3.0, 2.0, 0.0], &[10.0, 50.0, 20.0, 20.0, 0.0], 0.2);
        assert!((c - 0.5).abs() < 1e-12);
    }

    #[test]
    fn calibration_deciles_cover_everyone() {
        let p: Vec<f64> = (0..95).map(|i| f64::from(i) / 100.0).collect();
        let y: Vec<bool> = (0..95).map(|i| i % 2 == 0).collect();
        let bins = calibration_deciles(&p, &y);
        assert_eq!(bins.len(), 10);
        assert_eq!(bins.iter().map(|b| b.customers).sum::<usize>(), 95);
    }
}
