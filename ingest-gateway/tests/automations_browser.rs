//! The dashboard's webhooks and automations pages in a real headless Chromium (Debian's
//! `chromium`, driven by npm's `playwright-core`; `scripts/install-browser-test` installs both),
//! against the gateway on the real stack with a MongoDB database of this test's own and loopback
//! `http` webhooks allowed. A webhook receiver stand-in runs in this process. A dashboard user of
//! two projects new to this run is made through the API with the admin token, and executions of
//! the first (today's and a 10-day-old one) and of the second (today's) are written straight into
//! `automation_executions`, as the automator would.
//!
//! `tests/browser/automations.mjs` adds a subscription to the receiver in the page, reads the
//! secret shown once, sends a test and sees it delivered in the log; creates the rule "enters hot
//! → that webhook", sees a rule with an invalid field refused with the field named, creates and
//! deletes another, creates an email rule and sees an email to "not an address" refused on its
//! recipients box, and reads the executions: the first project's only; then, switched to the
//! second project, its execution only and none of the first's rules or subscriptions. Here,
//! afterwards: the receiver got exactly that one test delivery, and its signature verifies with
//! the secret the page showed (the receiver's own check, and LeadFlow's `verify`), and not with
//! another secret. Screenshots: `target/dashboard-screenshots/automations/`.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::time::Duration;

use common::Gateway;
use leadflow_core::contract::project::lead_key;
use leadflow_core::contract::records::{
    ActionOutcome, ActionTaken, AutomationExecuted, ExecutionOutcome, RecordPosition,
};
use leadflow_core::contract::topics;
use leadflow_core::model::automation::{execution_key, utc_day};
use leadflow_core::model::webhook::{WebhookSecret, message_id, verify};
use leadflow_core::store::documents::{AUTOMATION_EXECUTIONS, ExecutionDoc};
use leadflow_core::store::mongo::MongoConfig;
use leadflow_testkit::auth::{TEST_ADMIN_TOKEN, create_project};
use leadflow_testkit::stand_in::StandInServer;
use leadflow_testkit::{Stack, repo_root, unique};
use serde_json::{Value, json};
use time::OffsetDateTime;

const RECEIVER_PATH: &str = "/hooks/browser";
const RULE_ID: &str = "hot-to-hook";

#[tokio::test]
async fn a_person_subscribes_a_webhook_tests_it_and_makes_rules_that_use_it() {
    browser::browser_tools();
    let stack = Stack::get();
    let run = unique("autobrowser").replace(['-', '_'], "");
    let receiver = StandInServer::start(|listener, stop| {
        stand_ins::webhooks::serve(listener, stand_ins::webhooks::Settings::default(), stop)
    })
    .await;
    let mut gateway = Gateway::start_with(
        &stack,
        &[
            ("LEADFLOW_MONGO__URI", stack.mongodb_uri.clone()),
            ("LEADFLOW_MONGO__DATABASE", run.clone()),
            ("LEADFLOW_WEBHOOKS__ALLOW_LOOPBACK_HTTP", "true".to_owned()),
        ],
    )
    .await;

    // A project of this run's own: the rules topic is shared with every other test.
    let project = format!("auto-{run}");
    let other_project = format!("other-{run}");
    create_project(&gateway.base_url, &project, None).await.unwrap();
    create_project(&gateway.base_url, &other_project, None).await.unwrap();
    let (user_email, user_password) = (format!("{run}@example.com"), unique("an-automations-password"));
    let registered = reqwest::Client::new()
        .post(format!("{}/api/auth/register", gateway.base_url))
        .bearer_auth(TEST_ADMIN_TOKEN)
        .json(&json!({"email": user_email, "password": user_password, "projects": [project, other_project]}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201, "{}", registered.text().await.unwrap());

    let executions = write_executions(&stack, &run, &project, &other_project).await;
    let screenshots = repo_root().join("target/dashboard-screenshots/automations");
    let result_file = std::env::temp_dir().join(format!("{run}-result.json"));
    browser::run_driver(
        "automations.mjs",
        &screenshots,
        &[
            ("DASHBOARD_URL", format!("{}/", gateway.base_url)),
            ("USER_EMAIL", user_email.clone()),
            ("USER_PASSWORD", user_password.clone()),
            ("PROJECT", project.clone()),
            ("OTHER_PROJECT", other_project.clone()),
            ("RECEIVER_URL", receiver.base_url.clone()),
            ("RECEIVER_PATH", RECEIVER_PATH.to_owned()),
            ("EXECUTIONS", executions.to_string()),
            ("RESULT_FILE", result_file.display().to_string()),
        ],
        Duration::from_secs(300),
        || format!("gateway log:\n{}", gateway.process.logs()),
    )
    .await;

    let result: Value = serde_json::from_str(&std::fs::read_to_string(&result_file).unwrap()).unwrap();
    let _ = std::fs::remove_file(&result_file);
    let deliveries = receiver.get(&format!("/__admin/deliveries?path={RECEIVER_PATH}")).await["deliveries"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(deliveries.len(), 1, "the receiver got exactly the one test delivery: {deliveries:#?}");
    let delivery = &deliveries[0];
    assert_eq!(delivery["json"]["type"], "webhook.test", "{delivery:#?}");
    assert_eq!(delivery["webhookId"], result["deliveryId"], "the log's delivery is the one received");
    assert_eq!(delivery["verification"], "valid", "the receiver's own check: {delivery:#?}");
    assert_eq!(delivery["verified"], true);
    let field = |name: &str| delivery[name].as_str().unwrap_or_else(|| panic!("no {name} in {delivery:#?}"));
    let received_at = OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(delivery["receivedAtMs"].as_i64().unwrap()) * 1_000_000,
    )
    .unwrap();
    let check = |secret: &WebhookSecret| {
        verify(
            secret,
            field("webhookId"),
            field("webhookTimestamp"),
            field("webhookSignature"),
            field("body").as_bytes(),
            received_at,
            time::Duration::minutes(5),
        )
    };
    let shown = WebhookSecret::parse(result["secret"].as_str().unwrap()).unwrap();
    check(&shown).expect("the signature verifies with the secret the page showed");
    assert!(check(&WebhookSecret::generate().unwrap()).is_err(), "another secret does not verify it");

    browser::assert_screenshots(
        &screenshots,
        &[
            "webhook-secret",
            "webhook-tested",
            "rule-created",
            "rule-refused",
            "email-rule-created",
            "email-refused",
            "executions",
            "executions-30-days",
            "other-project",
        ],
    );
    gateway.process.signal(libc::SIGTERM).unwrap();
    let exit = gateway.process.wait_exit(Duration::from_secs(30)).await.unwrap();
    assert_eq!(exit.code(), Some(0), "{}", gateway.process.logs());
}

/// Writes executions as the automator records them: two of today and one of 10 days ago in
/// `project`, and one of today in `other_project`. Returns them as the browser script reads
/// them: `{recent: [..], older, otherProject}`.
async fn write_executions(stack: &Stack, database: &str, project: &str, other_project: &str) -> Value {
    let mongo = MongoConfig { uri: stack.mongodb_uri.clone(), database: database.to_owned() };
    let client = leadflow_core::store::mongo::client(&mongo, "automations-browser-test").await.unwrap();
    let collection = client.database(database).collection::<ExecutionDoc>(AUTOMATION_EXECUTIONS);
    let now = OffsetDateTime::now_utc();
    let made = [
        (project, "lead-hot-1", "v1", now - Duration::from_secs(60)),
        (project, "lead-hot-2", "v2", now - Duration::from_secs(120)),
        (project, "lead-long-ago", "v1", now - Duration::from_secs(10 * 24 * 3600)),
        (other_project, "lead-of-another-project", "v1", now - Duration::from_secs(30)),
    ]
    .into_iter()
    .enumerate()
    .map(|(offset, (project, lead, version, at))| execution(project, lead, version, at, offset as i64))
    .collect::<Vec<_>>();
    collection.insert_many(&made).await.unwrap();
    let shown = |doc: &ExecutionDoc| {
        json!({
            "executionKey": doc.key,
            "leadId": doc.record.lead_id,
            "ruleId": doc.record.rule_id,
            "ruleVersion": doc.record.rule_version,
            "utcDay": doc.record.utc_day,
            "messageId": doc.record.actions[0].message_id,
        })
    };
    json!({
        "recent": [shown(&made[0]), shown(&made[1])],
        "older": shown(&made[2]),
        "otherProject": shown(&made[3]),
    })
}

fn execution(project: &str, lead: &str, version: &str, at: OffsetDateTime, offset: i64) -> ExecutionDoc {
    let day = utc_day(at);
    let key = execution_key(project, RULE_ID, lead, day);
    let trigger = RecordPosition { topic: topics::SCORES.to_owned(), partition: 0, offset };
    let record = AutomationExecuted {
        project_id: project.to_owned(),
        lead_id: lead.to_owned(),
        rule_id: RULE_ID.to_owned(),
        rule_version: version.to_owned(),
        execution_key: key.clone(),
        utc_day: day.to_string(),
        condition: "entersStage".to_owned(),
        trigger: trigger.clone(),
        trigger_event_id: Some(format!("event-{offset}")),
        trigger_at: at,
        actions: vec![ActionTaken {
            kind: "webhook".to_owned(),
            subscription_id: Some("a-subscription-of-before".to_owned()),
            message_id: Some(message_id(&key)),
            outcome: ActionOutcome::Queued,
        }],
        outcome: ExecutionOutcome::Queued,
        executed_at: at,
    };
    ExecutionDoc {
        key,
        project_id: project.to_owned(),
        rule_id: RULE_ID.to_owned(),
        lead_key: lead_key(project, lead).into_owned(),
        executed_at_ms: (at.unix_timestamp_nanos() / 1_000_000) as i64,
        source: trigger,
        record,
    }
}
