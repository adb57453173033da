//! Credentials, scopes, the rate limit, CORS and project stamping, through `oneshot` on the
//! whole app (the auth store in memory, a publisher that records).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use futures::future::BoxFuture;
use serde_json::{Value, json};

use crate::auth::scope::Scope;
use crate::auth::session::{SessionCheck, SessionUser};
use crate::error::AppError;
use crate::testing::{Harness, RecordingPublisher, TEST_ADMIN_TOKEN, store_project, with_key};

fn event(lead: &str) -> Value {
    json!({"leadId": lead, "eventType": "page_view"})
}

/// Every route that needs a project credential, with a body it would take.
fn scoped_routes() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::POST, "/api/events", Some(event("l-1"))),
        (Method::POST, "/api/events/batch", Some(json!({"events": [event("l-1")]}))),
        (Method::POST, "/api/leads", Some(json!({"name": "Ada"}))),
        (Method::GET, "/api/leads", None),
        (Method::GET, "/api/leads/l-1", None),
        (Method::GET, "/api/leads/l-1/history", None),
        (Method::GET, "/api/leads/l-1/intelligence", None),
        (Method::POST, "/api/leads/l-1/review", Some(json!({"decision": "Verified"}))),
        (Method::GET, "/api/leaderboard", None),
        (Method::GET, "/api/stream", None),
        (Method::GET, "/api/scoring-rules", None),
        (Method::PUT, "/api/scoring-rules", Some(json!({}))),
        (Method::GET, "/api/automations", None),
        (Method::POST, "/api/automations", Some(json!({}))),
        (Method::GET, "/api/automations/executions", None),
        (Method::GET, "/api/automations/hot", None),
        (Method::PUT, "/api/automations/hot", Some(json!({}))),
        (Method::DELETE, "/api/automations/hot", None),
        (Method::GET, "/api/webhooks", None),
        (Method::POST, "/api/webhooks", Some(json!({}))),
        (Method::GET, "/api/webhooks/w-1", None),
        (Method::DELETE, "/api/webhooks/w-1", None),
        (Method::POST, "/api/webhooks/w-1/test", None),
        (Method::GET, "/api/webhooks/w-1/deliveries", None),
        (Method::POST, "/api/webhooks/w-1/replay", None),
    ]
}

#[tokio::test]
async fn a_missing_malformed_unknown_or_revoked_credential_is_the_same_401_and_nothing_is_published() {
    let h = Harness::new();
    let revoked = h.key_of("default", &Scope::ALL, None);
    let revoked_id = crate::auth::keys::key_id_of(&revoked).unwrap().to_owned();
    use crate::auth::store::AuthStore;
    h.store.revoke_key("default", &revoked_id, time::OffsetDateTime::now_utc()).await.unwrap();
    let unknown = format!("lf_0123456789ab_{}", "A".repeat(43));
    let mut wrong_secret = h.key.clone();
    wrong_secret.replace_range(wrong_secret.len() - 4.., "AAAA");
    for (method, path, body) in scoped_routes() {
        let anonymous = {
            let builder = Request::builder().method(method.clone()).uri(path);
            match &body {
                Some(b) => {
                    builder.header(header::CONTENT_TYPE, "application/json").body(Body::from(b.to_string()))
                }
                None => builder.body(Body::empty()),
            }
            .unwrap()
        };
        let (status, headers, answer) = h.send_as_is(anonymous).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthorized")),
            "{path}"
        );
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer", "{path}");
        for bad in [revoked.as_str(), unknown.as_str(), wrong_secret.as_str(), "not-a-key", "lf_x"] {
            let (status, headers, answer) = h.send(with_key(method.clone(), path, bad, body.clone())).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} with {bad}: {answer}");
            assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
            assert!(!answer.to_string().contains(bad), "the answer quotes the credential: {answer}");
        }
    }
    assert!(h.published().is_empty());
    let basic =
        Request::get("/api/leads").header(header::AUTHORIZATION, "Basic dXNlcjpwdw==").body(Body::empty());
    assert_eq!(h.send(basic.unwrap()).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_key_without_the_scope_is_403_naming_the_scope_and_the_admin_token_is_for_management_only() {
    let h = Harness::new();
    let ingest = h.key_of("default", &[Scope::Ingest], None);
    let read = h.key_of("default", &[Scope::Read], None);
    let cases = [
        (&ingest, Method::GET, "/api/leads", None, "read"),
        (&ingest, Method::GET, "/api/stream", None, "read"),
        (&ingest, Method::GET, "/api/scoring-rules", None, "read"),
        (&read, Method::POST, "/api/events", Some(event("l-1")), "ingest"),
        (&read, Method::POST, "/api/leads", Some(json!({"name": "Ada"})), "ingest"),
        (&read, Method::PUT, "/api/scoring-rules", Some(json!({})), "admin"),
        (&read, Method::POST, "/api/leads/l-1/review", Some(json!({"decision": "Verified"})), "admin"),
        (&ingest, Method::POST, "/api/leads/l-1/review", Some(json!({"decision": "Verified"})), "admin"),
    ];
    for (key, method, path, body, scope) in cases {
        let (status, _, answer) = h.send(with_key(method.clone(), path, key, body)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        assert_eq!(
            answer,
            json!({"error": "forbidden", "message": format!("this key lacks the {scope} scope")})
        );
    }
    let (status, _, answer) =
        h.send(with_key(Method::POST, "/api/events", TEST_ADMIN_TOKEN, Some(event("l-1")))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("management API"), "{answer}");
    assert!(h.published().is_empty(), "nothing refused was published");
    // The ingest key may post, through either header.
    let request = Request::post("/api/events")
        .header("x-api-key", &ingest)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(event("l-1").to_string()))
        .unwrap();
    assert_eq!(h.send(request).await.0, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn records_carry_the_callers_project_and_its_lead_key() {
    let h = Harness::new();
    store_project(&h.store, "acme", &[], None);
    let acme = h.key_of("acme", &Scope::ALL, None);
    let (status, headers, _) =
        h.send(with_key(Method::POST, "/api/events", &acme, Some(event("same-id")))).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(headers.contains_key("ratelimit-limit"));
    h.send(with_key(Method::POST, "/api/leads", &acme, Some(json!({"leadId": "same-id", "name": "Ada"}))))
        .await;
    let review = Some(json!({"decision": "Rejected"}));
    assert_eq!(
        h.send(with_key(Method::POST, "/api/leads/same-id/review", &acme, review)).await.0,
        StatusCode::ACCEPTED
    );
    let mut rules = serde_json::to_value(leadflow_core::model::scoring::ScoringRules::seeds()).unwrap();
    rules["version"] = json!("acme-v2");
    assert_eq!(
        h.send(with_key(Method::PUT, "/api/scoring-rules", &acme, Some(rules))).await.0,
        StatusCode::ACCEPTED
    );
    h.post("/api/events", event("same-id")).await;
    let published = h.published();
    let keys: Vec<(&str, &str, &Value)> =
        published.iter().map(|(t, k, v)| (t.as_str(), k.as_str(), &v["projectId"])).collect();
    assert_eq!(
        keys,
        vec![
            ("leads.events.v1", "acme/same-id", &json!("acme")),
            ("leads.names.v1", "acme/same-id", &json!("acme")),
            ("leads.reviews.v1", "acme/same-id", &json!("acme")),
            ("scoring.rules.v1", "scoring-rules/acme", &json!("acme")),
            ("leads.events.v1", "same-id", &Value::Null),
        ],
        "the default project's records are as before projects"
    );
    // acme's rules are acme's: the default project still reads the seeds.
    let (_, rules) = h.get("/api/scoring-rules").await;
    assert_eq!((rules["rules"]["version"].as_str(), rules["source"].as_str()), (Some("v1"), Some("default")));
}

#[tokio::test]
async fn the_rate_limit_counts_events_answers_429_with_its_headers_and_publishes_nothing_over_it() {
    let h = Harness::new();
    let key = h.key_of("default", &[Scope::Ingest], Some(3));
    let mut remaining = Vec::new();
    for i in 0..3 {
        let (status, headers, _) =
            h.send(with_key(Method::POST, "/api/events", &key, Some(event(&format!("l-{i}"))))).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(headers["ratelimit-limit"], "3");
        remaining.push(headers["ratelimit-remaining"].to_str().unwrap().to_owned());
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let (status, headers, answer) =
        h.send(with_key(Method::POST, "/api/events", &key, Some(event("l-3")))).await;
    assert_eq!((status, answer["error"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited")));
    assert_eq!(headers[header::RETRY_AFTER], "20", "one event every 20 s at 3 per minute");
    assert_eq!(
        (headers["ratelimit-remaining"].to_str().unwrap(), headers["ratelimit-reset"].to_str().unwrap()),
        ("0", "60")
    );
    assert_eq!(h.published().len(), 3, "nothing over the limit is published");

    let batcher = h.key_of("default", &[Scope::Ingest], Some(3));
    let batch = json!({"events": [event("b-1"), event("b-2"), event("b-3"), event("b-4")]});
    let (status, headers, answer) =
        h.send(with_key(Method::POST, "/api/events/batch", &batcher, Some(batch))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(answer["message"].as_str().unwrap().contains("never fit"), "{answer}");
    assert!(headers.contains_key(header::RETRY_AFTER));
    let batch = json!({"events": [event("b-1"), event("b-2"), {"leadId": ""}]});
    let (status, headers, answer) =
        h.send(with_key(Method::POST, "/api/events/batch", &batcher, Some(batch))).await;
    assert_eq!((status, answer["accepted"].as_u64()), (StatusCode::ACCEPTED, Some(2)), "{answer}");
    assert_eq!(
        headers["ratelimit-remaining"], "1",
        "the two valid items are counted, the invalid one is not"
    );
    assert_eq!(h.published().len(), 5);
}

#[tokio::test]
async fn a_refused_ingest_request_carries_the_limit_headers_and_costs_nothing() {
    let h = Harness::new();
    let key = h.key_of("default", &[Scope::Ingest], Some(10));
    for (path, body) in [
        ("/api/events", json!({"leadId": "", "eventType": "page_view"})),
        ("/api/events/batch", json!({"events": [{"leadId": ""}]})),
        ("/api/leads", json!({"name": ""})),
    ] {
        let (status, headers, answer) = h.send(with_key(Method::POST, path, &key, Some(body))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert_eq!(
            (headers["ratelimit-limit"].to_str().unwrap(), headers["ratelimit-remaining"].to_str().unwrap()),
            ("10", "10"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_limit_is_the_keys_else_the_projects_else_the_default() {
    let h = Harness::new();
    store_project(&h.store, "small", &[], Some(7));
    let of_project = h.key_of("small", &[Scope::Ingest], None);
    let of_key = h.key_of("small", &[Scope::Ingest], Some(11));
    let of_default = h.key_of("default", &[Scope::Ingest], None);
    for (key, limit) in [(&of_project, "7"), (&of_key, "11"), (&of_default, "100")] {
        let (_, headers, _) = h.send(with_key(Method::POST, "/api/events", key, Some(event("l-1")))).await;
        assert_eq!(headers["ratelimit-limit"], limit);
    }
}

fn preflight(origin: &str) -> Request<Body> {
    Request::builder()
        .method(Method::OPTIONS)
        .uri("/api/events")
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization,content-type")
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn cors_allows_a_preflight_from_any_projects_origin_and_a_request_only_from_its_own() {
    let h = Harness::new();
    store_project(&h.store, "shop", &["https://shop.example"], None);
    let shop = h.key_of("shop", &Scope::ALL, None);
    let (status, headers, _) = h.send_as_is(preflight("https://shop.example")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://shop.example");
    assert!(headers[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap().contains("authorization"));
    assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS));
    let (_, headers, _) = h.send_as_is(preflight("https://evil.example")).await;
    assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN), "no origins by default");

    let from = |key: &str, origin: &str| {
        let mut request = with_key(Method::GET, "/api/scoring-rules", key, None);
        request.headers_mut().insert(header::ORIGIN, origin.parse().unwrap());
        request
    };
    let (status, headers, _) = h.send(from(&shop, "https://shop.example")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://shop.example");
    assert!(headers[header::ACCESS_CONTROL_EXPOSE_HEADERS].to_str().unwrap().contains("ratelimit-remaining"));
    let (status, headers, _) = h.send(from(&h.key, "https://shop.example")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        "the default project allows no origin"
    );
    let (_, headers, _) = h.send(from(&shop, "https://evil.example")).await;
    assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
}

/// A session check that takes a fixed user, the way `crate::users` plugs its check in.
struct OneUser(SessionUser);

impl SessionCheck for OneUser {
    fn check(
        &self,
        headers: &HeaderMap,
        method: &Method,
    ) -> BoxFuture<'_, Result<Option<SessionUser>, AppError>> {
        let signed_in = headers.contains_key(header::COOKIE);
        let unsafe_method = method != Method::GET;
        let csrf = headers.get("x-csrf-token").is_some_and(|v| v == "right");
        Box::pin(async move {
            match (signed_in, unsafe_method && !csrf) {
                (false, _) => Ok(None),
                (true, true) => Err(AppError::forbidden("csrf")),
                (true, false) => Ok(Some(self.0.clone())),
            }
        })
    }
}

#[tokio::test]
async fn a_session_user_reads_and_administers_its_chosen_project_but_never_ingests() {
    let user = SessionUser { email: "ada@example.com".into(), projects: vec!["a".into(), "b".into()] };
    let h = Harness::with_sessions(RecordingPublisher::default(), Arc::new(OneUser(user)));
    store_project(&h.store, "a", &[], None);
    let request = |method: Method, path: &str, project: Option<&str>, body: Option<Value>| {
        let mut builder =
            Request::builder().method(method).uri(path).header(header::COOKIE, "leadflow_session=x");
        builder = builder.header("x-csrf-token", "right");
        if let Some(project) = project {
            builder = builder.header("x-leadflow-project", project);
        }
        match body {
            Some(b) => {
                builder.header(header::CONTENT_TYPE, "application/json").body(Body::from(b.to_string()))
            }
            None => builder.body(Body::empty()),
        }
        .unwrap()
    };
    let (status, _, answer) = h.send(request(Method::GET, "/api/scoring-rules", None, None)).await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("X-LeadFlow-Project")),
        "{answer}"
    );
    let (status, _, answer) = h.send(request(Method::GET, "/api/scoring-rules", Some("b"), None)).await;
    assert_eq!((status, answer["rules"]["projectId"].as_str()), (StatusCode::OK, Some("b")), "{answer}");
    let (status, _, _) = h.send(request(Method::GET, "/api/scoring-rules", Some("c"), None)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not the user's project");
    let (status, _, answer) =
        h.send(request(Method::POST, "/api/events", Some("a"), Some(event("l-1")))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let (status, _, _) = h
        .send(request(
            Method::POST,
            "/api/leads/l-1/review",
            Some("a"),
            Some(json!({"decision": "Verified"})),
        ))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(h.published()[0].2["projectId"], "a");
    let (status, _, _) = h.send(request(Method::GET, "/api/projects/a/keys", None, None)).await;
    assert_eq!(status, StatusCode::OK, "a user administers the keys of its projects");
    let (status, _, _) = h.send(request(Method::GET, "/api/projects/default/keys", None, None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "and not another project's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_of_one_key_are_decided_together_exactly_to_the_limit() {
    use crate::auth::AuthState;
    use crate::auth::caller::{InProject, KeyCaller};
    use crate::auth::store::MemoryAuthStore;
    let store = Arc::new(SlowRates { inner: MemoryAuthStore::default(), swaps: Default::default() });
    let auth = Arc::new(AuthState::new(
        &crate::testing::auth_config(),
        store.clone(),
        Arc::new(crate::auth::session::NoSessions),
        std::time::Duration::from_secs(2),
    ));
    let caller = InProject {
        project_id: "default".into(),
        key: Some(KeyCaller {
            key_id: "0123456789ab".into(),
            project_id: "default".into(),
            scopes: vec![Scope::Ingest],
            events_per_minute: Some(100),
        }),
    };
    let requests: Vec<_> = (0..150)
        .map(|_| {
            let (auth, caller) = (auth.clone(), caller.clone());
            tokio::spawn(async move { auth.admit(&caller, 1).await.map_err(|e| e.status) })
        })
        .collect();
    let mut answers = std::collections::BTreeMap::new();
    for request in requests {
        let status = match request.await.unwrap() {
            Ok(_) => StatusCode::OK,
            Err(status) => status,
        };
        *answers.entry(status.as_u16()).or_insert(0) += 1;
    }
    assert_eq!(
        answers,
        std::collections::BTreeMap::from([(200, 100), (429, 50)]),
        "100 admitted, 50 refused, none lost to contention"
    );
    let swaps = store.swaps.load(std::sync::atomic::Ordering::SeqCst);
    assert!(swaps < 100, "{swaps} swaps for 100 admitted requests: they were not decided together");
}

/// The memory store with a MongoDB-like wait on every rate read, counting the swaps.
struct SlowRates {
    inner: crate::auth::store::MemoryAuthStore,
    swaps: std::sync::atomic::AtomicUsize,
}

type Answer<'a, T> = BoxFuture<'a, Result<T, crate::auth::store::StoreError>>;

impl crate::auth::store::AuthStore for SlowRates {
    fn project(&self, id: &str) -> Answer<'_, Option<crate::auth::documents::ProjectDoc>> {
        self.inner.project(id)
    }
    fn projects(&self) -> Answer<'_, Vec<crate::auth::documents::ProjectDoc>> {
        self.inner.projects()
    }
    fn insert_project(&self, project: crate::auth::documents::ProjectDoc) -> Answer<'_, ()> {
        self.inner.insert_project(project)
    }
    fn update_project(
        &self,
        id: &str,
        changes: crate::auth::store::ProjectChanges,
    ) -> Answer<'_, Option<crate::auth::documents::ProjectDoc>> {
        self.inner.update_project(id, changes)
    }
    fn key(&self, key_id: &str) -> Answer<'_, Option<crate::auth::documents::ApiKeyDoc>> {
        self.inner.key(key_id)
    }
    fn keys(&self, project_id: &str) -> Answer<'_, Vec<crate::auth::documents::ApiKeyDoc>> {
        self.inner.keys(project_id)
    }
    fn insert_key(&self, key: crate::auth::documents::ApiKeyDoc) -> Answer<'_, ()> {
        self.inner.insert_key(key)
    }
    fn revoke_key(&self, project_id: &str, key_id: &str, at: time::OffsetDateTime) -> Answer<'_, bool> {
        self.inner.revoke_key(project_id, key_id, at)
    }
    fn rate_tat(&self, key_id: &str) -> Answer<'_, Option<i64>> {
        let key_id = key_id.to_owned();
        Box::pin(async move {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            self.inner.rate_tat(&key_id).await
        })
    }
    fn swap_rate_tat(&self, key_id: &str, old: Option<i64>, new: i64) -> Answer<'_, bool> {
        self.swaps.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.swap_rate_tat(key_id, old, new)
    }
}
