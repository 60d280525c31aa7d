//! Reading an activity table that an engine wrote from `kam aggregate-sql`'s query
//! ([`super::activity_sql`]): CSV with a header, or Parquet; one file or a directory of part
//! files (as Spark and warehouses export them; names starting with `.` or `_` are left out).
//! Every value is checked — the schema version, each column's type, that `period_start` starts a
//! period of the configuration's unit, one row per (customer, period) — and a bad one is an
//! error naming the file, row and column. Amounts are decimal text read exactly, so the table
//! is the one kam builds from the transactions themselves (`crate::domain::activity`).

use super::activity_sql::ACTIVITY_SCHEMA;
use super::fields::parse_date;
use super::{IngestError, quoted_prefix};
use crate::domain::activity::{AMOUNT_DECIMALS, Activity, PeriodActivity, units_value};
use crate::domain::calendar::{Day, PeriodUnit, date_of};
use chrono::NaiveDate;
use std::path::{Path, PathBuf};

/// The columns kam reads, in the query's order.
pub const COLUMNS: [&str; 14] = [
    "schema_version",
    "customer_id",
    "period_start",
    "rows",
    "occasions",
    "spend",
    "margin",
    "purchase_spend",
    "first_purchase_spend",
    "first_purchase_day",
    "last_purchase_day",
    "first_day",
    "last_day",
    "rows_beyond_4_decimals",
];

/// One row of the table, parsed.
struct Record {
    customer_id: String,
    period_start: Day,
    cell: PeriodActivity,
    has_margin: bool,
    first_day: Day,
    last_day: Day,
    /// Where it came from, for a duplicate's message.
    file: usize,
    row: u64,
}

/// The files of `path`: itself, or a directory's `.csv` and `.parquet` files by name.
fn files_of(path: &Path) -> Result<Vec<PathBuf>, IngestError> {
    let io = |source| IngestError::Io { path: path.into(), source };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !meta.is_dir() {
        return Err(IngestError::NotAFile { path: path.into() });
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io)? {
        let p = entry.map_err(io)?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        if !name.starts_with(['.', '_']) && p.is_file() && matches!(ext.as_str(), "csv" | "parquet" | "pq") {
            files.push(p);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(IngestError::Format {
            path: path.into(),
            message: "the directory holds no .csv or .parquet part file".into(),
        });
    }
    Ok(files)
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

/// Reads the activity table at `path` in the periods `unit_of(first date)` gives (the
/// configuration's unit; the first date anchors periods of N days without an anchor).
pub fn read_activity(path: &Path, unit_of: &dyn Fn(NaiveDate) -> PeriodUnit) -> Result<Activity, IngestError> {
    let files = files_of(path)?;
    // The part files on all cores (and a Parquet file's row groups within each), kept in order.
    use rayon::prelude::*;
    let parts: Vec<Result<Vec<Record>, IngestError>> = files
        .par_iter()
        .enumerate()
        .map(|(k, file)| {
            let mut part = Vec::new();
            read_file(file, k, &mut part)?;
            Ok(part)
        })
        .collect();
    let mut records: Vec<Record> = Vec::new();
    for part in parts {
        records.extend(part?);
    }
    if records.is_empty() {
        return Err(IngestError::Format { path: path.into(), message: "the activity table has no rows".into() });
    }
    let first_day = records.iter().map(|r| r.first_day).min().expect("rows");
    let last_day = records.iter().map(|r| r.last_day).max().expect("rows");
    let unit = unit_of(date_of(first_day));
    let first_ordinal = unit.ordinal(first_day);
    let at = |r: &Record| {
        let name = files[r.file].file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        format!("row {} of {name}", r.row)
    };
    let bad = |r: &Record, message: String| IngestError::Format {
        path: files[r.file].clone(),
        message: format!("row {}: {message}", r.row),
    };
    for r in &mut records {
        let ordinal = unit.ordinal(r.period_start);
        if unit.start(ordinal) != r.period_start {
            return Err(bad(
                r,
                format!(
                    "period_start {} is not the first day of a {unit} period (the configuration's unit)",
                    date_of(r.period_start)
                ),
            ));
        }
        if r.first_day < r.period_start || r.last_day > unit.end(ordinal) {
            return Err(bad(
                r,
                format!(
                    "its days ({} to {}) are not all in the period starting {}",
                    date_of(r.first_day),
                    date_of(r.last_day),
                    date_of(r.period_start)
                ),
            ));
        }
        r.cell.period = (ordinal - first_ordinal) as u32;
    }
    // Engines write the table sorted by customer (the query's ORDER BY); a sort only when not.
    let in_order = |a: &Record, b: &Record| {
        a.customer_id.as_bytes().cmp(b.customer_id.as_bytes()).then(a.period_start.cmp(&b.period_start))
    };
    if !records.is_sorted_by(|a, b| in_order(a, b).is_le()) {
        records.sort_by(in_order);
    }
    for w in records.windows(2) {
        if w[0].customer_id == w[1].customer_id && w[0].period_start == w[1].period_start {
            return Err(IngestError::Format {
                path: path.into(),
                message: format!(
                    "customer {:?} has two rows for the period starting {} ({} and {}): an activity table has one row per (customer, period)",
                    quoted_prefix(w[0].customer_id.as_bytes()),
                    date_of(w[0].period_start),
                    at(&w[0]),
                    at(&w[1])
                ),
            });
        }
    }
    let has_margin = records.iter().any(|r| r.has_margin);
    let mut ids: Vec<String> = Vec::new();
    let mut offsets = vec![0];
    let mut cells = Vec::with_capacity(records.len());
    for r in records {
        if ids.last() != Some(&r.customer_id) {
            if !ids.is_empty() {
                offsets.push(cells.len());
            }
            ids.push(r.customer_id);
        }
        cells.push(r.cell);
    }
    offsets.push(cells.len());
    Activity::from_parts(unit, (first_day, last_day), ids, has_margin, offsets, cells)
        .map_err(|e| IngestError::Format { path: path.into(), message: e.to_string() })
}

/// Parses the rows of one part file into `out`.
fn read_file(path: &Path, file: usize, out: &mut Vec<Record>) -> Result<(), IngestError> {
    let parquet = path.file_name().and_then(|n| n.to_str()).is_some_and(super::is_parquet_name);
    let header = |names: &[String]| -> Result<[usize; COLUMNS.len()], IngestError> {
        let mut index = [usize::MAX; COLUMNS.len()];
        for (k, want) in COLUMNS.iter().enumerate() {
            index[k] = names.iter().position(|n| n.trim().eq_ignore_ascii_case(want)).ok_or_else(|| IngestError::Format {
                path: path.into(),
                message: format!(
                    "no {want} column: this is not an activity table of kam aggregate-sql (schema {ACTIVITY_SCHEMA}); the columns are {}",
                    names.join(", ")
                ),
            })?;
        }
        Ok(index)
    };
    if parquet {
        // The row groups on all cores.
        let records = super::parquet_file::map_rows(
            path,
            |names| header(names),
            |index, r, fields| {
                let mut vals: [Option<Val>; COLUMNS.len()] = Default::default();
                for (k, &i) in index.iter().enumerate() {
                    vals[k] = fields.get(i).and_then(|f| val_of_field(f));
                }
                parse_record(path, file, r, &vals)
            },
        )?;
        out.extend(records);
    } else {
        super::check_regular_file(path)?;
        let io = |source| IngestError::Io { path: path.into(), source };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_path(path)
            .map_err(|e| IngestError::Format { path: path.into(), message: e.to_string() })?;
        let names: Vec<String> = reader
            .headers()
            .map_err(|e| IngestError::Format { path: path.into(), message: e.to_string() })?
            .iter()
            .map(str::to_string)
            .collect();
        let index = header(&names)?;
        let mut record = csv::StringRecord::new();
        let mut row = 0;
        loop {
            match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    return Err(match e.kind() {
                        csv::ErrorKind::Io(_) => io(std::io::Error::other(e.to_string())),
                        _ => IngestError::Format { path: path.into(), message: e.to_string() },
                    });
                }
            }
            row += 1;
            let mut vals: [Option<Val>; COLUMNS.len()] = Default::default();
            for (k, &i) in index.iter().enumerate() {
                vals[k] = record.get(i).filter(|v| !v.is_empty()).map(Val::Text);
            }
            out.push(parse_record(path, file, row, &vals)?);
        }
    }
    Ok(())
}

/// A value of a row, as the file holds it.
#[derive(Clone, Copy, Debug)]
enum Val<'a> {
    Text(&'a str),
    Int(i64),
    Float(f64),
    Date(Day),
    /// Unscaled value and scale.
    Decimal(i128, u32),
}

impl Val<'_> {
    /// For an error message.
    fn shown(&self) -> String {
        match self {
            Val::Text(t) => format!("{:?}", quoted_prefix(t.as_bytes())),
            Val::Int(i) => i.to_string(),
            Val::Float(f) => f.to_string(),
            Val::Date(d) => date_of(*d).to_string(),
            Val::Decimal(u, s) => format!("{u}e-{s}"),
        }
    }
}

/// A Parquet value as a [`Val`] (`None` for null; a type kam does not read as text).
fn val_of_field(f: &parquet::record::Field) -> Option<Val<'_>> {
    use parquet::record::Field;
    Some(match f {
        Field::Null => return None,
        Field::Str(s) => Val::Text(s),
        Field::Int(i) => Val::Int(i64::from(*i)),
        Field::Long(i) => Val::Int(*i),
        Field::Short(i) => Val::Int(i64::from(*i)),
        Field::UInt(i) => Val::Int(i64::from(*i)),
        Field::Double(v) => Val::Float(*v),
        Field::Float(v) => Val::Float(f64::from(*v)),
        Field::Date(d) => Val::Date(*d),
        Field::Decimal(d) => {
            let bytes = d.data();
            if bytes.is_empty() || bytes.len() > 16 || d.scale() < 0 {
                return Some(Val::Text("(an unreadable decimal)"));
            }
            // Big-endian two's complement.
            let mut v: i128 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
            for &b in bytes {
                v = (v << 8) | i128::from(b);
            }
            Val::Decimal(v, d.scale() as u32)
        }
        _ => Val::Text("(a value of a type kam does not read here)"),
    })
}

/// One row: `vals[k]` is column `COLUMNS[k]` (`None` when null or empty).
fn parse_record(
    path: &Path,
    file: usize,
    row: u64,
    vals: &[Option<Val>; COLUMNS.len()],
) -> Result<Record, IngestError> {
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
        .ok_or_else(|| bad(k, &v.shown(), "not a non-negative integer"))
    };
    let day = |k: usize| -> Result<Option<Day>, IngestError> {
        vals[k]
            .map(|v| match v {
                Val::Text(t) => parse_date(t.as_bytes()).map_err(|p| bad(k, &v.shown(), p)),
                Val::Date(d) => Ok(d),
                _ => Err(bad(k, &v.shown(), "not a date")),
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
                    Val::Date(_) => Err("not a number"),
                };
                units.map(|u| units_value(u, scale)).map_err(|p| bad(k, &v.shown(), p))
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
    let customer_id = match required(1)? {
        Val::Text(t) => t.to_string(),
        Val::Int(i) => i.to_string(),
        v => return Err(bad(1, &v.shown(), "not a text id")),
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
    Ok(Record { customer_id, period_start, cell, has_margin: margin.is_some(), first_day, last_day, file, row })
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
