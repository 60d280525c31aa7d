//! Typed views of a model, shared by the API, `kam score` and `kam report` (which embeds the
//! same JSON the API answers): the model's description, its chain, a population forecast, the
//! portfolio of its customers, and the flat interval fields of a customer's prediction.

use crate::domain::forecast::ByState;
use crate::domain::forecast::intervals::{CustomerBands, ForecastBands, HorizonBands, Interval};
use crate::domain::forecast::population;
use crate::domain::forecast::portfolio::{Outlook, Portfolio, PortfolioParams, summarise};
use crate::model::artifact::ModelArtifact;
use serde::Serialize;
use std::collections::BTreeMap;

/// A model's description (`GET /v1/model`, `GET /v1/models/{id}`, `kam report`): id, as-of
/// date, period unit and spans, states, segment sizes by period, data fingerprint, thresholds,
/// spend regression and backtest.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ModelView<'a> {
    pub id: &'a str,
    pub kam_version: &'a str,
    pub schema_version: u32,
    pub as_of: chrono::NaiveDate,
    pub period: PeriodView,
    pub states: &'a [String],
    /// The key-account state (the top tier).
    pub key_state: Option<&'a str>,
    /// The churn states.
    pub lapsed_states: Vec<&'a str>,
    /// The six families (only those the scheme has) and their states, in state order: how the
    /// report and the dashboard show states by default.
    #[schema(value_type = Vec<Object>)]
    pub families: Vec<FamilyView>,
    /// Expected purchases over the next period and P(alive) by frequency × recency under the
    /// model's BTYD fit (`null` without one).
    #[schema(value_type = Option<Object>)]
    pub purchase_grid: Option<crate::domain::btyd::baselines::FrequencyRecencyGrid>,
    #[schema(value_type = Object)]
    pub scheme: &'a crate::domain::states::SegmentScheme,
    #[schema(value_type = Vec<Object>)]
    pub thresholds: &'a [crate::model::artifact::TierThreshold],
    #[schema(value_type = Object)]
    pub data: &'a crate::model::artifact::DataFingerprint,
    /// First and last day of every training period.
    #[schema(value_type = Vec<Vec<chrono::NaiveDate>>)]
    pub period_spans: &'a [(chrono::NaiveDate, chrono::NaiveDate)],
    /// `sizes_by_period[t][s]`: customers in state s in period t.
    pub sizes_by_period: &'a [Vec<u64>],
    /// Customers per state in the last training period.
    #[schema(value_type = Option<BTreeMap<String, u64>>)]
    pub segment_sizes_last_period: Option<BTreeMap<&'a str, u64>>,
    #[schema(value_type = Option<Object>)]
    pub backtest: Option<&'a crate::domain::backtest::Evaluation>,
    pub spend: SpendView<'a>,
}

/// The period unit and how many periods the model was trained on.
/// A family and its states.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FamilyView {
    pub name: String,
    pub states: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PeriodView {
    pub unit: String,
    pub periods: usize,
    pub first_day: Option<chrono::NaiveDate>,
    pub last_day: Option<chrono::NaiveDate>,
}

/// The spend regression in a model's description.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SpendView<'a> {
    /// ols, log_ols or tweedie.
    #[schema(value_type = String)]
    pub model: crate::domain::spend::SpendModelKind,
    pub value_basis: &'a str,
    #[schema(value_type = Option<Object>)]
    pub selection: Option<&'a crate::domain::spend::SpendSelection>,
    pub features: &'a [String],
    pub attributes: &'a [String],
    pub observations: u64,
    pub r_squared: f64,
    pub rmse: f64,
    /// Mean value of a period spent in each state (the chain's value flows).
    #[schema(value_type = BTreeMap<String, f64>)]
    pub spend_by_state: BTreeMap<&'a str, f64>,
}

impl<'a> ModelView<'a> {
    pub fn new(m: &'a ModelArtifact) -> Self {
        let states = &m.segments.states;
        let named = |v: &'a [String]| v.iter().map(String::as_str);
        let spend = &m.spend.model;
        Self {
            id: &m.id,
            kam_version: &m.kam_version,
            schema_version: m.schema_version,
            as_of: m.periods.as_of,
            period: PeriodView {
                unit: m.periods.unit.to_string(),
                periods: m.periods.spans.len(),
                first_day: m.periods.spans.first().map(|s| s.0),
                last_day: m.periods.spans.last().map(|s| s.1),
            },
            states,
            key_state: m.key_index().map(|k| states[k].as_str()),
            lapsed_states: named(states).zip(m.lapsed_states()).filter(|(_, l)| *l).map(|(s, _)| s).collect(),
            purchase_grid: crate::model::place::purchases::PurchaseOutlook::new(m).and_then(|p| p.grid(m)),
            families: m
                .segments
                .scheme
                .families()
                .into_iter()
                .map(|(name, members)| FamilyView {
                    name,
                    states: members.iter().map(|&i| states[i].clone()).collect(),
                })
                .collect(),
            scheme: &m.segments.scheme,
            thresholds: &m.segments.thresholds,
            data: &m.data,
            period_spans: &m.periods.spans,
            sizes_by_period: &m.segments.sizes_by_period,
            segment_sizes_last_period: m
                .segments
                .sizes_by_period
                .last()
                .map(|sizes| named(states).zip(sizes.iter().copied()).collect()),
            backtest: m.backtest.as_ref(),
            spend: SpendView {
                model: spend.kind(),
                value_basis: &m.spend.value_basis,
                selection: m.spend.selection.as_ref(),
                features: spend.feature_names(),
                attributes: &spend.design().attributes,
                observations: spend.observations(),
                r_squared: spend.r_squared(),
                rmse: spend.rmse(),
                spend_by_state: named(states).zip(m.spend.spend_by_state.iter().copied()).collect(),
            },
        }
    }
}

/// A model's chain (`GET /v1/model/transitions`, `kam report`): states, prior, counts, matrix
/// with credible intervals, allowed moves, and its diagnostics.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChainView<'a> {
    pub model_id: &'a str,
    pub states: &'a [String],
    pub prior: f64,
    /// Observed moves.
    pub moves: u64,
    /// `counts[i][j]`: moves from state i to state j that the matrix was fitted on.
    pub counts: &'a [Vec<u64>],
    /// `matrix[i][j]`: P(state j next period | state i now).
    pub matrix: &'a [Vec<f64>],
    pub credible_level: f64,
    pub interval_lo: Vec<Vec<f64>>,
    pub interval_hi: Vec<Vec<f64>>,
    pub allowed: &'a [Vec<bool>],
    pub unobserved_origins: &'a [String],
    pub diagnostics: Diagnostics<'a>,
}

/// The chain's checks, as stored in the artifact (`transitions.*`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Diagnostics<'a> {
    #[schema(value_type = Option<Object>)]
    pub time_homogeneity: Option<&'a crate::domain::chain::diagnostics::ChiSquareTest>,
    #[schema(value_type = Option<Object>)]
    pub order: Option<&'a crate::domain::chain::diagnostics::ChiSquareTest>,
    #[schema(value_type = Option<Object>)]
    pub thin_rows: Option<&'a crate::domain::chain::diagnostics::ThinRows>,
    #[schema(value_type = Option<Object>)]
    pub recent_window: Option<&'a crate::domain::chain::diagnostics::RecentWindowCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub covariates: Option<&'a crate::domain::chain::covariates::CovariateTransitions>,
}

impl<'a> ChainView<'a> {
    pub fn new(m: &'a ModelArtifact) -> Self {
        let t = &m.transitions.model;
        let n = t.states().len();
        let bound = |upper: bool| -> Vec<Vec<f64>> {
            (0..n)
                .map(|i| (0..n).map(|j| if upper { t.interval(i, j).1 } else { t.interval(i, j).0 }).collect())
                .collect()
        };
        let d = &m.transitions;
        Self {
            model_id: &m.id,
            states: t.states(),
            prior: t.prior(),
            moves: d.moves,
            counts: t.counts(),
            matrix: t.matrix(),
            credible_level: t.credible_level(),
            interval_lo: bound(false),
            interval_hi: bound(true),
            allowed: t.allowed(),
            unobserved_origins: t.unobserved_origins(),
            diagnostics: Diagnostics {
                time_homogeneity: d.time_homogeneity.as_ref(),
                order: d.order.as_ref(),
                thin_rows: d.thin_rows.as_ref(),
                recent_window: d.recent_window.as_ref(),
                covariates: d.covariates.as_ref(),
            },
        }
    }
}

/// Segment sizes at one horizon.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PeriodSizes {
    pub h: usize,
    /// Expected customers per segment.
    pub sizes: BTreeMap<String, f64>,
    pub total: f64,
    /// 90% interval on the expected sizes (uncertainty in the chain's probabilities).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sizes_lo: Option<BTreeMap<String, f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sizes_hi: Option<BTreeMap<String, f64>>,
    /// 90% prediction interval on the counts that will be observed (adds the chance of each
    /// customer's move; the mix and inflow are rounded to whole customers for it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realized_lo: Option<BTreeMap<String, f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realized_hi: Option<BTreeMap<String, f64>>,
}

/// The response body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ForecastResponse {
    pub model_id: String,
    pub as_of: chrono::NaiveDate,
    pub mix_source: &'static str,
    pub now: BTreeMap<String, f64>,
    pub inflow: f64,
    pub horizons: Vec<PeriodSizes>,
}

impl ForecastResponse {
    /// Segment sizes for horizons 1..=`horizon` from `mix` with `inflow` new customers per
    /// period, with the intervals of `bands` when given (`POST /v1/forecast`, `kam report`).
    pub fn new(
        model: &ModelArtifact,
        mix: &[f64],
        mix_source: &'static str,
        horizon: usize,
        inflow: f64,
        bands: Option<&ForecastBands>,
    ) -> Self {
        let states = &model.segments.states;
        let named = |v: &[f64]| states.iter().cloned().zip(v.iter().copied()).collect::<BTreeMap<_, _>>();
        let sizes = population(model.transitions.model.matrix(), mix, horizon, inflow, 0);
        let bands = bands.map(|b| b.population(mix, horizon, inflow, 0));
        let side = |rows: Option<&Vec<Vec<Interval>>>, h: usize, hi: bool| {
            rows.map(|r| named(&r[h].iter().map(|i| if hi { i.hi } else { i.lo }).collect::<Vec<_>>()))
        };
        ForecastResponse {
            model_id: model.id.clone(),
            as_of: model.periods.as_of,
            mix_source,
            now: named(mix),
            inflow,
            horizons: sizes
                .iter()
                .enumerate()
                .map(|(k, m)| PeriodSizes {
                    h: k + 1,
                    sizes: named(m),
                    total: m.iter().sum(),
                    sizes_lo: side(bands.as_ref().map(|b| &b.expected), k, false),
                    sizes_hi: side(bands.as_ref().map(|b| &b.expected), k, true),
                    realized_lo: side(bands.as_ref().map(|b| &b.realized), k, false),
                    realized_hi: side(bands.as_ref().map(|b| &b.realized), k, true),
                })
                .collect(),
        }
    }
}

/// The summary's response body: the settings, then the [`Portfolio`] fields.
#[derive(Debug, Serialize)]
pub struct SummaryResponse {
    pub model_id: String,
    pub as_of: chrono::NaiveDate,
    pub horizon: usize,
    /// `None` when the values come from a scores file that does not record it.
    pub discount_rate: Option<f64>,
    /// Where the customers come from: `snapshot` (here), or a scores file (in `kam report`).
    pub source: String,
    #[serde(flatten)]
    pub portfolio: Portfolio,
}

impl SummaryResponse {
    /// The portfolio of `outlooks` (values and churn over `horizon` at `discount_rate`), with
    /// the `top` key accounts most at risk.
    pub fn new(
        model: &ModelArtifact,
        outlooks: &[Outlook],
        horizon: usize,
        discount_rate: Option<f64>,
        source: String,
        top: usize,
    ) -> Self {
        let portfolio = summarise(
            outlooks,
            &model.segments.states,
            model.key_index(),
            &model.lapsed_states(),
            PortfolioParams { top, ..PortfolioParams::default() },
        );
        Self { model_id: model.id.clone(), as_of: model.periods.as_of, horizon, discount_rate, source, portfolio }
    }
}

impl From<&CustomerBands> for ValueIntervals {
    /// The customer-level intervals as flat `*_lo` / `*_hi` fields.
    fn from(b: &CustomerBands) -> Self {
        ValueIntervals {
            next_spend_lo: b.next_spend.lo,
            next_spend_hi: b.next_spend.hi,
            expected_periods_to_lapse_lo: b.expected_periods_to_lapse.map(|i| i.lo),
            expected_periods_to_lapse_hi: b.expected_periods_to_lapse.map(|i| i.hi),
            value_horizon_lo: b.value_horizon.lo,
            value_horizon_hi: b.value_horizon.hi,
            value_infinite_lo: b.value_infinite.map(|i| i.lo),
            value_infinite_hi: b.value_infinite.map(|i| i.hi),
        }
    }
}

impl<'a> HorizonIntervals<'a> {
    /// A horizon's intervals as flat `*_lo` / `*_hi` fields, distributions by state name.
    pub fn new(b: &HorizonBands, states: &'a [String]) -> Self {
        HorizonIntervals {
            distribution_lo: ByState { names: states, values: b.distribution.iter().map(|i| i.lo).collect() },
            distribution_hi: ByState { names: states, values: b.distribution.iter().map(|i| i.hi).collect() },
            p_key_lo: b.p_key.lo,
            p_key_hi: b.p_key.hi,
            churn_lo: b.churn.lo,
            churn_hi: b.churn.hi,
            reactivation_lo: b.reactivation.map(|i| i.lo),
            reactivation_hi: b.reactivation.map(|i| i.hi),
            expected_spend_lo: b.expected_spend.lo,
            expected_spend_hi: b.expected_spend.hi,
        }
    }
}

/// A customer's own intervals, flattened into its prediction (`kam score` JSON Lines, the API).
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ValueIntervals {
    pub next_spend_lo: f64,
    pub next_spend_hi: f64,
    pub expected_periods_to_lapse_lo: Option<f64>,
    pub expected_periods_to_lapse_hi: Option<f64>,
    pub value_horizon_lo: f64,
    pub value_horizon_hi: f64,
    pub value_infinite_lo: Option<f64>,
    pub value_infinite_hi: Option<f64>,
}

/// One horizon's intervals, flattened into the horizon of a prediction.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HorizonIntervals<'a> {
    #[schema(value_type = std::collections::BTreeMap<String, f64>)]
    pub distribution_lo: ByState<'a>,
    #[schema(value_type = std::collections::BTreeMap<String, f64>)]
    pub distribution_hi: ByState<'a>,
    pub p_key_lo: f64,
    pub p_key_hi: f64,
    pub churn_lo: f64,
    pub churn_hi: f64,
    pub reactivation_lo: Option<f64>,
    pub reactivation_hi: Option<f64>,
    pub expected_spend_lo: f64,
    pub expected_spend_hi: f64,
}
