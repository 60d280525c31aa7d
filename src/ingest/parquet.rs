//! Parquet files, read row by row. Columns are found by name (the schema's top-level fields) or
//! position like text files; dates may be DATE, TIMESTAMP (UTC day), strings or YYYYMMDD
//! integers; amounts any numeric type, decimal, or a numeric string.

use super::fields::{parse_amount, parse_date};
use super::{Builder, Columns, IngestError, Ingested, ReadOptions};
use parquet::file::reader::{FileReader, SerializedFileReader};
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
        Field::Decimal(_) | Field::Str(_) => return parse_amount(f.to_string().trim_matches('"').as_bytes()),
        Field::Null => return Err("empty amount"),
        _ => return Err("not a numeric type"),
    };
    if v.is_finite() { Ok(v) } else { Err("not a finite number") }
}

/// Reads a Parquet file of transactions.
pub fn read(path: &Path, options: &ReadOptions) -> Result<Ingested, IngestError> {
    let io = |source| IngestError::Io { path: path.into(), source };
    let bytes = std::fs::read(path).map_err(io)?;
    if bytes.is_empty() {
        return Err(IngestError::Empty { path: path.into() });
    }
    let hash = blake3::hash(&bytes).to_hex().to_string();
    let format = |e: parquet::errors::ParquetError| IngestError::Format {
        path: path.into(),
        message: format!("not a readable Parquet file: {e}"),
    };
    let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).map_err(format)?;
    let names: Vec<String> = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .root_schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    let cols = Columns::resolve(path, options, Some(&names))?;
    let mut out = Builder::new(cols.margin.is_some());
    let mut rows = 0u64;
    for (i, row) in reader.get_row_iter(None).map_err(format)?.enumerate() {
        let row = row.map_err(format)?;
        let r = i as u64 + 1;
        rows += 1;
        let fields: Vec<&Field> = row.get_column_iter().map(|(_, f)| f).collect();
        let bad = |index: usize, problem: &str| IngestError::BadValue {
            path: path.into(),
            row: r,
            column: Columns::label(index, Some(&names)),
            value: fields.get(index).map_or(String::new(), |f| f.to_string()),
            problem: problem.into(),
        };
        let parsed = (|| {
            let id = id_of(fields[cols.customer]).ok_or_else(|| bad(cols.customer, "not a string or integer id"))?;
            if id.is_empty() {
                return Err(bad(cols.customer, "empty customer id"));
            }
            let day = day_of(fields[cols.date]).map_err(|p| bad(cols.date, p))?;
            let amount = number_of(fields[cols.amount]).map_err(|p| bad(cols.amount, p))?;
            let margin = match cols.margin {
                Some(m) => Some(number_of(fields[m]).map_err(|p| bad(m, p))?),
                None => None,
            };
            Ok((id, day, amount, margin))
        })();
        match parsed {
            Ok((id, day, amount, margin)) => out.push(id.as_bytes(), day, amount, margin),
            Err(e) => out.bad_row(e, options.on_bad_row)?,
        }
    }
    if rows == 0 {
        return Err(IngestError::NoDataRows { path: path.into() });
    }
    Ok(out.finish(path, hash))
}

/// Writes transactions as a Parquet file (customer_id UTF8, date DATE, amount DOUBLE); used by
/// `kam generate --out x.parquet` and by tests.
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
