//! HubSpot's error bodies, `{status:"error", message, category, correlationId, ...}`, and the
//! correlation ids in them.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A fresh id shaped like HubSpot's (a UUID): deterministic bits, unique within the process.
pub fn correlation_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let (a, b) = (splitmix(n), splitmix(n ^ 0x5555_5555_5555_5555));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

fn splitmix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `{status, message, category, correlationId}` plus `extra`'s fields.
pub fn error_body(category: &str, message: &str, extra: Value) -> Value {
    let mut body = json!({"status": "error", "message": message, "category": category,
                          "correlationId": correlation_id()});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    body
}

pub fn reply(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

pub fn validation_error(message: &str, errors: Vec<Value>) -> Response {
    reply(StatusCode::BAD_REQUEST, error_body("VALIDATION_ERROR", message, json!({ "errors": errors })))
}

pub fn unauthorized() -> Response {
    let message = "Authentication credentials not found. This API supports OAuth 2.0 authentication and \
                   you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview";
    reply(StatusCode::UNAUTHORIZED, error_body("INVALID_AUTHENTICATION", message, json!({})))
}

pub fn missing_scopes() -> Response {
    let errors = json!({"errors": [{"message": "One or more of the following scopes are required.",
                                    "context": {"requiredGranularScopes": ["crm.objects.contacts.write"]}}]});
    let message = "This app hasn't been granted all required scopes to make this call.";
    reply(StatusCode::FORBIDDEN, error_body("MISSING_SCOPES", message, errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_ids_look_like_uuids_and_differ() {
        let (a, b) = (correlation_id(), correlation_id());
        assert_ne!(a, b);
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{a}");
        assert!(a.chars().all(|c| c == '-' || c.is_ascii_hexdigit()), "{a}");
    }
}
