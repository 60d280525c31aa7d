//! The Parquet reader (`kam::ingest::read_transactions` on a `.parquet` file, which is
//! `kam::ingest::parquet::read`), skipping bad rows so that every row is decoded.
//! An `Err` is fine; a panic escaping kam is a crash.
//!
//! `KAM_FUZZ_PARQUET_SEEDS=<dir>` writes the corpus seeds (files written by
//! `kam::ingest::parquet::write` and by the parquet crate in kam's other layouts) into `dir` at
//! start-up; run it once with `-runs=0` (see fuzz/README.md).
#![no_main]

use kam::ingest::{OnBadRow, ReadOptions};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static SCRATCH: LazyLock<std::path::PathBuf> = LazyLock::new(|| {
    if let Some(dir) = std::env::var_os("KAM_FUZZ_PARQUET_SEEDS") {
        kam_fuzz::write_parquet_seeds(std::path::Path::new(&dir));
    }
    kam_fuzz::scratch_dir("parquet")
});

fuzz_target!(
    init: {
        LazyLock::force(&SCRATCH);
    },
    |data: &[u8]| {
        let options = ReadOptions { on_bad_row: OnBadRow::Skip, ..ReadOptions::default() };
        kam_fuzz::with_file(&SCRATCH, "input.parquet", data, |path| {
            let _ = kam::ingest::read_transactions(path, &options);
        });
    }
);
