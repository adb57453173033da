//! The `/v1` API's credential: a Segment "write key" is a project key with the `ingest` scope
//! (#9). The SDKs send it as HTTP Basic auth (the key as the user name, an empty password) or as
//! `writeKey` in the body (analytics.js, whose `text/plain` calls carry no headers of their own);
//! `Authorization: Bearer` and `X-API-Key` work as on every route. A header wins over the body.
//! Checked by the same [`AuthState`] lookups as every other credential; the key is never logged.

use axum::http::{HeaderMap, Method, Uri, header};
use base64::Engine;
use serde_json::Value;

use crate::auth::AuthState;
use crate::auth::caller::{API_KEY_HEADER, InProject};
use crate::auth::scope::Scope;
use crate::error::AppError;

/// The body field that may carry the write key.
pub const WRITE_KEY_FIELD: &str = "writeKey";

/// The caller of a credential in the headers (Basic, Bearer, X-API-Key); `None` when there is
/// none, and the body's `writeKey` decides ([`from_body`]).
pub async fn from_headers(
    auth: &AuthState,
    headers: &HeaderMap,
    method: &Method,
    uri: &Uri,
) -> Result<Option<InProject>, AppError> {
    let caller = if let Some(key) = basic_user(headers)? {
        auth.by_token(&key).await?
    } else if headers.contains_key(header::AUTHORIZATION) || headers.contains_key(API_KEY_HEADER) {
        auth.authenticate(headers, method, uri).await?
    } else {
        return Ok(None);
    };
    caller.in_project(Scope::Ingest).map(Some)
}

/// The caller of the body's `writeKey`, or the 401 of a request without any credential.
pub async fn from_body(auth: &AuthState, body: &Value) -> Result<InProject, AppError> {
    match body.get(WRITE_KEY_FIELD).and_then(Value::as_str).map(str::trim) {
        Some(key) if !key.is_empty() => auth.by_token(key).await?.in_project(Scope::Ingest),
        _ => Err(AppError::unauthorized(
            "a write key is required: HTTP Basic auth with the key as the user name, writeKey in the \
             body, Authorization: Bearer <key> or X-API-Key: <key>",
        )),
    }
}

/// The project of a write key given as text (the settings document's path).
pub async fn caller_of_key(auth: &AuthState, key: &str) -> Result<InProject, AppError> {
    auth.by_token(key.trim()).await?.in_project(Scope::Ingest)
}

/// The user name of `Authorization: Basic …`; `None` for any other scheme or no header.
fn basic_user(headers: &HeaderMap) -> Result<Option<String>, AppError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let Ok(text) = value.to_str() else { return Ok(None) };
    let (scheme, encoded) = text.trim().split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let malformed = || AppError::unauthorized("Authorization: Basic must be base64 of \"<write key>:\"");
    let encoded = encoded.trim();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(encoded))
        .map_err(|_| malformed())?;
    let text = String::from_utf8(decoded).map_err(|_| malformed())?;
    let user = text.split_once(':').map_or(text.as_str(), |(user, _password)| user);
    if user.trim().is_empty() {
        return Err(malformed());
    }
    Ok(Some(user.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn basic(credentials: &str) -> HeaderMap {
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Basic {encoded}")).unwrap());
        headers
    }

    #[test]
    fn the_basic_user_is_the_key_and_the_password_is_ignored() {
        assert_eq!(basic_user(&basic("lf_key:")).unwrap().as_deref(), Some("lf_key"));
        assert_eq!(basic_user(&basic("lf_key:anything")).unwrap().as_deref(), Some("lf_key"));
        assert_eq!(basic_user(&basic("lf_key")).unwrap().as_deref(), Some("lf_key"));
        assert_eq!(basic_user(&basic(":")).unwrap_err().status.as_u16(), 401);
        let mut bearer = HeaderMap::new();
        bearer.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer lf_key"));
        assert_eq!(basic_user(&bearer).unwrap(), None);
        let mut garbage = HeaderMap::new();
        garbage.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic %%%"));
        assert_eq!(basic_user(&garbage).unwrap_err().status.as_u16(), 401);
    }
}
