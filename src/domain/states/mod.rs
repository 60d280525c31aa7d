//! Segments, the states of the chain: `new`, value tiers among customers who bought (by default
//! `key`, `core`, `occasional`), inactive states by periods since the last purchase (`dormant`,
//! optionally split into `dormant_1`, `dormant_2`, …), and `lapsed`, the churn state. With
//! `inactive_tiers`, every inactive state is further split by the tier of the customer's
//! trailing value (`dormant_1_key`, …, `lapsed_occasional`), so the chain remembers who a
//! silent customer was.

use crate::domain::panel::PanelRow;
use serde::{Deserialize, Serialize};

/// How active customers are cut into value tiers by their trailing value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", content = "cuts", rename_all = "snake_case")]
pub enum TierRule {
    /// Cumulative shares of active customer-periods, e.g. `[0.2, 0.5]`: the top 20% by trailing
    /// value are the first tier, the next 30% the second, the rest the last.
    TopShare(Vec<f64>),
    /// Cumulative shares of value, e.g. `[0.8]`: the smallest set of customer-periods holding 80%
    /// of trailing value is the first tier.
    ValueShare(Vec<f64>),
    /// Fixed minimum trailing values, highest first, e.g. `[1000, 100]`.
    Fixed(Vec<f64>),
}

/// A checked segment scheme.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentScheme {
    /// Name of the first-purchase state.
    pub new: String,
    /// Names of the value tiers, highest first.
    pub tiers: Vec<String>,
    pub rule: TierRule,
    /// Name of the inactive state(s) before lapse.
    pub dormant: String,
    /// Name of the churn state.
    pub lapsed: String,
    /// A customer is lapsed after this many periods without a purchase.
    pub lapse_after: u32,
    /// Split the inactive state by periods since the last purchase (Pfeifer–Carraway recency states).
    pub split_inactive: bool,
    /// Split every inactive state (lapsed included) by the tier of the trailing value.
    #[serde(default)]
    pub inactive_tiers: bool,
    /// Trailing window, in periods, for frequency and monetary value.
    pub window: u32,
}

/// What a state of the chain is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// First purchase in this period.
    New,
    /// Bought this period; `tier` 0 is the top tier (the key accounts).
    Active { tier: usize },
    /// No purchase this period, not yet lapsed: `periods` since the last purchase when the scheme
    /// splits by recency, and the `tier` of the trailing value when it splits by tier.
    Silent { periods: Option<u32>, tier: Option<usize> },
    /// No purchase for `lapse_after` periods or more: the churn state (by tier when split).
    Lapsed { tier: Option<usize> },
}

/// The families states group into for people: new, each tier, dormant, lapsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    New,
    Tier(usize),
    Dormant,
    Lapsed,
}

impl State {
    pub fn family(self) -> Family {
        match self {
            State::New => Family::New,
            State::Active { tier } => Family::Tier(tier),
            State::Silent { .. } => Family::Dormant,
            State::Lapsed { .. } => Family::Lapsed,
        }
    }

    /// No purchase in the period.
    pub fn is_inactive(self) -> bool {
        matches!(self, State::Silent { .. } | State::Lapsed { .. })
    }

    pub fn is_lapsed(self) -> bool {
        matches!(self, State::Lapsed { .. })
    }
}

/// Errors in a segment scheme or in learning its thresholds.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SegmentError {
    #[error("segments.{field}: {problem}")]
    Invalid { field: &'static str, problem: String },
    #[error(
        "no active customer-period after a first purchase to learn value tiers from \
         (every customer bought in one period only); use more periods or fixed cuts"
    )]
    NothingToLearnFrom,
    #[error("the value-share rule needs positive total trailing value; it is {0}")]
    NoPositiveValue(f64),
}

/// The largest lapse threshold accepted, in periods (ten years of months): the state space grows
/// with tiers × lapse threshold and the chain with its square, so an unbounded setting would
/// allocate until the process dies.
pub const MAX_LAPSE_AFTER: u32 = 120;

/// The largest trailing window accepted, in periods (ten years of weeks).
pub const MAX_WINDOW: u32 = 520;

/// The most tiers a scheme may name.
pub const MAX_TIERS: usize = 10;

impl SegmentScheme {
    /// Validates the scheme.
    pub fn check(&self) -> Result<(), SegmentError> {
        let invalid = |field, problem: &str| Err(SegmentError::Invalid { field, problem: problem.into() });
        if self.tiers.is_empty() {
            return invalid("tiers", "at least one tier name is needed");
        }
        if self.window == 0 || self.window > MAX_WINDOW {
            return invalid("window", &format!("must be between 1 and {MAX_WINDOW} periods"));
        }
        if self.lapse_after == 0 || self.lapse_after > MAX_LAPSE_AFTER {
            return invalid("lapse_after", &format!("must be between 1 and {MAX_LAPSE_AFTER} periods"));
        }
        if self.tiers.len() > MAX_TIERS {
            return invalid("tiers", &format!("at most {MAX_TIERS} tiers"));
        }
        let cuts = match &self.rule {
            TierRule::TopShare(c) | TierRule::ValueShare(c) | TierRule::Fixed(c) => c,
        };
        if cuts.len() + 1 != self.tiers.len() {
            return invalid(
                "cuts",
                &format!("{} tiers need {} cuts, got {}", self.tiers.len(), self.tiers.len() - 1, cuts.len()),
            );
        }
        if cuts.iter().any(|c| !c.is_finite()) {
            return invalid("cuts", "must be finite numbers");
        }
        match &self.rule {
            TierRule::TopShare(c) | TierRule::ValueShare(c) => {
                if c.iter().any(|&s| s <= 0.0 || s >= 1.0) || c.windows(2).any(|w| w[0] >= w[1]) {
                    return invalid("cuts", "shares must be strictly increasing and within (0, 1)");
                }
            }
            TierRule::Fixed(c) => {
                if c.windows(2).any(|w| w[0] <= w[1]) {
                    return invalid("cuts", "fixed cuts must be strictly decreasing (highest tier first)");
                }
            }
        }
        let mut names = self.states();
        names.sort();
        if names.windows(2).any(|w| w[0] == w[1]) || names.iter().any(|n| n.trim().is_empty()) {
            return invalid("names", "state names must be distinct and non-empty");
        }
        Ok(())
    }

    /// Number of inactive recency levels before lapse (dormant, or dormant_1..dormant_{L−1}).
    fn dormant_levels(&self) -> usize {
        match (self.lapse_after, self.split_inactive) {
            (1, _) => 0,
            (l, true) => l as usize - 1,
            (_, false) => 1,
        }
    }

    /// Copies of each dormant level: one per tier with `inactive_tiers`, else one.
    fn copies(&self) -> usize {
        if self.inactive_tiers { self.tiers.len() } else { 1 }
    }

    /// Copies of the lapsed level: split by tier only when the trailing window outlasts the
    /// lapse (otherwise every lapsed customer's trailing value is nil and one state suffices).
    fn lapsed_copies(&self) -> usize {
        if self.inactive_tiers && self.window > self.lapse_after { self.tiers.len() } else { 1 }
    }

    /// Copies at recency level `level` (`dormant_levels()` is lapsed).
    fn copies_at(&self, level: usize) -> usize {
        if level == self.dormant_levels() { self.lapsed_copies() } else { self.copies() }
    }

    /// Recency level and tier copy of an inactive state.
    fn level_copy(&self, i: usize) -> (usize, usize) {
        let k = i - self.first_inactive();
        let (level, copy) = (k / self.copies(), k % self.copies());
        (
            level.min(self.dormant_levels()),
            if level >= self.dormant_levels() { k - self.dormant_levels() * self.copies() } else { copy },
        )
    }

    /// Index of the first inactive state.
    pub fn first_inactive(&self) -> usize {
        self.tiers.len() + 1
    }

    /// State names in chain order: new, tiers, inactive levels (each × tiers with
    /// `inactive_tiers`), lapsed (× tiers when the window outlasts the lapse).
    pub fn states(&self) -> Vec<String> {
        let mut s = vec![self.new.clone()];
        s.extend(self.tiers.iter().cloned());
        let bases: Vec<String> = match self.dormant_levels() {
            0 => vec![],
            n if self.split_inactive => (1..=n).map(|k| format!("{}_{k}", self.dormant)).collect(),
            _ => vec![self.dormant.clone()],
        };
        for b in bases {
            if self.inactive_tiers {
                s.extend(self.tiers.iter().map(|t| format!("{b}_{t}")));
            } else {
                s.push(b);
            }
        }
        if self.lapsed_copies() > 1 {
            s.extend(self.tiers.iter().map(|t| format!("{}_{t}", self.lapsed)));
        } else {
            s.push(self.lapsed.clone());
        }
        s
    }

    /// The typed state space, in chain order ([`Self::states`] names them): what each state
    /// is, from which its family, tier and silence follow without arithmetic on positions.
    pub fn state_space(&self) -> Vec<State> {
        let mut s = vec![State::New];
        s.extend((0..self.tiers.len()).map(|tier| State::Active { tier }));
        let levels = self.dormant_levels();
        for level in 0..levels {
            let periods = self.split_inactive.then_some(level as u32 + 1);
            if self.inactive_tiers {
                s.extend((0..self.tiers.len()).map(|t| State::Silent { periods, tier: Some(t) }));
            } else {
                s.push(State::Silent { periods, tier: None });
            }
        }
        if self.lapsed_copies() > 1 {
            s.extend((0..self.tiers.len()).map(|t| State::Lapsed { tier: Some(t) }));
        } else {
            s.push(State::Lapsed { tier: None });
        }
        s
    }

    /// The six families people look at — `new`, each tier (`key`, `core`, `occasional` by
    /// default), `dormant`, `lapsed` — by the scheme's names, each with its states (families
    /// without a state, such as `dormant` when `lapse_after` is 1, are left out).
    pub fn families(&self) -> Vec<(String, Vec<usize>)> {
        let space = self.state_space();
        let mut out: Vec<(Family, Vec<usize>)> = Vec::new();
        for (i, st) in space.iter().enumerate() {
            match out.iter_mut().find(|(f, _)| *f == st.family()) {
                Some((_, v)) => v.push(i),
                None => out.push((st.family(), vec![i])),
            }
        }
        out.into_iter().map(|(f, v)| (self.family_name(f).to_string(), v)).collect()
    }

    /// A family's name in this scheme.
    pub fn family_name(&self, f: Family) -> &str {
        match f {
            Family::New => &self.new,
            Family::Tier(t) => &self.tiers[t],
            Family::Dormant => &self.dormant,
            Family::Lapsed => &self.lapsed,
        }
    }

    /// The key-account state: the top tier's (`None` without tiers).
    pub fn key_state(&self) -> Option<usize> {
        self.state_space().iter().position(|s| *s == State::Active { tier: 0 })
    }

    /// The lapsed (churn) states.
    pub fn lapsed_states(&self) -> std::ops::Range<usize> {
        let first = self.first_inactive() + self.dormant_levels() * self.copies();
        first..first + self.lapsed_copies()
    }

    /// Index of the inactive state at recency level `level` (0-based; `dormant_levels()` is
    /// lapsed) and tier copy `copy`.
    fn inactive_index(&self, level: usize, copy: usize) -> usize {
        self.first_inactive() + level * self.copies() + copy.min(self.copies_at(level) - 1)
    }

    /// `allowed[i][j]`: whether the scheme's definitions permit a move from state i to state j
    /// in one period (e.g. nobody moves into `new`, and a customer cannot skip from active
    /// straight to lapsed when `lapse_after > 1`).
    pub fn allowed(&self) -> Vec<Vec<bool>> {
        let n = self.states().len();
        let levels = self.dormant_levels();
        let l = self.lapse_after as usize;
        let mut a = vec![vec![false; n]; n];
        for (i, row) in a.iter_mut().enumerate() {
            for j in 1..=self.tiers.len() {
                row[j] = true;
            }
            let next_level = if i < self.first_inactive() {
                0 // the first inactive level (= lapsed when lapse_after is 1)
            } else {
                let (level, _) = self.level_copy(i);
                if level == levels {
                    levels // lapsed stays lapsed
                } else if self.split_inactive {
                    if level + 2 >= l { levels } else { level + 1 }
                } else {
                    // Unsplit dormant: may stay dormant while fewer than L periods silent.
                    if l > 2 {
                        for c in 0..self.copies_at(level) {
                            row[self.inactive_index(level, c)] = true;
                        }
                    }
                    levels
                }
            };
            for c in 0..self.copies_at(next_level) {
                row[self.inactive_index(next_level, c)] = true;
            }
        }
        a
    }

    /// For each state never observed as an origin: the states it may borrow purchase
    /// probabilities from (the same tier copy at shorter inactivity, nearest first; a single
    /// lapsed state borrows from the lowest tier's copies), and where the rest of its mass goes
    /// (its own no-purchase move, keeping its tier copy).
    pub fn borrow_plan(&self) -> Vec<Borrow> {
        let n = self.states().len();
        let levels = self.dormant_levels();
        let allowed = self.allowed();
        (0..n)
            .map(|i| {
                if i < self.first_inactive() {
                    return Borrow::default();
                }
                let (level, copy) = self.level_copy(i);
                let source_copy = if level == levels && self.lapsed_copies() == 1 { self.copies() - 1 } else { copy };
                let from = (0..level).rev().map(|l| self.inactive_index(l, source_copy)).collect();
                let rest_to =
                    (level..=levels).map(|l| self.inactive_index(l, copy)).filter(|&j| allowed[i][j]).collect();
                Borrow { from, rest_to }
            })
            .collect()
    }

    /// Learns tier thresholds from the trailing values of active, non-new customer-periods.
    /// Returns minimum trailing values, highest tier first (`tiers.len() - 1` of them). Sorts
    /// `values` in place.
    pub fn learn_thresholds(&self, values: &mut [f64]) -> Result<Vec<f64>, SegmentError> {
        if let TierRule::Fixed(cuts) = &self.rule {
            return Ok(cuts.clone());
        }
        if values.is_empty() {
            return Err(SegmentError::NothingToLearnFrom);
        }
        values.sort_unstable_by(|a, b| b.total_cmp(a));
        let n = values.len();
        Ok(match &self.rule {
            TierRule::TopShare(shares) => shares
                .iter()
                .map(|s| {
                    let m = ((s * n as f64).ceil() as usize).clamp(1, n);
                    values[m - 1]
                })
                .collect(),
            TierRule::ValueShare(shares) => {
                let total: f64 = values.iter().filter(|v| **v > 0.0).sum();
                if total <= 0.0 {
                    return Err(SegmentError::NoPositiveValue(total));
                }
                let mut cuts = Vec::with_capacity(shares.len());
                let mut cum = 0.0;
                let mut k = 0;
                for (i, v) in values.iter().enumerate() {
                    cum += v.max(0.0);
                    while k < shares.len() && cum >= shares[k] * total {
                        cuts.push(values[i]);
                        k += 1;
                    }
                    if k == shares.len() {
                        break;
                    }
                }
                while cuts.len() < shares.len() {
                    cuts.push(values[n - 1]);
                }
                cuts
            }
            TierRule::Fixed(_) => unreachable!(),
        })
    }

    /// A segmenter with learned thresholds.
    pub fn segmenter(&self, thresholds: Vec<f64>) -> Segmenter {
        Segmenter {
            thresholds,
            first_inactive: self.first_inactive(),
            levels: self.dormant_levels(),
            copies: self.copies(),
            lapsed_copies: self.lapsed_copies(),
            lapse_after: self.lapse_after,
            split: self.split_inactive,
        }
    }
}

/// How a state never observed as an origin borrows its row (see `TransitionModel::fit`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Borrow {
    /// Candidate states to borrow purchase probabilities from, nearest first.
    pub from: Vec<usize>,
    /// The no-purchase destinations that share the rest of the mass.
    pub rest_to: Vec<usize>,
}

/// How states are shown to a person: grouped into the six families (the default everywhere a
/// person looks) or one by one (`--states detailed`).
#[derive(Clone, Debug, PartialEq)]
pub struct Grouping {
    /// The shown names, in order.
    pub names: Vec<String>,
    /// `of_state[s]`: the index in `names` of state s.
    pub of_state: Vec<usize>,
}

impl Grouping {
    /// States grouped into the scheme's families (only the families it has, in state order).
    pub fn families(scheme: &SegmentScheme) -> Self {
        let families = scheme.families();
        let mut of_state = vec![0; families.iter().map(|f| f.1.len()).sum()];
        for (g, (_, members)) in families.iter().enumerate() {
            for &s in members {
                of_state[s] = g;
            }
        }
        Self { names: families.into_iter().map(|f| f.0).collect(), of_state }
    }

    /// Every state on its own.
    pub fn detailed(states: &[String]) -> Self {
        Self { names: states.to_vec(), of_state: (0..states.len()).collect() }
    }

    /// Per-state numbers summed per shown group.
    pub fn sum(&self, per_state: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.names.len()];
        for (s, v) in per_state.iter().enumerate() {
            out[self.of_state[s]] += v;
        }
        out
    }

    /// A transition matrix between the shown groups: row F is the average of F's states' rows,
    /// each weighted by `weights` (its observed moves), summed into the groups' columns. Groups
    /// without weight get the plain average of their states' rows.
    pub fn matrix(&self, p: &[Vec<f64>], weights: &[f64]) -> Vec<Vec<f64>> {
        let g = self.names.len();
        let total: f64 = weights.iter().sum();
        let mut out = vec![vec![0.0; g]; g];
        let mut mass = vec![0.0; g];
        for (i, row) in p.iter().enumerate() {
            let w = if total > 0.0 { weights[i] } else { 1.0 };
            let f = self.of_state[i];
            mass[f] += w;
            for (j, q) in row.iter().enumerate() {
                out[f][self.of_state[j]] += w * q;
            }
        }
        for (f, row) in out.iter_mut().enumerate() {
            if mass[f] > 0.0 {
                row.iter_mut().for_each(|x| *x /= mass[f]);
            } else {
                // No observed move out of the group: its states' rows, averaged.
                let members: Vec<usize> = (0..p.len()).filter(|&i| self.of_state[i] == f).collect();
                for &i in &members {
                    for (j, q) in p[i].iter().enumerate() {
                        row[self.of_state[j]] += q / members.len() as f64;
                    }
                }
            }
        }
        out
    }

    /// The shown name of state `s`.
    pub fn name_of(&self, s: usize) -> &str {
        &self.names[self.of_state[s]]
    }
}

/// Places panel rows in states, with the thresholds learned at training time.
#[derive(Clone, Debug, PartialEq)]
pub struct Segmenter {
    thresholds: Vec<f64>,
    first_inactive: usize,
    levels: usize,
    copies: usize,
    lapsed_copies: usize,
    lapse_after: u32,
    split: bool,
}

impl Segmenter {
    pub fn thresholds(&self) -> &[f64] {
        &self.thresholds
    }

    /// The state of a panel row.
    pub fn state_of(&self, row: &PanelRow) -> usize {
        if row.tenure == 0 {
            0
        } else if row.purchases > 0 {
            1 + self.tier_of(row.monetary)
        } else {
            let k = row.periods_since_purchase;
            let level = if k >= self.lapse_after {
                self.levels
            } else if self.split {
                k as usize - 1
            } else {
                0
            };
            let copies = if level == self.levels { self.lapsed_copies } else { self.copies };
            let copy = if copies > 1 { self.tier_of(row.monetary) } else { 0 };
            self.first_inactive + level * self.copies + copy
        }
    }

    /// Tier index (0 = highest) of a trailing value.
    pub fn tier_of(&self, value: f64) -> usize {
        self.thresholds.iter().position(|&t| value >= t).unwrap_or(self.thresholds.len())
    }
}

#[cfg(test)]
pub(crate) mod tests;
