//! Training jobs (admin): `POST /v1/train` trains a model from a server-side transactions file
//! (and optional customer attributes file) with a configuration, off the async threads —
//! [`crate::app::publish::train_and_publish`], as `kam train`: optional backtest, the artifact,
//! its per-customer snapshot and (by default) activation; `GET
//! /v1/jobs/{id}` reports the job's state and result. A job that fails — unreadable file, bad
//! rows, invalid configuration, a model that cannot be served — leaves the served model and
//! `CURRENT` as they were.

use super::error::{ApiError, ErrorResponse};
use super::json::Json;
use super::{AppState, models, upload};
use crate::app::publish::{PublishError, PublishOptions, train_and_publish};
use crate::ingest::{self, ColumnRef, ReadOptions};
use crate::model::config::TrainConfig;
use crate::store::ModelStore;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Multipart};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
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

/// The body of `POST /v1/train` (JSON), or the `request` part of an upload
/// (`multipart/form-data`, without `path` and `customers`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainRequest {
    /// A transactions file (CSV, whitespace-separated text or Parquet) in the server's data
    /// directory (`kam serve --data-dir`), relative to it. Required in a JSON body; not in an
    /// upload, whose `transactions` part is the file.
    #[serde(default)]
    pub path: Option<String>,
    /// The training configuration, as in `kam.toml` (default: kam's defaults).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config: Option<TrainConfig>,
    #[serde(default)]
    pub columns: Columns,
    /// A customer attributes file in the server's data directory, relative to it (CSV:
    /// `customer_id` and numeric columns), as
    /// `kam train --customers`: the attributes enter the spend model (and the covariate
    /// transitions, when configured).
    #[serde(default)]
    pub customers: Option<String>,
    /// Backtest the configuration on the last K periods and store the metrics in the model, as
    /// `kam train --backtest-last K`.
    #[serde(default)]
    pub backtest_last: Option<usize>,
    /// Keep only rows dated `FROM..TO` (either side may be left out), as `--date-range`.
    #[serde(default)]
    pub date_range: Option<String>,
    /// Make the new model the served one when training succeeds (default true).
    #[serde(default = "yes")]
    pub activate: bool,
}

fn yes() -> bool {
    true
}

impl Default for TrainRequest {
    fn default() -> Self {
        Self {
            path: None,
            config: None,
            columns: Columns::default(),
            customers: None,
            backtest_last: None,
            date_range: None,
            activate: true,
        }
    }
}

/// A job's state, as `GET /v1/jobs/{id}` shows it and as it is kept on disk
/// (`models/jobs/<id>.json`).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Job {
    pub id: String,
    /// running, succeeded or failed.
    pub status: String,
    /// The file trained on, as the request named it.
    pub path: String,
    /// When the job was accepted (UTC).
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// When it finished (UTC), once it has.
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The trained model, once stored.
    pub model_id: Option<String>,
    /// Whether the model is now the served one.
    pub activated: bool,
    /// Why the job failed.
    pub error: Option<String>,
}

/// Most jobs kept: beyond it the oldest finished ones are forgotten (their records removed).
pub const MAX_JOBS: usize = 1000;

/// Why a job found running when the server starts has failed.
pub const INTERRUPTED: &str = "interrupted: the server stopped before the job finished; the served model is unchanged";

/// The server's training jobs, oldest first, each kept on disk beside the models
/// ([`crate::store::jobs`]) so that a restart forgets none.
#[derive(Debug)]
pub struct Jobs {
    jobs: Mutex<Vec<Job>>,
    /// The models directory the records are kept in.
    models: PathBuf,
    /// Part of every id, from the process's start time, so that ids do not repeat after a
    /// restart.
    epoch: String,
    started: std::sync::atomic::AtomicU64,
}

impl Jobs {
    /// The jobs recorded in the models directory `models`. A job recorded as running was cut
    /// off by a stop of the server: it is marked failed ([`INTERRUPTED`]) and so recorded.
    /// Records that cannot be read are logged and left where they are.
    pub fn open(models: &std::path::Path) -> Self {
        let (mut jobs, problems) = crate::store::jobs::load_all::<Job>(models);
        for (file, problem) in problems {
            tracing::warn!(file, problem, "a training job's record cannot be read; it is not listed");
        }
        for job in jobs.iter_mut().filter(|j| j.status == "running") {
            job.status = "failed".into();
            job.error = Some(INTERRUPTED.into());
            job.finished_at = Some(chrono::Utc::now());
            keep(models, job);
        }
        jobs.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        Self {
            jobs: Mutex::new(jobs),
            models: models.to_path_buf(),
            epoch: format!("{ms:x}"),
            started: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn start(&self, path: &str) -> Job {
        let n = self.started.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let job = Job {
            id: format!("job-{}-{n}", self.epoch),
            status: "running".into(),
            path: path.into(),
            started_at: chrono::Utc::now(),
            finished_at: None,
            model_id: None,
            activated: false,
            error: None,
        };
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        while jobs.len() >= MAX_JOBS {
            let Some(oldest) = jobs.iter().position(|j| j.status != "running") else { break };
            let gone = jobs.remove(oldest);
            if let Err(e) = crate::store::jobs::remove(&self.models, &gone.id) {
                tracing::warn!(job = %gone.id, error = %e, "cannot remove a forgotten job's record");
            }
        }
        keep(&self.models, &job);
        jobs.push(job.clone());
        job
    }

    fn finish(&self, id: &str, result: Result<(String, bool), String>) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(job) = jobs.iter_mut().find(|j| j.id == id) {
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
            job.finished_at = Some(chrono::Utc::now());
            keep(&self.models, job);
        }
    }

    fn get(&self, id: &str) -> Option<Job> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|j| j.id == id).cloned()
    }

    /// The newest `limit` jobs with `status` (any when `None`), newest first.
    fn list(&self, status: Option<&str>, limit: usize) -> Vec<Job> {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.iter().rev().filter(|j| status.is_none_or(|s| j.status == s)).take(limit).cloned().collect()
    }
}

/// Writes a job's record; a failure is logged (the job goes on, and is listed while the server
/// runs).
fn keep(models: &std::path::Path, job: &Job) {
    if let Err(e) = crate::store::jobs::save(models, &job.id, job) {
        tracing::warn!(job = %job.id, error = %e, "cannot record the training job on disk");
    }
}

fn column(path: &str, given: &Option<String>) -> Result<Option<ColumnRef>, ApiError> {
    given.as_deref().map(|s| s.parse::<ColumnRef>().map_err(|e| ApiError::invalid(path, e))).transpose()
}

/// The file a job names (`field` = `path` or `customers`), under the data directory: relative,
/// no `..`, a regular file once symbolic links are followed, still under the directory, and not
/// over `max_bytes`. Nothing outside the directory is opened or reported on.
pub fn resolve_data_file(
    root: &std::path::Path,
    field: &str,
    given: &str,
    max_bytes: u64,
) -> Result<PathBuf, ApiError> {
    use std::path::Component;
    let rel = std::path::Path::new(given);
    if given.trim().is_empty() {
        return Err(ApiError::invalid(field, "must name a file in the server's data directory"));
    }
    if !rel.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err(ApiError::invalid(
            field,
            "must be a path relative to the server's data directory, without `..` (absolute paths are refused)",
        ));
    }
    let missing = || ApiError::invalid(field, format!("no file {given:?} in the server's data directory"));
    let root = root.canonicalize().map_err(|e| ApiError::Internal(format!("the data directory: {e}")))?;
    let full = root.join(rel).canonicalize().map_err(|_| missing())?;
    if !full.starts_with(&root) {
        return Err(missing());
    }
    let meta = std::fs::metadata(&full).map_err(|_| missing())?;
    if !meta.is_file() {
        return Err(ApiError::invalid(field, format!("{given:?} is not a regular file")));
    }
    if meta.len() > max_bytes {
        return Err(ApiError::invalid(
            field,
            format!("{given:?} is larger than the server's limit of {max_bytes} bytes"),
        ));
    }
    Ok(full)
}

/// What a failed job tells its client: the problem without server paths or file content (the
/// full error goes to the server's log).
fn client_message(e: &PublishError) -> String {
    match e {
        PublishError::Store(_) => "the model could not be stored (the server's log has the cause)".into(),
        PublishError::Activate(_) => {
            "the model was stored but cannot be activated (the server's log has the cause)".into()
        }
        e => e.to_string(),
    }
}

/// Why a job panicked, for the log.
fn panic_text(p: &(dyn std::any::Any + Send)) -> &str {
    p.downcast_ref::<&str>().copied().or_else(|| p.downcast_ref::<String>().map(String::as_str)).unwrap_or("?")
}

/// The files a job trains on.
enum Data {
    /// Files in the data directory: resolved paths and the names the request gave.
    Files { path: PathBuf, name: String, customers: Option<(PathBuf, String)> },
    /// Uploaded files, removed when the job ends.
    Uploaded(upload::Upload),
}

/// A job's settings from its request; `at` prefixes the JSON paths of its errors (`request.`
/// for an upload's request part).
fn settings(req: &TrainRequest, at: &str) -> Result<(TrainConfig, ReadOptions, PublishOptions), ApiError> {
    let config = req.config.clone().unwrap_or_default();
    config.check().map_err(|e| ApiError::invalid(format!("{at}config.{}", e.field), e.problem))?;
    let col = |name: &str, given: &Option<String>| column(&format!("{at}columns.{name}"), given);
    let options = ReadOptions {
        customer: col("customer", &req.columns.customer)?,
        date: col("date", &req.columns.date)?,
        amount: col("amount", &req.columns.amount)?,
        margin: col("margin", &req.columns.margin)?,
        date_range: req
            .date_range
            .as_deref()
            .map(|r| r.parse::<ingest::DateRange>().map_err(|e| ApiError::invalid(format!("{at}date_range"), e)))
            .transpose()?,
        ..ReadOptions::default()
    };
    if req.backtest_last == Some(0) {
        return Err(ApiError::invalid(format!("{at}backtest_last"), "must be at least 1"));
    }
    Ok((config, options, PublishOptions { backtest_last: req.backtest_last, snapshot: true, activate: req.activate }))
}

/// Prefixes the paths of an invalid request's details (an upload's `request` part).
fn under(at: &str, e: ApiError) -> ApiError {
    match e {
        ApiError::Invalid(details) => ApiError::Invalid(
            details
                .into_iter()
                .map(|d| {
                    super::error::Detail::new(
                        if d.path.is_empty() { at.to_string() } else { format!("{at}.{}", d.path) },
                        d.problem,
                    )
                })
                .collect(),
        ),
        e => e,
    }
}

fn is_multipart(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"))
}

/// Starts a training job: on files in the server's data directory (a JSON body naming them), or
/// on uploaded files (`multipart/form-data`: parts `transactions`, optional `customers` and
/// `request`, see [`upload`]).
#[utoipa::path(post, path = "/v1/train", tag = "models",
    request_body(content(
        (TrainRequest = "application/json"),
        (Object = "multipart/form-data",
            example = json!({"transactions": "(file)", "customers": "(file, optional)", "request": "(JSON: a TrainRequest without path and customers, optional)"})),
    )),
    security(("api_key" = []), ("bearer" = [])), responses(
        (status = 202, description = "The job started; poll `GET /v1/jobs/{id}`", body = Job,
            headers(("Location" = String, description = "The job's URL, `/v1/jobs/{id}`"))),
        (status = 401, description = "Missing or unknown API key", body = ErrorResponse),
        (status = 403, description = "Not an admin key, or training by path without a data directory", body = ErrorResponse),
        (status = 413, description = "The upload is over the server's limit (`--max-train-bytes`)", body = ErrorResponse),
        (status = 415, description = "Neither application/json nor multipart/form-data", body = ErrorResponse),
        (status = 422, description = "Invalid configuration, columns, file or part, naming the JSON path or part", body = ErrorResponse)))]
pub async fn start(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> Result<(StatusCode, [(axum::http::HeaderName, String); 1], Json<Job>), ApiError> {
    let max = state.limits.max_train_bytes;
    let (req, at, data) = if is_multipart(request.headers()) {
        let multipart =
            Multipart::from_request(request, &state).await.map_err(|e| ApiError::invalid("body", e.body_text()))?;
        let up =
            upload::receive(multipart, &crate::store::jobs::dir(state.store.dir()), max, state.limits.max_body_bytes)
                .await?;
        let req: TrainRequest = match &up.request {
            Some(bytes) => super::json::parse(bytes).map_err(|e| under("request", e))?,
            None => TrainRequest::default(),
        };
        for (field, given) in [("request.path", req.path.is_some()), ("request.customers", req.customers.is_some())] {
            if given {
                return Err(ApiError::invalid(
                    field,
                    "an upload carries its files as parts (transactions, customers), not as paths",
                ));
            }
        }
        (req, "request.", Some(up))
    } else if super::json::is_json(request.headers()) {
        let bytes = axum::body::to_bytes(request.into_body(), state.limits.max_body_bytes)
            .await
            .map_err(|_| ApiError::PayloadTooLarge)?;
        let req: TrainRequest = super::json::parse(&bytes)?;
        (req, "", None)
    } else {
        return Err(ApiError::UnsupportedMediaType("application/json, or multipart/form-data for an upload"));
    };
    let (config, options, publish) = settings(&req, at)?;
    let data = match data {
        Some(up) => Data::Uploaded(up),
        None => {
            let Some(root) = state.limits.data_dir.clone() else {
                return Err(ApiError::Forbidden(
                    "training by path is off: start kam serve with --data-dir DIR to train on files in DIR, or \
                     upload the data (multipart/form-data)"
                        .into(),
                ));
            };
            let Some(given_path) = req.path.clone() else {
                return Err(ApiError::invalid(
                    "path",
                    "required: a file in the server's data directory (or upload the data as multipart/form-data)",
                ));
            };
            let given_customers = req.customers.clone();
            tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
                let path = resolve_data_file(&root, "path", &given_path, max)?;
                let customers = given_customers
                    .map(|c| resolve_data_file(&root, "customers", &c, max).map(|p| (p, c)))
                    .transpose()?;
                Ok(Data::Files { path, name: given_path, customers })
            })
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))??
        }
    };
    Ok(spawn(&state, data, config, options, publish))
}

/// Starts the job on the blocking pool and answers 202 with its `Location`.
fn spawn(
    state: &AppState,
    data: Data,
    config: TrainConfig,
    options: ReadOptions,
    publish: PublishOptions,
) -> (StatusCode, [(axum::http::HeaderName, String); 1], Json<Job>) {
    let label = match &data {
        Data::Files { name, .. } => name.clone(),
        Data::Uploaded(up) => format!("upload:{}", up.transactions.name),
    };
    let job = state.jobs.start(&label);
    let id = job.id.clone();
    let st = state.clone();
    tokio::task::spawn_blocking(move || {
        let work = || -> Result<(String, bool), String> {
            let fail = |public: String, full: &dyn std::fmt::Display| {
                tracing::warn!(error = %full, "training job failed; the served model is unchanged");
                public
            };
            // The files, and the names errors use (an upload's own).
            let ((path, name), customers) = match &data {
                Data::Files { path, name, customers } => {
                    ((path.as_path(), name.as_str()), customers.as_ref().map(|(p, n)| (p.as_path(), n.as_str())))
                }
                Data::Uploaded(up) => (
                    (&*up.transactions.path, up.transactions.name.as_str()),
                    up.customers.as_ref().map(|c| (&*c.path, c.name.as_str())),
                ),
            };
            let ingested = ingest::read_transactions(path, &options).map_err(|e| fail(e.for_client(name), &e))?;
            let attributes = match customers {
                Some((p, n)) => Some(
                    ingest::attributes::read(p, &ingested.transactions.customer_ids)
                        .map_err(|e| fail(e.for_client(n), &e))?
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
            let activity = crate::model::train::activity_for(&ingested.transactions, &config)
                .map_err(|e| fail(format!("the transactions cannot be aggregated: {e}"), &e))?;
            let source = ingested.source();
            drop(ingested);
            let published = train_and_publish(
                &st.store,
                &activity,
                source,
                attributes.as_ref(),
                &config,
                publish,
                &mut |_| {},
                &mut activate,
            )
            .map_err(|e| fail(client_message(&e), &e))?;
            if published.activated {
                tracing::info!(model = %published.saved.id, "model trained and activated");
            }
            Ok((published.saved.id, published.activated))
        };
        // A panic is a bug, but the job must still finish: it fails, and the server goes on.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|p| {
            tracing::error!(panic = panic_text(&*p), "training job panicked; the served model is unchanged");
            Err("internal error: the training job failed (the server's log has the cause)".into())
        });
        st.jobs.finish(&id, result);
        // The uploaded files, if any, are removed here.
        drop(data);
    });
    let location = format!("/v1/jobs/{}", job.id);
    (StatusCode::ACCEPTED, [(axum::http::header::LOCATION, location)], Json(job))
}
/// A training job's state and result.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "models", params(("id" = String, Path, description = "Job id")),
    security(("api_key" = []), ("bearer" = [])), responses(
        (status = 200, description = "The job", body = Job),
        (status = 404, description = "No such job", body = ErrorResponse)))]
pub async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Job>, ApiError> {
    state.jobs.get(&id).map(Json).ok_or_else(|| ApiError::NotFound(format!("no job {id:?}")))
}

/// Query parameters of the job list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct JobsQuery {
    /// Only jobs in this state: running, succeeded or failed.
    pub status: Option<String>,
    /// Most jobs listed, newest first (1 to 1000; default 100).
    pub limit: Option<usize>,
}

/// The job list's body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobList {
    /// Newest first.
    pub jobs: Vec<Job>,
}

/// The server's training jobs, newest first, including those of earlier runs of the server
/// (the newest 1,000 are kept).
#[utoipa::path(get, path = "/v1/jobs", tag = "models", params(JobsQuery),
    security(("api_key" = []), ("bearer" = [])), responses(
        (status = 200, description = "The jobs, newest first", body = JobList),
        (status = 422, description = "Invalid status or limit", body = ErrorResponse)))]
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<JobsQuery>, QueryRejection>,
) -> Result<Json<JobList>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    if let Some(s) = q.status.as_deref().filter(|s| !["running", "succeeded", "failed"].contains(s)) {
        return Err(ApiError::invalid("status", format!("must be running, succeeded or failed, got {s:?}")));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_JOBS).contains(&limit) {
        return Err(ApiError::invalid("limit", format!("must be 1 to {MAX_JOBS}, got {limit}")));
    }
    Ok(Json(JobList { jobs: state.jobs.list(q.status.as_deref(), limit) }))
}

/// Routes that need the admin role.
/// `POST /v1/train` bounds its body itself (a JSON body by the server's body limit, an upload
/// by `max_train_bytes`), so the router's default body limit is lifted there.
pub fn admin_router() -> Router<AppState> {
    Router::new()
        .route("/v1/train", post(start).layer(axum::extract::DefaultBodyLimit::disable()))
        .route("/v1/jobs", get(list))
        .route("/v1/jobs/{id}", get(show))
}
