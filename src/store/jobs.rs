//! Training jobs' records beside the models: `models/jobs/<job id>.json`, one JSON document per
//! job, rewritten atomically (temporary file, fsync, rename) at every change of state, so that a
//! server restart finds every job it had started and a half-written record is never read. What
//! a record holds is the caller's (the API's `Job`); the store only keeps the files.

use super::{StoreError, check_id, io, write_atomically};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fs;
use std::path::{Path, PathBuf};

/// The jobs directory of the models directory `models`.
pub fn dir(models: &Path) -> PathBuf {
    models.join("jobs")
}

/// Writes (or replaces) the record of job `id`.
pub fn save<T: Serialize>(models: &Path, id: &str, record: &T) -> Result<PathBuf, StoreError> {
    check_id(id)?;
    let dir = dir(models);
    fs::create_dir_all(&dir).map_err(io(&dir))?;
    let mut bytes = serde_json::to_vec_pretty(record).expect("a job record always serializes");
    bytes.push(b'\n');
    write_atomically(&dir, &format!("{id}.json"), &bytes)
}

/// Removes the record of job `id` (absent already: nothing to do).
pub fn remove(models: &Path, id: &str) -> Result<(), StoreError> {
    check_id(id)?;
    let path = dir(models).join(format!("{id}.json"));
    match fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&path)(e)),
        _ => Ok(()),
    }
}

/// Every readable record, with the files that could not be read (name and why), so that one
/// damaged record neither hides the others nor stops the server.
pub fn load_all<T: DeserializeOwned>(models: &Path) -> (Vec<T>, Vec<(String, String)>) {
    let (mut records, mut problems) = (Vec::new(), Vec::new());
    let Ok(entries) = fs::read_dir(dir(models)) else { return (records, problems) };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(".json") || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        match fs::read(entry.path())
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<T>(&b).map_err(|e| e.to_string()))
        {
            Ok(r) => records.push(r),
            Err(e) => problems.push((name, e)),
        }
    }
    (records, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Record {
        id: String,
        n: u32,
    }

    #[test]
    fn records_are_kept_replaced_removed_and_a_damaged_one_is_reported_not_fatal() {
        let d = tempfile::tempdir().unwrap();
        let models = d.path();
        assert!(load_all::<Record>(models).0.is_empty());
        save(models, "job-a-1", &Record { id: "job-a-1".into(), n: 1 }).unwrap();
        save(models, "job-a-2", &Record { id: "job-a-2".into(), n: 2 }).unwrap();
        save(models, "job-a-1", &Record { id: "job-a-1".into(), n: 3 }).unwrap();
        fs::write(dir(models).join("job-a-3.json"), "{\"id\": \"job-a-3\", \"n\":").unwrap();
        fs::write(dir(models).join(".job-a-4.json.1.1.tmp"), "{").unwrap();
        let (mut got, problems) = load_all::<Record>(models);
        got.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(got, [Record { id: "job-a-1".into(), n: 3 }, Record { id: "job-a-2".into(), n: 2 }]);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, "job-a-3.json");
        remove(models, "job-a-2").unwrap();
        remove(models, "job-a-2").unwrap();
        assert_eq!(load_all::<Record>(models).0.len(), 1);
        assert!(matches!(save(models, "../x", &Record { id: "x".into(), n: 0 }), Err(StoreError::BadId(_))));
    }
}
