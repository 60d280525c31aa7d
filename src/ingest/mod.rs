//! Files → validated transactions. Raw rows become domain values here, at the boundary; a bad
//! row is an error naming the file, line, column and value (or, with [`OnBadRow::Skip`], is
//! counted and skipped).
//!
//! - [`csv`]: delimited text (any one-byte delimiter, or runs of whitespace), with or without a
//!   header.
//! - [`parquet`]: Parquet files of transactions; [`parquet_file`]: opening a Parquet file safely
//!   and walking its rows.
//! - [`attributes`]: the optional customer attributes file.
//! - [`fields`]: parsing of dates and amounts.
//! - [`activity_sql`]: the SQL that aggregates transactions in an engine (`kam aggregate-sql`),
//!   and [`activity`]: reading its output back as the activity table.

pub mod activity;
pub mod activity_sql;
pub mod attributes;
pub mod csv;
pub mod fields;
pub mod parquet;
pub mod parquet_columns;
pub mod parquet_file;

use crate::domain::calendar::Day;
use crate::domain::transactions::Transactions;
use std::fmt;
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};

/// Field separator of a text file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Delimiter {
    /// Guess from the first line: comma, tab, semicolon or pipe, else runs of whitespace.
    #[default]
    Auto,
    /// One byte, with CSV quoting.
    Byte(u8),
    /// Runs of spaces and tabs (no quoting), as in CDNOW_master.txt.
    Whitespace,
}

impl std::str::FromStr for Delimiter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "auto" => Delimiter::Auto,
            "whitespace" | "ws" | "space" => Delimiter::Whitespace,
            "tab" | "\\t" | "\t" => Delimiter::Byte(b'\t'),
            "comma" => Delimiter::Byte(b','),
            "semicolon" => Delimiter::Byte(b';'),
            "pipe" => Delimiter::Byte(b'|'),
            s if s.len() == 1 => Delimiter::Byte(s.as_bytes()[0]),
            _ => {
                return Err(format!(
                    "unknown delimiter {s:?}: give one character, or auto, whitespace, tab, comma, semicolon, pipe"
                ));
            }
        })
    }
}

/// Whether the first line names the columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HeaderMode {
    /// A header when no field of the first line is a number.
    #[default]
    Auto,
    Yes,
    No,
}

/// A column by header name (case-insensitive) or 1-based position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ColumnRef {
    Name(String),
    Position(usize),
}

impl std::str::FromStr for ColumnRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.parse::<usize>() {
            Ok(0) => Err("column positions count from 1".into()),
            Ok(n) => Ok(ColumnRef::Position(n)),
            Err(_) if s.trim().is_empty() => Err("empty column name".into()),
            Err(_) => Ok(ColumnRef::Name(s.trim().to_string())),
        }
    }
}

impl fmt::Display for ColumnRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnRef::Name(n) => write!(f, "{n:?}"),
            ColumnRef::Position(p) => write!(f, "#{p}"),
        }
    }
}

/// What to do with a row that does not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnBadRow {
    /// Stop with an error naming the row.
    #[default]
    Fail,
    /// Skip it, count it and report the first few.
    Skip,
}

impl std::str::FromStr for OnBadRow {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fail" => Ok(OnBadRow::Fail),
            "skip" => Ok(OnBadRow::Skip),
            _ => Err(format!("expected fail or skip, got {s:?}")),
        }
    }
}

/// How to read a transactions file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReadOptions {
    pub delimiter: Delimiter,
    pub header: HeaderMode,
    /// Customer id column (default: a header name such as customer_id, else position 1).
    pub customer: Option<ColumnRef>,
    /// Date column (default: date, day, timestamp…, else position 2).
    pub date: Option<ColumnRef>,
    /// Amount column (default: amount, spend, value, revenue…, else position 3).
    pub amount: Option<ColumnRef>,
    /// Margin column (default: margin or profit when the header has one).
    pub margin: Option<ColumnRef>,
    pub on_bad_row: OnBadRow,
    /// Rows dated outside this range are left out (and counted).
    pub date_range: Option<DateRange>,
}

/// The rows to keep by date: `FROM..TO`, either side optional (`2020-01-01..`, `..2024-12-31`),
/// both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateRange {
    pub from: Option<chrono::NaiveDate>,
    pub to: Option<chrono::NaiveDate>,
}

impl std::str::FromStr for DateRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, b) =
            s.split_once("..").ok_or_else(|| format!("expected FROM..TO (e.g. 2020-01-01..2024-12-31), got {s:?}"))?;
        let date = |t: &str| -> Result<Option<chrono::NaiveDate>, String> {
            let t = t.trim();
            if t.is_empty() {
                return Ok(None);
            }
            fields::parse_date(t.as_bytes())
                .map(|d| Some(crate::domain::calendar::date_of(d)))
                .map_err(|e| format!("{e}: {t:?}"))
        };
        let range = DateRange { from: date(a)?, to: date(b)? };
        if let (Some(f), Some(t)) = (range.from, range.to)
            && f > t
        {
            return Err(format!("{f} is after {t}"));
        }
        Ok(range)
    }
}

impl fmt::Display for DateRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = |d: Option<chrono::NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
        write!(f, "{}..{}", side(self.from), side(self.to))
    }
}

/// The role of a column, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Customer,
    Date,
    Amount,
    Margin,
}

impl Role {
    fn default_names(self) -> &'static [&'static str] {
        match self {
            Role::Customer => &["customer_id", "customer", "customerid", "client_id", "cust_id", "account_id", "id"],
            Role::Date => {
                &["date", "day", "timestamp", "order_date", "transaction_date", "purchase_date", "ts", "time"]
            }
            Role::Amount => &["amount", "spend", "value", "revenue", "sales", "total", "price"],
            Role::Margin => &["margin", "profit"],
        }
    }

    fn default_position(self) -> Option<usize> {
        match self {
            Role::Customer => Some(1),
            Role::Date => Some(2),
            Role::Amount => Some(3),
            Role::Margin => None,
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Role::Customer => "--customer-col",
            Role::Date => "--date-col",
            Role::Amount => "--amount-col",
            Role::Margin => "--margin-col",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Customer => "customer id",
            Role::Date => "date",
            Role::Amount => "amount",
            Role::Margin => "margin",
        })
    }
}

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error("{path} is empty: it has no rows")]
    Empty { path: PathBuf },
    #[error("{path} has a header but no data rows")]
    NoDataRows { path: PathBuf },
    #[error("{path}: no {role} column: {wanted}; the header has {available}; name one with {flag}")]
    MissingColumn { path: PathBuf, role: Role, wanted: String, available: String, flag: &'static str },
    #[error(
        "{path}: the {role} column is given by name ({name:?}) but the file has no header; give its position (e.g. {flag} 3)"
    )]
    NamedWithoutHeader { path: PathBuf, role: Role, name: String, flag: &'static str },
    #[error("{path}: line {line}: expected at least {expected} fields, found {found}")]
    TooFewFields { path: PathBuf, line: u64, expected: usize, found: usize },
    #[error("{path}: line {line}, column {column}: {problem}: {value:?}")]
    BadField { path: PathBuf, line: u64, column: String, value: String, problem: String },
    #[error("{path}: row {row}, column {column}: {problem}: {value}")]
    BadValue { path: PathBuf, row: u64, column: String, value: String, problem: String },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
}

/// Longest prefix of a value quoted in an error message, in bytes.
pub const QUOTED_PREFIX: usize = 40;

/// A value as an error message quotes it: at most [`QUOTED_PREFIX`] bytes (cut at a character
/// boundary), with the full length noted when cut — a 2 GB field makes a short message.
pub fn quoted_prefix(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(&value[..value.len().min(QUOTED_PREFIX + 4)]);
    if value.len() <= QUOTED_PREFIX {
        return text.into_owned();
    }
    let mut end = QUOTED_PREFIX.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], value.len())
}

impl IngestError {
    /// The message for an API client, who named the file `name` but may not see the server's
    /// paths or any of the file's content: the line or row and the problem, never a value, a
    /// header or an operating-system path.
    pub fn for_client(&self, name: &str) -> String {
        match self {
            IngestError::Io { source, .. } => format!("cannot read {name}: {}", io_kind(source)),
            IngestError::NotAFile { .. } => format!("{name} is not a regular file"),
            IngestError::Empty { .. } => format!("{name} is empty: it has no rows"),
            IngestError::NoDataRows { .. } => format!("{name} has a header but no data rows"),
            IngestError::MissingColumn { role, wanted, .. } => {
                format!("{name}: no {role} column: {wanted}; name one in columns")
            }
            IngestError::NamedWithoutHeader { role, name: column, .. } => format!(
                "{name}: the {role} column is given by name ({column:?}) but the file has no header; give its position"
            ),
            IngestError::TooFewFields { line, expected, found, .. } => {
                format!("{name}: line {line}: expected at least {expected} fields, found {found}")
            }
            IngestError::BadField { line, problem, .. } => format!("{name}: line {line}: {problem}"),
            IngestError::BadValue { row, problem, .. } => format!("{name}: row {row}: {problem}"),
            IngestError::Format { .. } => format!("{name}: not a readable transactions file"),
        }
    }

    /// Whether this error is about one row (skippable) rather than the whole file.
    pub fn is_row_error(&self) -> bool {
        matches!(self, IngestError::TooFewFields { .. } | IngestError::BadField { .. } | IngestError::BadValue { .. })
    }
}

/// An I/O error's kind in words, without the path or the OS message.
fn io_kind(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file",
        std::io::ErrorKind::PermissionDenied => "permission denied",
        std::io::ErrorKind::InvalidData => "not valid text",
        _ => "read error",
    }
}

/// Transactions read from a file, with what was skipped.
#[derive(Debug)]
pub struct Ingested {
    pub transactions: Transactions,
    /// File name without directory (for messages; a model fingerprints the activity table, not
    /// the file).
    pub source_name: String,
    pub rows_skipped: u64,
    /// The first few skipped rows' errors.
    pub first_skipped: Vec<String>,
    /// The date range applied, and the rows it left out.
    pub date_range: Option<DateRange>,
    pub rows_outside_date_range: u64,
}

impl Ingested {
    /// The fingerprint fields the domain needs.
    pub fn source(&self) -> crate::model::train::SourceInfo {
        crate::model::train::SourceInfo {
            rows_skipped: self.rows_skipped,
            date_range: self.date_range.map(|r| r.to_string()),
        }
    }
}

/// How many skipped rows are reported one by one.
pub const SKIPPED_SHOWN: usize = 5;

/// Whether a file of this name is read as Parquet: it ends in `.parquet` or `.pq` (any case).
pub fn is_parquet_name(name: &str) -> bool {
    let ext = Path::new(name).extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    ext == "parquet" || ext == "pq"
}

/// Reads a transactions file: Parquet when [`is_parquet_name`], else delimited text.
pub fn read_transactions(path: &Path, options: &ReadOptions) -> Result<Ingested, IngestError> {
    check_regular_file(path)?;
    let parquet = path.file_name().and_then(|n| n.to_str()).is_some_and(is_parquet_name);
    let mut ingested = if parquet { parquet::read(path, options) } else { csv::read(path, options) }?;
    if let Some(range) = options.date_range {
        let day = crate::domain::calendar::day_of;
        let (from, to) = (range.from.map_or(Day::MIN, day), range.to.map_or(Day::MAX, day));
        ingested.rows_outside_date_range = ingested.transactions.retain_days(from, to);
        ingested.date_range = Some(range);
        if ingested.transactions.is_empty() {
            return Err(IngestError::Format {
                path: path.into(),
                message: format!("no row is dated within --date-range {range}"),
            });
        }
    }
    Ok(ingested)
}

/// Refuses what is not a regular file before opening it: a FIFO or a device would block or
/// never end, a directory gives an OS-specific error.
pub(crate) fn check_regular_file(path: &Path) -> Result<(), IngestError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(IngestError::NotAFile { path: path.into() }),
        Err(source) => Err(IngestError::Io { path: path.into(), source }),
    }
}

/// Collects parsed rows into columns, numbering customers in order of first appearance (renumbered
/// in id byte order when finished).
#[derive(Default)]
pub(crate) struct Builder {
    /// Customer numbers, hashed by their id (kept once, in `tx.customer_ids`).
    ids: hashbrown::HashTable<u32>,
    /// The customer of the previous row (files are often grouped by customer).
    last: Option<u32>,
    tx: Transactions,
    skipped: u64,
    first_skipped: Vec<String>,
}

impl Builder {
    pub(crate) fn new(with_margin: bool) -> Self {
        let mut b = Self::default();
        if with_margin {
            b.tx.margin = Some(Vec::new());
        }
        b
    }

    /// The number of customer `id`, numbering it if new.
    #[inline]
    fn intern(&mut self, id: &[u8]) -> u32 {
        let hash_of = |b: &[u8]| rustc_hash::FxBuildHasher.hash_one(b);
        let Builder { ids, tx, .. } = self;
        let h = hash_of(id);
        if let Some(&c) = ids.find(h, |&c| tx.customer_ids[c as usize].as_bytes() == id) {
            return c;
        }
        let c = tx.customer_ids.len() as u32;
        tx.customer_ids.push(String::from_utf8_lossy(id).into_owned());
        ids.insert_unique(h, c, |&c| hash_of(tx.customer_ids[c as usize].as_bytes()));
        c
    }

    #[inline]
    pub(crate) fn push(&mut self, id: &[u8], day: i32, amount: f64, margin: Option<f64>) {
        let c = match self.last {
            Some(c) if self.tx.customer_ids[c as usize].as_bytes() == id => c,
            _ => {
                let c = self.intern(id);
                self.last = Some(c);
                c
            }
        };
        self.tx.customer.push(c);
        self.tx.day.push(day);
        self.tx.amount.push(amount);
        if let (Some(m), Some(v)) = (&mut self.tx.margin, margin) {
            m.push(v);
        }
    }

    /// Appends the rows of a builder that read a later part of the same file, numbering its new
    /// customers after this one's.
    /// Handles a row error: returns it under [`OnBadRow::Fail`], else counts it.
    pub(crate) fn bad_row(&mut self, err: IngestError, policy: OnBadRow) -> Result<(), IngestError> {
        match policy {
            OnBadRow::Fail => Err(err),
            OnBadRow::Skip => {
                self.skipped += 1;
                if self.first_skipped.len() < SKIPPED_SHOWN {
                    self.first_skipped.push(err.to_string());
                }
                Ok(())
            }
        }
    }

    /// The rows read, their customers numbered in id byte order.
    pub(crate) fn finish(mut self, path: &Path) -> Ingested {
        self.tx.number_customers_by_id();
        Ingested {
            transactions: self.tx,
            source_name: path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            rows_skipped: self.skipped,
            first_skipped: self.first_skipped,
            date_range: None,
            rows_outside_date_range: 0,
        }
    }
}

/// Resolves a column reference against a header (or none) to a 0-based index.
pub(crate) fn resolve_column(
    path: &Path,
    role: Role,
    given: Option<&ColumnRef>,
    header: Option<&[String]>,
) -> Result<Option<usize>, IngestError> {
    let available = || header.map(|h| h.join(", ")).unwrap_or_default();
    match (given, header) {
        (Some(ColumnRef::Position(p)), Some(h)) if *p > h.len() => Err(IngestError::MissingColumn {
            path: path.into(),
            role,
            wanted: format!("position {p} is past the last of {} columns", h.len()),
            available: available(),
            flag: role.flag(),
        }),
        (Some(ColumnRef::Position(p)), _) => Ok(Some(p - 1)),
        (Some(ColumnRef::Name(n)), Some(h)) => match h.iter().position(|c| c.eq_ignore_ascii_case(n)) {
            Some(i) => Ok(Some(i)),
            None => Err(IngestError::MissingColumn {
                path: path.into(),
                role,
                wanted: format!("no column named {n:?}"),
                available: available(),
                flag: role.flag(),
            }),
        },
        (Some(ColumnRef::Name(n)), None) => {
            Err(IngestError::NamedWithoutHeader { path: path.into(), role, name: n.clone(), flag: role.flag() })
        }
        (None, Some(h)) => {
            let found =
                role.default_names().iter().find_map(|name| h.iter().position(|c| c.trim().eq_ignore_ascii_case(name)));
            match (found, role) {
                (Some(i), _) => Ok(Some(i)),
                (None, Role::Margin) => Ok(None),
                (None, _) => Err(IngestError::MissingColumn {
                    path: path.into(),
                    role,
                    wanted: format!("looked for {}", role.default_names().join(", ")),
                    available: available(),
                    flag: role.flag(),
                }),
            }
        }
        (None, None) => Ok(role.default_position().map(|p| p - 1)),
    }
}

/// Column indices of the four roles.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Columns {
    pub customer: usize,
    pub date: usize,
    pub amount: usize,
    pub margin: Option<usize>,
}

impl Columns {
    pub(crate) fn resolve(path: &Path, o: &ReadOptions, header: Option<&[String]>) -> Result<Self, IngestError> {
        let need = |role, given| {
            resolve_column(path, role, given, header).map(|c| c.expect("required roles have a default position"))
        };
        Ok(Self {
            customer: need(Role::Customer, o.customer.as_ref())?,
            date: need(Role::Date, o.date.as_ref())?,
            amount: need(Role::Amount, o.amount.as_ref())?,
            margin: resolve_column(path, Role::Margin, o.margin.as_ref(), header)?,
        })
    }

    /// Fields a row needs.
    pub(crate) fn needed(&self) -> usize {
        1 + [self.customer, self.date, self.amount, self.margin.unwrap_or(0)].into_iter().max().unwrap()
    }

    /// Name of a column for messages.
    pub(crate) fn label(index: usize, header: Option<&[String]>) -> String {
        match header.and_then(|h| h.get(index)) {
            Some(name) => format!("{name:?}"),
            None => format!("#{}", index + 1),
        }
    }
}
