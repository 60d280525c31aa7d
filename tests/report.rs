//! `kam report` through the real executable: one self-contained page from the customer
//! snapshot or a `kam score` file (CSV or JSON Lines), and clear errors.

use crate::util::Sandbox;
use serde_json::Value;
use std::sync::OnceLock;

/// A model trained on 1,500 generated customers, with a backtest, and its scores.
fn trained() -> &'static Sandbox {
    static S: OnceLock<Sandbox> = OnceLock::new();
    S.get_or_init(|| {
        let s = Sandbox::new();
        s.ok(&["generate", "--customers", "1500", "--seed", "3", "--out", "data/g.csv"]);
        s.ok(&["train", "data/g.csv", "--config", "data/g.kam.toml", "--backtest-last", "2"]);
        s.ok(&["score", "data/g.csv", "--out", "scores.csv"]);
        s.ok(&["score", "data/g.csv", "--out", "scores.jsonl"]);
        s
    })
}

/// The JSON embedded in a report page.
fn embedded(html: &str) -> Value {
    let start = html.find("<script type=\"application/json\" id=\"kam-data\">").expect("embedded data");
    let rest = &html[start..];
    let body = &rest[rest.find('>').unwrap() + 1..rest.find("</script>").unwrap()];
    serde_json::from_str(body).expect("valid JSON")
}

#[test]
fn a_report_embeds_the_model_its_chain_the_forecast_and_the_customers_with_no_external_resource() {
    let s = trained();
    let r = s.ok(&["report", "--horizon", "6", "--out", "report.html"]);
    assert!(r.stdout.contains("1,500 customers from snapshot"), "{}", r.stdout);
    let html = std::fs::read_to_string(s.path().join("report.html")).unwrap();
    for external in ["src=\"http", "href=\"http", "<link", "@import", "fetch('http"] {
        assert!(!html.contains(external), "{external}");
    }
    let d = embedded(&html);
    let states = d["model"]["states"].as_array().unwrap().len();
    assert_eq!(d["transitions"]["matrix"].as_array().unwrap().len(), states);
    assert_eq!(d["transitions"]["interval_lo"].as_array().unwrap().len(), states);
    assert!(d["transitions"]["diagnostics"]["time_homogeneity"]["p_value"].is_number());
    assert_eq!(d["forecast"]["horizons"].as_array().unwrap().len(), 6);
    assert_eq!(d["model"]["sizes_by_period"].as_array().unwrap().len(), 12);
    assert!(d["model"]["backtest"]["next_segment"].is_object());
    let c = &d["customers"];
    assert_eq!(c["customers"], 1500);
    assert_eq!(c["horizon"], 6);
    assert_eq!(c["source"], "snapshot");
    assert_eq!(c["concentration"].as_array().unwrap().len(), 101);
    assert!(!c["at_risk"].as_array().unwrap().is_empty());
}

#[test]
fn a_report_from_a_csv_or_json_lines_score_file_shows_the_same_customers() {
    let s = trained();
    s.ok(&["report", "--scores", "scores.csv", "--out", "from-csv.html"]);
    s.ok(&["report", "--scores", "scores.jsonl", "--out", "from-jsonl.html"]);
    let csv = embedded(&std::fs::read_to_string(s.path().join("from-csv.html")).unwrap());
    let jsonl = embedded(&std::fs::read_to_string(s.path().join("from-jsonl.html")).unwrap());
    assert_eq!(csv["customers"]["source"], "scores.csv");
    assert_eq!(csv["customers"]["horizon"], 4);
    let ids = |v: &Value| -> Vec<String> {
        v["customers"]["at_risk"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["customer_id"].as_str().unwrap().into())
            .collect()
    };
    assert_eq!(ids(&csv), ids(&jsonl));
    assert_eq!(csv["customers"]["churn"]["counts"], jsonl["customers"]["churn"]["counts"]);
    // The snapshot, forecast at the same settings, agrees with kam score's values.
    s.ok(&["report", "--out", "from-snapshot.html"]);
    let snapshot = embedded(&std::fs::read_to_string(s.path().join("from-snapshot.html")).unwrap());
    assert_eq!(ids(&snapshot), ids(&jsonl));
}

#[test]
fn an_unknown_model_or_a_bad_scores_line_is_a_clear_error() {
    let s = trained();
    let r = s.kam(&["report", "--model", "2024-12-31-ffffffffffff", "--out", "x.html"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("2024-12-31-ffffffffffff"), "{}", r.stderr);
    let csv = std::fs::read_to_string(s.path().join("scores.csv")).unwrap();
    let mut lines: Vec<String> = csv.lines().map(String::from).collect();
    lines[3] = lines[3].replacen(",", ",vip-", 1);
    s.file("bad.csv", &(lines.join("\n") + "\n"));
    let r = s.kam(&["report", "--scores", "bad.csv", "--out", "x.html"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("bad.csv: line 4") && r.stderr.contains("unknown segment"), "{}", r.stderr);
    s.file("bad.jsonl", "{\"customer_id\": \"x\"}\n");
    let r = s.kam(&["report", "--scores", "bad.jsonl", "--out", "x.html"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("bad.jsonl: line 1"), "{}", r.stderr);
    assert!(!s.path().join("x.html").exists());
}
