//! The `/v1` request body: JSON, whatever its Content-Type says. The SDKs label it variously:
//! `application/json`, `text/plain` (analytics.js, so that a cross-origin call needs no
//! preflight), `application/x-www-form-urlencoded` (RudderStack's node SDK, gzipping) or
//! nothing, so the label decides nothing and the bytes must parse. Optionally
//! `Content-Encoding: gzip`, bounded by the route's limit after decoding; any other encoding is
//! a 415. A body over the limit or not JSON is a 400, the only status the Segment SDKs treat as
//! "drop this batch".

use std::io::Read;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use serde_json::Value;

use crate::error::AppError;

/// The body's JSON, at most `limit` bytes once decoded.
pub async fn read(headers: &HeaderMap, body: Body, limit: usize) -> Result<Value, AppError> {
    let gzip = is_gzip(headers)?;
    // Compressed JSON is smaller than the JSON, so the decoded bound bounds the read too.
    let raw = axum::body::to_bytes(body, limit).await.map_err(|_| AppError::oversized(limit))?;
    let bytes = if gzip { gunzip(&raw, limit)? } else { raw };
    serde_json::from_slice(&bytes)
        .map_err(|e| AppError::invalid_json(format!("the body is not valid JSON: {e}")))
}

/// `Content-Encoding`: none or `identity` is the body as it is, `gzip` (or `x-gzip`) decoded.
fn is_gzip(headers: &HeaderMap) -> Result<bool, AppError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else { return Ok(false) };
    let text = value.to_str().unwrap_or("(not text)");
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "identity" => Ok(false),
        "gzip" | "x-gzip" => Ok(true),
        _ => Err(AppError::unsupported_media_type_of(
            &format!("Content-Encoding: {text}"),
            "a body sent as is or with Content-Encoding: gzip",
        )),
    }
}

/// Decodes at most `limit` bytes: one more means the body is over the limit, however small its
/// compressed form.
fn gunzip(compressed: &[u8], limit: usize) -> Result<Bytes, AppError> {
    let mut decoded = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::MultiGzDecoder::new(compressed)
        .take(cap)
        .read_to_end(&mut decoded)
        .map_err(|e| AppError::invalid_json(format!("the body is not valid gzip: {e}")))?;
    if decoded.len() > limit {
        return Err(AppError::oversized(limit));
    }
    Ok(Bytes::from(decoded))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use axum::http::HeaderValue;
    use serde_json::json;

    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs.iter().map(|(name, value)| (name.clone(), HeaderValue::from_str(value).unwrap())).collect()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    async fn status_of(h: HeaderMap, body: Vec<u8>, limit: usize) -> Result<Value, u16> {
        read(&h, Body::from(body), limit).await.map_err(|e| e.status.as_u16())
    }

    #[tokio::test]
    async fn any_content_type_or_none_is_a_json_body() {
        for h in [
            headers(&[(header::CONTENT_TYPE, "application/json; charset=utf-8")]),
            headers(&[(header::CONTENT_TYPE, "text/plain;charset=UTF-8")]),
            HeaderMap::new(),
        ] {
            assert_eq!(status_of(h, br#"{"a":1}"#.to_vec(), 100).await, Ok(json!({"a": 1})));
        }
        let form = headers(&[(header::CONTENT_TYPE, "application/x-www-form-urlencoded")]);
        assert_eq!(status_of(form.clone(), br#"{"a":1}"#.to_vec(), 100).await, Ok(json!({"a": 1})));
        assert_eq!(status_of(form, b"a=1".to_vec(), 100).await, Err(400));
        assert_eq!(status_of(HeaderMap::new(), b"{".to_vec(), 100).await, Err(400));
    }

    #[tokio::test]
    async fn gzip_is_decoded_and_bounded_after_decoding() {
        let h = headers(&[(header::CONTENT_ENCODING, "gzip")]);
        assert_eq!(status_of(h.clone(), gzip(br#"{"a":1}"#), 100).await, Ok(json!({"a": 1})));
        // A kilobyte of zeros compresses to a few dozen bytes: the decoded size is what counts.
        let padded = format!(r#"{{"a":"{}"}}"#, "0".repeat(1000));
        let small = gzip(padded.as_bytes());
        assert!(small.len() < 100);
        assert_eq!(status_of(h.clone(), small, 100).await, Err(400));
        assert_eq!(status_of(h, b"not gzip".to_vec(), 100).await, Err(400));
        let brotli = headers(&[(header::CONTENT_ENCODING, "br")]);
        assert_eq!(status_of(brotli, b"{}".to_vec(), 100).await, Err(415));
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_400_not_413() {
        assert_eq!(status_of(HeaderMap::new(), vec![b' '; 101], 100).await, Err(400));
    }
}
