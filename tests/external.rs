//! The integration tests that need tools beyond Rust: the analyst notebooks (Python with
//! `notebooks/requirements.txt`), the report and dashboard in headless Chromium (Debian's
//! Chromium and Playwright for Python), Schemathesis against the API, and the activity table
//! aggregated by DuckDB and PostgreSQL. A custom harness (libtest-mimic) so that, outside CI, a
//! test whose tools are missing is reported as *ignored* in the summary, naming what is missing;
//! in CI (`CI` set) nothing is ignored and a missing tool fails the test.

#[allow(dead_code)]
mod util;

// The analyst notebooks, executed headless by notebooks/run_all.py.
mod notebooks;

// The report and the dashboard in headless Chromium (Playwright): every chart drawn, no console
// errors, screenshots in test-output/.
mod browser;

// Schemathesis against /openapi.json on the real server: no 5xx, answers as documented.
mod schemathesis;

// `kam aggregate-sql` run by DuckDB and PostgreSQL: the same model byte for byte.
mod engines;

use libtest_mimic::{Arguments, Trial};

fn main() {
    let args = Arguments::from_args();
    let ci = std::env::var_os("CI").is_some();
    // Outside CI, the reason a test cannot run; it is then ignored.
    let unless_ci = |missing: Option<String>| -> Option<String> { if ci { None } else { missing } };
    let python = unless_ci(notebooks::python_ready().err());
    let browser = unless_ci({
        let m = browser::missing_tools();
        (!m.is_empty()).then(|| m.join(" and "))
    });
    let schemathesis = unless_ci(schemathesis::missing());
    let duckdb = unless_ci(engines::duckdb_missing());
    let postgres = unless_ci(engines::postgres_missing());
    let spark = unless_ci(engines::spark_missing());
    let trial = |name: &str, missing: Option<String>, run: fn()| {
        if let Some(why) = &missing {
            eprintln!("ignored {name}: needs {why}");
        }
        Trial::test(name, move || {
            run();
            Ok(())
        })
        .with_ignored_flag(missing.is_some())
    };
    let trials = vec![
        trial("notebooks::committed_notebooks_have_no_outputs", None, notebooks::committed_notebooks_have_no_outputs),
        trial(
            "notebooks::every_notebook_runs_headless_against_a_generated_model_and_the_api",
            python,
            notebooks::every_notebook_runs_headless_against_a_generated_model_and_the_api,
        ),
        trial(
            "browser::the_report_and_the_dashboard_draw_every_chart_in_headless_chromium_without_console_errors",
            browser,
            browser::the_report_and_the_dashboard_draw_every_chart_in_headless_chromium_without_console_errors,
        ),
        trial(
            "schemathesis::every_route_answers_without_a_server_error_and_as_the_openapi_document_says",
            schemathesis,
            schemathesis::every_route_answers_without_a_server_error_and_as_the_openapi_document_says,
        ),
        trial(
            "engines::duckdb_aggregates_train_the_same_model_byte_for_byte",
            duckdb,
            engines::duckdb_aggregates_train_the_same_model_byte_for_byte,
        ),
        trial(
            "engines::postgres_aggregates_train_the_same_model_byte_for_byte",
            postgres,
            engines::postgres_aggregates_train_the_same_model_byte_for_byte,
        ),
        trial(
            "engines::spark_aggregates_train_the_same_model_byte_for_byte",
            spark,
            engines::spark_aggregates_train_the_same_model_byte_for_byte,
        ),
    ];
    libtest_mimic::run(&args, trials).exit();
}
