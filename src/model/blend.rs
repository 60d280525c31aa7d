//! Training with the BTYD blend (`[btyd] blend = "auto"`, the default): the chain as
//! [`train`] fits it, BG/NBD and Gamma–Gamma fitted on the customers' (x, t_x, T) at the as-of
//! date, and the weights of a convex blend of the chain's no-purchase probabilities and spend
//! with BG/NBD + Gamma–Gamma's, set on held-out periods inside the training data: the chain and
//! BG/NBD are fitted again up to [`DEFAULT_HORIZON`] periods before the as-of date, both forecast
//! those periods, and the weight of each quantity is the one of 0, 0.05, …, 1 with the lowest
//! held-out log-loss (no purchase) or squared error (spend; the blend's total matched to the
//! held-out total). All of it on a hash sample of at most [`BLEND_SAMPLE`] customers, so it adds
//! a bounded cost whatever the book's size. The weights, the scores and the choice go into the
//! artifact. Pareto/NBD stays a `kam evaluate` baseline: its likelihood sums a hypergeometric
//! series per customer (hundreds of terms where dropout is rare), which would multiply the cost
//! of training; BG/NBD's is closed-form.

use crate::domain::activity::Activity;
use crate::domain::btyd::baselines::{BtydBaselines, histories};
use crate::domain::btyd::blend::{BlendInfo, BtydModel, amount_weight, probability_weight};
use crate::domain::calendar::day_of;
use crate::domain::forecast::DEFAULT_HORIZON;
use crate::domain::metrics::binary_log_loss;
use crate::domain::sampling::{GOLDEN, splitmix64, unit_interval};
use crate::domain::transactions::CustomerAttributes;
use crate::model::artifact::{BtydInfo, ModelArtifact};
use crate::model::config::{BlendChoice, TrainConfig};
use crate::model::holdout::{Baselines, HoldoutEnd, score_holdout};
use crate::model::parallel::Rayon;
use crate::model::train::{SourceInfo, Stage, TrainError, train};

/// Customers the model's BTYD model is fitted and the blend weights are set on at most (about;
/// a hash sample beyond).
pub const BLEND_SAMPLE: usize = 10_000;

/// Periods the training data must have beyond the held-out ones to set a blend on.
const MIN_CALIBRATION_PERIODS: usize = 3;

/// Periods held out at least to set a blend on.
const MIN_HOLDOUT_PERIODS: usize = 2;

/// Trains a model and, unless the configuration turns it off, fits the BTYD models and sets the
/// blend (see the module).
pub fn train_blended(
    activity: &Activity,
    attributes: Option<&CustomerAttributes>,
    config: &TrainConfig,
    source: SourceInfo,
    progress: &mut dyn FnMut(Stage),
) -> Result<ModelArtifact, TrainError> {
    let mut model = train(activity, attributes, config, source.clone(), progress)?;
    if config.btyd.blend == BlendChoice::Off {
        return Ok(model);
    }
    // Everything below runs on a hash sample of at most BLEND_SAMPLE customers: the BTYD model
    // has four parameters, the blend two numbers.
    let sampled = sample_customers(activity, attributes, BLEND_SAMPLE);
    let (activity, attributes) = match &sampled {
        Some((t, a)) => (t, a.as_ref()),
        None => (activity, attributes),
    };
    progress(Stage::FittingBtyd);
    let fitted = BtydBaselines::fit_models(&histories(activity, day_of(model.periods.as_of)), &Rayon, false);
    progress(Stage::SettingBlend);
    let (blend, blend_skipped) = match choose_blend(activity, attributes, config, &model, source) {
        Ok(b) => (Some(b), None),
        Err(why) => (None, Some(why)),
    };
    model.btyd = Some(BtydInfo {
        bg_nbd: fitted.bg_nbd.as_ref().ok().map(|m| m.params()),
        pareto_nbd: fitted.pareto_nbd.as_ref().ok().map(|m| m.params()),
        gamma_gamma: fitted.gamma_gamma.as_ref().ok().map(|m| m.params()),
        fits: fitted.reports(),
        failures: fitted.failures(),
        blend,
        blend_skipped,
    });
    Ok(model)
}

/// The blend's weights, set on the last [`DEFAULT_HORIZON`] training periods (fewer where the
/// history is short); `Err` says why none could be set.
fn choose_blend(
    activity: &Activity,
    attributes: Option<&CustomerAttributes>,
    config: &TrainConfig,
    model: &ModelArtifact,
    source: SourceInfo,
) -> Result<BlendInfo, String> {
    let periods = model.periods.spans.len();
    // The last DEFAULT_HORIZON periods, or as many as a short history leaves beyond the
    // calibration periods (a six-month history holds out three): weights set on a shorter
    // horizon beat none.
    let k = DEFAULT_HORIZON.min(periods.saturating_sub(MIN_CALIBRATION_PERIODS));
    if k < MIN_HOLDOUT_PERIODS {
        return Err(format!(
            "{periods} training periods leave too few to set the blend on (it holds out at least {MIN_HOLDOUT_PERIODS} and needs {MIN_CALIBRATION_PERIODS} before them)"
        ));
    }
    let calibration_end = model.periods.spans[periods - 1 - k].1;
    let mut inner = config.clone();
    inner.period.as_of = Some(calibration_end);
    inner.btyd.blend = BlendChoice::Off;
    let head = train(activity, attributes, &inner, source, &mut |_| {})
        .map_err(|e| format!("the chain could not be trained up to {calibration_end}: {e}"))?;
    let (_, cols) =
        score_holdout(activity, attributes, &head, HoldoutEnd::Date(model.periods.as_of), Baselines::ForBlend)
            .map_err(|e| format!("the held-out periods after {calibration_end} could not be scored: {e}"))?;
    let log_loss = |c: &Option<(Vec<f64>, Vec<f64>)>| c.as_ref().map(|(p, _)| binary_log_loss(p, &cols.no_purchase));
    let (bg_ll, pareto_ll) = (log_loss(&cols.bg_nbd), log_loss(&cols.pareto_nbd));
    let with = match (bg_ll, pareto_ll) {
        (Some(a), Some(b)) if b < a => BtydModel::ParetoNbd,
        (Some(_), _) => BtydModel::BgNbd,
        (None, Some(_)) => BtydModel::ParetoNbd,
        (None, None) => return Err(format!("neither BG/NBD nor Pareto/NBD could be fitted at {calibration_end}")),
    };
    let (p, s) = match with {
        BtydModel::BgNbd => cols.bg_nbd.as_ref(),
        BtydModel::ParetoNbd => cols.pareto_nbd.as_ref(),
    }
    .expect("the chosen model has forecasts");
    Ok(BlendInfo {
        with,
        churn: probability_weight(&cols.chain_no_purchase, p, &cols.no_purchase),
        spend: amount_weight(&cols.chain_spend, s, &cols.actual_spend),
        calibration_end,
        holdout_end: model.periods.as_of,
        holdout_periods: k,
        customers: cols.no_purchase.len(),
        bg_nbd_log_loss: bg_ll,
        pareto_nbd_log_loss: pareto_ll,
    })
}

/// The activity (and attributes) of a deterministic hash sample of about `cap` customers, in
/// their original order; `None` when there are no more than `cap` customers.
fn sample_customers(
    activity: &Activity,
    attributes: Option<&CustomerAttributes>,
    cap: usize,
) -> Option<(Activity, Option<CustomerAttributes>)> {
    let n = activity.customers();
    if n <= cap {
        return None;
    }
    let keep = cap as f64 / n as f64;
    let ids: Vec<usize> =
        (0..n).filter(|&c| unit_interval(splitmix64(c as u64 ^ GOLDEN.rotate_left(17))) < keep).collect();
    let attributes = attributes.map(|a| {
        let k = a.names.len();
        CustomerAttributes {
            names: a.names.clone(),
            values: ids.iter().flat_map(|&c| a.values[c * k..(c + 1) * k].iter().copied()).collect(),
        }
    });
    Some((activity.subset(&ids), attributes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::calendar::day_of;
    use crate::domain::transactions::Transactions;
    use chrono::NaiveDate;

    /// `n` customers buying about every `gap` days from `first` through `end`.
    fn regular_buyers(n: u32, gap: i32, first: &str, end: &str) -> Activity {
        let (first, end) = (
            day_of(NaiveDate::parse_from_str(first, "%Y-%m-%d").unwrap()),
            day_of(NaiveDate::parse_from_str(end, "%Y-%m-%d").unwrap()),
        );
        let mut tx = Transactions::default();
        for c in 0..n {
            tx.customer_ids.push(format!("c{c:04}"));
            let mut d = first + (c as i32 * 7) % gap;
            // Every third customer stops half-way, so some go quiet.
            let stop = if c % 3 == 0 { first + (end - first) / 2 } else { end };
            while d <= stop {
                tx.customer.push(c);
                tx.day.push(d);
                tx.amount.push(10.0 + f64::from(c % 7) * 5.0);
                d += gap + (c as i32 % 5);
            }
        }
        crate::model::train::activity_for(&tx, &TrainConfig::default()).unwrap()
    }

    fn source() -> SourceInfo {
        SourceInfo::default()
    }

    #[test]
    fn a_long_enough_history_gets_a_blend_and_a_short_one_says_why_not() {
        let config = TrainConfig::default();
        let long = regular_buyers(300, 40, "2023-01-01", "2024-12-31");
        let m = train_blended(&long, None, &config, source(), &mut |_| {}).unwrap();
        let b = m.btyd.as_ref().expect("BTYD section");
        assert!(b.bg_nbd.is_some() && b.gamma_gamma.is_some() && b.pareto_nbd.is_none());
        let blend = b.blend.as_ref().unwrap_or_else(|| panic!("{:?}", b.blend_skipped));
        assert_eq!(blend.calibration_end.to_string(), "2024-08-31");
        assert_eq!(blend.holdout_periods, DEFAULT_HORIZON);
        assert!(blend.churn.blend <= blend.churn.first.min(blend.churn.second));
        // A short history: all but the first three periods held out.
        let short = regular_buyers(300, 20, "2024-07-01", "2024-12-31");
        let m = train_blended(&short, None, &config, source(), &mut |_| {}).unwrap();
        let periods = m.periods.spans.len();
        assert!(periods < DEFAULT_HORIZON + 3, "{periods}");
        let b = m.btyd.unwrap();
        let blend = b.blend.as_ref().unwrap_or_else(|| panic!("{:?}", b.blend_skipped));
        assert_eq!(blend.holdout_periods, periods - 3);
        assert_eq!(blend.calibration_end, m.periods.spans[2].1);
        // Four months: too few to hold two out after three.
        let short = regular_buyers(300, 20, "2024-09-01", "2024-12-31");
        let m = train_blended(&short, None, &config, source(), &mut |_| {}).unwrap();
        let b = m.btyd.unwrap();
        assert!(b.blend.is_none());
        assert!(b.blend_skipped.unwrap().contains("4 training periods"));
        // Off: no BTYD section at all.
        let mut off = config.clone();
        off.btyd.blend = BlendChoice::Off;
        assert!(train_blended(&long, None, &off, source(), &mut |_| {}).unwrap().btyd.is_none());
    }

    #[test]
    fn the_sample_keeps_whole_customers_in_order_with_their_attributes() {
        let n = 1000u32;
        let tx = Transactions {
            customer_ids: (0..n).map(|c| format!("c{c:04}")).collect(),
            customer: (0..2 * n).map(|i| i % n).collect(),
            day: (0..2 * n as i32).map(|d| d * 40).collect(),
            amount: (0..2 * n).map(f64::from).collect(),
            margin: None,
        };
        let activity = crate::domain::activity::aggregate(&tx, crate::domain::calendar::PeriodUnit::Month).unwrap();
        let attrs = CustomerAttributes { names: vec!["size".into()], values: (0..n).map(f64::from).collect() };
        assert!(sample_customers(&activity, Some(&attrs), 1000).is_none());
        let (s, a) = sample_customers(&activity, Some(&attrs), 200).unwrap();
        let kept = s.customers();
        assert!((120..280).contains(&kept), "{kept}");
        assert_eq!(s.cells(), 2 * kept);
        let a = a.unwrap();
        for c in 0..kept {
            let original: u32 = s.customer_ids[c][1..].parse().unwrap();
            assert!(s.customer(c).iter().all(|cell| cell.spend as u32 % n == original));
            assert_eq!(a.values[c], f64::from(original));
        }
        assert!(s.customer_ids.windows(2).all(|w| w[0] < w[1]));
    }
}
