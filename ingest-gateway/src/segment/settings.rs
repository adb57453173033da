//! The settings document analytics.js loads before it sends anything
//! (`{cdnURL}/v1/projects/{writeKey}/settings`): what Segment's CDN would answer, pointing the
//! `Segment.io` destination at this gateway. So a page needs only `cdnURL` set to the gateway;
//! a page that passes `cdnSettings` itself never asks. The key in the path is the credential:
//! an unknown or revoked key is a 401, like any other.

use axum::http::{HeaderMap, HeaderValue, header};
use serde_json::{Value, json};

/// How long a browser may keep the document: a revoked key stops working at the API at once,
/// whatever the page still holds.
pub const CACHE_CONTROL: &str = "private, max-age=300";

/// The document for `write_key`, with the API at `host` (the request's Host) under `/v1`.
pub fn document(write_key: &str, host: &str, protocol: &str) -> Value {
    json!({
        "integrations": {
            "Segment.io": {"apiKey": write_key, "apiHost": format!("{host}/v1"), "protocol": protocol},
        },
        "plan": {"track": {"__default": {"enabled": true}}},
        "metrics": {"sampleRate": 0},
        "remotePlugins": [],
        "enabledMiddleware": {},
        "middlewareSettings": {},
    })
}

/// The host the caller reached the gateway at: `Host`, else `localhost`.
pub fn host_of(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::trim)
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
        .unwrap_or("localhost")
        .to_owned()
}

/// `https` when a proxy in front says the caller used it (`X-Forwarded-Proto`), else `http`.
pub fn protocol_of(headers: &HeaderMap) -> &'static str {
    let forwarded = headers.get("x-forwarded-proto").and_then(|p| p.to_str().ok()).unwrap_or_default();
    if forwarded.trim().eq_ignore_ascii_case("https") { "https" } else { "http" }
}

/// The document's caching header.
pub fn cache_control() -> HeaderValue {
    HeaderValue::from_static(CACHE_CONTROL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_points_segment_io_at_the_host() {
        let doc = document("lf_k", "gw.example:8080", "http");
        assert_eq!(doc["integrations"]["Segment.io"]["apiHost"], "gw.example:8080/v1");
        assert_eq!(doc["integrations"]["Segment.io"]["apiKey"], "lf_k");
        assert_eq!(doc["plan"]["track"]["__default"]["enabled"], true);
        let mut headers = HeaderMap::new();
        assert_eq!((host_of(&headers), protocol_of(&headers)), ("localhost".to_owned(), "http"));
        headers.insert(header::HOST, HeaderValue::from_static("gw.example"));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert_eq!((host_of(&headers), protocol_of(&headers)), ("gw.example".to_owned(), "https"));
    }
}
