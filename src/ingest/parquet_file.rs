//! Opening a Parquet file safely and walking its rows: the footer is checked before the parquet
//! crate decodes it, the decoder's panics on corrupt data become errors naming the file, and
//! rows are handed out one by one ([`for_each_row`]); files are read in place by position
//! ([`PartFile`]). `super::parquet_columns` decodes a row group by columns.
//! Used by the transactions reader ([`super::parquet`]) and the activity-table reader
//! ([`super::activity`]).

use super::IngestError;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use std::path::Path;

/// Longest part of a decoder's message that an error quotes, in bytes.
const QUOTED_MESSAGE: usize = 200;

/// A short, escaped prefix of `bytes` (at most `max` bytes of it) for an error message, with the
/// full length when cut.
pub(crate) fn quoted_upto(bytes: &[u8], max: usize) -> String {
    let text: String = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).escape_debug().collect();
    if bytes.len() > max { format!("{text}… ({} bytes)", bytes.len()) } else { text }
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
pub(crate) fn decoding<T>(f: impl FnOnce() -> T) -> Result<T, String> {
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
/// left to the parquet crate. `file` is the file's end: at least its footer and the 8 bytes
/// after it (footer length, `PAR1`).
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

/// A Parquet file read in place, by position (`pread`): row groups can be decoded on several
/// threads at once (the parquet crate's `File` reader shares one file offset between its
/// clones), and only the parts being decoded are in memory, never the whole file.
pub(crate) struct PartFile {
    file: std::fs::File,
    len: u64,
}

/// A [`Read`](std::io::Read) from a [`PartFile`] at its own offset (a duplicated descriptor,
/// read by position: the shared file offset is never used).
pub(crate) struct PartRead {
    file: std::fs::File,
    at: u64,
    end: u64,
}

impl std::io::Read for PartRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let want = buf.len().min((self.end - self.at) as usize);
        let n = self.file.read_at(&mut buf[..want], self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

impl parquet::file::reader::Length for PartFile {
    fn len(&self) -> u64 {
        self.len
    }
}

impl parquet::file::reader::ChunkReader for PartFile {
    type T = std::io::BufReader<PartRead>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        let file = self.file.try_clone()?;
        Ok(std::io::BufReader::new(PartRead { file, at: start.min(self.len), end: self.len }))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        use std::os::unix::fs::FileExt;
        let fits = start.checked_add(length as u64).is_some_and(|end| end <= self.len);
        if !fits {
            return Err(parquet::errors::ParquetError::EOF(format!(
                "{length} bytes at offset {start} are past the end of the file ({} bytes)",
                self.len
            )));
        }
        let mut buf = vec![0; length];
        self.file.read_exact_at(&mut buf, start)?;
        Ok(buf.into())
    }
}

/// A Parquet file's reader and its schema's top-level field names. A corrupt file is an
/// [`IngestError::Format`] naming it, also where the parquet crate's decoder would panic (see
/// [`decoding`]) or the footer describes column chunks outside the file (see [`check_layout`]).
pub(crate) fn open(path: &Path) -> Result<(SerializedFileReader<PartFile>, Vec<String>), IngestError> {
    use std::os::unix::fs::FileExt;
    let io = |source| IngestError::Io { path: path.into(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    if file_len == 0 {
        return Err(IngestError::Empty { path: path.into() });
    }
    // The footer and the 8 bytes after it, for check_footer (which reads only those).
    let mut tail = vec![0; file_len.min(8) as usize];
    let at = file_len - tail.len() as u64;
    file.read_exact_at(&mut tail, at).map_err(io)?;
    if tail.len() == 8 && &tail[4..] == b"PAR1" {
        let footer = u64::from(u32::from_le_bytes(tail[..4].try_into().expect("four bytes")));
        if footer <= file_len - 8 {
            tail = vec![0; footer as usize + 8];
            file.read_exact_at(&mut tail, file_len - footer - 8).map_err(io)?;
        }
    }
    check_footer(&tail).map_err(|m| unreadable(path, m))?;
    let reader = decoding(|| SerializedFileReader::new(PartFile { file, len: file_len }))
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

pub(crate) fn unreadable(path: &Path, message: String) -> IngestError {
    IngestError::Format { path: path.into(), message: format!("not a readable Parquet file: {message}") }
}

pub(crate) fn format_error(path: &Path, e: parquet::errors::ParquetError) -> IngestError {
    unreadable(path, quoted_upto(e.to_string().as_bytes(), QUOTED_MESSAGE))
}

pub(crate) fn failed(path: &Path, at: String, panic: String) -> IngestError {
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
