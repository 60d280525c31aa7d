//! `kam generate`: synthetic transactions from a planted segment chain.

use crate::domain::calendar::{PeriodUnit, civil_from_days, day_of};
use crate::domain::transactions::Transactions;
use crate::model::regimes::{Regime, simulate_regime};
use crate::model::simulate::{SimulationParams, simulate};
use anyhow::Context;
use chrono::NaiveDate;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of customers (default 10,000; with `--regime b2b`, 600).
    #[arg(long)]
    pub customers: Option<u32>,
    /// Generate a kind of business by a BTYD buying process instead of the planted segment
    /// chain: `btyd` (CDNOW-like), `weekly` (frequent buyers, six months of history), `b2b` (few
    /// large accounts, long gaps), `trend` (five years, growing). Writes the transactions and
    /// <stem>.truth.json, and prints the backtest to run with kam's defaults.
    #[arg(long, conflicts_with_all = ["periods", "start", "change_at", "second_order", "attribute_effect"])]
    pub regime: Option<Regime>,
    /// Number of quarters simulated.
    #[arg(long, default_value_t = 12)]
    pub periods: u32,
    /// First day of the first quarter.
    #[arg(long, default_value = "2022-01-01")]
    pub start: NaiveDate,
    /// Random seed; the same seed gives the same files.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// From this quarter (0-based) on, move by a second planted chain (key and core accounts
    /// hold on less): data whose chain changes half-way.
    #[arg(long)]
    pub change_at: Option<u32>,
    /// Second order: a key account that slipped to core is likelier to win back key than other
    /// core accounts (to test the order diagnostic).
    #[arg(long)]
    pub second_order: bool,
    /// Give every customer a numeric attribute in [0, 1), written to <stem>.customers.csv, that
    /// drives key and core accounts' moves with this strength in [0, 1] (a high attribute stays
    /// in its tier more often); 0 writes the attribute without any effect. The .kam.toml then
    /// turns covariate transitions on.
    #[arg(long)]
    pub attribute_effect: Option<f64>,
    /// Transactions file to write (.csv, or .parquet); the truth goes to <stem>.truth.json and
    /// the matching kam configuration to <stem>.kam.toml beside it.
    #[arg(long, default_value = "data/generated.csv")]
    pub out: PathBuf,
}

/// `<dir>/<stem><suffix>` beside `path`.
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!("{stem}{suffix}"))
}

pub fn run(a: Args) -> anyhow::Result<()> {
    if let Some(regime) = a.regime {
        return run_regime(regime, a.customers.unwrap_or(regime.default_customers()), a.seed, &a.out);
    }
    let customers = a.customers.unwrap_or(10_000);
    anyhow::ensure!(customers > 0, "--customers must be at least 1");
    anyhow::ensure!(a.periods >= 2, "--periods must be at least 2 (a move needs two periods)");
    let start = day_of(a.start);
    anyhow::ensure!(
        PeriodUnit::Quarter.start(PeriodUnit::Quarter.ordinal(start)) == start,
        "--start must be the first day of a quarter (e.g. 2022-01-01), got {}",
        a.start
    );
    if let Some(c) = a.change_at {
        anyhow::ensure!(c >= 1 && c < a.periods, "--change-at must be a quarter between 1 and {}", a.periods - 1);
    }
    if let Some(s) = a.attribute_effect {
        anyhow::ensure!((0.0..=1.0).contains(&s), "--attribute-effect must be between 0 and 1, got {s}");
    }
    let params = SimulationParams {
        customers,
        periods: a.periods,
        start: a.start,
        seed: a.seed,
        change_at: a.change_at,
        second_order: a.second_order,
        attribute_effect: a.attribute_effect,
    };
    let progress = super::progress::Progress::new();
    progress.step(format!("simulating {} customers", crate::cli::table::thousands(u64::from(customers))));
    let (tx, truth) = simulate(&params, &crate::model::parallel::Rayon);
    progress.step(format!("writing {}", a.out.display()));
    write_transactions(&a.out, &tx)?;
    let truth_path = sibling(&a.out, ".truth.json");
    write_json(&truth_path, &truth)?;
    let config_path = sibling(&a.out, ".kam.toml");
    let config = format!(
        "# kam configuration matching the planted states of {} (seed {}).\n\
         # Train with: kam train {} --config {}\n\n{}",
        a.out.display(),
        a.seed,
        a.out.display(),
        config_path.display(),
        truth.config.to_toml()
    );
    std::fs::write(&config_path, config).with_context(|| format!("cannot write {}", config_path.display()))?;
    let customers_path = sibling(&a.out, ".customers.csv");
    if params.attribute_effect.is_some() {
        write_attributes(&customers_path, &tx, a.seed)
            .with_context(|| format!("cannot write {}", customers_path.display()))?;
    }
    drop(progress);
    println!(
        "generated {} rows for {} customers over {} quarters from {} (seed {})",
        crate::cli::table::thousands(tx.len() as u64),
        crate::cli::table::thousands(u64::from(customers)),
        a.periods,
        a.start,
        a.seed
    );
    println!("  transactions: {}", a.out.display());
    println!("  truth:        {}", truth_path.display());
    println!("  config:       {}", config_path.display());
    if params.attribute_effect.is_some() {
        println!("  customers:    {} (train with --customers)", customers_path.display());
    }
    Ok(())
}

/// `kam generate --regime`: a BTYD-process business with its truth.
fn run_regime(regime: Regime, customers: u32, seed: u64, out: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(customers > 0, "--customers must be at least 1");
    let progress = super::progress::Progress::new();
    progress.step(format!(
        "simulating {} {} customers",
        crate::cli::table::thousands(u64::from(customers)),
        regime.name()
    ));
    let (tx, truth) = simulate_regime(regime, customers, seed, &crate::model::parallel::Rayon);
    progress.step(format!("writing {}", out.display()));
    write_transactions(out, &tx)?;
    let truth_path = sibling(out, ".truth.json");
    write_json(&truth_path, &truth)?;
    drop(progress);
    let s = &truth.spec;
    println!(
        "generated {} rows for {} customers of the {} regime from {} to {} (seed {seed})",
        crate::cli::table::thousands(tx.len() as u64),
        crate::cli::table::thousands(u64::from(customers)),
        regime.name(),
        s.start,
        s.end
    );
    println!("  transactions: {}", out.display());
    println!("  truth:        {}", truth_path.display());
    println!("  backtest with the defaults: kam evaluate {} --calibration-end {}", out.display(), s.calibration_end);
    Ok(())
}

/// Writes `value` as pretty JSON with a final newline.
fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut json = serde_json::to_string_pretty(value)?;
    json.push('\n');
    std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes transactions as CSV, or Parquet for a `.parquet`/`.pq` path, creating the directory.
fn write_transactions(out: &Path, tx: &Transactions) -> anyhow::Result<()> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if out.extension().is_some_and(|e| e == "parquet" || e == "pq") {
        crate::ingest::parquet::write(out, tx).with_context(|| format!("cannot write {}", out.display()))
    } else {
        write_csv(out, tx).with_context(|| format!("cannot write {}", out.display()))
    }
}

/// Writes `customer_id,attribute` for every simulated customer.
pub fn write_attributes(path: &Path, tx: &Transactions, seed: u64) -> std::io::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    w.write_all(b"customer_id,attribute\n")?;
    for (c, id) in tx.customer_ids.iter().enumerate() {
        writeln!(w, "{id},{:.6}", crate::model::simulate::customer_attribute(seed, c as u32))?;
    }
    w.flush()
}

/// Writes `customer_id,date,amount` with amounts to the cent.
pub fn write_csv(path: &Path, tx: &Transactions) -> std::io::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    w.write_all(b"customer_id,date,amount\n")?;
    let mut line = Vec::with_capacity(64);
    let mut num = itoa::Buffer::new();
    for i in 0..tx.len() {
        line.clear();
        line.extend_from_slice(tx.customer_ids[tx.customer[i] as usize].as_bytes());
        line.push(b',');
        let (y, m, d) = civil_from_days(tx.day[i]);
        line.extend_from_slice(num.format(y).as_bytes());
        line.extend_from_slice(&[b'-', b'0' + (m / 10) as u8, b'0' + (m % 10) as u8]);
        line.extend_from_slice(&[b'-', b'0' + (d / 10) as u8, b'0' + (d % 10) as u8]);
        line.push(b',');
        let cents = (tx.amount[i] * 100.0).round() as i64;
        if cents < 0 {
            line.push(b'-');
        }
        let abs = cents.unsigned_abs();
        line.extend_from_slice(num.format(abs / 100).as_bytes());
        let c = (abs % 100) as u8;
        line.extend_from_slice(&[b'.', b'0' + c / 10, b'0' + c % 10, b'\n']);
        w.write_all(&line)?;
    }
    w.flush()
}
