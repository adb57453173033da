//! Shared by the crm-sink's stack tests: the project's CRM stand-in served in-process, the
//! crm-sink binary in a consumer group and MongoDB database of the test's own, lead records
//! written to the topics and receipts read back.

#![allow(dead_code)] // each test binary uses part of this

use std::collections::HashMap;
use std::time::Duration;

use crm_sink::read_model::LeadView;
use crm_sink::store::LeadStore;
use leadflow_core::contract::records::{DeadLetter, EnrichmentStatus, LeadEnriched, LeadScored, Stage};
use leadflow_core::contract::topics;
use leadflow_core::store::mongo::MongoConfig;
#[allow(unused_imports)] // each test binary uses part of these
pub use leadflow_testkit::kafka::{codec, decode_all, produce_records};
use leadflow_testkit::kafka::{end_offsets, new_group_at_end_of, read_from_within};
use leadflow_testkit::stand_in::StandInServer;
use leadflow_testkit::{ServiceProcess, Stack, unique};
use serde_json::{Map, Value};
use stand_ins::crm::{Faults, HubSpotStats, Mode, Settings};
use time::OffsetDateTime;

/// Every crm-sink started here reads every lead record written after its start, so two tests
/// at once would deliver each other's leads: they take turns.
pub static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The CRM stand-in on a port of the OS's choosing, stopped when dropped.
pub struct CrmStandIn(StandInServer);

impl CrmStandIn {
    /// HubSpot mode (last writer wins, strict bodies) with LeadFlow's properties already
    /// created, as `crm-sink setup` leaves an account.
    pub async fn start(faults: Value) -> CrmStandIn {
        Self::serve(Settings::hubspot_with_leadflow_properties(Self::faults(faults, Mode::HubSpot))).await
    }

    /// The versioned mode: a version guard per contact and counted idempotency keys, for a test
    /// of what the sink does against that older CRM.
    pub async fn versioned(faults: Value) -> CrmStandIn {
        Self::serve(Settings::versioned(Self::faults(faults, Mode::Versioned))).await
    }

    fn faults(faults: Value, mode: Mode) -> Faults {
        Faults::from_json(faults.to_string().as_bytes(), mode).unwrap()
    }

    async fn serve(settings: Settings) -> CrmStandIn {
        CrmStandIn(
            StandInServer::start(|listener, stop| stand_ins::crm::serve_with(listener, settings, stop)).await,
        )
    }

    /// Every contact by its key (the lead id), archived ones included: see
    /// [`HubSpotContact`](stand_ins::crm::HubSpotContact) for the shape in HubSpot mode.
    pub async fn contacts(&self) -> Map<String, Value> {
        self.get("/__admin/contacts").await["contacts"].as_object().unwrap().clone()
    }

    /// The counters of a stand-in in HubSpot mode.
    pub async fn hubspot_stats(&self) -> HubSpotStats {
        serde_json::from_value(self.stats().await).unwrap()
    }
}

/// A HubSpot-mode contact's `leadflow_version`, which HubSpot keeps as text.
pub fn version_of(contact: &Value) -> Option<u64> {
    contact["properties"]["leadflow_version"].as_str()?.parse().ok()
}

/// Every `leadflow_version` written to a HubSpot-mode contact, in apply order.
pub fn version_history(contact: &Value) -> Vec<u64> {
    let history = contact["versionHistory"].as_array().unwrap();
    history.iter().map(|v| v.as_str().unwrap().parse().unwrap()).collect()
}

/// A property value as HubSpot holds it: text (a number as its JSON text), `None` for `null`.
pub fn hubspot_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The fields of `view` the CRM shows (`crm_sink::contact::properties`) that `contact` holds
/// otherwise, as `(name, expected, held)`; empty when the contact matches the read model.
pub fn differing_fields(view: &LeadView, contact: &Value) -> Vec<(String, Option<String>, Option<String>)> {
    crm_sink::contact::properties(view)
        .iter()
        .map(|(name, value)| (name.clone(), hubspot_text(value), hubspot_text(&contact["properties"][name])))
        .filter(|(_, expected, held)| expected != held)
        .collect()
}

impl std::ops::Deref for CrmStandIn {
    type Target = StandInServer;
    fn deref(&self) -> &StandInServer {
        &self.0
    }
}

/// A crm-sink in its own consumer group, which starts at the current end of its topics, with
/// its own MongoDB database.
pub struct SinkRun {
    pub group: String,
    pub database: String,
    pub deliveries_from: HashMap<i32, i64>,
    pub dlq_from: HashMap<i32, i64>,
}

impl SinkRun {
    pub fn new(stack: &Stack) -> SinkRun {
        SinkRun {
            group: new_group_at_end_of(stack, "crm-sink-test", &crm_sink::INPUT_TOPICS),
            database: unique("crm_sink_test").replace('-', "_"),
            deliveries_from: end_offsets(stack, topics::CRM_DELIVERIES),
            dlq_from: end_offsets(stack, topics::DLQ),
        }
    }

    pub fn env(&self, stack: &Stack, instance: &str, crm: &CrmStandIn) -> Vec<(&'static str, String)> {
        self.env_for(stack, instance, &crm.base_url)
    }

    /// [`SinkRun::env`], for a CRM at `crm_base_url` served some other way.
    pub fn env_for(&self, stack: &Stack, instance: &str, crm_base_url: &str) -> Vec<(&'static str, String)> {
        vec![
            ("LEADFLOW_MONGO__URI", stack.mongodb_uri.clone()),
            ("LEADFLOW_MONGO__DATABASE", self.database.clone()),
            ("LEADFLOW_CONSUMER__GROUP_ID", self.group.clone()),
            ("LEADFLOW_CONSUMER__INSTANCE_ID", instance.to_owned()),
            ("LEADFLOW_CRM__HTTP__BASE_URL", crm_base_url.to_owned()),
        ]
    }

    pub async fn start(
        &self,
        stack: &Stack,
        instance: &str,
        crm: &CrmStandIn,
        extra: &[(&'static str, String)],
    ) -> ServiceProcess {
        self.start_with_ops(stack, instance, crm, extra).await.0
    }

    /// [`SinkRun::start`], and the address of the instance's ops endpoints (`/metrics`).
    pub async fn start_with_ops(
        &self,
        stack: &Stack,
        instance: &str,
        crm: &CrmStandIn,
        extra: &[(&'static str, String)],
    ) -> (ServiceProcess, String) {
        let mut env = self.env(stack, instance, crm);
        env.extend(extra.iter().cloned());
        let (mut process, ops) =
            ServiceProcess::spawn_against(stack, env!("CARGO_BIN_EXE_crm-sink"), &env).await.unwrap();
        process.wait_for_log("consuming", Duration::from_secs(60)).await.unwrap();
        (process, ops)
    }

    pub async fn store(&self, stack: &Stack) -> LeadStore {
        let config = MongoConfig { uri: stack.mongodb_uri.clone(), database: self.database.clone() };
        LeadStore::new(leadflow_core::store::mongo::client(&config, "test").await.unwrap(), &self.database)
    }

    pub async fn lead(&self, stack: &Stack, lead_id: &str) -> Option<LeadView> {
        self.store(stack).await.lead(lead_id).await.unwrap()
    }

    /// Reads dead letters of keys starting with `prefix` until `expected` of them are there.
    pub async fn read_dead_letters(&self, stack: &Stack, prefix: &str, expected: usize) -> Vec<DeadLetter> {
        let records =
            read_from_within(stack, topics::DLQ, &self.dlq_from, Duration::from_secs(60), |records| {
                records.iter().filter(|r| r.key.starts_with(prefix)).count() >= expected
            })
            .await;
        decode_all(stack, records.iter().filter(|r| r.key.starts_with(prefix))).await
    }
}

pub fn run_id() -> String {
    unique("cs").replace('-', "")
}

pub fn enriched(
    lead_id: &str,
    name: &str,
    status: EnrichmentStatus,
    enriched_at: OffsetDateTime,
) -> LeadEnriched {
    let verified = status == EnrichmentStatus::Verified;
    LeadEnriched {
        project_id: "default".into(),
        lead_id: lead_id.to_owned(),
        name: name.to_owned(),
        email: Some(format!("{}@example.com", lead_id.to_lowercase())),
        company: Some("Analytical Engines".into()),
        country_code: Some("GB".into()),
        country_name: Some("United Kingdom".into()),
        probability: Some(if verified { 0.82 } else { 0.31 }),
        status,
        reason: (!verified).then(|| "low_probability".to_owned()),
        provider: "nationalize".into(),
        enriched_at,
    }
}

/// A LeadScored for `lead_id` at `version`, as the scorer writes it.
pub fn scored(lead_id: &str, version: u64, score: f64, stage: Stage, at: OffsetDateTime) -> LeadScored {
    LeadScored {
        project_id: "default".into(),
        lead_id: lead_id.to_owned(),
        event_id: format!("e{version}"),
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
        lead_version: Some(version),
        merged_into: None,
    }
}
