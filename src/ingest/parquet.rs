//! Parquet files, read row by row. Columns are found by name (the schema's top-level fields) or
//! position like text files; dates may be DATE, TIMESTAMP (UTC day), strings or YYYYMMDD
//! integers; amounts any numeric type, decimal, or a numeric string.

use super::fields::{check_money, parse_amount, parse_date};
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
        Field::Decimal(d) => return decimal_value(d),
        Field::Str(s) => return parse_amount(s.as_bytes()),
        Field::Null => return Err("empty amount"),
        _ => return Err("not a numeric type"),
    };
    if v.is_finite() { Ok(v) } else { Err("not a finite number") }
}

/// Longest part of a value that an error quotes, in bytes.
const QUOTED: usize = 40;
/// Longest part of a decoder's message that an error quotes, in bytes.
const QUOTED_MESSAGE: usize = 200;

/// A short, escaped prefix of `bytes` (at most `max` bytes of it) for an error message, with the
/// full length when cut.
fn quoted_upto(bytes: &[u8], max: usize) -> String {
    let text: String = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).escape_debug().collect();
    if bytes.len() > max { format!("{text}… ({} bytes)", bytes.len()) } else { text }
}

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

thread_local! {
    /// Set while this thread runs the parquet crate's decoding (see [`decoding`]).
    static DECODING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` — a call into the parquet crate's decoder — turning a panic inside it into an error
/// (a short escaped prefix of the panic's message). The decoder panics on some corrupt files
/// (index out of bounds in its RLE decoder, assertions in its bit reader, capacity overflow).
///
/// Such a panic is not printed: a panic hook, installed once for the process, stays silent
/// while this thread is inside `decoding` and hands every other panic to the hook that was
/// there before (the default one, or a caller's). The hook is process-wide but the flag is per
/// thread, so this is thread safe: other threads' panics are reported as always. (A hook set
/// and restored around each call would not be: it would silence, or miss, other threads'
/// panics in between.) A program that later replaces the hook gets the panics printed again,
/// and the errors unchanged.
fn decoding<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !DECODING.with(|d| d.get()) {
                previous(info);
            }
        }));
    });
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            DECODING.with(|d| d.set(self.0));
        }
    }
    let _reset = Reset(DECODING.with(|d| d.replace(true)));
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        let text = p.downcast_ref::<&str>().copied().or_else(|| p.downcast_ref::<String>().map(String::as_str));
        quoted_upto(text.unwrap_or("no message").as_bytes(), QUOTED_MESSAGE)
    })
}

/// Why [`check_footer`] stopped: a footer that cannot be true (refuse the file), or something it
/// does not follow (leave the verdict to the parquet crate).
enum Walk {
    Refuse(String),
    Defer,
}

/// A Thrift value as the parquet crate reads it: its compact-protocol type, and the fields of a
/// struct. `Count` is an i32 by which the crate sizes an allocation (a schema node's children).
#[derive(Clone, Copy)]
enum T {
    Bool,
    Byte,
    I16,
    I32,
    Count,
    I64,
    Double,
    Bin,
    List(&'static T),
    S(&'static [(i16, T)]),
}

impl T {
    fn code(self) -> u8 {
        match self {
            T::Bool => 1,
            T::Byte => 3,
            T::I16 => 4,
            T::I32 | T::Count => 5,
            T::I64 => 6,
            T::Double => 7,
            T::Bin => 8,
            T::List(_) => 9,
            T::S(_) => 12,
        }
    }
}

/// The footer's structs (parquet.thrift), as far as the parquet crate decodes them.
const EMPTY: T = T::S(&[]);
const TIME: T = T::S(&[(1, T::Bool), (2, EMPTY)]);
#[rustfmt::skip]
const LOGICAL: &[(i16, T)] = &[
    (1, EMPTY), (2, EMPTY), (3, EMPTY), (4, EMPTY), (5, T::S(&[(1, T::I32), (2, T::I32)])), (6, EMPTY),
    (7, TIME), (8, TIME), (10, T::S(&[(1, T::Byte), (2, T::Bool)])), (11, EMPTY), (12, EMPTY), (13, EMPTY),
    (14, EMPTY), (15, EMPTY), (16, T::S(&[(1, T::Byte)])), (17, T::S(&[(1, T::Bin)])),
    (18, T::S(&[(1, T::Bin), (2, T::I32)])),
];
#[rustfmt::skip]
const SCHEMA: &[(i16, T)] = &[
    (1, T::I32), (2, T::I32), (3, T::I32), (4, T::Bin), (5, T::Count), (6, T::I32), (7, T::I32), (8, T::I32),
    (9, T::I32), (10, T::S(LOGICAL)),
];
const KEY_VALUE: T = T::S(&[(1, T::Bin), (2, T::Bin)]);
#[rustfmt::skip]
const STATISTICS: &[(i16, T)] =
    &[(1, T::Bin), (2, T::Bin), (3, T::I64), (4, T::I64), (5, T::Bin), (6, T::Bin), (7, T::Bool), (8, T::Bool)];
#[rustfmt::skip]
const BOX: &[(i16, T)] = &[
    (1, T::Double), (2, T::Double), (3, T::Double), (4, T::Double), (5, T::Double), (6, T::Double),
    (7, T::Double), (8, T::Double),
];
#[rustfmt::skip]
const COLUMN_META: &[(i16, T)] = &[
    (1, T::I32), (2, T::List(&T::I32)), (3, T::List(&T::Bin)), (4, T::I32), (5, T::I64), (6, T::I64),
    (7, T::I64), (8, T::List(&KEY_VALUE)), (9, T::I64), (10, T::I64), (11, T::I64), (12, T::S(STATISTICS)),
    (13, T::List(&T::S(&[(1, T::I32), (2, T::I32), (3, T::I32)]))), (14, T::I64), (15, T::I32),
    (16, T::S(&[(1, T::I64), (2, T::List(&T::I64)), (3, T::List(&T::I64))])),
    (17, T::S(&[(1, T::S(BOX)), (2, T::List(&T::I32))])),
];
#[rustfmt::skip]
const COLUMN_CHUNK: &[(i16, T)] = &[
    (1, T::Bin), (2, T::I64), (3, T::S(COLUMN_META)), (4, T::I64), (5, T::I32), (6, T::I64), (7, T::I32),
    (9, T::Bin),
];
#[rustfmt::skip]
const ROW_GROUP: &[(i16, T)] = &[
    (1, T::List(&T::S(COLUMN_CHUNK))), (2, T::I64), (3, T::I64),
    (4, T::List(&T::S(&[(1, T::I32), (2, T::Bool), (3, T::Bool)]))), (5, T::I64), (6, T::I64), (7, T::I16),
];
#[rustfmt::skip]
const FILE_META: &[(i16, T)] = &[
    (1, T::I32), (2, T::List(&T::S(SCHEMA))), (3, T::I64), (4, T::List(&T::S(ROW_GROUP))),
    (5, T::List(&KEY_VALUE)), (6, T::Bin), (7, T::List(&T::S(&[(1, EMPTY)]))), (9, T::Bin),
];

/// A walk over Thrift compact-protocol bytes that reads nothing but their shape, the way the
/// parquet crate reads them (fields it knows by the type it expects, others skipped by the type
/// they declare).
struct Thrift<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Thrift<'_> {
    fn byte(&mut self) -> Result<u8, Walk> {
        let b = *self.buf.get(self.pos).ok_or(Walk::Defer)?;
        self.pos += 1;
        Ok(b)
    }

    /// An unsigned LEB128 varint, wrapping as the parquet crate's does.
    fn varint(&mut self) -> Result<u64, Walk> {
        let (mut v, mut shift) = (0u64, 0u32);
        loop {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f).wrapping_shl(shift);
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift = shift.wrapping_add(7);
        }
    }

    /// A declared number of entries (truncated to the i32 the parquet crate takes it as), each of
    /// which takes at least one byte.
    fn count(&self, n: u64, what: &str) -> Result<usize, Walk> {
        let (n, left) = (n as u32 as i32, self.buf.len() - self.pos);
        if n < 0 || n as usize > left {
            return Err(Walk::Refuse(format!("its footer declares {what} of {n} in the {left} bytes left")));
        }
        Ok(n as usize)
    }

    /// One value of compact type `code`, expected to be `t` where the parquet crate knows it;
    /// `element`: a list entry (where a boolean takes a byte of its own).
    fn value(&mut self, code: u8, t: Option<T>, element: bool, depth: usize) -> Result<(), Walk> {
        if depth > 64 {
            return Err(Walk::Defer);
        }
        match code {
            1 | 2 if element => self.byte().map(drop),
            1 | 2 => Ok(()),
            3 => self.byte().map(drop),
            4 | 6 => self.varint().map(drop),
            5 => {
                let v = self.varint()?;
                if matches!(t, Some(T::Count)) {
                    let n = ((v >> 1) as i64 ^ -((v & 1) as i64)) as u64;
                    self.count(n, "a schema node with children")?;
                }
                Ok(())
            }
            7 if self.buf.len() - self.pos < 8 => Err(Walk::Defer),
            7 | 8 => {
                let n = if code == 7 { 8 } else { self.varint()? };
                let n = self.count(n, "a string of bytes")?;
                self.pos += n;
                Ok(())
            }
            9 | 10 => {
                let header = self.byte()?;
                let mut n = u64::from(header >> 4);
                if n == 15 {
                    n = self.varint()?;
                }
                let n = if header == 0 { 0 } else { self.count(n, "a list of entries")? };
                let elem = match t {
                    Some(T::List(e)) => Some(*e),
                    _ => None,
                };
                if let Some(e) = elem
                    && n > 0
                    && header & 0x0f != e.code()
                    && !(e.code() == 1 && header & 0x0f == 2)
                {
                    return Err(Walk::Refuse("its footer has a list of the wrong type".into()));
                }
                for _ in 0..n {
                    self.value(header & 0x0f, elem, true, depth + 1)?;
                }
                Ok(())
            }
            11 => {
                let n = self.varint()?;
                if n == 0 {
                    return Ok(());
                }
                let n = self.count(n, "a map of entries")?;
                let types = self.byte()?;
                for _ in 0..n {
                    self.value(types >> 4, None, true, depth + 1)?;
                    self.value(types & 0x0f, None, true, depth + 1)?;
                }
                Ok(())
            }
            12 => {
                let fields = match t {
                    Some(T::S(f)) => f,
                    _ => &[],
                };
                let mut last = 0i16;
                loop {
                    let header = self.byte()?;
                    let code = header & 0x0f;
                    if code == 0 {
                        return Ok(());
                    }
                    let id = match header >> 4 {
                        0 => {
                            let v = self.varint()?;
                            ((v >> 1) as i64 ^ -((v & 1) as i64)) as i16
                        }
                        delta => last.wrapping_add(i16::from(delta)),
                    };
                    last = id;
                    let known = fields.iter().find(|(i, _)| *i == id).map(|(_, t)| *t);
                    if let Some(k) = known
                        && code != k.code()
                        && !(k.code() == 1 && code == 2)
                    {
                        return Err(Walk::Refuse(format!("its footer has field {id} of a struct of the wrong type")));
                    }
                    self.value(code, known, false, depth + 1)?;
                }
            }
            _ => Err(Walk::Defer),
        }
    }
}

/// Walks the footer's Thrift before the parquet crate decodes it, refusing what would make the
/// crate size an allocation by a count the bytes cannot hold — a list of entries (each takes at
/// least a byte), a schema node's children — and fields of a type other than the crate reads
/// them as (it does not check, and would read them out of step). A list of a billion row groups
/// declared in a few bytes is an allocation of tens of GB, which aborts the process rather than
/// panicking. Anything else it does not follow (a short or non-Parquet file, an unknown type) is
/// left to the parquet crate.
fn check_footer(file: &[u8]) -> Result<(), String> {
    let n = file.len();
    if n < 12 || &file[n - 4..] != b"PAR1" {
        return Ok(());
    }
    let len = u32::from_le_bytes(file[n - 8..n - 4].try_into().expect("four bytes")) as usize;
    if len > n - 8 {
        return Ok(());
    }
    match (Thrift { buf: &file[n - 8 - len..n - 8], pos: 0 }).value(12, Some(T::S(FILE_META)), false, 0) {
        Err(Walk::Refuse(why)) => Err(why),
        Ok(()) | Err(Walk::Defer) => Ok(()),
    }
}

/// Refuses metadata whose column chunks lie outside the file — the decoder would assert on a
/// negative offset or size, or add a huge declared size to an offset and slice past the end —
/// and negative row or value counts, before any page is read.
fn check_layout(metadata: &parquet::file::metadata::ParquetMetaData, file_len: u64) -> Result<(), String> {
    let rows = metadata.file_metadata().num_rows();
    if rows < 0 {
        return Err(format!("the footer declares {rows} rows"));
    }
    for (g, group) in metadata.row_groups().iter().enumerate() {
        if group.num_rows() < 0 {
            return Err(format!("row group {g} declares {} rows", group.num_rows()));
        }
        for (c, col) in group.columns().iter().enumerate() {
            let start = col.dictionary_page_offset().unwrap_or(col.data_page_offset());
            let len = col.compressed_size();
            let inside =
                start >= 0 && len >= 0 && (start as u64).checked_add(len as u64).is_some_and(|end| end <= file_len);
            if !inside {
                return Err(format!(
                    "row group {g}, column {c}: its chunk (offset {start}, {len} bytes) is not inside the file of {file_len} bytes"
                ));
            }
            if col.num_values() < 0 {
                return Err(format!("row group {g}, column {c} declares {} values", col.num_values()));
            }
        }
    }
    Ok(())
}

/// A Parquet file's reader and its schema's top-level field names. A corrupt file is an
/// [`IngestError::Format`] naming it, also where the parquet crate's decoder would panic (see
/// [`decoding`]) or the footer describes column chunks outside the file (see [`check_layout`]).
fn open(path: &Path) -> Result<(SerializedFileReader<bytes::Bytes>, Vec<String>), IngestError> {
    let io = |source| IngestError::Io { path: path.into(), source };
    let bytes = std::fs::read(path).map_err(io)?;
    if bytes.is_empty() {
        return Err(IngestError::Empty { path: path.into() });
    }
    let file_len = bytes.len() as u64;
    check_footer(&bytes).map_err(|m| unreadable(path, m))?;
    let reader = decoding(|| SerializedFileReader::new(bytes::Bytes::from(bytes)))
        .map_err(|p| failed(path, "on the footer".into(), p))?
        .map_err(|e| format_error(path, e))?;
    check_layout(reader.metadata(), file_len).map_err(|m| unreadable(path, m))?;
    let names: Vec<String> = decoding(|| {
        reader
            .metadata()
            .file_metadata()
            .schema_descr()
            .root_schema()
            .get_fields()
            .iter()
            .map(|f| f.name().to_string())
            .collect()
    })
    .map_err(|p| failed(path, "on the schema".into(), p))?;
    Ok((reader, names))
}

fn unreadable(path: &Path, message: String) -> IngestError {
    IngestError::Format { path: path.into(), message: format!("not a readable Parquet file: {message}") }
}

fn format_error(path: &Path, e: parquet::errors::ParquetError) -> IngestError {
    unreadable(path, quoted_upto(e.to_string().as_bytes(), QUOTED_MESSAGE))
}

fn failed(path: &Path, at: String, panic: String) -> IngestError {
    unreadable(path, format!("the decoder failed {at} (corrupt data): {panic}"))
}

/// Calls `f(row, fields)` for every row of `rows` (numbered from `first + 1`), stopping at its
/// first error.
fn each_row<'a>(
    path: &Path,
    first: u64,
    rows: impl FnOnce() -> parquet::errors::Result<parquet::record::reader::RowIter<'a>>,
    f: &mut dyn FnMut(u64, &[&Field]) -> Result<(), IngestError>,
) -> Result<u64, IngestError> {
    let mut iter =
        decoding(rows).map_err(|p| failed(path, "opening the rows".into(), p))?.map_err(|e| format_error(path, e))?;
    let mut n = first;
    loop {
        let r = n + 1;
        let Some(row) = decoding(|| iter.next()).map_err(|p| failed(path, format!("at row {r}"), p))? else { break };
        let row = row.map_err(|e| format_error(path, e))?;
        n = r;
        let fields: Vec<&Field> = row.get_column_iter().map(|(_, f)| f).collect();
        f(r, &fields)?;
    }
    Ok(n - first)
}

/// Opens a Parquet file and calls `f(row, names, fields)` for every row (1-based), stopping at
/// its first error; first `f(0, names, &[])` with the schema's top-level field names (see
/// [`open`] for what a corrupt file gives). Returns the number of rows.
pub(crate) fn for_each_row(
    path: &Path,
    mut f: impl FnMut(u64, &[String], &[&Field]) -> Result<(), IngestError>,
) -> Result<u64, IngestError> {
    let (reader, names) = open(path)?;
    f(0, &names, &[])?;
    each_row(path, 0, || reader.get_row_iter(None), &mut |r, fields| f(r, &names, fields))
}

/// Maps every row of a Parquet file by `f(row, fields)` (rows 1-based), the row groups on all
/// cores; the results in row order. `header(names)` sees the schema's top-level field names
/// first and gives what `f` needs of them.
pub(crate) fn map_rows<H: Sync, R: Send>(
    path: &Path,
    header: impl FnOnce(&[String]) -> Result<H, IngestError>,
    f: impl Fn(&H, u64, &[&Field]) -> Result<R, IngestError> + Sync,
) -> Result<Vec<R>, IngestError> {
    use rayon::prelude::*;
    let (reader, names) = open(path)?;
    let h = header(&names)?;
    let groups = reader.metadata().row_groups();
    let mut first = Vec::with_capacity(groups.len());
    let mut total = 0u64;
    for g in groups {
        first.push(total);
        total += g.num_rows() as u64;
    }
    let parts: Vec<Result<Vec<R>, IngestError>> = (0..groups.len())
        .into_par_iter()
        .map(|g| {
            let group = decoding(|| reader.get_row_group(g))
                .map_err(|p| failed(path, format!("opening row group {g}"), p))?
                .map_err(|e| format_error(path, e))?;
            let mut out = Vec::with_capacity(groups[g].num_rows() as usize);
            each_row(path, first[g], || group.get_row_iter(None), &mut |r, fields| {
                out.push(f(&h, r, fields)?);
                Ok(())
            })?;
            Ok(out)
        })
        .collect();
    let mut out = Vec::with_capacity(total as usize);
    for part in parts {
        out.extend(part?);
    }
    Ok(out)
}

/// Reads a Parquet file of transactions (see [`for_each_row`] for what a corrupt file gives).
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
