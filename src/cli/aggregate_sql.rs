//! `kam aggregate-sql`: print the query that builds the activity table in the user's own engine.

use super::input::ConfigArgs;
use crate::ingest::DateRange;
use crate::ingest::activity_sql::{Dialect, SourceColumns, activity_query};

/// Print one SQL query (Spark, DuckDB, PostgreSQL, BigQuery or Snowflake) that groups a
/// transactions table into kam's activity table; `kam train --aggregates` reads its output.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The engine's SQL dialect.
    #[arg(long, value_enum)]
    pub dialect: Dialect,
    /// The transactions table or view (e.g. sales.transactions).
    #[arg(long)]
    pub source: String,
    /// Customer id column of the source.
    #[arg(long, default_value = "customer_id")]
    pub customer_col: String,
    /// Date column of the source (a DATE, or text the engine casts to one).
    #[arg(long, default_value = "date")]
    pub date_col: String,
    /// Amount column of the source.
    #[arg(long, default_value = "amount")]
    pub amount_col: String,
    /// Margin column of the source, if it has one.
    #[arg(long)]
    pub margin_col: Option<String>,
    /// Keep only rows dated FROM..TO, as `kam train --date-range` does.
    #[arg(long, value_name = "FROM..TO")]
    pub date_range: Option<DateRange>,
    /// The training configuration: only its period settings shape the query.
    #[command(flatten)]
    pub config: ConfigArgs,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let config = a.config.resolve()?;
    let period = &config.period;
    let unit = match (period.unit, period.anchor) {
        (crate::model::config::UnitName::Days, None) => {
            anyhow::bail!(crate::ingest::activity_sql::SqlError::DaysWithoutAnchor(period.length_days.unwrap_or(1)))
        }
        // The first date only stands in for an anchor, and there is one.
        _ => config.check()?.period_unit(chrono::NaiveDate::MIN),
    };
    let columns =
        SourceColumns { customer: a.customer_col, date: a.date_col, amount: a.amount_col, margin: a.margin_col };
    print!("{}", activity_query(a.dialect, &a.source, &columns, unit, a.date_range)?);
    Ok(())
}
