//! No secret leaves in what LeadFlow writes: after a full run of the four services, no log line,
//! no dead letter and no error body holds an API key, the admin token, a password, a session JWT
//! or its CSRF token, the JWT secret, the nationalize key or the CRM token.
//!
//! The run is as a user's: an admin makes a project and keys, rotates one and revokes another; a
//! dashboard user registers, fails a login, logs in, is refused a change without the CSRF token;
//! clients call with a wrong secret, a revoked key, a key without the scope and the admin token
//! where it does not belong; names and events flow through enrichment (the nationalize key in the
//! query), scoring and the CRM (the token in a header), with a poison record on each consumer's
//! input. The services log at debug level.
//!
//! Uses the binaries from `target/debug` (`cargo build --workspace --bins`).

use std::time::Duration;

use base64::Engine;
use leadflow_core::contract::records::DeadLetter;
use leadflow_core::contract::topics;
use leadflow_testkit::kafka::{decode_all, end_offsets, new_group_at_end_of, produce, producer, read_to_end};
use leadflow_testkit::stand_in::StandInProcess;
use leadflow_testkit::{ServiceProcess, Stack, eventually, unique, workspace_binary};
use reqwest::Method;
use serde_json::{Value, json};

const CRM_SINK_INPUTS: [&str; 4] = [topics::ENRICHED, topics::SCORES, topics::REVIEWS, topics::CRM_RESYNC];
const LOG_FILTER: &str =
    "info,ingest_gateway=debug,enricher=debug,scorer=debug,crm_sink=debug,leadflow_core=debug";

/// What came back from one call: its status, and its headers and body as text.
struct Answer {
    status: u16,
    text: String,
}

struct Api {
    base: String,
    http: reqwest::Client,
    /// Every answer that was not a success, with the call that got it.
    refusals: Vec<(String, Answer)>,
}

impl Api {
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Value {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let head = format!("{:?}", response.headers());
        let text = response.text().await.unwrap();
        if status >= 400 {
            let what = format!("{method} {path}");
            self.refusals.push((what, Answer { status, text: format!("{head}\n{text}") }));
        }
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    fn refused(&self, status: u16, error: &str) -> bool {
        self.refusals
            .iter()
            .any(|(_, a)| a.status == status && a.text.contains(&format!("\"error\":\"{error}\"")))
    }
}

fn bearer(secret: &str) -> String {
    format!("Bearer {secret}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_log_line_dead_letter_or_error_body_holds_a_secret_after_a_full_run() {
    let stack = Stack::get();
    let admin_token = unique("secret-admin-token-0123456789");
    let jwt_secret = unique("secret-jwt-secret-0123456789abcdef");
    let nationalize_key = unique("secret-nationalize-key").replace('_', "-");
    let crm_token = unique("secret-crm-token");
    let password = unique("Secret-Password-");

    let nationalize = StandInProcess::start("nationalize-standin").await;
    let crm = StandInProcess::start("crm-standin").await;
    // One database for all four services: the gateway's read API serves what the others write.
    let database = unique("secrets").replace('-', "_");
    let dlq_from = end_offsets(&stack, topics::DLQ);
    let gateway_env = vec![
        ("LEADFLOW_HTTP__LISTEN", "127.0.0.1:0".to_owned()),
        ("LEADFLOW_AUTH__ADMIN_TOKEN", admin_token.clone()),
        ("LEADFLOW_AUTH__JWT_SECRET", jwt_secret.clone()),
    ];
    let enricher_env = vec![
        ("LEADFLOW_CONSUMER__GROUP_ID", new_group_at_end_of(&stack, "secrets-enricher", &[topics::NAMES])),
        ("LEADFLOW_NATIONALIZE__BASE_URL", format!("http://{}", nationalize.addr)),
        ("LEADFLOW_NATIONALIZE__API_KEY", nationalize_key.clone()),
        ("LEADFLOW_NATIONALIZE__REQUESTS_PER_SECOND", "1000".to_owned()),
    ];
    let scorer_env = vec![(
        "LEADFLOW_CONSUMER__GROUP_ID",
        new_group_at_end_of(&stack, "secrets-scorer", &[topics::EVENTS]),
    )];
    let sink_env = vec![
        ("LEADFLOW_CONSUMER__GROUP_ID", new_group_at_end_of(&stack, "secrets-crm-sink", &CRM_SINK_INPUTS)),
        ("LEADFLOW_CRM__HTTP__BASE_URL", format!("http://{}", crm.addr)),
        ("LEADFLOW_CRM__HTTP__ACCESS_TOKEN", crm_token.clone()),
    ];
    // The stand-in plays HubSpot: the sink's properties first, as the demo does, with the CRM
    // token in setup's environment too.
    let setup = leadflow_testkit::stand_in::crm_sink_setup(&workspace_binary("crm-sink"), &sink_env);
    let mut services: Vec<(&str, ServiceProcess)> = Vec::new();
    for (name, mut env) in [
        ("ingest-gateway", gateway_env),
        ("enricher", enricher_env),
        ("scorer", scorer_env),
        ("crm-sink", sink_env),
    ] {
        env.extend([
            ("LEADFLOW_MONGO__URI", stack.mongodb_uri.clone()),
            ("LEADFLOW_MONGO__DATABASE", database.clone()),
            ("LEADFLOW_TELEMETRY__LOG_FILTER", LOG_FILTER.to_owned()),
        ]);
        let (mut process, ops) =
            ServiceProcess::spawn_against(&stack, &workspace_binary(name), &env).await.unwrap();
        process.wait_http_ok(&format!("http://{ops}/readyz"), Duration::from_secs(60)).await.unwrap();
        services.push((name, process));
    }
    for (_, process) in services.iter_mut().skip(1) {
        process.wait_for_log("consuming", Duration::from_secs(60)).await.unwrap();
    }
    let addr =
        services[0].1.wait_for_log_field("API listening", "addr", Duration::from_secs(30)).await.unwrap();
    let mut api = Api { base: format!("http://{addr}"), http: reqwest::Client::new(), refusals: Vec::new() };
    let admin = bearer(&admin_token);

    // The admin makes a project and keys; rotates one, revokes another.
    let project = unique("secrets").to_lowercase().replace('_', "-");
    let made = api
        .call(Method::POST, "/api/projects", &[("authorization", &admin)], Some(json!({"id": project})))
        .await;
    assert_eq!(made["id"], project.as_str(), "{made}");
    let new_key = |scopes: Value| {
        let body = json!({"name": "secrets", "scopes": scopes, "eventsPerMinute": 100_000});
        (format!("/api/projects/{project}/keys"), body)
    };
    let (path, body) = new_key(json!(["ingest", "read", "admin"]));
    let full = api.call(Method::POST, &path, &[("authorization", &admin)], Some(body)).await;
    let (path, body) = new_key(json!(["ingest"]));
    let ingest_only = api.call(Method::POST, &path, &[("authorization", &admin)], Some(body)).await;
    let (path, body) = new_key(json!(["read"]));
    let to_rotate = api.call(Method::POST, &path, &[("authorization", &admin)], Some(body)).await;
    let rotate_path = format!("/api/projects/{project}/keys/{}/rotate", to_rotate["id"].as_str().unwrap());
    let rotated = api.call(Method::POST, &rotate_path, &[("authorization", &admin)], None).await;
    let revoke_path = format!("/api/projects/{project}/keys/{}", ingest_only["id"].as_str().unwrap());
    api.call(Method::DELETE, &revoke_path, &[("authorization", &admin)], None).await;
    let listed = api
        .call(Method::GET, &format!("/api/projects/{project}/keys"), &[("authorization", &admin)], None)
        .await;
    let keys: Vec<String> = [&full, &ingest_only, &to_rotate, &rotated]
        .iter()
        .map(|k| k["key"].as_str().unwrap_or_else(|| panic!("no key in {k}")).to_owned())
        .collect();
    for key in &keys {
        assert!(!listed.to_string().contains(key.as_str()), "the key list shows no key");
    }
    let key = keys[0].clone();

    // Clients that get it wrong.
    let wrong_secret = format!("{}x", &key[..key.len() - 1]);
    for credential in [bearer(&wrong_secret), bearer(&keys[1]), bearer(&keys[2]), bearer(&jwt_secret)] {
        api.call(Method::GET, "/api/leads", &[("authorization", credential.as_str())], None).await;
    }
    api.call(Method::GET, "/api/leads", &[("x-api-key", &wrong_secret)], None).await;
    api.call(Method::GET, "/api/leads", &[("authorization", &admin)], None).await;
    api.call(Method::GET, "/api/leads", &[("authorization", &bearer(&keys[3]))], None).await;
    api.call(Method::PUT, "/api/scoring-rules", &[("authorization", &bearer(&keys[3]))], Some(json!({})))
        .await;
    api.call(Method::GET, "/api/projects", &[("authorization", &bearer(&key))], None).await;

    // A dashboard user.
    let email = format!("{}@example.com", unique("secrets"));
    let register = json!({"email": email, "password": password, "projects": [project]});
    api.call(Method::POST, "/api/auth/register", &[("authorization", &admin)], Some(register)).await;
    let wrong = json!({"email": email, "password": format!("{password}-wrong")});
    api.call(Method::POST, "/api/auth/login", &[], Some(wrong)).await;
    let response = api
        .http
        .post(format!("{}/api/auth/login", api.base))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let jwt = cookie.trim_start_matches("leadflow_session=").to_owned();
    let session: Value = response.json().await.unwrap();
    let csrf = session["csrfToken"].as_str().unwrap().to_owned();
    let me = api.call(Method::GET, "/api/auth/me", &[("cookie", &cookie)], None).await;
    assert_eq!(me["email"], email.as_str(), "{me}");
    api.call(Method::PUT, "/api/scoring-rules", &[("cookie", &cookie)], Some(json!({}))).await;
    api.call(Method::GET, "/api/leads", &[("cookie", &format!("leadflow_session={jwt}x"))], None).await;

    // Data through every stage: names (enriched with the nationalize key), events, a review of a
    // lead that does not exist, bad input, and one poison record on each consumer's input.
    let key_header = bearer(&key);
    let with_key = [("authorization", key_header.as_str())];
    let run = unique("sec").replace('_', "-");
    let names: Vec<Value> = ["Ada Lovelace", "Kenji Watanabe", "Grace Hopper"]
        .iter()
        .enumerate()
        .map(|(i, name)| json!({"leadId": format!("{run}-{i}"), "name": name}))
        .collect();
    api.call(Method::POST, "/api/leads", &with_key, Some(json!({"names": names}))).await;
    let events = json!({"events": [
        {"eventId": format!("{run}-e1"), "leadId": format!("{run}-0"), "eventType": "demo_request", "timestamp": "2026-01-16T10:00:00Z"},
        {"eventId": format!("{run}-e2"), "leadId": format!("{run}-0"), "eventType": "contract_signed", "timestamp": "2026-01-16T10:05:00Z"},
        {"eventId": format!("{run}-e3"), "leadId": "", "eventType": "Not A Type"},
    ]});
    api.call(Method::POST, "/api/events/batch", &with_key, Some(events)).await;
    api.call(
        Method::POST,
        "/api/leads/no-such-lead/review",
        &with_key,
        Some(json!({"decision": "Verified"})),
    )
    .await;
    let kafka = producer(&stack);
    for topic in [topics::NAMES, topics::EVENTS, topics::ENRICHED] {
        produce(&kafka, topic, &format!("{project}/{run}-poison"), b"not a schema-registry framed record")
            .await;
    }

    // The run has gone through: the project's leads are read back enriched and scored, and the
    // poison records are dead letters.
    let lead_path = format!("/api/leads/{run}-0");
    let lead = eventually("the lead enriched and scored", Duration::from_secs(90), || {
        let request = api.http.get(format!("{}{lead_path}", api.base)).bearer_auth(&key);
        async move {
            let lead: Value =
                request.send().await.map_err(|e| e.to_string())?.json().await.map_err(|e| e.to_string())?;
            Ok((lead["name"].is_string() && lead["stage"] == "qualified").then_some(lead))
        }
    })
    .await
    .unwrap();
    assert_eq!(lead["leadId"], format!("{run}-0"), "{lead}");
    let letters_of_run = |r: &leadflow_testkit::kafka::Published| r.key.contains(&run);
    eventually("three poison records dead-lettered", Duration::from_secs(60), || {
        let stack = stack.clone();
        let from = dlq_from.clone();
        async move {
            let written = read_to_end(&stack, topics::DLQ, &from, Duration::from_secs(10)).await;
            Ok((written.iter().filter(|r| letters_of_run(r)).count() >= 3).then_some(()))
        }
    })
    .await
    .unwrap();

    // The refusals this run met, each as the API documents it: the checks below cover them.
    for (status, error) in
        [(401, "unauthorized"), (403, "forbidden"), (401, "invalid_credentials"), (403, "csrf_failed")]
    {
        assert!(api.refused(status, error), "no {status} {error} among the refusals");
    }

    for (_, process) in services.iter_mut() {
        process.signal(libc::SIGTERM).unwrap();
        let status = process.wait_exit(Duration::from_secs(30)).await.unwrap();
        assert_eq!(status.code(), Some(0), "{}", process.logs());
    }

    let mut secrets: Vec<(String, String)> = vec![
        ("the admin token".into(), admin_token.clone()),
        ("the JWT secret".into(), jwt_secret.clone()),
        ("the nationalize key".into(), nationalize_key.clone()),
        ("the CRM token".into(), crm_token.clone()),
        ("the password".into(), password.clone()),
        ("the session JWT".into(), jwt.clone()),
        ("the CSRF token".into(), csrf.clone()),
    ];
    secrets.extend(keys.iter().enumerate().map(|(i, k)| (format!("API key {i}"), k.clone())));
    // The part of a key after `lf_<12-hex id>_`: a log line may name the id, never this. (Not
    // the text after the last `_`: base64url secrets hold `_` too.)
    secrets.extend(
        keys.iter()
            .enumerate()
            .map(|(i, k)| (format!("API key {i}'s secret"), k["lf_".len() + 12 + 1..].to_owned())),
    );

    let mut places: Vec<(String, String)> = Vec::new();
    for output in [&setup.stdout, &setup.stderr] {
        let text = String::from_utf8_lossy(output);
        places.extend(text.lines().map(|l| ("a line crm-sink setup printed".to_owned(), l.to_owned())));
    }
    for (name, process) in &services {
        places.extend(process.logs().lines().map(|l| (format!("a line {name} logged"), l.to_owned())));
    }
    places.extend(
        api.refusals.iter().map(|(call, a)| (format!("the {} answer to {call}", a.status), a.text.clone())),
    );
    let written = read_to_end(&stack, topics::DLQ, &dlq_from, Duration::from_secs(30)).await;
    let letters: Vec<DeadLetter> = decode_all(&stack, written.iter()).await;
    for (record, letter) in written.iter().zip(&letters) {
        let original = letter
            .original_value
            .as_deref()
            .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
            .unwrap_or_default();
        places.push(("a dead letter".into(), String::from_utf8_lossy(&record.value).into_owned()));
        places.push(("a dead letter's headers".into(), format!("{:?}", record.headers)));
        places
            .push(("a dead letter's original value".into(), String::from_utf8_lossy(&original).into_owned()));
    }
    assert!(places.iter().filter(|(p, _)| p.starts_with("a line")).count() > 100, "the services logged");

    let leaks: Vec<String> = secrets
        .iter()
        .flat_map(|(secret, value)| {
            places.iter().filter(move |(_, text)| text.contains(value.as_str())).map(move |(place, text)| {
                format!("{secret} in {place}: {}", leadflow_core::contract::records::cut_text(text, 400))
            })
        })
        .collect();
    eprintln!(
        "{} secrets looked for in {} places ({} refusals, {} dead letters)",
        secrets.len(),
        places.len(),
        api.refusals.len(),
        letters.len()
    );
    assert!(leaks.is_empty(), "{} leaks:\n{}", leaks.len(), leaks.join("\n"));
}
