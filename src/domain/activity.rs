//! The activity table: what every customer did in every period it had rows in — the one
//! expensive group-by of the pipeline, and the seam between the feeds and the trainer. It is
//! built in process from validated transactions ([`aggregate`]) or read from an engine's output
//! of `kam aggregate-sql` (`crate::ingest::activity`); both give the same table, so the same
//! model, byte for byte:
//!
//! - amounts are summed exactly, as integers of [`AMOUNT_DECIMALS`] decimal places (an engine's
//!   `DECIMAL(38, 4)`), and only the sums become `f64`;
//! - customers are numbered in the order of their ids' bytes;
//! - the table holds every period with rows, after any as-of date too: the calendar (and so the
//!   as-of date) is laid over it afterwards, so one table serves a backtest's calibration and
//!   holdout alike.

use crate::domain::calendar::{Day, PeriodUnit, date_of};
use crate::domain::transactions::Transactions;
use chrono::NaiveDate;

/// Decimal places at which amounts and margins are summed exactly; an input amount with more is
/// refused (never rounded). Four places hold every ISO 4217 currency's minor unit.
pub const AMOUNT_DECIMALS: u32 = 4;

/// 10^[`AMOUNT_DECIMALS`].
const UNITS_PER_ONE: f64 = 10_000.0;

/// An amount as an integer count of 10^-[`AMOUNT_DECIMALS`], or `None` when it has more decimal
/// places than that (or is not within ±[`crate::domain::transactions::MAX_AMOUNT`]).
pub fn amount_units(v: f64) -> Option<i64> {
    if !(v.abs() <= crate::domain::transactions::MAX_AMOUNT) {
        return None;
    }
    let units = (v * UNITS_PER_ONE).round();
    // |units| ≤ 1e15 < 2^53: exact, and the division is correctly rounded, so this holds exactly
    // when v is the double nearest a number of at most four decimal places.
    (units / UNITS_PER_ONE == v).then_some(units as i64)
}

/// An exact sum of amounts, in units of 10^-`scale`, as the `f64` nearest its value.
pub fn units_value(units: i128, scale: u32) -> f64 {
    units as f64 / 10f64.powi(scale as i32)
}

/// What one customer did in one period.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PeriodActivity {
    /// Period index: 0 is the period of the table's first day.
    pub period: u32,
    /// Input rows.
    pub rows: u32,
    /// Purchase occasions: distinct days with at least one non-negative row (a day holding only
    /// returns is not a purchase).
    pub occasions: u32,
    /// Last and first purchase day in the period ([`Day::MIN`] when `occasions == 0`).
    pub last_purchase_day: Day,
    pub first_purchase_day: Day,
    /// Sum of all amounts, returns included.
    pub spend: f64,
    /// Sum of margins (0 when the source has none).
    pub margin: f64,
    /// Sum of the amounts of the purchase days (days holding only returns left out), and of the
    /// first purchase day: what the BTYD summaries need (the Gamma–Gamma mean is over repeat
    /// purchases).
    pub purchase_spend: f64,
    pub first_purchase_spend: f64,
}

impl PeriodActivity {
    /// A period with no purchase (returns only, or nothing).
    pub fn empty(period: u32) -> Self {
        Self {
            period,
            rows: 0,
            occasions: 0,
            last_purchase_day: Day::MIN,
            first_purchase_day: Day::MIN,
            spend: 0.0,
            margin: 0.0,
            purchase_spend: 0.0,
            first_purchase_spend: 0.0,
        }
    }
}

/// Every customer's activity: grouped by customer (numbered in id byte order), ordered by period,
/// at most one row per (customer, period). Periods in which a customer had no rows are absent.
#[derive(Clone, Debug, PartialEq)]
pub struct Activity {
    pub unit: PeriodUnit,
    /// Earliest and latest day of any row.
    pub first_day: Day,
    pub last_day: Day,
    pub customer_ids: Vec<String>,
    /// Whether the source had a margin column.
    pub has_margin: bool,
    offsets: Vec<usize>,
    cells: Vec<PeriodActivity>,
}

/// Why a table cannot be an activity table.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ActivityError {
    #[error("customer {0:?} comes after {1:?}: the customers must be in the order of their ids' bytes, each once")]
    CustomerOrder(String, String),
    #[error("customer {customer:?} has periods out of order or twice (period {period} after {previous})")]
    PeriodOrder { customer: String, period: u32, previous: u32 },
    #[error("no transactions: the activity table is empty")]
    Empty,
}

impl Activity {
    /// Builds the table from its parts: `offsets[c]..offsets[c + 1]` are customer `c`'s cells.
    /// Checks the orders the trainer relies on.
    pub fn from_parts(
        unit: PeriodUnit,
        (first_day, last_day): (Day, Day),
        customer_ids: Vec<String>,
        has_margin: bool,
        offsets: Vec<usize>,
        cells: Vec<PeriodActivity>,
    ) -> Result<Self, ActivityError> {
        assert_eq!(offsets.len(), customer_ids.len() + 1);
        assert_eq!(offsets.last().copied(), Some(cells.len()));
        if cells.is_empty() {
            return Err(ActivityError::Empty);
        }
        for w in customer_ids.windows(2) {
            if w[0].as_bytes() >= w[1].as_bytes() {
                return Err(ActivityError::CustomerOrder(w[1].clone(), w[0].clone()));
            }
        }
        for (c, id) in customer_ids.iter().enumerate() {
            for w in cells[offsets[c]..offsets[c + 1]].windows(2) {
                if w[0].period >= w[1].period {
                    let (period, previous) = (w[1].period, w[0].period);
                    return Err(ActivityError::PeriodOrder { customer: id.clone(), period, previous });
                }
            }
        }
        Ok(Self { unit, first_day, last_day, customer_ids, has_margin, offsets, cells })
    }

    pub fn customers(&self) -> usize {
        self.customer_ids.len()
    }

    /// Customer `c`'s activity, ordered by period (every period, after any as-of date too).
    pub fn customer(&self, c: usize) -> &[PeriodActivity] {
        &self.cells[self.offsets[c]..self.offsets[c + 1]]
    }

    /// Number of (customer, period) cells.
    pub fn cells(&self) -> usize {
        self.cells.len()
    }

    /// All cells, customer by customer.
    pub fn all_cells(&self) -> &[PeriodActivity] {
        &self.cells
    }

    /// Input rows in total, and in periods `0..=last_period`.
    pub fn rows(&self, last_period: u32) -> (u64, u64) {
        let total = self.cells.iter().map(|c| u64::from(c.rows)).sum();
        let used = self.cells.iter().filter(|c| c.period <= last_period).map(|c| u64::from(c.rows)).sum();
        (total, used)
    }

    /// The absolute ordinal (in [`PeriodUnit::ordinal`]'s numbering) of period index 0.
    pub fn first_ordinal(&self) -> i64 {
        self.unit.ordinal(self.first_day)
    }

    /// The table restricted to the customers `keep` (ascending), keeping their order.
    pub fn subset(&self, keep: &[usize]) -> Self {
        let mut offsets = Vec::with_capacity(keep.len() + 1);
        let mut cells = Vec::new();
        offsets.push(0);
        for &c in keep {
            cells.extend_from_slice(self.customer(c));
            offsets.push(cells.len());
        }
        Self {
            unit: self.unit,
            first_day: self.first_day,
            last_day: self.last_day,
            customer_ids: keep.iter().map(|&c| self.customer_ids[c].clone()).collect(),
            has_margin: self.has_margin,
            offsets,
            cells,
        }
    }

    /// BLAKE3 of the table's canonical form — unit, day range, margin flag, then every
    /// customer's id and cells with their sums' bit patterns — hex: the model's data
    /// fingerprint, the same whichever feed built the table.
    pub fn content_hash(&self) -> String {
        let mut h = blake3::Hasher::new();
        h.update(b"kam.activity/1\0");
        h.update(serde_json::to_string(&self.unit).expect("a unit serializes").as_bytes());
        h.update(&self.first_day.to_le_bytes());
        h.update(&self.last_day.to_le_bytes());
        h.update(&[u8::from(self.has_margin)]);
        for (c, id) in self.customer_ids.iter().enumerate() {
            h.update(&(id.len() as u64).to_le_bytes());
            h.update(id.as_bytes());
            let cells = self.customer(c);
            h.update(&(cells.len() as u64).to_le_bytes());
            for a in cells {
                for n in [a.period, a.rows, a.occasions] {
                    h.update(&n.to_le_bytes());
                }
                for d in [a.last_purchase_day, a.first_purchase_day] {
                    h.update(&d.to_le_bytes());
                }
                for v in [a.spend, a.margin, a.purchase_spend, a.first_purchase_spend] {
                    h.update(&v.to_bits().to_le_bytes());
                }
            }
        }
        h.finalize().to_hex().to_string()
    }
}

/// Groups transactions into per-(customer, period) activity in `unit` periods. The transactions'
/// customers must be numbered in id byte order (the file readers number them so); amounts are
/// taken at [`AMOUNT_DECIMALS`] places (the readers refuse more). Linear time: a counting sort by
/// customer, then a sort of each customer's few rows by day.
pub fn aggregate(tx: &Transactions, unit: PeriodUnit) -> Result<Activity, ActivityError> {
    let n_customers = tx.customers();
    let (first_day, last_day) = tx.day_range().ok_or(ActivityError::Empty)?;
    let first_ordinal = unit.ordinal(first_day);
    let period_of_day: Vec<u32> = (first_day..=last_day).map(|d| (unit.ordinal(d) - first_ordinal) as u32).collect();
    let period_of = |day: Day| period_of_day[(day - first_day) as usize];
    let units = |v: f64| (v * UNITS_PER_ONE).round() as i128;

    let mut counts = vec![0usize; n_customers + 1];
    for &c in &tx.customer {
        counts[c as usize + 1] += 1;
    }
    for c in 0..n_customers {
        counts[c + 1] += counts[c];
    }
    let row_offsets = counts.clone();
    let mut cursor = counts;
    let mut order = vec![0u32; tx.len()];
    for (i, &c) in tx.customer.iter().enumerate() {
        let slot = &mut cursor[c as usize];
        order[*slot] = i as u32;
        *slot += 1;
    }

    let mut offsets = Vec::with_capacity(n_customers + 1);
    let mut cells = Vec::with_capacity(n_customers * 2);
    offsets.push(0);
    let mut buf: Vec<u32> = Vec::new();
    for c in 0..n_customers {
        buf.clear();
        buf.extend_from_slice(&order[row_offsets[c]..row_offsets[c + 1]]);
        buf.sort_by_key(|&i| tx.day[i as usize]);
        let mut k = 0;
        while k < buf.len() {
            let period = period_of(tx.day[buf[k] as usize]);
            let mut cell = PeriodActivity::empty(period);
            let (mut spend, mut margin, mut purchase_spend, mut first_purchase_spend) = (0i128, 0i128, 0i128, 0i128);
            while k < buf.len() && period_of(tx.day[buf[k] as usize]) == period {
                let day = tx.day[buf[k] as usize];
                let (mut day_spend, mut bought) = (0i128, false);
                while k < buf.len() && tx.day[buf[k] as usize] == day {
                    let i = buf[k] as usize;
                    day_spend += units(tx.amount[i]);
                    if let Some(m) = &tx.margin {
                        margin += units(m[i]);
                    }
                    bought |= tx.amount[i] >= 0.0;
                    cell.rows += 1;
                    k += 1;
                }
                spend += day_spend;
                if bought {
                    if cell.occasions == 0 {
                        cell.first_purchase_day = day;
                        first_purchase_spend = day_spend;
                    }
                    cell.occasions += 1;
                    cell.last_purchase_day = day;
                    purchase_spend += day_spend;
                }
            }
            let value = |u: i128| units_value(u, AMOUNT_DECIMALS);
            cell.spend = value(spend);
            cell.margin = value(margin);
            cell.purchase_spend = value(purchase_spend);
            cell.first_purchase_spend = value(first_purchase_spend);
            cells.push(cell);
        }
        offsets.push(cells.len());
    }
    Activity::from_parts(unit, (first_day, last_day), tx.customer_ids.clone(), tx.margin.is_some(), offsets, cells)
}

/// [`aggregate`] in the periods `unit_of(the first transaction's date)` gives: a configuration's
/// unit, which the first date anchors when its periods of N days have no anchor of their own.
pub fn aggregate_in(
    tx: &Transactions,
    unit_of: impl FnOnce(NaiveDate) -> PeriodUnit,
) -> Result<Activity, ActivityError> {
    let (first_day, _) = tx.day_range().ok_or(ActivityError::Empty)?;
    aggregate(tx, unit_of(date_of(first_day)))
}

/// Cells far from the bulk of the data, which a single stray row (a date typed as 1000-01-01, a
/// return of −1e9) would otherwise turn silently into thousands of periods or a segment's mean:
/// each warning says how many cells, the extreme one, and how to leave them out.
///
/// - periods: starting more than max(365 days, the 1st–99th percentile span) before the 1st or
///   after the 99th percentile of the cells' period starts;
/// - spend: a magnitude over 1,000 times the 99th percentile of the cells' magnitudes.
pub fn unusual_cells(activity: &Activity) -> Vec<String> {
    let mut out = Vec::new();
    let cells = activity.all_cells();
    let n = cells.len();
    if n < 100 {
        return out;
    }
    let base = activity.first_ordinal();
    let start = |c: &PeriodActivity| f64::from(activity.unit.start(base + i64::from(c.period)));
    // Percentiles from an evenly spaced sample of at most 100,000 cells (deterministic, O(n)
    // overall), then one scan of every cell.
    let step = n.div_ceil(100_000);
    let pct = |mut v: Vec<f64>, q: f64| {
        let k = ((v.len() - 1) as f64 * q).round() as usize;
        *v.select_nth_unstable_by(k, f64::total_cmp).1
    };
    let sample = |f: &dyn Fn(&PeriodActivity) -> f64| cells.iter().step_by(step).map(f).collect::<Vec<f64>>();
    let days = sample(&start);
    let (p1, p99) = (pct(days.clone(), 0.01), pct(days, 0.99));
    let spread = (p99 - p1).max(365.0);
    let (lo, hi) = (p1 - spread, p99 + spread);
    let mut early: Vec<f64> = cells.iter().map(start).filter(|&d| d < lo).collect();
    let mut late: Vec<f64> = cells.iter().map(start).filter(|&d| d > hi).collect();
    early.sort_by(f64::total_cmp);
    late.sort_by(|a, b| b.total_cmp(a));
    let date = |d: f64| date_of(d as Day);
    let bulk = format!("1st–99th percentile {} to {}", date(p1), date(p99));
    for (found, side, bound) in [(&early, "before", lo), (&late, "after", hi)] {
        if let Some(&extreme) = found.first() {
            let which = if side == "before" { "earliest" } else { "latest" };
            out.push(format!(
                "{} customer-period(s) starting {side} {} (the {which} {}), far from the bulk of the data ({bulk}); \
                 --date-range leaves their rows out",
                found.len(),
                date(bound),
                date(extreme)
            ));
        }
    }
    let limit = 1000.0 * pct(sample(&|c| c.spend.abs()), 0.99);
    if limit > 0.0 {
        let extreme: Vec<f64> = cells.iter().map(|c| c.spend).filter(|a| a.abs() > limit).collect();
        if let Some(worst) = extreme.iter().copied().max_by(|a, b| a.abs().total_cmp(&b.abs())) {
            out.push(format!(
                "{} customer-period spend(s) beyond ±{limit} (1,000 times the 99th percentile), the largest {worst}: \
                 check their rows, they move their segment's mean spend",
                extreme.len()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::calendar::day_of;
    use chrono::NaiveDate;

    fn day(s: &str) -> Day {
        day_of(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap())
    }

    #[test]
    fn amounts_of_at_most_four_decimals_are_exact_units_and_more_are_refused() {
        assert_eq!(amount_units(29.33), Some(293_300));
        assert_eq!(amount_units(-0.0001), Some(-1));
        assert_eq!(amount_units(123_456_789.1234), Some(1_234_567_891_234));
        assert_eq!(amount_units(0.1 + 0.2), None);
        assert_eq!(amount_units(1.23456), None);
        assert_eq!(amount_units(f64::NAN), None);
        assert_eq!(amount_units(2e12), None);
        // A sum that a day-ordered f64 sum gets wrong in the last bit is exact here.
        let parts = [0.1, 0.2, 0.3];
        let exact = units_value(parts.iter().map(|&v| i128::from(amount_units(v).unwrap())).sum(), 4);
        assert_eq!(exact, 0.6);
        assert_ne!(parts.iter().sum::<f64>(), 0.6);
    }

    #[test]
    fn occasions_are_distinct_purchase_days_and_returns_only_reduce_spend() {
        let tx = Transactions {
            customer_ids: vec!["a".into(), "b".into()],
            customer: vec![0, 0, 0, 1, 0, 0, 1],
            day: vec![
                day("2024-01-03"),
                day("2024-01-03"),
                day("2024-01-20"),
                day("2024-02-01"),
                day("2024-02-11"), // a return alone on a day: not a purchase
                day("2024-03-01"), // a later period: kept, the calendar decides
                day("2024-01-05"),
            ],
            amount: vec![10.0, 5.0, 20.0, 7.0, -4.0, 99.0, 1.0],
            margin: None,
        };
        let table = aggregate(&tx, PeriodUnit::Month).unwrap();
        assert_eq!((table.first_day, table.last_day), (day("2024-01-03"), day("2024-03-01")));
        assert_eq!(table.rows(1), (7, 6));
        let a = table.customer(0);
        assert_eq!(a.len(), 3);
        assert_eq!((a[0].period, a[0].rows, a[0].occasions, a[0].spend), (0, 3, 2, 35.0));
        assert_eq!((a[0].first_purchase_day, a[0].last_purchase_day), (day("2024-01-03"), day("2024-01-20")));
        assert_eq!((a[0].purchase_spend, a[0].first_purchase_spend), (35.0, 15.0));
        assert_eq!((a[1].period, a[1].occasions, a[1].spend, a[1].purchase_spend), (1, 0, -4.0, 0.0));
        assert_eq!(a[1].last_purchase_day, Day::MIN);
        assert_eq!((a[2].period, a[2].spend), (2, 99.0));
        let b = table.customer(1);
        assert_eq!(b.iter().map(|r| (r.period, r.occasions)).collect::<Vec<_>>(), vec![(0, 1), (1, 1)]);
    }

    #[test]
    fn a_cell_is_56_bytes() {
        // The README's memory figure: 5 counts and days of 4 bytes, 4 sums of 8.
        assert_eq!(std::mem::size_of::<PeriodActivity>(), 56);
    }

    #[test]
    fn customers_out_of_id_order_are_refused() {
        let tx = Transactions {
            customer_ids: vec!["b".into(), "a".into()],
            customer: vec![0, 1],
            day: vec![10, 11],
            amount: vec![1.0, 2.0],
            margin: None,
        };
        assert_eq!(aggregate(&tx, PeriodUnit::Week).unwrap_err(), ActivityError::CustomerOrder("a".into(), "b".into()));
    }

    /// Issue 13, item 9: one stray date or amount is named; ordinary data gives no warning.
    #[test]
    fn one_stray_row_is_warned_about() {
        let mut tx = Transactions::default();
        for i in 0..1000u32 {
            tx.customer_ids.push(format!("c{i:04}"));
            tx.customer.push(i);
            tx.day.push(10_000 + (i % 500) as Day);
            tx.amount.push(20.0 + f64::from(i % 50));
        }
        let table = aggregate(&tx, PeriodUnit::Month).unwrap();
        assert!(unusual_cells(&table).is_empty(), "{:?}", unusual_cells(&table));
        let mut stray = tx.clone();
        stray.day[7] = crate::domain::calendar::days_from_civil(1000, 1, 1);
        stray.amount[9] = -1e9;
        let w = unusual_cells(&aggregate(&stray, PeriodUnit::Month).unwrap());
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].starts_with("1 customer-period(s) starting before") && w[0].contains("1000-01-01"), "{w:?}");
        assert!(w[1].starts_with("1 customer-period spend(s) beyond") && w[1].contains("-1000000000"), "{w:?}");
    }
}
