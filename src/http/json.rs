//! The JSON body extractor: every rejection comes out as an [`ApiError`] in the API's format.
//!
//! - no `Content-Type: application/json` (or `…+json`) → 415;
//! - body over the limit → 413;
//! - not JSON → 400 `malformed_json`;
//! - JSON of the wrong shape or type, or a `NaN`/`Infinity` literal → 422 naming the path
//!   (`customers[3].recency_days`).

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

/// A JSON request body deserialized into `T`.
pub struct ApiJson<T>(pub T);

/// The raw bytes of a JSON request body (content type and size checked), for handlers that
/// deserialize large bodies off the async threads with [`parse`].
pub struct JsonBody(pub Bytes);

pub fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let JsonBody(bytes) = JsonBody::from_request(req, state).await?;
        parse(&bytes).map(ApiJson)
    }
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType("application/json"));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::MalformedJson(e.body_text())
            }
        })?;
        Ok(JsonBody(bytes))
    }
}

/// The line and column of a serde_json error, as a byte offset into `text`.
fn offset_of(text: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match text[start..].iter().position(|&b| b == b'\n') {
            Some(p) => start += p + 1,
            None => break,
        }
    }
    (start + column.saturating_sub(1)).min(text.len())
}

/// serde's message without serde_json's " at line L column C" suffix.
fn problem(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Deserializes a body, tracking the JSON path of the first error.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let path = if path == "." { String::new() } else { path };
        match inner.classify() {
            serde_json::error::Category::Data => ApiError::invalid(path, problem(&inner)),
            serde_json::error::Category::Syntax => {
                // Python's json.dumps writes NaN and Infinity; say so, at the field.
                let at = offset_of(bytes, inner.line(), inner.column());
                let window = &bytes[at.saturating_sub(9)..(at + 9).min(bytes.len())];
                let has = |w: &[u8]| window.windows(w.len()).any(|x| x == w);
                if has(b"NaN") || has(b"Infinity") {
                    ApiError::invalid(path, "NaN and Infinity are not valid numbers; send a finite number")
                } else {
                    ApiError::MalformedJson(inner.to_string())
                }
            }
            _ => ApiError::MalformedJson(inner.to_string()),
        }
    })?;
    de.end().map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Outer {
        customers: Vec<Inner>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Inner {
        x: f64,
    }

    fn details(e: ApiError) -> Vec<String> {
        match e {
            ApiError::Invalid(d) => d.into_iter().map(|d| d.path).collect(),
            other => panic!("not invalid: {other:?}"),
        }
    }

    #[test]
    fn type_errors_name_the_path() {
        let e = parse::<Outer>(br#"{"customers": [{"x": 1}, {"x": "a"}]}"#).unwrap_err();
        assert_eq!(details(e), ["customers[1].x"]);
    }

    #[test]
    fn nan_is_an_invalid_value_at_its_path_and_garbage_is_malformed() {
        let e = parse::<Outer>(br#"{"customers": [{"x": NaN}]}"#).unwrap_err();
        assert_eq!(details(e), ["customers[0].x"]);
        assert!(matches!(parse::<Outer>(b"{\"customers\": [").unwrap_err(), ApiError::MalformedJson(_)));
        assert!(matches!(parse::<Outer>(br#"{"customers": []} x"#).unwrap_err(), ApiError::MalformedJson(_)));
    }
}

/// A customer id in a request: a JSON string, or an integer (CRM systems often key customers by
/// number), read as its decimal digits — `42` and `"42"` are the same customer, as in a
/// transactions file. Answers always carry ids as strings.
pub fn customer_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct Id;
    impl serde::de::Visitor<'_> for Id {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a customer id: a string or an integer")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_string<E: serde::de::Error>(self, v: String) -> Result<String, E> {
            Ok(v)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
    }
    d.deserialize_any(Id)
}

/// A JSON response body with its numbers rounded ([`crate::app::numbers`]): every API answer
/// is sent through it (or through [`crate::app::numbers::to_vec`] directly).
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        match crate::app::numbers::to_vec(&self.0) {
            Ok(bytes) => ([(header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json"))], bytes)
                .into_response(),
            Err(e) => ApiError::Internal(format!("the response does not serialize: {e}")).into_response(),
        }
    }
}
