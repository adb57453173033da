//! The CRM stand-in's HTTP contract, driven in-process through the router, and through `serve`
//! where a real connection is needed.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use serde_json::{Value, json};
use stand_ins::crm::{Faults, Stats, UPSERT_PATH, router, serve};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower::ServiceExt;

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

async fn call(app: &Router, method: Method, uri: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut request = Request::builder().method(method).uri(uri).header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app.clone().oneshot(request.body(Body::from(body.to_owned())).unwrap()).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
    Reply { status, headers, body }
}

async fn get(app: &Router, uri: &str) -> Value {
    call(app, Method::GET, uri, &[], "").await.body
}

async fn upsert(app: &Router, inputs: Value) -> Reply {
    call(app, Method::POST, UPSERT_PATH, &[], &json!({ "inputs": inputs }).to_string()).await
}

fn input(id: &str, version: u64, name: &str) -> Value {
    json!({"idProperty": "leadflow_id", "id": id, "idempotencyKey": format!("{id}:{version}"),
           "properties": {"leadflow_version": version, "firstname": name, "leadflow_score": 40 + version}})
}

async fn stats(app: &Router) -> Stats {
    serde_json::from_value(get(app, "/__admin/stats").await).unwrap()
}

#[tokio::test]
async fn upserts_create_then_update_by_version() {
    let app = router(Faults::default());
    let first = upsert(&app, json!([input("L1", 1, "Ann"), input("L2", 1, "Bo")])).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(
        first.body,
        json!({"status": "COMPLETE", "results": [{"id": "L1", "version": 1, "new": true},
                                                 {"id": "L2", "version": 1, "new": true}]})
    );
    let second = upsert(&app, json!([input("L1", 2, "Anna")])).await;
    assert_eq!(second.body["results"], json!([{"id": "L1", "version": 2, "new": false}]));

    let mut contacts = get(&app, "/__admin/contacts").await;
    // When the stand-in applied the write, as HubSpot's `updatedAt`: a time, and not the epoch.
    let updated_at = contacts["contacts"]["L1"].as_object_mut().unwrap().remove("updatedAt").unwrap();
    let updated_at = time::OffsetDateTime::parse(
        updated_at.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(updated_at.year() >= 2026, "{updated_at}");
    assert_eq!(
        contacts["contacts"]["L1"],
        json!({"version": 2, "writes": 2,
               "properties": {"leadflow_version": 2, "firstname": "Anna", "leadflow_score": 42}})
    );
    assert_eq!(contacts["contacts"]["L2"]["writes"], 1);
    assert_eq!(stats(&app).await, Stats { requests: 2, inputs: 3, applied_writes: 3, ..Stats::default() });
}

#[tokio::test]
async fn an_equal_or_lower_version_changes_nothing_but_is_answered_and_counted() {
    let app = router(Faults::default());
    upsert(&app, json!([input("L1", 5, "Ann")])).await;
    let stale = upsert(&app, json!([input("L1", 5, "Replay"), input("L1", 3, "Old")])).await;
    assert_eq!(stale.status, StatusCode::OK);
    assert_eq!(
        stale.body["results"],
        json!([{"id": "L1", "version": 5, "new": false}, {"id": "L1", "version": 5, "new": false}])
    );
    let contact = &get(&app, "/__admin/contacts").await["contacts"]["L1"];
    assert_eq!((contact["version"].as_u64(), contact["writes"].as_u64()), (Some(5), Some(1)));
    assert_eq!(contact["properties"]["firstname"], "Ann");
    let stats = stats(&app).await;
    assert_eq!((stats.requests, stats.inputs, stats.applied_writes), (2, 3, 1));
}

#[tokio::test]
async fn repeated_idempotency_keys_are_counted_and_a_lone_input_may_use_the_header() {
    let app = router(Faults::default());
    upsert(&app, json!([input("L1", 1, "Ann"), input("L2", 1, "Bo")])).await;
    upsert(&app, json!([input("L1", 1, "Ann"), input("L2", 2, "Bo")])).await;
    let mut keyless = input("L2", 1, "Bo");
    keyless.as_object_mut().unwrap().remove("idempotencyKey");
    let body = json!({ "inputs": [keyless] }).to_string();
    let reply = call(&app, Method::POST, UPSERT_PATH, &[("Idempotency-Key", "L2:1")], &body).await;
    assert_eq!(reply.status, StatusCode::OK);
    let stats = stats(&app).await;
    assert_eq!((stats.inputs, stats.repeated_idempotency_keys, stats.applied_writes), (5, 2, 3));
}

#[tokio::test]
async fn bad_input_is_a_400_naming_the_field_and_applies_nothing() {
    let app = router(Faults::default());
    let mut no_key = input("L1", 1, "Ann");
    no_key.as_object_mut().unwrap().remove("idempotencyKey");
    let mut no_version = input("L4", 1, "Di");
    no_version["properties"].as_object_mut().unwrap().remove("leadflow_version");
    let mut bad_version = input("L5", 1, "Ed");
    bad_version["properties"]["leadflow_version"] = json!("v2");
    let too_many: Vec<Value> = (0..101).map(|i| input(&format!("L{i}"), 1, "X")).collect();
    let cases = [
        (json!({"inputs": [input("L0", 1, "A"), no_key]}), "inputs[1].idempotencyKey"),
        (
            json!({"inputs": [input("L0", 1, "A"), input("L2", 1, "B"), input("L3", 1, "C"), no_version]}),
            "inputs[3].properties.leadflow_version",
        ),
        (json!({"inputs": [bad_version]}), "inputs[0].properties.leadflow_version"),
        (json!({"inputs": []}), "inputs"),
        (json!({"inputs": too_many}), "inputs"),
        (json!({"inputs": [input("L0", 1, "A")], "dryRun": true}), "dryRun"),
    ];
    for (body, field) in cases {
        let reply = call(&app, Method::POST, UPSERT_PATH, &[], &body.to_string()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{field}");
        assert_eq!(
            (&reply.body["status"], &reply.body["category"]),
            (&json!("error"), &json!("VALIDATION_ERROR"))
        );
        assert_eq!(reply.body["errors"], json!([{"message": reply.body["message"], "in": field}]), "{field}");
        assert!(reply.body["message"].as_str().unwrap().contains(field), "{}", reply.body);
    }
    assert_eq!(get(&app, "/__admin/contacts").await, json!({"contacts": {}}));
    let stats = stats(&app).await;
    assert_eq!((stats.requests, stats.inputs, stats.applied_writes), (6, 0, 0));
}

#[tokio::test]
async fn past_the_burst_limit_requests_get_429_with_retry_after() {
    let app = router(Faults { burst_limit: Some(2), burst_window_ms: 60_000, ..Faults::default() });
    assert_eq!(upsert(&app, json!([input("L1", 1, "A")])).await.status, StatusCode::OK);
    assert_eq!(upsert(&app, json!([])).await.status, StatusCode::BAD_REQUEST, "a 400 counts too");
    let limited = upsert(&app, json!([input("L1", 2, "B")])).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        (&limited.body["status"], &limited.body["category"]),
        (&json!("error"), &json!("RATE_LIMITS"))
    );
    let retry_after: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(get(&app, "/__admin/contacts").await["contacts"]["L1"]["version"], 1);
    assert_eq!(stats(&app).await.rate_limited, 1);
}

#[tokio::test]
async fn an_error_rate_of_one_fails_every_request_before_applying_it() {
    let app = router(Faults { error_rate: 1.0, ..Faults::default() });
    for version in 1..=3 {
        let reply = upsert(&app, json!([input("L1", version, "A")])).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(reply.body["status"], "error");
    }
    assert_eq!(get(&app, "/__admin/contacts").await, json!({"contacts": {}}));
    assert_eq!(stats(&app).await, Stats { requests: 3, injected_errors: 3, ..Stats::default() });
}

#[tokio::test]
async fn dropping_after_the_write_leaves_the_client_without_an_answer_but_the_contact_applied() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let server =
        tokio::spawn(serve(listener, Faults { drop_after_write_rate: 1.0, ..Faults::default() }, async {
            stopped.await.ok();
        }));
    let client = reqwest::Client::new();

    let sent = client
        .post(format!("{base}{UPSERT_PATH}"))
        .json(&json!({"inputs": [input("L1", 1, "Ann")]}))
        .send()
        .await;
    let error = sent.expect_err("the connection should have been dropped");
    // hyper's IncompleteMessage: the connection closed before any response came.
    assert!(error.is_request() && !error.is_timeout() && !error.is_status(), "{error:?}");

    let contacts: Value =
        client.get(format!("{base}/__admin/contacts")).send().await.unwrap().json().await.unwrap();
    assert_eq!(contacts["contacts"]["L1"]["version"], 1);
    assert_eq!(contacts["contacts"]["L1"]["properties"]["firstname"], "Ann");
    let stats: Stats =
        client.get(format!("{base}/__admin/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        stats,
        Stats { requests: 1, inputs: 1, applied_writes: 1, dropped_connections: 1, ..Stats::default() }
    );

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn admin_rejects_unknown_fields_by_name_and_changes_nothing() {
    let app = router(Faults { burst_limit: Some(5), ..Faults::default() });
    for (body, named) in [
        (r#"{"latencyMs":1,"latency":5}"#, "`latency`"),
        (r#"{"dropAfterWriteRate":2}"#, "dropAfterWriteRate"),
        (r#"{"burstWindowMs":0}"#, "burstWindowMs"),
    ] {
        let reply = call(&app, Method::PUT, "/__admin/faults", &[], body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(reply.body["message"].as_str().unwrap().contains(named), "{body}: {}", reply.body);
    }
    assert_eq!(get(&app, "/__admin/faults").await["burstLimit"], 5, "a refused PUT changes nothing");
}

#[tokio::test]
async fn admin_faults_take_effect_and_reset_clears_contacts_stats_and_faults() {
    let app = router(Faults::default());
    upsert(&app, json!([input("L1", 1, "A")])).await;
    let put = call(&app, Method::PUT, "/__admin/faults", &[], r#"{"burstLimit":1}"#).await;
    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(
        put.body,
        json!({"latencyMs": 0, "errorRate": 0.0, "dropAfterWriteRate": 0.0, "burstLimit": 1, "burstWindowMs": 10000})
    );
    assert_eq!(
        upsert(&app, json!([input("L1", 2, "A")])).await.status,
        StatusCode::OK,
        "the window restarted"
    );
    assert_eq!(upsert(&app, json!([input("L1", 3, "A")])).await.status, StatusCode::TOO_MANY_REQUESTS);

    let reset = call(&app, Method::POST, "/__admin/reset", &[], "").await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT);
    assert_eq!(get(&app, "/__admin/contacts").await, json!({"contacts": {}}));
    assert_eq!(get(&app, "/__admin/stats").await, json!(Stats::default()));
    assert_eq!(get(&app, "/__admin/faults").await, json!(Faults::default()));
    // The keys seen before the reset are forgotten too.
    upsert(&app, json!([input("L1", 1, "A")])).await;
    assert_eq!(stats(&app).await.repeated_idempotency_keys, 0);
}
