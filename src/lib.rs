//! kam — key-account movement.
//!
//! From transaction history kam derives per-period RFM features, places every customer in a
//! segment (new, key, core, occasional, dormant, lapsed), fits a Markov chain of moves between
//! segments and a regression of next-period spend, and stores the result as a versioned model.
//!
//! # Layout
//!
//! Data flow one way: `cli` or `http` → `ingest` and `store` (I/O) → `domain` (pure) → `store`
//! and `http` (I/O).
//!
//! - [`domain`]: the pure core — periods, aggregation, panel, segments, Markov chain (with
//!   credible intervals, time-homogeneity and order tests, optional covariate first steps),
//!   intervals on every forecast number from posterior draws, spend models (OLS, log-OLS with smearing,
//!   a Tweedie GLM, chosen on held-out moves), value flows (revenue or margin, less service
//!   cost), configuration, the model
//!   artifact, the training pipeline, placing customers at an as-of date, forecasts, the
//!   backtest and its metrics, and the simulator.
//! - [`ingest`]: CSV and Parquet files → validated [`domain::transactions::Transactions`], with
//!   column mapping and errors that name file, line, column and value.
//! - [`store`]: model artifacts under `models/`: content-addressed, written atomically, and the
//!   `CURRENT` pointer to the active one.
//! - [`http`]: the prediction API (`kam serve`): axum router, one error type, hot model swap.
//! - [`report`]: the HTML page of `kam report` and of the dashboard at `/` (template, style and
//!   script embedded from `assets/`).
//! - [`cli`]: one file per subcommand (`generate`, `train`, `score`, `evaluate`, `serve`,
//!   `models`, `report`); the only place that uses `anyhow`.

pub mod app;
pub mod cli;
pub mod domain;
pub mod http;
pub mod ingest;
pub mod model;
pub mod store;
