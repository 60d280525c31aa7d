//! Issue 15: the activity table aggregated by a real SQL engine — DuckDB (PyPI `duckdb`, in
//! `tests/engines/requirements.txt`), PostgreSQL (Debian's `postgresql`, a throw-away cluster
//! that `.ci/run` starts with `scripts/pg_throwaway.sh` and names in `KAM_TEST_PGHOST`) and Spark
//! in local mode (PyPI `pyspark` with a Java runtime, Debian's `openjdk-17-jre-headless`) — from
//! the query `kam aggregate-sql` prints, trains the same model, byte for byte, as `kam train` on
//! the transactions file: on the bundled sample, and on edge cases (a margin column, returns
//! only, same-day purchases and returns, periods without a purchase, ids with quotes, commas and
//! unicode).

use crate::util::{Sandbox, python};
use std::path::Path;
use std::process::Command;

const DUCKDB_INSTALL: &str = ".venv/bin/pip install -r tests/engines/requirements.txt";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Why DuckDB cannot run, if it cannot.
pub fn duckdb_missing() -> Option<String> {
    match Command::new(python()).args(["-c", "import duckdb"]).output() {
        Ok(o) if o.status.success() => None,
        _ => Some(format!("DuckDB for Python (`{DUCKDB_INSTALL}`)")),
    }
}

/// Spark's home: the `pyspark` package of the tests' Python, with its `bin/spark-sql`.
fn spark_home() -> Result<std::path::PathBuf, String> {
    let o = Command::new(python())
        .args(["-c", "import os, pyspark; print(os.path.dirname(pyspark.__file__))"])
        .output()
        .map_err(|e| e.to_string())?;
    if !o.status.success() {
        return Err("PySpark (`.venv/bin/pip install -r tests/engines/spark-requirements.txt`)".into());
    }
    if Command::new("java").arg("-version").output().map_or(true, |o| !o.status.success()) {
        return Err("a Java runtime (`apt-get install openjdk-17-jre-headless`)".into());
    }
    Ok(std::path::PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
}

/// Why Spark cannot run, if it cannot.
pub fn spark_missing() -> Option<String> {
    spark_home().err()
}

/// Why PostgreSQL cannot run, if it cannot.
pub fn postgres_missing() -> Option<String> {
    match std::env::var_os("KAM_TEST_PGHOST") {
        Some(_) => None,
        None => Some("a PostgreSQL server: `scripts/pg_throwaway.sh start DIR` and KAM_TEST_PGHOST=DIR".into()),
    }
}

/// The sample with a margin column (a quarter of each amount, exact at 4 places) and the edge
/// cases appended, all within the sample's quarters.
fn edge_cases() -> String {
    let sample = std::fs::read_to_string(repo().join("data/sample.csv")).unwrap();
    let mut out = String::from("customer_id,date,amount,margin\n");
    for line in sample.lines().skip(1) {
        let amount: f64 = line.rsplit(',').next().unwrap().parse().unwrap();
        out.push_str(&format!("{line},{:.4}\n", amount / 4.0));
    }
    out.push_str(
        "\"a \"\"quoted\"\", id\",2023-01-03,10.5,2.1\n\
         \"a \"\"quoted\"\", id\",2023-01-03,-3.25,-0.5\n\
         \"a \"\"quoted\"\", id\",2023-05-10,-4,-1\n\
         \"a \"\"quoted\"\", id\",2023-08-10,12.0001,0\n\
         ünïcode-Ω,2023-01-15,100.1234,20\n\
         ünïcode-Ω,2023-01-15,0.0001,0\n\
         ünïcode-Ω,2024-04-02,0,0\n\
         returns-only,2023-02-02,-5,-1\n\
         returns-only,2023-11-02,-7.5,-2\n\
         Z-late,2024-12-31,99.99,10\n",
    );
    out
}

/// Trains on the transactions file and on the engine's activity table (`aggregate`: runs the
/// query in `sql` and writes the table to the returned file name), and asserts the two models
/// and snapshots are the same bytes.
fn same_model(s: &Sandbox, data: &str, margin: bool, dialect: &str, aggregate: &dyn Fn(&Sandbox, &str) -> String) {
    let mut sql_args = vec!["aggregate-sql", "--dialect", dialect, "--source", "tx", "--config", "cfg.toml"];
    if margin {
        sql_args.extend(["--margin-col", "margin"]);
    }
    let sql = s.ok(&sql_args).stdout;
    let table = aggregate(s, &sql);
    let direct = format!("direct-{dialect}-{data}");
    let engine = format!("engine-{dialect}-{data}");
    s.ok(&["train", data, "--config", "cfg.toml", "--backtest-last", "2", "--models", &direct]);
    s.ok(&["train", "--aggregates", &table, "--config", "cfg.toml", "--backtest-last", "2", "--models", &engine]);
    let files = |dir: &str| {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(s.path().join(dir))
            .unwrap()
            .flatten()
            .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
            .collect();
        v.sort();
        v
    };
    let (a, b) = (files(&direct), files(&engine));
    assert_eq!(a.iter().map(|f| &f.0).collect::<Vec<_>>(), b.iter().map(|f| &f.0).collect::<Vec<_>>());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "{dialect}, {data}: {name} differs between kam train FILE and kam train --aggregates");
    }
    // The same table scores the same customers.
    let scored = |args: &[&str], out: &str| {
        let mut full = args.to_vec();
        full.extend(["--models", &direct, "--out", out]);
        s.ok(&full);
        std::fs::read(s.path().join(out)).unwrap()
    };
    assert_eq!(
        scored(&["score", data], &format!("{dialect}-a.csv")),
        scored(&["score", "--aggregates", &table], &format!("{dialect}-b.csv"))
    );
    // And backtests the same: one table holds the calibration and the holdout.
    let evaluated = |input: &[&str], out: &str| {
        let mut full = vec!["evaluate"];
        full.extend_from_slice(input);
        full.extend(["--config", "cfg.toml", "--last", "2", "--out", out]);
        s.ok(&full);
        std::fs::read(s.path().join(out)).unwrap()
    };
    assert!(
        evaluated(&[data], &format!("{dialect}-ev-a.json"))
            == evaluated(&["--aggregates", &table], &format!("{dialect}-ev-b.json")),
        "{dialect}, {data}: kam evaluate differs"
    );
}

fn sandbox() -> Sandbox {
    let s = Sandbox::new();
    std::fs::copy(repo().join("data/sample.csv"), s.path().join("sample.csv")).unwrap();
    std::fs::copy(repo().join("data/sample.kam.toml"), s.path().join("cfg.toml")).unwrap();
    s.file("edge.csv", &edge_cases());
    s
}

pub fn duckdb_aggregates_train_the_same_model_byte_for_byte() {
    if let Some(why) = duckdb_missing() {
        panic!("needs {why}");
    }
    let s = sandbox();
    let run = |s: &Sandbox, data: &str, sql: &str, out: &str| -> String {
        s.file("query.sql", sql);
        let script = r#"
import duckdb, sys
data, out = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute(f"CREATE TABLE tx AS SELECT * FROM read_csv('{data}', header=true, all_varchar=true, quote='\"', escape='\"')")
q = open('query.sql', encoding='utf-8').read()
fmt = "(FORMAT parquet)" if out.endswith(".parquet") else "(HEADER, DELIMITER ',')"
con.execute(f"COPY ({q}) TO '{out}' {fmt}")
"#;
        let o = Command::new(python()).args(["-c", script, data, out]).current_dir(s.path()).output().unwrap();
        assert!(o.status.success(), "duckdb: {}", String::from_utf8_lossy(&o.stderr));
        out.to_string()
    };
    same_model(&s, "sample.csv", false, "duckdb", &|s, sql| run(s, "sample.csv", sql, "sample-agg.parquet"));
    same_model(&s, "edge.csv", true, "duckdb", &|s, sql| run(s, "edge.csv", sql, "edge-agg.csv"));
    // A directory of part files, as engines export them, reads as one table.
    std::fs::create_dir(s.path().join("parts")).unwrap();
    let script = "import duckdb\n\
        con = duckdb.connect()\n\
        con.execute(\"CREATE TABLE t AS SELECT * FROM read_parquet('sample-agg.parquet')\")\n\
        con.execute(\"COPY (SELECT * FROM t WHERE customer_id < 'C0001000') TO 'parts/part-0.parquet' (FORMAT parquet)\")\n\
        con.execute(\"COPY (SELECT * FROM t WHERE customer_id >= 'C0001000') TO 'parts/part-1.csv' (HEADER)\")\n";
    let o = Command::new(python()).args(["-c", script]).current_dir(s.path()).output().unwrap();
    assert!(o.status.success(), "duckdb: {}", String::from_utf8_lossy(&o.stderr));
    s.file("parts/_SUCCESS", "");
    s.ok(&[
        "train",
        "--aggregates",
        "parts",
        "--config",
        "cfg.toml",
        "--backtest-last",
        "2",
        "--models",
        "parts-models",
    ]);
    let id = |dir: &str| std::fs::read_to_string(s.path().join(dir).join("CURRENT")).unwrap();
    assert_eq!(id("parts-models"), id("direct-duckdb-sample.csv"));
    // Row groups of 500 rows, streamed a window at a time, and parts whose names run against the
    // customer order (read a second time and sorted): still the same model.
    std::fs::create_dir(s.path().join("groups")).unwrap();
    let script = "import duckdb\n\
        con = duckdb.connect()\n\
        con.execute(\"CREATE TABLE t AS SELECT * FROM read_parquet('sample-agg.parquet')\")\n\
        con.execute(\"COPY (SELECT * FROM t ORDER BY customer_id, period_start) TO 'groups/a.parquet' (FORMAT parquet, ROW_GROUP_SIZE 500)\")\n\
        con.execute(\"COPY (SELECT * FROM t WHERE customer_id >= 'C0001000' ORDER BY customer_id, period_start) TO 'unordered/a.parquet' (FORMAT parquet, ROW_GROUP_SIZE 500)\")\n\
        con.execute(\"COPY (SELECT * FROM t WHERE customer_id < 'C0001000' ORDER BY customer_id, period_start) TO 'unordered/b.parquet' (FORMAT parquet, ROW_GROUP_SIZE 500)\")\n";
    std::fs::create_dir(s.path().join("unordered")).unwrap();
    let o = Command::new(python()).args(["-c", script]).current_dir(s.path()).output().unwrap();
    assert!(o.status.success(), "duckdb: {}", String::from_utf8_lossy(&o.stderr));
    for dir in ["groups", "unordered"] {
        let models = format!("{dir}-models");
        s.ok(&["train", "--aggregates", dir, "--config", "cfg.toml", "--backtest-last", "2", "--models", &models]);
        assert_eq!(id(&models), id("direct-duckdb-sample.csv"), "{dir}");
    }
}

pub fn postgres_aggregates_train_the_same_model_byte_for_byte() {
    let Some(host) = std::env::var_os("KAM_TEST_PGHOST") else {
        panic!("needs {}", postgres_missing().unwrap());
    };
    let s = sandbox();
    // One database per run, so runs do not see each other's tables.
    let db = format!("kam_test_{}", std::process::id());
    let psql = |db: &str, args: &[&str]| {
        let o = Command::new("psql")
            .env("PGHOST", &host)
            .env("PGUSER", "postgres")
            .args(["-q", "-X", "-v", "ON_ERROR_STOP=1", "-d", db])
            .args(args)
            .current_dir(s.path())
            .output()
            .expect("psql runs");
        assert!(o.status.success(), "psql {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    };
    psql("postgres", &["-c", &format!("CREATE DATABASE {db}")]);
    let run = |s: &Sandbox, data: &str, sql: &str, margin: bool, out: &str| -> String {
        let columns = if margin {
            "customer_id text, date text, amount text, margin text"
        } else {
            "customer_id text, date text, amount text"
        };
        psql(
            &db,
            &[
                "-c",
                "DROP TABLE IF EXISTS tx",
                "-c",
                &format!("CREATE TABLE tx ({columns})"),
                "-c",
                &format!("\\copy tx from '{data}' csv header"),
            ],
        );
        s.file("query.sql", &format!("COPY (\n{sql}) TO STDOUT WITH (FORMAT csv, HEADER)\n"));
        let table = psql(&db, &["-f", "query.sql"]);
        std::fs::write(s.path().join(out), table).unwrap();
        out.to_string()
    };
    same_model(&s, "sample.csv", false, "postgres", &|s, sql| run(s, "sample.csv", sql, false, "sample-pg.csv"));
    same_model(&s, "edge.csv", true, "postgres", &|s, sql| run(s, "edge.csv", sql, true, "edge-pg.csv"));
    psql("postgres", &["-c", &format!("DROP DATABASE {db}")]);
}

pub fn spark_aggregates_train_the_same_model_byte_for_byte() {
    let home = spark_home().unwrap_or_else(|why| panic!("needs {why}"));
    let s = sandbox();
    // One Spark session (its start-up is most of the cost) runs both queries.
    let mut script = String::new();
    for (data, margin) in [("sample", false), ("edge", true)] {
        let mut args = vec!["aggregate-sql", "--dialect", "spark", "--source", data, "--config", "cfg.toml"];
        if margin {
            args.extend(["--margin-col", "margin"]);
        }
        let sql = s.ok(&args).stdout;
        script.push_str(&format!(
            "CREATE TEMPORARY VIEW {data} USING csv OPTIONS (path '{data}.csv', header 'true', quote '\"', escape '\"');\n\
             INSERT OVERWRITE DIRECTORY '{data}-spark' USING parquet\n{sql};\n"
        ));
    }
    s.file("spark.sql", &script);
    let o = Command::new(home.join("bin/spark-sql"))
        .env("SPARK_HOME", &home)
        .args(["--master", "local[2]", "--conf", "spark.ui.enabled=false", "-f", "spark.sql"])
        .current_dir(s.path())
        .output()
        .expect("spark-sql runs");
    assert!(o.status.success(), "spark-sql: {}", String::from_utf8_lossy(&o.stderr));
    same_model(&s, "sample.csv", false, "spark", &|_, _| "sample-spark".to_string());
    same_model(&s, "edge.csv", true, "spark", &|_, _| "edge-spark".to_string());
}
