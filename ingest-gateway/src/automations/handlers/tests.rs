//! The automations routes through the whole router (see [`crate::testing`]): what each write
//! publishes on `automations.rules.v1` and under which key, what each answers, and that a
//! project sees and changes its own rules only.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use time::macros::datetime;

use leadflow_core::contract::records::{
    ActionOutcome, ActionTaken, AutomationExecuted, ExecutionOutcome, RecordPosition,
};
use leadflow_core::store::documents::{ExecutionDoc, WebhookEndpointDoc};

use crate::auth::scope::Scope;
use crate::testing::{Harness, store_project, with_key};
use crate::webhooks::store::WebhookStore;

const TOPIC: &str = "automations.rules.v1";

fn rule(id: &str, version: &str) -> Value {
    json!({
        "id": id, "version": version, "name": "Hot leads to the CRM",
        "condition": {"type": "entersStage", "stage": "hot"},
        "actions": [{"type": "webhook", "subscriptionId": "sub-1"}, {"type": "notifySales", "channel": "#sales"}],
    })
}

fn endpoint(project: &str, id: &str) -> WebhookEndpointDoc {
    WebhookEndpointDoc {
        id: id.to_owned(),
        project_id: project.to_owned(),
        url: "https://hooks.example.com/lf".to_owned(),
        event_kinds: vec!["lead.entered_stage".to_owned()],
        description: None,
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        enabled: true,
        disabled_reason: None,
        disabled_at_ms: None,
        failing_since_ms: None,
        created_at_ms: 0,
    }
}

/// A harness whose default project has subscription `sub-1`.
async fn harness() -> Harness {
    let h = Harness::new();
    h.webhooks.insert_endpoint(endpoint("default", "sub-1")).await.unwrap();
    h
}

#[tokio::test]
async fn a_rule_is_created_read_updated_and_deleted_through_the_topic() {
    let h = harness().await;
    let (status, _, body) = h.post("/api/automations", rule("hot-to-crm", "v1")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["rule"]["id"], "hot-to-crm");
    assert_eq!(body["rule"]["enabled"], true, "enabled by default");
    let published = h.published();
    assert_eq!(published.len(), 1);
    assert_eq!((published[0].0.as_str(), published[0].1.as_str()), (TOPIC, "automation/default/hot-to-crm"));
    assert_eq!(published[0].2["version"], "v1");

    // Read at once, from the gateway's own book.
    let (status, list) = h.get("/api/automations").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["rules"].as_array().unwrap().len(), 1);
    assert_eq!(list["rules"][0], body["rule"]);
    let (status, one) = h.get("/api/automations/hot-to-crm").await;
    assert_eq!((status, &one["rule"]), (StatusCode::OK, &body["rule"]));

    // The same rule again writes nothing; other content under the same version is a 409.
    let (status, _, again) = h.put("/api/automations/hot-to-crm", rule("hot-to-crm", "v1")).await;
    assert_eq!((status, &again["rule"]), (StatusCode::OK, &body["rule"]));
    assert_eq!(h.published().len(), 1);
    let mut changed = rule("hot-to-crm", "v1");
    changed["name"] = json!("Renamed");
    let (status, _, conflict) = h.put("/api/automations/hot-to-crm", changed.clone()).await;
    assert_eq!((status, conflict["field"].as_str()), (StatusCode::CONFLICT, Some("version")), "{conflict}");
    assert_eq!(h.published().len(), 1);

    // A new version, the id left to the path.
    changed["version"] = json!("v2");
    changed.as_object_mut().unwrap().remove("id");
    let (status, _, updated) = h.put("/api/automations/hot-to-crm", changed).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(
        (updated["rule"]["version"].as_str(), updated["rule"]["name"].as_str()),
        (Some("v2"), Some("Renamed"))
    );
    assert_eq!(h.published().len(), 2);
    assert_eq!(h.get("/api/automations/hot-to-crm").await.1["rule"]["version"], "v2");

    // A delete is a tombstone under the rule's key.
    assert_eq!(h.delete("/api/automations/hot-to-crm").await.0, StatusCode::NO_CONTENT);
    let published = h.published();
    assert_eq!(published.len(), 3);
    assert_eq!(published[2], (TOPIC.to_owned(), "automation/default/hot-to-crm".to_owned(), Value::Null));
    let (status, missing) = h.get("/api/automations/hot-to-crm").await;
    assert_eq!((status, missing["field"].as_str()), (StatusCode::NOT_FOUND, Some("id")));
    assert_eq!(h.delete("/api/automations/hot-to-crm").await.0, StatusCode::NOT_FOUND);
    assert_eq!(h.get("/api/automations").await.1, json!({"rules": []}));
    let (status, _, _) = h.put("/api/automations/hot-to-crm", rule("hot-to-crm", "v3")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a PUT changes a rule, it does not create one");
    assert_eq!(h.published().len(), 3);
}

#[tokio::test]
async fn an_invalid_rule_is_a_400_naming_the_field_and_publishes_nothing() {
    let h = harness().await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"type": "scoreCrosses", "threshold": 0}), "condition.threshold"),
        (json!({"type": "scoreCrosses", "threshold": "high"}), "condition.threshold"),
        (json!({"type": "entersStage", "stage": "boiling"}), "condition.stage"),
        (json!({"type": "velocityAtLeast", "events": 0, "window": "24h"}), "condition.events"),
    ];
    for (condition, field) in cases {
        let mut body = rule("r", "v1");
        body["condition"] = condition;
        let (status, _, answer) = h.post("/api/automations", body).await;
        assert_eq!((status, answer["field"].as_str()), (StatusCode::BAD_REQUEST, Some(field)), "{answer}");
        assert_eq!(answer["error"], "invalid_field");
    }
    let mut unknown_subscription = rule("r", "v1");
    unknown_subscription["actions"] =
        json!([{"type": "notifySales"}, {"type": "webhook", "subscriptionId": "sub-9"}]);
    let (status, _, answer) = h.post("/api/automations", unknown_subscription).await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("actions[1].subscriptionId"))
    );
    assert!(answer["message"].as_str().unwrap().contains("sub-9"), "{answer}");
    let mut not_a_slug = rule("r", "v1");
    not_a_slug["actions"] = json!([{"type": "webhook", "subscriptionId": "Sub 1"}]);
    let (status, _, answer) = h.post("/api/automations", not_a_slug).await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("actions[0].subscriptionId"))
    );
    let mut sms = rule("r", "v1");
    sms["actions"] = json!([{"type": "sms", "to": "+4712345678"}]);
    assert_eq!(h.post("/api/automations", sms).await.2["field"], "actions[0].type");
    let (_, _, answer) = h.post("/api/automations", json!({"id": "Bad Id"})).await;
    let fields: Vec<&str> =
        answer["details"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"version") && fields.contains(&"condition"), "{answer}");
    let (status, _, answer) = h.post("/api/automations", rule("executions", "v1")).await;
    assert_eq!((status, answer["field"].as_str()), (StatusCode::BAD_REQUEST, Some("id")));
    let (status, _, answer) = h.put("/api/automations/r", rule("other", "v1")).await;
    assert_eq!((status, answer["field"].as_str()), (StatusCode::BAD_REQUEST, Some("id")));
    let (status, answer) = h.get("/api/automations/Not_A_Slug").await;
    assert_eq!((status, answer["field"].as_str()), (StatusCode::BAD_REQUEST, Some("id")));
    assert!(h.published().is_empty());
}

#[tokio::test]
async fn a_duplicate_id_is_a_409_and_another_projects_id_a_400() {
    let h = harness().await;
    assert_eq!(h.post("/api/automations", rule("hot", "v1")).await.0, StatusCode::CREATED);
    let (status, _, answer) = h.post("/api/automations", rule("hot", "v2")).await;
    assert_eq!((status, answer["field"].as_str()), (StatusCode::CONFLICT, Some("id")), "{answer}");
    let mut other = rule("cold", "v1");
    other["projectId"] = json!("acme");
    let (status, _, answer) = h.post("/api/automations", other).await;
    assert_eq!((status, answer["field"].as_str()), (StatusCode::BAD_REQUEST, Some("projectId")), "{answer}");
    let mut own = rule("cold", "v1");
    own["projectId"] = json!("default");
    assert_eq!(h.post("/api/automations", own).await.0, StatusCode::CREATED, "its own project may be named");
    assert_eq!(h.published().len(), 2);
}

#[tokio::test]
async fn a_project_has_at_most_100_rules() {
    let h = harness().await;
    for n in 0..100 {
        assert_eq!(h.post("/api/automations", rule(&format!("r{n}"), "v1")).await.0, StatusCode::CREATED);
    }
    let (status, _, answer) = h.post("/api/automations", rule("r100", "v1")).await;
    assert_eq!((status, answer["field"].as_str()), (StatusCode::CONFLICT, Some("id")));
    assert!(answer["message"].as_str().unwrap().contains("at most 100"), "{answer}");
    assert_eq!(h.published().len(), 100);
}

#[tokio::test]
async fn reads_need_the_read_scope_and_writes_the_admin_scope() {
    let h = harness().await;
    assert_eq!(h.post("/api/automations", rule("hot", "v1")).await.0, StatusCode::CREATED);
    let ingest = h.key_of("default", &[Scope::Ingest], None);
    let read = h.key_of("default", &[Scope::Read], None);
    let body = rule("new", "v1");
    let cases = [
        (&ingest, Method::GET, "/api/automations", None, "read"),
        (&ingest, Method::GET, "/api/automations/hot", None, "read"),
        (&ingest, Method::GET, "/api/automations/executions", None, "read"),
        (&read, Method::POST, "/api/automations", Some(body.clone()), "admin"),
        (&read, Method::PUT, "/api/automations/hot", Some(body.clone()), "admin"),
        (&read, Method::DELETE, "/api/automations/hot", None, "admin"),
    ];
    for (key, method, path, body, scope) in cases {
        let (status, _, answer) = h.send(with_key(method.clone(), path, key, body)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        assert_eq!(answer["message"], format!("this key lacks the {scope} scope"));
    }
    assert_eq!(h.published().len(), 1);
    assert_eq!(h.send(with_key(Method::GET, "/api/automations/hot", &read, None)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn another_projects_rules_are_not_found() {
    let h = harness().await;
    store_project(&h.store, "acme", &[], None);
    let acme = h.key_of("acme", &Scope::ALL, None);
    h.webhooks.insert_endpoint(endpoint("acme", "sub-a")).await.unwrap();
    let mut acme_rule = rule("hot", "v1");
    acme_rule["actions"] = json!([{"type": "webhook", "subscriptionId": "sub-a"}]);
    let (status, _, created) =
        h.send(with_key(Method::POST, "/api/automations", &acme, Some(acme_rule.clone()))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["rule"]["projectId"], "acme");
    assert_eq!(h.published()[0].1, "automation/acme/hot");

    // The default project's key sees nothing of it and changes nothing.
    assert_eq!(h.get("/api/automations").await.1, json!({"rules": []}));
    assert_eq!(h.get("/api/automations/hot").await.0, StatusCode::NOT_FOUND);
    assert_eq!(h.put("/api/automations/hot", rule("hot", "v2")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(h.delete("/api/automations/hot").await.0, StatusCode::NOT_FOUND);
    assert_eq!(h.published().len(), 1);
    // acme's subscription is not the default project's; the same rule id is free there.
    let (status, _, answer) = h.post("/api/automations", acme_rule).await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("actions[0].subscriptionId"))
    );
    assert_eq!(h.post("/api/automations", rule("hot", "v1")).await.0, StatusCode::CREATED);
    let (_, _, list) = h.send(with_key(Method::GET, "/api/automations", &acme, None)).await;
    assert_eq!(list["rules"].as_array().unwrap().len(), 1);
    assert_eq!(list["rules"][0]["actions"][0]["subscriptionId"], "sub-a");
}

fn execution(project: &str, rule: &str, lead: &str, executed_at_ms: i64) -> ExecutionDoc {
    let key = format!("{project}/{rule}/{lead}/2026-01-16");
    let at = datetime!(2026-01-16 10:00 UTC);
    ExecutionDoc {
        key: key.clone(),
        project_id: project.to_owned(),
        rule_id: rule.to_owned(),
        lead_key: lead.to_owned(),
        executed_at_ms,
        source: RecordPosition { topic: "leads.scores.v1".into(), partition: 0, offset: executed_at_ms },
        record: AutomationExecuted {
            project_id: project.to_owned(),
            lead_id: lead.to_owned(),
            rule_id: rule.to_owned(),
            rule_version: "v1".to_owned(),
            execution_key: key,
            utc_day: "2026-01-16".to_owned(),
            condition: "entersStage".to_owned(),
            trigger: RecordPosition { topic: "leads.scores.v1".into(), partition: 0, offset: 1 },
            trigger_event_id: None,
            trigger_at: at,
            actions: vec![ActionTaken {
                kind: "notifySales".to_owned(),
                subscription_id: None,
                message_id: None,
                outcome: ActionOutcome::NotConfigured,
            }],
            outcome: ExecutionOutcome::NothingQueued,
            executed_at: at,
        },
    }
}

#[tokio::test]
async fn executions_are_the_callers_projects_newest_first_within_the_days_asked() {
    let h = Harness::new();
    let now = i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap();
    let hour = 3_600_000;
    h.executions.docs.lock().unwrap().extend([
        execution("default", "hot", "lead-1", now - 3 * hour),
        execution("default", "hot", "lead-2", now - hour),
        execution("default", "warm", "lead-1", now - 2 * hour),
        execution("default", "hot", "lead-3", now - 8 * 24 * hour),
        execution("acme", "hot", "lead-9", now),
    ]);
    let leads = |body: &Value| -> Vec<String> {
        body["executions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["leadId"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, body) = h.get("/api/automations/executions").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(leads(&body), ["lead-2", "lead-1", "lead-1"]);
    assert_eq!(body["executions"][0]["ruleId"], "hot");
    assert_eq!(body["executions"][0]["actions"][0]["outcome"], "not_configured");
    assert_eq!(
        leads(&h.get("/api/automations/executions?days=30").await.1),
        ["lead-2", "lead-1", "lead-1", "lead-3"]
    );
    let (_, body) = h.get("/api/automations/executions?ruleId=hot&limit=1").await;
    assert_eq!(leads(&body), ["lead-2"]);
    let (_, body) = h.get("/api/automations/executions?leadId=lead-1").await;
    assert_eq!(body["executions"].as_array().unwrap().len(), 2);
    let (status, body) = h.get("/api/automations/executions?days=31").await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("days")));
    let (status, body) = h.get("/api/automations/executions?limit=501").await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("limit")));
}
