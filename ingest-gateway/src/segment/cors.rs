//! CORS for `/v1` and `/beacon`, outside the router's global CORS layer, because the caller is
//! known only once the body is read: analytics.js sends its write key inside a `text/plain`
//! body. A preflight carries no credential, so it is allowed when its `Origin` is in any
//! project's `allowedOrigins` (as the global layer does); an actual request gets
//! `Access-Control-Allow-Origin` when its `Origin` is in the list of the project its handler
//! authenticated, which the handler names with a [`CorsProject`] extension on its answer.
//! No credentials mode: keys travel in bodies and headers, not cookies.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::AuthState;

/// On a handler's answer: the project whose `allowedOrigins` decide whether the request's
/// origin may read it.
#[derive(Debug, Clone)]
pub struct CorsProject(pub String);

const ALLOW_METHODS: &str = "GET, POST, OPTIONS";
const ALLOW_HEADERS: &str = "authorization, content-type, content-encoding, x-api-key";
/// What a page may read of an answer: the waits that analytics.js honours.
const EXPOSE_HEADERS: &str =
    "retry-after, x-ratelimit-reset, ratelimit-limit, ratelimit-remaining, ratelimit-reset";
const MAX_AGE_SECS: &str = "600";

/// The middleware of the Segment routes.
pub async fn middleware(State(auth): State<Arc<AuthState>>, request: Request, next: Next) -> Response {
    let origin = request.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()).map(str::to_owned);
    let preflight = request.method() == Method::OPTIONS
        && origin.is_some()
        && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        return answer_preflight(&auth, origin.as_deref().unwrap_or_default()).await;
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("origin"));
    let (Some(origin), Some(CorsProject(project))) =
        (origin, response.extensions().get::<CorsProject>().cloned())
    else {
        return response;
    };
    let allowed = matches!(auth.project(&project).await, Ok(Some(p)) if p.allowed_origins.contains(&origin));
    if allowed && let Ok(value) = HeaderValue::from_str(&origin) {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE_HEADERS));
    }
    response
}

async fn answer_preflight(auth: &AuthState, origin: &str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::VARY,
        HeaderValue::from_static("origin, access-control-request-method, access-control-request-headers"),
    );
    let allowed = auth.all_origins().await.is_ok_and(|all| all.contains(origin));
    if allowed && let Ok(value) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOW_METHODS));
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS));
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE_SECS));
    }
    // A refused preflight is answered too, without the allowance: the browser then refuses the call.
    (StatusCode::NO_CONTENT, headers).into_response()
}
