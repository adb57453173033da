//! A rebalance while a batch waits on the CRM's 429: the waiting instance must not commit the
//! partitions it lost. 60 Verified leads against a CRM (the stand-in in HubSpot mode, whose 429
//! carries no `Retry-After`) that takes one request per 10 s; a
//! second sink joins during the first one's paused wait. Each lead ends in the CRM once, and
//! `crm.deliveries.v1` (`read_committed`) holds exactly one receipt per lead.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{CrmStandIn, ONE_AT_A_TIME, SinkRun, enriched, produce_records, run_id};
use leadflow_core::contract::records::{CrmDelivery, EnrichmentStatus};
use leadflow_core::contract::topics;
use leadflow_testkit::kafka::read_at_least;
use leadflow_testkit::{Stack, eventually};
use serde_json::json;
use time::OffsetDateTime;

const LEADS: usize = 60;

#[tokio::test]
async fn a_batch_waiting_on_the_crms_429_when_an_instance_joins_is_abandoned_not_committed() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let crm = CrmStandIn::start(json!({ "burstLimit": 1, "burstWindowMs": 10000 })).await;
    let run = SinkRun::new(&stack);
    let id = run_id();
    let now = OffsetDateTime::now_utc();
    let leads: Vec<String> = (0..LEADS).map(|i| format!("{id}-{i}")).collect();
    let records: Vec<_> =
        leads.iter().map(|lead| enriched(lead, "Ada Lovelace", EnrichmentStatus::Verified, now)).collect();
    produce_records(&stack, &records).await;

    // Small CRM batches, so that one poll batch needs several requests and meets the limit.
    let small = [("LEADFLOW_CRM__HTTP__BATCH_SIZE", "10".to_owned())];
    let mut first = run.start(&stack, "a", &crm, &small).await;
    first.wait_for_log("consumption paused", Duration::from_secs(60)).await.unwrap();
    let _second = run.start(&stack, "b", &crm, &small).await;
    first.wait_for_log("batch abandoned to a rebalance", Duration::from_secs(60)).await.unwrap();

    eventually("every lead in the CRM", Duration::from_secs(300), || {
        let crm = &crm;
        let id = &id;
        async move {
            let ours = crm.contacts().await.keys().filter(|k| k.starts_with(id.as_str())).count();
            if ours < LEADS { Err(format!("{ours} of {LEADS}")) } else { Ok(Some(())) }
        }
    })
    .await
    .unwrap();
    let store = run.store(&stack).await;
    eventually("every lead synced in the read model", Duration::from_secs(60), || {
        let (store, leads) = (store.clone(), leads.clone());
        async move {
            let found = store.load(&leads).await.map_err(|e| e.to_string())?;
            let synced = found.values().filter(|s| s.view.synced_version == 1).count();
            if synced < LEADS { Err(format!("{synced} of {LEADS} synced")) } else { Ok(Some(())) }
        }
    })
    .await
    .unwrap();
    // The read model is saved before the receipts' transaction commits: wait for them.
    let receipts = read_at_least(
        &stack,
        topics::CRM_DELIVERIES,
        &run.deliveries_from,
        &id,
        LEADS,
        Duration::from_secs(60),
    )
    .await;
    let receipts: Vec<CrmDelivery> =
        common::decode_all(&stack, receipts.iter().filter(|r| r.key.starts_with(&id))).await;
    let mut per_lead: HashMap<&str, usize> = HashMap::new();
    for receipt in &receipts {
        *per_lead.entry(receipt.lead_id.as_str()).or_default() += 1;
    }
    let repeated: Vec<_> = per_lead.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "receipts repeated: {repeated:?}");
    assert_eq!(per_lead.len(), LEADS, "one receipt per lead");
}
