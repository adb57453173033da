//! The webhook routes through the whole router (see [`crate::testing`]; the URL policy is the
//! local stack's, http to loopback allowed): what is stored, what is answered (the secret once),
//! what is refused before anything is stored, and that a project reaches its own subscriptions
//! only. No test here sends a delivery anywhere but to a closed loopback port.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use leadflow_core::store::documents::{DeliveryDoc, DeliveryState, DeliveryTarget};

use crate::auth::scope::Scope;
use crate::testing::{Harness, store_project, with_key};
use crate::webhooks::store::WebhookStore;

fn subscription(url: &str) -> Value {
    json!({"url": url, "eventKinds": ["lead.entered_stage"], "description": "CRM bridge"})
}

async fn stored(h: &Harness, project: &str) -> usize {
    h.webhooks.endpoints(project).await.unwrap().len()
}

/// Creates a subscription and returns its answer.
async fn create(h: &Harness, url: &str) -> Value {
    let (status, _, body) = h.post("/api/webhooks", subscription(url)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

fn delivery(
    endpoint: &str,
    id: &str,
    state: DeliveryState,
    created_at_ms: i64,
    partition: i32,
) -> DeliveryDoc {
    DeliveryDoc {
        id: id.to_owned(),
        endpoint_id: endpoint.to_owned(),
        project_id: "default".to_owned(),
        target: DeliveryTarget::Webhook,
        partition,
        kind: "lead.entered_stage".to_owned(),
        body: "{}".to_owned(),
        state,
        attempt_count: 10,
        scheduled_attempts: 10,
        next_attempt_at_ms: created_at_ms + 1000,
        attempts: Vec::new(),
        created_at_ms,
        delivered_at_ms: None,
        execution_key: Some(format!("default/hot/{id}/2026-01-16")),
    }
}

#[tokio::test]
async fn a_subscription_shows_its_secret_once_and_never_again() {
    let h = Harness::new();
    let created = create(&h, "https://[2606:4700::1111]/hooks/lf").await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() > 40, "{secret}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
    assert_eq!(id, id.to_lowercase());
    assert_eq!(created["eventKinds"], json!(["lead.entered_stage"]));
    assert_eq!((created["enabled"].as_bool(), created["disabledReason"].is_null()), (Some(true), true));
    assert!(created["createdAt"].as_str().unwrap().ends_with('Z'), "{created}");

    let (status, one) = h.get(&format!("/api/webhooks/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let mut expected = created.clone();
    expected.as_object_mut().unwrap().remove("secret");
    assert_eq!(one, expected);
    let (status, list) = h.get("/api/webhooks").await;
    assert_eq!((status, list["webhooks"].as_array().unwrap().len()), (StatusCode::OK, 1));
    assert_eq!(list["webhooks"][0], expected);
    for answer in [one.to_string(), list.to_string()] {
        assert!(!answer.contains(&secret) && !answer.contains("whsec_"), "{answer}");
    }
    assert!(h.published().is_empty(), "subscriptions are not on Kafka");
}

#[tokio::test]
async fn event_kinds_and_fields_are_checked_naming_each() {
    let h = Harness::new();
    let cases = [
        (json!({"url": "https://[2606:4700::1111]/"}), "eventKinds"),
        (json!({"url": "https://[2606:4700::1111]/", "eventKinds": []}), "eventKinds"),
        (json!({"url": "https://[2606:4700::1111]/", "eventKinds": ["webhook.test"]}), "eventKinds[0]"),
        (
            json!({"url": "https://[2606:4700::1111]/", "eventKinds": ["lead.verified", "lead.hot"]}),
            "eventKinds[1]",
        ),
        (
            json!({"url": "https://[2606:4700::1111]/", "eventKinds": ["lead.verified", "lead.verified"]}),
            "eventKinds[1]",
        ),
        (json!({"eventKinds": ["lead.verified"]}), "url"),
        (
            json!({"url": "https://[2606:4700::1111]/", "eventKinds": ["lead.verified"], "secret": "whsec_x"}),
            "secret",
        ),
    ];
    for (body, field) in cases {
        let (status, _, answer) = h.post("/api/webhooks", body.clone()).await;
        assert_eq!(
            (status, answer["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{body}: {answer}"
        );
    }
    assert_eq!(stored(&h, "default").await, 0);
    let every = json!({"url": "https://[2606:4700::1111]/", "eventKinds":
        ["lead.entered_stage", "lead.score_crossed", "lead.velocity_reached", "lead.verified"]});
    assert_eq!(h.post("/api/webhooks", every).await.0, StatusCode::CREATED);
}

/// Refused at subscription time, before anything is stored; nothing can be sent then (the
/// subscription does not exist), so these addresses are never reached.
#[tokio::test]
async fn metadata_private_and_non_https_urls_are_refused_and_nothing_is_stored() {
    let h = Harness::new();
    let refused = [
        ("http://169.254.169.254/latest/meta-data", "http is allowed only to a loopback host"),
        ("https://169.254.169.254/latest/meta-data", "Metadata"),
        ("http://10.0.0.1/hook", "http is allowed only to a loopback host"),
        ("https://10.0.0.1/hook", "Private"),
        ("https://[::ffff:169.254.169.254]/", "Metadata"),
        ("https://[::ffff:10.0.0.1]/", "Private"),
        ("https://[fe80::1]/hook", "LinkLocal"),
        ("ftp://files.example.com/hook", "must be https, not ftp"),
        ("https://user:secret@hooks.example.com/", "user name or password"),
        ("https://:secret@hooks.example.com/", "user name or password"),
        ("http://93.184.216.34/hook", "http is allowed only to a loopback host"),
        ("http://hooks.example.com/hook", "http is allowed only to a loopback host"),
        ("not a url", "RFC 3986"),
        ("https://hooks.example.com/a b", "RFC 3986"),
        ("hooks.example.com/hook", "not a URL"),
    ];
    for (url, why) in refused {
        let (status, _, answer) = h.post("/api/webhooks", subscription(url)).await;
        assert_eq!(
            (status, answer["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some("url")),
            "{url}: {answer}"
        );
        assert!(answer["message"].as_str().unwrap().contains(why), "{url}: {answer}");
        assert!(!answer.to_string().contains("secret@"), "the refusal does not echo credentials: {answer}");
    }
    assert_eq!(stored(&h, "default").await, 0, "no refused subscription was stored");
    assert!(h.webhooks.deliveries.lock().unwrap().is_empty());
    // What the local stack allows: http to a loopback receiver.
    create(&h, "http://127.0.0.1:9/hook").await;
    assert_eq!(stored(&h, "default").await, 1);
}

#[tokio::test]
async fn a_project_has_at_most_20_subscriptions() {
    let h = Harness::new();
    for n in 0..20 {
        create(&h, &format!("http://127.0.0.1:9/hook/{n}")).await;
    }
    let (status, _, answer) = h.post("/api/webhooks", subscription("http://127.0.0.1:9/hook/20")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("at most 20"), "{answer}");
    assert_eq!(stored(&h, "default").await, 20);
}

#[tokio::test]
async fn reads_need_the_read_scope_and_writes_the_admin_scope() {
    let h = Harness::new();
    let id = create(&h, "http://127.0.0.1:9/hook").await["id"].as_str().unwrap().to_owned();
    let ingest = h.key_of("default", &[Scope::Ingest], None);
    let read = h.key_of("default", &[Scope::Read], None);
    let body = subscription("http://127.0.0.1:9/other");
    let (one, test, deliveries, replay) = (
        format!("/api/webhooks/{id}"),
        format!("/api/webhooks/{id}/test"),
        format!("/api/webhooks/{id}/deliveries"),
        format!("/api/webhooks/{id}/replay"),
    );
    let cases = [
        (&ingest, Method::GET, "/api/webhooks", None, "read"),
        (&ingest, Method::GET, one.as_str(), None, "read"),
        (&ingest, Method::GET, deliveries.as_str(), None, "read"),
        (&read, Method::POST, "/api/webhooks", Some(body.clone()), "admin"),
        (&read, Method::DELETE, one.as_str(), None, "admin"),
        (&read, Method::POST, test.as_str(), None, "admin"),
        (&read, Method::POST, replay.as_str(), None, "admin"),
    ];
    for (key, method, path, body, scope) in cases {
        let (status, _, answer) = h.send(with_key(method.clone(), path, key, body)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        assert_eq!(answer["message"], format!("this key lacks the {scope} scope"));
    }
    assert_eq!(stored(&h, "default").await, 1);
    assert!(h.webhooks.deliveries.lock().unwrap().is_empty(), "no test was sent");
    assert_eq!(h.send(with_key(Method::GET, &one, &read, None)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn another_projects_subscriptions_are_not_found() {
    let h = Harness::new();
    store_project(&h.store, "acme", &[], None);
    let acme = h.key_of("acme", &Scope::ALL, None);
    let (status, _, created) = h
        .send(with_key(Method::POST, "/api/webhooks", &acme, Some(subscription("http://127.0.0.1:9/acme"))))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["id"].as_str().unwrap();
    assert_eq!(h.get("/api/webhooks").await.1, json!({"webhooks": []}));
    for (method, path) in [
        (Method::GET, format!("/api/webhooks/{id}")),
        (Method::GET, format!("/api/webhooks/{id}/deliveries")),
        (Method::POST, format!("/api/webhooks/{id}/test")),
        (Method::POST, format!("/api/webhooks/{id}/replay")),
        (Method::DELETE, format!("/api/webhooks/{id}")),
    ] {
        let (status, _, answer) =
            h.send(Request::builder().method(method.clone()).uri(&path).body(Body::empty()).unwrap()).await;
        assert_eq!(
            (status, answer["field"].as_str()),
            (StatusCode::NOT_FOUND, Some("id")),
            "{method} {path}: {answer}"
        );
    }
    assert_eq!(stored(&h, "acme").await, 1, "still there");
    assert!(h.webhooks.deliveries.lock().unwrap().is_empty(), "no test was sent");
    let (_, _, list) = h.send(with_key(Method::GET, "/api/webhooks", &acme, None)).await;
    assert_eq!(list["webhooks"][0]["id"], id);
}

#[tokio::test]
async fn a_test_to_a_closed_port_is_recorded_failed_once_and_listed() {
    let h = Harness::new();
    // Port 9 (discard) on loopback: nothing listens there in the tests' environment.
    let id = create(&h, "http://127.0.0.1:9/hook").await["id"].as_str().unwrap().to_owned();
    let (status, _, answer) = h.post(&format!("/api/webhooks/{id}/test"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "unreachable", "{answer}");
    assert!(answer["responseCode"].is_null());
    let delivery_id = answer["deliveryId"].as_str().unwrap();
    assert!(delivery_id.starts_with("msg_"), "{answer}");
    let (status, log) = h.get(&format!("/api/webhooks/{id}/deliveries")).await;
    assert_eq!(status, StatusCode::OK);
    let deliveries = log["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1);
    let logged = &deliveries[0];
    assert_eq!((logged["id"].as_str(), logged["kind"].as_str()), (Some(delivery_id), Some("webhook.test")));
    assert_eq!((logged["state"].as_str(), logged["attemptCount"].as_u64()), (Some("failed"), Some(1)));
    assert!(logged["nextAttemptAt"].is_null(), "never retried: {logged}");
    assert_eq!(logged["attempts"][0]["outcome"], "unreachable");
    assert!(logged["attempts"][0]["error"].as_str().is_some(), "{logged}");
    let stored = h.webhooks.deliveries.lock().unwrap().get(delivery_id).cloned().unwrap();
    assert_eq!(stored.partition, -1);
    // A replay never requeues a test delivery: no automator sends them.
    assert_eq!(h.post(&format!("/api/webhooks/{id}/replay"), json!({})).await.2, json!({"requeued": 0}));
}

#[tokio::test]
async fn deliveries_are_newest_first_and_replay_requeues_the_undelivered_ones() {
    let h = Harness::new();
    let id = create(&h, "http://127.0.0.1:9/hook").await["id"].as_str().unwrap().to_owned();
    let other = create(&h, "http://127.0.0.1:9/other").await["id"].as_str().unwrap().to_owned();
    for doc in [
        delivery(&id, "msg_a", DeliveryState::Failed, 1_000, 3),
        delivery(&id, "msg_b", DeliveryState::Delivered, 2_000, 3),
        delivery(&id, "msg_c", DeliveryState::Pending, 3_000, 3),
        delivery(&other, "msg_d", DeliveryState::Failed, 4_000, 3),
    ] {
        h.webhooks.insert_delivery(doc).await.unwrap();
    }
    let ids = |body: &Value| -> Vec<String> {
        body["deliveries"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_owned()).collect()
    };
    let (_, log) = h.get(&format!("/api/webhooks/{id}/deliveries")).await;
    assert_eq!(ids(&log), ["msg_c", "msg_b", "msg_a"]);
    assert_eq!(log["deliveries"][0]["nextAttemptAt"], "1970-01-01T00:00:04Z");
    assert_eq!(log["deliveries"][0]["executionKey"], "default/hot/msg_c/2026-01-16");
    assert_eq!(ids(&h.get(&format!("/api/webhooks/{id}/deliveries?limit=1")).await.1), ["msg_c"]);
    for bad in ["limit=0", "limit=201", "since=1"] {
        let (status, _) = h.get(&format!("/api/webhooks/{id}/deliveries?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }

    // Disabled after failing; a replay enables it and requeues the failed and pending ones.
    {
        let mut endpoint = h.webhooks.endpoint("default", &id).await.unwrap().unwrap();
        endpoint.enabled = false;
        endpoint.disabled_reason = Some("failing".to_owned());
        endpoint.disabled_at_ms = Some(5_000);
        endpoint.failing_since_ms = Some(1_000);
        h.webhooks.insert_endpoint(endpoint).await.unwrap();
    }
    assert_eq!(h.get(&format!("/api/webhooks/{id}")).await.1["disabledReason"], "failing");
    let (status, _, answer) = h.post(&format!("/api/webhooks/{id}/replay"), json!({})).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"requeued": 2})));
    let (_, sub) = h.get(&format!("/api/webhooks/{id}")).await;
    assert_eq!((sub["enabled"].as_bool(), sub["disabledReason"].is_null()), (Some(true), true), "{sub}");
    assert!(sub["disabledAt"].is_null() && sub["failingSince"].is_null(), "{sub}");
    let deliveries = h.webhooks.deliveries.lock().unwrap().clone();
    for requeued in ["msg_a", "msg_c"] {
        let doc = &deliveries[requeued];
        assert_eq!((doc.state, doc.scheduled_attempts, doc.attempt_count), (DeliveryState::Pending, 0, 10));
        assert!(doc.next_attempt_at_ms > 1_000_000, "due now: {doc:?}");
    }
    assert_eq!(deliveries["msg_b"].state, DeliveryState::Delivered);
    assert_eq!(deliveries["msg_d"].state, DeliveryState::Failed, "another subscription's");

    // Deleting the subscription drops its pending deliveries.
    assert_eq!(h.delete(&format!("/api/webhooks/{id}")).await.0, StatusCode::NO_CONTENT);
    assert_eq!(h.get(&format!("/api/webhooks/{id}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(h.delete(&format!("/api/webhooks/{id}")).await.0, StatusCode::NOT_FOUND);
    let deliveries = h.webhooks.deliveries.lock().unwrap().clone();
    assert_eq!(
        [deliveries["msg_a"].state, deliveries["msg_b"].state, deliveries["msg_d"].state],
        [DeliveryState::Dropped, DeliveryState::Delivered, DeliveryState::Failed]
    );
    assert_eq!(h.post(&format!("/api/webhooks/{id}/replay"), json!({})).await.0, StatusCode::NOT_FOUND);
}
