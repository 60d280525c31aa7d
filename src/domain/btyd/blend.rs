//! A convex blend of two forecasts of the same quantity, its weight set on held-out outcomes:
//! where two forecasts err differently, a mix of them scores better than either. The weight is the
//! best of a grid that includes both ends, so on the data it was set on the blend is never worse
//! than the better of the two.

use crate::domain::metrics::binary_log_loss;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The BTYD model a blend takes beside the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BtydModel {
    BgNbd,
    ParetoNbd,
}

/// How a model blends its chain with a BTYD model, and the held-out evidence: set on the periods
/// between `calibration_end` and `holdout_end` inside the training data, for `customers`
/// customers (all, or a hash sample).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlendInfo {
    /// The BTYD model with the lower held-out no-purchase log-loss.
    pub with: BtydModel,
    /// Weight of the chain's P(no purchase) (scores: log-loss).
    pub churn: BlendWeight,
    /// Weight of the chain's expected spend (scores: mean squared error).
    pub spend: BlendWeight,
    pub calibration_end: NaiveDate,
    pub holdout_end: NaiveDate,
    pub holdout_periods: usize,
    pub customers: usize,
    /// Held-out no-purchase log-loss of each BTYD model (`None` where it could not be fitted).
    pub bg_nbd_log_loss: Option<f64>,
    pub pareto_nbd_log_loss: Option<f64>,
}

/// Grid of weights on the first forecast: 0, 0.05, …, 1.
const STEPS: u32 = 20;

/// The chosen weight on the first forecast and the held-out score at each end and at the weight.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlendWeight {
    /// Weight of the first forecast (the chain); the second gets 1 − weight.
    pub weight: f64,
    /// Held-out score (lower is better) of the first alone, the second alone and the blend.
    pub first: f64,
    pub second: f64,
    pub blend: f64,
}

fn choose(mut score: impl FnMut(f64) -> f64) -> BlendWeight {
    let first = score(1.0);
    let (mut weight, mut best, mut second) = (1.0, first, f64::NAN);
    for k in 0..STEPS {
        let w = f64::from(k) / f64::from(STEPS);
        let s = score(w);
        if k == 0 {
            second = s;
        }
        if s < best {
            (weight, best) = (w, s);
        }
    }
    BlendWeight { weight, first, second, blend: best }
}

/// The weight of `first` in w·first + (1 − w)·second minimizing the log-loss of probabilities of
/// `outcome` (ties keep the larger weight on `first`).
pub fn probability_weight(first: &[f64], second: &[f64], outcome: &[bool]) -> BlendWeight {
    let mut p = vec![0.0; first.len()];
    choose(|w| {
        for ((p, a), b) in p.iter_mut().zip(first).zip(second) {
            *p = w * a + (1.0 - w) * b;
        }
        binary_log_loss(&p, outcome)
    })
}

/// The weight of `first` in w·first + (1 − w)·second minimizing the mean squared error of
/// amounts against `actual`.
pub fn amount_weight(first: &[f64], second: &[f64], actual: &[f64]) -> BlendWeight {
    choose(|w| {
        first.iter().zip(second).zip(actual).map(|((a, b), y)| (w * a + (1.0 - w) * b - y).powi(2)).sum::<f64>()
            / actual.len().max(1) as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_forecasts_with_different_errors_blend_better_than_either() {
        // Truth 1.0 everywhere; one forecast is 1 too high on even rows, the other 1 too low on
        // the same rows: the half-half blend cancels the errors.
        let actual = vec![1.0; 10];
        let a: Vec<f64> = (0..10).map(|i| if i % 2 == 0 { 2.0 } else { 1.0 }).collect();
        let b: Vec<f64> = (0..10).map(|i| if i % 2 == 0 { 0.0 } else { 1.0 }).collect();
        let w = amount_weight(&a, &b, &actual);
        assert_eq!(w.weight, 0.5);
        assert!(w.blend < 1e-12 && w.first == 0.5 && w.second == 0.5, "{w:?}");
        // A forecast that is right on its own keeps all the weight.
        let w = amount_weight(&actual, &b, &actual);
        assert_eq!((w.weight, w.blend), (1.0, 0.0));
    }

    #[test]
    fn the_probability_weight_minimizes_log_loss_and_never_loses_to_an_end() {
        let outcome = [true, false, true, true, false, false, true, false];
        let a = [0.9, 0.4, 0.6, 0.7, 0.3, 0.6, 0.8, 0.2];
        let b = [0.6, 0.1, 0.9, 0.5, 0.5, 0.2, 0.6, 0.4];
        let w = probability_weight(&a, &b, &outcome);
        assert!(w.blend <= w.first && w.blend <= w.second, "{w:?}");
        assert!(w.weight > 0.0 && w.weight < 1.0, "{w:?}");
        let direct = binary_log_loss(
            &a.iter().zip(&b).map(|(x, y)| w.weight * x + (1.0 - w.weight) * y).collect::<Vec<_>>(),
            &outcome,
        );
        assert!((direct - w.blend).abs() < 1e-15);
    }
}
