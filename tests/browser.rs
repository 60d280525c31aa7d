//! The report file and the dashboard in headless Chromium: data generated, trained (with a
//! backtest) and scored by the real executable, `kam report` writes the page, `kam serve` (with
//! an API key) serves the dashboard, and `tests/browser/check_pages.py` (Playwright for Python,
//! driving Debian's `/usr/bin/chromium`) checks that every chart has SVG marks, the tables have
//! rows and the console has no errors, and saves `test-output/report.png` and
//! `test-output/dashboard.png`.
//!
//! Without Chromium or Playwright the test is reported as ignored, naming what is missing —
//! unless `CI` is set, when it fails saying what to install (`.ci/run` installs both).

use crate::util::{Sandbox, python, serve};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const READ_KEY: &str = "dashboard-reader-0123456789";

fn chromium() -> PathBuf {
    std::env::var_os("KAM_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// What is missing to run the browser check, if anything.
pub fn missing_tools() -> Vec<&'static str> {
    let mut missing = Vec::new();
    if !chromium().exists() {
        missing.push("Chromium (apt-get install -y chromium chromium-driver)");
    }
    let playwright = Command::new(python())
        .args(["-c", "import playwright.sync_api"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !playwright {
        missing.push("Playwright for Python (.venv/bin/pip install -r tests/browser/requirements.txt)");
    }
    missing
}

pub fn the_report_and_the_dashboard_draw_every_chart_in_headless_chromium_without_console_errors() {
    let missing = missing_tools();
    if !missing.is_empty() {
        let what = missing.join(" and ");
        if std::env::var_os("CI").is_some() {
            panic!("the browser test needs {what}");
        }
        panic!("the browser test needs {what}");
    }
    let s = Sandbox::new();
    s.ok(&["generate", "--customers", "5000", "--seed", "7", "--out", "data/g.csv"]);
    s.ok(&["train", "data/g.csv", "--config", "data/g.kam.toml", "--models", "models", "--backtest-last", "4"]);
    s.ok(&["score", "data/g.csv", "--models", "models", "--out", "scores.csv"]);
    let r = s.ok(&["report", "--models", "models", "--scores", "scores.csv", "--out", "report.html"]);
    assert!(r.stdout.contains("5,000 customers from scores.csv"), "{}", r.stdout);
    // A wide scheme (monthly, the defaults' recency × tier states) on a CDNOW-like business.
    s.ok(&["generate", "--regime", "btyd", "--customers", "3000", "--out", "data/b.csv"]);
    s.ok(&["train", "data/b.csv", "--models", "wide", "--backtest-last", "4"]);
    s.ok(&["report", "--models", "wide", "--out", "wide.html"]);
    let server = serve(s.path(), &["--models", "models"], &format!("{READ_KEY}:read"));
    let url = format!("{}/", server.base);

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("test-output");
    let started = Instant::now();
    let run = Command::new(python())
        .arg(root.join("tests/browser/check_pages.py"))
        .arg("--report")
        .arg(s.path().join("report.html"))
        .arg("--wide-report")
        .arg(s.path().join("wide.html"))
        .args(["--dashboard", &url, "--api-key", READ_KEY, "--chromium"])
        .arg(chromium())
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    eprintln!("{stdout}{stderr}browser check: {:.1} s", started.elapsed().as_secs_f64());
    assert!(run.status.success(), "the browser check failed:\n{stdout}\n{stderr}");
    for shot in ["report.png", "dashboard.png"] {
        let len = std::fs::metadata(out.join(shot)).map_or(0, |m| m.len());
        assert!(len > 10_000, "{shot}: {len} bytes");
    }
}
