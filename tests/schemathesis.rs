//! Schemathesis (PyPI, `tests/api/requirements.txt`) against `/openapi.json` on the real
//! `kam serve` (issue 13): every route, generated valid and invalid requests, stateful sequences;
//! no 5xx, and every answer's status, content type, headers and body as the document says.
//!
//! The input-strictness checks (`positive_data_acceptance`, `negative_data_rejection`) are left
//! out: the document does not carry every validation rule (dates within the model's range, ids
//! unique in a request), so a schema-valid body can rightly be refused with 422.

use crate::util::{Sandbox, serve};
use std::path::PathBuf;
use std::process::Command;

const ADMIN_KEY: &str = "schemathesis-admin-0123456789";

/// The `st` executable of the test environment.
fn st() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/st")
}

/// Why the check cannot run, if it cannot.
pub fn missing() -> Option<String> {
    (!st().exists()).then(|| "schemathesis (.venv/bin/pip install -r tests/api/requirements.txt)".to_string())
}

pub fn every_route_answers_without_a_server_error_and_as_the_openapi_document_says() {
    if let Some(what) = missing() {
        panic!("the schemathesis test needs {what}");
    }
    let s = Sandbox::new();
    s.ok(&["generate", "--customers", "2000", "--seed", "3", "--out", "data/g.csv"]);
    s.ok(&["train", "data/g.csv", "--config", "data/g.kam.toml", "--models", "models"]);
    let server = serve(s.path(), &["--models", "models", "--data-dir", "data"], &format!("{ADMIN_KEY}:admin"));
    let base = &server.base;
    let out = Command::new(st())
        .args([
            "run",
            &format!("{base}/openapi.json"),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
            "--max-examples",
            "40",
            "--seed",
            "13",
            "--no-color",
            "-H",
            &format!("X-API-Key: {ADMIN_KEY}"),
        ])
        .current_dir(s.path())
        .output()
        .expect("run schemathesis");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "schemathesis found failures:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("passed"), "{text}");
}
