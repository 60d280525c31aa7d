//! One row of an activity table, parsed and checked: every value by its type, amounts exact.

use super::COLUMNS;
use crate::domain::activity::{AMOUNT_DECIMALS, PeriodActivity, units_value};
use crate::domain::calendar::{Day, date_of};
use crate::ingest::activity_sql::ACTIVITY_SCHEMA;
use crate::ingest::fields::parse_date;
use crate::ingest::{IngestError, quoted_prefix};
use std::path::Path;

/// One row of the table, parsed (its customer id apart, see [`parse_record`]).
pub(super) struct Record {
    pub period_start: Day,
    pub cell: PeriodActivity,
    pub has_margin: bool,
    pub first_day: Day,
    pub last_day: Day,
    /// Row number in its file, for messages.
    pub row: u64,
}

/// A decimal written as text (`-12.3400`, `5`, `1e2` is not one), in units of
/// 10^-[`AMOUNT_DECIMALS`]; more decimal places than that must be zeros.
fn decimal_units(s: &str) -> Result<i128, &'static str> {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err("not a decimal number");
    }
    let scale = AMOUNT_DECIMALS as usize;
    if frac.len() > scale && frac[scale..].bytes().any(|b| b != b'0') {
        return Err("more than 4 decimal places");
    }
    if int.len() > 30 {
        return Err("too large");
    }
    let mut units: i128 = 0;
    for b in int.bytes().chain(frac.bytes().chain(std::iter::repeat(b'0')).take(scale)) {
        units = units * 10 + i128::from(b - b'0');
    }
    Ok(if neg { -units } else { units })
}
pub(super) use crate::ingest::parquet_columns::Value as Val;

/// A value for an error message.
fn shown(v: &Val) -> String {
    match v {
        Val::Text(t) => format!("{:?}", quoted_prefix(t.as_bytes())),
        Val::Int(i) => i.to_string(),
        Val::Float(f) => f.to_string(),
        Val::Date(d) => date_of(*d).to_string(),
        Val::Decimal(u, s) => format!("{u}e-{s}"),
        Val::Other(what) => format!("({what})"),
    }
}

/// One row: `vals[k]` is column `COLUMNS[k]` (`None` when null or empty).
pub(super) fn parse_record<'a>(
    path: &Path,
    row: u64,
    vals: &[Option<Val<'a>>; COLUMNS.len()],
) -> Result<(std::borrow::Cow<'a, str>, Record), IngestError> {
    let bad = |k: usize, v: &str, problem: &str| IngestError::BadValue {
        path: path.into(),
        row,
        column: COLUMNS[k].to_string(),
        value: v.to_string(),
        problem: problem.into(),
    };
    let required = |k: usize| vals[k].ok_or_else(|| bad(k, "", "must not be null"));
    let integer = |k: usize| -> Result<u64, IngestError> {
        let v = required(k)?;
        match v {
            Val::Text(t) => t.trim().parse::<u64>().ok(),
            Val::Int(i) => u64::try_from(i).ok(),
            Val::Decimal(u, 0) => u64::try_from(u).ok(),
            _ => None,
        }
        .ok_or_else(|| bad(k, &shown(&v), "not a non-negative integer"))
    };
    let day = |k: usize| -> Result<Option<Day>, IngestError> {
        vals[k]
            .map(|v| match v {
                Val::Text(t) => parse_date(t.as_bytes()).map_err(|p| bad(k, &shown(&v), p)),
                Val::Date(d) => Ok(d),
                _ => Err(bad(k, &shown(&v), "not a date")),
            })
            .transpose()
    };
    let money = |k: usize| -> Result<Option<f64>, IngestError> {
        let scale = AMOUNT_DECIMALS;
        vals[k]
            .map(|v| {
                let units = match v {
                    Val::Text(t) => decimal_units(t),
                    Val::Int(i) => Ok(i128::from(i) * 10i128.pow(scale)),
                    Val::Float(f) => {
                        crate::domain::activity::amount_units(f).map(i128::from).ok_or("more than 4 decimal places")
                    }
                    Val::Decimal(u, s) if s <= scale => Ok(u * 10i128.pow(scale - s)),
                    Val::Decimal(u, s) => match 10i128.checked_pow(s - scale) {
                        Some(d) if u % d == 0 => Ok(u / d),
                        Some(_) => Err("more than 4 decimal places"),
                        None => Err("not a valid decimal"),
                    },
                    Val::Date(_) | Val::Other(_) => Err("not a number"),
                };
                units.map(|u| units_value(u, scale)).map_err(|p| bad(k, &shown(&v), p))
            })
            .transpose()
    };
    let version = integer(0)?;
    if version != u64::from(ACTIVITY_SCHEMA) {
        return Err(IngestError::Format {
            path: path.into(),
            message: format!(
                "row {row}: activity table schema version {version}; this kam reads version {ACTIVITY_SCHEMA} (emit the query again with this kam's aggregate-sql)"
            ),
        });
    }
    let customer_id: std::borrow::Cow<'a, str> = match required(1)? {
        Val::Text(t) => t.into(),
        Val::Int(i) => i.to_string().into(),
        v => return Err(bad(1, &shown(&v), "not a text id")),
    };
    if customer_id.trim().is_empty() {
        return Err(bad(1, &format!("{customer_id:?}"), "empty customer id"));
    }
    let beyond = integer(13)?;
    if beyond > 0 {
        return Err(bad(
            13,
            &beyond.to_string(),
            "amounts or margins with more than 4 decimal places were rounded by the cast to decimal(38, 4); kam sums them exactly and refuses to round",
        ));
    }
    let small = |k: usize| -> Result<u32, IngestError> {
        let n = integer(k)?;
        u32::try_from(n).map_err(|_| bad(k, &n.to_string(), "too large"))
    };
    let (rows, occasions) = (small(3)?, small(4)?);
    let period_start = day(2)?.ok_or_else(|| bad(2, "", "must not be null"))?;
    let (first_day, last_day) = (
        day(11)?.ok_or_else(|| bad(11, "", "must not be null"))?,
        day(12)?.ok_or_else(|| bad(12, "", "must not be null"))?,
    );
    let (first_purchase_day, last_purchase_day) = (day(9)?, day(10)?);
    if (occasions > 0) != first_purchase_day.is_some() || first_purchase_day.is_some() != last_purchase_day.is_some() {
        return Err(bad(
            4,
            &occasions.to_string(),
            "occasions, first_purchase_day and last_purchase_day disagree (purchase days are null exactly when there are no occasions)",
        ));
    }
    if rows == 0 || occasions > rows || first_day > last_day {
        return Err(bad(
            3,
            &rows.to_string(),
            "rows must be at least 1 and at least occasions, and first_day not after last_day",
        ));
    }
    let margin = money(6)?;
    let cell = PeriodActivity {
        period: 0,
        rows,
        occasions,
        last_purchase_day: last_purchase_day.unwrap_or(Day::MIN),
        first_purchase_day: first_purchase_day.unwrap_or(Day::MIN),
        spend: money(5)?.ok_or_else(|| bad(5, "", "must not be null"))?,
        margin: margin.unwrap_or(0.0),
        purchase_spend: money(7)?.unwrap_or(0.0),
        first_purchase_spend: money(8)?.unwrap_or(0.0),
    };
    Ok((customer_id, Record { period_start, cell, has_margin: margin.is_some(), first_day, last_day, row }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_read_exactly_and_more_than_four_places_are_refused() {
        assert_eq!(decimal_units("12.34"), Ok(123_400));
        assert_eq!(decimal_units("-0.0001"), Ok(-1));
        assert_eq!(decimal_units("7"), Ok(70_000));
        assert_eq!(decimal_units("7.123400"), Ok(71_234));
        assert_eq!(decimal_units("7.12345"), Err("more than 4 decimal places"));
        assert_eq!(decimal_units("1e3"), Err("not a decimal number"));
        assert_eq!(decimal_units("."), Err("not a decimal number"));
    }
}
