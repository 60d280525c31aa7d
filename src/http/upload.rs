//! Training data uploaded with `POST /v1/train` as `multipart/form-data`: the parts are streamed
//! to temporary files beside the job records (`models/jobs/.upload-<pid>-…`), never held in
//! memory, and the upload is refused with 413 as soon as its files pass the server's limit
//! (`kam serve --max-train-bytes`). The files are removed when the job ends (or the request
//! fails); those of a server killed mid-upload are removed at its next start.
//!
//! Parts, by name:
//! - `transactions` (required): the transactions file — CSV, whitespace-separated text, or
//!   Parquet (by the part's file name `*.parquet` / `*.pq`, its content type
//!   `application/vnd.apache.parquet`, or the file's `PAR1` magic);
//! - `customers` (optional): a customer attributes file (CSV), as `kam train --customers`;
//! - `request` (optional): JSON with the settings of a `POST /v1/train` body except `path` and
//!   `customers` (`config`, `columns`, `backtest_last`, `date_range`, `activate`).

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::Multipart;
use axum::extract::multipart::Field;
use std::path::Path;
use tokio::io::AsyncWriteExt;

/// An uploaded file, removed when dropped.
#[derive(Debug)]
pub struct UploadedFile {
    /// The name the client gave it (its last path component), or `upload.csv` /
    /// `upload.parquet`: the model's source name, as a file of that name would give.
    pub name: String,
    pub path: tempfile::TempPath,
}

/// What an upload brought.
#[derive(Debug)]
pub struct Upload {
    /// The `request` part's bytes (JSON), if sent.
    pub request: Option<Bytes>,
    pub transactions: UploadedFile,
    pub customers: Option<UploadedFile>,
}

/// The parts an upload may carry.
const PARTS: [&str; 3] = ["request", "transactions", "customers"];

fn bad_part(field: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(field, format!("the upload could not be read: {e}"))
}

/// The file name a client sent, reduced to its last component; `None` when it has none usable.
fn client_name(given: Option<&str>) -> Option<String> {
    let last = given?.rsplit(['/', '\\']).next()?.trim();
    (!last.is_empty() && last != "." && last != ".." && last.len() <= 255 && !last.contains('\0'))
        .then(|| last.to_string())
}

/// Streams one file part into a temporary file in `dir`, counting into `written` against
/// `max_bytes`.
async fn receive_file(
    mut field: Field<'_>,
    part: &str,
    dir: &Path,
    written: &mut u64,
    max_bytes: u64,
) -> Result<UploadedFile, ApiError> {
    let given = client_name(field.file_name());
    let parquet_type = field.content_type().is_some_and(|t| t.eq_ignore_ascii_case("application/vnd.apache.parquet"));
    let first = field.chunk().await.map_err(|e| too_large_or(part, e))?.unwrap_or_default();
    let parquet =
        given.as_deref().is_some_and(crate::ingest::is_parquet_name) || parquet_type || first.starts_with(b"PAR1");
    let name = match given {
        Some(n) if !parquet || crate::ingest::is_parquet_name(&n) => n,
        Some(n) => format!("{n}.parquet"),
        None if parquet => "upload.parquet".into(),
        None => "upload.csv".into(),
    };
    let internal = |e: std::io::Error| ApiError::Internal(format!("cannot store an upload: {e}"));
    let path = tempfile::Builder::new()
        .prefix(&format!(".upload-{}-", std::process::id()))
        .suffix(if parquet { ".parquet" } else { ".csv" })
        .tempfile_in(dir)
        .map_err(internal)?
        .into_temp_path();
    let mut file = tokio::fs::OpenOptions::new().write(true).open(&path).await.map_err(internal)?;
    let mut chunk = Some(first);
    while let Some(bytes) = chunk {
        *written += bytes.len() as u64;
        if *written > max_bytes {
            return Err(ApiError::PayloadTooLarge);
        }
        file.write_all(&bytes).await.map_err(internal)?;
        chunk = field.chunk().await.map_err(|e| too_large_or(part, e))?;
    }
    file.flush().await.map_err(internal)?;
    if *written == 0 {
        return Err(ApiError::invalid(part, "the uploaded file is empty"));
    }
    Ok(UploadedFile { name, path })
}

fn too_large_or(part: &str, e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE { ApiError::PayloadTooLarge } else { bad_part(part, e) }
}

/// Reads an upload: its files into `dir` (created if missing), at most `max_bytes` of them in
/// all, and a `request` part of at most `max_request` bytes.
pub async fn receive(
    mut multipart: Multipart,
    dir: &Path,
    max_bytes: u64,
    max_request: usize,
) -> Result<Upload, ApiError> {
    tokio::fs::create_dir_all(dir).await.map_err(|e| ApiError::Internal(format!("cannot store an upload: {e}")))?;
    let (mut request, mut transactions, mut customers) = (None, None, None);
    let mut written = 0u64;
    while let Some(field) = multipart.next_field().await.map_err(|e| too_large_or("body", e))? {
        let name = field.name().unwrap_or("").to_string();
        let seen = match name.as_str() {
            "request" => request.is_some(),
            "transactions" => transactions.is_some(),
            "customers" => customers.is_some(),
            _ => {
                let problem = format!("unknown part {name:?}; an upload has the parts {}", PARTS.join(", "));
                return Err(ApiError::invalid("body", problem));
            }
        };
        if seen {
            return Err(ApiError::invalid(name, "sent twice"));
        }
        match name.as_str() {
            "request" => {
                let mut field = field;
                let mut bytes = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(|e| too_large_or("request", e))? {
                    if bytes.len() + chunk.len() > max_request {
                        return Err(ApiError::PayloadTooLarge);
                    }
                    bytes.extend_from_slice(&chunk);
                }
                request = Some(Bytes::from(bytes));
            }
            "transactions" => {
                transactions = Some(receive_file(field, "transactions", dir, &mut written, max_bytes).await?)
            }
            _ => customers = Some(receive_file(field, "customers", dir, &mut written, max_bytes).await?),
        }
    }
    let transactions = transactions
        .ok_or_else(|| ApiError::invalid("transactions", "an upload needs a transactions part (the file)"))?;
    Ok(Upload { request, transactions, customers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_file_names_keep_their_last_component_only() {
        assert_eq!(client_name(Some("g.csv")).as_deref(), Some("g.csv"));
        assert_eq!(client_name(Some("/etc/x/../sales.parquet")).as_deref(), Some("sales.parquet"));
        assert_eq!(client_name(Some("C:\\data\\q1.csv")).as_deref(), Some("q1.csv"));
        assert_eq!(client_name(Some("dir/")), None);
        assert_eq!(client_name(Some("..")), None);
        assert_eq!(client_name(None), None);
    }
}
