//! The spend model choice and the value basis through the CLI.

use crate::util::Sandbox;
use serde_json::Value;

/// A generated data set with a margin column (25% of every amount) beside the amount.
fn with_margin(s: &Sandbox) {
    s.ok(&["generate", "--customers", "3000", "--seed", "5", "--out", "data/g.csv"]);
    let text = std::fs::read_to_string(s.path().join("data/g.csv")).unwrap();
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        if i == 0 {
            out.push_str(&format!("{line},margin\n"));
        } else {
            let amount: f64 = line.rsplit(',').next().unwrap().parse().unwrap();
            out.push_str(&format!("{line},{:.4}\n", 0.25 * amount));
        }
    }
    s.file("data/m.csv", &out);
}

fn train_json(s: &Sandbox, extra: &[&str]) -> Value {
    let mut args = vec!["train", "data/m.csv", "--config", "data/g.kam.toml", "--json", "--no-snapshot"];
    args.extend_from_slice(extra);
    serde_json::from_str::<Value>(&s.ok(&args).stdout).unwrap()["model"].clone()
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn every_spend_model_can_be_chosen_and_auto_follows_its_rule() {
    let s = Sandbox::new();
    with_margin(&s);
    for kind in ["ols", "log_ols", "tweedie"] {
        let m = train_json(&s, &["--spend-model", kind]);
        let spend = &m["spend"];
        assert_eq!(spend["model"]["kind"], kind);
        assert_eq!(spend["selection"]["chosen"], kind);
        assert_eq!(spend["selection"]["requested"], kind);
        let candidates = spend["selection"]["candidates"].as_array().unwrap();
        assert_eq!(candidates.len(), 3);
        for c in candidates {
            assert!(c["held_out"]["rmse"].as_f64().unwrap() > 0.0, "{c}");
            assert_eq!(c["standard_errors"].as_array().unwrap().len(), c["coefficients"].as_array().unwrap().len() + 1);
        }
        assert_eq!(m["config"]["spend"]["model"], kind);
    }
    // auto: the lowest held-out RMSE among the candidates within 5 points of the best total error.
    let m = train_json(&s, &[]);
    let sel = &m["spend"]["selection"];
    let scores: Vec<(String, f64, f64)> = sel["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let e = &c["held_out"];
            (
                c["model"].as_str().unwrap().to_string(),
                e["rmse"].as_f64().unwrap(),
                e["total_error_pct"].as_f64().unwrap().abs(),
            )
        })
        .collect();
    let best_total = scores.iter().map(|c| c.2).fold(f64::INFINITY, f64::min);
    let want = scores.iter().filter(|c| c.2 <= best_total + 5.0).min_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
    assert_eq!(sel["chosen"], want.0.as_str(), "{sel}");
    assert_eq!(m["spend"]["model"]["kind"], want.0.as_str());
    // The summary shows the comparison and the choice.
    let out =
        s.ok(&["train", "data/m.csv", "--config", "data/g.kam.toml", "--no-snapshot", "--spend-model", "tweedie"]);
    assert!(out.stdout.contains("spend models on held-out moves into the last period"), "{}", out.stdout);
    assert!(out.stdout.contains("spend model: tweedie, as configured"), "{}", out.stdout);
    assert!(out.stdout.contains("std. error"), "{}", out.stdout);
    // A bad value names the flag or the field.
    let bad = s.kam(&["train", "data/m.csv", "--spend-model", "lasso"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("unknown spend model \"lasso\""), "{}", bad.stderr);
    let bad = s.kam(&["train", "data/m.csv", "--tweedie-power", "2.5"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("spend.tweedie_power"), "{}", bad.stderr);
}

#[test]
fn margin_net_of_service_cost_changes_the_value_flows_and_scores() {
    let s = Sandbox::new();
    with_margin(&s);
    let revenue = train_json(&s, &["--spend-model", "ols"]);
    let margin = train_json(
        &s,
        &["--spend-model", "ols", "--value-basis", "margin", "--service-cost-per-period", "3", "--models", "margin"],
    );
    assert_eq!(revenue["spend"]["value_basis"], "revenue");
    assert_eq!(margin["spend"]["value_basis"], "margin net of service cost (3 per period) in every period not lapsed");
    let states: Vec<String> =
        margin["segments"]["states"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
    let m = numbers(&margin["spend"]["spend_by_state"]);
    let rev = numbers(&revenue["spend"]["spend_by_state"]);
    assert_eq!(numbers(&margin["spend"]["revenue_by_state"]), rev);
    for (k, state) in states.iter().enumerate() {
        // A quarter of the revenue (margins rounded to 4 decimals), less 3 unless lapsed.
        let cost = if state.starts_with("lapsed") { 0.0 } else { 3.0 };
        assert!((m[k] - (0.25 * rev[k] - cost)).abs() < 1e-3, "{state}: {} vs {}", m[k], rev[k]);
    }
    // The regression's target is the next period's margin.
    let (mt, rt) = (
        margin["spend"]["model"]["mean_target"].as_f64().unwrap(),
        revenue["spend"]["model"]["mean_target"].as_f64().unwrap(),
    );
    assert!((mt - 0.25 * rt).abs() < 1e-3 * rt, "{mt} vs {rt}");
    // kam score forecasts with the margin model: next-period value below a quarter of revenue's.
    let score = |models: &str| -> f64 {
        let out = s.ok(&["score", "data/m.csv", "--models", models, "--draws", "0", "--out", &format!("{models}.csv")]);
        assert_eq!(out.code, 0);
        let text = std::fs::read_to_string(s.path().join(format!("{models}.csv"))).unwrap();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let col = header.iter().position(|h| *h == "value_horizon").unwrap();
        lines.map(|l| l.split(',').nth(col).unwrap().parse::<f64>().unwrap()).sum()
    };
    let (value_margin, value_revenue) = (score("margin"), score("models"));
    assert!(value_margin < 0.25 * value_revenue, "{value_margin} vs {value_revenue}");
    // No margin column: the basis is refused, naming the field.
    let bad = s.kam(&["train", "data/g.csv", "--config", "data/g.kam.toml", "--value-basis", "margin"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("value.basis = \"margin\" needs a margin column"), "{}", bad.stderr);
}
