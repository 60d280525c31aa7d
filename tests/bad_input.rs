use crate::util::{SMALL, Sandbox};

/// A sandbox whose models/ already holds an active model.
fn trained() -> Sandbox {
    let s = Sandbox::new();
    s.file("good.csv", SMALL);
    s.ok(&["train", "good.csv"]);
    assert_eq!(s.models_snapshot().len(), 3, "model, its customer snapshot, CURRENT");
    s
}

/// Trains on `content` and asserts failure with every `needles` in the message and models/
/// untouched.
fn refused(content: Option<&str>, extra: &[&str], needles: &[&str]) {
    let s = trained();
    let before = s.models_snapshot();
    if let Some(c) = content {
        s.file("bad.csv", c);
    }
    let mut args = vec!["train", "bad.csv"];
    args.extend_from_slice(extra);
    let r = s.kam(&args);
    assert_ne!(r.code, 0, "kam should fail:\n{}", r.stdout);
    for n in needles {
        assert!(r.stderr.contains(n), "stderr lacks {n:?}:\n{}", r.stderr);
    }
    assert_eq!(s.models_snapshot(), before, "models/ changed");
}

#[test]
fn a_missing_file_is_named() {
    refused(None, &[], &["cannot read bad.csv", "No such file"]);
}

#[test]
fn an_empty_file_is_refused() {
    refused(Some(""), &[], &["bad.csv is empty"]);
    refused(Some("customer_id,date,amount\n"), &[], &["bad.csv has a header but no data rows"]);
}

#[test]
fn a_missing_column_lists_the_header() {
    refused(
        Some("customer_id,when,amount\na,2024-01-01,1\n"),
        &[],
        &["bad.csv: no date column", "customer_id, when, amount", "--date-col"],
    );
    refused(Some("customer_id,when,amount\na,2024-01-01,1\n"), &["--date-col", "day"], &["no column named \"day\""]);
}

#[test]
fn a_bad_date_names_line_column_and_value() {
    refused(
        Some("customer_id,date,amount\na,2024-01-01,1\nb,2024-13-01,2\n"),
        &[],
        &["bad.csv: line 3, column \"date\": month out of range: \"2024-13-01\""],
    );
    refused(Some("customer_id,date,amount\na,01/02/2024,1\n"), &[], &["line 2, column \"date\"", "\"01/02/2024\""]);
}

#[test]
fn a_bad_amount_names_line_column_and_value() {
    refused(
        Some("customer_id,date,amount\na,2024-01-01,1\nb,2024-01-02,12x\n"),
        &[],
        &["bad.csv: line 3, column \"amount\": not a number: \"12x\""],
    );
}

#[test]
fn a_non_finite_amount_is_refused() {
    refused(Some("customer_id,date,amount\na,2024-01-01,NaN\n"), &[], &["line 2", "not a finite number: \"NaN\""]);
    refused(Some("customer_id,date,amount\na,2024-01-01,inf\n"), &[], &["not a finite number: \"inf\""]);
}

#[test]
fn an_empty_customer_id_is_refused() {
    refused(
        Some("customer_id,date,amount\na,2024-01-01,1\n  ,2024-01-01,1\n"),
        &[],
        &["line 3, column \"customer_id\": empty customer id"],
    );
}

#[test]
fn a_row_with_too_few_fields_is_refused() {
    refused(
        Some("customer_id,date,amount\na,2024-01-01,1\nb,2024-01-01\n"),
        &[],
        &["bad.csv: line 3: expected at least 3 fields, found 2"],
    );
    // Whitespace layout too.
    refused(
        Some("1 19970101 1 2.5\n2 19970101\n"),
        &["--amount-col", "4"],
        &["line 2: expected at least 4 fields, found 2"],
    );
}

#[test]
fn data_without_a_complete_period_are_refused() {
    refused(Some("customer_id,date,amount\na,2024-01-01,1\n"), &["--period", "year"], &["no complete year period"]);
}

#[test]
fn a_bad_configuration_names_the_field() {
    let s = trained();
    let before = s.models_snapshot();
    s.file("good2.csv", SMALL);
    s.file("kam.toml", "[segments]\nwindow = 0\n");
    let r = s.kam(&["train", "good2.csv", "--config", "kam.toml"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("segments.window: must be between 1 and 520"), "{}", r.stderr);
    s.file("kam.toml", "[segments]\nwindw = 2\n");
    let r = s.kam(&["train", "good2.csv", "--config", "kam.toml"]);
    assert!(
        r.stderr.contains("kam.toml is not a valid kam configuration") && r.stderr.contains("windw"),
        "{}",
        r.stderr
    );
    let r = s.kam(&["train", "good2.csv", "--cuts", "0.5,0.2"]);
    assert!(r.stderr.contains("segments.cuts"), "{}", r.stderr);
    assert_eq!(s.models_snapshot(), before);
}

#[test]
fn skip_mode_reports_bad_rows_with_line_numbers_and_trains_on_the_rest() {
    let s = Sandbox::new();
    let mut text = SMALL.to_string();
    text.push_str("e,2024-02-30,5\n,2024-01-01,3\nf,2024-01-01,abc\ng,2024-01-01\n");
    s.file("mixed.csv", &text);
    let r = s.ok(&["train", "mixed.csv", "--on-bad-row", "skip", "--json"]);
    assert!(r.stderr.contains("skipped 4 bad row(s)"), "{}", r.stderr);
    assert!(r.stderr.contains("line 13, column \"date\""), "{}", r.stderr);
    assert!(r.stderr.contains("line 16: expected at least 3 fields"), "{}", r.stderr);
    let out: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(out["model"]["data"]["rows_skipped"], 4);
    assert_eq!(out["model"]["data"]["rows"], 11);
}

/// Issue 13, item 11: a huge bad field is quoted by a short prefix, never whole; a FIFO is
/// refused instead of blocking.
#[test]
fn a_huge_bad_field_is_quoted_by_a_short_prefix_and_a_fifo_is_refused() {
    let s = trained();
    let big = "9".repeat(3_000_000);
    s.file("bad.csv", &format!("customer_id,date,amount\na,2024-01-01,1\nb,2024-01-02,{big}x\n"));
    let r = s.kam(&["train", "bad.csv"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("line 3, column \"amount\""), "{}", &r.stderr[..r.stderr.len().min(500)]);
    assert!(r.stderr.contains("(3000001 bytes)"), "{}", &r.stderr[..r.stderr.len().min(500)]);
    assert!(r.stderr.len() < 1000, "the message is {} bytes", r.stderr.len());
    #[cfg(unix)]
    {
        let fifo = s.path().join("fifo.csv");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let r = s.kam(&["train", "fifo.csv"]);
        assert_ne!(r.code, 0);
        assert!(r.stderr.contains("fifo.csv is not a regular file"), "{}", r.stderr);
    }
}

/// Issue 13, item 8: an amount that would overflow the spend moments is refused at its line,
/// and a model that would not load back is never written.
#[test]
fn an_overflowing_amount_is_refused_and_an_unloadable_model_is_never_written() {
    refused(
        Some("customer_id,date,amount\na,2024-01-01,1\nb,2024-01-02,1e200\n"),
        &[],
        &["bad.csv: line 3, column \"amount\": beyond ±1e11"],
    );
    // Amounts are summed exactly to 4 decimal places; one with more is refused, not rounded.
    refused(
        Some("customer_id,date,amount\na,2024-01-01,1.5\nb,2024-01-02,2.12345\n"),
        &[],
        &["bad.csv: line 3, column \"amount\": more than 4 decimal places"],
    );
    let s = trained();
    let store = kam::store::ModelStore::new(s.path().join("models"));
    let id = store.current().unwrap().unwrap();
    let mut artifact = store.load(&id).unwrap();
    artifact.spend.spend_by_state[0] = f64::INFINITY;
    let before = s.models_snapshot();
    let e = store.save(&mut artifact).unwrap_err().to_string();
    assert!(e.contains("would not load back"), "{e}");
    assert_eq!(s.models_snapshot(), before, "models/ changed");
}

/// Issue 13, item 9: a single stray date or amount is warned about in the summary and the
/// artifact; `--date-range` leaves the rows out and records it.
#[test]
fn a_stray_row_is_warned_about_and_date_range_leaves_it_out() {
    let s = Sandbox::new();
    s.ok(&["generate", "--customers", "300", "--seed", "5", "--out", "g.csv"]);
    let mut text = std::fs::read_to_string(s.path().join("g.csv")).unwrap();
    text.push_str("stray-1,1000-01-01,10\nstray-2,2024-03-01,-1000000000\n");
    s.file("g.csv", &text);
    let out = s.ok(&["train", "g.csv", "--config", "g.kam.toml", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let warnings = v["model"]["data"]["warnings"].as_array().unwrap_or_else(|| panic!("{}", v["model"]["data"]));
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].as_str().unwrap().contains("the earliest 1000-01-01"), "{warnings:?}");
    assert!(warnings[1].as_str().unwrap().contains("the largest -1000000000"), "{warnings:?}");
    let human = s.ok(&["train", "g.csv", "--config", "g.kam.toml", "--models", "m2"]);
    assert!(human.stdout.contains("warning: 1 customer-period(s) starting before"), "{}", human.stdout);
    // Left out by date: the stray date goes, the model's periods start with the data's bulk.
    let out =
        s.ok(&["train", "g.csv", "--config", "g.kam.toml", "--date-range", "2000-01-01..", "--json", "--models", "m3"]);
    assert!(out.stderr.contains("--date-range 2000-01-01.. left out 1 row(s)"), "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let d = &v["model"]["data"];
    assert_eq!(d["date_range"], "2000-01-01..", "{d}");
    assert!(d["first_date"].as_str().unwrap() > "2000", "{d}");
    assert_eq!(d["warnings"].as_array().map_or(0, Vec::len), 1, "{d}");
    let r = s.kam(&["train", "g.csv", "--date-range", "2030-01-01..2020-01-01"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("2030-01-01 is after 2020-01-01"), "{}", r.stderr);
}

/// The activity table of [`AGG_TX`] in quarters, as `kam aggregate-sql`'s query writes it.
const AGG: &str = "schema_version,customer_id,period_start,rows,occasions,spend,margin,purchase_spend,first_purchase_spend,first_purchase_day,last_purchase_day,first_day,last_day,rows_beyond_4_decimals
1,a,2024-01-01,2,1,500.0000,,500.0000,500.0000,2024-01-10,2024-01-10,2024-01-10,2024-01-10,0
1,a,2024-04-01,1,1,400.0000,,400.0000,400.0000,2024-04-10,2024-04-10,2024-04-10,2024-04-10,0
1,a,2024-07-01,1,1,450.5000,,450.5000,450.5000,2024-07-10,2024-07-10,2024-07-10,2024-07-10,0
1,a,2024-10-01,1,1,600.0000,,600.0000,600.0000,2024-10-10,2024-10-10,2024-10-10,2024-10-10,0
1,b,2024-01-01,1,1,20.0000,,20.0000,20.0000,2024-02-01,2024-02-01,2024-02-01,2024-02-01,0
1,b,2024-07-01,1,1,30.0000,,30.0000,30.0000,2024-08-01,2024-08-01,2024-08-01,2024-08-01,0
1,c,2024-04-01,1,1,50.0000,,50.0000,50.0000,2024-05-05,2024-05-05,2024-05-05,2024-05-05,0
1,c,2024-10-01,1,0,-10.0000,,0.0000,0.0000,,,2024-12-31,2024-12-31,0
1,d,2024-01-01,1,1,70.0000,,70.0000,70.0000,2024-03-03,2024-03-03,2024-03-03,2024-03-03,0
1,d,2024-04-01,1,1,80.0000,,80.0000,80.0000,2024-06-03,2024-06-03,2024-06-03,2024-06-03,0
1,d,2024-07-01,1,1,5.0000,,5.0000,5.0000,2024-09-03,2024-09-03,2024-09-03,2024-09-03,0
";

/// The transactions [`AGG`] aggregates (in another row order: the model does not depend on it).
const AGG_TX: &str = "customer_id,date,amount
d,2024-03-03,70
c,2024-05-05,50
a,2024-01-10,500
a,2024-01-10,0
a,2024-04-10,400
a,2024-07-10,450.5
a,2024-10-10,600
b,2024-02-01,20
b,2024-08-01,30
c,2024-12-31,-10
d,2024-06-03,80
d,2024-09-03,5
";

/// Issue 15: an activity table trains the model its transactions train, byte for byte; a bad
/// one is refused with the file, row and column, and nothing is written to models/.
#[test]
fn an_activity_table_trains_the_model_of_its_transactions_and_a_bad_one_is_refused() {
    let s = trained();
    s.file("tx.csv", AGG_TX);
    s.file("agg.csv", AGG);
    let q = ["--period", "quarter", "--blend", "off"];
    let train = |args: &[&str], dir: &str| {
        let mut full = args.to_vec();
        full.extend_from_slice(&q);
        full.extend(["--models", dir]);
        s.ok(&full);
        let id = std::fs::read_to_string(s.path().join(dir).join("CURRENT")).unwrap();
        std::fs::read(s.path().join(dir).join(format!("{}.json", id.trim()))).unwrap()
    };
    let from_tx = train(&["train", "tx.csv"], "from-tx");
    assert!(from_tx == train(&["train", "--aggregates", "agg.csv"], "from-agg"));
    // Out of the query's order (as an engine exporting shards unordered writes it), the table is
    // sorted in memory: the same model.
    let mut shuffled: Vec<&str> = AGG.lines().collect();
    shuffled[1..].reverse();
    s.file("agg-shuffled.csv", &(shuffled.join("\n") + "\n"));
    assert!(from_tx == train(&["train", "--aggregates", "agg-shuffled.csv"], "from-shuffled"));
    let before = s.models_snapshot();
    let bad = |content: String, needles: &[&str]| {
        s.file("bad-agg.csv", &content);
        let mut args = vec!["train", "--aggregates", "bad-agg.csv"];
        args.extend_from_slice(&q);
        let r = s.kam(&args);
        assert_ne!(r.code, 0, "kam should fail:\n{}", r.stdout);
        for n in needles {
            assert!(r.stderr.contains(n), "stderr lacks {n:?}:\n{}", r.stderr);
        }
        assert_eq!(s.models_snapshot(), before, "models/ changed");
    };
    let lines: Vec<&str> = AGG.lines().collect();
    let with_row = |k: usize, row: &str| {
        let mut l = lines.clone();
        l[k] = row;
        l.join("\n") + "\n"
    };
    bad(AGG.replace(",occasions,", ",visits,"), &["bad-agg.csv: no occasions column", "not an activity table"]);
    bad(
        with_row(2, "1,a,2024-04-01,x,1,400,,400,400,2024-04-10,2024-04-10,2024-04-10,2024-04-10,0"),
        &["bad-agg.csv: row 2, column rows: not a non-negative integer: \"x\""],
    );
    bad(
        with_row(2, lines[1]),
        &[
            "customer \"a\" has two rows for the period starting 2024-01-01 (row 1 of bad-agg.csv and row 2 of bad-agg.csv)",
        ],
    );
    // Two rows for one cell, apart in a table out of order, are found after the sort.
    bad(
        with_row(7, lines[1]),
        &[
            "customer \"a\" has two rows for the period starting 2024-01-01 (row 1 of bad-agg.csv and row 7 of bad-agg.csv)",
        ],
    );
    bad(
        with_row(2, "1,a,2024-05-01,1,1,400,,400,400,2024-05-10,2024-05-10,2024-05-10,2024-05-10,0"),
        &["row 2: period_start 2024-05-01 is not the first day of a quarter period"],
    );
    bad(
        with_row(2, "2,a,2024-04-01,1,1,400,,400,400,2024-04-10,2024-04-10,2024-04-10,2024-04-10,0"),
        &["schema version 2; this kam reads version 1"],
    );
    bad(
        with_row(2, "1,a,2024-04-01,1,1,400,,400,400,2024-04-10,2024-04-10,2024-04-10,2024-04-10,3"),
        &["column rows_beyond_4_decimals", "refuses to round"],
    );
    bad(
        with_row(2, "1,a,2024-04-01,1,1,400.12345,,400,400,2024-04-10,2024-04-10,2024-04-10,2024-04-10,0"),
        &["column spend: more than 4 decimal places"],
    );
    bad(
        with_row(2, "1,a,2024-04-01,1,0,400,,400,400,2024-04-10,2024-04-10,2024-04-10,2024-04-10,0"),
        &["occasions, first_purchase_day and last_purchase_day disagree"],
    );
    // A table aggregated in months is not one of quarters.
    bad(AGG.replace("2024-04-01", "2024-05-01"), &["is not the first day of a quarter period"]);
    // --date-range is applied by the query: a table with rows outside it was made without it.
    let r = s.kam(&["train", "--aggregates", "agg.csv", "--period", "quarter", "--date-range", "2024-02-01.."]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("outside --date-range 2024-02-01..: emit the query with the same --date-range"),
        "{}",
        r.stderr
    );
    // How to read a transactions file does not apply to an activity table.
    let r = s.kam(&["train", "--aggregates", "agg.csv", "--amount-col", "3"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("cannot be used with"), "{}", r.stderr);
    assert_eq!(s.models_snapshot(), before, "models/ changed");
}
