//! Helpers shared by kam's fuzz targets: scratch files, a router over a temporary copy of the
//! repository's models, and the corpus seeds that need code to write (Parquet files).
//!
//! Everything here calls kam's real public functions; nothing is stubbed.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tower::ServiceExt;

/// The kam repository (the parent of this fuzz crate).
pub fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Directories made by this process, removed at exit (libFuzzer ends with `exit`, so statics
/// are never dropped; `atexit` runs).
static TO_REMOVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

unsafe extern "C" {
    fn atexit(cb: extern "C" fn()) -> i32;
}

extern "C" fn remove_scratch() {
    if let Ok(dirs) = TO_REMOVE.lock() {
        for d in dirs.iter() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A fresh directory `/tmp/kam-fuzz-<name>-<pid>`, removed when the process exits.
pub fn scratch_dir(name: &str) -> PathBuf {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| unsafe {
        atexit(remove_scratch);
    });
    // libFuzzer's -fork and -merge children end without `atexit`: remove what dead processes
    // left.
    let prefix = format!("kam-fuzz-{name}-");
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for e in entries.flatten() {
            let file_name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = file_name.strip_prefix(&prefix).and_then(|p| p.parse::<u32>().ok())
                && !Path::new(&format!("/proc/{pid}")).exists()
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = std::env::temp_dir().join(format!("{prefix}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    TO_REMOVE.lock().unwrap().push(dir.clone());
    dir
}

/// Writes `bytes` to `<scratch>/<file_name>`, runs `f` on the path, and removes the file.
pub fn with_file<T>(scratch: &Path, file_name: &str, bytes: &[u8], f: impl FnOnce(&Path) -> T) -> T {
    let path = scratch.join(file_name);
    std::fs::write(&path, bytes).expect("write the scratch file");
    let out = f(&path);
    let _ = std::fs::remove_file(&path);
    out
}

/// Copies the repository's stored models (the artifacts and `CURRENT`; not the customer
/// snapshots, which the request bodies fuzzed here do not use) into `dst`.
pub fn copy_models(dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(repo().join("models")).expect("the repository's models/") {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "CURRENT" || (name.ends_with(".json") && !name.starts_with('.')) {
            std::fs::copy(e.path(), dst.join(&name)).unwrap();
        }
    }
}

/// The real router over an `AppState`, and a current-thread runtime to drive it in-process.
pub struct Api {
    pub runtime: tokio::runtime::Runtime,
    pub router: Router,
    pub state: kam::http::AppState,
    pub dir: PathBuf,
}

/// The admin key of [`Api::with_keys`].
pub const ADMIN_KEY: &str = "fuzz-admin-key-0123456789";

impl Api {
    /// The repository's default model (a temporary copy of `models/`) served without keys.
    pub fn open(name: &str) -> Self {
        Self::build(name, kam::http::ApiKeys::none(), kam::http::Limits::default())
    }

    /// The same with [`ADMIN_KEY`] configured (admin routes are refused when no keys are) and
    /// the given limits.
    pub fn with_keys_and_limits(name: &str, limits: kam::http::Limits) -> Self {
        let keys = kam::http::ApiKeys::parse(&format!("{ADMIN_KEY}:admin")).expect("a valid key spec");
        Self::build(name, keys, limits)
    }

    fn build(name: &str, keys: kam::http::ApiKeys, limits: kam::http::Limits) -> Self {
        let dir = scratch_dir(name);
        copy_models(&dir.join("models"));
        let store = kam::store::ModelStore::new(dir.join("models"));
        let state = kam::http::AppState::new(store, keys, limits);
        state.load_current().expect("the default model loads").expect("models/CURRENT names one");
        let router = kam::http::router(state.clone());
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a current-thread runtime");
        Self { runtime, router, state, dir }
    }

    /// Sends one request through the router (no socket): status and the whole body.
    pub fn send(&self, method: &str, uri: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> (StatusCode, Vec<u8>) {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(Body::from(body)).expect("a valid request");
        self.runtime.block_on(async {
            let res = self.router.clone().oneshot(req).await.expect("the router is infallible");
            let status = res.status();
            let bytes = axum::body::to_bytes(res.into_body(), usize::MAX).await.expect("the response body");
            (status, bytes.to_vec())
        })
    }

    /// POSTs `body` as `application/json` and checks the answer: a 500 (or a panic anywhere,
    /// which libFuzzer's panic hook turns into an abort) is a crash, and every answer must be
    /// JSON in the API's format.
    pub fn post_json(&self, uri: &str, body: &[u8], headers: &[(&str, &str)]) -> (StatusCode, serde_json::Value) {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        let (status, bytes) = self.send("POST", uri, body.to_vec(), &all);
        let text = String::from_utf8_lossy(&bytes);
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "500 from POST {uri}: {text}");
        let value: serde_json::Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => panic!("POST {uri} answered {status} with a body that is not JSON ({e}): {text:.300}"),
        };
        if !status.is_success() {
            assert!(value["error"]["code"].is_string(), "POST {uri}: {status} without an error code: {text:.300}");
        }
        (status, value)
    }
}

/// Writes the Parquet seeds of the `parquet` target into `dir`: files written by
/// `kam::ingest::parquet::write` (the layout `kam generate --out x.parquet` writes), and a few
/// written with the parquet crate in the other layouts kam reads (nullable columns, timestamps,
/// date strings, YYYYMMDD integers, decimals, floats, a margin column, data page v2, snappy).
pub fn write_parquet_seeds(dir: &Path) {
    use kam::domain::transactions::Transactions;
    std::fs::create_dir_all(dir).unwrap();
    let small = Transactions {
        customer_ids: vec!["a".into(), "b".into(), "c".into()],
        customer: vec![0, 1, 0, 2, 1],
        day: vec![19_723, 19_800, 19_900, 20_000, 20_088],
        amount: vec![500.0, 20.0, -10.0, 70.5, 30.0],
        margin: None,
    };
    kam::ingest::parquet::write(&dir.join("kam-small.parquet"), &small).unwrap();
    // 300 rows of 40 customers: dictionary pages and RLE / bit-packed indices.
    let n = 300usize;
    let many = Transactions {
        customer_ids: (0..40).map(|i| format!("C{i:05}")).collect(),
        customer: (0..n).map(|i| (i * 7 % 40) as u32).collect(),
        day: (0..n).map(|i| 19_000 + (i as i32 * 13) % 700).collect(),
        amount: (0..n).map(|i| if i % 17 == 0 { -5.0 } else { 10.0 + (i % 90) as f64 * 1.25 }).collect(),
        margin: None,
    };
    kam::ingest::parquet::write(&dir.join("kam-300.parquet"), &many).unwrap();
    let empty = Transactions::default();
    kam::ingest::parquet::write(&dir.join("kam-empty.parquet"), &empty).unwrap();
    for (name, schema, v2, snappy) in [
        (
            "optional-timestamp-snappy.parquet",
            "message t { OPTIONAL BYTE_ARRAY customer_id (UTF8); OPTIONAL INT64 date (TIMESTAMP_MILLIS); OPTIONAL DOUBLE amount; }",
            false,
            true,
        ),
        (
            "strings-v2.parquet",
            "message t { REQUIRED BYTE_ARRAY customer (UTF8); REQUIRED BYTE_ARRAY day (UTF8); REQUIRED BYTE_ARRAY spend (UTF8); OPTIONAL FLOAT margin; }",
            true,
            false,
        ),
        (
            "ints-decimal.parquet",
            "message t { REQUIRED INT64 customer_id; REQUIRED INT32 date; REQUIRED INT64 amount (DECIMAL(12,2)); REQUIRED INT64 margin; }",
            false,
            false,
        ),
    ] {
        write_other(&dir.join(name), schema, v2, snappy);
    }
}

fn write_other(path: &Path, schema: &str, v2: bool, snappy: bool) {
    use parquet::basic::Compression;
    use parquet::column::writer::ColumnWriter;
    use parquet::data_type::ByteArray;
    use parquet::file::properties::{WriterProperties, WriterVersion};
    use parquet::file::writer::SerializedFileWriter;
    use std::sync::Arc;
    let schema = Arc::new(parquet::schema::parser::parse_message_type(schema).unwrap());
    let mut props = WriterProperties::builder();
    if v2 {
        props = props.set_writer_version(WriterVersion::PARQUET_2_0);
    }
    if snappy {
        props = props.set_compression(Compression::SNAPPY);
    }
    let file = std::fs::File::create(path).unwrap();
    let mut w = SerializedFileWriter::new(file, schema, Arc::new(props.build())).unwrap();
    let rows = 24usize;
    let mut g = w.next_row_group().unwrap();
    let mut col_no = 0;
    while let Some(mut col) = g.next_column().unwrap() {
        let optional = col_no < 3 && !v2 && snappy;
        let def: Vec<i16> = (0..rows).map(|i| if optional && i % 5 == 3 { 0 } else { 1 }).collect();
        let present = def.iter().filter(|&&d| d == 1).count();
        let levels = if optional || col_no == 3 && v2 { Some(&def[..]) } else { None };
        let count = if levels.is_some() { present } else { rows };
        match col.untyped() {
            ColumnWriter::ByteArrayColumnWriter(c) => {
                let v: Vec<ByteArray> = (0..count)
                    .map(|i| match col_no {
                        0 => ByteArray::from(format!("cust-{}", i % 6).as_str()),
                        1 => ByteArray::from(if i % 2 == 0 {
                            format!("2024-0{}-1{}", 1 + i % 9, i % 10)
                        } else {
                            format!("2023-11-0{}T10:30:00Z", 1 + i % 9)
                        }
                        .as_str()),
                        _ => ByteArray::from(format!("{}.{}", i * 3, i % 10).as_str()),
                    })
                    .collect();
                c.write_batch(&v, levels, None).unwrap();
            }
            ColumnWriter::Int64ColumnWriter(c) => {
                let v: Vec<i64> = (0..count)
                    .map(|i| match col_no {
                        0 => (i % 7) as i64,
                        2 => 12_345 + i as i64 * 101,
                        3 => 1_704_067_200_000_000 + i as i64 * 86_400_000_000,
                        _ => 1_704_067_200_000 + i as i64 * 86_400_000 * 9,
                    })
                    .collect();
                c.write_batch(&v, levels, None).unwrap();
            }
            ColumnWriter::Int32ColumnWriter(c) => {
                let v: Vec<i32> = (0..count).map(|i| 20_240_101 + (i % 12) as i32 * 100).collect();
                c.write_batch(&v, levels, None).unwrap();
            }
            ColumnWriter::DoubleColumnWriter(c) => {
                let v: Vec<f64> = (0..count).map(|i| i as f64 * 2.5 - 3.0).collect();
                c.write_batch(&v, levels, None).unwrap();
            }
            ColumnWriter::FloatColumnWriter(c) => {
                let v: Vec<f32> = (0..count).map(|i| i as f32 * 0.5).collect();
                c.write_batch(&v, levels, None).unwrap();
            }
            _ => unreachable!("no other column types in the seed schemas"),
        }
        col.close().unwrap();
        col_no += 1;
    }
    g.close().unwrap();
    w.close().unwrap();
}
