//! Validated transactions in columnar form, and their aggregation into per-(customer, period)
//! activity — the one expensive group-by of the pipeline, and the seam where it could run in a
//! distributed SQL engine instead.

use crate::domain::calendar::{Calendar, Day};

/// Numeric customer attributes aligned with the transactions' customer numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomerAttributes {
    pub names: Vec<String>,
    /// `values[c * names.len() + k]`: attribute k of customer c; NaN when missing.
    pub values: Vec<f64>,
}

/// Validated transactions, one entry per input row, in columns. Customers are numbered densely
/// in order of first appearance; `customer_ids` maps the numbers back to the caller's ids.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Transactions {
    pub customer_ids: Vec<String>,
    pub customer: Vec<u32>,
    pub day: Vec<Day>,
    pub amount: Vec<f64>,
    /// Margin (profit) per row, when the source has such a column.
    pub margin: Option<Vec<f64>>,
}

impl Transactions {
    pub fn len(&self) -> usize {
        self.customer.len()
    }

    pub fn is_empty(&self) -> bool {
        self.customer.is_empty()
    }

    pub fn customers(&self) -> usize {
        self.customer_ids.len()
    }

    /// Keeps the rows dated within `first..=last`, and the customers that still have one
    /// (renumbered in order of first appearance); returns the number of rows left out.
    pub fn retain_days(&mut self, first: Day, last: Day) -> u64 {
        let keep: Vec<bool> = self.day.iter().map(|d| (first..=last).contains(d)).collect();
        let dropped = keep.iter().filter(|k| !**k).count() as u64;
        if dropped == 0 {
            return 0;
        }
        let mut renumber = vec![u32::MAX; self.customer_ids.len()];
        let mut ids = Vec::new();
        let mut out = Transactions { margin: self.margin.as_ref().map(|_| Vec::new()), ..Default::default() };
        for (i, &k) in keep.iter().enumerate() {
            if !k {
                continue;
            }
            let c = self.customer[i] as usize;
            if renumber[c] == u32::MAX {
                renumber[c] = ids.len() as u32;
                ids.push(std::mem::take(&mut self.customer_ids[c]));
            }
            out.customer.push(renumber[c]);
            out.day.push(self.day[i]);
            out.amount.push(self.amount[i]);
            if let (Some(m), Some(src)) = (&mut out.margin, &self.margin) {
                m.push(src[i]);
            }
        }
        out.customer_ids = ids;
        *self = out;
        dropped
    }

    /// Earliest and latest day, or `None` when there are no rows.
    pub fn day_range(&self) -> Option<(Day, Day)> {
        let min = *self.day.iter().min()?;
        let max = *self.day.iter().max()?;
        Some((min, max))
    }
}

/// The largest amount (or margin) magnitude accepted per row: beyond any real transaction, and
/// small enough that sums of squares over billions of rows stay finite.
pub const MAX_AMOUNT: f64 = 1e12;

/// Rows far from the bulk of the data, which a single stray row (a date typed as 1000-01-01, a
/// return of −1e9) would otherwise turn silently into thousands of periods or a segment's mean:
/// each warning says how many rows, the extreme one, and how to leave them out.
///
/// - dates: more than max(365 days, the 1st–99th percentile span) before the 1st or after the
///   99th percentile of the rows' days;
/// - amounts: a magnitude over 1,000 times the 99th percentile of the magnitudes.
pub fn unusual_rows(tx: &Transactions) -> Vec<String> {
    let mut out = Vec::new();
    let n = tx.len();
    if n < 100 {
        return out;
    }
    // Percentiles from an evenly spaced sample of at most 100,000 rows (deterministic, O(n)
    // overall), then one scan of every row.
    let step = n.div_ceil(100_000);
    let pct = |mut v: Vec<f64>, q: f64| {
        let k = ((v.len() - 1) as f64 * q).round() as usize;
        *v.select_nth_unstable_by(k, f64::total_cmp).1
    };
    let sample = |f: &dyn Fn(usize) -> f64| (0..n).step_by(step).map(f).collect::<Vec<f64>>();
    let days = sample(&|i| f64::from(tx.day[i]));
    let (p1, p99) = (pct(days.clone(), 0.01), pct(days, 0.99));
    let spread = (p99 - p1).max(365.0);
    let (lo, hi) = (p1 - spread, p99 + spread);
    let mut early: Vec<f64> = tx.day.iter().map(|&d| f64::from(d)).filter(|&d| d < lo).collect();
    let mut late: Vec<f64> = tx.day.iter().map(|&d| f64::from(d)).filter(|&d| d > hi).collect();
    early.sort_by(f64::total_cmp);
    late.sort_by(|a, b| b.total_cmp(a));
    let date = |d: f64| crate::domain::calendar::date_of(d as Day);
    let bulk = format!("1st–99th percentile {} to {}", date(p1), date(p99));
    for (rows, side, bound) in [(&early, "before", lo), (&late, "after", hi)] {
        if let Some(&extreme) = rows.first() {
            let which = if side == "before" { "earliest" } else { "latest" };
            out.push(format!(
                "{} row(s) dated {side} {} (the {which} {}), far from the bulk of the data ({bulk}); \
                 --date-range leaves them out",
                rows.len(),
                date(bound),
                date(extreme)
            ));
        }
    }
    let limit = 1000.0 * pct(sample(&|i| tx.amount[i].abs()), 0.99);
    if limit > 0.0 {
        let extreme: Vec<f64> = tx.amount.iter().copied().filter(|a| a.abs() > limit).collect();
        if let Some(worst) = extreme.iter().copied().max_by(|a, b| a.abs().total_cmp(&b.abs())) {
            out.push(format!(
                "{} amount(s) beyond ±{limit} (1,000 times the 99th percentile of |amount|), the largest {worst}: \
                 check them, they move their segment's mean spend",
                extreme.len()
            ));
        }
    }
    out
}

/// What one customer did in one period.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PeriodActivity {
    /// Period index in the calendar.
    pub period: u32,
    /// Purchase occasions: distinct days with at least one non-negative row (a day holding only
    /// returns is not a purchase).
    pub occasions: u32,
    /// Sum of all amounts, returns included.
    pub spend: f64,
    /// Sum of margins (0 when the source has none).
    pub margin: f64,
    /// Last purchase day in the period (meaningful only when `occasions > 0`).
    pub last_purchase_day: Day,
}

/// Per-(customer, period) activity, grouped by customer and ordered by period. Periods in which a
/// customer had no rows are absent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ActivityTable {
    offsets: Vec<usize>,
    rows: Vec<PeriodActivity>,
}

impl ActivityTable {
    /// Builds the table from its parts: `offsets[c]..offsets[c + 1]` are customer `c`'s rows,
    /// ordered by period with at most one row per period.
    pub fn from_parts(offsets: Vec<usize>, rows: Vec<PeriodActivity>) -> Self {
        assert_eq!(offsets.last().copied().unwrap_or(0), rows.len());
        Self { offsets, rows }
    }

    pub fn customers(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Customer `c`'s activity, ordered by period.
    pub fn customer(&self, c: usize) -> &[PeriodActivity] {
        &self.rows[self.offsets[c]..self.offsets[c + 1]]
    }

    pub fn rows(&self) -> usize {
        self.rows.len()
    }
}

/// Counts from aggregation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AggregationCounts {
    /// Rows on or before the as-of date, used.
    pub rows_used: u64,
    /// Rows after the as-of date, left out.
    pub rows_after_as_of: u64,
}

/// Groups transactions into per-(customer, period) activity over `calendar`; rows after the
/// calendar's as-of date are left out. Linear time: a counting sort by customer, then a sort of
/// each customer's few rows by day.
pub fn aggregate(tx: &Transactions, calendar: &Calendar) -> (ActivityTable, AggregationCounts) {
    let n_customers = tx.customers();
    let Some((first_day, last_day)) = tx.day_range() else {
        return (ActivityTable::from_parts(vec![0; n_customers + 1], Vec::new()), Default::default());
    };
    let table = calendar.day_table(first_day, last_day);
    let period_of = |day: Day| table[(day - first_day) as usize];

    let mut counts = vec![0usize; n_customers + 1];
    let mut after = 0u64;
    for (i, &c) in tx.customer.iter().enumerate() {
        if period_of(tx.day[i]) == u32::MAX {
            after += 1;
        } else {
            counts[c as usize + 1] += 1;
        }
    }
    for c in 0..n_customers {
        counts[c + 1] += counts[c];
    }
    let row_offsets = counts.clone();
    let mut cursor = counts;
    let mut order = vec![0u32; row_offsets[n_customers]];
    for (i, &c) in tx.customer.iter().enumerate() {
        if period_of(tx.day[i]) != u32::MAX {
            let slot = &mut cursor[c as usize];
            order[*slot] = i as u32;
            *slot += 1;
        }
    }

    let mut offsets = Vec::with_capacity(n_customers + 1);
    let mut rows = Vec::with_capacity(n_customers * 2);
    offsets.push(0);
    let mut buf: Vec<u32> = Vec::new();
    for c in 0..n_customers {
        buf.clear();
        buf.extend_from_slice(&order[row_offsets[c]..row_offsets[c + 1]]);
        // Stable by day, so equal days keep file order and sums are reproducible.
        buf.sort_by_key(|&i| tx.day[i as usize]);
        let mut k = 0;
        while k < buf.len() {
            let period = period_of(tx.day[buf[k] as usize]);
            let mut act = PeriodActivity { period, occasions: 0, spend: 0.0, margin: 0.0, last_purchase_day: Day::MIN };
            while k < buf.len() && period_of(tx.day[buf[k] as usize]) == period {
                let day = tx.day[buf[k] as usize];
                let mut bought = false;
                while k < buf.len() && tx.day[buf[k] as usize] == day {
                    let i = buf[k] as usize;
                    act.spend += tx.amount[i];
                    if let Some(m) = &tx.margin {
                        act.margin += m[i];
                    }
                    bought |= tx.amount[i] >= 0.0;
                    k += 1;
                }
                if bought {
                    act.occasions += 1;
                    act.last_purchase_day = day;
                }
            }
            rows.push(act);
        }
        offsets.push(rows.len());
    }
    let used = row_offsets[n_customers] as u64;
    (ActivityTable::from_parts(offsets, rows), AggregationCounts { rows_used: used, rows_after_as_of: after })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 13, item 9: one stray date or amount is named; ordinary data gives no warning.
    #[test]
    fn one_stray_row_is_warned_about_and_can_be_left_out() {
        let mut tx = Transactions::default();
        for i in 0..1000u32 {
            tx.customer_ids.push(format!("c{i}"));
            tx.customer.push(i);
            tx.day.push(10_000 + (i % 500) as Day);
            tx.amount.push(20.0 + f64::from(i % 50));
        }
        assert!(unusual_rows(&tx).is_empty(), "{:?}", unusual_rows(&tx));
        let mut stray = tx.clone();
        stray.day[7] = crate::domain::calendar::days_from_civil(1000, 1, 1);
        stray.amount[9] = -1e9;
        let w = unusual_rows(&stray);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].starts_with("1 row(s) dated before") && w[0].contains("1000-01-01"), "{w:?}");
        assert!(w[1].starts_with("1 amount(s) beyond") && w[1].contains("-1000000000"), "{w:?}");
        assert_eq!(stray.retain_days(10_000, 10_499), 1);
        assert_eq!((stray.len(), stray.customers()), (999, 999));
        assert_eq!(stray.customer_ids[7], "c8");
        assert!(stray.customer.iter().enumerate().all(|(i, &c)| c as usize == i));
    }
    use crate::domain::calendar::{PeriodUnit, day_of};
    use chrono::NaiveDate;

    fn day(s: &str) -> Day {
        day_of(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap())
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
                day("2024-03-01"), // after the as-of date
                day("2024-01-05"),
            ],
            amount: vec![10.0, 5.0, 20.0, 7.0, -4.0, 99.0, 1.0],
            margin: None,
        };
        let (cal, _) = Calendar::fit(
            PeriodUnit::Month,
            day("2024-01-03"),
            day("2024-03-01"),
            Some(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()),
        )
        .unwrap();
        let (table, counts) = aggregate(&tx, &cal);
        assert_eq!(counts, AggregationCounts { rows_used: 6, rows_after_as_of: 1 });
        let a = table.customer(0);
        assert_eq!(a.len(), 2);
        assert_eq!((a[0].period, a[0].occasions, a[0].spend), (0, 2, 35.0));
        assert_eq!(a[0].last_purchase_day, day("2024-01-20"));
        assert_eq!((a[1].period, a[1].occasions, a[1].spend), (1, 0, -4.0));
        let b = table.customer(1);
        assert_eq!(b.iter().map(|r| (r.period, r.occasions)).collect::<Vec<_>>(), vec![(0, 1), (1, 1)]);
    }
}
