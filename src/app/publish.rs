//! Train and publish: the one use case behind `kam train` and `POST /v1/train` — train on the
//! activity table (aggregated from a transactions file, or read from an engine's aggregates),
//! optionally backtest the same configuration on the last K periods (stored in the
//! artifact), save the artifact, write the per-customer snapshot beside it, and activate it.
//! Nothing is activated unless every earlier step succeeded, so a failed run leaves the served
//! model and `CURRENT` as they were.

use crate::domain::activity::Activity;
use crate::domain::transactions::CustomerAttributes;
use crate::model::artifact::ModelArtifact;
use crate::model::backtest::{EvaluateError, HoldoutEnd, evaluate};
use crate::model::blend::train_blended;
use crate::model::config::TrainConfig;
use crate::model::place::{Placer, ScoreError};
use crate::model::train::{SourceInfo, Stage, TrainError};
use crate::store::{ModelStore, Saved, StoreError};

/// What to do besides training.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishOptions {
    /// Backtest on the last K periods and store the metrics in the artifact.
    pub backtest_last: Option<usize>,
    /// Write the per-customer snapshot beside the model.
    pub snapshot: bool,
    /// Make the model the active one.
    pub activate: bool,
}

/// A step of the run, as it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Training(Stage),
    /// Backtesting on the last K periods.
    Backtesting(usize),
    WritingModel,
    WritingSnapshot,
    Activating,
}

/// Why a run failed; nothing was activated.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Train(TrainError),
    #[error("backtest_last = {k}: the model has {periods} periods; it must be between 1 and {}", periods.saturating_sub(1))]
    BacktestLast { k: usize, periods: usize },
    #[error("the backtest failed: {0}")]
    Backtest(#[source] EvaluateError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("placing customers for the snapshot: {0}")]
    Snapshot(#[source] ScoreError),
    #[error("the model cannot be activated: {0}")]
    Activate(String),
}

/// A published model.
#[derive(Debug)]
pub struct Published {
    pub artifact: ModelArtifact,
    pub saved: Saved,
    pub activated: bool,
}

/// Trains on `activity` (with `attributes`) under `config`, then backtests, saves, snapshots and
/// activates as `options` say. `activate` makes the saved model the active one (the CLI moves
/// `CURRENT`; the server also swaps the model it serves, under its activation lock).
pub fn train_and_publish(
    store: &ModelStore,
    activity: &Activity,
    source: SourceInfo,
    attributes: Option<&CustomerAttributes>,
    config: &TrainConfig,
    options: PublishOptions,
    progress: &mut dyn FnMut(Step),
    activate: &mut dyn FnMut(&ModelStore, &str) -> Result<(), PublishError>,
) -> Result<Published, PublishError> {
    let mut artifact =
        train_blended(activity, attributes, config, source.clone(), &mut |s| progress(Step::Training(s)))
            .map_err(PublishError::Train)?;
    if let Some(k) = options.backtest_last {
        let spans = &artifact.periods.spans;
        if k < 1 || k >= spans.len() {
            return Err(PublishError::BacktestLast { k, periods: spans.len() });
        }
        progress(Step::Backtesting(k));
        let calibration_end = spans[spans.len() - 1 - k].1;
        let holdout_end = HoldoutEnd::Date(artifact.periods.as_of);
        let (_, ev) = evaluate(activity, attributes, config, source, calibration_end, holdout_end, &mut |_| {})
            .map_err(PublishError::Backtest)?;
        artifact.backtest = Some(ev);
    }
    progress(Step::WritingModel);
    let saved = store.save(&mut artifact)?;
    if options.snapshot {
        progress(Step::WritingSnapshot);
        let placer = Placer::new(activity, &artifact, None, attributes).map_err(PublishError::Snapshot)?;
        crate::store::snapshot::write(
            store.dir(),
            &saved.id,
            &placer,
            &activity.customer_ids,
            &artifact.segments.states,
        )?;
    }
    if options.activate {
        progress(Step::Activating);
        activate(store, &saved.id)?;
    }
    Ok(Published { artifact, saved, activated: options.activate })
}

/// The CLI's activation: check that the model loads, then move `CURRENT`.
pub fn move_current(store: &ModelStore, id: &str) -> Result<(), PublishError> {
    Ok(store.activate(id)?)
}
