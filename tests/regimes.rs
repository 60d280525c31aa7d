//! `kam evaluate` with the defaults on businesses unlike CDNOW (`kam generate --regime`): BTYD
//! customers like CDNOW's, weekly buyers with six months of history, 600 B2B accounts ordering
//! quarterly for years, and purchase rates and prices growing over five years. On each the
//! model must beat "nothing changes" (next segment, churn, spend) and the segment averages, rank
//! churn as well as Pareto/NBD (the true model's form on three of the four, near it on the
//! fourth), and forecast the holdout total within 15%. The README's regimes table holds the
//! figures these bounds guard.

use serde_json::Value;

fn evaluate(regime: &str, customers: u32, calibration_end: &str) -> Value {
    let s = crate::util::Sandbox::new();
    let data = s.path().join(format!("{regime}.csv"));
    let customers = customers.to_string();
    let data = data.to_str().unwrap();
    s.ok(&["generate", "--regime", regime, "--customers", &customers, "--seed", "7", "--out", data]);
    let out = s.ok(&["evaluate", data, "--calibration-end", calibration_end, "--json"]);
    serde_json::from_str(&out.stdout).unwrap()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn the_defaults_forecast_four_kinds_of_business_beside_the_baselines() {
    for (regime, customers, calibration_end) in [
        ("btyd", 10_000, "2022-09-30"),
        ("weekly", 10_000, "2024-06-30"),
        ("b2b", 600, "2024-06-30"),
        ("trend", 10_000, "2024-06-30"),
    ] {
        let ev = evaluate(regime, customers, calibration_end);
        let (np, spend, moves) = (&ev["no_purchase"], &ev["holdout_spend"], &ev["next_segment"]);
        let moves_ll = num(&moves["model"]["log_loss"]);
        assert!(moves_ll < num(&moves["persistence"]["log_loss"]) / 2.0, "{regime}: next segment {moves}");
        let at = |table: &Value, column: &str, metric: &str| num(&table[column][metric]);
        let auc = at(np, "model", "auc");
        assert!(auc > at(np, "persistence", "auc") + 0.02, "{regime}: {np}");
        assert!(auc > at(np, "segment_average", "auc") - 0.005, "{regime}: {np}");
        assert!(auc > at(np, "pareto_nbd", "auc") - 0.015, "{regime}: {np}");
        let brier = at(np, "model", "brier");
        assert!(brier < at(np, "persistence", "brier") && brier < at(np, "chain", "brier") + 0.003, "{regime}: {np}");
        let mae = at(spend, "model", "mae");
        assert!(
            mae < at(spend, "persistence", "mae") && mae < at(spend, "segment_average", "mae"),
            "{regime}: {spend}"
        );
        let total = at(spend, "model", "total_error_pct");
        assert!(total.abs() < 15.0, "{regime}: total error {total:+.1}%");
        // Six months of history still set a blend, on the three months before the calibration end.
        let blend = &ev["blend"];
        assert!(blend.is_object(), "{regime}: no blend: {ev}");
        if regime == "weekly" {
            assert_eq!(blend["holdout_periods"], 3, "{blend}");
        }
    }
}
