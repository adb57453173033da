//! The `/api/auth/*` routes through `oneshot`, with the users and the auth store in memory, and
//! one probe route behind the gateway's `Caller` that shows what a session may do.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::FromRef;
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::routing::get;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tower::ServiceExt;

use leadflow_core::runtime::secret::Secret;

use super::*;
use crate::auth::caller::Caller;
use crate::auth::config::AuthConfig;
use crate::auth::documents::{ApiKeyDoc, ProjectDoc};
use crate::auth::keys;
use crate::auth::store::{AuthStore, MemoryAuthStore};
use crate::users::store::{MemoryUserStore, UserStore};
use crate::users::throttle::FAILURES_PER_WINDOW;

const ADMIN_TOKEN: &str = "an-admin-token-of-24-chars-or-more";
const PASSWORD: &str = "correct horse battery staple";

#[derive(Clone)]
struct TestState {
    users: Arc<UsersState>,
    auth: Arc<AuthState>,
}

impl FromRef<TestState> for Arc<UsersState> {
    fn from_ref(state: &TestState) -> Self {
        state.users.clone()
    }
}

impl FromRef<TestState> for Arc<AuthState> {
    fn from_ref(state: &TestState) -> Self {
        state.auth.clone()
    }
}

struct App {
    router: Router,
    auth_store: Arc<MemoryAuthStore>,
    user_store: Arc<MemoryUserStore>,
}

fn config(cookie_secure: bool) -> AuthConfig {
    AuthConfig {
        admin_token: Secret::new(ADMIN_TOKEN),
        jwt_secret: Secret::new("a jwt secret of at least thirty-two bytes"),
        session_ttl: Duration::from_secs(3600),
        cache_ttl: Duration::from_millis(1),
        default_events_per_minute: 100,
        cookie_secure,
    }
}

async fn app_with(cookie_secure: bool) -> App {
    let config = config(cookie_secure);
    let auth_store = Arc::new(MemoryAuthStore::default());
    for id in ["acme", "beta"] {
        auth_store
            .insert_project(ProjectDoc {
                id: id.into(),
                name: id.into(),
                allowed_origins: vec![],
                events_per_minute: None,
                event_types: Default::default(),
                created_at: OffsetDateTime::now_utc(),
            })
            .await
            .unwrap();
    }
    let user_store = Arc::new(MemoryUserStore::default());
    let users = Arc::new(UsersState::new(&config, user_store.clone(), Duration::from_secs(2)).unwrap());
    let auth =
        Arc::new(AuthState::new(&config, auth_store.clone(), users.sessions.clone(), Duration::from_secs(2)));
    // What a session may do, as the gateway's routes see it.
    let probe = |caller: Caller| async move {
        match caller {
            Caller::User(user) => {
                Json(json!({"email": user.email, "projects": user.projects})).into_response()
            }
            other => Json(json!({"caller": format!("{other:?}")})).into_response(),
        }
    };
    // What project a session acts in on the stream.
    let stream_project = |caller: Caller| async move { caller.in_project(Scope::Read).map(|p| p.project_id) };
    let router = routes::<TestState>()
        .route("/probe", get(probe).put(probe))
        .route("/api/stream", get(stream_project))
        .with_state(TestState { users, auth });
    App { router, auth_store, user_store }
}

async fn app() -> App {
    app_with(false).await
}

impl App {
    async fn send(&self, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        (status, headers, body)
    }

    async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Value,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut request = Request::post(path).header(header::CONTENT_TYPE, "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Body::from(body.to_string())).unwrap()).await
    }

    async fn register(&self, email: &str, projects: &[&str]) -> (StatusCode, Value) {
        let bearer = format!("Bearer {ADMIN_TOKEN}");
        let body = json!({"email": email, "password": PASSWORD, "projects": projects});
        let (status, _, body) = self.post("/api/auth/register", &[("authorization", &bearer)], body).await;
        (status, body)
    }

    async fn login(&self, email: &str, password: &str) -> (StatusCode, HeaderMap, Value) {
        self.post("/api/auth/login", &[], json!({"email": email, "password": password})).await
    }

    /// Registers `email` in `projects` and logs in: the cookie pair to send, and the CSRF token.
    async fn session(&self, email: &str, projects: &[&str]) -> (String, String) {
        assert_eq!(self.register(email, projects).await.0, StatusCode::CREATED);
        let (status, headers, body) = self.login(email, PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (cookie_pair(&headers), body["csrfToken"].as_str().unwrap().to_owned())
    }

    async fn with_cookie(
        &self,
        method: &str,
        path: &str,
        cookie: &str,
        extra: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path).header(header::COOKIE, cookie);
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let (status, _, body) = self.send(request.body(Body::empty()).unwrap()).await;
        (status, body)
    }

    async fn admin_key(&self, project: &str, scopes: Vec<Scope>) -> String {
        let key = keys::generate().unwrap();
        self.auth_store
            .insert_key(ApiKeyDoc {
                id: key.id.clone(),
                project_id: project.into(),
                name: "test".into(),
                scopes,
                events_per_minute: None,
                hash: key.hash.clone(),
                created_at: OffsetDateTime::now_utc(),
                revoked_at: None,
            })
            .await
            .unwrap();
        key.text.expose().to_owned()
    }
}

/// `leadflow_session=<jwt>` from a `Set-Cookie`.
fn cookie_pair(headers: &HeaderMap) -> String {
    let set = headers.get(header::SET_COOKIE).expect("Set-Cookie").to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn register_then_login_sets_the_session_cookie_and_me_reads_it() {
    let app = app().await;
    let (status, body) = app.register("Ada@Example.com", &["acme", "beta"]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body, json!({"email": "ada@example.com", "projects": ["acme", "beta"]}));
    let stored = app.user_store.user("ada@example.com").await.unwrap().unwrap();
    assert!(stored.password_hash.starts_with("$argon2id$"), "{}", stored.password_hash);

    let (status, headers, body) = app.login("ADA@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email"], "ada@example.com");
    assert_eq!(body["projects"], json!(["acme", "beta"]));
    let expires = OffsetDateTime::parse(body["expiresAt"].as_str().unwrap(), &Rfc3339).unwrap();
    let ttl = expires - OffsetDateTime::now_utc();
    assert!(ttl > time::Duration::minutes(59) && ttl <= time::Duration::hours(1), "{ttl}");
    let set_cookie = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(set_cookie.ends_with("; HttpOnly; SameSite=Strict; Path=/; Max-Age=3600"), "{set_cookie}");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");

    let cookie = cookie_pair(&headers);
    let (status, me) = app.with_cookie("GET", "/api/auth/me", &cookie, &[]).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(
        me,
        json!({"email": "ada@example.com", "projects": ["acme", "beta"], "csrfToken": body["csrfToken"]})
    );
}

#[tokio::test]
async fn the_cookie_is_secure_when_configured() {
    let app = app_with(true).await;
    app.register("ada@example.com", &["acme"]).await;
    let (_, headers, _) = app.login("ada@example.com", PASSWORD).await;
    assert!(headers[header::SET_COOKIE].to_str().unwrap().ends_with("; Secure"));
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_401() {
    let app = app().await;
    app.register("ada@example.com", &["acme"]).await;
    let (wrong_status, wrong_headers, wrong) = app.login("ada@example.com", "not the password at all").await;
    let (unknown_status, unknown_headers, unknown) = app.login("nobody@example.com", PASSWORD).await;
    assert_eq!(wrong_status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong, json!({"error": "invalid_credentials", "message": "email or password is wrong"}));
    assert_eq!((unknown_status, &unknown), (wrong_status, &wrong));
    assert!(
        wrong_headers.get(header::SET_COOKIE).is_none() && unknown_headers.get(header::SET_COOKIE).is_none()
    );
}

#[tokio::test]
async fn the_sixth_failure_within_a_minute_is_429_even_with_the_right_password() {
    let app = app().await;
    app.register("ada@example.com", &["acme"]).await;
    for attempt in 1..=FAILURES_PER_WINDOW {
        let (status, _, _) = app.login("ada@example.com", "not the password at all").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    let (status, headers, body) = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "rate_limited");
    let retry: u64 = headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=12).contains(&retry), "{retry}");
    // Unknown emails are throttled alike; another email is not affected.
    for _ in 1..=FAILURES_PER_WINDOW {
        app.login("nobody@example.com", PASSWORD).await;
    }
    assert_eq!(app.login("nobody@example.com", PASSWORD).await.0, StatusCode::TOO_MANY_REQUESTS);
    app.register("bob@example.com", &["acme"]).await;
    assert_eq!(app.login("bob@example.com", PASSWORD).await.0, StatusCode::OK);
}

#[tokio::test]
async fn register_needs_the_admin_token_or_an_admin_key_of_the_project() {
    let app = app().await;
    let body = json!({"email": "ada@example.com", "password": PASSWORD, "projects": ["acme"]});
    let (status, headers, _) = app.post("/api/auth/register", &[], body.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");

    let read_key = format!("Bearer {}", app.admin_key("acme", vec![Scope::Read]).await);
    let (status, _, body_of) =
        app.post("/api/auth/register", &[("authorization", &read_key)], body.clone()).await;
    assert_eq!(
        (status, body_of["message"].as_str()),
        (StatusCode::FORBIDDEN, Some("this key lacks the admin scope"))
    );

    let admin_key = format!("Bearer {}", app.admin_key("acme", vec![Scope::Admin]).await);
    let other = json!({"email": "eve@example.com", "password": PASSWORD, "projects": ["beta"]});
    let (status, _, _) = app.post("/api/auth/register", &[("authorization", &admin_key)], other).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an acme key registers no beta user");
    let omitted = json!({"email": "bob@example.com", "password": PASSWORD});
    let (status, _, created) =
        app.post("/api/auth/register", &[("authorization", &admin_key)], omitted).await;
    assert_eq!(
        (status, created),
        (StatusCode::CREATED, json!({"email": "bob@example.com", "projects": ["acme"]}))
    );

    let (cookie, csrf) = app.session("ada@example.com", &["acme"]).await;
    let (status, _) = app
        .with_cookie(
            "POST",
            "/api/auth/register",
            &cookie,
            &[("x-csrf-token", &csrf), ("content-type", "application/json")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a dashboard user registers nobody");
}

#[tokio::test]
async fn register_refuses_a_taken_email_unknown_projects_and_bad_fields() {
    let app = app().await;
    assert_eq!(app.register("ada@example.com", &["acme"]).await.0, StatusCode::CREATED);
    let (status, body) = app.register("ADA@example.com", &["beta"]).await;
    assert_eq!(
        (status, body["error"].as_str(), body["field"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"), Some("email"))
    );

    let (status, body) = app.register("bob@example.com", &["acme", "nope"]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        (body["field"].as_str(), body["details"][0]["reason"].as_str()),
        (Some("projects[1]"), Some("invalid_value"))
    );

    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let short = json!({"email": "bob@example.com", "password": "too short", "projects": ["acme"]});
    let (status, _, body) = app.post("/api/auth/register", &[("authorization", &bearer)], short).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("password")));
    let no_projects = json!({"email": "bob@example.com", "password": PASSWORD});
    let (status, _, body) = app.post("/api/auth/register", &[("authorization", &bearer)], no_projects).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("projects")));
    assert_eq!(app.user_store.user("bob@example.com").await.unwrap(), None, "nothing stored");
}

#[tokio::test]
async fn a_session_reads_freely_but_changes_only_with_its_csrf_token() {
    let app = app().await;
    let (cookie, csrf) = app.session("ada@example.com", &["acme"]).await;
    let (status, body) = app.with_cookie("GET", "/probe", &cookie, &[]).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"email": "ada@example.com", "projects": ["acme"]})));

    let (status, body) = app.with_cookie("PUT", "/probe", &cookie, &[]).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::FORBIDDEN, Some("csrf_failed")));
    let (status, _) = app.with_cookie("PUT", "/probe", &cookie, &[("x-csrf-token", "someone else's")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.with_cookie("PUT", "/probe", &cookie, &[("x-csrf-token", &csrf)]).await;
    assert_eq!(status, StatusCode::OK);

    // A forged or absent cookie is no session at all.
    let (status, _) = app.with_cookie("GET", "/probe", "leadflow_session=a.b.c", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.with_cookie("GET", "/api/auth/me", "other=1", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_session_follows_the_users_projects_as_stored() {
    let app = app().await;
    let (cookie, _) = app.session("ada@example.com", &["acme"]).await;
    app.user_store.set_projects("ada@example.com", vec!["beta".into()]);
    // The cache lives 1 ms here; the bound is auth.cache_ttl.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (status, me) = app.with_cookie("GET", "/api/auth/me", &cookie, &[]).await;
    assert_eq!((status, me["projects"].clone()), (StatusCode::OK, json!(["beta"])));
}

#[tokio::test]
async fn logout_clears_the_cookie_and_needs_the_csrf_token_of_a_live_session() {
    let app = app().await;
    let (cookie, csrf) = app.session("ada@example.com", &["acme"]).await;
    let (status, body) = app.with_cookie("POST", "/api/auth/logout", &cookie, &[]).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::FORBIDDEN, Some("csrf_failed")));

    let request = Request::post("/api/auth/logout")
        .header(header::COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = app.send(request).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        headers[header::SET_COOKIE],
        "leadflow_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
    );

    let (status, _) = app.with_cookie("POST", "/api/auth/logout", "other=1", &[]).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "no session: nothing to protect");
}

#[tokio::test]
async fn a_login_body_must_be_json_naming_its_fields() {
    let app = app().await;
    let (status, _, body) = app.post("/api/auth/login", &[], json!({"email": "ada@example.com"})).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("password")));
    let request = Request::post("/api/auth/login")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("x"))
        .unwrap();
    assert_eq!(app.send(request).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn the_stream_takes_the_users_project_from_the_query_as_event_source_sends_no_headers() {
    let app = app().await;
    let (cookie, _) = app.session("ada@example.com", &["acme", "beta"]).await;
    let (status, _) = app.with_cookie("GET", "/api/stream", &cookie, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "two projects and none chosen");
    let response = app
        .router
        .clone()
        .oneshot(
            Request::get("/api/stream?project=beta")
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
    assert_eq!(&body[..], b"beta");
    let (status, _) = app.with_cookie("GET", "/api/stream?project=gamma", &cookie, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not one of the user's projects");
}
