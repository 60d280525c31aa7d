//! `kam models`: list, show and activate stored models.

use crate::store::ModelStore;
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
    /// Print a stored model's artifact (JSON).
    Show {
        /// Model id (or "current").
        id: String,
        #[arg(long, default_value = "models")]
        models: PathBuf,
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
                        println!("{mark} {}  as of {}  {} customers  from {}", m.id, m.as_of, m.customers, m.source)
                    }
                    Some(p) => println!("{mark} {}  UNREADABLE: {p}", m.id),
                }
            }
        }
        Command::Show { id, models } => {
            let store = ModelStore::new(models);
            let id = resolve(&store, &id)?;
            print!("{}", crate::store::to_json(&store.load(&id)?));
        }
        Command::Activate { id, models } => {
            let store = ModelStore::new(models);
            store.activate(&id)?;
            println!("active model: {id}");
        }
    }
    Ok(())
}
