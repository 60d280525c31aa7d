//! Activation and training jobs through the router.

use super::*;

#[tokio::test]
async fn activation_swaps_the_model_and_moves_current_and_refuses_broken_ones() {
    let s = models_copy();
    let models = s.path().join("models");
    let app = router(state(&models, keys(), Limits::default()));
    let f = fixture();
    let admin = [("x-api-key", ADMIN_KEY)];
    let read = [("x-api-key", READ_KEY)];
    for (id, status, code) in [
        (f.mismatched.as_str(), StatusCode::UNPROCESSABLE_ENTITY, "unusable_model"),
        (f.truncated.as_str(), StatusCode::UNPROCESSABLE_ENTITY, "unusable_model"),
        ("2024-12-31-ffffffffffff", StatusCode::NOT_FOUND, "not_found"),
        ("..%2Fetc", StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
    ] {
        let got = send(&app, "POST", &format!("/v1/models/{id}/activate"), None, vec![], &admin).await;
        assert_error(&got, status, code);
        // Still serving A, and CURRENT unchanged.
        assert_eq!(send(&app, "GET", "/readyz", None, vec![], &[]).await.1["model_id"], f.a);
        assert_eq!(std::fs::read_to_string(models.join("CURRENT")).unwrap().trim(), f.a);
    }
    let (st, r) = send(&app, "POST", &format!("/v1/models/{}/activate", f.b), None, vec![], &admin).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(r, json!({"model_id": f.b, "previous_model_id": f.a}));
    assert_eq!(send(&app, "GET", "/v1/model", None, vec![], &read).await.1["id"], f.b);
    assert_eq!(std::fs::read_to_string(models.join("CURRENT")).unwrap().trim(), f.b);
    // A restart serves B.
    let again = state(&models, keys(), Limits::default());
    assert_eq!(again.model().unwrap().id, f.b);
}

/// Polls a training job until it has finished.
async fn finished_job(app: &Router, id: &str, admin: &[(&str, &str)]) -> Value {
    for _ in 0..600 {
        let (st, job) = send(app, "GET", &format!("/v1/jobs/{id}"), None, vec![], admin).await;
        assert_eq!(st, StatusCode::OK, "{job}");
        if job["status"] != "running" {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("job {id} still running after 30 s");
}

#[tokio::test]
async fn a_training_job_trains_activates_and_a_failed_one_changes_nothing() {
    let s = models_copy();
    let models = s.path().join("models");
    let f = fixture();
    let data_dir = f.sandbox.path().join("data");
    let app = router(state(&models, keys(), Limits { data_dir: Some(data_dir), ..Limits::default() }));
    let admin = [("x-api-key", ADMIN_KEY)];
    let read = [("x-api-key", READ_KEY)];
    let json_body = |v: Value| serde_json::to_vec(&v).unwrap();

    // A read key may not train; a bad configuration is refused before any work, by its path.
    let body = json!({"path": "g.csv"});
    let got = send(&app, "POST", "/v1/train", Some("application/json"), json_body(body.clone()), &read).await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden");
    let bad = json!({"path": "g.csv", "config": {"segments": {"window": 0}}});
    let got = send(&app, "POST", "/v1/train", Some("application/json"), json_body(bad), &admin).await;
    assert_eq!(assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"), ["config.segments.window"]);

    // A missing file is refused at once, naming the field, and changes nothing.
    let missing = json!({"path": "nope.csv"});
    let got = send(&app, "POST", "/v1/train", Some("application/json"), json_body(missing), &admin).await;
    assert_eq!(assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"), ["path"]);
    assert_eq!(send(&app, "GET", "/readyz", None, vec![], &[]).await.1["model_id"], f.a);
    assert_eq!(std::fs::read_to_string(models.join("CURRENT")).unwrap().trim(), f.a);

    // A good job stores a new model and serves it; the 202 says where to poll.
    let (st, headers, job) =
        send_for_headers(&app, "POST", "/v1/train", Some("application/json"), json_body(body), &admin).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{job}");
    let location = headers.get("location").expect("a Location header").to_str().unwrap().to_owned();
    assert_eq!(location, format!("/v1/jobs/{}", job["id"].as_str().unwrap()));
    assert_eq!(send(&app, "GET", &location, None, vec![], &admin).await.1["id"], job["id"]);
    let done = finished_job(&app, job["id"].as_str().unwrap(), &admin).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["activated"], true);
    let new_id = done["model_id"].as_str().unwrap();
    assert_ne!(new_id, f.a);
    assert!(models.join(format!("{new_id}.json")).exists());
    assert!(models.join(format!("{new_id}.customers.jsonl")).exists());
    assert_eq!(send(&app, "GET", "/readyz", None, vec![], &[]).await.1["model_id"], new_id);
    assert_eq!(std::fs::read_to_string(models.join("CURRENT")).unwrap().trim(), new_id);
    assert!(done["id"].as_str().unwrap().starts_with("job-"), "{done}");
    let got = send(&app, "GET", "/v1/jobs/job-99", None, vec![], &admin).await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found");

    // A failed job, then the list: newest first, filtered by status, bounded.
    let bad_rows = f.sandbox.path().join("data/bad.csv");
    std::fs::write(&bad_rows, "customer_id,date,amount\na,2024-01-05,x\n").unwrap();
    let (st, failed) =
        send(&app, "POST", "/v1/train", Some("application/json"), json_body(json!({"path": "bad.csv"})), &admin).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{failed}");
    let failed = finished_job(&app, failed["id"].as_str().unwrap(), &admin).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    let (st, list) = send(&app, "GET", "/v1/jobs", None, vec![], &admin).await;
    assert_eq!(st, StatusCode::OK, "{list}");
    let ids = |v: &Value| v["jobs"].as_array().unwrap().iter().map(|j| j["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&list), [failed["id"].clone(), done["id"].clone()]);
    assert_eq!(list["jobs"][1], done);
    let (_, only) = send(&app, "GET", "/v1/jobs?status=succeeded", None, vec![], &admin).await;
    assert_eq!(ids(&only), [done["id"].clone()]);
    let (_, one) = send(&app, "GET", "/v1/jobs?limit=1", None, vec![], &admin).await;
    assert_eq!(ids(&one), [failed["id"].clone()]);
    for (query, field) in
        [("status=done", "status"), ("limit=0", "limit"), ("limit=1001", "limit"), ("page=2", "query")]
    {
        let got = send(&app, "GET", &format!("/v1/jobs?{query}"), None, vec![], &admin).await;
        assert_eq!(assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"), [field], "{query}");
    }
    let got = send(&app, "GET", "/v1/jobs", None, vec![], &read).await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden");

    // The jobs are kept beside the models: a restarted server lists them, and a job it finds
    // running (the server stopped mid-job) is reported failed.
    let mut cut_off = done.clone();
    cut_off["id"] = json!("job-0-1");
    cut_off["status"] = json!("running");
    cut_off["started_at"] = json!("2020-01-01T00:00:00Z");
    cut_off["finished_at"] = Value::Null;
    std::fs::write(models.join("jobs/job-0-1.json"), serde_json::to_vec(&cut_off).unwrap()).unwrap();
    let restarted = router(state(&models, keys(), Limits::default()));
    let (_, again) = send(&restarted, "GET", "/v1/jobs", None, vec![], &admin).await;
    assert_eq!(ids(&again), [failed["id"].clone(), done["id"].clone(), json!("job-0-1")]);
    assert_eq!(again["jobs"][0], failed);
    let interrupted = &again["jobs"][2];
    assert_eq!(interrupted["status"], "failed");
    assert!(interrupted["error"].as_str().unwrap().starts_with("interrupted"), "{interrupted}");
    assert!(interrupted["finished_at"].is_string());
    let on_disk: Value = serde_json::from_slice(&std::fs::read(models.join("jobs/job-0-1.json")).unwrap()).unwrap();
    assert_eq!(&on_disk, interrupted);
}

#[tokio::test]
async fn a_training_job_takes_attributes_and_a_backtest_and_gives_the_model_kam_train_gives() {
    let s = Sandbox::new();
    s.ok(&["generate", "--customers", "1500", "--seed", "9", "--attribute-effect", "0.5", "--out", "g.csv"]);
    // The CLI's model, in its own store.
    let cli = s.ok(&[
        "train",
        "g.csv",
        "--config",
        "g.kam.toml",
        "--customers",
        "g.customers.csv",
        "--backtest-last",
        "2",
        "--models",
        "cli-models",
        "--json",
    ]);
    let cli: Value = serde_json::from_str(&cli.stdout).unwrap();
    let cli_id = cli["model_id"].as_str().unwrap();
    assert!(!cli["model"]["spend"]["model"]["design"]["attributes"].as_array().unwrap().is_empty());
    assert!(cli["model"]["backtest"].is_object());

    // The same through the API.
    let models = s.path().join("api-models");
    let app = router(state(&models, keys(), Limits { data_dir: Some(s.path().into()), ..Limits::default() }));
    let admin = [("x-api-key", ADMIN_KEY)];
    let config: toml::Value = toml::from_str(&std::fs::read_to_string(s.path().join("g.kam.toml")).unwrap()).unwrap();
    let body = json!({
        "path": "g.csv",
        "customers": "./g.customers.csv",
        "backtest_last": 2,
        "config": serde_json::to_value(config).unwrap(),
    });
    let (st, job) =
        send(&app, "POST", "/v1/train", Some("application/json"), serde_json::to_vec(&body).unwrap(), &admin).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{job}");
    let done = finished_job(&app, job["id"].as_str().unwrap(), &admin).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["model_id"], cli_id, "the job and kam train give the same model");
    let api_bytes = std::fs::read(models.join(format!("{cli_id}.json"))).unwrap();
    let cli_bytes = std::fs::read(s.path().join(format!("cli-models/{cli_id}.json"))).unwrap();
    assert!(api_bytes == cli_bytes, "the artifacts differ");
    assert!(models.join(format!("{cli_id}.customers.jsonl")).exists());

    // A backtest longer than the history is refused when the job runs, and changes nothing.
    let too_long = json!({"path": "g.csv", "backtest_last": 99});
    let (_, job) =
        send(&app, "POST", "/v1/train", Some("application/json"), serde_json::to_vec(&too_long).unwrap(), &admin).await;
    let done = finished_job(&app, job["id"].as_str().unwrap(), &admin).await;
    assert_eq!(done["status"], "failed");
    assert!(done["error"].as_str().unwrap().contains("backtest_last = 99"), "{done}");
    assert_eq!(std::fs::read_to_string(models.join("CURRENT")).unwrap().trim(), cli_id);
}

/// Issue 13, item 1: a training job reads only files under `--data-dir`, and neither its answer
/// nor its error shows a server path or any of a file's content.
#[tokio::test]
async fn a_training_job_cannot_read_or_reveal_files_outside_the_data_directory() {
    let s = models_copy();
    let models = s.path().join("models");
    let data = s.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let secret = "SECRET-TOKEN-0123456789abcdef";
    std::fs::write(data.join("notes.txt"), format!("A,2024-01-01,1\n{secret},{secret},3\n")).unwrap();
    std::fs::write(s.path().join("outside.csv"), "customer,date,amount\nA,2024-01-01,1\n").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(s.path().join("outside.csv"), data.join("link.csv")).unwrap();
    #[cfg(unix)]
    assert!(std::process::Command::new("mkfifo").arg(data.join("fifo.csv")).status().unwrap().success());
    let admin = [("x-api-key", ADMIN_KEY)];
    let post = |app: Router, body: Value| async move {
        send(&app, "POST", "/v1/train", Some("application/json"), serde_json::to_vec(&body).unwrap(), &admin).await
    };

    // Without a data directory, no training by path at all.
    let closed = router(state(&models, keys(), Limits::default()));
    let got = post(closed, json!({"path": "notes.txt"})).await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden");

    let app = router(state(&models, keys(), Limits { data_dir: Some(data.clone()), ..Limits::default() }));
    let outside = s.path().join("outside.csv");
    for (path, field) in [
        ("/proc/self/environ", "path"),
        ("/etc/passwd", "path"),
        (outside.to_str().unwrap(), "path"),
        ("../outside.csv", "path"),
        ("link.csv", "path"),
        ("fifo.csv", "path"),
        (".", "path"),
        ("nope.csv", "path"),
    ] {
        let got = post(app.clone(), json!({"path": path})).await;
        assert_eq!(assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"), [field], "{path}");
        let text = got.1.to_string();
        assert!(!text.contains(s.path().to_str().unwrap()), "{text}");
    }
    let got = post(app.clone(), json!({"path": "notes.txt", "customers": "/etc/passwd"})).await;
    assert_eq!(assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"), ["customers"]);

    // A file inside that is not transactions fails the job without quoting it or naming a path.
    let (st, job) = post(app.clone(), json!({"path": "notes.txt"})).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{job}");
    let done = finished_job(&app, job["id"].as_str().unwrap(), &admin).await;
    assert_eq!(done["status"], "failed");
    let text = done.to_string();
    assert!(!text.contains("SECRET") && !text.contains(s.path().to_str().unwrap()), "{text}");
    assert!(done["error"].as_str().unwrap().starts_with("notes.txt: line 2"), "{done}");

    // The models list names problems without server paths.
    std::fs::write(models.join("2024-12-31-000000000000.json"), "{\"schema_version\": 1").unwrap();
    let (_, listed) = send(&app, "GET", "/v1/models", None, vec![], &[("x-api-key", READ_KEY)]).await;
    let problems: Vec<&str> =
        listed["models"].as_array().unwrap().iter().filter_map(|m| m["problem"].as_str()).collect();
    assert!(!problems.is_empty(), "{listed}");
    assert!(problems.iter().all(|p| !p.contains('/')), "{problems:?}");
}

/// A part of an upload: its name, file name and bytes.
type Part<'a> = (&'a str, Option<&'a str>, &'a [u8]);

/// A `multipart/form-data` body of `parts`; its content type.
fn multipart(parts: &[Part]) -> (String, Vec<u8>) {
    let boundary = "kam-test-boundary-7c1e";
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n")
                    .as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn training_data_can_be_uploaded_and_gives_the_model_the_same_file_by_path_gives() {
    let s = models_copy();
    let models = s.path().join("models");
    let f = fixture();
    let data_dir = f.sandbox.path().join("data");
    let csv = std::fs::read(data_dir.join("g.csv")).unwrap();
    let admin = [("x-api-key", ADMIN_KEY)];
    // By path first, not activated.
    let by_path = router(state(&models, keys(), Limits { data_dir: Some(data_dir.clone()), ..Limits::default() }));
    let body = serde_json::to_vec(&json!({"path": "g.csv", "activate": false})).unwrap();
    let (st, job) = send(&by_path, "POST", "/v1/train", Some("application/json"), body, &admin).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{job}");
    let by_path_job = finished_job(&by_path, job["id"].as_str().unwrap(), &admin).await;
    assert_eq!(by_path_job["status"], "succeeded", "{by_path_job}");

    // The same bytes uploaded, to a server without a data directory: the same model.
    let app = router(state(&models, keys(), Limits::default()));
    let request = serde_json::to_vec(&json!({"activate": false})).unwrap();
    let (ct, body) = multipart(&[("request", None, &request), ("transactions", Some("g.csv"), &csv)]);
    let (st, headers, job) = send_for_headers(&app, "POST", "/v1/train", Some(&ct), body, &admin).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{job}");
    assert_eq!(job["path"], "upload:g.csv");
    assert_eq!(headers["location"].to_str().unwrap(), format!("/v1/jobs/{}", job["id"].as_str().unwrap()));
    let done = finished_job(&app, job["id"].as_str().unwrap(), &admin).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["model_id"], by_path_job["model_id"]);
    assert_eq!(done["activated"], false);
    assert_eq!(send(&app, "GET", "/readyz", None, vec![], &[]).await.1["model_id"], f.a);
    let leftovers: Vec<_> = std::fs::read_dir(models.join("jobs"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".upload-"))
        .collect();
    assert!(leftovers.is_empty(), "uploads left behind: {leftovers:?}");

    // Bad rows in an upload fail the job, naming the uploaded file (not a server path).
    let (ct, body) = multipart(&[("transactions", Some("bad.csv"), b"customer_id,date,amount\na,2024-01-05,x\n")]);
    let (st, job) = send(&app, "POST", "/v1/train", Some(&ct), body, &admin).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{job}");
    let failed = finished_job(&app, job["id"].as_str().unwrap(), &admin).await;
    assert_eq!(failed["status"], "failed");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("bad.csv") && !error.contains(".upload-") && !error.contains("/jobs/"), "{error}");

    // Refused before any work, by part or JSON path.
    let bad_config = serde_json::to_vec(&json!({"config": {"segments": {"window": 0}}})).unwrap();
    let with_path = serde_json::to_vec(&json!({"path": "g.csv"})).unwrap();
    let cases: Vec<(Vec<Part>, &str)> = vec![
        (vec![("request", None, b"{}")], "transactions"),
        (vec![("transactions", Some("g.csv"), &csv), ("extra", None, b"x")], "body"),
        (vec![("transactions", Some("g.csv"), &csv), ("transactions", Some("g.csv"), &csv)], "transactions"),
        (vec![("request", None, &bad_config), ("transactions", Some("g.csv"), &csv)], "request.config.segments.window"),
        (vec![("request", None, &with_path), ("transactions", Some("g.csv"), &csv)], "request.path"),
        (vec![("request", None, b"{\"colour\": 1}"), ("transactions", Some("g.csv"), &csv)], "request.colour"),
        (vec![("transactions", Some("empty.csv"), b"")], "transactions"),
    ];
    for (parts, field) in cases {
        let (ct, body) = multipart(&parts);
        let got = send(&app, "POST", "/v1/train", Some(&ct), body, &admin).await;
        assert_eq!(assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"), [field]);
    }
    // Over the server's limit: 413, and nothing left on disk.
    let small = router(state(&models, keys(), Limits { max_train_bytes: 1000, ..Limits::default() }));
    let (ct, body) = multipart(&[("transactions", Some("g.csv"), &csv)]);
    let got = send(&small, "POST", "/v1/train", Some(&ct), body, &admin).await;
    assert_error(&got, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    // Neither JSON nor multipart; a JSON body without a path; a path without a data directory.
    let got = send(&app, "POST", "/v1/train", Some("text/csv"), csv.clone(), &admin).await;
    assert_error(&got, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    let got = send(&by_path, "POST", "/v1/train", Some("application/json"), b"{}".to_vec(), &admin).await;
    assert_eq!(assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"), ["path"]);
    let got = send(&app, "POST", "/v1/train", Some("application/json"), with_path.clone(), &admin).await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden");
    // A read key may not upload.
    let (ct, body) = multipart(&[("transactions", Some("g.csv"), &csv)]);
    let got = send(&app, "POST", "/v1/train", Some(&ct), body, &[("x-api-key", READ_KEY)]).await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden");
    let leftovers = std::fs::read_dir(models.join("jobs"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".upload-"))
        .count();
    assert_eq!(leftovers, 0);

    // Parquet, known by its magic bytes when the file name does not say.
    s.ok(&["generate", "--customers", "300", "--seed", "3", "--out", "p.parquet"]);
    let parquet = std::fs::read(s.path().join("p.parquet")).unwrap();
    let (ct, body) = multipart(&[("request", None, &request), ("transactions", Some("sales-export"), &parquet)]);
    let (st, job) = send(&app, "POST", "/v1/train", Some(&ct), body, &admin).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{job}");
    let done = finished_job(&app, job["id"].as_str().unwrap(), &admin).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let (_, model) =
        send(&app, "GET", &format!("/v1/models/{}", done["model_id"].as_str().unwrap()), None, vec![], &admin).await;
    // The model fingerprints the activity table, not the file: the CSV of the same data gives the
    // same fingerprint.
    s.ok(&["generate", "--customers", "300", "--seed", "3", "--out", "p.csv"]);
    let by_cli: serde_json::Value =
        serde_json::from_str(&s.ok(&["train", "p.csv", "--json", "--models", "cli-models"]).stdout).unwrap();
    assert_eq!(model["data"]["content_hash"], by_cli["model"]["data"]["content_hash"], "{model}");
}
