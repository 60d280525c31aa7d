//! Model artifacts on disk: `models/<id>.json`, immutable and written atomically (temporary
//! file, fsync, rename), and `models/CURRENT` naming the active model, moved only after a
//! successful write. The id derives from the content (as-of date + BLAKE3 of the canonical JSON),
//! so the same data and configuration give the same id and the same bytes, and a file whose
//! content does not match its id is refused as corrupt.

pub mod jobs;
pub mod snapshot;

use crate::model::artifact::{ModelArtifact, SCHEMA_VERSION};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("no model {id:?} in {dir}")]
    NotFound { id: String, dir: PathBuf },
    #[error("{path} is not a valid kam model: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path} has schema version {found}; this kam reads version {SCHEMA_VERSION}")]
    SchemaVersion { path: PathBuf, found: u64 },
    #[error("{0:?} is not a model id (expected letters, digits and dashes)")]
    BadId(String),
    #[error("the model was not stored: it would not load back ({reason}); nothing was written")]
    Unloadable { reason: String },
}

impl StoreError {
    /// The problem without any path (what an API client may see).
    pub fn without_path(&self) -> String {
        match self {
            StoreError::Io { source, .. } => format!("cannot read the file ({})", source.kind()),
            StoreError::NotFound { id, .. } => format!("no model {id:?}"),
            StoreError::Corrupt { reason, .. } => format!("not a valid kam model: {reason}"),
            StoreError::SchemaVersion { found, .. } => {
                format!("schema version {found}; this kam reads version {SCHEMA_VERSION}")
            }
            e @ (StoreError::BadId(_) | StoreError::Unloadable { .. }) => e.to_string(),
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_path_buf(), source }
}

/// The canonical bytes of an artifact: pretty JSON with a trailing newline.
pub fn to_json(artifact: &ModelArtifact) -> String {
    let mut s = serde_json::to_string_pretty(artifact).expect("an artifact always serializes");
    s.push('\n');
    s
}

/// The id an artifact's content gives: `<as-of>-<first 12 hex digits of BLAKE3>` of the
/// canonical JSON with an empty id.
pub fn model_id(artifact: &ModelArtifact) -> String {
    let mut a = artifact.clone();
    a.id.clear();
    let hash = blake3::hash(to_json(&a).as_bytes()).to_hex();
    format!("{}-{}", a.periods.as_of, &hash[..12])
}

/// A model written to the store.
#[derive(Clone, Debug, PartialEq)]
pub struct Saved {
    pub id: String,
    pub path: PathBuf,
    /// The same model was already in the store (same content ⇒ same id).
    pub existed: bool,
}

/// One line of `kam models list`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Listed {
    pub id: String,
    pub as_of: String,
    /// The first 12 hex digits of the data fingerprint (equal models of equal data share it).
    pub data: String,
    pub customers: u64,
    /// Period unit, trailing window and lapse threshold: `quarter W1 L2`.
    pub scheme: String,
    pub states: usize,
    /// The spend model chosen (`ols`, `log_ols`, `tweedie`).
    pub spend_model: String,
    /// The backtest's no-purchase AUC, when the model carries a backtest.
    pub backtest_auc: Option<f64>,
    pub active: bool,
    /// Why the file could not be loaded, if it could not.
    pub problem: Option<String>,
}

/// A directory of model artifacts.
#[derive(Clone, Debug)]
pub struct ModelStore {
    dir: PathBuf,
}

fn check_id(id: &str) -> Result<(), StoreError> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(StoreError::BadId(id.to_string()));
    }
    Ok(())
}

/// Temporary files written so far by this process: with the process id, a unique name for every
/// write, so that concurrent jobs writing the same model never share one.
static TEMP_FILES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, StoreError> {
    write_atomically_with(dir, name, &mut |out| out.write_all(bytes))
}

/// [`write_atomically`] of what `write` writes, through a buffer.
fn write_atomically_with(
    dir: &Path,
    name: &str,
    write: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
) -> Result<PathBuf, StoreError> {
    let target = dir.join(name);
    let n = TEMP_FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let result = (|| {
        let f = fs::File::create(&tmp).map_err(io(&tmp))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, f);
        write(&mut out).map_err(io(&tmp))?;
        let f = out.into_inner().map_err(|e| e.into_error()).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        fs::rename(&tmp, &target).map_err(io(&target))?;
        // Make the rename durable.
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(target.clone())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

impl ModelStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Writes an artifact (setting its id) unless the same one is already there.
    pub fn save(&self, artifact: &mut ModelArtifact) -> Result<Saved, StoreError> {
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        artifact.id = model_id(artifact);
        let path = self.path_of(&artifact.id);
        let bytes = to_json(artifact);
        // What is written must load: a number that overflowed serializes as `null`, which the
        // loader refuses, so the file is read back here before it is written.
        let back: ModelArtifact = serde_json::from_str(&bytes).map_err(|e| StoreError::Unloadable {
            reason: format!("{e}; a sum overflowed? check for extreme amounts"),
        })?;
        back.check().map_err(|e| StoreError::Unloadable { reason: e.to_string() })?;
        let existed = fs::read(&path).is_ok_and(|b| b == bytes.as_bytes());
        if !existed {
            write_atomically(&self.dir, &format!("{}.json", artifact.id), bytes.as_bytes())?;
        }
        Ok(Saved { id: artifact.id.clone(), path, existed })
    }

    /// Removes the temporary files of writes and uploads that never finished (a process killed
    /// mid-write):
    /// those of processes no longer running (on Linux, by `/proc/<pid>`), or older than an hour
    /// elsewhere — in the models directory and its jobs directory. Returns how many were removed.
    /// `kam serve` calls it at start.
    pub fn remove_stale_temp_files(&self) -> usize {
        let mut removed = 0;
        let dirs = [self.dir.clone(), jobs::dir(&self.dir)];
        for entry in dirs.iter().filter_map(|d| fs::read_dir(d).ok()).flat_map(|e| e.flatten()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            // `.<name>.<pid>.<n>.tmp` (an atomic write), `.upload-<pid>-<random>.<ext>` (an
            // upload to a training job).
            let pid = if let Some(rest) = name.strip_prefix(".upload-") {
                rest.split('-').next().and_then(|p| p.parse::<u32>().ok())
            } else if name.starts_with('.') && name.ends_with(".tmp") {
                name.trim_end_matches(".tmp").rsplit('.').nth(1).and_then(|p| p.parse::<u32>().ok())
            } else {
                continue;
            };
            let stale = match pid {
                Some(p) if Path::new("/proc/self").exists() => {
                    p != std::process::id() && !Path::new(&format!("/proc/{p}")).exists()
                }
                _ => entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() > 3600)),
            };
            if stale && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    /// Reads and validates a model: schema version, and content matching its id.
    pub fn load(&self, id: &str) -> Result<ModelArtifact, StoreError> {
        check_id(id)?;
        let path = self.path_of(id);
        // A FIFO or device under a model's name would block the reader: only regular files.
        match fs::metadata(&path) {
            Ok(m) if !m.is_file() => return Err(StoreError::Corrupt { path, reason: "not a regular file".into() }),
            _ => {}
        }
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound { id: id.into(), dir: self.dir.clone() });
            }
            Err(e) => return Err(io(&path)(e)),
        };
        let corrupt = |reason: String| StoreError::Corrupt { path: path.clone(), reason };
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
        match value.get("schema_version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(SCHEMA_VERSION) => {}
            Some(v) => return Err(StoreError::SchemaVersion { path, found: v }),
            None => return Err(corrupt("no schema_version".into())),
        }
        let artifact: ModelArtifact = serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))?;
        if artifact.id != id {
            return Err(corrupt(format!("it holds model {:?}", artifact.id)));
        }
        if model_id(&artifact) != id {
            return Err(corrupt("its content does not match its id (edited or damaged)".into()));
        }
        artifact.check().map_err(|e| corrupt(e.to_string()))?;
        Ok(artifact)
    }

    /// The active model's id, if any.
    pub fn current(&self) -> Result<Option<String>, StoreError> {
        let path = self.dir.join("CURRENT");
        if fs::metadata(&path).is_ok_and(|m| !m.is_file()) {
            return Err(StoreError::Corrupt { path, reason: "CURRENT is not a regular file".into() });
        }
        match fs::read_to_string(&path) {
            Ok(s) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Makes a model the active one, after checking that it loads.
    pub fn activate(&self, id: &str) -> Result<(), StoreError> {
        self.load(id)?;
        write_atomically(&self.dir, "CURRENT", format!("{id}\n").as_bytes())?;
        Ok(())
    }

    /// Every model in the store, oldest as-of first.
    pub fn list(&self) -> Result<Vec<Listed>, StoreError> {
        // A broken CURRENT must not hide the list one needs to repair it: no model is active then.
        let current = self.current().ok().flatten();
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&self.dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io(&self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".json") else { continue };
            if name.starts_with('.') {
                continue;
            }
            let active = current.as_deref() == Some(id);
            out.push(match self.load(id) {
                Ok(a) => Listed {
                    id: id.to_string(),
                    as_of: a.periods.as_of.to_string(),
                    data: a.data.content_hash.chars().take(12).collect(),
                    customers: a.data.customers,
                    scheme: format!(
                        "{} W{} L{}",
                        a.periods.unit, a.segments.scheme.window, a.segments.scheme.lapse_after
                    ),
                    states: a.segments.states.len(),
                    spend_model: a.spend.model.kind().to_string(),
                    backtest_auc: a.backtest.as_ref().map(|b| b.no_purchase.model.auc),
                    active,
                    problem: None,
                },
                Err(e) => Listed {
                    id: id.to_string(),
                    as_of: String::new(),
                    data: String::new(),
                    customers: 0,
                    scheme: String::new(),
                    states: 0,
                    spend_model: String::new(),
                    backtest_auc: None,
                    active,
                    problem: Some(e.without_path()),
                },
            });
        }
        out.sort_by(|a, b| (&a.as_of, &a.id).cmp(&(&b.as_of, &b.id)));
        Ok(out)
    }
}
