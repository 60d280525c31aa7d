//! API keys with two roles: `read` (model, predictions, forecasts, metrics) and `admin` (also
//! activating models). Keys come from `KAM_API_KEYS="key1:read,key2:admin"` or a keys file with
//! one `key:role` per line (`#` comments). A key is sent as `Authorization: Bearer <key>` or
//! `X-API-Key: <key>`.
//!
//! With no keys configured, read routes are open (and `kam serve` binds loopback only) and admin
//! routes are refused with 403.

use super::AppState;
use super::error::ApiError;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;

/// What a key may do. `Admin` includes `Read`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Read,
    Admin,
}

/// A malformed key specification.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum KeysError {
    /// (The entry is not quoted: it may hold a key, and the message goes to logs.)
    #[error("API key entry {entry}: expected key:role with role read or admin")]
    Malformed { entry: usize },
    #[error("API key entry {entry}: a key must be at least 16 characters of letters, digits, '-', '_' or '.'")]
    Weak { entry: usize },
    #[error("API key entry {entry}: the same key as entry {first}; list each key once, with one role")]
    Duplicate { entry: usize, first: usize },
}

/// The configured keys (empty: none configured).
#[derive(Clone, Debug, Default)]
pub struct ApiKeys {
    keys: Vec<(String, Role)>,
}

impl ApiKeys {
    /// No keys: read routes open, admin routes refused.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses entries `key:role` separated by commas or newlines; blank entries and lines
    /// starting with `#` are skipped.
    pub fn parse(spec: &str) -> Result<Self, KeysError> {
        let mut keys = Vec::new();
        let entries = spec.split([',', '\n']).map(str::trim).filter(|e| !e.is_empty() && !e.starts_with('#'));
        for (i, e) in entries.enumerate() {
            let entry = i + 1;
            let (key, role) = e.rsplit_once(':').ok_or(KeysError::Malformed { entry })?;
            let role = match role.trim() {
                "read" => Role::Read,
                "admin" => Role::Admin,
                _ => return Err(KeysError::Malformed { entry }),
            };
            let key = key.trim();
            if key.len() < 16 || !key.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return Err(KeysError::Weak { entry });
            }
            if let Some(first) = keys.iter().position(|(k, _): &(String, Role)| k == key) {
                return Err(KeysError::Duplicate { entry, first: first + 1 });
            }
            keys.push((key.to_string(), role));
        }
        Ok(Self { keys })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The role of a presented key; compares against every key in constant time per key.
    pub fn role_of(&self, presented: &str) -> Option<Role> {
        let mut found = None;
        for (k, r) in &self.keys {
            if constant_time_eq(k.as_bytes(), presented.as_bytes()) {
                found = Some(*r);
            }
        }
        found
    }

    /// Checks a request's headers for `need`.
    pub fn authorize(&self, headers: &HeaderMap, need: Role) -> Result<(), ApiError> {
        if self.is_empty() {
            return match need {
                Role::Read => Ok(()),
                Role::Admin => Err(ApiError::Forbidden(
                    "admin routes are disabled: the server runs without API keys (set KAM_API_KEYS or --keys-file)"
                        .into(),
                )),
            };
        }
        let presented = presented_key(headers).ok_or(ApiError::Unauthorized)?;
        match self.role_of(presented) {
            None => Err(ApiError::Unauthorized),
            Some(r) if r >= need => Ok(()),
            Some(_) => Err(ApiError::Forbidden("this API key may not use admin routes".into())),
        }
    }
}

/// Equality whose time depends on neither the contents nor the lengths: the BLAKE3 digests of
/// both are compared (blake3's `Hash` equality is constant-time).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    blake3::hash(a) == blake3::hash(b)
}

fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, key) = v.trim().split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| key.trim());
    }
    headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim)
}

pub async fn require_read(State(state): State<AppState>, req: Request, next: Next) -> Result<Response, ApiError> {
    state.keys.authorize(req.headers(), Role::Read)?;
    Ok(next.run(req).await)
}

pub async fn require_admin(State(state): State<AppState>, req: Request, next: Next) -> Result<Response, ApiError> {
    state.keys.authorize(req.headers(), Role::Admin)?;
    Ok(next.run(req).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: &str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        h
    }

    #[test]
    fn keys_parse_from_the_environment_form_and_the_file_form() {
        let k = ApiKeys::parse("reader-key-0123456789:read, admin-key-0123456789:admin").unwrap();
        assert_eq!(k.role_of("reader-key-0123456789"), Some(Role::Read));
        assert_eq!(k.role_of("admin-key-0123456789"), Some(Role::Admin));
        assert_eq!(k.role_of("nope"), None);
        // Issue 13, item 11: a key listed twice (with two roles) is refused, without quoting it.
        let twice = ApiKeys::parse("reader-key-0123456789:read,reader-key-0123456789:admin").unwrap_err();
        assert_eq!(twice.to_string(), "API key entry 2: the same key as entry 1; list each key once, with one role");
        let bad = ApiKeys::parse("reader-key-0123456789:root").unwrap_err().to_string();
        assert!(!bad.contains("reader-key"), "{bad}");
        let f = ApiKeys::parse("# keys\nreader-key-0123456789:read\n\n").unwrap();
        assert_eq!(f.len(), 1);
        assert!(matches!(ApiKeys::parse("short:read"), Err(KeysError::Weak { entry: 1 })));
        assert!(matches!(ApiKeys::parse("reader-key-0123456789:root"), Err(KeysError::Malformed { .. })));
    }

    #[test]
    fn roles_are_checked_and_admin_includes_read() {
        let k = ApiKeys::parse("reader-key-0123456789:read,admin-key-0123456789:admin").unwrap();
        let read = headers("authorization", "Bearer reader-key-0123456789");
        let admin = headers("x-api-key", "admin-key-0123456789");
        assert!(k.authorize(&read, Role::Read).is_ok());
        assert!(matches!(k.authorize(&read, Role::Admin), Err(ApiError::Forbidden(_))));
        assert!(k.authorize(&admin, Role::Admin).is_ok());
        assert!(k.authorize(&admin, Role::Read).is_ok());
        assert!(matches!(k.authorize(&HeaderMap::new(), Role::Read), Err(ApiError::Unauthorized)));
        assert!(matches!(k.authorize(&headers("x-api-key", "wrong"), Role::Read), Err(ApiError::Unauthorized)));
    }

    #[test]
    fn without_keys_reads_are_open_and_admin_is_refused() {
        let k = ApiKeys::none();
        assert!(k.authorize(&HeaderMap::new(), Role::Read).is_ok());
        assert!(matches!(k.authorize(&HeaderMap::new(), Role::Admin), Err(ApiError::Forbidden(_))));
    }
}
