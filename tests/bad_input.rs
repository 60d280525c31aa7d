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
