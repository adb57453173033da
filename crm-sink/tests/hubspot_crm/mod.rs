//! Shared by the stack tests of the sink against the CRM stand-in in HubSpot mode (reconcile,
//! refusals): the stand-in served in-process with the settings a test chooses, a person's edits
//! and deletes through its admin API, the crm-sink binary and its `setup` and `reconcile`
//! commands pointed at it, and the sink's ops endpoints read.
//!
//! `common::CrmStandIn` serves the stand-in with faults only, and `SinkRun::start` takes one, so
//! these tests start the sink here from `SinkRun`'s group and database.
//!
//! Like every crm-sink stack test, these need the lead topics to themselves: a sink reads every
//! lead written after its start, so a crm-sink of another test binary running at the same time
//! reads this test's leads, and this one reads its leads, into its read model and its CRM.
//! `ONE_AT_A_TIME` orders the tests of one binary, and `scripts/test` runs binaries one after
//! another. Assertions that count the whole CRM or the whole read model first check
//! [`assert_no_foreign_leads`], so that such a clash says so instead of failing on a count.

#![allow(dead_code)] // each test binary uses part of this

use std::process::Output;
use std::time::Duration;

use leadflow_core::contract::records::EnrichmentStatus;
use leadflow_testkit::stand_in::StandInServer;
use leadflow_testkit::{ServiceProcess, Stack, eventually};
use serde_json::{Map, Value, json};
use stand_ins::crm::Settings;
use time::OffsetDateTime;

use crate::common::{SinkRun, enriched, produce_records};

/// The CRM stand-in in HubSpot mode on a port of the OS's choosing, stopped when dropped.
pub struct HubSpotCrm(StandInServer);

impl HubSpotCrm {
    pub async fn start(settings: Settings) -> HubSpotCrm {
        HubSpotCrm(
            StandInServer::start(|listener, stop| stand_ins::crm::serve_with(listener, settings, stop)).await,
        )
    }

    /// Every contact by `leadflow_id`: `{"id","properties","archived","versionHistory",…}`.
    pub async fn contacts(&self) -> Map<String, Value> {
        self.get("/__admin/contacts").await["contacts"].as_object().unwrap().clone()
    }

    /// The contacts of leads whose id starts with `prefix`.
    pub async fn contacts_of(&self, prefix: &str) -> Map<String, Value> {
        self.contacts().await.into_iter().filter(|(lead, _)| lead.starts_with(prefix)).collect()
    }

    /// A person deletes the contact (HubSpot archives it).
    pub async fn delete(&self, lead: &str) {
        let response = reqwest::Client::new()
            .delete(format!("{}/__admin/contacts/{lead}", self.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "delete {lead}: {}", response.text().await.unwrap());
    }

    /// A person edits the contact: `properties` merged as they are, unchecked.
    pub async fn edit(&self, lead: &str, properties: Value) {
        let response = reqwest::Client::new()
            .patch(format!("{}/__admin/contacts/{lead}", self.base_url))
            .json(&json!({ "properties": properties }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "edit {lead}: {}", response.text().await.unwrap());
    }

    /// A new day for the daily limit.
    pub async fn reset_daily_limit(&self) {
        let response = reqwest::Client::new()
            .post(format!("{}/__admin/daily/reset", self.base_url))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.text().await.unwrap());
    }

    /// A counter of `GET /__admin/stats` ([`stand_ins::crm::HubSpotStats`], camelCase).
    pub async fn stat(&self, name: &str) -> u64 {
        let stats = self.stats().await;
        stats[name].as_u64().unwrap_or_else(|| panic!("no {name} in {stats}"))
    }
}

impl std::ops::Deref for HubSpotCrm {
    type Target = StandInServer;
    fn deref(&self) -> &StandInServer {
        &self.0
    }
}

/// What `SinkRun::env` gives, with the CRM at `crm`.
pub fn sink_env(
    run: &SinkRun,
    stack: &Stack,
    instance: &str,
    crm: &HubSpotCrm,
) -> Vec<(&'static str, String)> {
    run.env_for(stack, instance, &crm.base_url)
}

/// A crm-sink of `run`'s group and database delivering to `crm`, once it consumes; and the
/// address of its ops endpoints.
pub async fn start_sink(
    run: &SinkRun,
    stack: &Stack,
    crm: &HubSpotCrm,
    extra: &[(&'static str, String)],
) -> (ServiceProcess, String) {
    let mut env = sink_env(run, stack, "a", crm);
    env.extend(extra.iter().cloned());
    let (mut sink, ops) =
        ServiceProcess::spawn_against(stack, env!("CARGO_BIN_EXE_crm-sink"), &env).await.unwrap();
    sink.wait_for_log("consuming", Duration::from_secs(60)).await.unwrap();
    (sink, ops)
}

/// SIGTERM, and a clean exit: everything the sink did is committed.
pub async fn stop(sink: &mut ServiceProcess) {
    sink.signal(libc::SIGTERM).unwrap();
    let status = sink.wait_exit(Duration::from_secs(30)).await.unwrap();
    assert_eq!(status.code(), Some(0), "{}", sink.logs());
}

/// `crm-sink <args>` (`setup`, `reconcile …`) against the stack, `run`'s database and `crm`, to
/// its end.
pub async fn crm_sink_command(run: &SinkRun, stack: &Stack, crm: &HubSpotCrm, args: &[&str]) -> Output {
    let mut env = leadflow_testkit::service_env(stack, "127.0.0.1:0");
    env.extend(sink_env(run, stack, "command", crm));
    tokio::process::Command::new(env!("CARGO_BIN_EXE_crm-sink"))
        .args(args)
        .envs(env)
        .env("LEADFLOW_TELEMETRY__LOG_FORMAT", "text")
        .output()
        .await
        .unwrap()
}

/// The value of the unlabelled metric `name` in the sink's `/metrics`.
pub async fn metric(ops: &str, name: &str) -> Option<f64> {
    let text = reqwest::get(format!("http://{ops}/metrics")).await.ok()?.text().await.ok()?;
    text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Waits until the sink's metric `name` reads `value`.
pub async fn wait_for_metric(ops: &str, name: &str, value: f64, deadline: Duration) {
    eventually(&format!("{name} {value}"), deadline, || async move {
        match metric(ops, name).await {
            Some(v) if v == value => Ok(Some(())),
            seen => Err(format!("{name} is {seen:?}")),
        }
    })
    .await
    .unwrap();
}

/// The sink's `/readyz`: its status and body.
pub async fn readiness(ops: &str) -> Result<(u16, String), String> {
    let response = reqwest::get(format!("http://{ops}/readyz")).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    Ok((status, response.text().await.map_err(|e| e.to_string())?))
}

/// Writes `count` Verified leads `{prefix}-00`, `{prefix}-01`, … (enriched now); their ids.
pub async fn produce_verified_leads(stack: &Stack, prefix: &str, count: usize) -> Vec<String> {
    let now = OffsetDateTime::now_utc();
    let leads: Vec<String> = (0..count).map(|i| format!("{prefix}-{i:02}")).collect();
    let records: Vec<_> =
        leads.iter().map(|lead| enriched(lead, "Ada Lovelace", EnrichmentStatus::Verified, now)).collect();
    produce_records(stack, &records).await;
    leads
}

/// Fails, saying why, when `run`'s read model holds leads that belong in the CRM and are not
/// this test's (ids not starting with `prefix`): another test binary's, written meanwhile.
pub async fn assert_no_foreign_leads(run: &SinkRun, stack: &Stack, prefix: &str) {
    let page = run.store(stack).await.page_for_crm(None, None, 1000).await.unwrap();
    let foreign: Vec<&str> =
        page.iter().map(|l| l.view.key.as_str()).filter(|key| !key.starts_with(prefix)).collect();
    assert!(
        foreign.is_empty(),
        "another test binary's crm-sink ran meanwhile: its leads reached this sink, so the counts \
         below would not be this test's alone. Run crm-sink's stack tests one binary at a time. \
         Foreign leads: {foreign:?}"
    );
}

/// Waits until every one of `leads` is synced at `version` in the read model.
pub async fn wait_synced(run: &SinkRun, stack: &Stack, leads: &[String], version: u64, deadline: Duration) {
    let store = run.store(stack).await;
    eventually(&format!("{} leads synced at v{version}", leads.len()), deadline, || {
        let store = store.clone();
        async move {
            let found = store.load(leads).await.map_err(|e| e.to_string())?;
            let synced = found.values().filter(|s| s.view.synced_version == version).count();
            if synced == leads.len() {
                Ok(Some(()))
            } else {
                Err(format!("{synced} of {} synced", leads.len()))
            }
        }
    })
    .await
    .unwrap();
}
