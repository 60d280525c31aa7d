//! Delimited text: any one-byte delimiter with CSV quoting, or runs of whitespace.

use super::fields::{parse_amount, parse_date, parse_money};
use super::{Builder, Columns, Delimiter, HeaderMode, IngestError, Ingested, ReadOptions};
use rayon::prelude::*;
use std::path::Path;

/// Reads a delimited text file of transactions.
pub fn read(path: &Path, options: &ReadOptions) -> Result<Ingested, IngestError> {
    let bytes = std::fs::read(path).map_err(|source| IngestError::Io { path: path.into(), source })?;
    Ok(parse(path, &bytes, options)?.finish(path))
}

/// The delimiter a file's first line suggests.
pub fn detect_delimiter(first_line: &[u8]) -> Delimiter {
    let candidates = [b',', b'\t', b';', b'|'];
    let best = candidates
        .iter()
        .map(|&d| (first_line.iter().filter(|&&b| b == d).count(), d))
        .max_by_key(|(n, _)| *n)
        .unwrap();
    if best.0 > 0 { Delimiter::Byte(best.1) } else { Delimiter::Whitespace }
}

fn looks_like_header(fields: &[&[u8]]) -> bool {
    !fields.iter().any(|f| parse_amount(f).is_ok())
}

/// The fields of one row.
trait Fields {
    fn count(&self) -> usize;
    fn field(&self, i: usize) -> &[u8];
}

impl Fields for [&[u8]] {
    fn count(&self) -> usize {
        self.len()
    }
    fn field(&self, i: usize) -> &[u8] {
        self[i]
    }
}

impl Fields for csv::ByteRecord {
    fn count(&self) -> usize {
        self.len()
    }
    fn field(&self, i: usize) -> &[u8] {
        &self[i]
    }
}

/// One data row: checks and converts it.
#[inline]
fn row<F: Fields + ?Sized>(
    path: &Path,
    cols: &Columns,
    header: Option<&[String]>,
    line: u64,
    fields: &F,
    out: &mut Builder,
    policy: super::OnBadRow,
) -> Result<(), IngestError> {
    let bad = |index: usize, value: &[u8], problem: &str| IngestError::BadField {
        path: path.into(),
        line,
        column: Columns::label(index, header),
        value: super::quoted_prefix(value),
        problem: problem.into(),
    };
    let result = (|| {
        if fields.count() < cols.needed() {
            return Err(IngestError::TooFewFields {
                path: path.into(),
                line,
                expected: cols.needed(),
                found: fields.count(),
            });
        }
        let id = fields.field(cols.customer).trim_ascii();
        if id.is_empty() {
            return Err(bad(cols.customer, id, "empty customer id"));
        }
        if std::str::from_utf8(id).is_err() {
            return Err(bad(cols.customer, id, "customer id is not valid UTF-8"));
        }
        let f = fields.field(cols.date);
        let day = parse_date(f).map_err(|p| bad(cols.date, f, p))?;
        let f = fields.field(cols.amount);
        let amount = parse_money(f).map_err(|p| bad(cols.amount, f, p))?;
        let margin = match cols.margin {
            Some(m) => {
                let f = fields.field(m);
                Some(parse_money(f).map_err(|p| bad(m, f, p))?)
            }
            None => None,
        };
        Ok((id, day, amount, margin))
    })();
    match result {
        Ok((id, day, amount, margin)) => {
            out.push(id, day, amount, margin);
            Ok(())
        }
        Err(e) => out.bad_row(e, policy),
    }
}

struct Layout {
    cols: Columns,
    header: Option<Vec<String>>,
}

fn layout(path: &Path, options: &ReadOptions, first: &[&[u8]]) -> Result<Layout, IngestError> {
    let has_header = match options.header {
        HeaderMode::Yes => true,
        HeaderMode::No => false,
        HeaderMode::Auto => looks_like_header(first),
    };
    let header: Option<Vec<String>> =
        has_header.then(|| first.iter().map(|f| String::from_utf8_lossy(f.trim_ascii()).into_owned()).collect());
    let cols = Columns::resolve(path, options, header.as_deref())?;
    Ok(Layout { cols, header })
}

fn parse(path: &Path, bytes: &[u8], options: &ReadOptions) -> Result<Builder, IngestError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(IngestError::Empty { path: path.into() });
    }
    let delimiter = match options.delimiter {
        Delimiter::Auto => {
            let first = bytes.split(|&b| b == b'\n').find(|l| !l.trim_ascii().is_empty()).unwrap_or(bytes);
            detect_delimiter(first)
        }
        d => d,
    };
    match delimiter {
        // Quoted fields may hold delimiters and newlines: the csv crate reads those.
        Delimiter::Byte(d) if memchr::memchr(b'"', bytes).is_some() => parse_delimited(path, bytes, d, options),
        Delimiter::Byte(d) => parse_simple(path, bytes, Some(d), options),
        Delimiter::Whitespace => parse_simple(path, bytes, None, options),
        Delimiter::Auto => unreachable!(),
    }
}

/// Splits a line into fields: at `delimiter`, or at runs of whitespace when `None`.
#[inline]
fn split_fields<'a>(line: &'a [u8], delimiter: Option<u8>, out: &mut Vec<&'a [u8]>) {
    out.clear();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match delimiter {
        Some(d) => {
            if line.iter().all(u8::is_ascii_whitespace) {
                return;
            }
            out.extend(line.split(|&b| b == d));
        }
        None => out.extend(line.split(|b| b.is_ascii_whitespace()).filter(|f| !f.is_empty())),
    }
}

/// Rows of unquoted text, parsed in parallel chunks cut at line ends; customers are numbered in
/// the order of their ids' bytes whatever the number of threads ([`join_chunks`]).
fn parse_simple(
    path: &Path,
    bytes: &[u8],
    delimiter: Option<u8>,
    options: &ReadOptions,
) -> Result<Builder, IngestError> {
    // The first non-empty line: header or first row.
    let mut fields: Vec<&[u8]> = Vec::with_capacity(8);
    let mut pos = 0;
    let mut line_no = 0u64;
    let lay = loop {
        let end = memchr::memchr(b'\n', &bytes[pos..]).map_or(bytes.len(), |i| pos + i);
        line_no += 1;
        split_fields(&bytes[pos..end], delimiter, &mut fields);
        if !fields.is_empty() {
            let l = layout(path, options, &fields)?;
            if l.header.is_some() {
                pos = (end + 1).min(bytes.len());
            } else {
                line_no -= 1;
            }
            break l;
        }
        pos = (end + 1).min(bytes.len());
    };
    let data = &bytes[pos..];
    let chunks = if data.len() < (1 << 20) { 1 } else { rayon::current_num_threads().min(8) };
    // Cut points at line ends.
    let mut cuts = vec![0];
    for k in 1..chunks {
        let target = data.len() * k / chunks;
        let cut = memchr::memchr(b'\n', &data[target..]).map_or(data.len(), |i| target + i + 1);
        if cut > *cuts.last().unwrap() && cut < data.len() {
            cuts.push(cut);
        }
    }
    cuts.push(data.len());
    let first_lines: Vec<u64> = {
        let mut v = Vec::with_capacity(cuts.len());
        let mut n = line_no;
        for w in cuts.windows(2) {
            v.push(n);
            n += memchr::memchr_iter(b'\n', &data[w[0]..w[1]]).count() as u64;
        }
        v
    };
    let lay = &lay;
    let results: Vec<Result<(Builder, u64), IngestError>> = cuts
        .par_windows(2)
        .zip(&first_lines)
        .map(|(w, &first)| parse_chunk(path, &data[w[0]..w[1]], first, delimiter, lay, options))
        .collect();
    let mut chunks = Vec::with_capacity(results.len());
    let mut rows = 0;
    for r in results {
        let (b, n) = r?;
        rows += n;
        chunks.push(b);
    }
    if rows == 0 {
        return Err(IngestError::NoDataRows { path: path.into() });
    }
    Ok(join_chunks(chunks))
}

/// Joins the builders of consecutive chunks of one file, rows in order, customers numbered by
/// their ids' bytes: each chunk's ids are sorted on its own core, then merged — no id is hashed
/// again. The result takes no more rows (its id table is empty): it is to be finished.
fn join_chunks(mut chunks: Vec<Builder>) -> Builder {
    let orders: Vec<Vec<u32>> = chunks
        .par_iter()
        .map(|b| {
            let ids = &b.tx.customer_ids;
            let mut order: Vec<u32> = (0..ids.len() as u32).collect();
            order.sort_unstable_by(|&x, &y| ids[x as usize].as_bytes().cmp(ids[y as usize].as_bytes()));
            order
        })
        .collect();
    let k = chunks.len();
    let mut chunk_ids: Vec<Vec<String>> = chunks.iter_mut().map(|b| std::mem::take(&mut b.tx.customer_ids)).collect();
    let mut maps: Vec<Vec<u32>> = chunk_ids.iter().map(|ids| vec![0; ids.len()]).collect();
    let mut pos = vec![0usize; k];
    let mut ids: Vec<String> = Vec::with_capacity(chunk_ids.iter().map(Vec::len).max().unwrap_or(0));
    loop {
        // The smallest id not yet numbered (a few chunks: a linear scan), and every chunk's
        // occurrence of it.
        let mut best: Option<(usize, &[u8])> = None;
        for j in 0..k {
            if let Some(&l) = orders[j].get(pos[j]) {
                let id = chunk_ids[j][l as usize].as_bytes();
                if best.is_none_or(|(_, b)| id < b) {
                    best = Some((j, id));
                }
            }
        }
        let Some((b, best_id)) = best else { break };
        let g = ids.len() as u32;
        let local_b = orders[b][pos[b]] as usize;
        for j in 0..k {
            if let Some(&l) = orders[j].get(pos[j])
                && chunk_ids[j][l as usize].as_bytes() == best_id
            {
                maps[j][l as usize] = g;
                pos[j] += 1;
            }
        }
        ids.push(std::mem::take(&mut chunk_ids[b][local_b]));
    }
    let mut out = Builder::new(chunks.first().is_some_and(|b| b.tx.margin.is_some()));
    out.tx.customer_ids = ids;
    for (j, b) in chunks.into_iter().enumerate() {
        out.tx.customer.extend(b.tx.customer.iter().map(|&c| maps[j][c as usize]));
        out.tx.day.extend_from_slice(&b.tx.day);
        out.tx.amount.extend_from_slice(&b.tx.amount);
        if let (Some(a), Some(m)) = (&mut out.tx.margin, &b.tx.margin) {
            a.extend_from_slice(m);
        }
        out.skipped += b.skipped;
        for e in b.first_skipped {
            if out.first_skipped.len() < super::SKIPPED_SHOWN {
                out.first_skipped.push(e);
            }
        }
    }
    out
}

/// Parses one chunk of whole lines; `line_before` is the number of the line before it.
fn parse_chunk(
    path: &Path,
    chunk: &[u8],
    line_before: u64,
    delimiter: Option<u8>,
    lay: &Layout,
    options: &ReadOptions,
) -> Result<(Builder, u64), IngestError> {
    let mut out = Builder::new(lay.cols.margin.is_some());
    let mut fields: Vec<&[u8]> = Vec::with_capacity(8);
    let mut rows = 0u64;
    let mut line = line_before;
    for text in chunk.split(|&b| b == b'\n') {
        line += 1;
        split_fields(text, delimiter, &mut fields);
        if fields.is_empty() {
            continue;
        }
        rows += 1;
        row(path, &lay.cols, lay.header.as_deref(), line, fields.as_slice(), &mut out, options.on_bad_row)?;
    }
    Ok((out, rows))
}

fn parse_delimited(path: &Path, bytes: &[u8], delimiter: u8, options: &ReadOptions) -> Result<Builder, IngestError> {
    let mut reader =
        csv::ReaderBuilder::new().delimiter(delimiter).has_headers(false).flexible(true).from_reader(bytes);
    let mut record = csv::ByteRecord::new();
    let mut out: Option<Builder> = None;
    let mut lay: Option<Layout> = None;
    let mut data_rows = 0u64;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return Err(IngestError::Format { path: path.into(), message: format!("line {line}: {e}") });
            }
        }
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(|f| f.trim_ascii().is_empty()) {
            continue;
        }
        if lay.is_none() {
            let fields: Vec<&[u8]> = record.iter().collect();
            let l = layout(path, options, &fields)?;
            out = Some(Builder::new(l.cols.margin.is_some()));
            let is_header = l.header.is_some();
            lay = Some(l);
            if is_header {
                continue;
            }
        }
        let l = lay.as_ref().unwrap();
        data_rows += 1;
        row(path, &l.cols, l.header.as_deref(), line, &record, out.as_mut().unwrap(), options.on_bad_row)?;
    }
    if data_rows == 0 {
        return Err(IngestError::NoDataRows { path: path.into() });
    }
    Ok(out.unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{ColumnRef, OnBadRow};
    use std::path::PathBuf;

    fn p() -> PathBuf {
        PathBuf::from("t.csv")
    }

    #[test]
    fn cdnow_layout_loads_with_an_amount_position() {
        let text = b"00001 19970101  1  11.77\n00002  19970112  1  12.00\n00001 19970113 2 5.5\n";
        let o = ReadOptions { amount: Some(ColumnRef::Position(4)), ..Default::default() };
        let b = parse(&p(), text, &o).unwrap();
        assert_eq!(b.tx.customer_ids, ["00001", "00002"]);
        assert_eq!(b.tx.customer, [0, 1, 0]);
        assert_eq!(b.tx.amount, [11.77, 12.0, 5.5]);
    }

    #[test]
    fn a_header_is_detected_and_columns_found_by_name_in_any_order() {
        let text = b"Amount;Date;Customer_ID\n3.5;2024-01-02;x\n\"4\";2024-01-03;\"y\"\n";
        let b = parse(&p(), text, &ReadOptions::default()).unwrap();
        assert_eq!(b.tx.customer_ids, ["x", "y"]);
        assert_eq!(b.tx.amount, [3.5, 4.0]);
    }

    #[test]
    fn a_bad_amount_names_line_column_and_value() {
        let text = b"customer_id,date,amount\na,2024-01-02,1\nb,2024-01-02,abc\n";
        let e = parse(&p(), text, &ReadOptions::default()).err().unwrap().to_string();
        assert_eq!(e, "t.csv: line 3, column \"amount\": not a number: \"abc\"");
    }

    #[test]
    fn skip_mode_counts_bad_rows_and_keeps_the_good() {
        let text =
            b"customer_id,date,amount\na,2024-01-02,1\nb,2024-13-02,1\n,2024-01-02,1\nc,2024-01-02\nd,2024-01-05,2\n";
        let o = ReadOptions { on_bad_row: OnBadRow::Skip, ..Default::default() };
        let b = parse(&p(), text, &o).unwrap();
        assert_eq!(b.tx.customer_ids, ["a", "d"]);
        assert_eq!(b.skipped, 3);
        assert!(b.first_skipped[0].contains("line 3"), "{:?}", b.first_skipped);
        assert!(b.first_skipped[1].contains("empty customer id"));
        assert!(b.first_skipped[2].contains("expected at least 3 fields, found 2"));
    }

    #[test]
    fn parallel_chunks_give_the_same_rows_as_one_pass() {
        // ~3 MB of rows, customers reappearing across chunk boundaries.
        let mut text = String::from("customer_id,date,amount\n");
        for i in 0..120_000u32 {
            text.push_str(&format!("c{},2024-{:02}-{:02},{}.5\n", (i * 7919) % 5003, i % 12 + 1, i % 28 + 1, i % 100));
        }
        let simple = parse(&p(), text.as_bytes(), &ReadOptions::default()).unwrap();
        // A quoted header sends the same rows through the csv crate in one pass.
        let quoted = text.replacen("customer_id", "\"customer_id\"", 1);
        let csv = parse(&p(), quoted.as_bytes(), &ReadOptions::default()).unwrap();
        // The chunks' join numbers customers by id bytes already; finished, both paths agree.
        assert!(simple.tx.customer_ids.is_sorted_by(|a, b| a.as_bytes() < b.as_bytes()));
        let (simple, csv) = (simple.finish(&p()).transactions, csv.finish(&p()).transactions);
        assert_eq!(simple, csv);
        assert_eq!(simple.len(), 120_000);
        // An error in a later chunk still names its true line.
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        lines[100_000] = "x,2024-02-30,1".into();
        let bad = lines.join("\n");
        let e = parse(&p(), bad.as_bytes(), &ReadOptions::default()).err().unwrap().to_string();
        assert!(e.contains("line 100001, column \"date\""), "{e}");
    }

    #[test]
    fn delimiters_are_detected_from_the_first_line() {
        assert_eq!(detect_delimiter(b"a\tb\tc"), Delimiter::Byte(b'\t'));
        assert_eq!(detect_delimiter(b"a|b|c"), Delimiter::Byte(b'|'));
        assert_eq!(detect_delimiter(b"a  b c"), Delimiter::Whitespace);
    }
}
