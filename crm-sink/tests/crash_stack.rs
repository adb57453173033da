//! Exactly-once delivery under crashes, on the real stack: 2,000 Verified leads (half of them
//! with a later stage change, so two versions), the crm-sink killed with SIGKILL three times
//! while it delivers, and the CRM stand-in dropping connections after applying writes. At the
//! end the CRM holds every lead once, at its latest version, and `crm.deliveries.v1` under
//! `read_committed` holds exactly one receipt per delivered `(leadId, version)`.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{CrmStandIn, ONE_AT_A_TIME, SinkRun, enriched, produce_records, run_id, scored};
use leadflow_core::contract::records::{CrmDelivery, DeliveryStatus, EnrichmentStatus, LeadScored, Stage};
use leadflow_core::contract::topics;
use leadflow_testkit::kafka::read_to_end;
use leadflow_testkit::{Stack, eventually};
use serde_json::{Value, json};
use time::OffsetDateTime;

const LEADS: usize = 2000;
const KILLS: usize = 3;

/// Leads whose CRM contact holds their latest version.
fn up_to_date(contacts: &serde_json::Map<String, Value>, expected: &HashMap<String, u64>) -> usize {
    expected
        .iter()
        .filter(|(lead, version)| contacts.get(*lead).is_some_and(|c| c["version"] == json!(version)))
        .count()
}

#[tokio::test]
async fn every_lead_is_delivered_once_at_its_latest_version_through_kills_and_dropped_connections() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let crm = CrmStandIn::start(json!({ "latencyMs": 20, "dropAfterWriteRate": 0.2 })).await;
    let run = SinkRun::new(&stack);

    let id = run_id();
    let now = OffsetDateTime::now_utc();
    let leads: Vec<String> = (0..LEADS).map(|i| format!("{id}-{i}")).collect();
    let enriched_records: Vec<_> =
        leads.iter().map(|lead| enriched(lead, "Ada Lovelace", EnrichmentStatus::Verified, now)).collect();
    // Half the leads also get a stage: a second CRM-visible change, so a second version.
    let scored_records: Vec<LeadScored> =
        leads[..LEADS / 2].iter().map(|lead| scored(lead, 1, 20.0, Stage::Warm, now)).collect();
    produce_records(&stack, &enriched_records).await;
    produce_records(&stack, &scored_records).await;
    let expected: HashMap<String, u64> =
        leads.iter().enumerate().map(|(i, lead)| (lead.clone(), if i < LEADS / 2 { 2 } else { 1 })).collect();

    let small_batches = [
        ("LEADFLOW_CONSUMER__MAX_BATCH_RECORDS", "100".to_owned()),
        ("LEADFLOW_CRM__HTTP__BATCH_SIZE", "20".to_owned()),
        ("LEADFLOW_CRM__HTTP__BACKOFF_INITIAL_MS", "20".to_owned()),
    ];
    for kill in 1..=KILLS {
        let mut sink = run.start(&stack, "a", &crm, &small_batches).await;
        let writes_at_start = crm.stats().await["appliedWrites"].as_u64().unwrap();
        eventually(
            &format!("the CRM applies 400 more writes before kill {kill}"),
            Duration::from_secs(120),
            || async {
                let writes = crm.stats().await["appliedWrites"].as_u64().unwrap();
                Ok((writes >= writes_at_start + 400).then_some(()))
            },
        )
        .await
        .unwrap();
        sink.signal(libc::SIGKILL).unwrap();
        sink.wait_exit(Duration::from_secs(10)).await.unwrap();
        let done = up_to_date(&crm.contacts().await, &expected);
        assert!(done < LEADS, "kill {kill} landed after the work was done ({done} up to date)");
        eprintln!("kill {kill}: {done} of {LEADS} contacts up to date");
    }

    let mut sink = run.start(&stack, "a", &crm, &small_batches).await;
    let store = run.store(&stack).await;
    eventually("every lead synced at its latest version", Duration::from_secs(300), || {
        let store = store.clone();
        let leads = leads.clone();
        let expected = &expected;
        async move {
            let found = store.load(&leads).await.map_err(|e| e.to_string())?;
            let synced = found.values().filter(|s| s.view.synced_version == expected[&s.view.key]).count();
            if synced < LEADS { Err(format!("{synced} of {LEADS} synced")) } else { Ok(Some(())) }
        }
    })
    .await
    .unwrap();
    sink.signal(libc::SIGTERM).unwrap();
    assert_eq!(sink.wait_exit(Duration::from_secs(30)).await.unwrap().code(), Some(0), "{}", sink.logs());

    let contacts = crm.contacts().await;
    let ours: Vec<&String> = contacts.keys().filter(|k| k.starts_with(&id)).collect();
    assert_eq!(ours.len(), LEADS, "exactly one contact per lead");
    assert_eq!(up_to_date(&contacts, &expected), LEADS, "every contact at its latest version");
    let stats = crm.stats().await;
    assert!(stats["droppedConnections"].as_u64().unwrap() > 0, "the fault fired: {stats}");
    eprintln!("CRM stand-in: {stats}");

    let records =
        read_to_end(&stack, topics::CRM_DELIVERIES, &run.deliveries_from, Duration::from_secs(60)).await;
    let receipts: Vec<CrmDelivery> =
        common::decode_all(&stack, records.iter().filter(|r| r.key.starts_with(&id))).await;
    let mut per_version: HashMap<(String, u64), usize> = HashMap::new();
    for receipt in &receipts {
        assert_eq!(receipt.status, DeliveryStatus::Delivered, "{receipt:?}");
        *per_version.entry((receipt.lead_id.clone(), receipt.version)).or_default() += 1;
    }
    let repeated: Vec<_> = per_version.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "receipts repeated: {repeated:?}");
    for (lead, version) in &expected {
        assert_eq!(per_version.get(&(lead.clone(), *version)), Some(&1), "the receipt of {lead} v{version}");
    }
    eprintln!("{} receipts for {} leads", receipts.len(), LEADS);
}
