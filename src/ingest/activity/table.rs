//! The activity table as it is read in order.

use super::record::Record;
use crate::domain::activity::{Activity, PeriodActivity};
use crate::domain::calendar::{Day, PeriodUnit, date_of};
use crate::ingest::{IngestError, quoted_prefix};
use std::path::{Path, PathBuf};

/// The activity table as it is read in order: rows are checked and appended one by one, each
/// customer's cells at the end; the table needs no other copy of the rows.
pub(super) struct Table<'a> {
    files: &'a [PathBuf],
    unit: PeriodUnit,
    ids: Vec<String>,
    offsets: Vec<usize>,
    /// Periods are held as calendar ordinals (offset by 2^31) until the first day is known.
    cells: Vec<PeriodActivity>,
    first_day: Day,
    last_day: Day,
    has_margin: bool,
    /// The last row's period start, file and row.
    last: Option<(Day, usize, u64)>,
}

/// Why [`Table::push`] stopped: a bad row, or a row out of customer order.
pub(super) enum Refused {
    Bad(IngestError),
    OutOfOrder,
}

const ORDINAL_BIAS: i64 = 1 << 31;

impl<'a> Table<'a> {
    pub(super) fn new(files: &'a [PathBuf], unit: PeriodUnit) -> Self {
        Table {
            files,
            unit,
            ids: Vec::new(),
            offsets: Vec::new(),
            cells: Vec::new(),
            first_day: Day::MAX,
            last_day: Day::MIN,
            has_margin: false,
            last: None,
        }
    }

    pub(super) fn push(&mut self, file: usize, id: &str, r: &Record) -> Result<(), Refused> {
        let unit = self.unit;
        let bad = |message: String| {
            Refused::Bad(IngestError::Format {
                path: self.files[file].clone(),
                message: format!("row {}: {message}", r.row),
            })
        };
        let ordinal = unit.ordinal(r.period_start);
        if unit.start(ordinal) != r.period_start {
            return Err(bad(format!(
                "period_start {} is not the first day of a {unit} period (the configuration's unit)",
                date_of(r.period_start)
            )));
        }
        if r.first_day < r.period_start || r.last_day > unit.end(ordinal) {
            return Err(bad(format!(
                "its days ({} to {}) are not all in the period starting {}",
                date_of(r.first_day),
                date_of(r.last_day),
                date_of(r.period_start)
            )));
        }
        let biased = u32::try_from(ordinal + ORDINAL_BIAS).map_err(|_| bad("period_start out of range".into()))?;
        match self.ids.last().map(|last| last.as_bytes().cmp(id.as_bytes())) {
            Some(std::cmp::Ordering::Less) | None => {
                self.offsets.push(self.cells.len());
                self.ids.push(id.to_string());
            }
            Some(std::cmp::Ordering::Equal) => {
                let (previous, last_file, last_row) = self.last.expect("a row before");
                if previous == r.period_start {
                    let name = |f: usize| {
                        self.files[f].file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())
                    };
                    return Err(Refused::Bad(IngestError::Format {
                        path: self.files[file].clone(),
                        message: format!(
                            "customer {:?} has two rows for the period starting {} (row {last_row} of {} and row {} of {}): an activity table has one row per (customer, period)",
                            quoted_prefix(id.as_bytes()),
                            date_of(r.period_start),
                            name(last_file),
                            r.row,
                            name(file)
                        ),
                    }));
                }
                if previous > r.period_start {
                    return Err(Refused::OutOfOrder);
                }
            }
            Some(std::cmp::Ordering::Greater) => return Err(Refused::OutOfOrder),
        }
        self.last = Some((r.period_start, file, r.row));
        self.first_day = self.first_day.min(r.first_day);
        self.last_day = self.last_day.max(r.last_day);
        self.has_margin |= r.has_margin;
        self.cells.push(PeriodActivity { period: biased, ..r.cell });
        Ok(())
    }

    pub(super) fn finish(mut self, path: &Path) -> Result<Activity, IngestError> {
        if self.cells.is_empty() {
            return Err(IngestError::Format { path: path.into(), message: "the activity table has no rows".into() });
        }
        let first = self.unit.ordinal(self.first_day) + ORDINAL_BIAS;
        for cell in &mut self.cells {
            cell.period = (i64::from(cell.period) - first) as u32;
        }
        self.offsets.push(self.cells.len());
        Activity::from_parts(
            self.unit,
            (self.first_day, self.last_day),
            self.ids,
            self.has_margin,
            self.offsets,
            self.cells,
        )
        .map_err(|e| IngestError::Format { path: path.into(), message: e.to_string() })
    }
}
