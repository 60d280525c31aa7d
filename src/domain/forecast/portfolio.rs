//! The customer base at a glance, as the report and the dashboard show it: how concentrated the
//! expected value is (a Pareto curve), how churn risk is distributed, which key accounts (and
//! accounts key a period ago) carry the most value at risk — their expected value if they stay
//! less their expected value, with why (silent against their usual gap, spend falling, the
//! probability of leaving key) — and which accounts entered and left key.
//!
//! Input is one [`Outlook`] per customer (its state, expected value over the horizon and churn
//! probability by the horizon), from `kam score`'s output or from the customer snapshot beside a
//! model through [`OutlookByState`].

use crate::domain::forecast::{CustomerForecast, Forecaster};
use serde::Serialize;

/// One customer's forecast, as far as the portfolio views need it.
#[derive(Clone, Debug, PartialEq)]
pub struct Outlook {
    pub customer_id: String,
    /// Index of the customer's state now.
    pub state: usize,
    /// Expected (discounted) value over the horizon.
    pub value: f64,
    /// Probability of first reaching a lapsed state by the horizon (1 when lapsed now).
    pub churn: f64,
    /// P(alive) under the model's BTYD fit, where the customer's purchase history is known.
    pub p_alive: Option<f64>,
    /// Its state in the period before the as-of date, where known.
    pub previous_state: Option<usize>,
    /// What it puts at risk, where its purchase history is known ([`Standing`]).
    pub standing: Option<Standing>,
}

/// A customer's own standing over the horizon, from its purchase history under the model's BTYD
/// fit, and the signals a planner reads it by.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Standing {
    /// Its expected value over the horizon if it stays (keeps buying at its own rate).
    pub value_if_retained: f64,
    /// That less its expected value (0 at least).
    pub value_at_risk: f64,
    /// P(not in its tier or a higher one at the horizon): for a key account, of not being key;
    /// `None` for a customer with no trailing value (no tier).
    pub p_leave_tier: Option<f64>,
    /// P(key at the horizon): a purchase in its last period with a trailing value at the key
    /// cut or above; `None` for a scheme without tiers.
    pub p_key: Option<f64>,
    /// P(no purchase by the horizon).
    pub p_no_purchase: f64,
    /// Days since its last purchase at the as-of date.
    pub silent_days: u32,
    /// Its mean days between purchases (`None` with a single purchase day).
    pub usual_gap_days: Option<f64>,
    /// Spend in the newer half of its trailing window against the older half, as a change
    /// (−0.4: down 40%); `None` without spend in the older half.
    pub spend_change: Option<f64>,
}

impl Outlook {
    /// Value at risk: its own ([`Standing::value_at_risk`]) where known, else the chain's
    /// value × churn.
    pub fn value_at_risk(&self) -> f64 {
        self.standing.map_or(self.value * self.churn, |s| s.value_at_risk)
    }
}

/// The change of spend from the older to the newer half of a trailing window, `window_spend`
/// holding its periods newest first (an odd middle period counts in neither half); `None`
/// without spend in the older half.
pub fn spend_change(window_spend: &[f64]) -> Option<f64> {
    let half = window_spend.len() / 2;
    let newer: f64 = window_spend[..half].iter().sum();
    let older: f64 = window_spend[window_spend.len() - half..].iter().sum();
    (older > 0.0).then(|| newer / older - 1.0)
}

/// Per-state chain forecasts, so that a customer's outlook costs two additions: only the
/// first period's spend depends on the customer beyond its state.
#[derive(Clone, Debug)]
pub struct OutlookByState {
    /// Each state's forecast with a first-period spend of 0.
    base: Vec<CustomerForecast>,
    discount_rate: f64,
}

impl OutlookByState {
    pub fn new(forecaster: &Forecaster, states: usize) -> Self {
        Self {
            base: (0..states).map(|s| forecaster.customer(s, 0.0)).collect(),
            discount_rate: forecaster.params().discount_rate,
        }
    }

    /// The chain's expected spend in each period of a customer now in `state` whose predicted
    /// next-period spend is `next_spend`.
    pub fn spend(&self, state: usize, next_spend: f64) -> Vec<f64> {
        let b = &self.base[state];
        b.horizons.iter().map(|h| if h.h == 1 { next_spend } else { h.expected_spend }).collect()
    }

    /// Expected value over the horizon and churn by the horizon of a customer now in `state`
    /// whose predicted next-period spend is `next_spend`; equal to
    /// `Forecaster::customer(state, next_spend)`'s `value_horizon` and last `churn`.
    pub fn value_and_churn(&self, state: usize, next_spend: f64) -> (f64, f64) {
        let b = &self.base[state];
        let churn = b.horizons.last().map_or(0.0, |h| h.churn);
        (b.value_horizon + next_spend / (1.0 + self.discount_rate), churn)
    }
}

/// Settings of the summary.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PortfolioParams {
    /// Key accounts listed in the at-risk table.
    pub top: usize,
    /// Bins of the churn histogram over [0, 1].
    pub churn_bins: usize,
    /// Points of the concentration curve beyond the origin (at customer shares k / points).
    pub curve_points: usize,
}

impl Default for PortfolioParams {
    fn default() -> Self {
        Self { top: 20, churn_bins: 20, curve_points: 100 }
    }
}

/// A point of the concentration curve: the top `customer_share` of customers by expected value
/// hold `value_share` of it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SharePoint {
    pub customer_share: f64,
    pub value_share: f64,
}

/// Customers by churn probability: `counts[k]` customers in [`edges[k]`, `edges[k + 1]`) (the
/// last bin includes 1). Customers already lapsed (churn 1 by definition) are counted apart.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChurnHistogram {
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
    pub lapsed_now: u64,
}

/// A key account (or one key a period ago), its value at risk and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AtRisk {
    pub customer_id: String,
    pub segment: String,
    pub previous_segment: Option<String>,
    pub value: f64,
    pub churn: f64,
    /// [`Outlook::value_at_risk`].
    pub value_at_risk: f64,
    pub value_if_retained: Option<f64>,
    /// P(alive) under the model's BTYD fit, where known.
    pub p_alive: Option<f64>,
    /// P(not key at the horizon), days silent, usual gap and spend change, where known.
    pub p_leave_key: Option<f64>,
    pub p_no_purchase: Option<f64>,
    pub silent_days: Option<u32>,
    pub usual_gap_days: Option<f64>,
    pub spend_change: Option<f64>,
}

/// An account that entered or left the key state in the last period: where it came from or went
/// to, and its expected value over the horizon.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KeyMove {
    pub customer_id: String,
    /// The state before (entered) or now (left).
    pub segment: String,
    pub value: f64,
}

/// The key state's moves in the last period, largest value first (ties by id).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct KeyMoves {
    pub entered: u64,
    pub left: u64,
    /// Entered and left by family (or state) of origin and destination: (name, count).
    pub entered_from: Vec<(String, u64)>,
    pub left_to: Vec<(String, u64)>,
    /// The top accounts of each.
    pub entered_top: Vec<KeyMove>,
    pub left_top: Vec<KeyMove>,
}

/// The summary of a customer base.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Portfolio {
    pub customers: u64,
    /// Sum of the customers' expected values (negative values count as 0 in the shares).
    pub total_value: f64,
    /// The concentration (Pareto) curve from (0, 0) to (1, 1).
    pub concentration: Vec<SharePoint>,
    /// The curve at the top 1%, 5%, 10% and 20% of customers.
    pub top_shares: Vec<SharePoint>,
    pub churn: ChurnHistogram,
    /// Name of the key state (`None` for a scheme without tiers).
    pub key_state: Option<String>,
    pub key_accounts: u64,
    /// Σ value at risk over the key accounts.
    pub key_value_at_risk: f64,
    /// Key accounts, and accounts key a period ago (the ones that just slipped or went silent),
    /// with the most value at risk, most first (ties by customer id).
    pub at_risk: Vec<AtRisk>,
    pub key_moves: KeyMoves,
}

/// What a customer listing is ordered by, largest first (ties by customer id, ascending, so
/// that the order — and a cursor into it — is the same on every call).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ranking {
    /// Value at risk over the horizon ([`Outlook::value_at_risk`]).
    ValueAtRisk,
    /// P(leaving its tier by the horizon); customers without it last.
    LeaveTier,
    /// Expected value over the horizon.
    Value,
    /// Churn probability by the horizon.
    Churn,
    /// 1 − P(alive) (the BTYD fit's probability that the customer has dropped out for good);
    /// customers without a purchase history last.
    Dropout,
    /// Customer id, ascending.
    Id,
}

impl Ranking {
    /// Every ranking, by its name in the API.
    pub const ALL: [(&'static str, Ranking); 6] = [
        ("value_at_risk", Ranking::ValueAtRisk),
        ("leave_tier", Ranking::LeaveTier),
        ("value", Ranking::Value),
        ("churn", Ranking::Churn),
        ("dropout", Ranking::Dropout),
        ("id", Ranking::Id),
    ];

    fn key(self, c: &Outlook) -> f64 {
        match self {
            Ranking::ValueAtRisk => c.value_at_risk(),
            Ranking::LeaveTier => c.standing.and_then(|s| s.p_leave_tier).unwrap_or(f64::NEG_INFINITY),
            Ranking::Value => c.value,
            Ranking::Churn => c.churn,
            Ranking::Dropout => c.p_alive.map_or(f64::NEG_INFINITY, |p| 1.0 - p),
            Ranking::Id => 0.0,
        }
    }

    /// Orders `customers` by this ranking.
    pub fn sort(self, customers: &mut [Outlook]) {
        customers.sort_unstable_by(|a, b| {
            self.key(b).total_cmp(&self.key(a)).then_with(|| a.customer_id.cmp(&b.customer_id))
        });
    }
}

/// How value concentrates: the share of the total (non-negative) value held by the top share
/// of customers — the one rule behind every "top 20% hold X%" kam prints or serves. The top
/// `share` of n customers is the round(n · share) largest values; with no value at all the
/// curve is the diagonal.
#[derive(Clone, Debug, PartialEq)]
pub struct Concentration {
    /// `cumulative[k]`: the sum of the k largest values, each clipped at 0.
    cumulative: Vec<f64>,
}

impl Concentration {
    pub fn new(values: &[f64]) -> Self {
        let mut values = values.to_vec();
        values.sort_unstable_by(|a, b| b.total_cmp(a));
        let mut cumulative = Vec::with_capacity(values.len() + 1);
        cumulative.push(0.0);
        let mut running = 0.0;
        for v in &values {
            running += v.max(0.0);
            cumulative.push(running);
        }
        Self { cumulative }
    }

    /// Share of the value held by the top `share` of customers.
    pub fn share_of_top(&self, share: f64) -> f64 {
        let n = self.cumulative.len() - 1;
        let total = self.cumulative[n];
        let k = ((n as f64 * share).round() as usize).min(n);
        if total > 0.0 { self.cumulative[k] / total } else { share }
    }
}

/// Summarises customers. `states` names the model's states as shown (several may share a
/// family's name), `key` is the key state's index and `lapsed[s]` marks churn states.
pub fn summarise(
    customers: &[Outlook],
    states: &[String],
    key: Option<usize>,
    lapsed: &[bool],
    params: PortfolioParams,
) -> Portfolio {
    // Largest first: the curve's order, and the order the total is summed in.
    let mut values: Vec<f64> = customers.iter().map(|c| c.value).collect();
    values.sort_unstable_by(|a, b| b.total_cmp(a));
    let curve = Concentration::new(&values);
    let points = params.curve_points.max(1);
    let point = |share: f64| SharePoint { customer_share: share, value_share: curve.share_of_top(share) };
    let concentration = (0..=points).map(|k| point(k as f64 / points as f64)).collect();
    let top_shares = [0.01, 0.05, 0.10, 0.20].into_iter().map(point).collect();

    let bins = params.churn_bins.max(1);
    let mut counts = vec![0u64; bins];
    let mut lapsed_now = 0;
    for c in customers {
        if lapsed.get(c.state).copied().unwrap_or(false) {
            lapsed_now += 1;
        } else {
            let b = ((c.churn.clamp(0.0, 1.0) * bins as f64) as usize).min(bins - 1);
            counts[b] += 1;
        }
    }
    let edges = (0..=bins).map(|k| k as f64 / bins as f64).collect();

    let mut at_risk: Vec<AtRisk> = customers
        .iter()
        .filter(|c| key.is_some() && (Some(c.state) == key || c.previous_state == key))
        .map(|c| AtRisk {
            customer_id: c.customer_id.clone(),
            segment: states[c.state].clone(),
            previous_segment: c.previous_state.map(|s| states[s].clone()),
            value: c.value,
            churn: c.churn,
            value_at_risk: c.value_at_risk(),
            value_if_retained: c.standing.map(|s| s.value_if_retained),
            p_alive: c.p_alive,
            p_leave_key: c.standing.and_then(|s| s.p_key).map(|p| 1.0 - p),
            p_no_purchase: c.standing.map(|s| s.p_no_purchase),
            silent_days: c.standing.map(|s| s.silent_days),
            usual_gap_days: c.standing.and_then(|s| s.usual_gap_days),
            spend_change: c.standing.and_then(|s| s.spend_change),
        })
        .collect();
    let key_accounts = customers.iter().filter(|c| Some(c.state) == key).count() as u64;
    let key_value_at_risk = customers.iter().filter(|c| Some(c.state) == key).map(Outlook::value_at_risk).sum();
    at_risk.sort_by(|a, b| b.value_at_risk.total_cmp(&a.value_at_risk).then_with(|| a.customer_id.cmp(&b.customer_id)));
    at_risk.truncate(params.top);
    let key_moves = key.map_or_else(KeyMoves::default, |k| key_moves(customers, states, k, params.top));

    Portfolio {
        customers: customers.len() as u64,
        total_value: values.iter().sum(),
        concentration,
        top_shares,
        churn: ChurnHistogram { edges, counts, lapsed_now },
        key_state: key.map(|k| states[k].clone()),
        key_accounts,
        key_value_at_risk,
        at_risk,
        key_moves,
    }
}

/// Moves into and out of state `key` in the last period; origins and destinations named by
/// `states`, the top `top` of each by value.
fn key_moves(customers: &[Outlook], states: &[String], key: usize, top: usize) -> KeyMoves {
    let mut out = KeyMoves::default();
    let (mut entered, mut left) = (Vec::new(), Vec::new());
    let mut from = vec![0u64; states.len()];
    let mut to = vec![0u64; states.len()];
    for c in customers {
        match c.previous_state {
            Some(p) if c.state == key && p != key => {
                from[p] += 1;
                entered.push(KeyMove {
                    customer_id: c.customer_id.clone(),
                    segment: states[p].clone(),
                    value: c.value,
                });
            }
            Some(p) if p == key && c.state != key => {
                to[c.state] += 1;
                left.push(KeyMove {
                    customer_id: c.customer_id.clone(),
                    segment: states[c.state].clone(),
                    value: c.value,
                });
            }
            _ => {}
        }
    }
    // States that share a name (families) are counted together, in state order.
    let named = |counts: Vec<u64>| {
        let mut out: Vec<(String, u64)> = Vec::new();
        for (s, n) in counts.into_iter().enumerate().filter(|(_, n)| *n > 0) {
            match out.iter_mut().find(|(name, _)| *name == states[s]) {
                Some((_, m)) => *m += n,
                None => out.push((states[s].clone(), n)),
            }
        }
        out
    };
    (out.entered, out.left) = (entered.len() as u64, left.len() as u64);
    (out.entered_from, out.left_to) = (named(from), named(to));
    for list in [&mut entered, &mut left] {
        list.sort_by(|a, b| b.value.total_cmp(&a.value).then_with(|| a.customer_id.cmp(&b.customer_id)));
        list.truncate(top);
    }
    (out.entered_top, out.left_top) = (entered, left);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rankings_put_the_largest_first_and_break_ties_by_id() {
        let c = |id: &str, value: f64, churn: f64| Outlook {
            customer_id: id.into(),
            state: 0,
            value,
            churn,
            p_alive: None,
            previous_state: None,
            standing: None,
        };
        let mut base = vec![c("b", 100.0, 0.1), c("a", 10.0, 1.0), c("c", 50.0, 0.5), c("d", 100.0, 0.0)];
        base[0].p_alive = Some(0.9);
        base[2].p_alive = Some(0.2);
        base[3].p_alive = Some(0.2);
        let order = |r: Ranking| {
            let mut v = base.clone();
            r.sort(&mut v);
            v.into_iter().map(|o| o.customer_id).collect::<Vec<_>>()
        };
        assert_eq!(order(Ranking::ValueAtRisk), ["c", "a", "b", "d"]);
        assert_eq!(order(Ranking::Value), ["b", "d", "c", "a"]);
        assert_eq!(order(Ranking::Churn), ["a", "c", "b", "d"]);
        assert_eq!(order(Ranking::Dropout), ["c", "d", "b", "a"]);
        assert_eq!(order(Ranking::Id), ["a", "b", "c", "d"]);
    }
    use crate::domain::forecast::ForecastParams;

    fn states() -> Vec<String> {
        ["new", "key", "core", "lapsed"].iter().map(|s| s.to_string()).collect()
    }

    const LAPSED: [bool; 4] = [false, false, false, true];

    fn outlook(id: &str, state: usize, value: f64, churn: f64) -> Outlook {
        Outlook { customer_id: id.into(), state, value, churn, p_alive: None, previous_state: None, standing: None }
    }

    #[test]
    fn the_concentration_curve_runs_from_nothing_to_everything_through_the_top_customers_share() {
        // Values 60, 30, 10, 0 (and a negative one, counted as 0): the top 20% (1 of 5) hold 60%.
        let c = [
            outlook("a", 1, 60.0, 0.1),
            outlook("b", 2, 10.0, 0.2),
            outlook("c", 1, 30.0, 0.5),
            outlook("d", 2, 0.0, 0.0),
            outlook("e", 0, -5.0, 0.0),
        ];
        let p = summarise(&c, &states(), Some(1), &LAPSED, PortfolioParams { curve_points: 5, ..Default::default() });
        let shares: Vec<f64> = p.concentration.iter().map(|s| s.value_share).collect();
        assert_eq!(shares, [0.0, 0.6, 0.9, 1.0, 1.0, 1.0]);
        assert_eq!(p.concentration[1].customer_share, 0.2);
        assert_eq!(p.top_shares[3], SharePoint { customer_share: 0.2, value_share: 0.6 });
        assert_eq!(p.total_value, 95.0);
    }

    #[test]
    fn the_churn_histogram_counts_every_customer_not_yet_lapsed_once() {
        let c = [
            outlook("a", 1, 1.0, 0.0),
            outlook("b", 1, 1.0, 0.24),
            outlook("c", 2, 1.0, 0.25),
            outlook("d", 2, 1.0, 1.0),
            outlook("e", 3, 0.0, 1.0),
        ];
        let p = summarise(&c, &states(), Some(1), &LAPSED, PortfolioParams { churn_bins: 4, ..Default::default() });
        assert_eq!(p.churn.edges, [0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(p.churn.counts, [2, 1, 0, 1]);
        assert_eq!(p.churn.lapsed_now, 1);
    }

    #[test]
    fn key_accounts_are_ranked_by_value_times_churn_with_ties_by_id() {
        let c = [
            outlook("big-safe", 1, 1000.0, 0.01), // 10 at risk
            outlook("mid-risky", 1, 100.0, 0.5),  // 50
            outlook("b-tie", 1, 50.0, 0.2),       // 10
            outlook("core", 2, 10_000.0, 0.9),    // not a key account
        ];
        let p = summarise(&c, &states(), Some(1), &LAPSED, PortfolioParams { top: 2, ..Default::default() });
        let ids: Vec<&str> = p.at_risk.iter().map(|a| a.customer_id.as_str()).collect();
        assert_eq!(ids, ["mid-risky", "b-tie"]);
        assert_eq!(p.at_risk[0].value_at_risk, 50.0);
        assert_eq!(p.at_risk[0].segment, "key");
        assert_eq!(p.key_accounts, 3);
        assert!((p.key_value_at_risk - 70.0).abs() < 1e-12);
    }

    #[test]
    fn an_outlook_by_state_equals_the_full_customer_forecast() {
        let p = vec![
            vec![0.0, 0.5, 0.5, 0.0],
            vec![0.0, 0.7, 0.2, 0.1],
            vec![0.0, 0.2, 0.5, 0.3],
            vec![0.0, 0.0, 0.1, 0.9],
        ];
        let f = Forecaster::new(
            &p,
            &LAPSED,
            Some(1),
            &[50.0, 200.0, 80.0, 0.0],
            ForecastParams { horizon: 3, discount_rate: 0.05 },
        )
        .unwrap();
        let by_state = OutlookByState::new(&f, 4);
        for s in 0..4 {
            let full = f.customer(s, 123.0);
            let (value, churn) = by_state.value_and_churn(s, 123.0);
            assert!((value - full.value_horizon).abs() < 1e-9);
            assert_eq!(churn, full.horizons[2].churn);
        }
    }

    #[test]
    fn an_empty_base_gives_the_diagonal_and_no_accounts() {
        let p = summarise(&[], &states(), Some(1), &LAPSED, PortfolioParams { curve_points: 2, ..Default::default() });
        assert_eq!(p.concentration.iter().map(|s| s.value_share).collect::<Vec<_>>(), [0.0, 0.5, 1.0]);
        assert!(p.at_risk.is_empty());
        assert_eq!(p.customers, 0);
    }
}
