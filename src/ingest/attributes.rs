//! The optional customer attributes file: a header, a customer id column (`customer_id`, or the
//! first column), and attribute columns. Columns whose every non-empty value is a number are used
//! as numeric attributes; other columns are listed as ignored (categorical attributes are not yet
//! modelled). Empty cells are missing values, filled with the column mean at training.

use super::IngestError;
use super::fields::parse_amount;
use crate::domain::transactions::CustomerAttributes;
use rustc_hash::FxHashMap;
use std::path::Path;

/// What reading the attributes found.
#[derive(Clone, Debug, PartialEq)]
pub struct AttributesReport {
    /// Non-numeric columns, not used.
    pub ignored_columns: Vec<String>,
    /// Rows whose customer has no transactions.
    pub unknown_customers: u64,
}

/// Reads attributes aligned with `customer_ids` (the transactions' customer numbering).
pub fn read(path: &Path, customer_ids: &[String]) -> Result<(CustomerAttributes, AttributesReport), IngestError> {
    super::check_regular_file(path)?;
    let bytes = std::fs::read(path).map_err(|source| IngestError::Io { path: path.into(), source })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(IngestError::Empty { path: path.into() });
    }
    let first = bytes.split(|&b| b == b'\n').next().unwrap_or(&bytes);
    let delimiter = match super::csv::detect_delimiter(first) {
        super::Delimiter::Byte(d) => d,
        _ => b',',
    };
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).flexible(true).from_reader(bytes.as_slice());
    let format = |e: csv::Error| IngestError::Format { path: path.into(), message: e.to_string() };
    let header: Vec<String> = reader.headers().map_err(format)?.iter().map(|h| h.trim().to_string()).collect();
    let id_col = header.iter().position(|h| h.eq_ignore_ascii_case("customer_id")).unwrap_or(0);
    let mut records = Vec::new();
    for r in reader.byte_records() {
        let r = r.map_err(format)?;
        let line = r.position().map_or(0, |p| p.line());
        if r.len() != header.len() {
            return Err(IngestError::TooFewFields { path: path.into(), line, expected: header.len(), found: r.len() });
        }
        records.push((line, r));
    }
    if records.is_empty() {
        return Err(IngestError::NoDataRows { path: path.into() });
    }
    let numeric: Vec<usize> = (0..header.len())
        .filter(|&k| k != id_col)
        .filter(|&k| records.iter().all(|(_, r)| r[k].trim_ascii().is_empty() || parse_amount(&r[k]).is_ok()))
        .collect();
    let ignored =
        (0..header.len()).filter(|k| *k != id_col && !numeric.contains(k)).map(|k| header[k].clone()).collect();
    let index: FxHashMap<&str, usize> = customer_ids.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
    let k = numeric.len();
    let mut values = vec![f64::NAN; customer_ids.len() * k];
    let mut seen = vec![false; customer_ids.len()];
    let mut unknown = 0;
    for (line, r) in &records {
        let id = String::from_utf8_lossy(r[id_col].trim_ascii()).into_owned();
        if id.is_empty() {
            return Err(IngestError::BadField {
                path: path.into(),
                line: *line,
                column: format!("{:?}", header[id_col]),
                value: super::quoted_prefix(id.as_bytes()),
                problem: "empty customer id".into(),
            });
        }
        let Some(&c) = index.get(id.as_str()) else {
            unknown += 1;
            continue;
        };
        if std::mem::replace(&mut seen[c], true) {
            return Err(IngestError::BadField {
                path: path.into(),
                line: *line,
                column: format!("{:?}", header[id_col]),
                value: super::quoted_prefix(id.as_bytes()),
                problem: "customer listed twice".into(),
            });
        }
        for (j, &col) in numeric.iter().enumerate() {
            if let Ok(v) = parse_amount(&r[col]) {
                values[c * k + j] = v;
            }
        }
    }
    Ok((
        CustomerAttributes { names: numeric.iter().map(|&c| header[c].clone()).collect(), values },
        AttributesReport { ignored_columns: ignored, unknown_customers: unknown },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_columns_are_aligned_and_text_columns_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.csv");
        std::fs::write(&path, "customer_id,employees,region,score\nb,10,north,\na,3,south,0.5\nzz,1,x,1\n").unwrap();
        let ids = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let (attrs, report) = read(&path, &ids).unwrap();
        assert_eq!(attrs.names, ["employees", "score"]);
        assert_eq!(&attrs.values[..3], &[3.0, 0.5, 10.0]);
        assert!(attrs.values[3].is_nan() && attrs.values[4].is_nan() && attrs.values[5].is_nan());
        assert_eq!(report.ignored_columns, ["region"]);
        assert_eq!(report.unknown_customers, 1);
    }
}
