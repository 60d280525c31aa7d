//! A Parquet row group decoded column by column (the parquet crate's typed column readers, far
//! faster than its row-by-row records), and each value as kam reads it ([`Value`]): text,
//! integer, float, date or exact decimal, by the column's physical and logical type.

use super::IngestError;
use super::parquet_file::{PartFile, decoding, failed, format_error, unreadable};
use crate::domain::calendar::Day;
use parquet::basic::{ConvertedType, LogicalType};
use parquet::column::reader::ColumnReader;
use parquet::data_type::ByteArray;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::schema::types::ColumnDescriptor;
use std::path::Path;

/// A value of a row, as the file holds it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Value<'a> {
    Text(&'a str),
    Int(i64),
    Float(f64),
    Date(Day),
    /// Unscaled value and scale.
    Decimal(i128, u32),
    /// A value of a type kam does not read (a timestamp, binary, a boolean…), named.
    Other(&'static str),
}

/// The non-null values of one column chunk, by type.
enum Data {
    Int(Vec<i64>),
    Float(Vec<f64>),
    Date(Vec<i32>),
    Decimal(Vec<i128>, u32),
    Text(Vec<ByteArray>),
    Other(&'static str),
}

/// One column of a row group: its values and, per row, where its value is (`NULL` for null).
pub(crate) struct Column {
    data: Data,
    slot: Vec<u32>,
}

const NULL: u32 = u32::MAX;

impl Data {
    fn len(&self) -> Option<usize> {
        match self {
            Data::Int(v) => Some(v.len()),
            Data::Float(v) => Some(v.len()),
            Data::Date(v) => Some(v.len()),
            Data::Decimal(v, _) => Some(v.len()),
            Data::Text(v) => Some(v.len()),
            Data::Other(_) => None,
        }
    }
}

impl Column {
    /// Rows.
    pub(crate) fn len(&self) -> usize {
        self.slot.len()
    }

    /// Row `row`'s value (0-based within the row group); `None` when null.
    pub(crate) fn get(&self, row: usize) -> Option<Value<'_>> {
        let i = self.slot[row];
        if i == NULL {
            return None;
        }
        let i = i as usize;
        Some(match &self.data {
            Data::Int(v) => Value::Int(v[i]),
            Data::Float(v) => Value::Float(v[i]),
            Data::Date(v) => Value::Date(v[i]),
            Data::Decimal(v, scale) => Value::Decimal(v[i], *scale),
            Data::Text(v) => match std::str::from_utf8(v[i].data()) {
                Ok(t) => Value::Text(t),
                Err(_) => Value::Other("text that is not UTF-8"),
            },
            Data::Other(what) => Value::Other(what),
        })
    }
}

/// A big-endian two's-complement integer (a Parquet decimal's bytes), if it fits an i128.
fn be_int(bytes: &[u8]) -> Option<i128> {
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    let mut v: i128 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
    for &b in bytes {
        v = (v << 8) | i128::from(b);
    }
    Some(v)
}

/// How a column's values read: its decimal scale, whether it is a date, text, or unsigned.
struct Kind {
    decimal: Option<u32>,
    date: bool,
    text: bool,
    unsigned: bool,
    other: Option<&'static str>,
}

fn kind_of(d: &ColumnDescriptor) -> Kind {
    let logical = d.logical_type_ref().cloned();
    let converted = d.converted_type();
    let decimal = match logical {
        Some(LogicalType::Decimal { scale, .. }) => Some(scale),
        _ => (converted == ConvertedType::DECIMAL).then(|| d.type_scale()),
    };
    let other = match (&logical, converted) {
        (Some(LogicalType::Timestamp { .. }), _)
        | (_, ConvertedType::TIMESTAMP_MILLIS | ConvertedType::TIMESTAMP_MICROS) => Some("a timestamp"),
        (Some(LogicalType::Time { .. }), _) | (_, ConvertedType::TIME_MILLIS | ConvertedType::TIME_MICROS) => {
            Some("a time of day")
        }
        (Some(LogicalType::Float16), _) => Some("a 16-bit float"),
        _ => None,
    };
    Kind {
        decimal: decimal.and_then(|s| u32::try_from(s).ok()).or(decimal.map(|_| u32::MAX)),
        date: matches!(logical, Some(LogicalType::Date)) || converted == ConvertedType::DATE,
        text: matches!(logical, Some(LogicalType::String | LogicalType::Enum | LogicalType::Json))
            || matches!(converted, ConvertedType::UTF8 | ConvertedType::ENUM | ConvertedType::JSON),
        unsigned: matches!(logical, Some(LogicalType::Integer { is_signed: false, .. }))
            || matches!(
                converted,
                ConvertedType::UINT_8 | ConvertedType::UINT_16 | ConvertedType::UINT_32 | ConvertedType::UINT_64
            ),
        other,
    }
}

/// The leaf column of top-level field `field` (`None` when it is nested: a group, a list).
pub(crate) fn leaf_of_field(reader: &SerializedFileReader<PartFile>, field: usize) -> Option<usize> {
    let schema = reader.metadata().file_metadata().schema_descr();
    let name = schema.root_schema().get_fields().get(field)?.name().to_string();
    (0..schema.num_columns()).find(|&i| {
        let column = schema.column(i);
        let parts = column.path().parts();
        parts.len() == 1 && parts[0] == name
    })
}

/// Decodes leaf columns `leaves` of row group `group` of `path`'s `reader`.
pub(crate) fn read_columns(
    reader: &SerializedFileReader<PartFile>,
    path: &Path,
    group: usize,
    leaves: &[usize],
) -> Result<Vec<Column>, IngestError> {
    let at = |what: String| move |p| failed(path, what, p);
    let row_group = decoding(|| reader.get_row_group(group))
        .map_err(at(format!("opening row group {group}")))?
        .map_err(|e| format_error(path, e))?;
    let rows = reader.metadata().row_group(group).num_rows() as usize;
    let schema = reader.metadata().file_metadata().schema_descr();
    let mut out = Vec::with_capacity(leaves.len());
    for &leaf in leaves {
        let descr = schema.column(leaf);
        let kind = kind_of(&descr);
        let column_reader = decoding(|| row_group.get_column_reader(leaf))
            .map_err(at(format!("opening column {} of row group {group}", descr.name())))?
            .map_err(|e| format_error(path, e))?;
        let mut def = Vec::with_capacity(rows);
        let (data, read) = decoding(|| -> parquet::errors::Result<(Data, usize)> {
            // Each arm: the typed values, the rows read.
            macro_rules! read {
                ($r:expr, $values:ident) => {{
                    let mut $values = Vec::with_capacity(rows);
                    let (records, _, _) = $r.read_records(rows, Some(&mut def), None, &mut $values)?;
                    ($values, records)
                }};
            }
            Ok(match column_reader {
                ColumnReader::Int32ColumnReader(mut r) => {
                    let (v, n) = read!(r, v);
                    let data = if let Some(other) = kind.other {
                        Data::Other(other)
                    } else if let Some(scale) = kind.decimal {
                        Data::Decimal(v.into_iter().map(i128::from).collect(), scale)
                    } else if kind.date {
                        Data::Date(v)
                    } else if kind.unsigned {
                        Data::Int(v.into_iter().map(|x| i64::from(x as u32)).collect())
                    } else {
                        Data::Int(v.into_iter().map(i64::from).collect())
                    };
                    (data, n)
                }
                ColumnReader::Int64ColumnReader(mut r) => {
                    let (v, n) = read!(r, v);
                    let data = if let Some(other) = kind.other {
                        Data::Other(other)
                    } else if let Some(scale) = kind.decimal {
                        Data::Decimal(v.into_iter().map(i128::from).collect(), scale)
                    } else if kind.unsigned && v.iter().any(|&x| x < 0) {
                        Data::Other("an unsigned integer beyond 2^63")
                    } else {
                        Data::Int(v)
                    };
                    (data, n)
                }
                ColumnReader::FloatColumnReader(mut r) => {
                    let (v, n) = read!(r, v);
                    (Data::Float(v.into_iter().map(f64::from).collect()), n)
                }
                ColumnReader::DoubleColumnReader(mut r) => {
                    let (v, n) = read!(r, v);
                    (Data::Float(v), n)
                }
                ColumnReader::ByteArrayColumnReader(mut r) => {
                    let (v, n) = read!(r, v);
                    let data = match kind.decimal {
                        Some(scale) => match v.iter().map(|b| be_int(b.data())).collect::<Option<Vec<_>>>() {
                            Some(d) => Data::Decimal(d, scale),
                            None => Data::Other("a decimal wider than 128 bits"),
                        },
                        None if kind.text => Data::Text(v),
                        None => Data::Other("binary (not text)"),
                    };
                    (data, n)
                }
                ColumnReader::FixedLenByteArrayColumnReader(mut r) => {
                    let (v, n) = read!(r, v);
                    let data = match (kind.decimal, kind.other) {
                        (_, Some(other)) => Data::Other(other),
                        (Some(scale), None) => match v.iter().map(|b| be_int(b.data())).collect::<Option<Vec<_>>>() {
                            Some(d) => Data::Decimal(d, scale),
                            None => Data::Other("a decimal wider than 128 bits"),
                        },
                        (None, None) => Data::Other("fixed-length binary"),
                    };
                    (data, n)
                }
                ColumnReader::BoolColumnReader(mut r) => {
                    let (_, n) = read!(r, v);
                    (Data::Other("a boolean"), n)
                }
                ColumnReader::Int96ColumnReader(mut r) => {
                    let (_, n) = read!(r, v);
                    (Data::Other("an INT96 timestamp"), n)
                }
            })
        })
        .map_err(at(format!("in column {} of row group {group}", descr.name())))?
        .map_err(|e| format_error(path, e))?;
        if read != rows {
            return Err(unreadable(
                path,
                format!("row group {group}: column {} holds {read} rows, the row group {rows}", descr.name()),
            ));
        }
        let data = match data {
            Data::Decimal(_, u32::MAX) => Data::Other("a decimal of negative scale"),
            d => d,
        };
        // Without definition levels the column is required: every row has a value.
        let max_def = descr.max_def_level();
        let mut slot = Vec::with_capacity(rows);
        let mut next = 0u32;
        if max_def == 0 {
            slot.extend(0..rows as u32);
        } else {
            for &d in &def {
                if d == max_def {
                    slot.push(next);
                    next += 1;
                } else {
                    slot.push(NULL);
                }
            }
        }
        if slot.len() != rows || data.len().is_some_and(|n| n != if max_def == 0 { rows } else { next as usize }) {
            return Err(unreadable(
                path,
                format!("row group {group}: column {} has {} levels for {rows} rows", descr.name(), slot.len()),
            ));
        }
        out.push(Column { data, slot });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_bytes_are_big_endian_twos_complement() {
        assert_eq!(be_int(&[0x01, 0x00]), Some(256));
        assert_eq!(be_int(&[0xff, 0xfe]), Some(-2));
        assert_eq!(be_int(&[0x80; 16]).map(|v| v < 0), Some(true));
        assert_eq!(be_int(&[0; 17]), None);
        assert_eq!(be_int(&[]), None);
    }
}
