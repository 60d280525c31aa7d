//! Row writers for score files: CSV and Parquet with a fixed column list (JSON Lines is written
//! directly by the caller, nested).

use anyhow::Context;
use rayon::prelude::*;
use std::io::Write;
use std::path::Path;

/// A column's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColType {
    Str,
    F64,
}

/// A cell.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell<'a> {
    Str(&'a str),
    F64(f64),
    /// Missing (empty in CSV, null in Parquet).
    Null,
}

/// A column: name and type; every column may hold nulls.
#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    pub ty: ColType,
}

/// Something rows are written to.
pub trait RowSink {
    fn write_row(&mut self, cells: &[Cell]) -> anyhow::Result<()>;
    fn finish(self: Box<Self>) -> anyhow::Result<()>;
}

/// Writes one CSV row into `line` (no newline handling beyond the trailing one).
fn push_csv_row(line: &mut Vec<u8>, cells: &[Cell]) {
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            line.push(b',');
        }
        match c {
            Cell::Str(s) => push_csv_str(line, s),
            Cell::F64(x) if x.is_finite() => crate::app::numbers::push_number(line, *x),
            Cell::F64(_) | Cell::Null => {}
        }
    }
    line.push(b'\n');
}

/// Writes `n` rows as CSV, formatting blocks of rows on all cores and writing them in order.
/// `fill(i, cells)` fills the cells of row i.
pub fn write_csv_parallel<'a, W: Write>(
    mut out: W,
    columns: &[Column],
    n: usize,
    fill: impl Fn(usize, &mut Vec<Cell<'a>>) + Sync,
) -> anyhow::Result<()> {
    let header: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    writeln!(out, "{}", header.join(","))?;
    const BLOCK: usize = 16_384;
    let threads = rayon::current_num_threads().min(8);
    let mut start = 0;
    while start < n {
        let blocks: Vec<(usize, usize)> = (0..threads)
            .map(|t| (start + t * BLOCK, (start + (t + 1) * BLOCK).min(n)))
            .filter(|(a, b)| a < b)
            .collect();
        let fill = &fill;
        let buffers: Vec<Vec<u8>> = blocks
            .par_iter()
            .map(|&(a, b)| {
                let mut buf = Vec::with_capacity((b - a) * 256);
                let mut cells = Vec::with_capacity(columns.len());
                for i in a..b {
                    cells.clear();
                    fill(i, &mut cells);
                    push_csv_row(&mut buf, &cells);
                }
                buf
            })
            .collect();
        for b in &buffers {
            out.write_all(b)?;
        }
        start = blocks.last().map_or(n, |x| x.1);
    }
    out.flush()?;
    Ok(())
}

/// CSV with a header line; numbers to 6 decimals.
pub struct CsvSink<W: Write> {
    out: W,
    line: Vec<u8>,
}

impl<W: Write> CsvSink<W> {
    pub fn new(mut out: W, columns: &[Column]) -> anyhow::Result<Self> {
        let header: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        writeln!(out, "{}", header.join(","))?;
        Ok(Self { out, line: Vec::with_capacity(1024) })
    }
}

/// Whether a spreadsheet would read `s` as a formula (`=`, `+`, `@`, a tab or carriage return,
/// or `-` not starting a number): such a cell is written with a leading `'`, as OWASP advises
/// against CSV injection. Ids like `-42` stay as they are.
fn looks_like_formula(s: &str) -> bool {
    match s.as_bytes() {
        [b'=' | b'+' | b'@' | b'\t' | b'\r', ..] => true,
        [b'-', rest @ ..] => !rest.first().is_some_and(|b| b.is_ascii_digit() || *b == b'.'),
        _ => false,
    }
}

fn push_csv_str(line: &mut Vec<u8>, s: &str) {
    if looks_like_formula(s) {
        let guarded = format!("'{s}");
        return push_csv_str(line, &guarded);
    }
    if s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        line.push(b'"');
        for b in s.bytes() {
            if b == b'"' {
                line.push(b'"');
            }
            line.push(b);
        }
        line.push(b'"');
    } else {
        line.extend_from_slice(s.as_bytes());
    }
}

#[cfg(test)]
#[test]
fn cells_a_spreadsheet_would_run_as_formulas_are_quoted_with_an_apostrophe() {
    let cell = |s: &str| {
        let mut v = Vec::new();
        push_csv_str(&mut v, s);
        String::from_utf8(v).unwrap()
    };
    assert_eq!(cell("=HYPERLINK(\"x\",\"y\")"), "\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\"");
    assert_eq!(cell("+1"), "'+1");
    assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
    assert_eq!(cell("-cmd"), "'-cmd");
    assert_eq!(cell("-42"), "-42");
    assert_eq!(cell("C0001"), "C0001");
}

impl<W: Write> RowSink for CsvSink<W> {
    fn write_row(&mut self, cells: &[Cell]) -> anyhow::Result<()> {
        self.line.clear();
        push_csv_row(&mut self.line, cells);
        self.out.write_all(&self.line)?;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> anyhow::Result<()> {
        self.out.flush()?;
        Ok(())
    }
}

/// Parquet: OPTIONAL DOUBLE and OPTIONAL BYTE_ARRAY (UTF8) columns, a row group per 65,536 rows.
pub struct ParquetSink {
    writer: parquet::file::writer::SerializedFileWriter<std::fs::File>,
    columns: Vec<Column>,
    f64s: Vec<Vec<f64>>,
    strs: Vec<Vec<parquet::data_type::ByteArray>>,
    defs: Vec<Vec<i16>>,
    rows: usize,
}

const GROUP_ROWS: usize = 65_536;

impl ParquetSink {
    pub fn create(path: &Path, columns: &[Column]) -> anyhow::Result<Self> {
        use parquet::file::properties::WriterProperties;
        use parquet::schema::parser::parse_message_type;
        let fields: Vec<String> = columns
            .iter()
            .map(|c| match c.ty {
                ColType::F64 => format!("OPTIONAL DOUBLE {};", c.name),
                ColType::Str => format!("OPTIONAL BYTE_ARRAY {} (UTF8);", c.name),
            })
            .collect();
        let schema = parse_message_type(&format!("message scores {{ {} }}", fields.join(" ")))
            .context("building the Parquet schema")?;
        let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let writer = parquet::file::writer::SerializedFileWriter::new(
            file,
            std::sync::Arc::new(schema),
            std::sync::Arc::new(
                WriterProperties::builder()
                    .set_dictionary_enabled(false)
                    .set_compression(parquet::basic::Compression::SNAPPY)
                    .build(),
            ),
        )?;
        let n = columns.len();
        Ok(Self {
            writer,
            columns: columns.to_vec(),
            f64s: vec![Vec::new(); n],
            strs: vec![Vec::new(); n],
            defs: vec![Vec::new(); n],
            rows: 0,
        })
    }

    fn flush_group(&mut self) -> anyhow::Result<()> {
        use parquet::data_type::{ByteArrayType, DoubleType};
        if self.rows == 0 {
            return Ok(());
        }
        let mut group = self.writer.next_row_group()?;
        for i in 0..self.columns.len() {
            let mut col = group.next_column()?.context("a column per schema field")?;
            match self.columns[i].ty {
                ColType::F64 => {
                    col.typed::<DoubleType>().write_batch(&self.f64s[i], Some(&self.defs[i]), None)?;
                }
                ColType::Str => {
                    col.typed::<ByteArrayType>().write_batch(&self.strs[i], Some(&self.defs[i]), None)?;
                }
            }
            col.close()?;
            self.f64s[i].clear();
            self.strs[i].clear();
            self.defs[i].clear();
        }
        group.close()?;
        self.rows = 0;
        Ok(())
    }
}

impl RowSink for ParquetSink {
    fn write_row(&mut self, cells: &[Cell]) -> anyhow::Result<()> {
        for (i, c) in cells.iter().enumerate() {
            match (c, self.columns[i].ty) {
                (Cell::F64(x), ColType::F64) if x.is_finite() => {
                    self.f64s[i].push(*x);
                    self.defs[i].push(1);
                }
                (Cell::Str(s), ColType::Str) => {
                    self.strs[i].push(parquet::data_type::ByteArray::from(*s));
                    self.defs[i].push(1);
                }
                _ => self.defs[i].push(0),
            }
        }
        self.rows += 1;
        if self.rows == GROUP_ROWS {
            self.flush_group()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> anyhow::Result<()> {
        self.flush_group()?;
        self.writer.close()?;
        Ok(())
    }
}
