//! Spend regression: next-period spend from the customer's current state, log RFM features,
//! tenure and numeric attributes. Three candidates ([`SpendModelKind`]):
//!
//! - `ols`: ordinary least squares of spend;
//! - `log_ols`: least squares of ln(1 + max(spend, 0)) (a return-only period counts as no
//!   spend), back-transformed with Duan's smearing estimate s = mean(exp(residual)):
//!   E[spend | x] ≈ s·exp(x'β) − 1;
//! - `tweedie`: a Tweedie GLM (variance power 1 < p < 2, log link) of max(spend, 0) by iteratively
//!   reweighted least squares, which handles the many zero periods without a transform.
//!
//! Least-squares fits use only sufficient statistics (X'X, X'y, y'y), which add across shards, so
//! they run on every customer-period without holding the design matrix in memory (a million
//! customers over a dozen periods would need ~1 GB for it). The smearing factor and the GLM need
//! the rows themselves; they use a deterministic sample ([`SpendSample`], at most
//! [`FIT_SAMPLE`] customer-periods chosen by a hash). [`select`] compares the candidates on
//! held-out moves. The coefficients live in kam's own type so a saved model is rebuilt from its
//! numbers alone.

mod design;
mod model;
mod moments;
mod sample;
mod select;
mod tweedie;

#[cfg(test)]
mod tests;

pub use design::{SpendDesign, log_target};
pub use model::{GlmFit, SpendError, SpendModel, SpendModelKind};
pub use moments::SpendMoments;
pub use sample::{FIT_SAMPLE, HELD_OUT_SAMPLE, SpendSample, sample_key, sample_rate};
pub use select::{
    HeldOut, MIN_HELD_OUT, SelectionInputs, SpendCandidate, SpendChoice, SpendSelection, TOTAL_ERROR_TOLERANCE_PP,
    choose, score_on, select,
};
pub use tweedie::tweedie_unit_deviance;
