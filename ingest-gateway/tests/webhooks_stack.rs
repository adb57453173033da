//! Automation rules and webhook subscriptions through the gateway binary, against the real
//! stack (Kafka, the registry, MongoDB), each test on a MongoDB database of its own and in a
//! project of its own:
//!
//! - A test delivery reaches a webhook-receiver stand-in on 127.0.0.1 exactly once, and its
//!   signature verifies (the receiver checks it itself) with the secret the subscription was
//!   answered with; the delivery log shows the attempt and its response code. A receiver
//!   answering 500 gives a failed attempt with response code 500. A metadata URL is refused and
//!   nothing is stored.
//! - A rule round trip through Kafka: a second gateway reading `automations.rules.v1` sees a
//!   posted rule and its new version; after a DELETE it is gone, and a gateway started later does
//!   not see it either.
//! - The executions log lists `automation_executions` documents of the caller's project only,
//!   newest first.
//! - A replay enables a disabled subscription and requeues its failed and pending deliveries.

mod common;

use std::time::Duration;

use common::{Gateway, run_id, send_as};
use futures::TryStreamExt;
use leadflow_core::contract::records::{
    ActionOutcome, ActionTaken, AutomationExecuted, ExecutionOutcome, RecordPosition,
};
use leadflow_core::store::documents::{
    AUTOMATION_EXECUTIONS, DeliveryDoc, DeliveryState, DeliveryTarget, ExecutionDoc, WEBHOOK_DELIVERIES,
    WEBHOOK_ENDPOINTS, WebhookEndpointDoc,
};
use leadflow_core::store::mongo::MongoConfig;
use leadflow_testkit::auth::{TEST_EVENTS_PER_MINUTE, create_project_and_key};
use leadflow_testkit::stand_in::StandInServer;
use leadflow_testkit::{Stack, eventually, unique};
use mongodb::bson::doc;
use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;

/// A gateway on a database of this test's, and a project of the test's with a key holding
/// every scope.
struct Setup {
    gateway: Gateway,
    database: String,
    env: Vec<(&'static str, String)>,
    project: String,
    key: String,
}

impl Setup {
    async fn start(stack: &Stack) -> Setup {
        let database = run_id();
        let env = vec![
            ("LEADFLOW_MONGO__URI", stack.mongodb_uri.clone()),
            ("LEADFLOW_MONGO__DATABASE", database.clone()),
        ];
        let gateway = Gateway::start_with(stack, &env).await;
        let project = unique("wh").replace('_', "-");
        let key = create_project_and_key(
            &gateway.base_url,
            &project,
            &["ingest", "read", "admin"],
            TEST_EVENTS_PER_MINUTE,
        )
        .await
        .unwrap();
        Setup { gateway, database, env, project, key }
    }

    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.call_on(&self.gateway, method, path, body).await
    }

    async fn call_on(
        &self,
        gateway: &Gateway,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let (status, _, answer) = send_as(&gateway.base_url, &self.key, method, path, body).await;
        (status, answer)
    }

    async fn database(&self, stack: &Stack) -> mongodb::Database {
        let mongo = MongoConfig { uri: stack.mongodb_uri.clone(), database: self.database.clone() };
        leadflow_core::store::mongo::client(&mongo, "webhooks-stack-test")
            .await
            .unwrap()
            .database(&self.database)
    }

    /// A subscription to `url`: its id and secret.
    async fn subscribe(&self, url: &str) -> (String, String) {
        let body = json!({"url": url, "eventKinds": ["lead.entered_stage"]});
        let (status, created) = self.call(Method::POST, "/api/webhooks", Some(&body)).await;
        assert_eq!(status, 201, "{created}");
        (created["id"].as_str().unwrap().to_owned(), created["secret"].as_str().unwrap().to_owned())
    }
}

async fn receiver() -> StandInServer {
    StandInServer::start(|listener, shutdown| {
        stand_ins::webhooks::serve(listener, stand_ins::webhooks::Settings::default(), shutdown)
    })
    .await
}

async fn put_admin(receiver: &StandInServer, what: &str, body: Value) {
    let answer = reqwest::Client::new()
        .put(format!("{}/__admin/{what}", receiver.base_url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.text().await.unwrap());
}

fn now_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_test_delivery_is_signed_received_once_and_logged_with_its_response_code() {
    let stack = Stack::get();
    let setup = Setup::start(&stack).await;
    let receiver = receiver().await;
    let (id, secret) = setup.subscribe(&format!("{}/hook-a", receiver.base_url)).await;
    // The receiver checks signatures to /hook-a itself, with the secret the POST answered.
    put_admin(&receiver, "secrets", json!({"perPath": {"/hook-a": secret}})).await;

    let (status, tested) = setup.call(Method::POST, &format!("/api/webhooks/{id}/test"), None).await;
    assert_eq!(status, 200, "{tested}");
    assert_eq!((tested["outcome"].as_str(), tested["responseCode"].as_u64()), (Some("succeeded"), Some(200)));
    // The receiver records a delivery before it answers, and the gateway answers after that.
    let received = receiver.get("/__admin/deliveries?path=/hook-a").await;
    let received = received["deliveries"].as_array().unwrap();
    assert_eq!(received.len(), 1, "exactly one delivery: {received:?}");
    let delivery = &received[0];
    assert_eq!(
        (delivery["verified"].as_bool(), delivery["verification"].as_str()),
        (Some(true), Some("valid"))
    );
    assert_eq!(delivery["webhookId"], tested["deliveryId"]);
    assert_eq!(delivery["json"]["type"], "webhook.test");
    assert_eq!(delivery["json"]["data"]["subscriptionId"], id.as_str());
    assert_eq!(delivery["json"]["data"]["projectId"], setup.project.as_str());

    let (status, log) = setup.call(Method::GET, &format!("/api/webhooks/{id}/deliveries"), None).await;
    assert_eq!(status, 200, "{log}");
    let deliveries = log["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{log}");
    assert_eq!(
        (deliveries[0]["id"].as_str(), deliveries[0]["state"].as_str()),
        (tested["deliveryId"].as_str(), Some("delivered"))
    );
    assert_eq!(deliveries[0]["attempts"][0]["responseCode"], 200);
    assert_eq!(deliveries[0]["attempts"][0]["outcome"], "succeeded");
    let (_, subscription) = setup.call(Method::GET, &format!("/api/webhooks/{id}"), None).await;
    assert!(!subscription.to_string().contains(&secret), "the secret is shown once: {subscription}");

    // A receiver answering 500.
    put_admin(&receiver, "faults", json!({"perPath": {"/hook-b": {"status": 500}}})).await;
    let (failing, _) = setup.subscribe(&format!("{}/hook-b", receiver.base_url)).await;
    let (status, tested) = setup.call(Method::POST, &format!("/api/webhooks/{failing}/test"), None).await;
    assert_eq!(status, 200, "{tested}");
    assert_eq!((tested["outcome"].as_str(), tested["responseCode"].as_u64()), (Some("failed"), Some(500)));
    let (_, log) = setup.call(Method::GET, &format!("/api/webhooks/{failing}/deliveries"), None).await;
    assert_eq!(log["deliveries"][0]["state"], "failed", "{log}");
    assert_eq!(log["deliveries"][0]["attempts"][0]["responseCode"], 500);
    let stats = receiver.stats().await;
    assert_eq!(stats["byPath"]["/hook-b"]["requests"], 1, "a test is never retried: {stats}");

    // Refused at subscription time, and nothing stored: nothing can ever be sent there.
    let refused = json!({"url": "http://169.254.169.254/latest/meta-data", "eventKinds": ["lead.verified"]});
    let (status, answer) = setup.call(Method::POST, "/api/webhooks", Some(&refused)).await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("url")), "{answer}");
    let (_, list) = setup.call(Method::GET, "/api/webhooks", None).await;
    assert_eq!(list["webhooks"].as_array().unwrap().len(), 2, "{list}");
    let stored = setup.database(&stack).await.collection::<WebhookEndpointDoc>(WEBHOOK_ENDPOINTS);
    assert_eq!(stored.count_documents(doc! { "projectId": &setup.project }).await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_goes_through_kafka_to_another_gateway_and_its_delete_outlives_a_restart() {
    let stack = Stack::get();
    let setup = Setup::start(&stack).await;
    let rule = json!({
        "id": "hot-to-sales", "version": "v1", "name": "Hot leads to sales",
        "condition": {"type": "entersStage", "stage": "hot"},
        "actions": [{"type": "notifySales", "channel": "#sales"}],
    });
    let (status, created) = setup.call(Method::POST, "/api/automations", Some(&rule)).await;
    assert_eq!(status, 201, "{created}");
    let (status, own) = setup.call(Method::GET, "/api/automations/hot-to-sales", None).await;
    assert_eq!((status, &own["rule"]), (200, &created["rule"]), "the writer sees it at once");

    // Another gateway knows the rule only from the topic.
    let second = Gateway::start_with(&stack, &setup.env).await;
    let seen = eventually("the second gateway reads the rule", Duration::from_secs(30), || async {
        let (status, body) = setup.call_on(&second, Method::GET, "/api/automations/hot-to-sales", None).await;
        if status == 200 { Ok(Some(body)) } else { Err(format!("{status} {body}")) }
    })
    .await
    .unwrap();
    assert_eq!(seen["rule"], created["rule"]);

    let mut v2 = rule.clone();
    v2["version"] = json!("v2");
    v2["condition"] = json!({"type": "scoreCrosses", "threshold": 80});
    let (status, updated) = setup.call(Method::PUT, "/api/automations/hot-to-sales", Some(&v2)).await;
    assert_eq!(status, 200, "{updated}");
    eventually("the second gateway reads version 2", Duration::from_secs(30), || async {
        let (_, body) = setup.call_on(&second, Method::GET, "/api/automations/hot-to-sales", None).await;
        let version = body["rule"]["version"].as_str().map(str::to_owned);
        if version.as_deref() == Some("v2") { Ok(Some(())) } else { Err(format!("{body}")) }
    })
    .await
    .unwrap();

    let (status, _) = setup.call(Method::DELETE, "/api/automations/hot-to-sales", None).await;
    assert_eq!(status, 204);
    eventually("the second gateway reads the tombstone", Duration::from_secs(30), || async {
        let (status, body) = setup.call_on(&second, Method::GET, "/api/automations/hot-to-sales", None).await;
        if status == 404 { Ok(Some(())) } else { Err(format!("{status} {body}")) }
    })
    .await
    .unwrap();
    drop(second);

    // A gateway started afterwards reads the whole topic, tombstone included, before serving.
    let restarted = Gateway::start_with(&stack, &setup.env).await;
    let (status, body) = setup.call_on(&restarted, Method::GET, "/api/automations/hot-to-sales", None).await;
    assert_eq!(status, 404, "{body}");
    let (status, list) = setup.call_on(&restarted, Method::GET, "/api/automations", None).await;
    assert_eq!((status, list), (200, json!({"rules": []})));
}

fn execution(project: &str, rule: &str, lead: &str, executed_at_ms: i64) -> ExecutionDoc {
    let key = format!("{project}/{rule}/{lead}/2026-01-16");
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(executed_at_ms) * 1_000_000).unwrap();
    ExecutionDoc {
        key: key.clone(),
        project_id: project.to_owned(),
        rule_id: rule.to_owned(),
        lead_key: format!("{project}/{lead}"),
        executed_at_ms,
        source: RecordPosition { topic: "leads.scores.v1".into(), partition: 1, offset: 7 },
        record: AutomationExecuted {
            project_id: project.to_owned(),
            lead_id: lead.to_owned(),
            rule_id: rule.to_owned(),
            rule_version: "v1".to_owned(),
            execution_key: key,
            utc_day: "2026-01-16".to_owned(),
            condition: "entersStage".to_owned(),
            trigger: RecordPosition { topic: "leads.scores.v1".into(), partition: 1, offset: 7 },
            trigger_event_id: Some(format!("evt-{lead}")),
            trigger_at: at,
            actions: vec![ActionTaken {
                kind: "webhook".to_owned(),
                subscription_id: Some("sub-1".to_owned()),
                message_id: Some(leadflow_core::model::webhook::message_id(lead)),
                outcome: ActionOutcome::Queued,
            }],
            outcome: ExecutionOutcome::Queued,
            executed_at: at,
        },
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn executions_are_the_callers_projects_newest_first() {
    let stack = Stack::get();
    let setup = Setup::start(&stack).await;
    let now = now_ms();
    let hour = 3_600_000;
    let executions = setup.database(&stack).await.collection::<ExecutionDoc>(AUTOMATION_EXECUTIONS);
    executions
        .insert_many([
            execution(&setup.project, "hot", "lead-old", now - 3 * hour),
            execution(&setup.project, "hot", "lead-new", now - hour),
            execution(&setup.project, "warm", "lead-mid", now - 2 * hour),
            execution(&setup.project, "hot", "lead-last-month", now - 20 * 24 * hour),
            execution("someone-else", "hot", "lead-theirs", now),
        ])
        .await
        .unwrap();
    let leads = |body: &Value| -> Vec<String> {
        body["executions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["leadId"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, body) = setup.call(Method::GET, "/api/automations/executions", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(leads(&body), ["lead-new", "lead-mid", "lead-old"]);
    assert_eq!(body["executions"][0]["projectId"], setup.project.as_str());
    assert_eq!(body["executions"][0]["actions"][0]["outcome"], "queued");
    let (_, body) = setup.call(Method::GET, "/api/automations/executions?days=30&ruleId=hot", None).await;
    assert_eq!(leads(&body), ["lead-new", "lead-old", "lead-last-month"]);
    let (_, body) = setup.call(Method::GET, "/api/automations/executions?leadId=lead-mid", None).await;
    assert_eq!(leads(&body), ["lead-mid"]);
    let (_, body) = setup.call(Method::GET, "/api/automations/executions?limit=1", None).await;
    assert_eq!(leads(&body), ["lead-new"]);
}

fn delivery(
    project: &str,
    endpoint: &str,
    id: &str,
    state: DeliveryState,
    created_at_ms: i64,
) -> DeliveryDoc {
    DeliveryDoc {
        id: id.to_owned(),
        endpoint_id: endpoint.to_owned(),
        project_id: project.to_owned(),
        target: DeliveryTarget::Webhook,
        partition: 2,
        kind: "lead.entered_stage".to_owned(),
        body: "{}".to_owned(),
        state,
        attempt_count: 10,
        scheduled_attempts: 10,
        next_attempt_at_ms: created_at_ms,
        attempts: Vec::new(),
        created_at_ms,
        delivered_at_ms: None,
        execution_key: Some(format!("{project}/hot/{id}/2026-01-16")),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_enables_the_subscription_and_requeues_its_undelivered_deliveries() {
    let stack = Stack::get();
    let setup = Setup::start(&stack).await;
    let receiver = receiver().await;
    let (id, _) = setup.subscribe(&format!("{}/hook", receiver.base_url)).await;
    let database = setup.database(&stack).await;
    let endpoints = database.collection::<WebhookEndpointDoc>(WEBHOOK_ENDPOINTS);
    endpoints
        .update_one(
            doc! { "_id": &id },
            doc! { "$set": { "enabled": false, "disabledReason": "failing", "disabledAtMs": 5_000_i64, "failingSinceMs": 1_000_i64 } },
        )
        .await
        .unwrap();
    let (_, disabled) = setup.call(Method::GET, &format!("/api/webhooks/{id}"), None).await;
    assert_eq!(
        (disabled["enabled"].as_bool(), disabled["disabledReason"].as_str()),
        (Some(false), Some("failing"))
    );
    let deliveries = database.collection::<DeliveryDoc>(WEBHOOK_DELIVERIES);
    deliveries
        .insert_many([
            delivery(&setup.project, &id, "msg_failed", DeliveryState::Failed, 1_000),
            delivery(&setup.project, &id, "msg_delivered", DeliveryState::Delivered, 2_000),
            delivery(&setup.project, &id, "msg_pending", DeliveryState::Pending, 3_000),
            delivery(&setup.project, "another-subscription", "msg_other", DeliveryState::Failed, 4_000),
        ])
        .await
        .unwrap();

    let before = now_ms();
    let (status, answer) = setup.call(Method::POST, &format!("/api/webhooks/{id}/replay"), None).await;
    assert_eq!((status, answer), (200, json!({"requeued": 2})));
    let (_, enabled) = setup.call(Method::GET, &format!("/api/webhooks/{id}"), None).await;
    assert_eq!(enabled["enabled"], true, "{enabled}");
    assert!(
        enabled["disabledReason"].is_null()
            && enabled["disabledAt"].is_null()
            && enabled["failingSince"].is_null()
    );
    let stored: Vec<DeliveryDoc> =
        deliveries.find(doc! {}).sort(doc! { "_id": 1 }).await.unwrap().try_collect().await.unwrap();
    let by_id = |id: &str| stored.iter().find(|d| d.id == id).unwrap().clone();
    for requeued in ["msg_failed", "msg_pending"] {
        let doc = by_id(requeued);
        assert_eq!(
            (doc.state, doc.scheduled_attempts, doc.attempt_count),
            (DeliveryState::Pending, 0, 10),
            "{doc:?}"
        );
        assert!(doc.next_attempt_at_ms >= before, "due now: {doc:?}");
    }
    assert_eq!(by_id("msg_delivered").state, DeliveryState::Delivered);
    assert_eq!(by_id("msg_other").state, DeliveryState::Failed, "another subscription's");
    let (_, log) = setup.call(Method::GET, &format!("/api/webhooks/{id}/deliveries"), None).await;
    let states: Vec<&str> =
        log["deliveries"].as_array().unwrap().iter().map(|d| d["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["pending", "delivered", "pending"], "newest first: {log}");

    // Deleting the subscription drops what is still pending.
    let (status, _) = setup.call(Method::DELETE, &format!("/api/webhooks/{id}"), None).await;
    assert_eq!(status, 204);
    let dropped = deliveries.count_documents(doc! { "endpointId": &id, "state": "dropped" }).await.unwrap();
    assert_eq!(dropped, 2);
    assert_eq!(setup.call(Method::GET, &format!("/api/webhooks/{id}"), None).await.0, 404);
    assert_eq!(receiver.stats().await["requests"], 0, "a replay sends nothing itself");
}
