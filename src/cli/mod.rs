//! The command line: one file per subcommand. `anyhow` is used here and in `main` only.

pub mod aggregate_sql;
pub mod evaluate;
pub mod generate;
pub mod input;
pub mod key_report;
pub mod models;
pub mod output;
pub mod progress;
pub mod report;
pub mod score;
pub mod serve;
pub mod table;
pub mod train;

use clap::{Parser, Subcommand};

/// kam — forecast how customers, and above all key accounts, move between segments.
#[derive(Debug, Parser)]
#[command(name = "kam", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Simulate transactions from a planted segment chain (writes data, truth and config).
    Generate(generate::Args),
    /// Train a model from transactions and store it under the models directory.
    Train(train::Args),
    /// Score customers: segment, RFM values and forecasts per customer (CSV, JSON Lines, Parquet).
    Score(score::Args),
    /// Backtest: train up to a calibration end, forecast the holdout, compare with baselines.
    Evaluate(evaluate::Args),
    /// Serve predictions over HTTP from the active model (hot-swappable).
    Serve(serve::Args),
    /// Write a self-contained HTML report of a model: charts of segments, forecast, transitions,
    /// value, churn risk, key accounts at risk, backtest and diagnostics.
    Report(report::Args),
    /// Print the SQL that groups a transactions table into kam's activity table in your own
    /// engine (Spark, DuckDB, PostgreSQL, BigQuery, Snowflake); train on its output with
    /// `kam train --aggregates`.
    AggregateSql(aggregate_sql::Args),
    /// List, show or activate stored models.
    #[command(subcommand)]
    Models(models::Command),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Generate(a) => generate::run(a),
        Command::Train(a) => train::run(a),
        Command::Evaluate(a) => evaluate::run(a),
        Command::Score(a) => score::run(a),
        Command::Models(c) => models::run(c),
        Command::Serve(a) => serve::run(a),
        Command::Report(a) => report::run(a),
        Command::AggregateSql(a) => aggregate_sql::run(a),
    }
}
