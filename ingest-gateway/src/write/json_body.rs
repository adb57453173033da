//! The request body extractor: checks the content type, enforces the route's size limit, and
//! parses JSON, answering each failure with the API's JSON errors (415, 413, 400).

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde_json::Value;

use crate::error::AppError;

/// A parsed JSON body of at most `LIMIT` bytes.
pub struct JsonBody<const LIMIT: usize>(pub Value);

fn is_json(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

impl<S: Send + Sync, const LIMIT: usize> FromRequest<S> for JsonBody<LIMIT> {
    type Rejection = AppError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, AppError> {
        let content_type =
            request.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("(not text)"));
        match content_type {
            Some(ct) if is_json(ct) => {}
            other => return Err(AppError::unsupported_media_type(other)),
        }
        let body: Body = request.into_body();
        let bytes =
            axum::body::to_bytes(body, LIMIT).await.map_err(|_| AppError::payload_too_large(LIMIT))?;
        let value = serde_json::from_slice(&bytes)
            .map_err(|e| AppError::invalid_json(format!("the body is not valid JSON: {e}")))?;
        Ok(JsonBody(value))
    }
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("Application/JSON"));
        assert!(is_json("application/vnd.leadflow+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
    }
}
