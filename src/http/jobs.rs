//! Training jobs (admin): `POST /v1/train` trains a model from a server-side transactions file
//! (and optional customer attributes file) with a configuration, off the async threads —
//! [`crate::app::publish::train_and_publish`], as `kam train`: optional backtest, the artifact,
//! its per-customer snapshot and (by default) activation; `GET
//! /v1/jobs/{id}` reports the job's state and result. A job that fails — unreadable file, bad
//! rows, invalid configuration, a model that cannot be served — leaves the served model and
//! `CURRENT` as they were.

use super::error::{ApiError, ErrorResponse};
use super::json::ApiJson;
use super::{AppState, models};
use crate::app::publish::{PublishError, PublishOptions, train_and_publish};
use crate::ingest::{self, ColumnRef, ReadOptions};
use crate::model::config::TrainConfig;
use crate::store::ModelStore;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// How to read the file's columns (names or 1-based positions), as the CLI's `--*-col` flags.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Columns {
    pub customer: Option<String>,
    pub date: Option<String>,
    pub amount: Option<String>,
    pub margin: Option<String>,
}

/// The body of `POST /v1/train`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainRequest {
    /// A transactions file on the server (CSV, whitespace-separated text or Parquet).
    pub path: String,
    /// The training configuration, as in `kam.toml` (default: kam's defaults).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config: Option<TrainConfig>,
    #[serde(default)]
    pub columns: Columns,
    /// A customer attributes file on the server (CSV: `customer_id` and numeric columns), as
    /// `kam train --customers`: the attributes enter the spend model (and the covariate
    /// transitions, when configured).
    #[serde(default)]
    pub customers: Option<String>,
    /// Backtest the configuration on the last K periods and store the metrics in the model, as
    /// `kam train --backtest-last K`.
    #[serde(default)]
    pub backtest_last: Option<usize>,
    /// Make the new model the served one when training succeeds (default true).
    #[serde(default = "yes")]
    pub activate: bool,
}

fn yes() -> bool {
    true
}

/// A job's state.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Job {
    pub id: String,
    /// running, succeeded or failed.
    pub status: String,
    pub path: String,
    /// The trained model, once stored.
    pub model_id: Option<String>,
    /// Whether the model is now the served one.
    pub activated: bool,
    /// Why the job failed.
    pub error: Option<String>,
}

/// The jobs of this server process.
#[derive(Debug, Default)]
pub struct Jobs {
    jobs: Mutex<BTreeMap<u64, Job>>,
}

impl Jobs {
    fn start(&self, path: &str) -> Job {
        let mut jobs = self.jobs.lock().expect("jobs lock");
        let n = jobs.keys().next_back().map_or(1, |k| k + 1);
        let job = Job {
            id: format!("job-{n}"),
            status: "running".into(),
            path: path.into(),
            model_id: None,
            activated: false,
            error: None,
        };
        jobs.insert(n, job.clone());
        job
    }

    fn finish(&self, id: &str, result: Result<(String, bool), String>) {
        let mut jobs = self.jobs.lock().expect("jobs lock");
        if let Some(job) = jobs.values_mut().find(|j| j.id == id) {
            match result {
                Ok((model, activated)) => {
                    job.status = "succeeded".into();
                    job.model_id = Some(model);
                    job.activated = activated;
                }
                Err(e) => {
                    job.status = "failed".into();
                    job.error = Some(e);
                }
            }
        }
    }

    fn get(&self, id: &str) -> Option<Job> {
        self.jobs.lock().expect("jobs lock").values().find(|j| j.id == id).cloned()
    }
}

fn column(path: &str, given: &Option<String>) -> Result<Option<ColumnRef>, ApiError> {
    given.as_deref().map(|s| s.parse::<ColumnRef>().map_err(|e| ApiError::invalid(path, e))).transpose()
}

/// Starts a training job.
#[utoipa::path(post, path = "/v1/train", tag = "models", request_body = TrainRequest,
    security(("api_key" = []), ("bearer" = [])), responses(
        (status = 202, description = "The job started; poll `GET /v1/jobs/{id}`", body = Job),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse),
        (status = 403, description = "Not an admin key", body = ErrorResponse),
        (status = 422, description = "Invalid configuration or columns, naming the JSON path", body = ErrorResponse)))]
pub async fn start(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<TrainRequest>,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    if req.path.trim().is_empty() {
        return Err(ApiError::invalid("path", "must name a transactions file on the server"));
    }
    let config = req.config.unwrap_or_default();
    config.check().map_err(|e| ApiError::invalid(format!("config.{}", e.field), e.problem))?;
    let options = ReadOptions {
        customer: column("columns.customer", &req.columns.customer)?,
        date: column("columns.date", &req.columns.date)?,
        amount: column("columns.amount", &req.columns.amount)?,
        margin: column("columns.margin", &req.columns.margin)?,
        ..ReadOptions::default()
    };
    if req.backtest_last == Some(0) {
        return Err(ApiError::invalid("backtest_last", "must be at least 1"));
    }
    if req.customers.as_deref().is_some_and(|p| p.trim().is_empty()) {
        return Err(ApiError::invalid("customers", "must name a customer attributes file on the server"));
    }
    let job = state.jobs.start(&req.path);
    let (id, path, customers) = (job.id.clone(), req.path.clone(), req.customers.clone());
    let publish = PublishOptions { backtest_last: req.backtest_last, snapshot: true, activate: req.activate };
    let st = state.clone();
    tokio::task::spawn_blocking(move || {
        let result = (|| -> Result<(String, bool), String> {
            let ingested =
                ingest::read_transactions(std::path::Path::new(&path), &options).map_err(|e| e.to_string())?;
            let attributes = match &customers {
                Some(p) => Some(
                    ingest::attributes::read(std::path::Path::new(p), &ingested.transactions.customer_ids)
                        .map_err(|e| e.to_string())?
                        .0,
                ),
                None => None,
            };
            // Activation: load and check the new model, then move CURRENT and swap it in, under
            // the activation lock so that CURRENT and the served model move together.
            let mut activate = |store: &ModelStore, id: &str| -> Result<(), PublishError> {
                let _guard = st.activation.blocking_lock();
                let served = models::load_served(store, id).map_err(|e| PublishError::Activate(e.to_string()))?;
                store.activate(id)?;
                st.active.store(Some(Arc::new(served)));
                Ok(())
            };
            let published = train_and_publish(
                &st.store,
                &ingested,
                attributes.as_ref(),
                &config,
                publish,
                &mut |_| {},
                &mut activate,
            )
            .map_err(|e| e.to_string())?;
            if published.activated {
                tracing::info!(model = %published.saved.id, "model trained and activated");
            }
            Ok((published.saved.id, published.activated))
        })();
        if let Err(e) = &result {
            tracing::warn!(error = %e, "training job failed; the served model is unchanged");
        }
        st.jobs.finish(&id, result);
    });
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// A training job's state and result.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "models", params(("id" = String, Path, description = "Job id")),
    security(("api_key" = []), ("bearer" = [])), responses(
        (status = 200, description = "The job", body = Job),
        (status = 404, description = "No such job", body = ErrorResponse)))]
pub async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Job>, ApiError> {
    state.jobs.get(&id).map(Json).ok_or_else(|| ApiError::NotFound(format!("no job {id:?}")))
}

/// Routes that need the admin role.
pub fn admin_router() -> Router<AppState> {
    Router::new().route("/v1/train", post(start)).route("/v1/jobs/{id}", get(show))
}
