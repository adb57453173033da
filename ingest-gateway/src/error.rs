//! Every error the API answers with is JSON: `{"error": code, "message", "field"?, "details"?}`,
//! where `details` lists each [`FieldError`] of a request that broke the input rules.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One rule broken by one field. `field` is a path such as `leadId` or `events[3].timestamp`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    /// A short, bounded reason, also used as a metric label: `required`, `invalid_type`,
    /// `invalid_format`, `too_long`, `too_large`, `too_deep`, `in_future`, `unknown_field`, `empty`,
    /// `too_many`, `invalid_value` (a scoring rule out of its range, or a value outside a fixed set
    /// such as a review's `decision`).
    pub reason: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: &'static str, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), reason, message: message.into() }
    }

    /// The same error, its field placed under `prefix` (e.g. `events[3]`).
    pub fn under(mut self, prefix: &str) -> Self {
        self.field = format!("{prefix}.{}", self.field);
        self
    }
}

#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub error: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldError>,
}

#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub body: ErrorBody,
    /// Sent as `Retry-After` (whole seconds) with a 503 or a 429.
    pub retry_after: Option<Duration>,
    /// More headers of the answer: `WWW-Authenticate` with a 401, `RateLimit-*` with a 429.
    /// Boxed: most errors have none, and an `AppError` travels in every handler's `Result`.
    pub headers: Box<HeaderMap>,
}

impl AppError {
    fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        AppError {
            status,
            body: ErrorBody { error, message: message.into(), field: None, details: Vec::new() },
            retry_after: None,
            headers: Box::default(),
        }
    }

    /// 401: no credential, or one that is not (or no longer) valid. Never says which, beyond
    /// "missing": a caller probing keys learns nothing.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        let mut error = Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message);
        error.headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        error
    }

    /// 403: a valid credential without the right to do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 429: over the key's rate limit; `headers` carries the `RateLimit-*` headers and
    /// `retry_after` (when the request can ever fit) the wait.
    pub fn rate_limited(
        message: impl Into<String>,
        retry_after: Option<Duration>,
        headers: HeaderMap,
    ) -> Self {
        let mut error = Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
        error.retry_after = retry_after;
        error.headers = Box::new(headers);
        error
    }

    /// A 500 whose message is the record's contract failure.
    pub fn contract(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    }

    /// 400 naming the first broken field, with all of them in `details`.
    pub fn invalid_fields(errors: Vec<FieldError>) -> Self {
        let first = errors.first().cloned();
        let mut error = Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            first.as_ref().map_or_else(|| "invalid request".to_owned(), |e| e.message.clone()),
        );
        error.body.field = first.map(|e| e.field);
        error.body.details = errors;
        error
    }

    /// 409: the request contradicts what is already in force, naming the field that does.
    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut error = Self::new(StatusCode::CONFLICT, "conflict", message);
        error.body.field = Some(field.into());
        error
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than {limit} bytes"),
        )
    }

    /// 400 for a body over a Segment route's limit: that API's SDKs drop a batch answered 400
    /// and retry every other status, so a 413 would be resent forever.
    pub fn oversized(limit: usize) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "payload_too_large",
            format!("the body is larger than {limit} bytes"),
        )
    }

    /// 415 naming what a route takes instead of `application/json` alone.
    pub fn unsupported_media_type_of(got: &str, takes: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type must be {takes}, not {got:?}"),
        )
    }

    pub fn unsupported_media_type(got: Option<&str>) -> Self {
        let message = match got {
            Some(got) => format!("Content-Type must be application/json, not {got:?}"),
            None => "Content-Type must be application/json".to_owned(),
        };
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", message)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    }

    /// 404 for a resource that does not exist, naming the field that names it (e.g. `id`).
    pub fn no_such(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut error = Self::new(StatusCode::NOT_FOUND, "not_found", message);
        error.body.field = Some(field.into());
        error
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not take that method",
        )
    }

    /// 503: nothing in the request was reported durable that was not; retry after a pause.
    pub fn unavailable(message: impl Into<String>, retry_after: Duration) -> Self {
        let mut error = Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
        error.retry_after = Some(retry_after);
        error
    }

    pub fn timeout(after: Duration, retry_after: Duration) -> Self {
        let mut error = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("the request did not finish within {after:?}; it may not have been published, retry it"),
        );
        error.retry_after = Some(retry_after);
        error
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        response.headers_mut().extend(*self.headers);
        if let Some(after) = self.retry_after {
            let seconds = after.as_secs().max(1).to_string();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_str(&seconds).expect("digits"));
        }
        response
    }
}
