//! `kam::ingest::read_transactions` on a text file: the first byte picks the options
//! (delimiter, header mode, bad-row policy, columns by name), the rest is the file.
//! An `Err` is fine; a panic is a crash.
#![no_main]

use kam::ingest::{ColumnRef, Delimiter, HeaderMode, OnBadRow, ReadOptions};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static SCRATCH: LazyLock<std::path::PathBuf> = LazyLock::new(|| kam_fuzz::scratch_dir("csv"));

/// The options a first byte stands for.
pub fn options(b: u8) -> ReadOptions {
    let delimiter = match b & 7 {
        0 | 1 => Delimiter::Auto,
        2 | 3 => Delimiter::Whitespace,
        4 => Delimiter::Byte(b','),
        5 => Delimiter::Byte(b';'),
        6 => Delimiter::Byte(b'\t'),
        _ => Delimiter::Byte(b'|'),
    };
    let header = match (b >> 3) & 3 {
        0 | 3 => HeaderMode::Auto,
        1 => HeaderMode::Yes,
        _ => HeaderMode::No,
    };
    let on_bad_row = if b & 0x20 != 0 { OnBadRow::Skip } else { OnBadRow::Fail };
    let named = b & 0x40 != 0;
    let by_name = |n: &str| named.then(|| ColumnRef::Name(n.into()));
    ReadOptions {
        delimiter,
        header,
        customer: by_name("customer_id"),
        date: by_name("date"),
        amount: by_name("amount"),
        margin: if b & 0x80 != 0 { Some(ColumnRef::Position(4)) } else { None },
        on_bad_row,
        ..ReadOptions::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, file)) = data.split_first() else { return };
    let options = options(first);
    kam_fuzz::with_file(&SCRATCH, "input.csv", file, |path| {
        let _ = kam::ingest::read_transactions(path, &options);
    });
});
