//! Training configuration: what a `kam.toml` holds. Every field has a default; `check` turns a
//! configuration into checked parameters or names the offending field.

use crate::domain::calendar::PeriodUnit;
use crate::domain::chain::fit::TransitionParams;
use crate::domain::spend::SpendChoice;
use crate::domain::states::{SegmentScheme, TierRule};
use crate::domain::value::ValueConfig;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The whole training configuration (`kam train --config kam.toml`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub period: PeriodConfig,
    pub segments: SegmentConfig,
    pub transitions: TransitionConfig,
    pub spend: SpendConfig,
    pub value: ValueConfig,
    pub btyd: BtydConfig,
}

/// `[btyd]`: the BTYD models beside the chain.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BtydConfig {
    /// auto: fit BG/NBD, Pareto/NBD and Gamma–Gamma at the as-of date and blend the better one's
    /// no-purchase probabilities and spend with the chain's, the weights set on held-out periods
    /// inside the training data (see `model::blend`); off: the chain alone.
    pub blend: BlendChoice,
}

/// Whether forecasts blend the chain with a BTYD model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlendChoice {
    #[default]
    Auto,
    Off,
}

/// Period length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitName {
    Week,
    Month,
    Quarter,
    Year,
    /// Fixed runs of `length_days` days from `anchor`.
    Days,
}

/// `[period]`: how days are grouped and where training stops.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PeriodConfig {
    /// week, month, quarter, year or days.
    pub unit: UnitName,
    /// Period length in days when `unit = "days"`.
    pub length_days: Option<u32>,
    /// A day on which a period starts, when `unit = "days"` (default: the first transaction).
    pub anchor: Option<NaiveDate>,
    /// Train on periods ending on or before this date (default: the end of the last complete
    /// period in the data).
    pub as_of: Option<NaiveDate>,
}

impl Default for PeriodConfig {
    fn default() -> Self {
        Self { unit: UnitName::Month, length_days: None, anchor: None, as_of: None }
    }
}

/// How tiers are cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleName {
    /// `cuts` are cumulative shares of active customer-periods (top 20%, top 50%, …).
    TopShare,
    /// `cuts` are cumulative shares of value (the smallest set holding 80%, …).
    ValueShare,
    /// `cuts` are minimum trailing values, highest first.
    Fixed,
}

/// `[segments]`: the states of the chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SegmentConfig {
    /// Trailing window in periods for frequency and monetary value.
    pub window: u32,
    /// Periods without a purchase after which a customer is lapsed.
    pub lapse_after: u32,
    /// Split the inactive state by periods since the last purchase (dormant_1, dormant_2, …).
    pub split_inactive: bool,
    /// Split every inactive state (lapsed too) by the tier of the trailing value, so a silent
    /// former key account is told apart from a silent one-off buyer.
    pub inactive_tiers: bool,
    /// Value tiers among customers who bought in a period, highest first.
    pub tiers: Vec<String>,
    /// How tiers are cut: top_share, value_share or fixed.
    pub rule: RuleName,
    /// One cut per tier boundary (see `rule`).
    pub cuts: Vec<f64>,
    /// Name of the first-purchase state.
    pub new: String,
    /// Name of the inactive state(s).
    pub dormant: String,
    /// Name of the churn state.
    pub lapsed: String,
}

impl Default for SegmentConfig {
    fn default() -> Self {
        Self {
            window: 12,
            lapse_after: 12,
            split_inactive: true,
            inactive_tiers: true,
            tiers: vec!["key".into(), "core".into(), "occasional".into()],
            rule: RuleName::TopShare,
            cuts: vec![0.2, 0.5],
            new: "new".into(),
            dormant: "dormant".into(),
            lapsed: "lapsed".into(),
        }
    }
}

/// `[transitions]`: the Markov fit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransitionConfig {
    /// Additive prior count on every allowed move (0 = plain maximum likelihood).
    pub prior: f64,
    /// Fit the matrix on the moves of the last K periods only (default: all periods) — the fix
    /// the diagnostics suggest when the chain changes over time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recent_periods: Option<usize>,
    /// Fit a multinomial logit of the next state on the customer's RFM values and attributes per
    /// origin, kept where it beats the pooled row on the last training period's moves (see
    /// `domain::chain::covariates`); forecasts then use the customer's own first step.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub covariates: bool,
}

impl Default for TransitionConfig {
    fn default() -> Self {
        Self { prior: 0.5, recent_periods: None, covariates: false }
    }
}

/// `[spend]`: the regression of next-period spend.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpendConfig {
    /// auto (compare ols, log_ols and tweedie on the moves into the last training period and
    /// keep the best; see the README), ols, log_ols or tweedie.
    pub model: SpendChoice,
    /// Variance power of the Tweedie model, strictly between 1 and 2.
    pub tweedie_power: f64,
}

impl Default for SpendConfig {
    fn default() -> Self {
        Self { model: SpendChoice::Auto, tweedie_power: 1.5 }
    }
}

/// A configuration error, naming the field.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{field}: {problem}")]
pub struct ConfigError {
    pub field: String,
    pub problem: String,
}

/// Checked training parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainParams {
    pub unit: UnitName,
    pub length_days: Option<u32>,
    pub anchor: Option<NaiveDate>,
    pub as_of: Option<NaiveDate>,
    pub scheme: SegmentScheme,
    pub transitions: TransitionParams,
    /// Periods of moves the matrix is fitted on (`None`: all).
    pub recent_periods: Option<usize>,
    pub covariates: bool,
}

impl TrainParams {
    /// The period unit, with the anchor of fixed-day periods defaulting to `first_date`.
    pub fn period_unit(&self, first_date: NaiveDate) -> PeriodUnit {
        match self.unit {
            UnitName::Week => PeriodUnit::Week,
            UnitName::Month => PeriodUnit::Month,
            UnitName::Quarter => PeriodUnit::Quarter,
            UnitName::Year => PeriodUnit::Year,
            UnitName::Days => {
                PeriodUnit::Days { length: self.length_days.unwrap_or(1), anchor: self.anchor.unwrap_or(first_date) }
            }
        }
    }
}

impl TrainConfig {
    /// Parses a TOML configuration.
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// The configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a config always serializes")
    }

    /// Validates every field and returns checked parameters.
    pub fn check(&self) -> Result<TrainParams, ConfigError> {
        let err = |field: &str, problem: String| ConfigError { field: field.into(), problem };
        let p = &self.period;
        match (p.unit, p.length_days) {
            (UnitName::Days, None) => {
                return Err(err("period.length_days", "is required when period.unit = \"days\"".into()));
            }
            (UnitName::Days, Some(0)) => return Err(err("period.length_days", "must be at least 1".into())),
            (UnitName::Days, _) => {}
            (_, Some(_)) => {
                return Err(err("period.length_days", "applies only when period.unit = \"days\"".into()));
            }
            _ => {}
        }
        let s = &self.segments;
        let rule = match s.rule {
            RuleName::TopShare => TierRule::TopShare(s.cuts.clone()),
            RuleName::ValueShare => TierRule::ValueShare(s.cuts.clone()),
            RuleName::Fixed => TierRule::Fixed(s.cuts.clone()),
        };
        let scheme = SegmentScheme {
            new: s.new.clone(),
            tiers: s.tiers.clone(),
            rule,
            dormant: s.dormant.clone(),
            lapsed: s.lapsed.clone(),
            lapse_after: s.lapse_after,
            split_inactive: s.split_inactive,
            inactive_tiers: s.inactive_tiers,
            window: s.window,
        };
        scheme.check().map_err(|e| match e {
            crate::domain::states::SegmentError::Invalid { field, problem } => {
                err(&format!("segments.{field}"), problem)
            }
            other => err("segments", other.to_string()),
        })?;
        let transitions = TransitionParams { prior: self.transitions.prior };
        transitions.check().map_err(|e| err("transitions.prior", e.to_string()))?;
        if self.transitions.recent_periods == Some(0) {
            return Err(err("transitions.recent_periods", "must be at least 1 period".into()));
        }
        let power = self.spend.tweedie_power;
        if !(power > 1.0 && power < 2.0) {
            return Err(err("spend.tweedie_power", format!("must be strictly between 1 and 2, got {power}")));
        }
        let cost = self.value.service_cost_per_period;
        if !cost.is_finite() || cost < 0.0 {
            return Err(err("value.service_cost_per_period", format!("must be a finite number ≥ 0, got {cost}")));
        }
        if self.value.service_cost_attribute.as_ref().is_some_and(|a| a.trim().is_empty()) {
            return Err(err("value.service_cost_attribute", "must name a column of the customers file".into()));
        }
        Ok(TrainParams {
            unit: p.unit,
            length_days: p.length_days,
            anchor: p.anchor,
            as_of: p.as_of,
            scheme,
            transitions,
            recent_periods: self.transitions.recent_periods,
            covariates: self.transitions.covariates,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::value::ValueBasis;

    #[test]
    fn an_empty_file_is_the_default_configuration() {
        assert_eq!(TrainConfig::from_toml("").unwrap(), TrainConfig::default());
        assert!(TrainConfig::default().check().is_ok());
    }

    #[test]
    fn spend_and_value_sections_parse() {
        let c = TrainConfig::from_toml(
            "[spend]\nmodel = \"log_ols\"\n[value]\nbasis = \"margin\"\nservice_cost_attribute = \"cost_to_serve\"\n",
        )
        .unwrap();
        assert_eq!(c.spend.model, SpendChoice::LogOls);
        assert_eq!(c.value.basis, ValueBasis::Margin);
        assert!(!c.value.is_revenue() && TrainConfig::default().value.is_revenue());
        assert_eq!(
            c.value.describe(),
            "margin net of service cost (attribute cost_to_serve per period) in every period not lapsed"
        );
        assert!(c.check().is_ok());
        assert_eq!(TrainConfig::from_toml(&c.to_toml()).unwrap(), c);
    }

    #[test]
    fn the_default_roundtrips_through_toml() {
        let c = TrainConfig::default();
        assert_eq!(TrainConfig::from_toml(&c.to_toml()).unwrap(), c);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = TrainConfig::from_toml("[segments]\nwindoww = 3\n").unwrap_err();
        assert!(e.to_string().contains("windoww"), "{e}");
    }

    #[test]
    fn errors_name_the_field() {
        let c = TrainConfig::from_toml("[period]\nunit = \"days\"\n").unwrap();
        assert_eq!(c.check().unwrap_err().field, "period.length_days");
        let c = TrainConfig::from_toml("[segments]\ncuts = [0.2]\n").unwrap();
        assert_eq!(c.check().unwrap_err().field, "segments.cuts");
        let c = TrainConfig::from_toml("[transitions]\nprior = -1.0\n").unwrap();
        assert_eq!(c.check().unwrap_err().field, "transitions.prior");
        // Settings that would allocate without bound or overflow are refused, naming the field.
        for (toml, field) in [
            ("[transitions]\nprior = 1e308\n", "transitions.prior"),
            ("[segments]\nlapse_after = 5000\n", "segments.lapse_after"),
            ("[segments]\nwindow = 521\n", "segments.window"),
        ] {
            let e = TrainConfig::from_toml(toml).unwrap().check().unwrap_err();
            assert_eq!(e.field, field, "{toml}: {e}");
        }
        let mut c = TrainConfig::default();
        c.segments.lapse_after = 120;
        c.segments.window = 120;
        assert!(c.check().is_ok());
        let c = TrainConfig::from_toml("[spend]\ntweedie_power = 2.0\n").unwrap();
        assert_eq!(c.check().unwrap_err().field, "spend.tweedie_power");
        let c = TrainConfig::from_toml("[value]\nservice_cost_per_period = -3.0\n").unwrap();
        assert_eq!(c.check().unwrap_err().field, "value.service_cost_per_period");
        let c = TrainConfig::from_toml("[value]\nservice_cost_attribute = \" \"\n").unwrap();
        assert_eq!(c.check().unwrap_err().field, "value.service_cost_attribute");
        let e = TrainConfig::from_toml("[spend]\nmodel = \"lasso\"\n").unwrap_err();
        assert!(e.to_string().contains("model"), "{e}");
    }
}
