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
use serde::{Deserialize, Serialize};

/// What a period of a customer is worth.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueBasis {
    /// Spend (the amounts, returns subtracted).
    #[default]
    Revenue,
    /// The margin column (needs one: `--margin-col` or a `margin` header).
    Margin,
}

/// `[value]`: the value flows behind next-period spend, expected values and the chain's
/// per-state means. With the defaults (revenue, no service cost) value is spend.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValueConfig {
    /// revenue or margin.
    pub basis: ValueBasis,
    /// Cost to serve a customer for one period, subtracted from the value of every period the
    /// customer is not lapsed (a lapsed customer is no longer served).
    pub service_cost_per_period: f64,
    /// A numeric column of the customers file holding each customer's cost to serve per period,
    /// subtracted like `service_cost_per_period` (added to it); customers without a value take
    /// the column mean.
    pub service_cost_attribute: Option<String>,
}

impl ValueConfig {
    /// Value is plain revenue (the default).
    pub fn is_revenue(&self) -> bool {
        self.basis == ValueBasis::Revenue
            && self.service_cost_per_period == 0.0
            && self.service_cost_attribute.is_none()
    }

    /// The basis in words, e.g. "margin net of service cost (5 per period + cost_to_serve)".
    pub fn describe(&self) -> String {
        let basis = match self.basis {
            ValueBasis::Revenue => "revenue",
            ValueBasis::Margin => "margin",
        };
        let mut costs = Vec::new();
        if self.service_cost_per_period != 0.0 {
            costs.push(format!("{} per period", self.service_cost_per_period));
        }
        if let Some(a) = &self.service_cost_attribute {
            costs.push(format!("attribute {a} per period"));
        }
        if costs.is_empty() {
            basis.to_string()
        } else {
            format!("{basis} net of service cost ({}) in every period not lapsed", costs.join(" + "))
        }
    }
}

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
