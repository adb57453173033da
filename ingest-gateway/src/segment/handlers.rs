//! The `/v1` routes: the Segment spec's calls (and analytics.js's one-letter routes and
//! RudderStack's `/v1/import` and `/beacon/v1/batch`), the settings document analytics.js loads,
//! and the browser tracker's files.
//!
//! A call answers as the SDKs expect: 200 `{"success": true}` once Kafka has acknowledged every
//! record of every message; a message that cannot be used is a dead letter on `leads.dlq.v1`
//! (acknowledged like the rest), not a failure of its batch; 400 only for a body that is not
//! JSON, is over its limit or holds too many messages (the SDKs drop a batch on a 400); 401
//! without a valid write key; 429 with `Retry-After` and `x-ratelimit-reset`; 503 with
//! `Retry-After` while Kafka does not acknowledge (the SDKs retry, and `messageId` as the
//! `eventId` makes a resent message a repeat the scorer drops).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRef, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use time::OffsetDateTime;

use leadflow_core::contract::project::lead_key;
use leadflow_core::contract::records::{DeadLetter, LeadEvent, NameSubmitted, PipelineStage};

use crate::auth::AuthState;
use crate::auth::caller::InProject;
use crate::error::{AppError, FieldError};
use crate::segment::cors::CorsProject;
use crate::segment::message::{CallType, MAX_MESSAGE_BYTES, Received, lead_named, map_message};
use crate::segment::write_key::{self, WRITE_KEY_FIELD};
use crate::segment::{body, sdk_assets, settings};
use crate::write::WriteState;
use crate::write::publisher::Publisher;

/// A single call's body: one message, the spec's 32 KB.
pub const SINGLE_BODY_LIMIT: usize = MAX_MESSAGE_BYTES;
/// A batch's body, decoded: the spec's 500 KB.
pub const BATCH_BODY_LIMIT: usize = 500 * 1024;
/// The most messages a batch may hold (the spec's).
pub const MAX_BATCH_MESSAGES: usize = 2_500;
/// The header analytics.js reads on a 429: the seconds to wait.
pub const RATE_LIMIT_RESET_HEADER: &str = "x-ratelimit-reset";

/// The single-call routes and the call each implies: the spec's names and analytics.js's first
/// letters.
pub const SINGLE_CALL_ROUTES: &[(&str, CallType)] = &[
    ("/v1/track", CallType::Track),
    ("/v1/identify", CallType::Identify),
    ("/v1/page", CallType::Page),
    ("/v1/screen", CallType::Screen),
    ("/v1/group", CallType::Group),
    ("/v1/alias", CallType::Alias),
    ("/v1/t", CallType::Track),
    ("/v1/i", CallType::Identify),
    ("/v1/p", CallType::Page),
    ("/v1/s", CallType::Screen),
    ("/v1/g", CallType::Group),
    ("/v1/a", CallType::Alias),
];

/// The batch routes (`{"batch": [...], "sentAt"?}`, each message with its `type`).
pub const BATCH_ROUTES: &[&str] = &["/v1/batch", "/v1/import", "/v1/b", "/beacon/v1/batch"];

pub const SETTINGS_ROUTE: &str = "/v1/projects/{writeKey}/settings";

/// Is `path` one of the Segment API's (served with this module's CORS, see
/// [`crate::segment::cors`])?
pub fn is_segment_path(path: &str) -> bool {
    path.starts_with("/v1/") || path.starts_with("/beacon/")
}

/// The Segment API's routes, for a router whose state holds a [`WriteState`] and the
/// [`AuthState`].
pub fn routes<P, S>() -> Router<S>
where
    P: Publisher,
    S: Clone + Send + Sync + 'static,
    Arc<WriteState<P>>: FromRef<S>,
    Arc<AuthState>: FromRef<S>,
{
    let mut router = Router::new();
    for &(path, call) in SINGLE_CALL_ROUTES {
        router = router.route(
            path,
            post(
                move |State(write): State<Arc<WriteState<P>>>,
                      State(auth): State<Arc<AuthState>>,
                      request: Request| { accept(write, auth, Some(call), request) },
            ),
        );
    }
    for &path in BATCH_ROUTES {
        router = router.route(
            path,
            post(
                |State(write): State<Arc<WriteState<P>>>,
                 State(auth): State<Arc<AuthState>>,
                 request: Request| { accept(write, auth, None, request) },
            ),
        );
    }
    router
        .route(SETTINGS_ROUTE, get(get_settings))
        .route("/sdk/ls.js", get(sdk_assets::tracker))
        .route("/sdk/test.html", get(sdk_assets::test_page))
}

/// One call (`route_type` Some) or a batch (None): the credential, the messages, the records.
/// Every answer past the credential names the caller's project for CORS and carries the key's
/// `RateLimit-*` headers.
async fn accept<P: Publisher>(
    write: Arc<WriteState<P>>,
    auth: Arc<AuthState>,
    route_type: Option<CallType>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    // A credential in the headers is checked before the body is read; one in the body only after.
    let from_headers = match write_key::from_headers(&auth, &parts.headers, &parts.method, &parts.uri).await {
        Ok(caller) => caller,
        Err(e) => return e.into_response(),
    };
    let limit = if route_type.is_some() { SINGLE_BODY_LIMIT } else { BATCH_BODY_LIMIT };
    let read = body::read(&parts.headers, body, limit).await;
    let (caller, read) = match (from_headers, read) {
        (Some(caller), read) => (caller, read),
        (None, Err(e)) => return e.into_response(),
        (None, Ok(value)) => match write_key::from_body(&auth, &value).await {
            Ok(caller) => (caller, Ok(value)),
            Err(e) => return e.into_response(),
        },
    };
    let project = caller.project_id.clone();
    let answer = async {
        let value = read?;
        publish_messages(&write, &auth, &caller, route_type, value).await
    };
    let mut response = match auth.with_limits(&caller, answer).await {
        Ok(response) => response,
        Err(error) => with_reset_seconds(error).into_response(),
    };
    response.extensions_mut().insert(CorsProject(project));
    response
}

/// A 429 also says when to retry as analytics.js reads it: `x-ratelimit-reset`, in seconds.
fn with_reset_seconds(mut error: AppError) -> AppError {
    if error.status == StatusCode::TOO_MANY_REQUESTS
        && let Some(after) = error.retry_after
    {
        let seconds = after.as_secs().max(1).to_string();
        error.headers.insert(RATE_LIMIT_RESET_HEADER, HeaderValue::from_str(&seconds).expect("digits"));
    }
    error
}

/// The messages of a body: the body itself for a single call, its `batch` for a batch (none
/// when absent), each without its `writeKey`.
fn messages_of(body: Value, single: bool) -> Result<(Vec<Value>, Option<String>), AppError> {
    let Value::Object(mut object) = body else {
        return Err(AppError::invalid_fields(vec![FieldError::new(
            "body",
            "invalid_type",
            "the body must be a JSON object",
        )]));
    };
    object.remove(WRITE_KEY_FIELD);
    if single {
        return Ok((vec![Value::Object(object)], None));
    }
    let sent_at = object.get("sentAt").and_then(Value::as_str).map(str::to_owned);
    let messages = match object.remove("batch") {
        None => Vec::new(),
        Some(Value::Array(messages)) if messages.len() > MAX_BATCH_MESSAGES => {
            return Err(AppError::invalid_fields(vec![FieldError::new(
                "batch",
                "too_many",
                format!("a batch may hold at most {MAX_BATCH_MESSAGES} messages"),
            )]));
        }
        Some(Value::Array(messages)) => messages,
        Some(_) => {
            return Err(AppError::invalid_fields(vec![FieldError::new(
                "batch",
                "invalid_type",
                "batch must be an array of messages",
            )]));
        }
    };
    let messages = messages
        .into_iter()
        .map(|mut message| {
            if let Some(object) = message.as_object_mut() {
                object.remove(WRITE_KEY_FIELD);
            }
            message
        })
        .collect();
    Ok((messages, sent_at))
}

/// The records of every message, and the dead letters of those that cannot be used.
#[derive(Default)]
struct Records {
    names: Vec<NameSubmitted>,
    events: Vec<LeadEvent>,
    dead_letters: Vec<DeadLetter>,
    /// Messages that became records.
    accepted: u64,
}

fn records_of<P: Publisher>(write: &WriteState<P>, messages: &[Value], received: &Received) -> Records {
    let mut records = Records::default();
    for message in messages {
        match map_message(message, received) {
            Ok(mapped) => {
                records.names.extend(mapped.names);
                records.events.extend(mapped.events);
                records.accepted += 1;
            }
            Err(unusable) => {
                write.metrics.records_rejected.with_label_values(&[unusable.kind]).inc();
                let bytes = serde_json::to_vec(message).unwrap_or_default();
                let lead_key =
                    lead_named(message).map(|lead| lead_key(received.project_id, &lead).into_owned());
                records.dead_letters.push(DeadLetter::for_input(
                    PipelineStage::Gateway,
                    received.project_id,
                    lead_key.as_deref(),
                    unusable.kind,
                    &unusable.reason,
                    &bytes,
                    received.received_at,
                ));
            }
        }
    }
    records
}

/// Maps, counts against the rate limit (every message: a dead letter is published too), and
/// publishes; 200 once Kafka acknowledged every record.
async fn publish_messages<P: Publisher>(
    write: &WriteState<P>,
    auth: &AuthState,
    caller: &InProject,
    route_type: Option<CallType>,
    body: Value,
) -> Result<Response, AppError> {
    let (messages, batch_sent_at) = messages_of(body, route_type.is_some())?;
    let project = auth.project(&caller.project_id).await?;
    let no_map = Default::default();
    let received = Received {
        project_id: &caller.project_id,
        received_at: OffsetDateTime::now_utc(),
        batch_sent_at: batch_sent_at.as_deref(),
        event_types: project.as_ref().map_or(&no_map, |p| &p.event_types),
        route_type,
    };
    let records = records_of(write, &messages, &received);
    let limits = if messages.is_empty() {
        auth.current_limits(caller).await.unwrap_or_default()
    } else {
        auth.admit(caller, messages.len()).await?
    };
    let (names, events, dead_letters) = tokio::join!(
        write.publish(&records.names),
        write.publish(&records.events),
        write.publish(&records.dead_letters),
    );
    if let Some(Err(e)) = names.iter().chain(&events).chain(&dead_letters).find(|r| r.is_err()) {
        return Err(write.publish_failure(e));
    }
    let counted = &write.metrics.segment_messages;
    counted.with_label_values(&["accepted"]).inc_by(records.accepted);
    counted.with_label_values(&["dead_lettered"]).inc_by(records.dead_letters.len() as u64);
    Ok((StatusCode::OK, limits, Json(json!({"success": true}))).into_response())
}

/// `GET /v1/projects/{writeKey}/settings`: the document analytics.js loads, for a valid write
/// key only (401 otherwise, never 404: an unknown key and a missing project look alike).
async fn get_settings(
    State(auth): State<Arc<AuthState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let Ok(Path(key)) = path else {
        return AppError::unauthorized("the path does not hold a valid write key").into_response();
    };
    let caller = match write_key::caller_of_key(&auth, &key).await {
        Ok(caller) => caller,
        Err(e) => return e.into_response(),
    };
    let document =
        settings::document(key.trim(), &settings::host_of(&headers), settings::protocol_of(&headers));
    let mut response = Json(document).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, settings::cache_control());
    response.extensions_mut().insert(CorsProject(caller.project_id));
    response
}

#[cfg(test)]
mod tests;
