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
    let line2 = list.lines().find(|l| l.contains(&id2)).unwrap();
    assert!(line2.contains(" W1 ") && line2.contains("spend ") && line2.contains("no backtest"), "{line2}");

    let shown: serde_json::Value = serde_json::from_str(&s.ok(&["models", "show", &id2, "--json"]).stdout).unwrap();
    assert_eq!(shown["id"], id2.as_str());
    assert_eq!(shown["config"]["segments"]["window"], 1);
    // The description a person reads, and two models side by side with their differences marked.
    let described = s.ok(&["models", "show", &id2]).stdout;
    for want in ["id ".to_string(), "window ".into(), "1 period\n".into(), "spend model ".into(), "backtest ".into()] {
        assert!(described.contains(&want), "{want:?} in {described}");
    }
    let third = s.ok(&["train", "a.csv", "--backtest-last", "1", "--no-activate", "--json"]);
    let id3 =
        serde_json::from_str::<serde_json::Value>(&third.stdout).unwrap()["model_id"].as_str().unwrap().to_string();
    let compared: serde_json::Value =
        serde_json::from_str(&s.ok(&["models", "compare", &id2, &id3, "--json"]).stdout).unwrap();
    let line = |what: &str| compared["lines"].as_array().unwrap().iter().find(|l| l["what"] == what).cloned().unwrap();
    assert_eq!((line("window")["a"].as_str(), line("window")["differs"].as_bool()), (Some("1 period"), Some(true)));
    assert_eq!(line("data fingerprint")["differs"], false);
    assert!(line("no-purchase AUC")["b"].as_str().unwrap().contains("persistence"), "{compared}");
    assert_eq!(line("no-purchase AUC")["a"], "—");
    let table = s.ok(&["models", "compare", &id2, &id3]).stdout;
    assert!(table.lines().any(|l| l.starts_with("≠ window")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("  data")), "{table}");
    assert!(s.kam(&["models", "compare", &id2, "2024-12-31-000000000000"]).code != 0);

    s.ok(&["models", "activate", &id2]);
    assert_eq!(std::fs::read_to_string(s.path().join("models/CURRENT")).unwrap().trim(), id2);
    let current: serde_json::Value =
        serde_json::from_str(&s.ok(&["models", "show", "current", "--json"]).stdout).unwrap();
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

/// Issue 13, item 11: a broken `CURRENT` does not hide the list; a FIFO under a model's name is
/// refused instead of blocking; temporary files of a process killed mid-write are removed;
/// concurrent writes of the same model never share a temporary file.
#[test]
fn the_store_survives_a_broken_current_fifos_stale_temp_files_and_concurrent_writes() {
    let s = Sandbox::new();
    s.file("a.csv", SMALL);
    s.ok(&["train", "a.csv"]);
    let models = s.path().join("models");
    let store = kam::store::ModelStore::new(&models);
    let id = store.current().unwrap().unwrap();

    // CURRENT replaced by a directory: the list still answers, with no model active.
    std::fs::remove_file(models.join("CURRENT")).unwrap();
    std::fs::create_dir(models.join("CURRENT")).unwrap();
    let list = s.ok(&["models", "list"]).stdout;
    assert!(list.contains(&id) && !list.contains(&format!("* {id}")), "{list}");
    std::fs::remove_dir(models.join("CURRENT")).unwrap();
    store.activate(&id).unwrap();

    // A FIFO named like a model.
    #[cfg(unix)]
    {
        let fifo = models.join("2024-12-31-0123456789ab.json");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let listed = store.list().unwrap();
        let f = listed.iter().find(|m| m.id == "2024-12-31-0123456789ab").unwrap();
        assert_eq!(f.problem.as_deref(), Some("not a valid kam model: not a regular file"));
        std::fs::remove_file(&fifo).unwrap();
    }

    // A temporary file of a process that no longer runs goes; one of this process stays.
    let dead = models.join(format!(".{id}.json.4000000000.0.tmp"));
    let mine = models.join(format!(".{id}.json.{}.99.tmp", std::process::id()));
    std::fs::write(&dead, "half a model").unwrap();
    std::fs::write(&mine, "in progress").unwrap();
    // So do uploads to training jobs (beside the job records).
    std::fs::create_dir_all(models.join("jobs")).unwrap();
    let dead_upload = models.join("jobs/.upload-4000000000-aB3xYz.csv");
    let my_upload = models.join(format!("jobs/.upload-{}-aB3xYz.parquet", std::process::id()));
    std::fs::write(&dead_upload, "a,b").unwrap();
    std::fs::write(&my_upload, "PAR1").unwrap();
    assert_eq!(store.remove_stale_temp_files(), 2);
    assert!(!dead.exists() && mine.exists());
    assert!(!dead_upload.exists() && my_upload.exists());
    std::fs::remove_file(&mine).unwrap();
    std::fs::remove_file(&my_upload).unwrap();

    // Twenty threads saving the same model at once all succeed, and leave no temporary file.
    let artifact = store.load(&id).unwrap();
    std::fs::remove_file(models.join(format!("{id}.json"))).unwrap();
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let (store, mut a) = (store.clone(), artifact.clone());
                scope.spawn(move || store.save(&mut a).map(|saved| saved.id))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(results.iter().all(|r| r.as_deref().ok() == Some(id.as_str())), "{results:?}");
    let temps: Vec<_> = std::fs::read_dir(&models)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(temps.is_empty(), "{temps:?}");
    store.load(&id).unwrap();
}
