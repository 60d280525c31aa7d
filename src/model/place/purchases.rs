//! The BTYD quantities served per customer beside the chain's forecast: P(alive) and the
//! expected number of purchase days in the next 1..=H periods, from the customer's purchase
//! history (x, t_x, T in days) at the as-of date and the model's own BTYD fit — the one its blend
//! uses (BG/NBD or Pareto/NBD), BG/NBD where it has no blend. The same numbers in `kam score`,
//! the snapshot's customers (`GET /v1/customers/{id}`) and `POST /v1/predict` by transactions;
//! customers given by features have no history, so none.

use crate::domain::btyd::baselines::{BtydBaselines, PurchaseHistory};
use crate::domain::btyd::blend::BtydModel;
use crate::domain::calendar::{PeriodUnit, day_of};
use crate::model::artifact::ModelArtifact;
use chrono::NaiveDate;

/// A model's purchase model, ready to forecast customers.
#[derive(Clone, Debug)]
pub struct PurchaseOutlook {
    models: BtydBaselines,
    with: BtydModel,
    unit: PeriodUnit,
}

/// One customer's BTYD quantities.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomerPurchases {
    pub p_alive: f64,
    /// Expected purchase days by the end of period h = 1..=H after the as-of date.
    pub expected_purchases: Vec<f64>,
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
        Some(Self { models: info.baselines(), with, unit: model.periods.unit })
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

    /// The customer's quantities at `as_of` over the next `horizon` periods.
    pub fn customer(&self, history: &PurchaseHistory, as_of: NaiveDate, horizon: usize) -> Option<CustomerPurchases> {
        let h = history.to_history();
        let p_alive = self.p_alive(history)?;
        let expected_purchases = self
            .horizon_days(as_of, horizon)
            .into_iter()
            .map(|t| self.models.forecast_with(self.with, &h, t).map_or(f64::NAN, |f| f.expected_purchases))
            .collect();
        Some(CustomerPurchases { p_alive, expected_purchases })
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
        };
        let as_of = NaiveDate::from_ymd_opt(2024, 12, 31).unwrap();
        assert_eq!(o.horizon_days(as_of, 3), [31.0, 59.0, 90.0]);
        let quarterly = PurchaseOutlook { unit: PeriodUnit::Quarter, ..o };
        assert_eq!(quarterly.horizon_days(as_of, 2), [90.0, 181.0]);
    }
}
