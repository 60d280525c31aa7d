//! `POST /v1/predict`: by transactions (equal to `kam score`), by features, ids, invalid values.

use super::*;

#[tokio::test]
async fn a_prediction_by_transactions_equals_kam_scores_row_for_that_customer() {
    let (_s, app) = app();
    let f = fixture();
    // One customer of every segment (and so with and without a previous segment), plus the first 40.
    let mut ids: Vec<String> = Vec::new();
    let mut sorted: Vec<&String> = f.scores.keys().collect();
    sorted.sort();
    for seg in ["new", "key", "core", "occasional", "dormant", "lapsed"] {
        let id =
            sorted.iter().find(|id| f.scores[**id]["segment"] == seg).unwrap_or_else(|| panic!("no {seg} customer"));
        ids.push(id.to_string());
    }
    ids.extend(sorted.iter().take(40).map(|s| s.to_string()).filter(|s| !ids.contains(s)).collect::<Vec<_>>());
    let with_return = sorted.iter().find(|id| f.transactions[**id].iter().any(|(_, a)| *a < 0.0));
    if let Some(id) = with_return
        && !ids.contains(id)
    {
        ids.push(id.to_string());
    }
    let customers: Vec<Value> = ids.iter().map(|id| by_transactions(id)).collect();
    let (st, r) =
        post(&app, "/v1/predict", json!({"customers": customers, "horizon": 4, "discount_rate": 0.025})).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["model_id"], f.a);
    assert_eq!(r["as_of"], "2024-12-31");
    let predictions = r["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), ids.len());
    for (id, p) in ids.iter().zip(predictions) {
        assert_eq!(p, &f.scores[id], "customer {id}");
    }
}

#[tokio::test]
async fn a_prediction_by_features_takes_or_derives_the_segment_and_lists_defaults() {
    let (_s, app) = app();
    let f = fixture();
    // kam score's own RFM values and segment, given as features, give its numbers.
    let mut sorted: Vec<&String> = f.scores.keys().collect();
    sorted.sort();
    let key = f.scores[*sorted.iter().find(|id| f.scores[**id]["segment"] == "key").unwrap()].clone();
    let rfm = &key["rfm"];
    let mut given = json!({"id": "k1", "segment": "key"});
    for k in ["purchases", "spend", "recency_days", "frequency", "monetary", "tenure_periods"] {
        given[k] = rfm[k].clone();
    }
    // The same customer given by features alone: the chain's numbers only.
    let mut alone = given.clone();
    alone["id"] = json!("k0");
    // With its purchase history beside the features, every number is kam score's.
    given["purchase_history"] = key["purchase_history"].clone();
    if let Some(r) = key.get("recent_spend") {
        given["recent_spend"] = r.clone();
    }
    let customers = json!([
        given,
        // Derived with the model's cut-points (fixed: key ≥ 500, core ≥ 100).
        {"id": "d1", "tenure_periods": 3, "purchases": 2, "monetary": 650.0},
        {"id": "d2", "tenure_periods": 3, "purchases": 1, "monetary": 150.0},
        {"id": "d3", "tenure_periods": 0, "purchases": 1, "monetary": 150.0},
        {"id": "d4", "tenure_periods": 5, "purchases": 0, "monetary": 0.0, "periods_since_purchase": 1},
        {"id": "d5", "tenure_periods": 5, "purchases": 0, "monetary": 0.0, "periods_since_purchase": 3},
        {"id": "s1", "segment": "lapsed"},
        alone,
    ]);
    let (st, r) = post(&app, "/v1/predict", json!({"customers": customers})).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let p = r["predictions"].as_array().unwrap();
    let mut same = p[0].clone();
    for k in ["customer_id", "segment_from", "defaulted", "previous_segment"] {
        same.as_object_mut().unwrap().remove(k);
    }
    let mut want = key.clone();
    for k in ["customer_id", "previous_segment"] {
        want.as_object_mut().unwrap().remove(k);
    }
    // Equal but for the last printed digit: the history's mean spend came back rounded to 6
    // decimals.
    assert_close(&same, &want, "");
    // Alone, the chain's numbers are the same (the spend beyond them is the blend's, which needs
    // the history); the BTYD ones are null.
    let chain_only = |h: &Value| {
        h.as_array()
            .unwrap()
            .iter()
            .map(|x| [&x["distribution"], &x["churn"], &x["p_key"], &x["most_likely"]].map(Value::clone))
            .collect::<Vec<_>>()
    };
    let k0 = &p[7];
    assert_eq!(chain_only(&k0["horizons"]), chain_only(&key["horizons"]));
    assert_eq!(k0["horizons"][0]["expected_spend"], key["next_spend"]);
    assert!(key["p_alive"].as_f64().is_some() && key["horizons"][0]["expected_purchases"].as_f64().is_some());
    for field in ["p_alive", "value_at_risk", "value_if_retained"] {
        assert!(k0[field].is_null(), "{field}");
    }
    for field in ["expected_purchases", "p_no_purchase", "p_leave_tier", "p_key_own"] {
        assert!(k0["horizons"][0][field].is_null(), "{field}");
    }
    assert!(k0.get("purchase_history").is_none());
    assert_eq!(k0["defaulted"], json!(["periods_since_purchase"]));
    let segments: Vec<&str> = p.iter().map(|x| x["segment"].as_str().unwrap()).collect();
    assert_eq!(segments, ["key", "key", "core", "new", "dormant", "lapsed", "lapsed", "key"]);
    assert_eq!(p[0]["segment_from"], "given");
    assert_eq!(p[1]["segment_from"], "derived");
    assert_eq!(p[1]["defaulted"], json!(["frequency", "periods_since_purchase", "recency_days", "spend"]));
    let s1 = &p[6];
    assert_eq!(s1["rfm"]["purchases"], 0);
    assert_eq!(s1["rfm"]["tenure_periods"], 2);
    assert_eq!(s1["horizons"][0]["churn"], 1.0);
    assert!(s1["defaulted"].as_array().unwrap().contains(&json!("recency_days")));
}

#[tokio::test]
async fn customer_ids_may_be_integers_and_come_back_as_strings() {
    let (_s, app) = app();
    let f = fixture();
    let (st, r) = post(
        &app,
        "/v1/predict",
        json!({"customers": [{"id": 42, "segment": "key"}, {"id": -7, "segment": "core"}, {"id": "x", "segment": "key"}]}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let ids: Vec<&Value> = r["predictions"].as_array().unwrap().iter().map(|p| &p["customer_id"]).collect();
    assert_eq!(ids, [&json!("42"), &json!("-7"), &json!("x")]);
    assert_eq!(r["predictions"][0]["horizons"], r["predictions"][2]["horizons"]);
    // By transactions too: a numeric id is the customer with those digits.
    let id = f.scores.keys().min().unwrap().clone();
    let mut numeric = by_transactions(&id);
    numeric["id"] = json!(9_007_199_254_740_993_u64);
    let (st, r) = post(&app, "/v1/predict", json!({"customers": [numeric]})).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["predictions"][0]["customer_id"], "9007199254740993");
    assert_eq!(r["predictions"][0]["horizons"], f.scores[&id]["horizons"]);
}

#[tokio::test]
async fn invalid_values_are_422_naming_the_json_path() {
    let (_s, app) = app();
    let ok = json!({"id": "a", "segment": "key"});
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"customers": [ok, {"id": "b", "segment": "key"}, {"id": "c", "segment": "core"}, {"id": "d", "segment": "vip"}]}),
            vec!["customers[3].segment"],
        ),
        (json!({"customers": [ok], "horizon": 0}), vec!["horizon"]),
        (json!({"customers": [ok], "horizon": 121}), vec!["horizon"]),
        (json!({"customers": [ok], "discount_rate": -0.1}), vec!["discount_rate"]),
        (json!({"customers": []}), vec!["customers"]),
        (json!({"customers": [ok, {"id": "a", "segment": "core"}]}), vec!["customers[1].id"]),
        (json!({"customers": [{"id": "b"}]}), vec!["customers[0].segment"]),
        (
            json!({"customers": [{"id": "b", "tenure_periods": 2, "purchases": 0, "monetary": 0.0}]}),
            vec!["customers[0].segment"],
        ),
        (
            json!({"customers": [{"id": "b", "segment": "key", "transactions": [{"date": "2024-01-01", "amount": 1.0}]}]}),
            vec!["customers[0].segment"],
        ),
        (json!({"customers": [{"id": "b", "transactions": []}]}), vec!["customers[0].transactions"]),
        (
            json!({"customers": [{"id": "b", "transactions": [{"date": "2024-13-01", "amount": 1.0}]}]}),
            vec!["customers[0].transactions[0].date"],
        ),
        (
            json!({"customers": [{"id": "b", "segment": "key", "attributes": {"size": 3.0}}]}),
            vec!["customers[0].attributes.size"],
        ),
        (json!({"customers": [{"id": "b", "segment": "key", "recency_days": -1}]}), vec!["customers[0].recency_days"]),
        (json!({"customers": [{"id": "b", "segment": "key", "colour": "red"}]}), vec!["customers[0].colour"]),
        (json!({"customers": [{"segment": "key"}]}), vec!["customers[0]"]),
        (json!({"customers": [{"id": 1.5, "segment": "key"}]}), vec!["customers[0].id"]),
        (json!({"customers": [{"id": true, "segment": "key"}]}), vec!["customers[0].id"]),
        (
            json!({"customers": [{"id": 42, "segment": "key"}, {"id": "42", "segment": "core"}]}),
            vec!["customers[1].id"],
        ),
        (json!({"customers": "all"}), vec!["customers"]),
    ];
    for (body, paths) in cases {
        let got = post(&app, "/v1/predict", body.clone()).await;
        assert_eq!(assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"), paths, "{body}");
    }
    // Several problems at once, each with its path.
    let got = post(
        &app,
        "/v1/predict",
        json!({"customers": [{"id": "a", "segment": "x"}, {"id": "b", "segment": "y"}], "horizon": 0}),
    )
    .await;
    assert_eq!(
        assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        ["horizon", "customers[0].segment", "customers[1].segment"]
    );
    // NaN, as Python's json.dumps writes it.
    let got = send(
        &app,
        "POST",
        "/v1/predict",
        Some("application/json"),
        br#"{"customers": [{"id": "a", "segment": "key", "monetary": NaN}]}"#.to_vec(),
        &[],
    )
    .await;
    assert_eq!(assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"), ["customers[0].monetary"]);
    // More than 10,000 customers.
    let many: Vec<Value> = (0..10_001).map(|i| json!({"id": format!("c{i}"), "segment": "key"})).collect();
    let got = post(&app, "/v1/predict", json!({"customers": many})).await;
    assert_eq!(assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"), ["customers"]);
}

/// `a` and `b` are the same JSON, numbers within 1e-8 relative (1e-6 absolute).
fn assert_close(a: &Value, b: &Value, path: &str) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let (mut kx, mut ky): (Vec<_>, Vec<_>) = (x.keys().collect(), y.keys().collect());
            kx.sort();
            ky.sort();
            assert_eq!(kx, ky, "keys at {path:?}");
            for k in kx {
                assert_close(&x[k], &y[k], &format!("{path}/{k}"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "length at {path:?}");
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                assert_close(p, q, &format!("{path}[{i}]"));
            }
        }
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-6 + 1e-8 * x.abs().max(y.abs()), "{path}: {x} vs {y}");
        }
        _ => assert_eq!(a, b, "at {path:?}"),
    }
}
