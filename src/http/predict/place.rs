//! Checking a prediction request and placing its customers: every problem at once, by JSON
//! path; dates bounded to the model's range.

use super::{MAX_CUSTOMERS, MAX_DETAILS, MAX_TRANSACTIONS, PredictRequest};
use crate::domain::calendar::day_of;
use crate::domain::transactions::{CustomerAttributes, Transactions};
use crate::http::error::{ApiError, Detail};
use crate::model::artifact::ModelArtifact;
use crate::model::place::features::{FeatureCustomer, FeaturePlacer};
use chrono::NaiveDate;
use std::collections::HashMap;

pub(super) enum Placed {
    /// By features, with any purchase history given beside them.
    Features(FeatureCustomer, Option<crate::domain::btyd::baselines::PurchaseHistory>),
    /// Index into the request's [`Transactions`].
    Transactions(u32),
}

struct Problems(Vec<Detail>);

impl Problems {
    fn add(&mut self, path: String, problem: impl Into<String>) {
        if self.0.len() < MAX_DETAILS {
            self.0.push(Detail::new(path, problem));
        }
    }
}

/// The dates a request may use: the model's periods widened by [`MAX_HORIZON`] periods
/// (of the model's mean period length) on each side. Work grows with the periods between a
/// customer's first transaction and the as-of date, so both are bounded here.
///
/// [`MAX_HORIZON`]: crate::domain::forecast::MAX_HORIZON
fn date_range(model: &ModelArtifact) -> (NaiveDate, NaiveDate) {
    let first = model.periods.spans.first().map_or(model.periods.as_of, |s| s.0);
    let n = model.periods.spans.len().max(1) as i64;
    let days = (model.periods.as_of - first).num_days() + 1;
    let widen = chrono::Days::new((days.div_euclid(n).max(1) * crate::domain::forecast::MAX_HORIZON as i64) as u64);
    (first.checked_sub_days(widen).unwrap_or(first), model.periods.as_of.checked_add_days(widen).unwrap_or(first))
}

/// Checks the request and places every customer; all problems at once, by path.
pub(super) fn place(
    req: &PredictRequest,
    model: &ModelArtifact,
) -> Result<(Vec<Placed>, Transactions, Option<CustomerAttributes>), ApiError> {
    let mut p = Problems(Vec::new());
    if !(1..=crate::domain::forecast::MAX_HORIZON).contains(&req.horizon) {
        p.add("horizon".into(), crate::domain::forecast::ForecastError::Horizon(req.horizon).problem());
    }
    if !req.discount_rate.is_finite() || req.discount_rate < 0.0 {
        p.add("discount_rate".into(), "must be a finite number ≥ 0");
    }
    if req.customers.is_empty() {
        p.add("customers".into(), "must hold at least one customer");
    }
    if req.customers.len() > MAX_CUSTOMERS {
        p.add(
            "customers".into(),
            format!("at most {MAX_CUSTOMERS} customers per request, got {}", req.customers.len()),
        );
        return Err(ApiError::Invalid(p.0));
    }
    let total_tx: usize = req.customers.iter().filter_map(|c| c.transactions.as_ref()).map(Vec::len).sum();
    if total_tx > MAX_TRANSACTIONS {
        p.add("customers".into(), format!("at most {MAX_TRANSACTIONS} transactions per request, got {total_tx}"));
        return Err(ApiError::Invalid(p.0));
    }
    let (earliest, latest) = date_range(model);
    if let Some(d) = req.as_of
        && !(model.periods.spans.first().map_or(earliest, |s| s.0)..=latest).contains(&d)
    {
        p.add(
            "as_of".into(),
            format!(
                "must be between the model's first period ({}) and {latest} ({} periods after its as-of date), got {d}",
                model.periods.spans.first().map_or(earliest, |s| s.0),
                crate::domain::forecast::MAX_HORIZON
            ),
        );
    }
    let names = &model.spend.model.design().attributes;
    let mut tx = Transactions::default();
    let any_margin =
        req.customers.iter().filter_map(|c| c.transactions.as_ref()).any(|t| t.iter().any(|t| t.margin.is_some()));
    if any_margin {
        tx.margin = Some(Vec::new());
    }
    let mut attrs = CustomerAttributes { names: names.clone(), values: Vec::new() };
    let mut any_attrs = false;
    let placer = FeaturePlacer::new(model);
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(req.customers.len());
    let mut placed = Vec::with_capacity(req.customers.len());
    for (i, c) in req.customers.iter().enumerate() {
        if c.id.is_empty() {
            p.add(format!("customers[{i}].id"), "must not be empty");
        } else if let Some(j) = seen.insert(c.id.as_str(), i) {
            p.add(format!("customers[{i}].id"), format!("duplicate id {:?} (also customers[{j}])", c.id));
        }
        let Some(rows) = &c.transactions else {
            let mut good = true;
            if c.purchase_history.is_some_and(|h| !h.is_valid()) {
                p.add(
                    format!("customers[{i}].purchase_history"),
                    "is not a possible history (need t_x ≤ t, t_x > 0 exactly with repeats, a finite repeat_mean_spend, 0 without repeats)",
                );
                good = false;
            }
            let window = model.segments.scheme.window as usize;
            if let Some(r) = &c.recent_spend {
                if r.len() > window.saturating_sub(1) {
                    p.add(
                        format!("customers[{i}].recent_spend"),
                        format!("holds the last W − 1 = {} periods at most, got {}", window.saturating_sub(1), r.len()),
                    );
                    good = false;
                } else if let Some(k) = r.iter().position(|v| !v.is_finite()) {
                    p.add(format!("customers[{i}].recent_spend[{k}]"), "must be a finite number");
                    good = false;
                }
            }
            match placer.place(&c.features()) {
                Ok(f) if good => placed.push(Placed::Features(f, c.purchase_history)),
                Ok(_) => {}
                Err(problems) => {
                    for f in problems {
                        p.add(format!("customers[{i}].{}", f.field), f.problem);
                    }
                }
            }
            continue;
        };
        let features = [
            ("segment", c.segment.is_some()),
            ("recency_days", c.recency_days.is_some()),
            ("frequency", c.frequency.is_some()),
            ("monetary", c.monetary.is_some()),
            ("tenure_periods", c.tenure_periods.is_some()),
            ("purchases", c.purchases.is_some()),
            ("spend", c.spend.is_some()),
            ("periods_since_purchase", c.periods_since_purchase.is_some()),
            ("purchase_history", c.purchase_history.is_some()),
            ("recent_spend", c.recent_spend.is_some()),
        ];
        if let Some((name, _)) = features.iter().find(|(_, given)| *given) {
            p.add(format!("customers[{i}].{name}"), "give either transactions or features, not both");
            continue;
        }
        if rows.is_empty() {
            p.add(format!("customers[{i}].transactions"), "must hold at least one transaction");
            continue;
        }
        let k = tx.customer_ids.len() as u32;
        let mut good = true;
        for (r, t) in rows.iter().enumerate() {
            match crate::ingest::fields::parse_date(t.date.as_bytes()) {
                Ok(day) if !(day_of(earliest)..=day_of(latest)).contains(&day) => {
                    p.add(
                        format!("customers[{i}].transactions[{r}].date"),
                        format!("must be between {earliest} and {latest} (the model's dates, widened by {} periods on each side)", crate::domain::forecast::MAX_HORIZON),
                    );
                    good = false;
                }
                Ok(day) => {
                    tx.customer.push(k);
                    tx.day.push(day);
                    tx.amount.push(t.amount);
                    if let Some(m) = &mut tx.margin {
                        m.push(t.margin.unwrap_or(0.0));
                    }
                }
                Err(problem) => {
                    p.add(format!("customers[{i}].transactions[{r}].date"), format!("{problem}: {:?}", t.date));
                    good = false;
                }
            }
            for (name, v) in [("amount", Some(t.amount)), ("margin", t.margin)] {
                if v.is_some_and(|v| !v.is_finite()) {
                    p.add(format!("customers[{i}].transactions[{r}].{name}"), "must be a finite number");
                    good = false;
                } else if let Some(Err(problem)) = v.map(crate::ingest::fields::check_money) {
                    p.add(format!("customers[{i}].transactions[{r}].{name}"), problem);
                    good = false;
                }
            }
        }
        let start = attrs.values.len();
        attrs.values.resize(start + names.len(), f64::NAN);
        if let Some(given) = &c.attributes {
            for (name, v) in given {
                match names.iter().position(|n| n == name) {
                    Some(j) => {
                        attrs.values[start + j] = *v;
                        any_attrs = true;
                    }
                    None => {
                        p.add(
                            format!("customers[{i}].attributes.{name}"),
                            format!("the model has no attribute {name:?}; it uses {names:?}"),
                        );
                        good = false;
                    }
                }
            }
        }
        tx.customer_ids.push(c.id.clone());
        if good {
            placed.push(Placed::Transactions(k));
        }
    }
    if !p.0.is_empty() {
        return Err(ApiError::Invalid(p.0));
    }
    // The activity table numbers customers in id byte order: renumber, and follow with the
    // attribute rows and the places.
    let new_of_old = tx.number_customers_by_id();
    let k = names.len();
    let mut sorted = vec![f64::NAN; attrs.values.len()];
    for (old, &new) in new_of_old.iter().enumerate() {
        let new = new as usize;
        sorted[new * k..(new + 1) * k].copy_from_slice(&attrs.values[old * k..(old + 1) * k]);
    }
    attrs.values = sorted;
    for pl in &mut placed {
        if let Placed::Transactions(c) = pl {
            *c = new_of_old[*c as usize];
        }
    }
    Ok((placed, tx, any_attrs.then_some(attrs)))
}
