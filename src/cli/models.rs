//! `kam models`: list, show and activate stored models.

use crate::model::artifact::ModelArtifact;
use crate::store::ModelStore;
use serde_json::Value;
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List the stored models (the active one is marked with *).
    List {
        /// Models directory.
        #[arg(long, default_value = "models")]
        models: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Describe a stored model: data, periods, scheme, chosen models, blend, backtest metrics.
    Show {
        /// Model id (or "current").
        id: String,
        #[arg(long, default_value = "models")]
        models: PathBuf,
        /// Print the whole artifact (JSON) instead.
        #[arg(long)]
        json: bool,
    },
    /// Two stored models side by side, line by line as `show` describes them; lines that
    /// differ are marked with `≠`.
    Compare {
        /// Model id (or "current").
        a: String,
        /// Model id (or "current").
        b: String,
        #[arg(long, default_value = "models")]
        models: PathBuf,
        /// Print `{"a": id, "b": id, "lines": [{"what", "a", "b", "differs"}]}` instead.
        #[arg(long)]
        json: bool,
    },
    /// Make a stored model the active one (models/CURRENT).
    Activate {
        id: String,
        #[arg(long, default_value = "models")]
        models: PathBuf,
    },
}

fn resolve(store: &ModelStore, id: &str) -> anyhow::Result<String> {
    if id == "current" {
        store.current()?.ok_or_else(|| anyhow::anyhow!("no active model in {}", store.dir().display()))
    } else {
        Ok(id.to_string())
    }
}

pub fn run(c: Command) -> anyhow::Result<()> {
    match c {
        Command::List { models, json } => {
            let store = ModelStore::new(models);
            let list = store.list()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            if list.is_empty() {
                println!("no models in {}", store.dir().display());
            }
            for m in list {
                let mark = if m.active { "*" } else { " " };
                match m.problem {
                    None => {
                        let auc = m.backtest_auc.map_or("no backtest".to_string(), |a| format!("backtest AUC {a:.3}"));
                        println!(
                            "{mark} {}  as of {}  {}  {} states  spend {}  {auc}  {} customers  data {}",
                            m.id, m.as_of, m.scheme, m.states, m.spend_model, m.customers, m.data
                        )
                    }
                    Some(p) => println!("{mark} {}  UNREADABLE: {p}", m.id),
                }
            }
        }
        Command::Show { id, models, json } => {
            let store = ModelStore::new(models);
            let id = resolve(&store, &id)?;
            let artifact = store.load(&id)?;
            if json {
                print!("{}", crate::store::to_json(&artifact));
            } else {
                let lines = describe(&artifact);
                let width = lines.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
                for (what, value) in lines {
                    println!("{what:width$}  {value}");
                }
            }
        }
        Command::Compare { a, b, models, json } => {
            let store = ModelStore::new(models);
            let (a, b) = (resolve(&store, &a)?, resolve(&store, &b)?);
            let (da, db) = (describe(&store.load(&a)?), describe(&store.load(&b)?));
            let lines = side_by_side(&da, &db);
            if json {
                let lines: Vec<Value> = lines
                    .iter()
                    .map(|(what, x, y)| serde_json::json!({"what": what, "a": x, "b": y, "differs": x != y}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&serde_json::json!({"a": a, "b": b, "lines": lines}))?);
                return Ok(());
            }
            let w0 = lines.iter().map(|(k, _, _)| k.chars().count()).max().unwrap_or(0);
            let w1 = lines.iter().map(|(_, x, _)| x.chars().count()).max().unwrap_or(0);
            for (what, x, y) in &lines {
                let mark = if x != y && what != "id" { "≠" } else { " " };
                println!("{mark} {what:w0$}  {x:w1$}  {y}");
            }
        }
        Command::Activate { id, models } => {
            let store = ModelStore::new(models);
            store.activate(&id)?;
            println!("active model: {id}");
        }
    }
    Ok(())
}

/// A number for people: `digits` decimals.
fn num(v: &Value, digits: usize) -> String {
    v.as_f64().map_or_else(|| "—".to_string(), |x| format!("{x:.digits$}"))
}

/// The lines `kam models show` prints (and `compare` sets side by side): what the model was
/// trained on, how its customers are segmented, which models were chosen, and its backtest.
pub fn describe(a: &ModelArtifact) -> Vec<(String, String)> {
    let v = serde_json::to_value(a).expect("an artifact serializes");
    let at = |p: &str| v.pointer(p).cloned().unwrap_or(Value::Null);
    let text = |p: &str| match at(p) {
        Value::String(s) => s,
        Value::Null => "—".into(),
        other => other.to_string(),
    };
    let mut out: Vec<(String, String)> = Vec::new();
    let mut line = |what: &str, value: String| out.push((what.to_string(), value));
    line("id", a.id.clone());
    line("as of", a.periods.as_of.to_string());
    line("kam version", a.kam_version.clone());
    line("data fingerprint", a.data.content_hash.chars().take(16).collect());
    line("rows used", format!("{} of {}", a.data.rows_used, a.data.rows));
    line("customers", a.data.customers.to_string());
    line("dates", format!("{} .. {}", text("/data/first_date"), text("/data/last_date")));
    line("period", format!("{} ({} periods)", a.periods.unit, a.periods.spans.len()));
    let periods = |n: u32, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    line("window", periods(a.segments.scheme.window, "period"));
    line("lapse after", periods(a.segments.scheme.lapse_after, "silent period"));
    let tiers: Vec<String> = a
        .segments
        .thresholds
        .iter()
        .map(|t| format!("{} ≥ {}", t.tier, num(&t.min_trailing_value.into(), 2)))
        .collect();
    line("tiers", if tiers.is_empty() { "—".into() } else { tiers.join(", ") });
    line("states", a.segments.states.len().to_string());
    line("value basis", a.spend.value_basis.clone());
    line("transition prior", a.config.transitions.prior.to_string());
    line("recent periods", a.config.transitions.recent_periods.map_or("all".into(), |k| k.to_string()));
    let covariates = match &a.transitions.covariates {
        Some(c) => {
            let kept: Vec<&str> = c.origins.iter().filter(|o| o.kept).map(|o| o.origin.as_str()).collect();
            format!(
                "on, kept for {} of {} origins{}",
                kept.len(),
                c.origins.len(),
                if kept.is_empty() { String::new() } else { format!(": {}", kept.join(", ")) }
            )
        }
        None => "off".into(),
    };
    line("covariate transitions", covariates);
    let spend = match &a.spend.selection {
        Some(sel) => format!("{} (asked: {})", sel.chosen, text("/spend/selection/requested")),
        None => text("/spend/model/kind"),
    };
    line("spend model", spend);
    let blend = match &a.btyd {
        None => "off".into(),
        Some(b) => match &b.blend {
            None => format!("none: {}", b.blend_skipped.as_deref().unwrap_or("—")),
            Some(bl) => format!(
                "with {}: churn weight {:.2}, spend weight {:.2} (on {} held-out periods)",
                text("/btyd/blend/with"),
                bl.churn.weight,
                bl.spend.weight,
                bl.holdout_periods
            ),
        },
    };
    line("blend", blend);
    match &a.backtest {
        None => line("backtest", "none (kam train --backtest-last K)".into()),
        Some(b) => {
            line(
                "backtest",
                format!(
                    "{} .. {} ({} periods, {} customers)",
                    b.holdout_start, b.holdout_end, b.holdout_periods, b.customers
                ),
            );
            // The model's figure beside persistence ("last period repeats"), as `kam evaluate`.
            let scored = |section: &str, field: &str, digits: usize| {
                let of = |who: &str| num(&at(&format!("/backtest/{section}/{who}/{field}")), digits);
                format!("{} (persistence {})", of("model"), of("persistence"))
            };
            for (what, section, field, digits) in [
                ("next-segment log-loss", "next_segment", "log_loss", 4),
                ("no-purchase AUC", "no_purchase", "auc", 3),
                ("no-purchase Brier", "no_purchase", "brier", 4),
                ("no-purchase log-loss", "no_purchase", "log_loss", 4),
                ("spend MAE", "holdout_spend", "mae", 2),
                ("spend RMSE", "holdout_spend", "rmse", 2),
                ("spend total error %", "holdout_spend", "total_error_pct", 1),
            ] {
                line(what, scored(section, field, digits));
            }
        }
    }
    out
}

/// Two descriptions line by line: every label of either, in `a`'s order then `b`'s extra ones.
fn side_by_side(a: &[(String, String)], b: &[(String, String)]) -> Vec<(String, String, String)> {
    let find =
        |d: &[(String, String)], k: &str| d.iter().find(|(w, _)| w == k).map_or("—".to_string(), |(_, v)| v.clone());
    let mut out: Vec<(String, String, String)> = a.iter().map(|(k, x)| (k.clone(), x.clone(), find(b, k))).collect();
    out.extend(
        b.iter().filter(|(k, _)| !a.iter().any(|(w, _)| w == k)).map(|(k, y)| (k.clone(), "—".into(), y.clone())),
    );
    out
}
