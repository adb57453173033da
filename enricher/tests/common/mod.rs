//! Shared by the enricher's stack tests: the project's nationalize stand-in served in-process,
//! the enricher binary pointed at it, and names written to and read back from the topics.

#![allow(dead_code)] // each test binary uses part of this

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use leadflow_core::contract::records::{LeadEnriched, NameSubmitted};
use leadflow_core::contract::topics;
use leadflow_testkit::kafka::{Published, end_offsets, new_group_at_end, read_from_within};
#[allow(unused_imports)] // each test binary uses part of these
pub use leadflow_testkit::kafka::{codec, decode_all};
use leadflow_testkit::stand_in::StandInServer;
use leadflow_testkit::{ServiceProcess, Stack, unique};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// The nationalize stand-in on a port of the OS's choosing, stopped when dropped.
pub struct StandIn(StandInServer);

impl StandIn {
    pub async fn start(faults: Value) -> StandIn {
        let faults = serde_json::from_value(faults).unwrap();
        StandIn(
            StandInServer::start(|listener, stop| stand_ins::nationalize::serve(listener, faults, stop))
                .await,
        )
    }

    pub async fn requests(&self) -> u64 {
        self.stats().await["requests"].as_u64().unwrap()
    }
}

impl std::ops::Deref for StandIn {
    type Target = StandInServer;
    fn deref(&self) -> &StandInServer {
        &self.0
    }
}

/// `n` names of one run: lead ids `<run>-<i>`, and first names unique to the run, so that each
/// one costs a request unless the cache has it.
pub fn names(run: &str, n: usize) -> Vec<NameSubmitted> {
    (0..n)
        .map(|i| NameSubmitted {
            project_id: "default".into(),
            lead_id: format!("{run}-{i}"),
            name: format!("N{run}x{i} Example"),
            email: None,
            company: None,
            submitted_at: OffsetDateTime::now_utc(),
        })
        .collect()
}

pub fn run_id() -> String {
    unique("en").replace('-', "")
}

/// Writes the names, framed by the schema codec as the gateway writes them, in order.
pub async fn produce_names(stack: &Stack, names: &[NameSubmitted]) {
    leadflow_testkit::kafka::produce_records(stack, names).await;
}

/// An enricher in its own consumer group, which starts at the current end of the names topic,
/// with its own cache database, pointed at `stand_in`.
pub struct EnricherRun {
    pub group: String,
    pub database: String,
    pub enriched_from: HashMap<i32, i64>,
    pub dlq_from: HashMap<i32, i64>,
}

impl EnricherRun {
    pub fn new(stack: &Stack) -> EnricherRun {
        let group = new_group_at_end(stack, "enricher-test", topics::NAMES);
        EnricherRun {
            database: unique("enricher_test").replace('-', "_"),
            group,
            enriched_from: end_offsets(stack, topics::ENRICHED),
            dlq_from: end_offsets(stack, topics::DLQ),
        }
    }

    /// Starts an instance named `instance` (restarting with the same name is a restart of the
    /// same instance), with `extra` config on top.
    pub async fn start(
        &self,
        stack: &Stack,
        stand_in: &StandIn,
        instance: &str,
        extra: &[(&'static str, String)],
    ) -> ServiceProcess {
        let mut env = vec![
            ("LEADFLOW_NATIONALIZE__BASE_URL", stand_in.base_url.clone()),
            ("LEADFLOW_NATIONALIZE__REQUESTS_PER_SECOND", "1000".to_owned()),
            ("LEADFLOW_NATIONALIZE__DAILY_QUOTA", "0".to_owned()),
            ("LEADFLOW_NATIONALIZE__BACKOFF_INITIAL_MS", "20".to_owned()),
            ("LEADFLOW_MONGO__URI", stack.mongodb_uri.clone()),
            ("LEADFLOW_MONGO__DATABASE", self.database.clone()),
            ("LEADFLOW_CONSUMER__GROUP_ID", self.group.clone()),
            ("LEADFLOW_CONSUMER__INSTANCE_ID", instance.to_owned()),
        ];
        env.extend(extra.iter().cloned());
        let (mut process, _ops) =
            ServiceProcess::spawn_against(stack, env!("CARGO_BIN_EXE_enricher"), &env).await.unwrap();
        process.wait_for_log("consuming", Duration::from_secs(60)).await.unwrap();
        process
    }

    /// Reads LeadEnriched records of `run` until `expected` distinct leads are there.
    pub async fn read_enriched(
        &self,
        stack: &Stack,
        run: &str,
        expected: usize,
        deadline: Duration,
    ) -> Vec<LeadEnriched> {
        read_enriched_from(stack, &self.enriched_from, run, expected, deadline).await
    }
}

/// Reads LeadEnriched records of `run`, from `from`, until `expected` distinct leads are there.
pub async fn read_enriched_from(
    stack: &Stack,
    from: &HashMap<i32, i64>,
    run: &str,
    expected: usize,
    deadline: Duration,
) -> Vec<LeadEnriched> {
    let prefix = format!("{run}-");
    let counter = DistinctKeys::new(&prefix);
    let records = read_from_within(stack, topics::ENRICHED, from, deadline, |records| {
        counter.count(records) >= expected
    })
    .await;
    decode_all(stack, records.iter().filter(|r| r.key.starts_with(&prefix))).await
}

/// Counts the distinct keys with a prefix in a growing list of records, looking at each record
/// once (a reader's `done` check runs after every record).
pub struct DistinctKeys {
    prefix: String,
    seen: RefCell<HashSet<String>>,
    looked_at: Cell<usize>,
}

impl DistinctKeys {
    pub fn new(prefix: &str) -> Self {
        DistinctKeys { prefix: prefix.to_owned(), seen: RefCell::default(), looked_at: Cell::new(0) }
    }

    pub fn count(&self, records: &[Published]) -> usize {
        let mut seen = self.seen.borrow_mut();
        for record in &records[self.looked_at.get()..] {
            if record.key.starts_with(&self.prefix) {
                seen.insert(record.key.clone());
            }
        }
        self.looked_at.set(records.len());
        seen.len()
    }
}

pub fn json_faults(latency_ms: u64, error_rate: f64, quota: Option<u64>, window_s: u64) -> Value {
    json!({"latencyMs": latency_ms, "errorRate": error_rate, "quota": quota, "windowS": window_s})
}

/// The partition of `key` among `partitions`, as the Java client's default partitioner (and
/// the services' producers, `murmur2_random`) pick it: Kafka's murmur2 of the key's bytes, its
/// sign bit cleared, modulo the partition count. Written out here so that a test can say where
/// a key must land without asking a producer.
pub fn java_partition_of(key: &str, partitions: i32) -> i32 {
    const M: u32 = 0x5bd1_e995;
    let data = key.as_bytes();
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, byte) in rest.iter().enumerate().rev() {
            h ^= u32::from(*byte) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    ((h & 0x7fff_ffff) % partitions as u32) as i32
}

/// The enricher's configuration as shipped, asking the stand-in at `base_url` at up to 1,000
/// requests a second: what the predictor tests start from.
pub fn predictor_config(base_url: &str) -> enricher::config::EnricherConfig {
    let mut config: enricher::config::EnricherConfig = leadflow_core::runtime::config::load(
        &[leadflow_core::runtime::config::SHARED_DEFAULTS, enricher::DEFAULTS],
        None,
    )
    .unwrap();
    config.nationalize.base_url = base_url.to_owned();
    config.nationalize.requests_per_second = 1000.0;
    config
}
