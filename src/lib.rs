//! kam — key-account movement.
//!
//! From transaction history kam derives per-period RFM features, places every customer in a
//! segment (new, key, core, occasional, dormant, lapsed), fits a Markov chain of moves between
//! segments and a regression of next-period spend, and stores the result as a versioned model.
//!
//! # Layout
//!
//! Layers import only downward: [`domain`] ← [`model`] ← [`app`] ← {[`cli`], [`http`]}, with
//! [`ingest`] and [`store`] as the I/O beside them (`tests/layout.rs` checks it over the `use`
//! lines). Where each question has its one home:
//!
//! - [`domain`]: pure estimators and forecasts; no files, no network, no threads of its own, no
//!   artifact.
//!   - periods: [`domain::calendar`]; transactions and attributes: [`domain::transactions`];
//!     their per-(customer, period) aggregation, **the activity table** every later step reads
//!     (built in process or read from an engine's output): [`domain::activity`]; the panel and **the RFM feature transform**
//!     ([`domain::panel::PanelRow::rfm_features`]); segment schemes and cut-points:
//!     [`domain::states`].
//!   - the chain: counts and **sums of period tables** ([`domain::chain::counts::sum_tables`]);
//!     **Dirichlet row smoothing** ([`domain::chain::fit::dirichlet_row`]), the matrix, its
//!     intervals and posterior ([`domain::chain::fit`]); covariate first steps
//!     ([`domain::chain::covariates`], over the moves of [`domain::chain::moves`]); the order,
//!     time-homogeneity and recent-window checks ([`domain::chain::diagnostics`]).
//!   - spend models and their choice: [`domain::spend`]; value flows: [`domain::value`]; the BTYD
//!     models (BG/NBD, Pareto/NBD, Gamma–Gamma) on (x, t_x, T) summaries: [`domain::btyd`].
//!   - **first passage, churn, periods to lapse and discounted tails**: the one kernel
//!     `domain::forecast::kernel`, run by the point forecast ([`domain::forecast::Forecaster`])
//!     and by each posterior draw ([`domain::forecast::intervals`]); **value concentration**
//!     ([`domain::forecast::portfolio::Concentration`]).
//!   - the backtest's record ([`domain::backtest`]) and its metrics ([`domain::metrics`]); **the
//!     sampling hash** ([`domain::sampling`]); how data-parallel loops are cut
//!     ([`domain::shards`]).
//!   - **defaults**: horizon, horizon range and discount rate ([`domain::forecast::DEFAULT_HORIZON`],
//!     [`domain::forecast::MAX_HORIZON`], [`domain::forecast::DEFAULT_DISCOUNT_RATE`]); draws and
//!     level of the intervals ([`domain::forecast::intervals::DEFAULT_DRAWS`],
//!     [`domain::forecast::intervals::DEFAULT_LEVEL`]).
//! - [`model`]: the artifact and the pure pipelines that make and apply it — the configuration
//!   (one [`model::config::TrainConfig`] for `kam.toml`, the flags and `POST /v1/train`, checked
//!   into [`model::config::TrainParams`]), the artifact (typed [`model::artifact::ArtifactError`]),
//!   training, placing customers (also by partial features, [`model::place::features`]), the
//!   backtest pipeline, the simulator, and the rayon executor of the domain's shards.
//! - [`app`]: use cases shared by the two front ends — **train and publish**
//!   ([`app::publish::train_and_publish`]), typed views, the report's data and page.
//! - [`ingest`]: CSV and Parquet files → validated transactions, with column mapping and errors
//!   that name file, line, column and value; the SQL of `kam aggregate-sql`
//!   ([`ingest::activity_sql`]) and an engine's activity table read back ([`ingest::activity`]).
//! - [`store`]: model artifacts under `models/` (content-addressed, written atomically, the
//!   `CURRENT` pointer) and **the snapshot codec** ([`store::snapshot`]).
//! - [`http`]: the prediction API (`kam serve`): axum router, one error type, hot model swap.
//! - [`cli`]: one file per subcommand; the only place that uses `anyhow`.

pub mod app;
pub mod cli;
pub mod domain;
pub mod http;
pub mod ingest;
pub mod model;
pub mod store;
