//! The model artifact: everything training learned, in one serializable value.

use crate::domain::btyd::baselines::{BtydBaselines, FitReport};
use crate::domain::btyd::bgnbd::BgNbdParams;
use crate::domain::btyd::blend::BlendInfo;
use crate::domain::btyd::gamma_gamma::GammaGammaParams;
use crate::domain::btyd::pareto_nbd::ParetoNbdParams;
use crate::domain::calendar::PeriodUnit;
use crate::domain::chain::covariates::{CovariateError, FirstStep};
use crate::domain::chain::fit::TransitionModel;
use crate::domain::spend::{SpendModel, SpendSelection};
use crate::domain::states::SegmentScheme;
use crate::domain::value::{NextValue, ValueError, ValueFlow};
use crate::model::config::TrainConfig;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Version of the artifact layout; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 2;

/// A trained model, as written to `models/<id>.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelArtifact {
    pub schema_version: u32,
    /// Derived from the content (see the store); empty while the id is being computed.
    pub id: String,
    pub kam_version: String,
    /// The configuration, defaults filled in.
    pub config: TrainConfig,
    pub periods: PeriodsInfo,
    pub data: DataFingerprint,
    pub segments: SegmentsInfo,
    pub transitions: TransitionsInfo,
    pub spend: SpendInfo,
    /// Backtest of the same configuration on the head of the same data (`kam train
    /// --backtest-last K`), if run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backtest: Option<crate::domain::backtest::Evaluation>,
    /// The BTYD models fitted at the as-of date and the blend with the chain (`[btyd] blend =
    /// "auto"`); absent with `blend = "off"` and in older artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub btyd: Option<BtydInfo>,
}

/// BG/NBD, Pareto/NBD and Gamma–Gamma fitted on the customers' (x, t_x, T) at the as-of date
/// (time in days), and how forecasts blend them with the chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BtydInfo {
    pub bg_nbd: Option<BgNbdParams>,
    pub pareto_nbd: Option<ParetoNbdParams>,
    pub gamma_gamma: Option<GammaGammaParams>,
    /// Parameters with standard errors and log-likelihoods.
    pub fits: Vec<FitReport>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
    /// The blend's weights and their held-out evidence; `None` (with `blend_skipped` saying why)
    /// where the data leave no held-out periods to set them on.
    pub blend: Option<BlendInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blend_skipped: Option<String>,
}

pub use crate::domain::btyd::blend::BtydModel;

impl BtydInfo {
    /// The fitted models, ready to forecast.
    pub fn baselines(&self) -> BtydBaselines {
        let customers = self.fits.first().map_or(0, |f| f.customers);
        BtydBaselines::from_params(self.bg_nbd, self.pareto_nbd, self.gamma_gamma, customers)
    }
}

/// The training calendar.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeriodsInfo {
    pub unit: PeriodUnit,
    /// End of the last complete period used for training.
    pub as_of: NaiveDate,
    /// Every training period: first and last day.
    pub spans: Vec<(NaiveDate, NaiveDate)>,
    /// A trailing partial period left out: its first and last day, and the last data day.
    pub partial_period_left_out: Option<(NaiveDate, NaiveDate, NaiveDate)>,
}

/// What the model was trained on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataFingerprint {
    /// BLAKE3 of the activity table's canonical form ([`crate::domain::activity::Activity::content_hash`]):
    /// the same for a file and for an engine's aggregates of it, whatever the file's name, row
    /// order or place.
    pub content_hash: String,
    /// Valid rows read.
    pub rows: u64,
    /// Rows skipped as bad (`--on-bad-row skip`).
    pub rows_skipped: u64,
    /// `--date-range` as given (absent when none was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_range: Option<String>,
    /// Customer-periods far from the bulk of the data ([`crate::domain::activity::unusual_cells`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Rows on or before the as-of date.
    pub rows_used: u64,
    /// Rows after the as-of date (left out).
    pub rows_after_as_of: u64,
    pub customers: u64,
    pub first_date: NaiveDate,
    pub last_date: NaiveDate,
}

/// The segment scheme and what it found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentsInfo {
    pub scheme: SegmentScheme,
    /// State names in chain order.
    pub states: Vec<String>,
    /// Learned cut-points: the minimum trailing value of each tier but the last.
    pub thresholds: Vec<TierThreshold>,
    /// `sizes_by_period[t][s]`: customers in state s in period t.
    pub sizes_by_period: Vec<Vec<u64>>,
    /// Customers with at least one purchase on or before the as-of date.
    pub customers_in_panel: u64,
    /// Customers whose rows up to the as-of date hold no purchase (only returns, or nothing yet).
    pub customers_without_purchase: u64,
    /// Customer-periods in the panel.
    pub panel_rows: u64,
}

/// A learned tier cut-point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TierThreshold {
    pub tier: String,
    pub min_trailing_value: f64,
}

/// The Markov chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransitionsInfo {
    pub model: TransitionModel,
    /// `counts_by_period[t][i][j]`: moves from period t to t + 1.
    pub counts_by_period: Vec<Vec<Vec<u64>>>,
    /// Total observed moves.
    pub moves: u64,
    /// Likelihood-ratio test of time-homogeneity over the periods (none with fewer than two).
    #[serde(default)]
    pub time_homogeneity: Option<crate::domain::chain::diagnostics::ChiSquareTest>,
    /// Likelihood-ratio test of first against second order (none above 64 states or without
    /// three consecutive periods).
    #[serde(default)]
    pub order: Option<crate::domain::chain::diagnostics::ChiSquareTest>,
    /// Rows with too few observations to trust.
    #[serde(default)]
    pub thin_rows: Option<crate::domain::chain::diagnostics::ThinRows>,
    /// Would a chain on recent periods only predict the last period's moves better?
    #[serde(default)]
    pub recent_window: Option<crate::domain::chain::diagnostics::RecentWindowCheck>,
    /// Per-origin multinomial logits of the next state on the customer's covariates
    /// (`[transitions] covariates = true`), with the held-out check that kept or dropped each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covariates: Option<crate::domain::chain::covariates::CovariateTransitions>,
}

fn revenue() -> String {
    "revenue".into()
}

/// The spend regression and the value flows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpendInfo {
    /// Target: the next period's gross value (spend, or margin with `value.basis = "margin"`).
    /// Which regression it is: `model.kind` (and `selection`).
    pub model: SpendModel,
    /// How the spend model was chosen: the candidates' held-out scores, coefficients and
    /// standard errors. Absent in artifacts written before kam had a choice (they are `ols`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<SpendSelection>,
    /// What "spend" and "value" mean in this model's forecasts (`next_spend`, `h{h}_spend`,
    /// `value_horizon`, `value_infinite`, `spend_by_state`): "revenue", or e.g. "margin net of
    /// service cost (…) in every period not lapsed" (see `config.value`).
    #[serde(default = "revenue")]
    pub value_basis: String,
    /// Mean revenue in a period spent in each state, when the value flows are not revenue
    /// (empty otherwise: then `spend_by_state` is it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revenue_by_state: Vec<f64>,
    /// Means used to fill in missing attribute values, in attribute order.
    pub attribute_means: Vec<f64>,
    /// m: mean value of a period spent in each state (the chain's value flows; returns count;
    /// on the basis of `value_basis`, service cost subtracted in states not lapsed).
    pub spend_by_state: Vec<f64>,
    /// Standard error of each of those means (s / √n; 0 where a state has fewer than two
    /// customer-periods). Empty in artifacts written before kam stored it.
    #[serde(default)]
    pub spend_se_by_state: Vec<f64>,
    /// Customers in the panel without a row in the attributes file.
    pub customers_without_attributes: u64,
}

/// Why an artifact's parts do not agree (it cannot be served or scored).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ArtifactError {
    #[error("it has no states")]
    NoStates,
    #[error("its states do not follow from its segment scheme")]
    StatesNotFromScheme,
    #[error("its transition matrix is not {0} × {0}")]
    MatrixShape(usize),
    #[error("a row of its transition matrix is not a probability distribution")]
    MatrixRow,
    #[error("its spend model does not match its states")]
    SpendStates,
    #[error("its spend model's coefficients do not match its design")]
    SpendDesign,
    #[error(transparent)]
    Value(#[from] ValueError),
    #[error("its tier cut-points do not match its tiers")]
    Thresholds,
    #[error("its covariate model's features do not match its attributes")]
    CovariateFeatures,
    #[error(transparent)]
    Covariates(#[from] CovariateError),
}

impl ModelArtifact {
    /// Index of a state by name.
    pub fn state_index(&self, name: &str) -> Option<usize> {
        self.segments.states.iter().position(|s| s == name)
    }
}

impl ModelArtifact {
    /// Checks that the parts agree and the chain can forecast: square matrix over the states,
    /// rows that are probability distributions, a spend model matching the states and its
    /// design, a value flow, cut-points for the tiers and covariate models that fit the chain.
    /// Cheap: nothing is forecast.
    pub fn check(&self) -> Result<(), ArtifactError> {
        let n = self.segments.states.len();
        if n == 0 {
            return Err(ArtifactError::NoStates);
        }
        if self.segments.states != self.segments.scheme.states() {
            return Err(ArtifactError::StatesNotFromScheme);
        }
        let p = self.transitions.model.matrix();
        if p.len() != n || p.iter().any(|r| r.len() != n) {
            return Err(ArtifactError::MatrixShape(n));
        }
        if p.iter().any(|r| r.iter().any(|x| !x.is_finite() || *x < 0.0) || (r.iter().sum::<f64>() - 1.0).abs() > 1e-6)
        {
            return Err(ArtifactError::MatrixRow);
        }
        if self.spend.spend_by_state.len() != n || self.spend.model.design().states.len() != n {
            return Err(ArtifactError::SpendStates);
        }
        if self.spend.attribute_means.len() != self.spend.model.design().attributes.len()
            || self.spend.model.coefficients().len() != self.spend.model.design().len()
        {
            return Err(ArtifactError::SpendDesign);
        }
        self.value_flow()?;
        if self.segments.thresholds.len() + 1 != self.segments.scheme.tiers.len() {
            return Err(ArtifactError::Thresholds);
        }
        if let Some(c) = &self.transitions.covariates
            && c.features.len() != crate::domain::panel::RFM_FEATURES.len() + self.spend.model.design().attributes.len()
        {
            return Err(ArtifactError::CovariateFeatures);
        }
        self.first_step()?;
        Ok(())
    }

    /// The kept covariate models, giving customers their own first-step rows; `None` without
    /// covariates or with none kept.
    pub fn first_step(&self) -> Result<Option<FirstStep>, CovariateError> {
        match &self.transitions.covariates {
            None => Ok(None),
            Some(c) => FirstStep::new(c, &self.segments.states, self.transitions.model.matrix()),
        }
    }

    /// The configured value of a customer-period (`config.value`).
    pub fn value_flow(&self) -> Result<ValueFlow, crate::domain::value::ValueError> {
        ValueFlow::new(&self.config.value, &self.spend.model.design().attributes)
    }

    /// Mean revenue of a period in `state` (for a customer's missing spend feature).
    pub fn mean_revenue(&self, state: usize) -> f64 {
        if self.spend.revenue_by_state.is_empty() {
            self.spend.spend_by_state[state]
        } else {
            self.spend.revenue_by_state[state]
        }
    }

    /// The customer's own next-period value from its spend features: the regression's prediction
    /// less the expected service cost (see [`crate::domain::value`]).
    pub fn next_value(&self) -> NextValue {
        // `check` refuses an artifact whose value flow cannot be built.
        let flow = self.value_flow().unwrap_or_else(|_| ValueFlow::revenue());
        NextValue::new(
            flow,
            self.transitions.model.matrix(),
            &self.lapsed_states(),
            self.spend.model.design().attributes.len(),
        )
    }

    /// Customers per state in the last training period (the mix forecasts start from by default).
    pub fn training_mix(&self) -> Vec<f64> {
        let mut mix: Vec<f64> =
            self.segments.sizes_by_period.last().map(|p| p.iter().map(|&n| n as f64).collect()).unwrap_or_default();
        mix.resize(self.segments.states.len(), 0.0);
        mix
    }

    /// The segmenter with the cut-points learned at training.
    pub fn segmenter(&self) -> crate::domain::states::Segmenter {
        self.segments.scheme.segmenter(self.segments.thresholds.iter().map(|t| t.min_trailing_value).collect())
    }

    /// Index of the top tier's state (the key accounts).
    pub fn key_index(&self) -> Option<usize> {
        self.segments.scheme.key_state()
    }

    /// `lapsed[s]`: state s is a churn state.
    pub fn lapsed_states(&self) -> Vec<bool> {
        self.segments.scheme.state_space().iter().map(|s| s.is_lapsed()).collect()
    }

    /// `inactive[s]`: state s means no purchase in the period.
    pub fn inactive_states(&self) -> Vec<bool> {
        self.segments.scheme.state_space().iter().map(|s| s.is_inactive()).collect()
    }

    /// A forecaster from this model's chain and value flows.
    pub fn forecaster(
        &self,
        params: crate::domain::forecast::ForecastParams,
    ) -> Result<crate::domain::forecast::Forecaster, crate::domain::forecast::ForecastError> {
        crate::domain::forecast::Forecaster::new(
            self.transitions.model.matrix(),
            &self.lapsed_states(),
            self.key_index(),
            &self.spend.spend_by_state,
            params,
        )
    }

    /// Intervals on this model's forecasts from `intervals.draws` posterior draws (`None` with
    /// no draws). Artifacts without spend standard errors treat the value flows as known.
    pub fn bands(
        &self,
        params: crate::domain::forecast::ForecastParams,
        intervals: crate::domain::forecast::intervals::IntervalParams,
    ) -> Option<crate::domain::forecast::intervals::ForecastBands> {
        let n = self.segments.states.len();
        let posterior = self.transitions.model.posterior();
        let zero = vec![0.0; n];
        let spend_se = if self.spend.spend_se_by_state.len() == n { &self.spend.spend_se_by_state } else { &zero };
        let lapsed = self.lapsed_states();
        crate::domain::forecast::intervals::ForecastBands::new(
            &crate::domain::forecast::intervals::ChainInputs {
                posterior: &posterior,
                lapsed: &lapsed,
                key: self.key_index(),
                spend: &self.spend.spend_by_state,
                spend_se,
                horizon: params.horizon,
                discount_rate: params.discount_rate,
            },
            intervals,
        )
    }
}
