//! Where each customer stands at an as-of date under a trained model: its panel rows and states
//! (with the model's own cut-points), and its predicted next-period spend.

pub mod features;
pub mod purchases;

use crate::domain::activity::{Activity, ActivityError, aggregate};
use crate::domain::btyd::baselines::{PurchaseHistory, history_of};
use crate::domain::calendar::{Calendar, CalendarError, date_of};
use crate::domain::panel::{PanelRow, customer_panel};
use crate::domain::transactions::{CustomerAttributes, Transactions};
use crate::model::artifact::ModelArtifact;
use chrono::NaiveDate;

/// Why customers could not be placed.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error(transparent)]
    Activity(#[from] ActivityError),
    #[error("the activity table is in {table} periods but the model's are {model}")]
    UnitMismatch { table: String, model: String },
    #[error(transparent)]
    Calendar(#[from] CalendarError),
    #[error("the model's covariate transitions are unusable: {0}")]
    Covariates(#[from] crate::domain::chain::covariates::CovariateError),
}

/// A customer at the as-of date.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomerNow {
    pub customer: u32,
    pub state: usize,
    /// State in the period before (None for a customer new in the last period or unknown).
    pub previous_state: Option<usize>,
    /// The customer's panel row in the last period; `None` when it had no purchase by the as-of
    /// date (it is scored as `new`).
    pub last: Option<PanelRow>,
    /// Spend regression prediction for the next period.
    pub next_spend: f64,
    /// Its standard error from the coefficients' sampling covariance.
    pub next_spend_se: f64,
    /// Its own first-step row over the states (a kept covariate model of its state, see
    /// [`crate::domain::chain::covariates`]); `None`: the pooled chain's row.
    pub first_step: Option<Vec<f64>>,
    /// Its purchase history (x, t_x, T in days) at the as-of date, for the BTYD quantities;
    /// `None` when given by features or with no purchase day by then.
    pub history: Option<PurchaseHistory>,
    /// Its spend in the last W − 1 periods (W the trailing window), the as-of period first — what
    /// stays in its trailing value over the next periods; empty when given by features.
    pub recent_spend: Vec<f64>,
}

/// RFM values of a customer-period, as written in score and snapshot files and the API.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Rfm {
    pub purchases: u32,
    pub spend: f64,
    pub recency_days: u32,
    pub frequency: u32,
    pub monetary: f64,
    pub tenure_periods: u32,
}

impl From<&PanelRow> for Rfm {
    fn from(r: &PanelRow) -> Self {
        Rfm {
            purchases: r.purchases,
            spend: r.spend,
            recency_days: r.recency_days,
            frequency: r.frequency,
            monetary: r.monetary,
            tenure_periods: r.tenure,
        }
    }
}

impl Rfm {
    /// The panel row these values stand for (period and periods since purchase unknown: 0).
    pub fn to_row(&self) -> PanelRow {
        PanelRow {
            purchases: self.purchases,
            spend: self.spend,
            recency_days: self.recency_days,
            frequency: self.frequency,
            monetary: self.monetary,
            ..PanelRow::empty(0, self.tenure_periods)
        }
    }
}

/// A customer's place at the as-of date as one JSON line: the per-customer snapshot beside a
/// model, and the first fields of `kam score`'s JSON Lines.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CustomerLine {
    pub customer_id: String,
    pub segment: String,
    pub previous_segment: Option<String>,
    pub rfm: Option<Rfm>,
    pub next_spend: f64,
    /// Standard error of `next_spend` (0 in snapshots written before kam stored it).
    #[serde(default)]
    pub next_spend_se: f64,
    /// The customer's own first-step row, in state order, when a covariate model covers its
    /// segment (absent otherwise: the pooled row).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_step: Option<Vec<f64>>,
    /// Its purchase history at the as-of date (absent in snapshots written before kam stored
    /// it, and for customers without a purchase day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchase_history: Option<PurchaseHistory>,
    /// Its spend in the last W − 1 periods, the as-of period first (absent in snapshots written
    /// before kam stored it, and for customers with no purchase by then).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_spend: Vec<f64>,
}

impl CustomerNow {
    /// This customer as a [`CustomerLine`], with the caller's ids and the model's state names.
    pub fn line(&self, ids: &[String], states: &[String]) -> CustomerLine {
        CustomerLine {
            customer_id: ids[self.customer as usize].clone(),
            segment: states[self.state].clone(),
            previous_segment: self.previous_state.map(|s| states[s].clone()),
            rfm: self.last.as_ref().map(Rfm::from),
            next_spend: self.next_spend,
            next_spend_se: self.next_spend_se,
            first_step: self.first_step.clone(),
            purchase_history: self.history,
            recent_spend: self.recent_spend.clone(),
        }
    }
}

/// All customers at an as-of date.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub as_of: NaiveDate,
    pub calendar: Calendar,
    pub customers: Vec<CustomerNow>,
}

/// Attribute values of the model's design for each customer: by name from `given`, the training
/// mean where missing.
pub fn aligned_attributes(model: &ModelArtifact, given: Option<&CustomerAttributes>, customers: usize) -> Vec<f64> {
    let names = &model.spend.model.design().attributes;
    let means = &model.spend.attribute_means;
    let k = names.len();
    let mut out = Vec::with_capacity(customers * k);
    let index: Vec<Option<usize>> =
        names.iter().map(|n| given.and_then(|g| g.names.iter().position(|m| m == n))).collect();
    for c in 0..customers {
        for (j, idx) in index.iter().enumerate() {
            let v = match (idx, given) {
                (Some(i), Some(g)) => g.values[c * g.names.len() + i],
                _ => f64::NAN,
            };
            out.push(if v.is_nan() { means[j] } else { v });
        }
    }
    out
}

/// The activity table of `tx` in the model's periods.
pub fn activity_of(tx: &Transactions, model: &ModelArtifact) -> Result<Activity, ScoreError> {
    Ok(aggregate(tx, model.periods.unit)?)
}

/// Calls `f(customer, rows, states)` for every customer with a purchase within `calendar`,
/// with the model's window and cut-points.
pub fn for_each_customer(
    activity: &Activity,
    model: &ModelArtifact,
    calendar: &Calendar,
    mut f: impl FnMut(u32, &[PanelRow], &[usize]),
) -> Vec<bool> {
    let ends = calendar.ends();
    let segmenter = model.segmenter();
    let window = model.segments.scheme.window;
    let mut rows = Vec::with_capacity(calendar.len());
    let mut states = Vec::with_capacity(calendar.len());
    let mut seen = vec![false; activity.customers()];
    for c in 0..activity.customers() {
        customer_panel(activity.customer(c), &ends, window, &mut rows);
        if rows.is_empty() {
            continue;
        }
        seen[c] = true;
        states.clear();
        states.extend(rows.iter().map(|r| segmenter.state_of(r)));
        f(c as u32, &rows, &states);
    }
    seen
}

/// Places customers of `activity` ([`activity_of`]) one at a time, in any order and on any
/// thread: what [`snapshot`] does for all of them, for a writer that streams them out.
pub struct Placer<'a> {
    activity: &'a Activity,
    model: &'a ModelArtifact,
    calendar: Calendar,
    ends: Vec<crate::domain::calendar::Day>,
    segmenter: crate::domain::states::Segmenter,
    attrs: Vec<f64>,
    first_step: Option<crate::domain::chain::covariates::FirstStep>,
    next_value: crate::domain::value::NextValue,
}

/// A thread's working buffers for [`Placer::place`].
#[derive(Default)]
pub struct PlaceScratch {
    rows: Vec<PanelRow>,
    states: Vec<usize>,
    x: Vec<f64>,
}

impl<'a> Placer<'a> {
    /// At `as_of` (default: the model's as-of date).
    pub fn new(
        activity: &'a Activity,
        model: &'a ModelArtifact,
        as_of: Option<NaiveDate>,
        attributes: Option<&CustomerAttributes>,
    ) -> Result<Self, ScoreError> {
        if activity.unit != model.periods.unit {
            return Err(ScoreError::UnitMismatch {
                table: activity.unit.to_string(),
                model: model.periods.unit.to_string(),
            });
        }
        let (first, last) = (activity.first_day, activity.last_day);
        let as_of = as_of.unwrap_or(model.periods.as_of);
        let (calendar, _) =
            Calendar::fit(model.periods.unit, first, last.max(crate::domain::calendar::day_of(as_of)), Some(as_of))?;
        Ok(Placer {
            activity,
            model,
            ends: calendar.ends(),
            calendar,
            segmenter: model.segmenter(),
            attrs: aligned_attributes(model, attributes, activity.customers()),
            first_step: model.first_step()?,
            next_value: model.next_value(),
        })
    }

    /// Customers placed.
    pub fn customers(&self) -> usize {
        self.activity.customers()
    }

    /// Customer `c` at the as-of date. Customers with no purchase by then are scored as `new`
    /// with empty RFM (recency, frequency, monetary 0).
    pub fn place(&self, c: usize, scratch: &mut PlaceScratch) -> CustomerNow {
        let model = self.model;
        let design = model.spend.model.design();
        let k = design.attributes.len();
        let spend = &model.spend.model;
        let window = model.segments.scheme.window;
        let customer_attrs = &self.attrs[c * k..(c + 1) * k];
        let history = history_of(self.activity, c, self.calendar.as_of()).as_ref().map(PurchaseHistory::from);
        let PlaceScratch { rows, states, x } = scratch;
        x.resize(design.len(), 0.0);
        customer_panel(self.activity.customer(c), &self.ends, window, rows);
        if rows.is_empty() {
            let row = PanelRow::empty(self.calendar.len() as u32 - 1, 0);
            design.features(0, &row, customer_attrs, x);
            let (next_spend, next_spend_se) = self.next_value.predict(spend, 0, x);
            return CustomerNow {
                customer: c as u32,
                state: 0,
                previous_state: None,
                last: None,
                next_spend,
                next_spend_se,
                first_step: self.first_step.as_ref().and_then(|f| f.row_of(0, &row, customer_attrs)),
                history,
                recent_spend: Vec::new(),
            };
        }
        states.clear();
        states.extend(rows.iter().map(|r| self.segmenter.state_of(r)));
        let n = rows.len();
        let last = rows[n - 1];
        let state = states[n - 1];
        design.features(state, &last, customer_attrs, x);
        let (next_spend, next_spend_se) = self.next_value.predict(spend, state, x);
        CustomerNow {
            customer: c as u32,
            state,
            previous_state: (n >= 2).then(|| states[n - 2]),
            last: Some(last),
            next_spend,
            next_spend_se,
            first_step: self.first_step.as_ref().and_then(|f| f.row_of(state, &last, customer_attrs)),
            history,
            recent_spend: rows.iter().rev().take((window as usize).saturating_sub(1)).map(|r| r.spend).collect(),
        }
    }

    /// The snapshot's as-of date and calendar.
    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }
}

/// Places every customer of `activity` ([`activity_of`]) at `as_of` (default: the model's as-of
/// date), on all cores; see [`Placer::place`].
pub fn snapshot(
    activity: &Activity,
    model: &ModelArtifact,
    as_of: Option<NaiveDate>,
    attributes: Option<&CustomerAttributes>,
) -> Result<Snapshot, ScoreError> {
    use crate::domain::shards::Parallel;
    let placer = Placer::new(activity, model, as_of, attributes)?;
    // In the domain's fixed shards on all cores, joined in customer order.
    let shards = crate::model::parallel::Rayon.in_shards(placer.customers(), |range| {
        let mut scratch = PlaceScratch::default();
        range.map(|c| placer.place(c, &mut scratch)).collect::<Vec<_>>()
    });
    let customers = shards.into_iter().flatten().collect();
    let calendar = placer.calendar;
    Ok(Snapshot { as_of: date_of(calendar.as_of()), calendar, customers })
}
