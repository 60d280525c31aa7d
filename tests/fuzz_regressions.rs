//! What the fuzzer (`fuzz/`, see fuzz/README.md) found, as tests: each input that crashed a
//! target calls the same public function with the same bytes and asserts that it returns (an
//! error, or a value) without panicking. And a property test: any sequence of valid
//! transactions trains with the real pipeline (`kam train`), and the artifact reloads.

use crate::util::Sandbox;
use kam::ingest::{IngestError, OnBadRow, ReadOptions, read_transactions};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::path::{Path, PathBuf};

fn inputs(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_inputs").join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs in {}", dir.display());
    files
}

// ---- parquet: corrupted files (fuzz target `parquet`) ---------------------------------------
//
// tests/fuzz_inputs/parquet/: one input per way the parquet crate (57.3.2) failed on them before
// kam caught it at the ingest boundary: a panic in its footer decoder (`Option::unwrap()` in
// file/metadata/thrift/mod.rs, file/metadata/mod.rs and basic.rs), a negative column-chunk offset
// (an assertion in file/metadata/mod.rs), index out of bounds in encodings/rle.rs, an assertion
// in util/bit_util.rs, "Decoder for dict should have been set" in column/reader/decoder.rs,
// capacity overflow in a Vec, and two footers declaring lists of billions of entries, whose
// allocation (50 and 76 GB) aborted the process ("memory allocation of N bytes failed").

#[test]
fn corrupt_parquet_files_are_errors_naming_the_file_not_panics_or_aborts() {
    let dir = tempfile::tempdir().unwrap();
    for input in inputs("parquet") {
        // The reader picks Parquet by extension; a copy under a known name checks the message.
        let path = dir.path().join("corrupt.parquet");
        std::fs::copy(&input, &path).unwrap();
        for on_bad_row in [OnBadRow::Fail, OnBadRow::Skip] {
            let options = ReadOptions { on_bad_row, ..ReadOptions::default() };
            match read_transactions(&path, &options) {
                Err(e @ IngestError::Format { .. }) => {
                    let text = e.to_string();
                    assert!(text.contains("corrupt.parquet"), "{}: {text}", input.display());
                    assert!(text.contains("not a readable Parquet file"), "{}: {text}", input.display());
                    assert!(text.len() < 600, "{}: a long message: {text}", input.display());
                }
                other => panic!("{}: expected a format error, got {other:?}", input.display()),
            }
        }
    }
}

#[test]
fn kam_train_on_a_corrupt_parquet_file_fails_cleanly_without_printing_a_panic() {
    let s = Sandbox::new();
    for input in inputs("parquet") {
        std::fs::copy(&input, s.path().join("t.parquet")).unwrap();
        let run = s.kam(&["train", "t.parquet", "--models", "models"]);
        assert_eq!(run.code, 1, "{}: {}\n{}", input.display(), run.stdout, run.stderr);
        assert!(run.stderr.contains("t.parquet"), "{}: {}", input.display(), run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}: {}", input.display(), run.stderr);
        assert!(!s.path().join("models").exists(), "{}: models/ was written", input.display());
    }
}

/// Valid files in kam's other Parquet layouts (nullable columns and snappy, data page v2 with
/// strings, INT64 ids, YYYYMMDD integers, decimals, a margin column), written by the parquet
/// crate; the footer check must not refuse them.
#[test]
fn valid_parquet_files_of_every_layout_still_read() {
    for (name, rows) in [
        ("kam-small.parquet", 5),
        ("kam-300.parquet", 300),
        ("optional-timestamp-snappy.parquet", 24),
        ("strings-v2.parquet", 24),
        ("ints-decimal.parquet", 24),
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_inputs/parquet-valid").join(name);
        let options = ReadOptions { on_bad_row: OnBadRow::Skip, ..ReadOptions::default() };
        let got = read_transactions(&path, &options).unwrap_or_else(|e| panic!("{name}: {e}"));
        let read = got.transactions.len() as u64 + got.rows_skipped;
        assert_eq!(read, rows, "{name}: {} read, {} skipped", got.transactions.len(), got.rows_skipped);
        if name == "ints-decimal.parquet" {
            // Its INT64 margin column holds epoch microseconds (~1.7e15): every row decodes, and
            // is refused as beyond kam's ±1e11 per amount (issue 13, item 8).
            assert!(
                got.first_skipped.iter().all(|e| e.contains("\"margin\": beyond ±1e11")),
                "{:?}",
                got.first_skipped
            );
            continue;
        }
        assert!(!got.transactions.is_empty(), "{name}: every row skipped: {:?}", got.first_skipped);
    }
}

/// A DATE out of chrono's range: kam's bad-row message formatted it with the parquet crate's
/// `Display`, which panicked ("No such local time").
#[test]
fn a_parquet_date_out_of_range_is_a_bad_row_not_a_panic() {
    use kam::domain::transactions::Transactions;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("far.parquet");
    let tx = Transactions {
        customer_ids: vec!["a".into()],
        customer: vec![0, 0],
        day: vec![19_800, i32::MAX],
        amount: vec![5.0, 6.0],
        margin: None,
    };
    kam::ingest::parquet::write(&path, &tx).unwrap();
    let e = read_transactions(&path, &ReadOptions::default()).unwrap_err();
    assert!(matches!(e, IngestError::BadValue { row: 2, .. }), "{e:?}");
    assert!(e.to_string().contains("year out of range"), "{e}");
    let got = read_transactions(&path, &ReadOptions { on_bad_row: OnBadRow::Skip, ..ReadOptions::default() }).unwrap();
    assert_eq!((got.transactions.len(), got.rows_skipped), (1, 1));
}

/// Random valid transactions as CSV text: up to `customers` ids, dates over `span` days from
/// 2021-01-01, amounts within ±5,000 (about one in ten a return). Returns the text and the rows.
fn random_transactions(rng: &mut Xoshiro256PlusPlus, customers: usize, rows: usize, span: i64) -> String {
    let start = chrono::NaiveDate::from_ymd_opt(2021, 1, 1).unwrap();
    let mut csv = String::from("customer_id,date,amount\n");
    for _ in 0..rows {
        let c = rng.random_range(0..customers);
        let day = start + chrono::Duration::days(rng.random_range(0..span));
        let magnitude =
            if rng.random_bool(0.05) { rng.random_range(0.01..5000.0) } else { rng.random_range(1.0..300.0) };
        let amount: f64 = if rng.random_bool(0.1) { -magnitude } else { magnitude };
        csv.push_str(&format!("C{c:04},{day},{amount:.2}\n"));
    }
    csv
}

/// Any sequence of valid transactions trains with the real pipeline (`kam train`, as the other
/// tests run it) and the stored artifact reloads (`ModelStore::load`, and `kam models list` shows
/// it loadable and active). A history too short to train on may be refused, but only with an
/// error (exit 1, no panic, nothing stored); one of at least 20 customers over at least 400 days
/// must train.
#[test]
fn any_sequence_of_valid_transactions_trains_and_its_artifact_reloads() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(13);
    let mut trained = 0;
    for case in 0..10 {
        let rich = case % 2 == 0;
        let (customers, rows, span) = if rich {
            (rng.random_range(20..=150), rng.random_range(200..=2000), rng.random_range(400..=1100))
        } else {
            (rng.random_range(1..=20), rng.random_range(1..=200), rng.random_range(1..=1100))
        };
        let csv = random_transactions(&mut rng, customers, rows, span);
        let what = format!("case {case}: {customers} customers, {rows} rows over {span} days");
        let s = Sandbox::new();
        s.file("t.csv", &csv);
        let run = s.kam(&["train", "t.csv", "--models", "models", "--json"]);
        assert!(!run.stderr.contains("panicked"), "{what}: {}", run.stderr);
        if run.code != 0 {
            assert!(!rich, "{what} did not train:\n{}\n{}", run.stdout, run.stderr);
            assert_eq!(run.code, 1, "{what}: {}", run.stderr);
            assert!(s.models_snapshot().keys().all(|f| !f.ends_with(".json")), "{what}: refused, yet stored a model");
            continue;
        }
        trained += 1;
        let out: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        let id = out["model_id"].as_str().expect("a model id").to_string();
        kam::store::ModelStore::new(s.path().join("models"))
            .load(&id)
            .unwrap_or_else(|e| panic!("{what}: the stored artifact does not reload: {e}"));
        let list: serde_json::Value = serde_json::from_str(&s.ok(&["models", "list", "--json"]).stdout).unwrap();
        let listed = list.as_array().unwrap().iter().find(|m| m["id"] == id.as_str()).expect("listed");
        assert!(listed["problem"].is_null(), "{what}: kam models list: {listed}");
        assert_eq!(listed["active"], true, "{what}: {listed}");
    }
    assert!(trained >= 5, "only {trained} of 10 cases trained");
}

// ---- the API (fuzz targets `predict_body`, `forecast_body`, `train_body`) -------------------

/// The real router over a temporary copy of the repository's default model (`models/`), with no
/// keys (read routes open).
fn default_router() -> (tempfile::TempDir, axum::Router) {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    for e in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("models")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "CURRENT" || name.ends_with(".json") {
            std::fs::copy(e.path(), models.join(&name)).unwrap();
        }
    }
    let state =
        kam::http::AppState::new(kam::store::ModelStore::new(&models), kam::http::ApiKeys::none(), Default::default());
    state.load_current().unwrap().expect("the default model");
    (dir, kam::http::router(state))
}

async fn post_json(app: &axum::Router, uri: &str, body: &[u8]) -> (axum::http::StatusCode, serde_json::Value) {
    use tower::ServiceExt;
    let req = axum::http::Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_vec()))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

/// Found by `forecast_body`: `inflow` of 2.2e20 new customers a period. The realized counts are
/// u64s: `inflow.round() as u64` saturates and the arrivals added each period overflow. With
/// debug assertions: "attempt to add with overflow" at src/domain/forecast/draws.rs:92 (in
/// `multinomial`, from `ForecastBands::population`, intervals.rs:253, via
/// `ForecastResponse::new`, app/views.rs:235, from the handler, http/forecast.rs:94). In a
/// release build: "assertion failed: x < (i64::MAX as f64)" in rand_distr's binomial.rs:174
/// (`Binomial::sample` on a count near u64::MAX, from `multinomial`), caught as a 500. Either
/// refuse such an inflow (422) or give realized counts near the expected sizes (at these sizes
/// the multinomial draws are within a hair of the mean).
#[tokio::test]
async fn a_huge_inflow_is_refused_or_counted_without_overflow() {
    let (_dir, app) = default_router();
    let bodies: [&[u8]; 2] = [
        // As found.
        br#"{"horizon": 22, "mix": {"key": 120, "core": 299, "new": 24, "lapsed": 2 }, "inflow": 218446744073709551615}"#,
        // Minimized (`cargo fuzz tmin`): 2.2e18 a period passes u64::MAX within 22 periods.
        br#"{"horizon": 22,  "inflow": 2184674407709551615}"#,
    ];
    for body in bodies {
        let (status, v) = post_json(&app, "/v1/forecast", body).await;
        let body = String::from_utf8_lossy(body);
        if status == axum::http::StatusCode::UNPROCESSABLE_ENTITY {
            continue;
        }
        assert_eq!(status, axum::http::StatusCode::OK, "{body}: {v}");
        for h in v["horizons"].as_array().unwrap() {
            for (state, size) in h["sizes"].as_object().unwrap() {
                let size = size.as_f64().unwrap();
                if size < 1e12 {
                    continue;
                }
                let lo = h["realized_lo"][state].as_f64().unwrap();
                let hi = h["realized_hi"][state].as_f64().unwrap();
                assert!(
                    lo >= 0.5 * size && hi <= 2.0 * size,
                    "{body}: horizon {}, {state}: expected {size:e}, realized {lo:e}..{hi:e}",
                    h["h"]
                );
            }
        }
    }
}
