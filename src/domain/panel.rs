//! The customer × period panel: for every customer, every period from its first purchase to the
//! as-of date, with recency, trailing-window frequency and monetary value, and tenure.

use crate::domain::activity::PeriodActivity;
use crate::domain::calendar::Day;

/// Names of the RFM features of a customer-period, in the order [`PanelRow::rfm_features`]
/// writes them.
pub const RFM_FEATURES: [&str; 4] = ["ln_recency_days", "ln_frequency", "ln_monetary", "tenure_periods"];

/// Sign-preserving ln(1 + |x|), so returns (negative spend) stay on the scale.
pub fn signed_ln1p(x: f64) -> f64 {
    x.signum() * x.abs().ln_1p()
}

/// One customer in one period.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PanelRow {
    /// Period index in the calendar.
    pub period: u32,
    /// Purchase occasions in this period.
    pub purchases: u32,
    /// Spend in this period (returns subtract).
    pub spend: f64,
    /// Margin in this period (0 without a margin column).
    pub margin: f64,
    /// Days from the last purchase to the end of this period.
    pub recency_days: u32,
    /// Whole periods since the last period with a purchase (0 when the customer bought in this one).
    pub periods_since_purchase: u32,
    /// Purchase occasions over the trailing window of W periods ending with this one.
    pub frequency: u32,
    /// Spend over the trailing window of W periods ending with this one.
    pub monetary: f64,
    /// Periods since the first purchase period (0 in it).
    pub tenure: u32,
}

impl PanelRow {
    /// The RFM features of this row, [`RFM_FEATURES`] (ln(1 + recency days), ln(1 + frequency),
    /// signed ln(1 + monetary), tenure), into `out[..4]`: the one transform the spend design and
    /// the covariate transitions share.
    #[inline]
    pub fn rfm_features(&self, out: &mut [f64]) {
        out[0] = f64::from(self.recency_days).ln_1p();
        out[1] = f64::from(self.frequency).ln_1p();
        out[2] = signed_ln1p(self.monetary);
        out[3] = f64::from(self.tenure);
    }

    /// A row with no activity: nothing bought, spent or remembered.
    pub fn empty(period: u32, tenure: u32) -> Self {
        PanelRow {
            period,
            purchases: 0,
            spend: 0.0,
            margin: 0.0,
            recency_days: 0,
            periods_since_purchase: 0,
            frequency: 0,
            monetary: 0.0,
            tenure,
        }
    }
}

/// Writes into `out` the panel rows of one customer: one per period from its first purchase
/// period to the last period of the calendar (`period_ends.len()` periods), with a trailing
/// window of `window` periods. Periods before the first purchase are skipped (a customer whose
/// rows are all returns has no panel). `activity` is the customer's activity ordered by period.
pub fn customer_panel(activity: &[PeriodActivity], period_ends: &[Day], window: u32, out: &mut Vec<PanelRow>) {
    out.clear();
    let Some(first) = activity.iter().position(|a| a.occasions > 0) else {
        return;
    };
    let first_period = activity[first].period;
    let mut next = first; // next activity row not yet reached
    let mut last_purchase_day = Day::MIN;
    let mut last_purchase_period = first_period;
    for t in first_period..period_ends.len() as u32 {
        let mut row = PanelRow::empty(t, t - first_period);
        if next < activity.len() && activity[next].period == t {
            let a = &activity[next];
            row.purchases = a.occasions;
            row.spend = a.spend;
            row.margin = a.margin;
            if a.occasions > 0 {
                last_purchase_day = a.last_purchase_day;
                last_purchase_period = t;
            }
            next += 1;
        }
        row.recency_days = (period_ends[t as usize] - last_purchase_day) as u32;
        row.periods_since_purchase = t - last_purchase_period;
        // Trailing window t-W+1..=t, over activity rows from the first purchase on.
        let lo = (t + 1).saturating_sub(window);
        for a in activity[first..next].iter().rev() {
            if a.period < lo {
                break;
            }
            row.frequency += a.occasions;
            row.monetary += a.spend;
        }
        out.push(row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn act(period: u32, occasions: u32, spend: f64, last: Day) -> PeriodActivity {
        PeriodActivity { occasions, spend, last_purchase_day: last, ..PeriodActivity::empty(period) }
    }

    #[test]
    fn rows_run_from_the_first_purchase_to_the_last_period_with_hand_worked_rfm() {
        // Periods of 10 days ending on days 9, 19, 29, 39, 49.
        let ends = [9, 19, 29, 39, 49];
        let activity = [
            act(0, 0, -5.0, Day::MIN), // a return before the first purchase: ignored
            act(1, 2, 30.0, 15),
            act(2, 1, 10.0, 21),
            act(4, 0, -3.0, Day::MIN), // return only: no purchase
        ];
        let mut rows = Vec::new();
        customer_panel(&activity, &ends, 2, &mut rows);
        let got: Vec<_> = rows
            .iter()
            .map(|r| {
                (r.period, r.purchases, r.recency_days, r.periods_since_purchase, r.frequency, r.monetary, r.tenure)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 2, 4, 0, 2, 30.0, 0),
                (2, 1, 8, 0, 3, 40.0, 1),
                (3, 0, 18, 1, 1, 10.0, 2),
                (4, 0, 28, 2, 0, -3.0, 3),
            ]
        );
        assert_eq!(rows[3].spend, -3.0);
    }

    #[test]
    fn a_customer_with_only_returns_has_no_panel() {
        let mut rows = vec![];
        customer_panel(&[act(0, 0, -5.0, Day::MIN)], &[9, 19], 4, &mut rows);
        assert!(rows.is_empty());
    }
}
