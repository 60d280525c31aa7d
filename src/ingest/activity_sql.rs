//! `kam aggregate-sql`: one portable SQL query that turns a transactions table into kam's
//! activity table (schema [`ACTIVITY_SCHEMA`]), for an engine that holds more rows than one
//! machine should read (Spark, DuckDB, PostgreSQL, BigQuery, Snowflake). Its output, read back
//! by [`super::activity`], trains the same model byte for byte as the transactions file would
//! (`crate::domain::activity`).
//!
//! Columns, one row per (customer, period) with at least one transaction:
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `schema_version` | integer | [`ACTIVITY_SCHEMA`] |
//! | `customer_id` | text | the customer, as written in the source |
//! | `period_start` | date | first day of the period (the configuration's unit) |
//! | `rows` | integer | transactions |
//! | `occasions` | integer | purchase occasions: days with a non-negative amount |
//! | `spend` | decimal(38, 4) | sum of amounts, returns included |
//! | `margin` | decimal(38, 4) | sum of margins; null when the source has none |
//! | `purchase_spend` | decimal(38, 4) | sum of the amounts of the purchase days |
//! | `first_purchase_spend` | decimal(38, 4) | sum of the amounts of the period's first purchase day (0 without one) |
//! | `first_purchase_day`, `last_purchase_day` | date | the period's first and last purchase day; null when it held only returns |
//! | `first_day`, `last_day` | date | the period's earliest and latest transaction |
//! | `rows_beyond_4_decimals` | integer | amounts or margins the cast to decimal(38, 4) rounded (kam refuses the table if any) |
//!
//! No as-of date is applied: the table holds every period, and kam lays its calendar over it.

use crate::domain::calendar::PeriodUnit;
use crate::ingest::DateRange;

/// Version of the activity table's columns and meaning.
pub const ACTIVITY_SCHEMA: u32 = 1;

/// The SQL dialects `kam aggregate-sql` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Dialect {
    Spark,
    Duckdb,
    Postgres,
    Bigquery,
    Snowflake,
}

/// The source table's columns.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceColumns {
    pub customer: String,
    pub date: String,
    pub amount: String,
    pub margin: Option<String>,
}

impl Default for SourceColumns {
    fn default() -> Self {
        Self { customer: "customer_id".into(), date: "date".into(), amount: "amount".into(), margin: None }
    }
}

/// Why no query could be written.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SqlError {
    #[error(
        "periods of {0} days need an explicit anchor (--anchor or [period] anchor) for SQL: kam's default, the first transaction's date, is not known before the query runs"
    )]
    DaysWithoutAnchor(u32),
    #[error("{what} {name:?} is not a plain identifier (letters, digits, _, and . between parts)")]
    Identifier { what: &'static str, name: String },
}

impl Dialect {
    fn text(self) -> &'static str {
        match self {
            Dialect::Spark | Dialect::Bigquery => "STRING",
            Dialect::Duckdb | Dialect::Snowflake => "VARCHAR",
            Dialect::Postgres => "TEXT",
        }
    }

    fn decimal(self) -> &'static str {
        match self {
            Dialect::Bigquery => "BIGNUMERIC(38, 4)",
            Dialect::Postgres => "NUMERIC(38, 4)",
            Dialect::Snowflake => "NUMBER(38, 4)",
            Dialect::Spark | Dialect::Duckdb => "DECIMAL(38, 4)",
        }
    }

    fn double(self) -> &'static str {
        match self {
            Dialect::Bigquery => "FLOAT64",
            Dialect::Postgres => "DOUBLE PRECISION",
            _ => "DOUBLE",
        }
    }

    fn integer(self) -> &'static str {
        match self {
            Dialect::Bigquery => "INT64",
            _ => "BIGINT",
        }
    }

    /// A column name, quoted.
    fn quote(self, name: &str) -> String {
        match self {
            Dialect::Spark | Dialect::Bigquery => format!("`{}`", name.replace('`', "``")),
            _ => format!("\"{}\"", name.replace('"', "\"\"")),
        }
    }

    /// The first day of the period holding the DATE expression `day`.
    fn period_start(self, unit: PeriodUnit, day: &str) -> Result<String, SqlError> {
        let trunc = |part: &str| match self {
            Dialect::Bigquery => format!("DATE_TRUNC({day}, {})", part.to_ascii_uppercase()),
            Dialect::Spark | Dialect::Duckdb | Dialect::Postgres => {
                format!("CAST(DATE_TRUNC('{part}', {day}) AS DATE)")
            }
            Dialect::Snowflake => format!("DATE_TRUNC('{}', {day})", part.to_ascii_uppercase()),
        };
        Ok(match unit {
            PeriodUnit::Month => trunc("month"),
            PeriodUnit::Quarter => trunc("quarter"),
            PeriodUnit::Year => trunc("year"),
            // ISO weeks, Monday first.
            PeriodUnit::Week => match self {
                Dialect::Bigquery => format!("DATE_TRUNC({day}, ISOWEEK)"),
                Dialect::Snowflake => format!("DATEADD(day, 1 - DAYOFWEEKISO({day}), {day})"),
                _ => trunc("week"),
            },
            PeriodUnit::Days { length, anchor } => {
                let a = anchor.format("%Y-%m-%d");
                let since = match self {
                    Dialect::Spark => format!("DATEDIFF({day}, DATE '{a}')"),
                    Dialect::Duckdb | Dialect::Postgres => format!("({day} - DATE '{a}')"),
                    Dialect::Bigquery => format!("DATE_DIFF({day}, DATE '{a}', DAY)"),
                    Dialect::Snowflake => format!("DATEDIFF(day, DATE '{a}', {day})"),
                };
                // Days since the period's start: a modulo that is never negative.
                let back = format!("MOD(MOD({since}, {length}) + {length}, {length})");
                match self {
                    Dialect::Spark => format!("DATE_SUB({day}, CAST({back} AS INT))"),
                    Dialect::Duckdb => format!("CAST({day} - CAST({back} AS INTEGER) AS DATE)"),
                    Dialect::Postgres => format!("({day} - CAST({back} AS INTEGER))"),
                    Dialect::Bigquery => format!("DATE_SUB({day}, INTERVAL {back} DAY)"),
                    Dialect::Snowflake => format!("DATEADD(day, -({back}), {day})"),
                }
            }
        })
    }

    /// An ORDER BY key that sorts text by its bytes (kam's customer order), where the default
    /// collation may not.
    fn byte_order(self, column: &str) -> String {
        match self {
            // PostgreSQL's database collation is usually a locale's; "C" is byte order. The
            // others compare strings by their bytes unless told otherwise.
            Dialect::Postgres => format!("{column} COLLATE \"C\""),
            _ => column.to_string(),
        }
    }
}

/// A source table name: identifiers separated by dots, each made of letters, digits and `_`.
fn check_table(name: &str) -> Result<(), SqlError> {
    let ok = !name.is_empty()
        && name.split('.').all(|p| {
            !p.is_empty()
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !p.starts_with(|c: char| c.is_ascii_digit())
        });
    if ok { Ok(()) } else { Err(SqlError::Identifier { what: "source table", name: name.to_string() }) }
}

/// The query: `source` names the transactions table (or view), `columns` its columns; rows
/// outside `date_range` are left out as `--date-range` leaves them out of a file.
pub fn activity_query(
    dialect: Dialect,
    source: &str,
    columns: &SourceColumns,
    unit: PeriodUnit,
    date_range: Option<DateRange>,
) -> Result<String, SqlError> {
    check_table(source)?;
    let q = |c: &str| dialect.quote(c);
    let (text, dec, dbl, int) = (dialect.text(), dialect.decimal(), dialect.double(), dialect.integer());
    let day = "tx_day";
    let period_start = dialect.period_start(unit, day)?;
    let margin = match &columns.margin {
        Some(m) => format!("CAST({} AS {dec})", q(m)),
        None => format!("CAST(NULL AS {dec})"),
    };
    let off_scale =
        |col: &str| format!("CASE WHEN CAST({col} AS {dbl}) <> CAST(CAST({col} AS {dec}) AS {dbl}) THEN 1 ELSE 0 END");
    let beyond = match &columns.margin {
        Some(m) => format!("{} + {}", off_scale(&q(&columns.amount)), off_scale(&q(m))),
        None => off_scale(&q(&columns.amount)),
    };
    let mut filter = Vec::new();
    if let Some(r) = date_range {
        if let Some(f) = r.from {
            filter.push(format!("{day} >= DATE '{}'", f.format("%Y-%m-%d")));
        }
        if let Some(t) = r.to {
            filter.push(format!("{day} <= DATE '{}'", t.format("%Y-%m-%d")));
        }
    }
    let filter = if filter.is_empty() { String::new() } else { format!("\n  WHERE {}", filter.join(" AND ")) };
    let range_note = date_range.map(|r| format!(", --date-range {r}")).unwrap_or_default();
    Ok(format!(
        "-- kam aggregate-sql: the activity table (schema {ACTIVITY_SCHEMA}) of {source}, {unit} periods{range_note}, {dialect:?} dialect.
-- Train on its output with: kam train --aggregates <file or directory> (same configuration).
WITH kam_rows AS (
  SELECT
    CAST({customer} AS {text}) AS customer_id,
    CAST({date} AS DATE) AS {day},
    CAST({amount} AS {dec}) AS amount,
    {margin} AS margin,
    {beyond} AS beyond_scale
  FROM {source}
),
kam_days AS (
  SELECT customer_id, {day}, {period_start} AS period_start,
    COUNT(*) AS n_rows, SUM(amount) AS spend, SUM(margin) AS margin,
    MAX(CASE WHEN amount >= 0 THEN 1 ELSE 0 END) AS bought, SUM(beyond_scale) AS beyond_scale
  FROM kam_rows{filter}
  GROUP BY customer_id, {day}
),
kam_marked AS (
  SELECT kam_days.*,
    MIN(CASE WHEN bought = 1 THEN {day} END) OVER (PARTITION BY customer_id, period_start) AS first_purchase_day
  FROM kam_days
)
SELECT
  CAST({ACTIVITY_SCHEMA} AS {int}) AS schema_version,
  customer_id,
  period_start,
  CAST(SUM(n_rows) AS {int}) AS {rows},
  CAST(SUM(bought) AS {int}) AS occasions,
  CAST(SUM(spend) AS {dec}) AS spend,
  CAST(SUM(margin) AS {dec}) AS margin,
  CAST(SUM(CASE WHEN bought = 1 THEN spend ELSE 0 END) AS {dec}) AS purchase_spend,
  CAST(SUM(CASE WHEN {day} = first_purchase_day THEN spend ELSE 0 END) AS {dec}) AS first_purchase_spend,
  MIN(first_purchase_day) AS first_purchase_day,
  MAX(CASE WHEN bought = 1 THEN {day} END) AS last_purchase_day,
  MIN({day}) AS first_day,
  MAX({day}) AS last_day,
  CAST(SUM(beyond_scale) AS {int}) AS rows_beyond_4_decimals
FROM kam_marked
GROUP BY customer_id, period_start
ORDER BY {order}, period_start
",
        customer = q(&columns.customer),
        date = q(&columns.date),
        amount = q(&columns.amount),
        rows = q("rows"),
        order = dialect.byte_order("customer_id"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn every_dialect_gets_its_own_types_and_date_functions() {
        let cols = SourceColumns::default();
        let q = |d, u| activity_query(d, "sales.tx", &cols, u, None).unwrap();
        assert!(q(Dialect::Postgres, PeriodUnit::Month).contains("CAST(DATE_TRUNC('month', tx_day) AS DATE)"));
        assert!(q(Dialect::Postgres, PeriodUnit::Month).contains("NUMERIC(38, 4)"));
        assert!(q(Dialect::Postgres, PeriodUnit::Month).contains("customer_id COLLATE \"C\""));
        assert!(q(Dialect::Bigquery, PeriodUnit::Week).contains("DATE_TRUNC(tx_day, ISOWEEK)"));
        assert!(q(Dialect::Bigquery, PeriodUnit::Week).contains("`customer_id`"));
        assert!(q(Dialect::Snowflake, PeriodUnit::Week).contains("DAYOFWEEKISO(tx_day)"));
        assert!(q(Dialect::Spark, PeriodUnit::Quarter).contains("STRING"));
        let anchor = NaiveDate::from_ymd_opt(2024, 1, 5).unwrap();
        let days = q(Dialect::Duckdb, PeriodUnit::Days { length: 10, anchor });
        assert!(days.contains("MOD(MOD((tx_day - DATE '2024-01-05'), 10) + 10, 10)"), "{days}");
        assert!(q(Dialect::Duckdb, PeriodUnit::Month).contains("CAST(NULL AS DECIMAL(38, 4)) AS margin"));
    }

    #[test]
    fn a_date_range_filters_rows_and_a_table_name_must_be_an_identifier() {
        let range: DateRange = "2020-01-01..2020-12-31".parse().unwrap();
        let sql =
            activity_query(Dialect::Duckdb, "tx", &SourceColumns::default(), PeriodUnit::Month, Some(range)).unwrap();
        assert!(sql.contains("WHERE tx_day >= DATE '2020-01-01' AND tx_day <= DATE '2020-12-31'"), "{sql}");
        let bad =
            activity_query(Dialect::Duckdb, "tx; DROP TABLE x", &SourceColumns::default(), PeriodUnit::Month, None);
        assert!(matches!(bad, Err(SqlError::Identifier { .. })));
        // Column names are quoted, so any name is safe.
        let cols = SourceColumns { customer: "Kunde \"Nr\"".into(), ..SourceColumns::default() };
        let sql = activity_query(Dialect::Postgres, "tx", &cols, PeriodUnit::Month, None).unwrap();
        assert!(sql.contains("CAST(\"Kunde \"\"Nr\"\"\" AS TEXT)"), "{sql}");
    }
}
