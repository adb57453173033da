//! Exactly-once delivery under crashes, on the real stack, against the CRM stand-in in HubSpot
//! mode (last writer wins, no version guard): 2,000 Verified leads (half of them with a later
//! stage change, so two versions), the crm-sink killed with SIGKILL three times while it
//! delivers, and the CRM dropping connections after applying writes and applying some writes
//! late, after the sink's 1 s timeout gave up on them, so that an old write can land over a newer
//! one. At the end every contact holds its lead's latest version and the fields the read model
//! has (the sink's read back after its late-apply window repairs what a late write rolled back),
//! none is missing or archived, and `crm.deliveries.v1` under `read_committed` holds exactly one
//! receipt per delivered `(leadId, version)`.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{
    CrmStandIn, ONE_AT_A_TIME, SinkRun, differing_fields, enriched, produce_records, run_id, scored,
    version_of,
};
use crm_sink::read_model::LeadView;
use leadflow_core::contract::records::{CrmDelivery, DeliveryStatus, EnrichmentStatus, LeadScored, Stage};
use leadflow_core::contract::topics;
use leadflow_testkit::kafka::read_to_end;
use leadflow_testkit::{Stack, eventually};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

const LEADS: usize = 2000;
const KILLS: usize = 3;

/// Leads whose CRM contact holds their latest version.
fn up_to_date(contacts: &Map<String, Value>, expected: &HashMap<String, u64>) -> usize {
    expected
        .iter()
        .filter(|(lead, version)| contacts.get(*lead).and_then(version_of) == Some(**version))
        .count()
}

/// What keeps the CRM from matching the read model, lead by lead (the first few), or `None` when
/// every lead's contact is live, at the read model's latest version, with its fields.
fn mismatches(contacts: &Map<String, Value>, views: &HashMap<String, LeadView>) -> Option<String> {
    let mut wrong = Vec::new();
    for (lead, view) in views {
        let problem = match contacts.get(lead) {
            None => Some("missing".to_owned()),
            Some(c) if c["archived"] == json!(true) => Some("archived".to_owned()),
            Some(c) if version_of(c) != Some(view.version) => {
                Some(format!("holds v{:?}, the read model v{}", version_of(c), view.version))
            }
            Some(c) => Some(differing_fields(view, c)).filter(|d| !d.is_empty()).map(|d| format!("{d:?}")),
        };
        wrong.extend(problem.map(|p| format!("{lead}: {p}")));
    }
    let count = wrong.len();
    wrong.truncate(5);
    (count > 0).then(|| format!("{count} contacts differ from the read model, e.g. {wrong:?}"))
}

/// Whether some write put an older version over a newer one on this contact.
fn rolled_back(contact: &Value) -> bool {
    common::version_history(contact).windows(2).any(|w| w[1] < w[0])
}

#[tokio::test]
async fn every_lead_is_delivered_once_at_its_latest_version_through_kills_and_dropped_connections() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    // Late applies are held past the sink's request timeout below, so the sink gives up on them
    // and they land after whatever it wrote next.
    let crm = CrmStandIn::start(json!({
        "latencyMs": 20, "dropAfterWriteRate": 0.2, "lateApplyRate": 0.05, "lateApplyDelayMs": 1500,
    }))
    .await;
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
        ("LEADFLOW_CRM__HTTP__REQUEST_TIMEOUT", "1s".to_owned()),
        // Soon after, the periodic check (every 5 s while crm.reconcile_interval is non-zero,
        // as by default) reads back what those writes touched.
        ("LEADFLOW_CRM__HTTP__LATE_APPLY_WINDOW", "3s".to_owned()),
    ];
    for kill in 1..=KILLS {
        let mut sink = run.start(&stack, "a", &crm, &small_batches).await;
        let writes_at_start = crm.hubspot_stats().await.applied_writes;
        eventually(
            &format!("the CRM applies 400 more writes before kill {kill}"),
            Duration::from_secs(120),
            || async {
                let writes = crm.hubspot_stats().await.applied_writes;
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
    // A late write may still roll a contact back after its lead counted as synced: the CRM
    // matches the read model once the sink has read the contacts back and repaired them.
    let views: HashMap<String, LeadView> = eventually(
        "every contact at the read model's latest version, with its fields",
        Duration::from_secs(300),
        || {
            let (store, crm, leads) = (store.clone(), &crm, leads.clone());
            async move {
                let found = store.load(&leads).await.map_err(|e| e.to_string())?;
                let views: HashMap<String, LeadView> = found.into_iter().map(|(k, s)| (k, s.view)).collect();
                match mismatches(&crm.contacts().await, &views) {
                    Some(problem) => Err(problem),
                    None => Ok(Some(views)),
                }
            }
        },
    )
    .await
    .unwrap();
    sink.signal(libc::SIGTERM).unwrap();
    assert_eq!(sink.wait_exit(Duration::from_secs(30)).await.unwrap().code(), Some(0), "{}", sink.logs());

    let contacts = crm.contacts().await;
    let ours: Vec<&String> = contacts.keys().filter(|k| k.starts_with(&id)).collect();
    assert_eq!(ours.len(), LEADS, "exactly one contact per lead");
    assert_eq!(mismatches(&contacts, &views), None, "the CRM still matches the read model after the stop");
    for (lead, view) in &views {
        assert_eq!(view.version, expected[lead], "{lead}: the read model's latest version");
    }
    let stats = crm.hubspot_stats().await;
    assert!(stats.dropped_connections > 0, "connections were dropped: {stats:?}");
    assert!(stats.late_applies > 0, "writes were applied late: {stats:?}");
    let rolled_back = contacts.values().filter(|c| rolled_back(c)).count();
    eprintln!(
        "CRM stand-in: {stats:?}; {rolled_back} contacts were rolled back by a late write and repaired"
    );

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
