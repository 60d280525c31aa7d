//! Issue 13, items 3 and 5: every request's work and response are bounded.

use super::*;

/// A far-future `as_of` or transaction date (years up to 262142 parse as dates) is refused by
/// path before any work, instead of building a panel of tens of thousands of periods.
#[tokio::test]
async fn dates_far_outside_the_models_range_are_422_by_path() {
    let (_s, app) = app();
    let id = fixture().transactions.keys().next().unwrap().clone();
    let mut c = by_transactions(&id);
    let got = post(&app, "/v1/predict", json!({"customers": [c.clone()], "as_of": "+262142-12-31"})).await;
    assert_eq!(assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"), ["as_of"]);
    let got = post(&app, "/v1/predict", json!({"customers": [c.clone()], "as_of": "1900-01-31"})).await;
    assert_eq!(assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"), ["as_of"]);
    c["transactions"][0]["date"] = json!("9999-12-31");
    let got = post(&app, "/v1/predict", json!({"customers": [c]})).await;
    assert_eq!(
        assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        ["customers[0].transactions[0].date"]
    );
    // A date a year after the model's as-of date is still fine.
    let ok = by_transactions(&id);
    let got = post(&app, "/v1/predict", json!({"customers": [ok], "as_of": "2025-12-31"})).await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
}

/// A small request cannot make the server build a multi-GB answer: the response size is
/// estimated from the first customer and refused over `max_response_bytes`.
#[tokio::test]
async fn a_response_over_the_size_cap_is_refused_before_it_is_built() {
    let s = models_copy();
    let limits = Limits { max_response_bytes: 8 << 20, ..Limits::default() };
    let app = router(state(&s.path().join("models"), ApiKeys::none(), limits));
    let customers: Vec<Value> = (0..2_500).map(|i| json!({"id": format!("C{i}"), "segment": "key"})).collect();
    let got = post(&app, "/v1/predict", json!({"customers": customers, "horizon": 120})).await;
    assert_eq!(assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"), ["customers"]);
    assert!(got.1["error"]["message"].as_str().unwrap().contains("limit of 8 MB"), "{}", got.1);
    // The same customers at the default horizon fit.
    let got = post(&app, "/v1/predict", json!({"customers": customers, "intervals": false})).await;
    assert_eq!(got.0, StatusCode::OK);
    assert_eq!(got.1["predictions"].as_array().unwrap().len(), 2_500);
}

/// Issue 13, item 11: a huge `periods_since_purchase` does not wrap `recency_days` around to a
/// recent purchase.
#[tokio::test]
async fn recency_saturates_instead_of_wrapping() {
    let (_s, app) = app();
    let c = json!({"id": "X", "purchases": 0, "monetary": 0, "tenure_periods": 200_000_000u32,
                   "periods_since_purchase": 200_000_000u32});
    let got = post(&app, "/v1/predict", json!({"customers": [c], "intervals": false})).await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    let recency = got.1["predictions"][0]["rfm"]["recency_days"].as_u64().unwrap();
    assert!(recency >= 200_000_000, "recency_days {recency}");
}
