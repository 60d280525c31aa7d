//! The pure core: no files, no network, no async. Deterministic given data, parameters and seed.
//!
//! One file per concept, in pipeline order: [`period`] (calendar), [`transaction`] (validated
//! rows and their per-(customer, period) aggregation), [`panel`] (RFM per customer-period),
//! [`segment`] (states), [`markov`] (transition counts, matrix, credible intervals,
//! time-homogeneity test), [`diagnostics`] (order test, thin rows, recent-window check),
//! [`covariates`] (customer-specific first-step rows from a multinomial logit per origin),
//! [`spend`] (regression and its choice), [`value`] (revenue or margin, less service cost),
//! [`config`] (training parameters), [`model`] (the artifact), [`train`] (the pipeline),
//! [`score`] and [`forecast`] (customers at an as-of date and their forecasts), [`intervals`]
//! (posterior draws: intervals on every forecast number), [`portfolio`] (value concentration,
//! churn risk and key accounts at risk, for the report and dashboard), [`evaluate`] and
//! [`metrics`] (the backtest), and [`simulate`] (synthetic data with planted truth).

pub mod config;
pub mod covariates;
pub mod diagnostics;
pub mod evaluate;
pub mod forecast;
pub mod intervals;
pub mod linalg;
pub mod markov;
pub mod metrics;
pub mod model;
pub mod panel;
pub mod period;
pub mod portfolio;
pub mod score;
pub mod segment;
pub mod simulate;
pub mod spend;
pub mod train;
pub mod transaction;
pub mod value;
