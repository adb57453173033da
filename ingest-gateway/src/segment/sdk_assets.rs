//! The browser tracker, served by the gateway from files compiled into it
//! (`ingest-gateway/sdk/`): `/sdk/ls.js` and its test page `/sdk/test.html`. Cached for five
//! minutes: a page loads the tracker on every view, and a new gateway's tracker reaches
//! browsers within that.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

pub const TRACKER: &str = include_str!("../../sdk/ls.js");
pub const TEST_PAGE: &str = include_str!("../../sdk/test.html");

const CACHE_CONTROL: &str = "public, max-age=300";

/// `GET /sdk/ls.js`.
pub async fn tracker() -> Response {
    with_headers(TRACKER, "application/javascript; charset=utf-8")
}

/// `GET /sdk/test.html`.
pub async fn test_page() -> Response {
    with_headers(TEST_PAGE, "text/html; charset=utf-8")
}

fn with_headers(content: &'static str, content_type: &'static str) -> Response {
    let mut response = content.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
    response
}
