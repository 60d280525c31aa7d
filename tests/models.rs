use crate::util::{SMALL, Sandbox};

#[test]
fn models_can_be_listed_shown_and_activated() {
    let s = Sandbox::new();
    s.file("a.csv", SMALL);
    let first = s.ok(&["train", "a.csv", "--json"]);
    let first: serde_json::Value = serde_json::from_str(&first.stdout).unwrap();
    let id1 = first["model_id"].as_str().unwrap().to_string();
    let second = s.ok(&["train", "a.csv", "--window", "1", "--no-activate", "--json"]);
    let second: serde_json::Value = serde_json::from_str(&second.stdout).unwrap();
    let id2 = second["model_id"].as_str().unwrap().to_string();
    assert_ne!(id1, id2);
    assert_eq!(std::fs::read_to_string(s.path().join("models/CURRENT")).unwrap().trim(), id1);

    let list = s.ok(&["models", "list"]).stdout;
    assert!(list.contains(&format!("* {id1}")) && list.contains(&format!("  {id2}")), "{list}");

    let shown: serde_json::Value = serde_json::from_str(&s.ok(&["models", "show", &id2]).stdout).unwrap();
    assert_eq!(shown["id"], id2.as_str());
    assert_eq!(shown["config"]["segments"]["window"], 1);

    s.ok(&["models", "activate", &id2]);
    assert_eq!(std::fs::read_to_string(s.path().join("models/CURRENT")).unwrap().trim(), id2);
    let current: serde_json::Value = serde_json::from_str(&s.ok(&["models", "show", "current"]).stdout).unwrap();
    assert_eq!(current["id"], id2.as_str());
}

#[test]
fn an_unknown_or_damaged_model_is_refused_and_the_active_one_kept() {
    let s = Sandbox::new();
    s.file("a.csv", SMALL);
    let out: serde_json::Value = serde_json::from_str(&s.ok(&["train", "a.csv", "--json"]).stdout).unwrap();
    let id = out["model_id"].as_str().unwrap().to_string();

    let r = s.kam(&["models", "activate", "2024-12-31-000000000000"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("no model \"2024-12-31-000000000000\""), "{}", r.stderr);

    // A copy whose content was edited no longer matches its id.
    let text = std::fs::read_to_string(s.path().join(format!("models/{id}.json"))).unwrap();
    let edited = text.replacen("\"prior\": 0.5", "\"prior\": 0.25", 1);
    assert_ne!(edited, text);
    let fake = "2024-12-31-aaaaaaaaaaaa";
    std::fs::write(s.path().join(format!("models/{fake}.json")), edited.replace(&id, fake)).unwrap();
    let r = s.kam(&["models", "activate", fake]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("does not match its id"), "{}", r.stderr);

    // A half-written file is not a model.
    std::fs::write(s.path().join("models/2024-12-31-bbbbbbbbbbbb.json"), &text[..text.len() / 2]).unwrap();
    let r = s.kam(&["models", "activate", "2024-12-31-bbbbbbbbbbbb"]);
    assert!(r.stderr.contains("is not a valid kam model"), "{}", r.stderr);
    let list = s.ok(&["models", "list"]).stdout;
    assert!(list.contains("UNREADABLE"), "{list}");

    assert_eq!(std::fs::read_to_string(s.path().join("models/CURRENT")).unwrap().trim(), id);
}

#[test]
fn a_self_consistent_but_invalid_model_is_refused() {
    let s = Sandbox::new();
    s.file("a.csv", SMALL);
    let out: serde_json::Value = serde_json::from_str(&s.ok(&["train", "a.csv", "--json"]).stdout).unwrap();
    let id = out["model_id"].as_str().unwrap().to_string();
    let text = std::fs::read_to_string(s.path().join(format!("models/{id}.json"))).unwrap();
    // A matrix row that no longer sums to 1, stored under the id its new content gives.
    let mut bad: kam::model::artifact::ModelArtifact = serde_json::from_str(&text).unwrap();
    let mut v = serde_json::to_value(&bad.transitions.model).unwrap();
    v["matrix"][1][1] = serde_json::json!(5.0);
    bad.transitions.model = serde_json::from_value(v).unwrap();
    let bad_id = kam::store::model_id(&bad);
    bad.id = bad_id.clone();
    std::fs::write(s.path().join(format!("models/{bad_id}.json")), kam::store::to_json(&bad)).unwrap();
    let r = s.kam(&["models", "activate", &bad_id]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("not a probability distribution"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(s.path().join("models/CURRENT")).unwrap().trim(), id);
}
