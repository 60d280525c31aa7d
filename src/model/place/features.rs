//! Placing a customer by its current features instead of its transactions (the API's customers
//! given by segment and/or RFM): missing features take the smallest values consistent with the
//! segment, and spend the model's mean in it; a missing segment is derived from tenure,
//! purchases and monetary value with the model's own cut-points.

use crate::domain::panel::PanelRow;
use crate::domain::states::Segmenter;
use crate::model::artifact::ModelArtifact;
use std::collections::BTreeMap;

/// A customer's current features as a client gives them: any may be missing.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PartialFeatures<'a> {
    pub segment: Option<&'a str>,
    pub recency_days: Option<u32>,
    pub frequency: Option<u32>,
    pub monetary: Option<f64>,
    pub tenure_periods: Option<u32>,
    pub purchases: Option<u32>,
    pub spend: Option<f64>,
    pub periods_since_purchase: Option<u32>,
    /// Numeric attributes of the model's spend design, by name.
    pub attributes: Option<&'a BTreeMap<String, f64>>,
}

/// Why a feature cannot be used: the field (`monetary`, `attributes.size`, …) and the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeatureProblem {
    pub field: String,
    pub problem: String,
}

fn problem(p: &mut Vec<FeatureProblem>, field: String, problem: impl Into<String>) {
    p.push(FeatureProblem { field, problem: problem.into() });
}

/// A customer given by features, ready to forecast.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureCustomer {
    pub state: usize,
    /// The customer's current period as a panel row (period 0).
    pub row: PanelRow,
    /// The spend design's attributes, the training mean where not given.
    pub attributes: Vec<f64>,
    /// The features that took their documented default.
    pub defaulted: Vec<&'static str>,
    /// `given` or `derived` (from tenure, purchases and monetary with the model's cut-points).
    pub segment_from: &'static str,
}

/// Mean length of the model's periods, in days.
fn period_days(model: &ModelArtifact) -> f64 {
    let spans = &model.periods.spans;
    if spans.is_empty() {
        return 1.0;
    }
    spans.iter().map(|(a, b)| (*b - *a).num_days() as f64 + 1.0).sum::<f64>() / spans.len() as f64
}

/// Places customers by their current features with a model's cut-points (what it needs from the
/// model is computed once, then reused for every customer).
pub struct FeaturePlacer<'a> {
    model: &'a ModelArtifact,
    segmenter: Segmenter,
    /// `inactive[s]`: state s means no purchase in the period.
    inactive: Vec<bool>,
    period_days: f64,
}

impl<'a> FeaturePlacer<'a> {
    pub fn new(model: &'a ModelArtifact) -> Self {
        Self { model, segmenter: model.segmenter(), inactive: model.inactive_states(), period_days: period_days(model) }
    }
}

/// Builds a customer's panel row and state from `c`, filling in the documented defaults;
/// `None` (with every problem in `p`, by field) when the features cannot place it.
fn place_features(c: &PartialFeatures, cx: &FeaturePlacer, p: &mut Vec<FeatureProblem>) -> Option<FeatureCustomer> {
    let model = cx.model;
    let states = &model.segments.states;
    let scheme = &model.segments.scheme;
    let segmenter = &cx.segmenter;
    let mut ok = true;
    for (name, v) in [("monetary", c.monetary), ("spend", c.spend)] {
        if v.is_some_and(|v| !v.is_finite()) {
            problem(p, name.into(), "must be a finite number");
            ok = false;
        }
    }
    // Attributes by name; the training mean where missing.
    let names = &model.spend.model.design().attributes;
    let mut attributes = model.spend.attribute_means.clone();
    if let Some(given) = c.attributes {
        for (name, v) in given {
            match names.iter().position(|n| n == name) {
                Some(k) if v.is_finite() => attributes[k] = *v,
                Some(_) => {
                    problem(p, format!("attributes.{name}"), "must be a finite number");
                    ok = false;
                }
                None => {
                    problem(
                        p,
                        format!("attributes.{name}"),
                        format!("the model has no attribute {name:?}; it uses {names:?}"),
                    );
                    ok = false;
                }
            }
        }
    }
    let derived_state = match c.segment {
        Some(name) => match model.state_index(name) {
            Some(s) => Some(s),
            None => {
                problem(p, "segment".into(), format!("unknown segment {name:?}; the model's segments are {states:?}"));
                return None;
            }
        },
        None => match (c.tenure_periods, c.purchases, c.monetary) {
            (Some(tenure), Some(purchases), Some(monetary)) if purchases > 0 || c.periods_since_purchase.is_some() => {
                let psp = if purchases > 0 { 0 } else { c.periods_since_purchase.unwrap_or(0) };
                if purchases == 0 && (psp == 0 || psp > tenure) {
                    problem(
                        p,
                        "periods_since_purchase".into(),
                        "with purchases 0 it must be at least 1 and at most tenure_periods",
                    );
                    return None;
                }
                let row = PanelRow {
                    period: 0,
                    purchases,
                    spend: 0.0,
                    margin: 0.0,
                    recency_days: 0,
                    periods_since_purchase: psp,
                    frequency: purchases,
                    monetary,
                    tenure,
                };
                Some(segmenter.state_of(&row))
            }
            _ => {
                problem(
                    p,
                    "segment".into(),
                    "required unless tenure_periods, purchases and monetary are given \
                     (and periods_since_purchase when purchases is 0)",
                );
                return None;
            }
        },
    };
    let state = derived_state?;
    if !ok {
        return None;
    }
    let active = !cx.inactive[state];
    let mut defaulted = Vec::new();
    let mut take = |name: &'static str, v: Option<u32>, d: u32| {
        v.unwrap_or_else(|| {
            defaulted.push(name);
            d
        })
    };
    let purchases = take("purchases", c.purchases, u32::from(active));
    let frequency = take("frequency", c.frequency, purchases);
    // The least periods since purchase the segment allows.
    let least_silence = if active {
        0
    } else {
        // Trailing values to try: the given one, or one in each tier (for tier-split inactive states).
        let mut values: Vec<f64> = segmenter.thresholds().to_vec();
        values.push(f64::MIN);
        if let Some(m) = c.monetary {
            values = vec![m];
        }
        (1..=scheme.lapse_after)
            .find(|&k| {
                values.iter().any(|&monetary| {
                    let row = PanelRow {
                        period: 0,
                        purchases: 0,
                        spend: 0.0,
                        margin: 0.0,
                        recency_days: 0,
                        periods_since_purchase: k,
                        frequency: 0,
                        monetary,
                        tenure: k,
                    };
                    segmenter.state_of(&row) == state
                })
            })
            .unwrap_or(1)
    };
    let psp = take("periods_since_purchase", c.periods_since_purchase, least_silence);
    let tenure = take("tenure_periods", c.tenure_periods, if state == 0 { 0 } else { psp.max(1) });
    let half = (cx.period_days / 2.0).round() as u32;
    // Saturating: a periods_since_purchase of 2e8 must not wrap around to a recent purchase.
    let recency =
        take("recency_days", c.recency_days, half.saturating_add(psp.saturating_mul(cx.period_days.round() as u32)));
    let spend = c.spend.unwrap_or_else(|| {
        defaulted.push("spend");
        model.mean_revenue(state)
    });
    let monetary = c.monetary.unwrap_or_else(|| {
        defaulted.push("monetary");
        spend
    });
    let row = PanelRow {
        period: 0,
        purchases,
        spend,
        margin: 0.0,
        recency_days: recency,
        periods_since_purchase: psp,
        frequency,
        monetary,
        tenure,
    };
    let segment_from = if c.segment.is_some() { "given" } else { "derived" };
    Some(FeatureCustomer { state, row, attributes, defaulted, segment_from })
}

impl FeaturePlacer<'_> {
    /// Places one customer; `Err` with every problem found, by field.
    pub fn place(&self, features: &PartialFeatures) -> Result<FeatureCustomer, Vec<FeatureProblem>> {
        let mut problems = Vec::new();
        match place_features(features, self, &mut problems) {
            Some(c) if problems.is_empty() => Ok(c),
            _ => Err(problems),
        }
    }
}
