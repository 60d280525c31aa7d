use crate::util::{SMALL, Sandbox};

fn matrix(v: &serde_json::Value) -> Vec<Vec<f64>> {
    v.as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()).collect()
}

#[test]
fn training_recovers_the_planted_chain_of_50000_generated_customers() {
    let s = Sandbox::new();
    s.ok(&["generate", "--customers", "50000", "--seed", "7", "--out", "data/g.csv"]);
    let out = s.ok(&["train", "data/g.csv", "--config", "data/g.kam.toml", "--json"]);
    let out: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let truth = s.json("data/g.truth.json");
    let model = &out["model"];
    assert_eq!(model["segments"]["states"], truth["states"]);
    // The states kam derives are exactly the simulated ones.
    assert_eq!(model["transitions"]["model"]["counts"], truth["realized_counts"]);
    assert_eq!(model["segments"]["sizes_by_period"], truth["realized_sizes"]);
    let got = matrix(&model["transitions"]["model"]["matrix"]);
    let planted = matrix(&truth["matrix"]);
    let counts = matrix(&model["transitions"]["model"]["counts"]);
    let mut checked = 0;
    for i in 0..planted.len() {
        let moves: f64 = counts[i].iter().sum();
        if moves < 2000.0 {
            continue;
        }
        for j in 0..planted.len() {
            assert!(
                (got[i][j] - planted[i][j]).abs() <= 0.01,
                "cell {i}->{j}: estimated {} vs planted {} ({moves} moves)",
                got[i][j],
                planted[i][j]
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 36, "every row has at least 2,000 moves");
}

#[test]
fn the_same_data_and_configuration_give_byte_identical_artifacts() {
    let s = Sandbox::new();
    s.ok(&["generate", "--customers", "40000", "--seed", "11", "--out", "a/g.csv"]);
    s.ok(&["generate", "--customers", "40000", "--seed", "11", "--out", "b/g.csv"]);
    assert_eq!(std::fs::read(s.path().join("a/g.csv")).unwrap(), std::fs::read(s.path().join("b/g.csv")).unwrap());
    let a = s.ok(&["train", "a/g.csv", "--models", "ma", "--json"]);
    // On one thread: the same bytes, the customer snapshot too (40,000 customers: several of its
    // chunks), whatever the core count.
    let b = s.kam_with(&["train", "b/g.csv", "--models", "mb", "--json"], &[("RAYON_NUM_THREADS", "1")]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let id_a = serde_json::from_str::<serde_json::Value>(&a.stdout).unwrap()["model_id"].clone();
    let id_b = serde_json::from_str::<serde_json::Value>(&b.stdout).unwrap()["model_id"].clone();
    assert_eq!(id_a, id_b);
    for name in [format!("{}.json", id_a.as_str().unwrap()), format!("{}.customers.jsonl", id_a.as_str().unwrap())] {
        let bytes_a = std::fs::read(s.path().join("ma").join(&name)).unwrap();
        let bytes_b = std::fs::read(s.path().join("mb").join(&name)).unwrap();
        assert!(bytes_a == bytes_b, "{name} differs");
    }
    // Training again into the same store finds the model already there.
    let again = s.ok(&["train", "a/g.csv", "--models", "ma"]);
    assert!(again.stdout.contains("already stored"), "{}", again.stdout);
}

#[test]
fn the_cdnow_layout_trains_with_flags_alone() {
    let s = Sandbox::new();
    s.file(
        "cdnow.txt",
        "00001 19970101 1 11.77\n00002 19970112 1 12.00\n00002 19970112 5 77.00\n00003 19970102 2 20.76\n\
         00003 19970330 2 20.76\n00003 19970402 2 19.54\n00003 19971115 5 57.45\n00004 19970101 2 29.33\n\
         00004 19970118 2 29.73\n00004 19970802 1 14.96\n00004 19971212 2 26.48\n00005 19970101 2 29.33\n\
         00005 19980630 1 10.00\n",
    );
    let out = s.ok(&["train", "cdnow.txt", "--amount-col", "4", "--period", "quarter", "--json"]);
    let out: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let m = &out["model"];
    assert_eq!(m["data"]["customers"], 5);
    assert_eq!(m["data"]["rows"], 13);
    assert_eq!(m["periods"]["as_of"], "1998-06-30");
    assert_eq!(m["periods"]["spans"].as_array().unwrap().len(), 6);
    // Customer 00002 bought twice on one day: one occasion of 89.00 in 1997Q1.
    assert_eq!(m["segments"]["sizes_by_period"][0][0], 5);
}

#[test]
fn parquet_and_csv_of_the_same_data_give_the_same_fit() {
    let s = Sandbox::new();
    s.ok(&["generate", "--customers", "2000", "--seed", "3", "--out", "g.csv"]);
    s.ok(&["generate", "--customers", "2000", "--seed", "3", "--out", "g.parquet"]);
    let a: serde_json::Value = serde_json::from_str(&s.ok(&["train", "g.csv", "--json"]).stdout).unwrap();
    let b: serde_json::Value = serde_json::from_str(&s.ok(&["train", "g.parquet", "--json"]).stdout).unwrap();
    // One activity table, so one model, byte for byte.
    assert_eq!(a["model"], b["model"]);
}

#[test]
fn a_trailing_partial_period_is_left_out_and_said_so() {
    let s = Sandbox::new();
    let mut text = SMALL.to_string();
    text.push_str("a,2025-01-15,10\n");
    s.file("t.csv", &text);
    let r = s.ok(&["train", "t.csv", "--period", "quarter"]);
    assert!(
        r.stdout.contains("the trailing partial period 2025-01-01..2025-03-31 (data end 2025-01-15) was left out"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("as of 2024-12-31; 1 rows after it left out"), "{}", r.stdout);
}

#[test]
fn numeric_customer_attributes_enter_the_spend_regression() {
    let s = Sandbox::new();
    s.file("t.csv", SMALL);
    s.file("customers.csv", "customer_id,employees,region\na,120,north\nb,4,south\nc,,east\n");
    let r = s.ok(&["train", "t.csv", "--customers", "customers.csv", "--json"]);
    assert!(r.stderr.contains("non-numeric attribute columns not used: region"), "{}", r.stderr);
    let out: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let spend = &out["model"]["spend"];
    assert_eq!(spend["model"]["design"]["attributes"], serde_json::json!(["employees"]));
    assert_eq!(spend["attribute_means"], serde_json::json!([62.0]));
    assert_eq!(spend["customers_without_attributes"], 2); // c (empty cell) and d (no row)
}

#[test]
fn the_bundled_default_model_is_what_training_on_the_bundled_sample_gives() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let s = Sandbox::new();
    let data = root.join("data/sample.csv");
    let config = root.join("data/sample.kam.toml");
    let out = s.ok(&[
        "train",
        data.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--backtest-last",
        "4",
        "--json",
    ]);
    let id = serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap()["model_id"].as_str().unwrap().to_string();
    let current = std::fs::read_to_string(root.join("models/CURRENT")).unwrap();
    assert_eq!(current.trim(), id, "models/ is stale: retrain with the README's first command");
    let name = format!("{id}.json");
    assert_eq!(
        std::fs::read(s.path().join("models").join(&name)).unwrap(),
        std::fs::read(root.join("models").join(&name)).unwrap()
    );
}

#[test]
fn a_backtest_run_with_training_is_stored_in_the_artifact() {
    let s = Sandbox::new();
    s.ok(&["generate", "--customers", "3000", "--seed", "4", "--out", "g.csv"]);
    let out = s.ok(&["train", "g.csv", "--config", "g.kam.toml", "--backtest-last", "3"]);
    assert!(
        out.stdout.contains("backtest: trained through 2024-03-31, holdout 2024-04-01..2024-12-31 (3 periods)"),
        "{}",
        out.stdout
    );
    let shown: serde_json::Value =
        serde_json::from_str(&s.ok(&["models", "show", "current", "--json"]).stdout).unwrap();
    let bt = &shown["backtest"];
    assert_eq!(bt["holdout_periods"], 3);
    assert!(bt["no_purchase"]["model"]["auc"].as_f64().unwrap() > 0.5);
    let r = s.kam(&["train", "g.csv", "--backtest-last", "12", "--period", "quarter"]);
    assert!(r.stderr.contains("--backtest-last 12: the model has 12 periods"), "{}", r.stderr);
}
