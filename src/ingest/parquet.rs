//! Parquet files, read row by row. Columns are found by name (the schema's top-level fields) or
//! position like text files; dates may be DATE, TIMESTAMP (UTC day), strings or YYYYMMDD
//! integers; amounts any numeric type, decimal, or a numeric string.

use super::fields::{check_money, parse_amount, parse_date};
use super::parquet_file::{for_each_row, quoted_upto};
use super::{Builder, Columns, IngestError, Ingested, ReadOptions};
use parquet::record::Field;
use std::path::Path;

const MS_PER_DAY: i64 = 86_400_000;

fn id_of(f: &Field) -> Option<String> {
    match f {
        Field::Str(s) => Some(s.trim().to_string()),
        Field::Bytes(b) => Some(String::from_utf8_lossy(b.data()).trim().to_string()),
        Field::Int(_)
        | Field::Long(_)
        | Field::Short(_)
        | Field::Byte(_)
        | Field::UInt(_)
        | Field::ULong(_)
        | Field::UShort(_)
        | Field::UByte(_) => Some(f.to_string()),
        _ => None,
    }
}

fn day_of(f: &Field) -> Result<i32, &'static str> {
    let day = raw_day_of(f)?;
    if !(-400_000..=3_000_000).contains(&day) {
        return Err("year out of range");
    }
    let year = crate::domain::calendar::civil_from_days(day).0;
    if (1000..=9999).contains(&year) { Ok(day) } else { Err("year out of range") }
}

fn raw_day_of(f: &Field) -> Result<i32, &'static str> {
    match f {
        Field::Date(d) => Ok(*d),
        Field::TimestampMillis(ms) => i32::try_from(ms.div_euclid(MS_PER_DAY)).map_err(|_| "year out of range"),
        Field::TimestampMicros(us) => i32::try_from(us.div_euclid(MS_PER_DAY * 1000)).map_err(|_| "year out of range"),
        Field::Str(s) => parse_date(s.as_bytes()),
        Field::Int(_) | Field::Long(_) => parse_date(f.to_string().as_bytes()),
        Field::Null => Err("empty date"),
        _ => Err("not a date type"),
    }
}

fn number_of(f: &Field) -> Result<f64, &'static str> {
    let v = match f {
        Field::Double(v) => *v,
        Field::Float(v) => f64::from(*v),
        Field::Int(v) => f64::from(*v),
        Field::Long(v) => *v as f64,
        Field::Short(v) => f64::from(*v),
        Field::Byte(v) => f64::from(*v),
        Field::UInt(v) => f64::from(*v),
        Field::ULong(v) => *v as f64,
        Field::UShort(v) => f64::from(*v),
        Field::UByte(v) => f64::from(*v),
        Field::Decimal(d) => return decimal_value(d),
        Field::Str(s) => return parse_amount(s.as_bytes()),
        Field::Null => return Err("empty amount"),
        _ => return Err("not a numeric type"),
    };
    if v.is_finite() { Ok(v) } else { Err("not a finite number") }
}

/// Longest part of a value that an error quotes, in bytes.
const QUOTED: usize = 40;
fn quoted(bytes: &[u8]) -> String {
    quoted_upto(bytes, QUOTED)
}

/// How a bad row's value is shown: never the whole of a long string, and never through the
/// parquet crate's `Display` of dates, timestamps and decimals, which panics on values out of
/// chrono's range or on an invalid scale.
fn shown(f: &Field) -> String {
    match f {
        Field::Str(s) => format!("\"{}\"", quoted(s.as_bytes())),
        Field::Bytes(b) => format!("bytes \"{}\"", quoted(b.data())),
        Field::Date(d) => format!("{d} (days since 1970-01-01)"),
        Field::TimestampMillis(v) => format!("{v} (milliseconds since 1970-01-01)"),
        Field::TimestampMicros(v) => format!("{v} (microseconds since 1970-01-01)"),
        Field::TimeMillis(v) => format!("time {v} ms"),
        Field::TimeMicros(v) => format!("time {v} µs"),
        Field::Decimal(d) => format!("a decimal (scale {}, {} bytes)", d.scale(), d.data().len()),
        Field::Group(_) => "a group".into(),
        Field::ListInternal(_) => "a list".into(),
        Field::MapInternal(_) => "a map".into(),
        // Numbers, booleans and null: their `Display` cannot fail.
        other => quoted(other.to_string().as_bytes()),
    }
}

/// A decimal's value through its text (exactly as before), refusing what the parquet crate's
/// formatting would panic on (a negative scale, a scale not below the precision) or spend time
/// and memory on (a long byte array: 38 digits need 16 bytes; a scale of billions of zeros).
fn decimal_value(d: &parquet::data_type::Decimal) -> Result<f64, &'static str> {
    if d.scale() < 0 || d.scale() > 76 || d.precision() <= d.scale() || d.data().len() > 32 {
        return Err("not a valid decimal");
    }
    parse_amount(Field::Decimal(d.clone()).to_string().as_bytes())
}

/// Reads a Parquet file of transactions (see [`super::parquet_file`] for what a corrupt file gives).
pub fn read(path: &Path, options: &ReadOptions) -> Result<Ingested, IngestError> {
    let mut cols = None;
    let mut out = Builder::new(false);
    let rows = for_each_row(path, |r, names, fields| {
        if r == 0 {
            let c = Columns::resolve(path, options, Some(names))?;
            out = Builder::new(c.margin.is_some());
            cols = Some(c);
            return Ok(());
        }
        let cols = cols.expect("the header comes first");
        let bad = |index: usize, problem: &str| IngestError::BadValue {
            path: path.into(),
            row: r,
            column: Columns::label(index, Some(names)),
            value: fields.get(index).map_or(String::new(), |f| shown(f)),
            problem: problem.into(),
        };
        let field = |index: usize| fields.get(index).copied().ok_or_else(|| bad(index, "missing from the row"));
        let parsed = (|| {
            let id = id_of(field(cols.customer)?).ok_or_else(|| bad(cols.customer, "not a string or integer id"))?;
            if id.is_empty() {
                return Err(bad(cols.customer, "empty customer id"));
            }
            let day = day_of(field(cols.date)?).map_err(|p| bad(cols.date, p))?;
            let amount = number_of(field(cols.amount)?).and_then(check_money).map_err(|p| bad(cols.amount, p))?;
            let margin = match cols.margin {
                Some(m) => Some(number_of(field(m)?).and_then(check_money).map_err(|p| bad(m, p))?),
                None => None,
            };
            Ok((id, day, amount, margin))
        })();
        match parsed {
            Ok((id, day, amount, margin)) => out.push(id.as_bytes(), day, amount, margin),
            Err(e) => out.bad_row(e, options.on_bad_row)?,
        }
        Ok(())
    })?;
    if rows == 0 {
        return Err(IngestError::NoDataRows { path: path.into() });
    }
    Ok(out.finish(path))
}

pub fn write(path: &Path, tx: &crate::domain::transactions::Transactions) -> Result<(), parquet::errors::ParquetError> {
    use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int32Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    use std::sync::Arc;
    let schema = Arc::new(parse_message_type(
        "message transactions { REQUIRED BYTE_ARRAY customer_id (UTF8); REQUIRED INT32 date (DATE); REQUIRED DOUBLE amount; }",
    )?);
    let file = std::fs::File::create(path)?;
    let props = Arc::new(WriterProperties::builder().build());
    let mut writer = SerializedFileWriter::new(file, schema, props)?;
    const GROUP: usize = 1 << 20;
    let mut start = 0;
    while start < tx.len() || start == 0 {
        let end = (start + GROUP).min(tx.len());
        let mut group = writer.next_row_group()?;
        let ids: Vec<ByteArray> =
            tx.customer[start..end].iter().map(|&c| ByteArray::from(tx.customer_ids[c as usize].as_str())).collect();
        let mut col = group.next_column()?.expect("customer_id column");
        col.typed::<ByteArrayType>().write_batch(&ids, None, None)?;
        col.close()?;
        let mut col = group.next_column()?.expect("date column");
        col.typed::<Int32Type>().write_batch(&tx.day[start..end], None, None)?;
        col.close()?;
        let mut col = group.next_column()?.expect("amount column");
        col.typed::<DoubleType>().write_batch(&tx.amount[start..end], None, None)?;
        col.close()?;
        group.close()?;
        start = end;
        if end == tx.len() {
            break;
        }
    }
    writer.close()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::transactions::Transactions;

    #[test]
    fn a_written_file_reads_back_equal() {
        let tx = Transactions {
            customer_ids: vec!["a".into(), "b".into()],
            customer: vec![0, 1, 0],
            day: vec![10_000, 10_001, 10_050],
            amount: vec![1.5, -2.0, 3.25],
            margin: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        write(&path, &tx).unwrap();
        let got = read(&path, &ReadOptions::default()).unwrap();
        assert_eq!(got.transactions, tx);
        assert_eq!(got.source_name, "t.parquet");
    }

    #[test]
    fn a_text_file_named_parquet_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        std::fs::write(&path, "customer_id,date,amount\n").unwrap();
        let e = read(&path, &ReadOptions::default()).unwrap_err().to_string();
        assert!(e.contains("not a readable Parquet file"), "{e}");
    }
}
