//! Dashboard users against the real stack: the gateway binary with a MongoDB database of this
//! run's. A user registered with the admin token logs in, reads with the session cookie alone,
//! changes the scoring rules only with the CSRF token, cannot tell a wrong password from an
//! unknown email, is throttled on the 6th failure within a minute, and logs out.

mod common;

use leadflow_core::model::scoring::ScoringRules;
use leadflow_testkit::{Stack, unique};
use reqwest::header::{COOKIE, RETRY_AFTER, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::Gateway;

const PASSWORD: &str = "a dashboard password long enough";

struct Client {
    base_url: String,
    http: reqwest::Client,
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Client {
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.base_url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        let body = response.json().await.unwrap_or(Value::Null);
        Answer { status, headers, body }
    }

    async fn login(&self, email: &str, password: &str) -> Answer {
        self.send(Method::POST, "/api/auth/login", &[], Some(json!({"email": email, "password": password})))
            .await
    }
}

#[tokio::test]
async fn a_user_registers_logs_in_reads_changes_with_csrf_is_throttled_and_logs_out() {
    let stack = Stack::get();
    let admin_token = unique("users-admin-token");
    let gateway = Gateway::start_with(
        &stack,
        &[
            ("LEADFLOW_MONGO__DATABASE", unique("users").replace('-', "_")),
            ("LEADFLOW_AUTH__ADMIN_TOKEN", admin_token.clone()),
            ("LEADFLOW_AUTH__JWT_SECRET", unique("users-jwt-secret-of-at-least-32-bytes")),
        ],
    )
    .await;
    let client = Client { base_url: gateway.base_url.clone(), http: reqwest::Client::new() };
    let admin = format!("Bearer {admin_token}");
    let project = unique("users").replace('_', "-");
    let created = client
        .send(Method::POST, "/api/projects", &[("authorization", &admin)], Some(json!({"id": project})))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);

    // Register with the admin token; the email is the id, lowercased.
    let email = format!("{}@example.com", unique("ada").to_lowercase());
    let body = json!({"email": email.to_uppercase(), "password": PASSWORD, "projects": [project]});
    let registered = client
        .send(Method::POST, "/api/auth/register", &[("authorization", &admin)], Some(body.clone()))
        .await;
    assert_eq!(registered.status, StatusCode::CREATED, "{}", registered.body);
    assert_eq!(registered.body, json!({"email": email, "projects": [project]}));
    let again =
        client.send(Method::POST, "/api/auth/register", &[("authorization", &admin)], Some(body)).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);

    // Log in: the session cookie, HttpOnly and SameSite=Strict, and its CSRF token.
    let login = client.login(&email, PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let set_cookie = login.headers[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(set_cookie.starts_with("leadflow_session=ey"), "{set_cookie}");
    assert!(set_cookie.ends_with("; HttpOnly; SameSite=Strict; Path=/; Max-Age=3600"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let csrf = login.body["csrfToken"].as_str().unwrap().to_owned();
    assert_eq!(login.body["projects"], json!([project]));

    let me = client.send(Method::GET, "/api/auth/me", &[(COOKIE.as_str(), &cookie)], None).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body, json!({"email": email, "projects": [project], "csrfToken": csrf}));

    // A read with the cookie alone: the user's only project is the one read.
    let leads = client.send(Method::GET, "/api/leads", &[(COOKIE.as_str(), &cookie)], None).await;
    assert_eq!(leads.status, StatusCode::OK, "{}", leads.body);
    assert_eq!(leads.body["leads"], json!([]), "a new project has no leads");
    let no_cookie = client.send(Method::GET, "/api/leads", &[], None).await;
    assert_eq!(no_cookie.status, StatusCode::UNAUTHORIZED);

    // A change needs the CSRF token as well.
    let rules = ScoringRules { version: unique("users-rules"), ..ScoringRules::seeds() };
    let without = client
        .send(Method::PUT, "/api/scoring-rules", &[(COOKIE.as_str(), &cookie)], Some(json!(rules)))
        .await;
    assert_eq!(without.status, StatusCode::FORBIDDEN, "{}", without.body);
    assert_eq!(without.body["error"], "csrf_failed");
    let with = client
        .send(
            Method::PUT,
            "/api/scoring-rules",
            &[(COOKIE.as_str(), &cookie), ("x-csrf-token", &csrf)],
            Some(json!(rules)),
        )
        .await;
    assert_eq!(with.status, StatusCode::ACCEPTED, "{}", with.body);
    assert_eq!(with.body["version"], json!(rules.version));

    // A wrong password and an unknown email: the same 401, word for word.
    let wrong = client.login(&email, "not the password of this user").await;
    let unknown = client.login(&format!("nobody-{email}"), PASSWORD).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body, json!({"error": "invalid_credentials", "message": "email or password is wrong"}));
    assert_eq!((unknown.status, &unknown.body), (wrong.status, &wrong.body));

    // Four more failures make five within the minute; the sixth attempt is refused unchecked,
    // even with the right password.
    for failure in 2..=5 {
        let answer = client.login(&email, "not the password of this user").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "failure {failure}: {}", answer.body);
    }
    let throttled = client.login(&email, PASSWORD).await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS, "{}", throttled.body);
    let retry: u64 = throttled.headers[RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");

    // Log out: the cookie is cleared (the CSRF token is needed for that too).
    let refused = client.send(Method::POST, "/api/auth/logout", &[(COOKIE.as_str(), &cookie)], None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let logout = client
        .send(Method::POST, "/api/auth/logout", &[(COOKIE.as_str(), &cookie), ("x-csrf-token", &csrf)], None)
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    let cleared = logout.headers[SET_COOKIE].to_str().unwrap();
    assert_eq!(cleared, "leadflow_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    let after = client.send(Method::GET, "/api/auth/me", &[], None).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);

    // No password, token or cookie in the gateway's log.
    let logs = gateway.process.logs();
    let token = cookie.trim_start_matches("leadflow_session=");
    for secret in [PASSWORD, token, csrf.as_str(), admin_token.as_str()] {
        assert!(!logs.contains(secret), "the log holds a secret");
    }
}
