//! Parsing of single fields: dates and amounts.

use crate::domain::calendar::{Day, days_from_civil, days_in_month};

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u32, |a, d| a * 10 + u32::from(d - b'0')))
}

fn ymd(y: &[u8], m: &[u8], d: &[u8]) -> Result<Day, &'static str> {
    let (Some(y), Some(m), Some(d)) = (digits(y), digits(m), digits(d)) else {
        return Err("not a date (expected YYYY-MM-DD, YYYYMMDD or an RFC 3339 timestamp)");
    };
    if !(1000..=9999).contains(&y) {
        return Err("year out of range");
    }
    if !(1..=12).contains(&m) {
        return Err("month out of range");
    }
    if d == 0 || d > days_in_month(y as i32, m) {
        return Err("day out of range for its month");
    }
    Ok(days_from_civil(y as i32, m, d))
}

/// Parses `YYYY-MM-DD`, `YYYY/MM/DD`, `YYYYMMDD`, or an RFC 3339 / ISO 8601 timestamp
/// (`2024-03-01T10:30:00Z`, `2024-03-01 10:30:00+02:00`, …), whose date is taken as written
/// (the local date in the timestamp's own offset). Returns days since 1970-01-01.
pub fn parse_date(s: &[u8]) -> Result<Day, &'static str> {
    let s = s.trim_ascii();
    match s.len() {
        8 => ymd(&s[..4], &s[4..6], &s[6..8]),
        10 if (s[4] == b'-' && s[7] == b'-') || (s[4] == b'/' && s[7] == b'/') => ymd(&s[..4], &s[5..7], &s[8..10]),
        n if n > 10 && (s[10] == b'T' || s[10] == b't' || s[10] == b' ') && s[4] == b'-' && s[7] == b'-' => {
            let text = std::str::from_utf8(s).map_err(|_| "not UTF-8")?;
            let ok = chrono::DateTime::parse_from_rfc3339(text).is_ok()
                || chrono::DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%:z").is_ok()
                || chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").is_ok()
                || chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").is_ok()
                || chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").is_ok();
            if !ok {
                return Err("not a valid timestamp (expected RFC 3339, e.g. 2024-03-01T10:30:00Z)");
            }
            ymd(&s[..4], &s[5..7], &s[8..10])
        }
        0 => Err("empty date"),
        _ => Err("not a date (expected YYYY-MM-DD, YYYYMMDD or an RFC 3339 timestamp)"),
    }
}

/// Parses a finite decimal number (a leading minus marks a return).
pub fn parse_amount(s: &[u8]) -> Result<f64, &'static str> {
    let s = s.trim_ascii();
    if s.is_empty() {
        return Err("empty amount");
    }
    let text = std::str::from_utf8(s).map_err(|_| "not a number")?;
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err("not a finite number"),
        Err(_) => Err("not a number"),
    }
}

/// Parses an amount or margin of a transaction: [`parse_amount`], within
/// ±[`crate::domain::transactions::MAX_AMOUNT`] (so that no sum of squares overflows).
pub fn parse_money(s: &[u8]) -> Result<f64, &'static str> {
    let v = parse_amount(s)?;
    check_money(v)
}

/// An amount within ±[`crate::domain::transactions::MAX_AMOUNT`] with at most
/// [`crate::domain::activity::AMOUNT_DECIMALS`] decimal places (kam sums amounts exactly at that
/// scale and never rounds one), or why not.
pub fn check_money(v: f64) -> Result<f64, &'static str> {
    if !v.is_finite() {
        Err("not a finite number")
    } else if v.abs() > crate::domain::transactions::MAX_AMOUNT {
        Err("beyond ±1e11, the largest amount kam accepts")
    } else if crate::domain::activity::amount_units(v).is_none() {
        Err("more than 4 decimal places (kam sums amounts exactly to 4 places and does not round them)")
    } else {
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_every_supported_form_agree() {
        let d = parse_date(b"1997-01-01").unwrap();
        assert_eq!(d, 9862);
        assert_eq!(parse_date(b"19970101"), Ok(d));
        assert_eq!(parse_date(b"1997/01/01"), Ok(d));
        assert_eq!(parse_date(b"1997-01-01T23:59:59Z"), Ok(d));
        assert_eq!(parse_date(b"1997-01-01T23:30:00-05:00"), Ok(d));
        assert_eq!(parse_date(b"1997-01-01 08:00:00"), Ok(d));
        assert_eq!(parse_date(b" 1997-01-01 "), Ok(d));
    }

    #[test]
    fn impossible_dates_are_refused() {
        assert!(parse_date(b"1997-02-29").is_err());
        assert!(parse_date(b"2000-02-29").is_ok());
        assert!(parse_date(b"19971301").is_err());
        assert!(parse_date(b"yesterday").is_err());
        assert!(parse_date(b"1997-01-01Tnoon").is_err());
        assert_eq!(parse_date(b""), Err("empty date"));
    }

    #[test]
    fn amounts_must_be_finite_numbers() {
        assert_eq!(parse_amount(b" -12.5 "), Ok(-12.5));
        assert_eq!(parse_amount(b"1e3"), Ok(1000.0));
        assert_eq!(parse_amount(b"NaN"), Err("not a finite number"));
        assert_eq!(parse_amount(b"inf"), Err("not a finite number"));
        assert_eq!(parse_amount(b"12,5"), Err("not a number"));
        assert_eq!(parse_amount(b"$5"), Err("not a number"));
        assert_eq!(parse_money(b"12.3456"), Ok(12.3456));
        assert_eq!(parse_money(b"12.34560000"), Ok(12.3456));
        assert!(parse_money(b"12.34567").unwrap_err().starts_with("more than 4 decimal places"));
        assert!(parse_money(b"2e11").unwrap_err().starts_with("beyond"));
    }
}
