//! The integration tests that need nothing but kam: the real `kam` executable in a fresh
//! temporary directory, the router, the server on port 0. (The tests that need Python packages
//! or Chromium are in `tests/external.rs`.)

// Helpers: a sandbox directory and a runner for the executable.
mod util;

// Bad inputs: exit code, message, and models/ left untouched.
mod bad_input;

// The models store through the CLI: list, show, activate, corruption.
mod models;

// Forecasts: kam score (CSV, JSON Lines, Parquet, summary) and kam evaluate, on CDNOW and on
// generated data with a planted chain.
mod forecast;

// Covariate-dependent transitions on generated data where an attribute drives the moves, and
// where it drives nothing.
mod covariates;

// Training end to end: recovery of a planted chain, determinism, formats.
mod pipeline;

// The spend model choice (ols, log_ols, tweedie, auto) and the value basis (margin, service cost).
mod spend;

// The prediction API (kam serve): every route through the router, the server on port 0 during a
// model swap, and the real executable.
mod api;

// kam report: the self-contained HTML page, from the snapshot or a score file; errors.
mod report;

// BTYD models: the published CDNOW parameters recovered.
mod btyd;

// kam evaluate with the defaults on generated businesses unlike CDNOW (weekly, B2B, trending).
mod regimes;

// The crate's layout: layers import downward, no circle, no file over 600 lines.
mod layout;

// What the fuzzer (fuzz/) found, as regression tests, and the property test: any valid transactions train and reload.
mod fuzz_regressions;
