//! Calendar periods: days are counted from 1970-01-01 and grouped into weeks, months, quarters,
//! years or fixed runs of N days from an anchor date.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A calendar day as the number of days since 1970-01-01 (negative before).
pub type Day = i32;

/// Days since 1970-01-01 of a date.
pub fn day_of(date: NaiveDate) -> Day {
    days_from_civil(date.year(), date.month(), date.day())
}

/// The date of a day number.
pub fn date_of(day: Day) -> NaiveDate {
    let (y, m, d) = civil_from_days(day);
    NaiveDate::from_ymd_opt(y, m, d).expect("day number within chrono's range")
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
/// The caller guarantees a valid month and day.
pub fn days_from_civil(year: i32, month: u32, day: u32) -> Day {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i32;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Year, month, day of a day number (inverse of [`days_from_civil`]).
pub fn civil_from_days(day: Day) -> (i32, u32, u32) {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i32::from(m <= 2);
    (y, m, d)
}

/// Number of days in a month of a year.
pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// How days are grouped into periods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "unit", rename_all = "snake_case")]
pub enum PeriodUnit {
    /// ISO weeks, Monday to Sunday.
    Week,
    /// Calendar months.
    Month,
    /// Calendar quarters (Jan–Mar, Apr–Jun, Jul–Sep, Oct–Dec).
    Quarter,
    /// Calendar years.
    Year,
    /// Runs of `length` days, one of which starts on `anchor`.
    Days { length: u32, anchor: NaiveDate },
}

impl fmt::Display for PeriodUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeriodUnit::Week => write!(f, "week"),
            PeriodUnit::Month => write!(f, "month"),
            PeriodUnit::Quarter => write!(f, "quarter"),
            PeriodUnit::Year => write!(f, "year"),
            PeriodUnit::Days { length, anchor } => write!(f, "{length} days from {anchor}"),
        }
    }
}

impl PeriodUnit {
    /// `n` periods in words: "1 month", "4 months", "3 periods of 10 days".
    pub fn count(&self, n: usize) -> String {
        let plural = if n == 1 { "" } else { "s" };
        match self {
            PeriodUnit::Days { length, .. } => format!("{n} period{plural} of {length} days"),
            unit => format!("{n} {unit}{plural}"),
        }
    }

    /// The absolute number of the period holding `day` (consecutive periods have consecutive
    /// numbers).
    pub fn ordinal(&self, day: Day) -> i64 {
        match *self {
            // 1970-01-01 was a Thursday; the Monday before it is day -3.
            PeriodUnit::Week => i64::from(day + 3).div_euclid(7),
            PeriodUnit::Month => {
                let (y, m, _) = civil_from_days(day);
                i64::from(y) * 12 + i64::from(m - 1)
            }
            PeriodUnit::Quarter => {
                let (y, m, _) = civil_from_days(day);
                i64::from(y) * 4 + i64::from((m - 1) / 3)
            }
            PeriodUnit::Year => i64::from(civil_from_days(day).0),
            PeriodUnit::Days { length, anchor } => i64::from(day - day_of(anchor)).div_euclid(i64::from(length)),
        }
    }

    /// First day of the period with absolute number `ordinal`.
    pub fn start(&self, ordinal: i64) -> Day {
        match *self {
            PeriodUnit::Week => (ordinal * 7 - 3) as Day,
            PeriodUnit::Month => {
                let y = ordinal.div_euclid(12) as i32;
                let m = ordinal.rem_euclid(12) as u32 + 1;
                days_from_civil(y, m, 1)
            }
            PeriodUnit::Quarter => {
                let y = ordinal.div_euclid(4) as i32;
                let m = ordinal.rem_euclid(4) as u32 * 3 + 1;
                days_from_civil(y, m, 1)
            }
            PeriodUnit::Year => days_from_civil(ordinal as i32, 1, 1),
            PeriodUnit::Days { length, anchor } => day_of(anchor) + (ordinal * i64::from(length)) as Day,
        }
    }

    /// Last day (inclusive) of the period with absolute number `ordinal`.
    pub fn end(&self, ordinal: i64) -> Day {
        self.start(ordinal + 1) - 1
    }
}

/// The training calendar: `count` consecutive periods, the first of which holds the earliest
/// transaction; the last ends on the as-of date.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calendar {
    unit: PeriodUnit,
    first_ordinal: i64,
    count: u32,
}

/// Why a calendar could not be laid over the data.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CalendarError {
    #[error("no complete {unit} period: the data run from {first} to {last} and the as-of date is {as_of}")]
    NoCompletePeriod { unit: String, first: NaiveDate, last: NaiveDate, as_of: NaiveDate },
    #[error("the as-of date {as_of} is before the first transaction ({first})")]
    AsOfBeforeData { as_of: NaiveDate, first: NaiveDate },
}

/// How the calendar was cut, for the user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalendarNote {
    /// A trailing partial period that was left out: its first day, last day, and the last data day.
    pub partial_period_left_out: Option<(NaiveDate, NaiveDate, NaiveDate)>,
}

impl Calendar {
    /// Lays periods over data running from `first_day` to `last_day`. The as-of date is the end of
    /// the last complete period: either the period ending on or before `as_of`, or when none is
    /// given, the last period whose end the data reach (a trailing partial period is left out).
    pub fn fit(
        unit: PeriodUnit,
        first_day: Day,
        last_day: Day,
        as_of: Option<NaiveDate>,
    ) -> Result<(Calendar, CalendarNote), CalendarError> {
        let first_ordinal = unit.ordinal(first_day);
        let mut note = CalendarNote { partial_period_left_out: None };
        let last_ordinal = match as_of {
            Some(date) => {
                let d = day_of(date);
                if d < first_day {
                    return Err(CalendarError::AsOfBeforeData { as_of: date, first: date_of(first_day) });
                }
                let o = unit.ordinal(d);
                if unit.end(o) == d { o } else { o - 1 }
            }
            None => {
                let o = unit.ordinal(last_day);
                if unit.end(o) == last_day {
                    o
                } else {
                    note.partial_period_left_out =
                        Some((date_of(unit.start(o)), date_of(unit.end(o)), date_of(last_day)));
                    o - 1
                }
            }
        };
        if last_ordinal < first_ordinal {
            let as_of_day = as_of.map(day_of).unwrap_or(last_day);
            return Err(CalendarError::NoCompletePeriod {
                unit: unit.to_string(),
                first: date_of(first_day),
                last: date_of(last_day),
                as_of: date_of(as_of_day),
            });
        }
        let count = (last_ordinal - first_ordinal + 1) as u32;
        Ok((Calendar { unit, first_ordinal, count }, note))
    }

    pub fn unit(&self) -> PeriodUnit {
        self.unit
    }

    /// Number of periods.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// First day of period `index` (0-based).
    pub fn start(&self, index: usize) -> Day {
        self.unit.start(self.first_ordinal + index as i64)
    }

    /// Last day of period `index` (0-based, inclusive).
    pub fn end(&self, index: usize) -> Day {
        self.unit.end(self.first_ordinal + index as i64)
    }

    /// The as-of date: the last day of the last period.
    pub fn as_of(&self) -> Day {
        self.end(self.len() - 1)
    }

    /// Index of the period holding `day`, or `None` when it lies outside the calendar.
    pub fn index_of(&self, day: Day) -> Option<usize> {
        let i = self.unit.ordinal(day) - self.first_ordinal;
        (0..i64::from(self.count)).contains(&i).then_some(i as usize)
    }

    /// Last day of every period, in order.
    pub fn ends(&self) -> Vec<Day> {
        (0..self.len()).map(|i| self.end(i)).collect()
    }

    /// A lookup table from day (offset by `first_day`) to period index, for bulk assignment of
    /// days in `first_day..=last_day`; days after the as-of date map to `u32::MAX`.
    pub fn day_table(&self, first_day: Day, last_day: Day) -> Vec<u32> {
        (first_day..=last_day).map(|d| self.index_of(d).map_or(u32::MAX, |i| i as u32)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn day_numbers_agree_with_chrono_over_four_centuries() {
        let epoch = d("1970-01-01");
        for day in -80_000..80_000 {
            let date = epoch + chrono::Duration::days(i64::from(day));
            assert_eq!(day_of(date), day);
            assert_eq!(date_of(day), date);
        }
    }

    #[test]
    fn quarters_start_on_the_first_of_january_april_july_and_october() {
        let q = PeriodUnit::Quarter;
        let o = q.ordinal(day_of(d("1997-05-17")));
        assert_eq!(date_of(q.start(o)), d("1997-04-01"));
        assert_eq!(date_of(q.end(o)), d("1997-06-30"));
        assert_eq!(date_of(q.end(o + 2)), d("1997-12-31"));
    }

    #[test]
    fn weeks_run_monday_to_sunday() {
        let w = PeriodUnit::Week;
        // 2024-01-03 is a Wednesday.
        let o = w.ordinal(day_of(d("2024-01-03")));
        assert_eq!(date_of(w.start(o)), d("2024-01-01"));
        assert_eq!(date_of(w.end(o)), d("2024-01-07"));
    }

    #[test]
    fn fixed_day_periods_are_aligned_to_the_anchor_even_before_it() {
        let u = PeriodUnit::Days { length: 10, anchor: d("2024-01-05") };
        let o = u.ordinal(day_of(d("2024-01-03")));
        assert_eq!(date_of(u.start(o)), d("2023-12-26"));
        assert_eq!(date_of(u.end(o)), d("2024-01-04"));
    }

    #[test]
    fn months_handle_leap_february() {
        let m = PeriodUnit::Month;
        let o = m.ordinal(day_of(d("2024-02-10")));
        assert_eq!(date_of(m.end(o)), d("2024-02-29"));
    }

    #[test]
    fn a_trailing_partial_period_is_left_out_and_reported() {
        let (cal, note) =
            Calendar::fit(PeriodUnit::Quarter, day_of(d("1997-01-01")), day_of(d("1998-06-15")), None).unwrap();
        assert_eq!(cal.len(), 5);
        assert_eq!(date_of(cal.as_of()), d("1998-03-31"));
        assert_eq!(note.partial_period_left_out, Some((d("1998-04-01"), d("1998-06-30"), d("1998-06-15"))));
    }

    #[test]
    fn data_ending_on_a_period_end_keep_that_period() {
        let (cal, note) =
            Calendar::fit(PeriodUnit::Quarter, day_of(d("1997-01-01")), day_of(d("1998-06-30")), None).unwrap();
        assert_eq!(cal.len(), 6);
        assert_eq!(note.partial_period_left_out, None);
        assert_eq!(cal.index_of(day_of(d("1998-07-01"))), None);
        assert_eq!(cal.index_of(day_of(d("1997-03-31"))), Some(0));
    }

    #[test]
    fn an_explicit_as_of_inside_a_period_ends_at_the_previous_period() {
        let (cal, _) =
            Calendar::fit(PeriodUnit::Month, day_of(d("2024-01-10")), day_of(d("2024-12-31")), Some(d("2024-06-15")))
                .unwrap();
        assert_eq!(date_of(cal.as_of()), d("2024-05-31"));
        assert_eq!(cal.len(), 5);
    }

    #[test]
    fn data_shorter_than_one_period_is_an_error() {
        let err = Calendar::fit(PeriodUnit::Year, day_of(d("2024-01-10")), day_of(d("2024-03-01")), None).unwrap_err();
        assert!(matches!(err, CalendarError::NoCompletePeriod { .. }));
    }
}
