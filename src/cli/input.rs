//! Flags shared by the subcommands that read transactions (`train`, `score`, `evaluate`).

use super::progress::Progress;
use super::table::thousands;
use crate::domain::activity::{Activity, aggregate_in};
use crate::domain::calendar::{PeriodUnit, date_of};
use crate::domain::forecast::intervals::{DEFAULT_DRAWS, DEFAULT_LEVEL};
use crate::domain::spend::SpendChoice;
use crate::domain::transactions::CustomerAttributes;
use crate::domain::value::ValueBasis;
use crate::ingest::{self, ColumnRef, DateRange, Delimiter, HeaderMode, Ingested, OnBadRow, ReadOptions};
use crate::model::config::{BlendChoice, RuleName, TrainConfig, UnitName};
use crate::model::train::{SourceInfo, Stage};
use anyhow::Context;
use chrono::NaiveDate;
use std::path::PathBuf;

/// The transactions file (or an engine's activity table), how to read it, and the optional
/// customer attributes.
#[derive(Debug, clap::Args)]
pub struct InputArgs {
    /// Transactions file: CSV or other delimited text, or Parquet (.parquet).
    #[arg(required_unless_present = "aggregates", conflicts_with = "aggregates")]
    pub input: Option<PathBuf>,
    /// Instead of a transactions file: the activity table an engine wrote from `kam
    /// aggregate-sql`'s query (CSV or Parquet; a file or a directory of part files).
    #[arg(long, value_name = "PATH")]
    pub aggregates: Option<PathBuf>,
    /// Customer attributes file (CSV with customer_id and numeric columns) for the spend regression.
    #[arg(long)]
    pub customers: Option<PathBuf>,
    /// Field delimiter: auto, whitespace, tab, comma, semicolon, pipe or one character.
    #[arg(long, default_value = "auto")]
    pub delimiter: Delimiter,
    /// The first line is a header.
    #[arg(long, conflicts_with = "no_header")]
    pub header: bool,
    /// The file has no header line.
    #[arg(long)]
    pub no_header: bool,
    /// Customer id column: a header name or a 1-based position.
    #[arg(long, conflicts_with = "aggregates")]
    pub customer_col: Option<ColumnRef>,
    /// Date column: a header name or a 1-based position.
    #[arg(long, conflicts_with = "aggregates")]
    pub date_col: Option<ColumnRef>,
    /// Amount column: a header name or a 1-based position.
    #[arg(long, conflicts_with = "aggregates")]
    pub amount_col: Option<ColumnRef>,
    /// Margin column: a header name or a 1-based position.
    #[arg(long, conflicts_with = "aggregates")]
    pub margin_col: Option<ColumnRef>,
    /// What to do with a row that does not parse: fail or skip.
    #[arg(long, default_value = "fail", conflicts_with = "aggregates")]
    pub on_bad_row: OnBadRow,
    /// Keep only rows dated FROM..TO (either side may be left out: 2020-01-01..); the rows left
    /// out are counted in the model's fingerprint.
    #[arg(long, value_name = "FROM..TO")]
    pub date_range: Option<DateRange>,
}

impl InputArgs {
    fn options(&self) -> ReadOptions {
        ReadOptions {
            delimiter: self.delimiter,
            header: if self.header {
                HeaderMode::Yes
            } else if self.no_header {
                HeaderMode::No
            } else {
                HeaderMode::Auto
            },
            customer: self.customer_col.clone(),
            date: self.date_col.clone(),
            amount: self.amount_col.clone(),
            margin: self.margin_col.clone(),
            on_bad_row: self.on_bad_row,
            date_range: self.date_range,
        }
    }

    /// The file or directory read, for messages.
    pub fn path(&self) -> &std::path::Path {
        self.input.as_deref().or(self.aggregates.as_deref()).expect("clap requires one")
    }

    /// The activity table in the periods `unit_of(first date)` gives — aggregated from the
    /// transactions file, or read from `--aggregates` — with how it was read and the attributes
    /// aligned with its customers.
    pub fn activity(
        &self,
        progress: &Progress,
        unit_of: &dyn Fn(NaiveDate) -> PeriodUnit,
    ) -> anyhow::Result<(Activity, SourceInfo, Option<CustomerAttributes>)> {
        let (activity, source) = match &self.aggregates {
            Some(path) => {
                progress.step(format!("reading the activity table {}", path.display()));
                let activity = ingest::activity::read_activity(path, unit_of)?;
                // The query applied --date-range; the table must agree with the one given here.
                if let Some(range) = self.date_range {
                    let (first, last) = (date_of(activity.first_day), date_of(activity.last_day));
                    anyhow::ensure!(
                        range.from.is_none_or(|f| f <= first) && range.to.is_none_or(|t| last <= t),
                        "{} holds rows from {first} to {last}, outside --date-range {range}: emit the query with the same --date-range",
                        path.display()
                    );
                }
                let source = SourceInfo { rows_skipped: 0, date_range: self.date_range.map(|r| r.to_string()) };
                (activity, source)
            }
            None => {
                let ingested = self.read(progress)?;
                progress.step("grouping transactions by customer and period");
                let activity = aggregate_in(&ingested.transactions, unit_of)
                    .with_context(|| format!("cannot aggregate {}", self.path().display()))?;
                (activity, ingested.source())
            }
        };
        let attributes = self.attributes(progress, &activity.customer_ids)?;
        Ok((activity, source, attributes))
    }

    /// Reads the transactions, reporting skipped rows and rows out of `--date-range` on stderr.
    fn read(&self, progress: &Progress) -> anyhow::Result<Ingested> {
        let input = self.input.as_deref().expect("a transactions file");
        progress.step(format!("reading {}", input.display()));
        let ingested = ingest::read_transactions(input, &self.options())?;
        if ingested.rows_skipped > 0 {
            eprintln!(
                "warning: skipped {} bad row(s) in {}; the first:",
                thousands(ingested.rows_skipped),
                input.display()
            );
            for e in &ingested.first_skipped {
                eprintln!("  {e}");
            }
        }
        if ingested.rows_outside_date_range > 0 {
            eprintln!(
                "note: --date-range {} left out {} row(s)",
                self.date_range.map(|r| r.to_string()).unwrap_or_default(),
                thousands(ingested.rows_outside_date_range)
            );
        }
        Ok(ingested)
    }

    /// The attributes file, aligned with `customer_ids`.
    fn attributes(&self, progress: &Progress, customer_ids: &[String]) -> anyhow::Result<Option<CustomerAttributes>> {
        Ok(match &self.customers {
            Some(p) => {
                progress.step(format!("reading {}", p.display()));
                let (attrs, report) = ingest::attributes::read(p, customer_ids)?;
                if !report.ignored_columns.is_empty() {
                    eprintln!("note: non-numeric attribute columns not used: {}", report.ignored_columns.join(", "));
                }
                if report.unknown_customers > 0 {
                    eprintln!(
                        "note: {} attribute row(s) name customers with no transactions",
                        report.unknown_customers
                    );
                }
                Some(attrs)
            }
            None => None,
        })
    }
}

/// The training configuration: a TOML file and flags over it.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// Training configuration (TOML); flags below override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Period length: week, month, quarter, year or days.
    #[arg(long, value_parser = parse_unit)]
    pub period: Option<UnitName>,
    /// Period length in days (with --period days).
    #[arg(long)]
    pub length_days: Option<u32>,
    /// A day on which a period starts (with --period days).
    #[arg(long)]
    pub anchor: Option<NaiveDate>,
    /// Train on complete periods ending on or before this date.
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
    /// Trailing window in periods for frequency and monetary value.
    #[arg(long)]
    pub window: Option<u32>,
    /// Periods without a purchase after which a customer is lapsed.
    #[arg(long)]
    pub lapse_after: Option<u32>,
    /// Split the inactive state by periods since the last purchase (true or false).
    #[arg(long)]
    pub split_inactive: Option<bool>,
    /// Split inactive states by the tier of the trailing value (true or false).
    #[arg(long)]
    pub inactive_tiers: Option<bool>,
    /// Tier rule: top_share, value_share or fixed.
    #[arg(long, value_parser = parse_rule)]
    pub tier_rule: Option<RuleName>,
    /// Tier cuts, comma-separated (e.g. 0.2,0.5).
    #[arg(long, value_delimiter = ',')]
    pub cuts: Option<Vec<f64>>,
    /// Additive prior count on every allowed move.
    #[arg(long)]
    pub prior: Option<f64>,
    /// Fit the transition matrix on the moves of the last K periods only.
    #[arg(long)]
    pub recent_periods: Option<usize>,
    /// Covariate-dependent first steps: a multinomial logit per origin on RFM values and
    /// attributes, kept where it beats the pooled row on held-out moves (true or false).
    #[arg(long)]
    pub covariates: Option<bool>,
    /// Spend model: auto (chosen on the moves into the last training period), ols, log_ols or
    /// tweedie.
    #[arg(long, value_parser = parse_spend_model)]
    pub spend_model: Option<SpendChoice>,
    /// Variance power of the Tweedie spend model (strictly between 1 and 2).
    #[arg(long)]
    pub tweedie_power: Option<f64>,
    /// What a period is worth: revenue or margin (needs a margin column).
    #[arg(long, value_parser = parse_basis)]
    pub value_basis: Option<ValueBasis>,
    /// Cost to serve a customer per period, subtracted from every period it is not lapsed.
    #[arg(long)]
    pub service_cost_per_period: Option<f64>,
    /// Numeric column of the customers file with each customer's cost to serve per period.
    #[arg(long)]
    pub service_cost_attribute: Option<String>,
    /// Blend the chain's no-purchase probabilities and spend with the better of BG/NBD and
    /// Pareto/NBD (+ Gamma–Gamma), weights set on held-out periods: auto or off.
    #[arg(long, value_parser = parse_blend)]
    pub blend: Option<BlendChoice>,
}

fn parse_unit(s: &str) -> Result<UnitName, String> {
    setting(s, "period", "week, month, quarter, year or days")
}

fn parse_spend_model(s: &str) -> Result<SpendChoice, String> {
    setting(s, "spend model", "auto, ols, log_ols or tweedie")
}

fn parse_blend(s: &str) -> Result<BlendChoice, String> {
    setting(s, "blend", "auto or off")
}

fn parse_basis(s: &str) -> Result<ValueBasis, String> {
    setting(s, "value basis", "revenue or margin")
}

fn parse_rule(s: &str) -> Result<RuleName, String> {
    setting(s, "tier rule", "top_share, value_share or fixed")
}

/// A flag's value by the same name the configuration file uses for it (its serde name).
fn setting<T: serde::de::DeserializeOwned>(s: &str, what: &str, expected: &str) -> Result<T, String> {
    T::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(s))
        .map_err(|_| format!("unknown {what} {s:?}: expected {expected}"))
}

impl ConfigArgs {
    /// The configuration file (if any) with the flags applied over it, checked.
    pub fn resolve(&self) -> anyhow::Result<TrainConfig> {
        let c = match &self.config {
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
                TrainConfig::from_toml(&text)
                    .with_context(|| format!("{} is not a valid kam configuration", p.display()))?
            }
            None => TrainConfig::default(),
        };
        // The flags given, as the configuration entries they set (section, key, value), laid
        // over the file through the configuration's own deserializer.
        fn value<T: serde::Serialize>(v: &T) -> toml::Value {
            toml::Value::try_from(v).expect("a flag's value serializes")
        }
        let flags: [(&str, &str, Option<toml::Value>); 19] = [
            ("period", "unit", self.period.as_ref().map(value)),
            ("period", "length_days", self.length_days.as_ref().map(value)),
            ("period", "anchor", self.anchor.as_ref().map(value)),
            ("period", "as_of", self.as_of.as_ref().map(value)),
            ("segments", "window", self.window.as_ref().map(value)),
            ("segments", "lapse_after", self.lapse_after.as_ref().map(value)),
            ("segments", "split_inactive", self.split_inactive.as_ref().map(value)),
            ("segments", "inactive_tiers", self.inactive_tiers.as_ref().map(value)),
            ("segments", "rule", self.tier_rule.as_ref().map(value)),
            ("segments", "cuts", self.cuts.as_ref().map(value)),
            ("transitions", "prior", self.prior.as_ref().map(value)),
            ("transitions", "recent_periods", self.recent_periods.as_ref().map(value)),
            ("transitions", "covariates", self.covariates.as_ref().map(value)),
            ("spend", "model", self.spend_model.as_ref().map(value)),
            ("spend", "tweedie_power", self.tweedie_power.as_ref().map(value)),
            ("value", "basis", self.value_basis.as_ref().map(value)),
            ("value", "service_cost_per_period", self.service_cost_per_period.as_ref().map(value)),
            ("value", "service_cost_attribute", self.service_cost_attribute.as_ref().map(value)),
            ("btyd", "blend", self.blend.as_ref().map(value)),
        ];
        let mut table = toml::Value::try_from(&c).expect("a configuration serializes");
        for (section, key, v) in flags {
            if let (Some(v), Some(toml::Value::Table(t))) = (v, table.get_mut(section)) {
                t.insert(key.to_string(), v);
            }
        }
        let c: TrainConfig = table.try_into().context("invalid flags")?;
        if let Err(e) = c.check() {
            match &self.config {
                Some(p) => anyhow::bail!("invalid configuration ({} and flags): {e}", p.display()),
                None => anyhow::bail!("invalid configuration: {e}"),
            }
        }
        Ok(c)
    }
}

/// What a training stage is doing, for the progress line.
pub fn stage_message(s: Stage) -> &'static str {
    match s {
        Stage::Aggregating => "laying the periods over the activity table",
        Stage::LearningTiers => "learning value tiers",
        Stage::Counting => "counting transitions and spend moments",
        Stage::Fitting => "fitting",
        Stage::FittingBtyd => "fitting BG/NBD, Pareto/NBD and Gamma–Gamma",
        Stage::SettingBlend => "setting the blend on held-out periods",
    }
}

/// Intervals on forecast numbers (`kam score`, `kam evaluate`).
#[derive(Debug, Clone, clap::Args)]
pub struct IntervalArgs {
    /// Posterior draws behind the intervals (`*_lo`, `*_hi`); 0 leaves them out.
    #[arg(long, default_value_t = DEFAULT_DRAWS)]
    pub draws: usize,
    /// Central probability of each interval.
    #[arg(long, default_value_t = DEFAULT_LEVEL)]
    pub level: f64,
    /// Seed of the draws (the same seed gives the same intervals).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl IntervalArgs {
    pub fn params(&self) -> anyhow::Result<crate::domain::forecast::intervals::IntervalParams> {
        let p = crate::domain::forecast::intervals::IntervalParams {
            draws: self.draws,
            level: self.level,
            seed: self.seed,
        };
        p.check().map_err(|e| anyhow::anyhow!("--{e}"))?;
        Ok(p)
    }
}

/// Which stored model a command reads (`kam score`, `kam report`).
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Model id (default: the active one, models/CURRENT).
    #[arg(long)]
    pub model: Option<String>,
    /// Models directory.
    #[arg(long, default_value = "models")]
    pub models: std::path::PathBuf,
}

impl ModelArgs {
    /// The store and the id asked for, or the active one; an error when there is none.
    pub fn resolve(&self) -> anyhow::Result<(crate::store::ModelStore, String)> {
        use anyhow::Context;
        let store = crate::store::ModelStore::new(&self.models);
        let id = match &self.model {
            Some(id) => id.clone(),
            None => store
                .current()?
                .with_context(|| format!("no active model in {}; train one or pass --model", store.dir().display()))?,
        };
        Ok((store, id))
    }
}

/// How a command shows states: the six families (default) or every detailed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatesShown {
    /// new, key, core, occasional, dormant, lapsed.
    Families,
    /// Every state of the scheme (e.g. dormant_3_key).
    Detailed,
}

/// The `--states` option of the commands that print tables of states.
#[derive(Debug, Clone, clap::Args)]
pub struct StatesArgs {
    /// Show the six families (new, key, core, occasional, dormant, lapsed) or every detailed state
    #[arg(long, value_enum, default_value = "families")]
    pub states: StatesShown,
}

impl StatesArgs {
    /// The grouping of `model`'s states this asks for.
    pub fn grouping(&self, model: &crate::model::artifact::ModelArtifact) -> crate::domain::states::Grouping {
        match self.states {
            StatesShown::Families => crate::domain::states::Grouping::families(&model.segments.scheme),
            StatesShown::Detailed => crate::domain::states::Grouping::detailed(&model.segments.states),
        }
    }
}
