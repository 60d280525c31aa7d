//! The BTYD quantities served per customer beside the chain's forecast: P(alive) and the
//! expected number of purchase days in the next 1..=H periods, from the customer's purchase
//! history (x, t_x, T in days) at the as-of date and the model's own BTYD fit — the one its blend
//! uses (BG/NBD or Pareto/NBD), BG/NBD where it has no blend. The same numbers in `kam score`,
//! the snapshot's customers (`GET /v1/customers/{id}`) and `POST /v1/predict` by transactions;
//! customers given by features have no history, so none.
//!
//! Beside them, from the same fit and the customer's recent spend, its own standing ahead
//! ([`crate::domain::btyd::tiers_ahead`]): P(no purchase) by each horizon, its own expected spend
//! in each period (expected purchases there × its Gamma–Gamma spend per purchase), the
//! probability of leaving its tier (for a key account: of not being key at h) and the value at
//! risk over the horizon — its expected value if it stays (keeps buying at its own rate) less its
//! expected value.

use crate::domain::btyd::baselines::{BtydBaselines, PurchaseHistory};
use crate::domain::btyd::blend::BtydModel;
use crate::domain::btyd::tiers_ahead::{TierInputs, tiers_ahead};
use crate::domain::calendar::{PeriodUnit, day_of};
use crate::domain::forecast::portfolio::{Outlook, OutlookByState, Standing, spend_change};
use crate::domain::forecast::{CustomerForecast, Forecaster};
use crate::domain::states::Segmenter;
use crate::model::artifact::ModelArtifact;
use crate::model::place::CustomerNow;
use chrono::NaiveDate;

/// A model's purchase model, ready to forecast customers.
#[derive(Clone, Debug)]
pub struct PurchaseOutlook {
    models: BtydBaselines,
    with: BtydModel,
    unit: PeriodUnit,
    /// The model's tiers and trailing window.
    segmenter: Segmenter,
    window: usize,
    /// The blend's weight on the chain's spend (`None`: the model has no blend).
    spend_weight: Option<f64>,
}

/// A customer's spend per period and values as served where the model blends (see
/// [`PurchaseOutlook::serve`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ServedValue {
    pub spend: Vec<f64>,
    pub value_horizon: f64,
    pub value_infinite: Option<f64>,
}

/// One customer's BTYD quantities.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomerPurchases {
    pub p_alive: f64,
    /// Expected purchase days by the end of period h = 1..=H after the as-of date.
    pub expected_purchases: Vec<f64>,
    /// P(no purchase day by the end of period h).
    pub p_no_purchase: Vec<f64>,
    /// Its own expected spend in period h (not by it): the period's expected purchases × its
    /// expected spend per purchase.
    pub spend: Vec<f64>,
    /// Its expected spend in period h if it stays: its rate given alive × the period's days ×
    /// its spend per purchase.
    pub spend_if_retained: Vec<f64>,
    /// P(key at h): buys in period h with a trailing value at the key cut or above (empty for a
    /// scheme without tiers).
    pub p_key: Vec<f64>,
    /// P(not in its tier or a higher one at h): for a key account, of not being key; for a
    /// customer now in no tier (no trailing value yet), empty.
    pub p_leave_tier: Vec<f64>,
}

impl CustomerPurchases {
    /// Its expected value over the horizon if it stays, each period discounted at
    /// `discount_rate` as the chain's values are.
    pub fn value_if_retained(&self, discount_rate: f64) -> f64 {
        let mut factor = 1.0;
        let mut out = 0.0;
        for kept in &self.spend_if_retained {
            factor /= 1.0 + discount_rate;
            out += kept * factor;
        }
        out
    }
}

impl PurchaseOutlook {
    /// `None` for a model without a BTYD fit (`[btyd] blend = "off"`, or every fit failed).
    pub fn new(model: &ModelArtifact) -> Option<Self> {
        let info = model.btyd.as_ref()?;
        let with = match (&info.blend, info.bg_nbd, info.pareto_nbd) {
            (Some(b), _, _) => b.with,
            (None, Some(_), _) => BtydModel::BgNbd,
            (None, None, Some(_)) => BtydModel::ParetoNbd,
            (None, None, None) => return None,
        };
        Some(Self {
            models: info.baselines(),
            with,
            unit: model.periods.unit,
            segmenter: model.segmenter(),
            window: model.segments.scheme.window as usize,
            spend_weight: info.blend.as_ref().map(|b| b.spend.weight),
        })
    }

    /// Days from the end of `as_of` to the end of each of the next `horizon` periods.
    pub fn horizon_days(&self, as_of: NaiveDate, horizon: usize) -> Vec<f64> {
        let end = day_of(as_of);
        let at = self.unit.ordinal(end);
        (1..=horizon as i64).map(|h| f64::from(self.unit.end(at + h) - end)).collect()
    }

    /// The customer's P(alive).
    pub fn p_alive(&self, history: &PurchaseHistory) -> Option<f64> {
        self.models.p_alive(self.with, &history.to_history())
    }

    /// The customer's quantities at `as_of` over the next `horizon` periods. `recent_spend` is
    /// its spend in the last periods, the as-of period first; `trailing` its trailing value now
    /// (`None` without a panel row: no tier of its own).
    pub fn customer(
        &self,
        history: &PurchaseHistory,
        recent_spend: &[f64],
        trailing: Option<f64>,
        as_of: NaiveDate,
        horizon: usize,
    ) -> Option<CustomerPurchases> {
        let h = history.to_history();
        let p_alive = self.p_alive(history)?;
        let rate = self.models.rate_given_alive(self.with, &h)?;
        let z = self.models.spend_per_purchase(&h);
        let days = self.horizon_days(as_of, horizon);
        let forecasts: Vec<_> = days.iter().map(|&t| self.models.forecast_with(self.with, &h, t)).collect();
        let expected_purchases: Vec<f64> =
            forecasts.iter().map(|f| f.map_or(f64::NAN, |f| f.expected_purchases)).collect();
        let p_no_purchase = forecasts.iter().map(|f| f.map_or(f64::NAN, |f| f.p_no_purchase)).collect();
        let mut before = (0.0, 0.0);
        let mut spend = Vec::with_capacity(horizon);
        let mut spend_if_retained = Vec::with_capacity(horizon);
        for (&d, &purchases) in days.iter().zip(&expected_purchases) {
            spend.push((purchases - before.1).max(0.0) * z);
            spend_if_retained.push(rate.shape / rate.rate * (d - before.0) * z);
            before = (d, purchases);
        }
        let cuts = self.segmenter.thresholds();
        let inputs = TierInputs { p_alive, rate, spend_per_purchase: z, recent_spend, window: self.window, cuts };
        let tiers = if cuts.is_empty() { Vec::new() } else { tiers_ahead(&inputs, &days) };
        let p_key = tiers.iter().map(|t| t.p_at_least[0]).collect();
        let own_tier = trailing.filter(|_| !cuts.is_empty()).map(|v| self.segmenter.tier_of(v));
        let p_leave_tier = match own_tier {
            Some(k) => tiers.iter().map(|t| 1.0 - t.p_at_least.get(k).copied().unwrap_or(t.p_active)).collect(),
            None => Vec::new(),
        };
        Some(CustomerPurchases {
            p_alive,
            expected_purchases,
            p_no_purchase,
            spend,
            spend_if_retained,
            p_key,
            p_leave_tier,
        })
    }

    /// The frequency × recency grid of expected purchases over the next period and P(alive),
    /// for a customer observed from the model's first data day to its as-of date, frequencies
    /// up to about one repeat purchase a fortnight (at least 6, at most 60), 12 × 12 cells.
    pub fn grid(&self, model: &ModelArtifact) -> Option<crate::domain::btyd::baselines::FrequencyRecencyGrid> {
        let t = f64::from(day_of(model.periods.as_of) - day_of(model.data.first_date));
        let next = *self.horizon_days(model.periods.as_of, 1).first()?;
        let max_frequency = ((t / 14.0).round() as u32).clamp(6, 60);
        self.models.frequency_recency_grid(self.with, t, next, max_frequency, 12, 12)
    }

    /// [`Self::customer`] of a placed customer (`None` without a purchase history).
    pub fn of(&self, now: &CustomerNow, as_of: NaiveDate, horizon: usize) -> Option<CustomerPurchases> {
        let history = now.history.as_ref()?;
        self.customer(history, &now.recent_spend, now.last.as_ref().map(|r| r.monetary), as_of, horizon)
    }

    /// The customer's spend and values as served, where the model blends: in each period
    /// w × the chain's spend (`chain_spend`, its own regression prediction at h = 1) +
    /// (1 − w) × its own BTYD spend, w the blend's spend weight set on held-out periods (the
    /// blend `kam evaluate` scores); the values discounted as the chain's, the infinite one
    /// keeping the chain's tail beyond the horizon. `None` where the model has no blend: the
    /// chain's numbers stand.
    pub fn serve(
        &self,
        chain_spend: &[f64],
        chain_value_horizon: f64,
        chain_value_infinite: Option<f64>,
        own: &CustomerPurchases,
        discount_rate: f64,
    ) -> Option<ServedValue> {
        let w = self.spend_weight?;
        let spend: Vec<f64> = chain_spend.iter().zip(&own.spend).map(|(c, o)| w * c + (1.0 - w) * o).collect();
        let mut factor = 1.0;
        let mut value_horizon = 0.0;
        for s in &spend {
            factor /= 1.0 + discount_rate;
            value_horizon += s * factor;
        }
        Some(ServedValue {
            value_infinite: chain_value_infinite.map(|v| v + value_horizon - chain_value_horizon),
            spend,
            value_horizon,
        })
    }

    /// [`Self::serve`] into a chain forecast: its spend per period and values become the served
    /// ones (unchanged where the model has no blend).
    pub fn serve_into(&self, f: &mut CustomerForecast, own: &CustomerPurchases, discount_rate: f64) {
        let chain: Vec<f64> = f.horizons.iter().map(|h| h.expected_spend).collect();
        if let Some(v) = self.serve(&chain, f.value_horizon, f.value_infinite, own, discount_rate) {
            for (h, s) in f.horizons.iter_mut().zip(v.spend) {
                h.expected_spend = s;
            }
            f.value_horizon = v.value_horizon;
            f.value_infinite = v.value_infinite;
        }
    }
}

/// A placed customer's standing at the horizon's end from its own quantities `own` and its
/// expected (served) value over the horizon `value`.
pub fn standing(now: &CustomerNow, own: &CustomerPurchases, discount_rate: f64, value: f64) -> Standing {
    let value_if_retained = own.value_if_retained(discount_rate);
    Standing {
        value_if_retained,
        value_at_risk: (value_if_retained - value).max(0.0),
        p_leave_tier: own.p_leave_tier.last().copied(),
        p_key: own.p_key.last().copied(),
        p_no_purchase: own.p_no_purchase.last().copied().unwrap_or(f64::NAN),
        silent_days: now.last.map_or(0, |r| r.recency_days),
        usual_gap_days: now.history.filter(|h| h.x > 0).map(|h| f64::from(h.t_x) / f64::from(h.x)),
        spend_change: spend_change(&now.recent_spend),
    }
}

/// A placed customer's outlook over the forecaster's horizon, as listings, reports and summaries
/// rank it: the chain's value and churn (from its own first-step row where it has one), the
/// served value where the model blends, and its own standing where it has a purchase history.
pub fn outlook(
    customer_id: String,
    now: &CustomerNow,
    by_state: &OutlookByState,
    forecaster: &Forecaster,
    purchases: Option<&PurchaseOutlook>,
    as_of: NaiveDate,
) -> Outlook {
    let params = forecaster.params();
    let (chain_spend, value, value_infinite, churn) = match &now.first_step {
        Some(q) => {
            let f = forecaster.customer_with_first_step(now.state, q, now.next_spend);
            let spend = f.horizons.iter().map(|h| h.expected_spend).collect();
            (spend, f.value_horizon, f.value_infinite, f.horizons.last().map_or(0.0, |h| h.churn))
        }
        None => {
            let (value, churn) = by_state.value_and_churn(now.state, now.next_spend);
            (by_state.spend(now.state, now.next_spend), value, None, churn)
        }
    };
    let own = purchases.and_then(|p| Some((p, p.of(now, as_of, params.horizon)?)));
    let value = own
        .as_ref()
        .and_then(|(p, c)| p.serve(&chain_spend, value, value_infinite, c, params.discount_rate))
        .map_or(value, |v| v.value_horizon);
    let standing = own.as_ref().map(|(_, c)| standing(now, c, params.discount_rate, value));
    Outlook {
        customer_id,
        state: now.state,
        value,
        churn,
        p_alive: own.as_ref().map(|(_, c)| c.p_alive),
        previous_state: now.previous_state,
        standing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn horizons_end_with_their_calendar_periods() {
        let o = PurchaseOutlook {
            models: BtydBaselines::from_params(None, None, None, 0),
            with: BtydModel::BgNbd,
            unit: PeriodUnit::Month,
            segmenter: crate::domain::states::tests::scheme(12, true).segmenter(Vec::new()),
            window: 12,
            spend_weight: None,
        };
        let as_of = NaiveDate::from_ymd_opt(2024, 12, 31).unwrap();
        assert_eq!(o.horizon_days(as_of, 3), [31.0, 59.0, 90.0]);
        let quarterly = PurchaseOutlook { unit: PeriodUnit::Quarter, ..o };
        assert_eq!(quarterly.horizon_days(as_of, 2), [90.0, 181.0]);
    }
}
