//! Shared by the scorer's stack tests: the scorer binary in a consumer group of the test's own,
//! events written to and scores read back from the topics, and the MongoDB state.

#![allow(dead_code)] // each test binary uses part of this

use std::collections::HashMap;
use std::time::Duration;

use leadflow_core::contract::records::{LeadEvent, LeadScored};
use leadflow_core::contract::topics;
use leadflow_core::store::mongo::MongoConfig;
#[allow(unused_imports)] // each test binary uses part of these
pub use leadflow_testkit::kafka::{codec, decode_all};
use leadflow_testkit::kafka::{end_offsets, new_group_at_end, read_from_within};
use leadflow_testkit::{ServiceProcess, Stack, unique};
use scorer::store::LeadStore;
use time::OffsetDateTime;

/// Every scorer started here consumes every event written after its start, so two tests at
/// once would score each other's events: they take turns.
pub static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn run_id() -> String {
    unique("sc").replace('-', "")
}

pub fn event(event_id: &str, lead_id: &str, event_type: &str, timestamp: OffsetDateTime) -> LeadEvent {
    LeadEvent {
        project_id: "default".into(),
        event_id: event_id.to_owned(),
        lead_id: lead_id.to_owned(),
        event_type: event_type.to_owned(),
        timestamp,
        properties: Default::default(),
        merge_into: None,
        forwarded_from: None,
        hops: 0,
    }
}

/// Writes the events, framed by the schema codec as the gateway writes them, in order.
pub async fn produce_events(stack: &Stack, events: &[LeadEvent]) {
    leadflow_testkit::kafka::produce_records(stack, events).await;
}

/// A scorer in its own consumer group, which starts at the current end of the events topic,
/// with its own MongoDB database.
pub struct ScorerRun {
    pub group: String,
    pub database: String,
    pub scores_from: HashMap<i32, i64>,
    pub dlq_from: HashMap<i32, i64>,
}

impl ScorerRun {
    pub fn new(stack: &Stack) -> ScorerRun {
        let group = new_group_at_end(stack, "scorer-test", topics::EVENTS);
        ScorerRun {
            database: unique("scorer_test").replace('-', "_"),
            group,
            scores_from: end_offsets(stack, topics::SCORES),
            dlq_from: end_offsets(stack, topics::DLQ),
        }
    }

    pub fn env(&self, stack: &Stack, instance: &str) -> Vec<(&'static str, String)> {
        vec![
            ("LEADFLOW_MONGO__URI", stack.mongodb_uri.clone()),
            ("LEADFLOW_MONGO__DATABASE", self.database.clone()),
            ("LEADFLOW_CONSUMER__GROUP_ID", self.group.clone()),
            ("LEADFLOW_CONSUMER__INSTANCE_ID", instance.to_owned()),
        ]
    }

    pub async fn start(
        &self,
        stack: &Stack,
        instance: &str,
        extra: &[(&'static str, String)],
    ) -> ServiceProcess {
        self.start_with_ops(stack, instance, extra).await.0
    }

    /// [`ScorerRun::start`], with the base URL of the scorer's ops endpoints.
    pub async fn start_with_ops(
        &self,
        stack: &Stack,
        instance: &str,
        extra: &[(&'static str, String)],
    ) -> (ServiceProcess, String) {
        let mut env = self.env(stack, instance);
        env.extend(extra.iter().cloned());
        let (mut process, ops) =
            ServiceProcess::spawn_against(stack, env!("CARGO_BIN_EXE_scorer"), &env).await.unwrap();
        process.wait_for_log("consuming", Duration::from_secs(60)).await.unwrap();
        (process, format!("http://{ops}"))
    }

    pub async fn store(&self, stack: &Stack) -> LeadStore {
        let config = MongoConfig { uri: stack.mongodb_uri.clone(), database: self.database.clone() };
        LeadStore::new(leadflow_core::store::mongo::client(&config, "test").await.unwrap(), &self.database)
    }

    /// Reads LeadScored records whose key starts with `prefix` until `expected` of them are there.
    pub async fn read_scores(
        &self,
        stack: &Stack,
        prefix: &str,
        expected: usize,
        deadline: Duration,
    ) -> Vec<LeadScored> {
        let records = read_from_within(stack, topics::SCORES, &self.scores_from, deadline, |records| {
            records.iter().filter(|r| r.key.starts_with(prefix)).count() >= expected
        })
        .await;
        decode_all(stack, records.iter().filter(|r| r.key.starts_with(prefix))).await
    }
}

/// The scorer's counter `leadflow_scorer_<name>` from its metrics at `ops`, once it is at least
/// `at_least`.
pub async fn counter(ops: &str, name: &str, at_least: u64) -> u64 {
    let metric = format!("leadflow_scorer_{name}");
    leadflow_testkit::eventually(&metric.clone(), Duration::from_secs(10), || {
        let (url, metric) = (format!("{ops}/metrics"), metric.clone());
        async move {
            let text = reqwest::get(url)
                .await
                .map_err(|e| e.to_string())?
                .text()
                .await
                .map_err(|e| e.to_string())?;
            let count = text
                .lines()
                .find(|l| l.starts_with(&metric))
                .and_then(|l| l.split_whitespace().last()?.parse::<u64>().ok());
            Ok(count.filter(|c| *c >= at_least))
        }
    })
    .await
    .unwrap()
}
