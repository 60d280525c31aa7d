//! Reading an activity table that an engine wrote from `kam aggregate-sql`'s query
//! ([`super::activity_sql`]): CSV with a header, or Parquet; one file or a directory of part
//! files (as Spark and warehouses export them; names starting with `.` or `_` are left out).
//! Every value is checked — the schema version, each column's type, that `period_start` starts a
//! period of the configuration's unit, one row per (customer, period) — and a bad one is an
//! error naming the file, row and column. Amounts are decimal text read exactly, so the table
//! is the one kam builds from the transactions themselves (`crate::domain::activity`).

mod record;
mod table;

use super::IngestError;
use super::activity_sql::ACTIVITY_SCHEMA;
use crate::domain::activity::Activity;
use crate::domain::calendar::PeriodUnit;
use chrono::NaiveDate;
use record::{Record, Val, parse_record};
use std::path::{Path, PathBuf};
use table::{Refused, Table};

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

/// The rows of one part of the reading — a CSV file, or a row group of a Parquet file — with
/// the customer ids of runs of rows (`ids[k]` from `rows[starts[k]]` on).
#[derive(Default)]
struct Piece {
    file: usize,
    ids: Vec<String>,
    starts: Vec<usize>,
    rows: Vec<Record>,
}

impl Piece {
    fn push(&mut self, id: &str, record: Record) {
        if self.ids.last().map(String::as_str) != Some(id) {
            self.ids.push(id.to_string());
            self.starts.push(self.rows.len());
        }
        self.rows.push(record);
    }

    /// `(id, record)` in order.
    fn each(&self) -> impl Iterator<Item = (&str, &Record)> {
        self.ids.iter().enumerate().flat_map(move |(k, id)| {
            let end = self.starts.get(k + 1).copied().unwrap_or(self.rows.len());
            self.rows[self.starts[k]..end].iter().map(move |r| (id.as_str(), r))
        })
    }
}

/// A part of the reading: a CSV file, or a row group of a Parquet file.
#[derive(Clone, Copy)]
enum Unit {
    Csv(usize),
    Group { file: usize, group: usize },
}

impl Unit {
    fn file(self) -> usize {
        match self {
            Unit::Csv(file) | Unit::Group { file, .. } => file,
        }
    }
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

/// Reads the activity table at `path` in the periods `unit_of(first date)` gives (the
/// configuration's unit; periods of N days need the configuration's anchor, as the query did).
///
/// A table in the query's order (by customer, then period) streams: the part files, and each
/// Parquet file's row groups, are read a few at a time on all cores and appended in order, so
/// memory holds the table's cells and the parts being read, never all of its rows. A table out
/// of that order (an engine that exports shards unordered) is read a second time, whole, and
/// sorted in memory.
pub fn read_activity(path: &Path, unit_of: &dyn Fn(NaiveDate) -> PeriodUnit) -> Result<Activity, IngestError> {
    let files = files_of(path)?;
    let probe = |y| unit_of(NaiveDate::from_ymd_opt(y, 1, 1).expect("a date"));
    let unit = probe(2000);
    if unit != probe(2001) {
        let length = match unit {
            PeriodUnit::Days { length, .. } => length,
            _ => 0,
        };
        return Err(IngestError::Format {
            path: path.into(),
            message: format!(
                "periods of {length} days need an explicit anchor (--anchor or [period] anchor) to read an activity table: the one the query was emitted with"
            ),
        });
    }
    let units = units_of(&files)?;
    let mut table = Table::new(&files, unit);
    let streamed = read_units(&files, &units, &mut |piece| {
        for (id, r) in piece.each() {
            table.push(piece.file, id, r)?;
        }
        Ok(())
    });
    match streamed {
        Ok(()) => table.finish(path),
        Err(Refused::Bad(e)) => Err(e),
        Err(Refused::OutOfOrder) => {
            drop(table);
            let mut pieces = Vec::new();
            read_units(&files, &units, &mut |piece| {
                pieces.push(piece);
                Ok(())
            })
            .map_err(|e| match e {
                Refused::Bad(e) => e,
                Refused::OutOfOrder => unreachable!("pieces are only collected"),
            })?;
            let mut rows: Vec<(usize, &str, &Record)> =
                pieces.iter().flat_map(|p| p.each().map(move |(id, r)| (p.file, id, r))).collect();
            rows.sort_by(|a, b| a.1.as_bytes().cmp(b.1.as_bytes()).then(a.2.period_start.cmp(&b.2.period_start)));
            let mut table = Table::new(&files, unit);
            for (file, id, r) in rows {
                table.push(file, id, r).map_err(|e| match e {
                    Refused::Bad(e) => e,
                    Refused::OutOfOrder => unreachable!("sorted"),
                })?;
            }
            table.finish(path)
        }
    }
}

/// The parts of the reading, in order: each CSV file, each row group of each Parquet file.
fn units_of(files: &[PathBuf]) -> Result<Vec<Unit>, IngestError> {
    let mut units = Vec::new();
    for (file, path) in files.iter().enumerate() {
        if is_parquet(path) {
            use parquet::file::reader::FileReader;
            let (reader, _) = super::parquet_file::open(path)?;
            units.extend((0..reader.metadata().num_row_groups()).map(|group| Unit::Group { file, group }));
        } else {
            units.push(Unit::Csv(file));
        }
    }
    Ok(units)
}

fn is_parquet(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(super::is_parquet_name)
}

/// Reads `units` a window at a time — as many as there are cores, in parallel — and hands each
/// one's rows to `sink` in order, stopping at the first error.
fn read_units(
    files: &[PathBuf],
    units: &[Unit],
    sink: &mut dyn FnMut(Piece) -> Result<(), Refused>,
) -> Result<(), Refused> {
    use rayon::prelude::*;
    let window = rayon::current_num_threads().max(1);
    for batch in units.chunks(window) {
        // Each Parquet file of the window opened once (its footer), shared by its row groups.
        let mut open: Vec<(usize, Option<Opened>)> = Vec::new();
        for u in batch {
            let file = u.file();
            if open.last().is_none_or(|(f, _)| *f != file) {
                let opened = match u {
                    Unit::Group { .. } => Some(open_parquet(&files[file]).map_err(Refused::Bad)?),
                    Unit::Csv(_) => None,
                };
                open.push((file, opened));
            }
        }
        let pieces: Vec<Result<Piece, IngestError>> = batch
            .par_iter()
            .map(|u| match *u {
                Unit::Csv(file) => read_csv(&files[file], file),
                Unit::Group { file, group } => {
                    let opened = open.iter().find(|(f, _)| *f == file).and_then(|(_, o)| o.as_ref()).expect("opened");
                    read_group(&files[file], file, opened, group)
                }
            })
            .collect();
        for piece in pieces {
            sink(piece.map_err(Refused::Bad)?)?;
        }
    }
    Ok(())
}

/// Finds the [`COLUMNS`] among `names` (a header, a schema's fields): their positions.
fn header(path: &Path, names: &[String]) -> Result<[usize; COLUMNS.len()], IngestError> {
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
}

/// A Parquet part file opened: its reader, the leaf column of each of [`COLUMNS`], and the
/// first row of each row group.
struct Opened {
    reader: parquet::file::reader::SerializedFileReader<super::parquet_file::PartFile>,
    leaves: [usize; COLUMNS.len()],
    first_rows: Vec<u64>,
}

fn open_parquet(path: &Path) -> Result<Opened, IngestError> {
    use parquet::file::reader::FileReader;
    let (reader, names) = super::parquet_file::open(path)?;
    let index = header(path, &names)?;
    let mut leaves = [0; COLUMNS.len()];
    for (k, &field) in index.iter().enumerate() {
        leaves[k] = super::parquet_columns::leaf_of_field(&reader, field).ok_or_else(|| IngestError::Format {
            path: path.into(),
            message: format!(
                "column {} is nested (a group or a list); the activity table's columns are flat",
                COLUMNS[k]
            ),
        })?;
    }
    let mut first_rows = Vec::new();
    let mut total = 0u64;
    for g in reader.metadata().row_groups() {
        first_rows.push(total);
        total += g.num_rows() as u64;
    }
    Ok(Opened { reader, leaves, first_rows })
}

/// The rows of row group `group` of a Parquet part file.
fn read_group(path: &Path, file: usize, opened: &Opened, group: usize) -> Result<Piece, IngestError> {
    let columns = super::parquet_columns::read_columns(&opened.reader, path, group, &opened.leaves)?;
    let rows = columns.first().map_or(0, |c| c.len());
    let mut piece = Piece { file, rows: Vec::with_capacity(rows), ..Piece::default() };
    for i in 0..rows {
        let mut vals: [Option<Val>; COLUMNS.len()] = [None; COLUMNS.len()];
        for (k, c) in columns.iter().enumerate() {
            vals[k] = c.get(i);
        }
        let (id, record) = parse_record(path, opened.first_rows[group] + i as u64 + 1, &vals)?;
        piece.push(&id, record);
    }
    Ok(piece)
}

/// The rows of a CSV part file.
fn read_csv(path: &Path, file: usize) -> Result<Piece, IngestError> {
    super::check_regular_file(path)?;
    let io = |source| IngestError::Io { path: path.into(), source };
    let format = |e: csv::Error| IngestError::Format { path: path.into(), message: e.to_string() };
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_path(path).map_err(format)?;
    let names: Vec<String> = reader.headers().map_err(format)?.iter().map(str::to_string).collect();
    let index = header(path, &names)?;
    let mut piece = Piece { file, ..Piece::default() };
    let mut record = csv::StringRecord::new();
    let mut row = 0;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                return Err(match e.kind() {
                    csv::ErrorKind::Io(_) => io(std::io::Error::other(e.to_string())),
                    _ => format(e),
                });
            }
        }
        row += 1;
        let mut vals: [Option<Val>; COLUMNS.len()] = [None; COLUMNS.len()];
        for (k, &i) in index.iter().enumerate() {
            vals[k] = record.get(i).filter(|v| !v.is_empty()).map(Val::Text);
        }
        let (id, r) = parse_record(path, row, &vals)?;
        piece.push(&id, r);
    }
    Ok(piece)
}
