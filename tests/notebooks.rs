//! The analyst notebooks (`notebooks/*.ipynb`): `notebooks/run_all.py` executes all three headless
//! against the real executable — generated data, a trained model, `kam serve` on a free port — and
//! fails naming the notebook and cell. Needs Python 3 with `notebooks/requirements.txt`: without
//! it the test is reported as ignored, naming what is missing, except in CI (`CI` set), where it
//! fails.

use crate::util::{Sandbox, python};
use std::path::Path;
use std::process::Command;

const NOTEBOOKS: [&str; 3] = ["01_explore_model.ipynb", "02_retrain_and_promote.ipynb", "03_crm_client.ipynb"];
const INSTALL: &str = "python3 -m venv .venv && .venv/bin/pip install -r notebooks/requirements.txt";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Ok when the tests' Python imports every package the runner and the notebooks use; otherwise why not.
pub fn python_ready() -> Result<(), String> {
    let probe = "import nbclient, nbformat, ipykernel, jupyter_client, pandas, matplotlib, requests";
    match Command::new(python()).args(["-c", probe]).output() {
        Err(e) => Err(format!("python3 does not run: {e}")),
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().lines().last().unwrap_or("import failed").to_string()),
    }
}

pub fn every_notebook_runs_headless_against_a_generated_model_and_the_api() {
    if let Err(why) = python_ready() {
        if std::env::var_os("CI").is_some() {
            panic!("the notebooks' Python packages are missing ({why}): run `{INSTALL}` before the tests");
        }
        panic!("the notebooks' Python packages are missing ({why}); `{INSTALL}` to run them");
    }
    let out = Sandbox::new();
    let run = Command::new(python())
        .arg(repo().join("notebooks/run_all.py"))
        .arg("--kam")
        .arg(env!("CARGO_BIN_EXE_kam"))
        .arg("--out")
        .arg(out.path())
        .current_dir(repo())
        .output()
        .expect("run python3 notebooks/run_all.py");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "notebooks/run_all.py failed ({}):\n{stderr}", run.status);

    for name in NOTEBOOKS {
        let executed = out.json(&format!("executed/{name}"));
        let cells = executed["cells"].as_array().expect("cells");
        let outputs = || cells.iter().flat_map(|c| c["outputs"].as_array().into_iter().flatten());
        assert!(outputs().all(|o| o["output_type"] != "error"), "{name}: an error output");
        assert!(outputs().any(|o| o["data"]["image/png"].is_string()), "{name}: no chart rendered");
    }
}

pub fn committed_notebooks_have_no_outputs() {
    for name in NOTEBOOKS {
        let path = repo().join("notebooks").join(name);
        let nb: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for (i, cell) in nb["cells"].as_array().expect("cells").iter().enumerate() {
            if cell["cell_type"] == "code" {
                assert_eq!(cell["outputs"], serde_json::json!([]), "{name}: cell {i} has outputs; clear them");
                assert!(cell["execution_count"].is_null(), "{name}: cell {i} has an execution count; clear it");
            }
        }
    }
}
