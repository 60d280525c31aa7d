//! The JSON body of `POST /v1/train`, through the real router, in-process, with an admin key and
//! a data directory (`Limits::data_dir`, as `kam serve --data-dir`) holding a few small
//! transactions files (`t.csv`, `g.csv`, `t.txt`, `t.parquet`) and an attributes file
//! (`attrs.csv`). The body is sent as it is: the server itself confines `path` and `customers`
//! to the data directory. A started job is polled (`GET /v1/jobs/{id}`) until it finishes, so a
//! hang is a libFuzzer timeout and a panic in the job a crash; afterwards the store is put back
//! as it was (models made by the job removed, `CURRENT` and the served model restored).
//! A 500 or an answer that is not JSON in the API's format is a crash.
#![no_main]

use axum::http::StatusCode;
use kam::domain::transactions::Transactions;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

struct Env {
    api: kam_fuzz::Api,
    models: PathBuf,
    original: BTreeSet<String>,
    current: Vec<u8>,
}

const SMALL: &str = "customer_id,date,amount
a,2024-01-10,500
a,2024-04-10,400
a,2024-07-10,450
a,2024-10-10,600
b,2024-02-01,20
b,2024-08-01,30
c,2024-05-05,50
c,2024-12-31,-10
d,2024-03-03,70
d,2024-06-03,80
d,2024-09-03,5
";

fn data_files(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("t.csv"), SMALL).unwrap();
    std::fs::write(dir.join("t.txt"), SMALL.replace(',', "  ").replace('-', "")).unwrap();
    // The first 400 rows of the repository's sample (about 40 customers).
    let sample = std::fs::read_to_string(kam_fuzz::repo().join("data/sample.csv")).unwrap();
    let head: String = sample.lines().take(401).flat_map(|l| [l, "\n"]).collect();
    std::fs::write(dir.join("g.csv"), head).unwrap();
    std::fs::write(dir.join("attrs.csv"), "customer_id,size,region\na,10,north\nb,2.5,south\nc,,west\nd,7,north\n")
        .unwrap();
    let tx = Transactions {
        customer_ids: vec!["a".into(), "b".into(), "c".into()],
        customer: vec![0, 1, 0, 2, 1, 0],
        day: vec![19_740, 19_800, 19_900, 19_950, 20_000, 20_080],
        amount: vec![500.0, 20.0, -10.0, 70.5, 30.0, 12.0],
        margin: None,
    };
    kam::ingest::parquet::write(&dir.join("t.parquet"), &tx).unwrap();
}

static ENV: LazyLock<Env> = LazyLock::new(|| {
    let scratch = kam_fuzz::scratch_dir("train");
    let data = scratch.join("data");
    data_files(&data);
    let limits = kam::http::Limits { data_dir: Some(data), ..kam::http::Limits::default() };
    let api = kam_fuzz::Api::with_keys_and_limits("train-api", limits);
    let models = api.dir.join("models");
    let original = names(&models);
    let current = std::fs::read(models.join("CURRENT")).unwrap();
    Env { api, models, original, current }
});

fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
}

const AUTH: (&str, &str) = ("authorization", concat!("Bearer ", "fuzz-admin-key-0123456789"));

fuzz_target!(
    init: {
        LazyLock::force(&ENV);
    },
    |data: &[u8]| {
        let env = &*ENV;
        let (status, job) = env.api.post_json("/v1/train", data, &[AUTH]);
        if status != StatusCode::ACCEPTED {
            return;
        }
        let id = job["id"].as_str().expect("a started job has an id").to_string();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (status, bytes) = env.api.send("GET", &format!("/v1/jobs/{id}"), Vec::new(), &[AUTH]);
            assert_eq!(status, StatusCode::OK, "GET /v1/jobs/{id}: {}", String::from_utf8_lossy(&bytes));
            let job: serde_json::Value = serde_json::from_slice(&bytes).expect("a job is JSON");
            if job["status"] != "running" {
                // A failure for the input's sake is fine; a panic, or a trained model that cannot
                // be stored or activated (the trainer made an artifact the store refuses), is not.
                let error = job["error"].as_str().unwrap_or("");
                assert!(
                    !["internal error", "cannot be activated", "could not be stored"].iter().any(|e| error.contains(e)),
                    "the job failed inside kam: {job}"
                );
                break;
            }
            assert!(Instant::now() < deadline, "job {id} still running after 120 s");
            std::thread::sleep(Duration::from_millis(1));
        }
        // Put the store back as it was.
        for name in names(&env.models).difference(&env.original) {
            let _ = std::fs::remove_file(env.models.join(name));
        }
        std::fs::write(env.models.join("CURRENT"), &env.current).unwrap();
        env.api.state.load_current().expect("the default model reloads");
    }
);
