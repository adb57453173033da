//! Browser origins, per project, with tower-http's CORS layer. A preflight (`OPTIONS`) carries
//! no credential, so it is allowed when its `Origin` is in any project's `allowedOrigins`; the
//! actual request then gets `Access-Control-Allow-Origin` only when its `Origin` is in the list
//! of the caller's own project. `AllowOrigin::async_predicate` sees the request's headers, so
//! the predicate resolves the caller itself (through the same cached lookups as the extractor):
//! no layer of our own is needed. No origins by default, and no credentials mode (keys travel in
//! headers, not cookies).

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::AuthState;
use crate::auth::caller::{API_KEY_HEADER, Caller, PROJECT_HEADER};
use crate::auth::scope::Scope;

pub fn layer(auth: Arc<AuthState>) -> CorsLayer {
    let predicate = move |origin: HeaderValue, parts: &axum::http::request::Parts| {
        let auth = auth.clone();
        let headers = parts.headers.clone();
        let method = parts.method.clone();
        let uri = parts.uri.clone();
        async move {
            let Ok(origin) = origin.to_str() else { return false };
            if method == Method::OPTIONS {
                return auth.all_origins().await.is_ok_and(|all| all.contains(origin));
            }
            let Ok(caller) = auth.authenticate(&headers, &method, &uri).await else { return false };
            let project = match &caller {
                Caller::Admin => return false,
                Caller::Key(key) => key.project_id.clone(),
                Caller::User(_) => match caller.in_project(Scope::Read) {
                    Ok(scoped) => scoped.project_id,
                    Err(_) => return false,
                },
            };
            matches!(auth.project(&project).await, Ok(Some(p)) if p.allowed_origins.iter().any(|o| o == origin))
        }
    };
    CorsLayer::new()
        .allow_origin(AllowOrigin::async_predicate(predicate))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static(API_KEY_HEADER),
            HeaderName::from_static(PROJECT_HEADER),
            HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([
            header::RETRY_AFTER,
            HeaderName::from_static("ratelimit-limit"),
            HeaderName::from_static("ratelimit-remaining"),
            HeaderName::from_static("ratelimit-reset"),
        ])
        .max_age(Duration::from_secs(600))
}
