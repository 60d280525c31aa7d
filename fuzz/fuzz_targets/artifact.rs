//! The model-artifact loader, `kam::store::ModelStore::load`, on a temporary store:
//!
//! 1. the bytes as they are, stored under the id their `id` field names (most fail the
//!    content-hash check, as an edited file should);
//! 2. the bytes deserialized into a `ModelArtifact` (as the loader does), re-stored under the id
//!    their content gives (`kam::store::model_id`, `kam::store::to_json`) so that the loader's
//!    later checks (`ModelArtifact::check`) run on them. An artifact that passes `check()` must
//!    load; one that loads is then made ready to serve as `kam serve` does (`Served::new`, the
//!    forecaster, intervals from a few posterior draws).
//!
//! An `Err` is fine; a panic is a crash.
#![no_main]

use kam::domain::forecast::ForecastParams;
use kam::domain::forecast::intervals::IntervalParams;
use kam::model::artifact::{ModelArtifact, SCHEMA_VERSION};
use kam::store::ModelStore;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static STORE: LazyLock<ModelStore> = LazyLock::new(|| {
    let dir = kam_fuzz::scratch_dir("artifact").join("models");
    std::fs::create_dir_all(&dir).unwrap();
    ModelStore::new(dir)
});

fn is_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 100 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fuzz_target!(|data: &[u8]| {
    let store = &*STORE;
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    // 1. The raw bytes through the loader.
    let raw_id = value.get("id").and_then(|v| v.as_str()).filter(|s| is_id(s)).unwrap_or("fuzz-raw").to_string();
    kam_fuzz::with_file(store.dir(), &format!("{raw_id}.json"), data, |_| {
        let _ = store.load(&raw_id);
    });
    // 2. Re-stored under the id its content gives, so that every check of the loader runs.
    let Ok(mut artifact) = serde_json::from_value::<ModelArtifact>(value) else { return };
    let checked = artifact.check().is_ok();
    artifact.id = kam::store::model_id(&artifact);
    let id = artifact.id.clone();
    if !is_id(&id) {
        assert!(!checked, "an artifact that checks gets an id the store refuses: {id:?}");
        return;
    }
    let json = kam::store::to_json(&artifact);
    let loaded = kam_fuzz::with_file(store.dir(), &format!("{id}.json"), json.as_bytes(), |_| store.load(&id));
    let artifact = match loaded {
        Ok(a) => a,
        Err(e) => {
            assert!(
                !checked || artifact.schema_version != SCHEMA_VERSION,
                "an artifact that passes check() does not load after to_json: {e}"
            );
            return;
        }
    };
    // 3. Ready to serve, as `kam serve` and `kam score` make it.
    let served = kam::http::Served::new(artifact, None);
    let _ = served.next_value();
    let _ = served.training_mix();
    let _ = served.segmenter();
    let params = ForecastParams::default();
    if served.forecaster(params).is_ok() {
        let _ = served.bands(params, IntervalParams { draws: 4, ..IntervalParams::default() });
    }
});
