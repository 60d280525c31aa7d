//! The choice of spend model: candidates fitted before the last period, scored on it.

use super::{SpendDesign, SpendError, SpendModel, SpendModelKind, SpendMoments, SpendSample};
use crate::domain::metrics::{SpendErrors, spend_errors};
use crate::domain::shards::Parallel;
use serde::{Deserialize, Serialize};

/// What [`select`] needs from training: the moments and samples of the moves before the last
/// training period (fit) and into it (held out), and of all moves.
pub struct SelectionInputs<'a> {
    pub design: &'a SpendDesign,
    /// Moments with targets (spend, ln(1 + max(spend, 0))) of the moves into periods before the
    /// last one.
    pub fit_moments: &'a SpendMoments,
    /// The same of the moves into the last period.
    pub held_out_moments: &'a SpendMoments,
    /// Sample of the moves before the last period, and of those into it, at the same rate.
    pub fit_sample: &'a SpendSample,
    pub last_sample: &'a SpendSample,
    /// The moves into the last period that are scored (its own rate).
    pub held_out_sample: &'a SpendSample,
    /// The requested model.
    pub choice: SpendChoice,
    pub tweedie_power: f64,
}

/// The configured spend model: a fixed one, or the held-out comparison's choice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpendChoice {
    /// Fit every candidate on all but the last period's moves, score them on those moves, and
    /// keep the one [`select`]'s rule picks.
    #[default]
    Auto,
    Ols,
    LogOls,
    Tweedie,
}

impl SpendChoice {
    pub fn fixed(self) -> Option<SpendModelKind> {
        match self {
            SpendChoice::Auto => None,
            SpendChoice::Ols => Some(SpendModelKind::Ols),
            SpendChoice::LogOls => Some(SpendModelKind::LogOls),
            SpendChoice::Tweedie => Some(SpendModelKind::Tweedie),
        }
    }
}

/// A candidate spend model: its held-out scores (fitted without the last period's moves) and
/// its coefficients with standard errors when fitted on every move.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpendCandidate {
    pub model: SpendModelKind,
    /// Scores on the held-out moves: MAE, RMSE, Spearman, totals, top-20% capture. `None` when
    /// there was no held-out comparison or the candidate could not be fitted.
    pub held_out: Option<SpendErrors>,
    /// Intercept and coefficients on the link scale (feature names as in the chosen model).
    pub intercept: f64,
    pub coefficients: Vec<f64>,
    /// Standard errors of (intercept, coefficients…).
    pub standard_errors: Vec<f64>,
    /// Duan's smearing factor (`log_ols`).
    pub smearing: f64,
    pub observations: u64,
    /// Why the candidate could not be fitted, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// The held-out moves the candidates were compared on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeldOut {
    /// Moves the candidates were fitted on (into periods before the last).
    pub fit_moves: u64,
    /// Moves into the last training period.
    pub held_out_moves: u64,
    /// Of those, the ones scored (a deterministic sample above [`super::HELD_OUT_SAMPLE`]).
    pub scored: u64,
}

/// Which spend model was chosen, why, and how every candidate did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpendSelection {
    /// The configured choice.
    pub requested: SpendChoice,
    pub chosen: SpendModelKind,
    /// The rule, in words, and what it found.
    pub reason: String,
    /// The comparison's data; `None` when there was none (fewer than three periods, or fewer
    /// than [`MIN_HELD_OUT`] moves on either side).
    pub held_out: Option<HeldOut>,
    pub candidates: Vec<SpendCandidate>,
}

/// Fewest moves on each side of the held-out split for a comparison.
pub const MIN_HELD_OUT: u64 = 20;

/// Tolerance of the selection rule, in percentage points of total error.
pub const TOTAL_ERROR_TOLERANCE_PP: f64 = 5.0;

/// The selection rule: among the candidates with held-out scores, those whose |total error| is
/// within [`TOTAL_ERROR_TOLERANCE_PP`] points of the smallest |total error| are admissible; the
/// admissible one with the lowest held-out RMSE wins; ties go to the simpler model (the order of
/// [`SpendModelKind::ALL`]). `None` without scores.
pub fn choose(scores: &[(SpendModelKind, SpendErrors)]) -> Option<SpendModelKind> {
    let abs_total = |e: &SpendErrors| if e.total_error_pct.is_finite() { e.total_error_pct.abs() } else { 0.0 };
    let best_total = scores.iter().map(|(_, e)| abs_total(e)).fold(f64::INFINITY, f64::min);
    let mut best: Option<(SpendModelKind, f64)> = None;
    for kind in SpendModelKind::ALL {
        let Some((_, e)) = scores.iter().find(|(k, _)| *k == kind) else { continue };
        if abs_total(e) > best_total + TOTAL_ERROR_TOLERANCE_PP || !e.rmse.is_finite() {
            continue;
        }
        if best.is_none_or(|(_, r)| e.rmse < r) {
            best = Some((kind, e.rmse));
        }
    }
    best.map(|b| b.0)
}

/// Fits one candidate: `moments` (targets spend, log spend) for the least-squares fits, `sample`
/// for smearing and the GLM.
pub(super) fn fit_candidate(
    kind: SpendModelKind,
    design: &SpendDesign,
    moments: &SpendMoments,
    sample: &SpendSample,
    power: f64,
    start: Option<&[f64]>,
    par: &impl Parallel,
) -> Result<SpendModel, SpendError> {
    match kind {
        SpendModelKind::Ols => SpendModel::fit(design.clone(), &moments.target(0)),
        SpendModelKind::LogOls => SpendModel::fit_log(design.clone(), &moments.target(1), sample),
        SpendModelKind::Tweedie => SpendModel::fit_tweedie(design.clone(), sample, power, start, par),
    }
}

/// Held-out scores of `model` on `sample`.
pub fn score_on(model: &SpendModel, sample: &SpendSample) -> SpendErrors {
    let mut x = vec![0.0; model.design().len()];
    let mut predicted = Vec::with_capacity(sample.len());
    for i in 0..sample.len() {
        sample.features(i, &mut x);
        predicted.push(model.predict(&x));
    }
    spend_errors(&predicted, &sample.target)
}

/// Fits the candidates on the moves before the last period, scores them on the moves into it,
/// chooses by [`choose`] (or takes the configured model), and fits the chosen one and the others
/// on every move. Errors only when the chosen model cannot be fitted on every move.
pub fn select(inputs: &SelectionInputs, par: &impl Parallel) -> Result<(SpendModel, SpendSelection), SpendError> {
    let d = inputs.design;
    let power = inputs.tweedie_power;
    let mut all_moments = inputs.fit_moments.clone();
    all_moments.merge(inputs.held_out_moments);
    let mut all_sample = inputs.fit_sample.clone();
    all_sample.append(inputs.last_sample);

    let comparable = inputs.fit_moments.n() >= MIN_HELD_OUT && inputs.held_out_moments.n() >= MIN_HELD_OUT;
    let mut scores: Vec<(SpendModelKind, SpendErrors)> = Vec::new();
    let mut failures: Vec<(SpendModelKind, String)> = Vec::new();
    // The GLM on every move starts from its fit without the last period (fewer iterations).
    let mut glm_start: Option<Vec<f64>> = None;
    if comparable {
        for kind in SpendModelKind::ALL {
            match fit_candidate(kind, d, inputs.fit_moments, inputs.fit_sample, power, None, par) {
                Ok(m) => {
                    if kind == SpendModelKind::Tweedie {
                        glm_start =
                            Some(std::iter::once(m.intercept()).chain(m.coefficients().iter().copied()).collect());
                    }
                    scores.push((kind, score_on(&m, inputs.held_out_sample)))
                }
                Err(e) => failures.push((kind, e.to_string())),
            }
        }
    }
    let (chosen, reason) = match (inputs.choice.fixed(), choose(&scores)) {
        (Some(k), _) => (k, format!("{k}, as configured")),
        (None, Some(k)) => (
            k,
            format!(
                "{k}: the lowest held-out RMSE among the models whose total error is within {TOTAL_ERROR_TOLERANCE_PP} \
                 points of the best total error"
            ),
        ),
        (None, None) => (
            SpendModelKind::Ols,
            format!(
                "ols: no held-out comparison (it needs at least three periods and {MIN_HELD_OUT} moves into the last \
                 period and before it)"
            ),
        ),
    };
    let mut chosen_model = None;
    let mut candidates = Vec::new();
    for kind in SpendModelKind::ALL {
        let held_out = scores.iter().find(|(k, _)| *k == kind).map(|(_, e)| e.clone());
        match fit_candidate(kind, d, &all_moments, &all_sample, power, glm_start.as_deref(), par) {
            Ok(m) => {
                candidates.push(SpendCandidate {
                    model: kind,
                    held_out,
                    intercept: m.intercept(),
                    coefficients: m.coefficients().to_vec(),
                    standard_errors: m.standard_errors(),
                    smearing: m.smearing(),
                    observations: m.observations(),
                    failed: failures.iter().find(|(k, _)| *k == kind).map(|(_, e)| e.clone()),
                });
                if kind == chosen {
                    chosen_model = Some(m);
                }
            }
            Err(e) => {
                if kind == chosen {
                    return Err(e);
                }
                candidates.push(SpendCandidate {
                    model: kind,
                    held_out,
                    intercept: 0.0,
                    coefficients: Vec::new(),
                    standard_errors: Vec::new(),
                    smearing: 1.0,
                    observations: 0,
                    failed: Some(e.to_string()),
                });
            }
        }
    }
    let selection = SpendSelection {
        requested: inputs.choice,
        chosen,
        reason,
        held_out: comparable.then(|| HeldOut {
            fit_moves: inputs.fit_moments.n(),
            held_out_moves: inputs.held_out_moments.n(),
            scored: inputs.held_out_sample.len() as u64,
        }),
        candidates,
    };
    Ok((chosen_model.expect("the chosen model was fitted"), selection))
}
