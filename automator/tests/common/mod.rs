//! Shared by the automator's stack tests: an automator in a consumer group and MongoDB database
//! of the test's own, a project of the test's own with its rules on `automations.rules.v1`,
//! score records written as the scorer writes them, a webhook receiver stand-in in-process,
//! and the executions read back from `automations.executions.v1`.

#![allow(dead_code)] // each test binary uses part of this

use std::collections::HashMap;
use std::time::Duration;

use leadflow_core::contract::records::{AutomationExecuted, LeadScored, Stage};
use leadflow_core::contract::topics;
use leadflow_core::model::automation::{Action, AutomationRule, Condition};
use leadflow_core::model::webhook::WebhookSecret;
use leadflow_core::store::documents::{DeliveryDoc, WebhookEndpointDoc};
use leadflow_core::store::mongo::MongoConfig;
use leadflow_testkit::kafka::{decode_all, end_offsets, new_group_at_end_of, produce_records, read_at_least};
use leadflow_testkit::{ServiceProcess, Stack, eventually, unique};
use mongodb::bson::doc;
use serde_json::Value;
use time::OffsetDateTime;

/// Every automator started here reads every score written after its start: tests take turns,
/// so that two of them do not share the two cores.
pub static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub struct AutomatorRun {
    pub group: String,
    pub database: String,
    /// The test's own project: only its rules fire on its leads.
    pub project: String,
    pub executions_from: HashMap<i32, i64>,
}

impl AutomatorRun {
    pub fn new(stack: &Stack) -> AutomatorRun {
        AutomatorRun {
            group: new_group_at_end_of(
                stack,
                "automator-test",
                &[topics::SCORES, topics::ENRICHED, topics::REVIEWS],
            ),
            database: unique("automator_test").replace('-', "_"),
            project: unique("auto").replace('_', "-").to_lowercase(),
            executions_from: end_offsets(stack, topics::AUTOMATION_EXECUTIONS),
        }
    }

    pub fn env(&self, stack: &Stack, instance: &str) -> Vec<(&'static str, String)> {
        vec![
            ("LEADFLOW_MONGO__URI", stack.mongodb_uri.clone()),
            ("LEADFLOW_MONGO__DATABASE", self.database.clone()),
            ("LEADFLOW_CONSUMER__GROUP_ID", self.group.clone()),
            ("LEADFLOW_CONSUMER__INSTANCE_ID", instance.to_owned()),
            ("LEADFLOW_WEBHOOKS__ALLOW_LOOPBACK_HTTP", "true".into()),
            ("LEADFLOW_WEBHOOKS__POLL_INTERVAL", "100ms".into()),
        ]
    }

    pub async fn start(
        &self,
        stack: &Stack,
        instance: &str,
        extra: &[(&'static str, String)],
    ) -> ServiceProcess {
        let mut env = self.env(stack, instance);
        env.extend(extra.iter().cloned());
        let (mut process, _ops) =
            ServiceProcess::spawn_against(stack, env!("CARGO_BIN_EXE_automator"), &env).await.unwrap();
        process.wait_for_log("partitions assigned", Duration::from_secs(60)).await.unwrap();
        process
    }

    pub async fn database(&self, stack: &Stack) -> mongodb::Database {
        let config = MongoConfig { uri: stack.mongodb_uri.clone(), database: self.database.clone() };
        leadflow_core::store::mongo::client(&config, "test").await.unwrap().database(&self.database)
    }

    /// A subscription of the project to `url`, stored as the gateway stores one; its secret.
    pub async fn subscribe(&self, stack: &Stack, url: &str, kinds: &[&str]) -> (String, WebhookSecret) {
        let secret = WebhookSecret::generate().unwrap();
        let id = unique("sub").to_lowercase().replace('_', "-");
        let endpoint = WebhookEndpointDoc {
            id: id.clone(),
            project_id: self.project.clone(),
            url: url.to_owned(),
            event_kinds: kinds.iter().map(|k| (*k).to_owned()).collect(),
            description: None,
            secret: secret.expose(),
            enabled: true,
            disabled_reason: None,
            disabled_at_ms: None,
            failing_since_ms: None,
            created_at_ms: 0,
        };
        let db = self.database(stack).await;
        db.collection::<WebhookEndpointDoc>("webhook_endpoints").insert_one(&endpoint).await.unwrap();
        (id, secret)
    }

    /// Puts a rule of the project in force: `condition` → a webhook to `subscription`.
    pub async fn rule(
        &self,
        stack: &Stack,
        id: &str,
        condition: Condition,
        subscription: &str,
    ) -> AutomationRule {
        let rule = AutomationRule {
            project_id: self.project.clone(),
            id: id.to_owned(),
            version: "v1".into(),
            name: format!("{id} (test)"),
            enabled: true,
            condition,
            actions: vec![Action::Webhook { subscription_id: subscription.to_owned() }],
        };
        produce_records(stack, std::slice::from_ref(&rule)).await;
        rule
    }

    pub fn scored(
        &self,
        lead: &str,
        event: &str,
        score: f64,
        stage: Stage,
        at: OffsetDateTime,
    ) -> LeadScored {
        LeadScored {
            project_id: self.project.clone(),
            lead_id: lead.to_owned(),
            event_id: event.to_owned(),
            event_type: "demo_request".into(),
            delta: 10.0,
            score,
            stage,
            previous_stage: None,
            event_timestamp: at,
            rules_version: "v1".into(),
            processed_at: at,
            late: false,
            reason: None,
            lead_version: None,
            merged_into: None,
        }
    }

    /// Every execution of the project committed on the topic, once at least `expected` are: a
    /// delivery is sent after the MongoDB commit and before the Kafka one, so the last
    /// executions reach the topic a moment after their deliveries arrive.
    pub async fn executions(&self, stack: &Stack, expected: usize) -> Vec<AutomationExecuted> {
        let (prefix, from) = (format!("{}/", self.project), &self.executions_from);
        let deadline = Duration::from_secs(120);
        let records =
            read_at_least(stack, topics::AUTOMATION_EXECUTIONS, from, &prefix, expected, deadline).await;
        let all: Vec<AutomationExecuted> = decode_all(stack, records.iter()).await;
        all.into_iter().filter(|e| e.project_id == self.project).collect()
    }

    /// The project's deliveries in MongoDB.
    pub async fn deliveries(&self, stack: &Stack) -> Vec<DeliveryDoc> {
        use futures::TryStreamExt;
        let db = self.database(stack).await;
        db.collection::<DeliveryDoc>("webhook_deliveries")
            .find(doc! { "projectId": &self.project })
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap()
    }
}

/// A webhook receiver stand-in on 127.0.0.1, in this process.
pub struct Receiver {
    pub base: String,
    http: reqwest::Client,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(stand_ins::webhooks::serve(
            listener,
            stand_ins::webhooks::Settings::default(),
            std::future::pending(),
        ));
        Receiver { base, http: reqwest::Client::new() }
    }

    /// Signatures to `path` are checked with `secret`.
    pub async fn expect_secret(&self, path: &str, secret: &WebhookSecret) {
        let body = serde_json::json!({ "perPath": { path: secret.expose() } });
        let answer =
            self.http.put(format!("{}/__admin/secrets", self.base)).json(&body).send().await.unwrap();
        assert!(answer.status().is_success(), "{}", answer.text().await.unwrap());
    }

    pub async fn set_faults(&self, faults: Value) {
        let answer =
            self.http.put(format!("{}/__admin/faults", self.base)).json(&faults).send().await.unwrap();
        assert!(answer.status().is_success(), "{}", answer.text().await.unwrap());
    }

    pub async fn deliveries(&self, path: &str) -> Vec<stand_ins::webhooks::Delivery> {
        #[derive(serde::Deserialize)]
        struct Answer {
            deliveries: Vec<stand_ins::webhooks::Delivery>,
        }
        let url = format!("{}/__admin/deliveries?path={path}", self.base);
        self.http.get(url).send().await.unwrap().json::<Answer>().await.unwrap().deliveries
    }

    /// The deliveries to `path`, once `done` says they are enough.
    pub async fn wait_for(
        &self,
        path: &str,
        deadline: Duration,
        done: impl Fn(&[stand_ins::webhooks::Delivery]) -> bool,
    ) -> Vec<stand_ins::webhooks::Delivery> {
        eventually(&format!("deliveries to {path}"), deadline, || async {
            let seen = self.deliveries(path).await;
            Ok(done(&seen).then_some(seen))
        })
        .await
        .unwrap()
    }
}

/// Debian's aiosmtpd on a loopback port (`deploy/local/bin/smtp-server`, installed by
/// `scripts/install-smtp-server`), storing what it accepts in a Maildir of the test's own.
pub struct SmtpServer {
    _process: ServiceProcess,
    pub url: String,
    pub maildir: std::path::PathBuf,
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        let root = leadflow_testkit::repo_root();
        let maildir = root.join("target/test-maildirs").join(unique("mail"));
        let binary = root.join("deploy/local/bin/smtp-server");
        let maildir_arg = maildir.to_string_lossy().into_owned();
        let args = ["--listen", "127.0.0.1:0", "--maildir", maildir_arg.as_str()];
        let mut process = ServiceProcess::spawn_with_args(&binary.to_string_lossy(), &args, &[])
            .unwrap_or_else(|e| panic!("{e}: run scripts/install-smtp-server (Debian's python3-aiosmtpd)"));
        process.wait_for_log("smtp server listening on", Duration::from_secs(20)).await.unwrap();
        let logs = process.logs();
        let addr =
            logs.lines().find_map(|l| l.strip_prefix("smtp server listening on ")).unwrap().trim().to_owned();
        SmtpServer { _process: process, url: format!("smtp://{addr}"), maildir }
    }

    /// The messages accepted so far, as raw RFC 5322 text.
    pub fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else { return Vec::new() };
        entries.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok()).collect()
    }
}
