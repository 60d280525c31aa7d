use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `kam serve` running in a directory, killed when dropped, however the test ends (used by the
/// external harness: the browser and Schemathesis tests).
#[allow(dead_code)]
pub struct Server {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `kam serve --addr 127.0.0.1:0` with `args` in `dir`, with the API keys `keys`
/// (`KAM_API_KEYS`), and waits for the address it prints.
#[allow(dead_code)]
pub fn serve(dir: &Path, args: &[&str], keys: &str) -> Server {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_kam"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(args)
        .current_dir(dir)
        .env("KAM_API_KEYS", keys)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start kam serve");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("kam serve: listening on ").unwrap_or_else(|| panic!("{line}")).to_string();
    Server { child, base }
}

/// A temporary working directory in which `kam` runs.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

/// What a run of `kam` did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Sandbox {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("temp dir") }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, content).unwrap();
        p
    }

    pub fn kam(&self, args: &[&str]) -> Run {
        self.kam_with(args, &[])
    }

    /// Runs kam with environment variables `env` set.
    pub fn kam_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        Command::new(env!("CARGO_BIN_EXE_kam"))
            .args(args)
            .envs(env.iter().copied())
            .current_dir(self.dir.path())
            .output()
            .expect("run kam")
            .into()
    }

    /// Runs kam and asserts it succeeded.
    pub fn ok(&self, args: &[&str]) -> Run {
        let r = self.kam(args);
        assert_eq!(r.code, 0, "kam {args:?} failed:\n{}\n{}", r.stdout, r.stderr);
        r
    }

    /// Every file under `models/` with its bytes.
    pub fn models_snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        if let Ok(entries) = std::fs::read_dir(self.dir.path().join("models")) {
            for e in entries.flatten() {
                out.insert(e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap());
            }
        }
        out
    }

    pub fn json(&self, name: &str) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(self.dir.path().join(name)).unwrap()).unwrap()
    }
}

/// A small valid transactions file: three customers over four quarters of 2024.
pub const SMALL: &str = "customer_id,date,amount
a,2024-01-10,500
a,2024-04-10,400
a,2024-07-10,450
a,2024-10-10,600
b,2024-02-01,20
b,2024-08-01,30
c,2024-05-05,50
c,2024-12-31,-10
d,2024-03-03,70
d,2024-06-03,80
d,2024-09-03,5
";

/// The CDNOW master file, fetched once (from the lifetimes package on PyPI) if absent.
pub fn cdnow() -> PathBuf {
    cdnow_file("CDNOW_master.txt")
}

/// A file of `data/cdnow/` (see `scripts/fetch_cdnow.sh`), fetched once if any is absent.
pub fn cdnow_file(name: &str) -> PathBuf {
    static FETCHED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    FETCHED.get_or_init(|| {
        let all = [
            "CDNOW_master.txt",
            "CDNOW_sample.txt",
            "cdnow_customers_summary.csv",
            "cdnow_customers_summary_with_transactions.csv",
        ];
        if all.iter().any(|f| !root.join("data/cdnow").join(f).exists()) {
            let status =
                Command::new("bash").arg(root.join("scripts/fetch_cdnow.sh")).status().expect("run fetch_cdnow.sh");
            assert!(status.success(), "scripts/fetch_cdnow.sh failed: CDNOW is needed for this test");
        }
    });
    root.join("data/cdnow").join(name)
}

/// The Python that runs the notebooks and the browser check: `$KAM_PYTHON`, else the project's
/// virtual environment `.venv/bin/python3` when there is one (`.ci/run` makes it), else
/// `python3` on the PATH.
#[allow(dead_code)] // used by tests/external.rs
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("KAM_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python3");
    if venv.exists() { venv } else { PathBuf::from("python3") }
}
