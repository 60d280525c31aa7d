//! Value flows: what one period of a customer is worth, on the configured basis (`[value]`):
//! revenue (spend) or margin, less a service cost in every period the customer is not lapsed.
//!
//! They enter the model in two places. The chain's per-state value flows m (the mean value of a
//! period spent in each state; `SpendInfo::spend_by_state`) average the customer-periods' net
//! flows, so the state mean carries the state's average cost to serve. The customer's own first
//! period is the spend regression's prediction of the next period's gross value (revenue or
//! margin: the regression's target) less the customer's own service cost times the chain's
//! probability of not being lapsed next period ([`NextValue`]). With the default (revenue, no
//! cost) both are exactly spend, as before.

use crate::domain::panel::PanelRow;
use crate::domain::spend::SpendModel;
use crate::model::config::{ValueBasis, ValueConfig};

/// Why the value configuration cannot be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ValueError {
    #[error("value.basis = \"margin\" needs a margin column in the transactions (--margin-col, or a `margin` header)")]
    NoMargin,
    #[error(
        "value.service_cost_attribute: no numeric column {name:?} in the customers file (--customers); numeric columns: {available:?}"
    )]
    NoCostAttribute { name: String, available: Vec<String> },
}

/// The configured value of a customer-period.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueFlow {
    basis: ValueBasis,
    cost_per_period: f64,
    /// Index of the cost attribute among the design's attributes.
    cost_attribute: Option<usize>,
}

impl ValueFlow {
    /// The flow of `config`, with the cost attribute found among `attributes` (the spend
    /// design's numeric attributes, in order).
    pub fn new(config: &ValueConfig, attributes: &[String]) -> Result<Self, ValueError> {
        let cost_attribute =
            match &config.service_cost_attribute {
                None => None,
                Some(name) => Some(attributes.iter().position(|a| a == name).ok_or_else(|| {
                    ValueError::NoCostAttribute { name: name.clone(), available: attributes.to_vec() }
                })?),
            };
        Ok(Self { basis: config.basis, cost_per_period: config.service_cost_per_period, cost_attribute })
    }

    /// Plain revenue: no margin, no cost.
    pub fn revenue() -> Self {
        Self { basis: ValueBasis::Revenue, cost_per_period: 0.0, cost_attribute: None }
    }

    pub fn basis(&self) -> ValueBasis {
        self.basis
    }

    /// A service cost is subtracted.
    pub fn has_cost(&self) -> bool {
        self.cost_per_period != 0.0 || self.cost_attribute.is_some()
    }

    /// The period's gross value: spend or margin (the spend regression's target).
    pub fn gross(&self, row: &PanelRow) -> f64 {
        match self.basis {
            ValueBasis::Revenue => row.spend,
            ValueBasis::Margin => row.margin,
        }
    }

    /// The customer's service cost per period, from its attribute values (design order, gaps
    /// already filled with the training mean).
    pub fn service_cost(&self, attributes: &[f64]) -> f64 {
        self.cost_per_period + self.cost_attribute.map_or(0.0, |k| attributes[k])
    }

    /// The period's net value: gross, less the service cost unless the customer is lapsed.
    pub fn flow(&self, row: &PanelRow, lapsed: bool, attributes: &[f64]) -> f64 {
        let gross = self.gross(row);
        if lapsed || !self.has_cost() { gross } else { gross - self.service_cost(attributes) }
    }
}

/// The customer's own next-period value: the regression's prediction less the expected service
/// cost (cost × P(not lapsed next period | current state)).
#[derive(Clone, Debug)]
pub struct NextValue {
    flow: ValueFlow,
    /// `served[s]`: probability that a customer in state s is not lapsed next period.
    served: Vec<f64>,
    /// Number of attributes at the end of the feature vector.
    attributes: usize,
}

impl NextValue {
    /// From the chain's one-step matrix `p` and which states are lapsed.
    pub fn new(flow: ValueFlow, p: &[Vec<f64>], lapsed: &[bool], attributes: usize) -> Self {
        let served = p
            .iter()
            .map(|row| 1.0 - row.iter().zip(lapsed).filter(|(_, l)| **l).map(|(q, _)| q).sum::<f64>())
            .collect();
        Self { flow, served, attributes }
    }

    /// (value, standard error) of the next period for a customer in `state` with features `x`
    /// laid out by the spend design. The cost is known, so the standard error is the
    /// regression's.
    pub fn predict(&self, spend: &SpendModel, state: usize, x: &[f64]) -> (f64, f64) {
        let (v, se) = (spend.predict(x), spend.prediction_se(x));
        if !self.flow.has_cost() {
            return (v, se);
        }
        let cost = self.flow.service_cost(&x[x.len() - self.attributes..]);
        (v - cost * self.served[state], se)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(spend: f64, margin: f64) -> PanelRow {
        PanelRow { spend, margin, ..PanelRow::empty(3, 2) }
    }

    #[test]
    fn revenue_without_cost_is_spend_exactly() {
        let f = ValueFlow::new(&ValueConfig::default(), &[]).unwrap();
        assert_eq!(f, ValueFlow::revenue());
        for (s, lapsed) in [(12.5, false), (-3.0, true), (-0.0, false)] {
            assert_eq!(f.flow(&row(s, 1.0), lapsed, &[]).to_bits(), s.to_bits());
        }
    }

    #[test]
    fn margin_net_of_service_cost_by_hand() {
        let config = ValueConfig {
            basis: ValueBasis::Margin,
            service_cost_per_period: 5.0,
            service_cost_attribute: Some("cost_to_serve".into()),
        };
        let f = ValueFlow::new(&config, &["size".into(), "cost_to_serve".into()]).unwrap();
        // Margin 40, cost 5 + 12 = 17 → 23; lapsed: no cost → 40; a return (margin −8): −8 − 17.
        assert_eq!(f.flow(&row(100.0, 40.0), false, &[3.0, 12.0]), 23.0);
        assert_eq!(f.flow(&row(100.0, 40.0), true, &[3.0, 12.0]), 40.0);
        assert_eq!(f.flow(&row(-20.0, -8.0), false, &[3.0, 12.0]), -25.0);
        assert_eq!(
            ValueFlow::new(&config, &["size".into()]).unwrap_err(),
            ValueError::NoCostAttribute { name: "cost_to_serve".into(), available: vec!["size".into()] }
        );
    }
}
