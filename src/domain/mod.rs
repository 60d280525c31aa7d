//! The pure core: estimators and forecasts. No files, no network, no threads of its own, no
//! model artifact, no configuration file types. Deterministic given data, parameters and seed.
//!
//! In pipeline order: [`calendar`] (periods), [`transactions`] (validated rows), [`activity`]
//! (their per-(customer, period) aggregation, which every later step reads), [`panel`] (RFM per customer-period, and the one RFM
//! feature transform), [`states`] (the segment scheme and its states), [`chain`] (transition
//! counts, the smoothed matrix and its posterior, covariate first steps, diagnostics), [`spend`]
//! (regression and its choice), [`value`] (revenue or margin, less service cost), [`forecast`]
//! (the chain arithmetic, posterior intervals, portfolio views), [`metrics`] (backtest scores),
//! [`linalg`] (small dense algebra) and [`shards`] (how data-parallel loops are cut).

pub mod activity;
pub mod backtest;
pub mod btyd;
pub mod calendar;
pub mod chain;
pub mod forecast;
pub mod linalg;
pub mod metrics;
pub mod panel;
pub mod quantile;
pub mod sampling;
pub mod shards;
pub mod spend;
pub mod states;
pub mod transactions;
pub mod value;
