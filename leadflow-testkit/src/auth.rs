//! The gateway's credentials in tests: the admin token and JWT secret a test gateway starts
//! with, and the management calls that give a test a project and a key of its own. Test keys
//! get a high `eventsPerMinute`, so that only the rate-limit test ever meets the limit.

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// The admin token of every gateway a test starts (at least 24 characters, as the gateway
/// requires).
pub const TEST_ADMIN_TOKEN: &str = "leadflow-test-admin-token-0123456789";
/// The JWT secret of every gateway a test starts (at least 32 bytes).
pub const TEST_JWT_SECRET: &str = "leadflow-test-jwt-secret-0123456789abcdef";
/// What a test key may send per minute unless the test says otherwise.
pub const TEST_EVENTS_PER_MINUTE: u32 = 1_000_000;

/// The environment a gateway needs to start: its admin token and JWT secret.
pub fn gateway_auth_env() -> Vec<(&'static str, String)> {
    vec![
        ("LEADFLOW_AUTH__ADMIN_TOKEN", TEST_ADMIN_TOKEN.to_owned()),
        ("LEADFLOW_AUTH__JWT_SECRET", TEST_JWT_SECRET.to_owned()),
    ]
}

async fn admin_call(
    base_url: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    let mut request = reqwest::Client::new()
        .request(method.clone(), format!("{base_url}{path}"))
        .bearer_auth(TEST_ADMIN_TOKEN)
        .timeout(std::time::Duration::from_secs(30));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.with_context(|| format!("{method} {path}"))?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// Creates `project` (`eventsPerMinute` as given); one that exists already is left as it is.
pub async fn create_project(
    base_url: &str,
    project: &str,
    events_per_minute: Option<u32>,
) -> anyhow::Result<()> {
    let mut body = json!({ "id": project });
    if let Some(limit) = events_per_minute {
        body["eventsPerMinute"] = json!(limit);
    }
    match admin_call(base_url, reqwest::Method::POST, "/api/projects", Some(body)).await? {
        (201 | 409, _) => Ok(()),
        (status, answer) => bail!("POST /api/projects {project}: {status} {answer}"),
    }
}

/// A new key of `project` with `scopes` (e.g. `&["ingest", "read", "admin"]`), limited to
/// `events_per_minute`; the answer's whole body (`id`, `key`, ...).
pub async fn create_key(
    base_url: &str,
    project: &str,
    scopes: &[&str],
    events_per_minute: u32,
) -> anyhow::Result<Value> {
    let body = json!({ "name": "test", "scopes": scopes, "eventsPerMinute": events_per_minute });
    match admin_call(base_url, reqwest::Method::POST, &format!("/api/projects/{project}/keys"), Some(body))
        .await?
    {
        (201, answer) => Ok(answer),
        (status, answer) => bail!("POST /api/projects/{project}/keys: {status} {answer}"),
    }
}

/// Creates `project` unless it exists, and a key of it; returns the key's text.
pub async fn create_project_and_key(
    base_url: &str,
    project: &str,
    scopes: &[&str],
    events_per_minute: u32,
) -> anyhow::Result<String> {
    create_project(base_url, project, None).await?;
    let made = create_key(base_url, project, scopes, events_per_minute).await?;
    made["key"].as_str().map(str::to_owned).with_context(|| format!("no key in {made}"))
}

/// Revokes the key `key_id` of `project`.
pub async fn revoke_key(base_url: &str, project: &str, key_id: &str) -> anyhow::Result<()> {
    let path = format!("/api/projects/{project}/keys/{key_id}");
    match admin_call(base_url, reqwest::Method::DELETE, &path, None).await? {
        (204, _) => Ok(()),
        (status, answer) => bail!("DELETE {path}: {status} {answer}"),
    }
}
