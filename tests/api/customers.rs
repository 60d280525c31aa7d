//! Known customers answered from the snapshot stored beside the model, the customers summary,
//! and the dashboard page.

use super::*;

#[tokio::test]
async fn a_known_customer_is_answered_from_the_snapshot_stored_beside_the_model() {
    let s = models_copy();
    let models = s.path().join("models");
    let f = fixture();
    let mut sorted: Vec<&String> = f.scores.keys().collect();
    sorted.sort();
    // B gets a broken snapshot: its activation is refused.
    std::fs::write(models.join(format!("{}.customers.jsonl", f.b)), "{\"customer_id\": \"x\", \"segment\": \"vip\"}\n")
        .unwrap();
    let app = router(state(&models, keys(), Limits::default()));
    let read = [("x-api-key", READ_KEY)];
    for id in sorted.iter().take(25) {
        let (st, r) = send(&app, "GET", &format!("/v1/customers/{id}"), None, vec![], &read).await;
        assert_eq!(st, StatusCode::OK, "{r}");
        assert_eq!(r["model_id"], f.a);
        assert_eq!(r["prediction"], f.scores[*id], "customer {id}");
    }
    let id = sorted[0];
    let (st, r) =
        send(&app, "GET", &format!("/v1/customers/{id}?horizon=2&discount_rate=0.1"), None, vec![], &read).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["prediction"]["horizons"].as_array().unwrap().len(), 2);
    assert_eq!(r["discount_rate"], 0.1);
    for (q, path) in [("horizon=0", "horizon"), ("discount_rate=-1", "discount_rate"), ("horizon=x", "query")] {
        let got = send(&app, "GET", &format!("/v1/customers/{id}?{q}"), None, vec![], &read).await;
        assert_eq!(assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"), [path], "{q}");
    }
    let unknown = send(&app, "GET", "/v1/customers/nobody", None, vec![], &read).await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "not_found");
    let admin = [("x-api-key", ADMIN_KEY)];
    let refused = send(&app, "POST", &format!("/v1/models/{}/activate", f.b), None, vec![], &admin).await;
    assert_error(&refused, StatusCode::UNPROCESSABLE_ENTITY, "unusable_model");
    assert!(refused.1["error"]["message"].as_str().unwrap().contains("line 1"), "{}", refused.1);
    // Without the broken file, B is served, and has no snapshot.
    std::fs::remove_file(models.join(format!("{}.customers.jsonl", f.b))).unwrap();
    let (st, _) = send(&app, "POST", &format!("/v1/models/{}/activate", f.b), None, vec![], &admin).await;
    assert_eq!(st, StatusCode::OK);
    let none = send(&app, "GET", &format!("/v1/customers/{id}"), None, vec![], &read).await;
    assert_error(&none, StatusCode::NOT_FOUND, "not_found");
}

/// The raw response of a GET through the router: status, content type and body text.
async fn get_text(app: &Router, uri: &str, headers: &[(&str, &str)]) -> (StatusCode, String, String) {
    let mut b = Request::builder().method("GET").uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let r = app.clone().oneshot(b.body(Body::empty()).unwrap()).await.unwrap();
    let status = r.status();
    let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let body = axum::body::to_bytes(r.into_body(), usize::MAX).await.unwrap();
    (status, ct, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn the_dashboard_page_is_served_without_a_key_and_carries_the_script_but_no_data() {
    let s = models_copy();
    let app = router(state(&s.path().join("models"), keys(), Limits::default()));
    let (st, ct, html) = get_text(&app, "/", &[]).await;
    assert_eq!(st, StatusCode::OK);
    assert!(ct.starts_with("text/html"), "{ct}");
    assert!(html.contains("data-mode=\"dashboard\" data-auth=\"required\""));
    assert!(html.contains("/v1/model/customers/summary"), "the embedded script fetches the views");
    assert!(html.contains("data-chart=\"sizes\""));
    assert!(!html.contains("type=\"application/json\"") && !html.contains(&fixture().a), "the shell carries no data");
    let (_s2, open) = app_without_keys();
    let (st, _, html) = get_text(&open, "/", &[]).await;
    assert_eq!(st, StatusCode::OK);
    assert!(html.contains("data-auth=\"open\""));
}

#[tokio::test]
async fn the_customer_summary_ranks_key_accounts_by_value_at_risk_behind_the_read_role() {
    let s = models_copy();
    let app = router(state(&s.path().join("models"), keys(), Limits::default()));
    let uri = "/v1/model/customers/summary?horizon=3&top=5";
    assert_error(&get(&app, uri).await, StatusCode::UNAUTHORIZED, "unauthorized");
    let (st, v) = send(&app, "GET", uri, None, vec![], &[("x-api-key", READ_KEY)]).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["model_id"], fixture().a);
    assert_eq!(v["horizon"], 3);
    assert_eq!(v["customers"], fixture().scores.len());
    assert_eq!(v["source"], "snapshot");
    let at_risk = v["at_risk"].as_array().unwrap();
    assert_eq!(at_risk.len(), 5);
    for pair in at_risk.windows(2) {
        assert!(pair[0]["value_at_risk"].as_f64() >= pair[1]["value_at_risk"].as_f64());
    }
    // The top account's value and churn are those of its own forecast.
    let top = at_risk[0]["customer_id"].as_str().unwrap();
    let (_, c) =
        send(&app, "GET", &format!("/v1/customers/{top}?horizon=3"), None, vec![], &[("x-api-key", READ_KEY)]).await;
    let (now, before) = (&c["prediction"]["segment"], &c["prediction"]["previous_segment"]);
    assert!(now == "key" || before == "key", "{now} after {before}");
    assert!(
        (c["prediction"]["value_at_risk"].as_f64().unwrap() - at_risk[0]["value_at_risk"].as_f64().unwrap()).abs()
            < 1e-6
    );
    assert!((c["prediction"]["value_horizon"].as_f64().unwrap() - at_risk[0]["value"].as_f64().unwrap()).abs() < 1e-6);
    assert_eq!(c["prediction"]["horizons"][2]["churn"], at_risk[0]["churn"]);
    let shares = v["concentration"].as_array().unwrap();
    assert_eq!(shares.first().unwrap()["value_share"], 0.0);
    assert_eq!(shares.last().unwrap()["value_share"], 1.0);
    let binned: u64 = v["churn"]["counts"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(binned + v["churn"]["lapsed_now"].as_u64().unwrap(), v["customers"].as_u64().unwrap());
    let bad = send(&app, "GET", "/v1/model/customers/summary?top=5000", None, vec![], &[("x-api-key", READ_KEY)]).await;
    assert_eq!(assert_error(&bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"), ["top"]);
}

#[tokio::test]
async fn known_customers_are_listed_by_family_and_value_at_risk_a_page_at_a_time() {
    let s = models_copy();
    let app = router(state(&s.path().join("models"), keys(), Limits::default()));
    let read = [("x-api-key", READ_KEY)];
    let f = fixture();
    let page = |q: String| {
        let app = app.clone();
        async move { send(&app, "GET", &format!("/v1/customers?{q}"), None, vec![], &read).await }
    };
    // Every key account, 7 per page: each page ordered by value at risk, no repeats, the last
    // without a cursor, together the key accounts of kam score.
    let mut listed: Vec<Value> = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let (st, r) = page(format!("family=key&limit=7{cursor}")).await;
        assert_eq!(st, StatusCode::OK, "{r}");
        assert_eq!(
            (r["model_id"].as_str(), r["sort"].as_str(), r["family"].as_str()),
            (Some(f.a.as_str()), Some("value_at_risk"), Some("key"))
        );
        let got = r["customers"].as_array().unwrap();
        assert!(got.len() <= 7 && !got.is_empty());
        listed.extend(got.iter().cloned());
        pages += 1;
        match r["next_cursor"].as_str() {
            Some(c) => {
                assert_eq!(got.len(), 7);
                cursor = format!("&cursor={c}");
            }
            None => {
                assert_eq!(r["matching"], listed.len());
                break;
            }
        }
    }
    let mut key_ids: Vec<&str> =
        f.scores.iter().filter(|(_, v)| v["segment"] == "key").map(|(id, _)| id.as_str()).collect();
    key_ids.sort_unstable();
    let mut ids: Vec<&str> = listed.iter().map(|c| c["customer_id"].as_str().unwrap()).collect();
    assert!(pages > 1, "{} key accounts", ids.len());
    for pair in listed.windows(2) {
        let (a, b) = (pair[0]["value_at_risk"].as_f64().unwrap(), pair[1]["value_at_risk"].as_f64().unwrap());
        assert!(a > b || (a == b && pair[0]["customer_id"].as_str() < pair[1]["customer_id"].as_str()), "{pair:?}");
    }
    ids.sort_unstable();
    assert_eq!(ids, key_ids);
    // Each line is the customer's own forecast.
    let first = &listed[0];
    assert_eq!((first["segment"].as_str(), first["family"].as_str()), (Some("key"), Some("key")));
    let id = first["customer_id"].as_str().unwrap();
    let one = &f.scores[id];
    assert!((one["value_horizon"].as_f64().unwrap() - first["value"].as_f64().unwrap()).abs() < 2e-6);
    assert_eq!(one["horizons"][3]["churn"], first["churn"]);

    // By id, by state, everything on one page.
    let (_, by_id) = page("sort=id&limit=1000&horizon=2".into()).await;
    let all: Vec<&str> =
        by_id["customers"].as_array().unwrap().iter().map(|c| c["customer_id"].as_str().unwrap()).collect();
    let mut want: Vec<&str> = f.scores.keys().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(by_id["matching"], want.len());
    assert_eq!(all, want[..all.len().min(1000)]);
    let (_, dormant) = page("segment=dormant&sort=churn".into()).await;
    assert!(dormant["customers"].as_array().unwrap().iter().all(|c| c["segment"] == "dormant"));
    assert_eq!(dormant["matching"], f.scores.values().filter(|v| v["segment"] == "dormant").count());

    // The accounts most likely gone first: by 1 − P(alive), each with its P(alive) as kam score gives it.
    let (st, gone) = page("family=key&sort=dropout&limit=50".into()).await;
    assert_eq!(st, StatusCode::OK, "{gone}");
    let p: Vec<f64> = gone["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["p_alive"].as_f64().unwrap_or_else(|| panic!("{c}")))
        .collect();
    assert!(p.windows(2).all(|w| w[0] <= w[1]) && p[0] < p[p.len() - 1], "{p:?}");
    let first = &gone["customers"][0];
    assert_eq!(first["p_alive"], f.scores[first["customer_id"].as_str().unwrap()]["p_alive"]);

    // Bad filters, sorts, limits and cursors, each by name; a cursor of other filters is refused.
    let (_, p1) = page("family=key&limit=2".into()).await;
    let other = format!("family=core&cursor={}", p1["next_cursor"].as_str().unwrap());
    for (q, field) in [
        ("family=vip".to_string(), "family"),
        ("segment=vip".into(), "segment"),
        ("sort=size".into(), "sort"),
        ("limit=0".into(), "limit"),
        ("limit=1001".into(), "limit"),
        ("cursor=zz".into(), "cursor"),
        (other, "cursor"),
        ("horizon=0".into(), "horizon"),
        ("colour=red".into(), "query"),
    ] {
        let got = page(q.clone()).await;
        assert_eq!(assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"), [field], "{q}");
    }
    assert_error(&get(&app, "/v1/customers").await, StatusCode::UNAUTHORIZED, "unauthorized");
}
