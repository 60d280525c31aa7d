//! Backtest: train on the history up to a calibration end, forecast the following k periods, and
//! compare with what happened — always beside naive baselines and the BTYD models.

use crate::domain::activity::Activity;
use crate::domain::backtest::Evaluation;
use crate::domain::transactions::CustomerAttributes;
use crate::model::artifact::ModelArtifact;
use crate::model::blend::train_blended;
use crate::model::config::TrainConfig;
use crate::model::holdout::{Baselines, score_holdout};
pub use crate::model::holdout::{EvaluateError, HoldoutEnd};
use crate::model::train::{SourceInfo, Stage};
use chrono::NaiveDate;

/// Trains on `activity` up to `calibration_end` (with the blend, where configured), forecasts the
/// holdout and scores the forecasts.
pub fn evaluate(
    activity: &Activity,
    attributes: Option<&CustomerAttributes>,
    config: &TrainConfig,
    source: SourceInfo,
    calibration_end: NaiveDate,
    holdout_end: HoldoutEnd,
    progress: &mut dyn FnMut(Stage),
) -> Result<(ModelArtifact, Evaluation), EvaluateError> {
    let mut head_config = config.clone();
    head_config.period.as_of = Some(calibration_end);
    let model = train_blended(activity, attributes, &head_config, source, progress)?;
    let (evaluation, _) = score_holdout(activity, attributes, &model, holdout_end, Baselines::Standard)?;
    Ok((model, evaluation))
}
