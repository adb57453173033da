//! Projects on the real stack (Kafka, the registry, MongoDB), with one CRM stand-in (HubSpot
//! mode) per project connection: three projects use the same leadId; the two with a connection each reach only
//! their own CRM, and the third, with none, stays in the read model, undelivered and counted.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{CrmStandIn, ONE_AT_A_TIME, SinkRun, enriched, produce_records, run_id, scored};
use futures::TryStreamExt;
use leadflow_core::contract::project::lead_key;
use leadflow_core::contract::records::{CrmDelivery, DeadLetter, EnrichmentStatus, LeadEnriched, Stage};
use leadflow_core::contract::topics;
use leadflow_core::store::documents::LEADS;
use leadflow_core::store::mongo::MongoConfig;
use leadflow_testkit::kafka::read_to_end;
use leadflow_testkit::{Stack, eventually};
use mongodb::bson::{Document, doc};
use serde_json::json;
use time::OffsetDateTime;

const WAIT: Duration = Duration::from_secs(60);

/// The value of `leadflow_crm_sink_unconfigured_project_leads_total{project="<project>"}` (the
/// registry prefixes `leadflow_`), 0 when absent.
async fn unconfigured_count(ops: &str, project: &str) -> Result<u64, String> {
    let text = reqwest::get(format!("http://{ops}/metrics"))
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    let series = format!("leadflow_crm_sink_unconfigured_project_leads_total{{project=\"{project}\"}} ");
    Ok(text
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |value| value.trim().parse().unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_project_reaches_only_its_own_crm_and_one_without_a_connection_is_kept_and_counted() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let default_crm = CrmStandIn::start(json!({})).await;
    let acme_crm = CrmStandIn::start(json!({})).await;
    // Configured for a project that has no leads here: it must receive nothing.
    let acme_eu_crm = CrmStandIn::start(json!({})).await;
    let run = SinkRun::new(&stack);
    let (sink, ops) = run
        .start_with_ops(
            &stack,
            "a",
            &default_crm,
            &[
                ("LEADFLOW_CRM__PROJECTS__ACME__BASE_URL", acme_crm.base_url.clone()),
                ("LEADFLOW_CRM__PROJECTS__ACME__ACCESS_TOKEN", "acme-crm-token-0123".to_owned()),
                // `_` in an environment key is `-` in the project id.
                ("LEADFLOW_CRM__PROJECTS__ACME_EU__BASE_URL", acme_eu_crm.base_url.clone()),
            ],
        )
        .await;
    let started = sink.logs();
    let line = started.lines().find(|l| l.contains("delivering to the CRM")).unwrap();
    assert!(
        line.contains("\"acme\"") && line.contains("\"acme-eu\"") && line.contains("\"default\""),
        "{line}"
    );

    let id = run_id();
    let lead_id = format!("{id}-x");
    let now = OffsetDateTime::now_utc();
    let of_project = |project: &str, surname: &str| LeadEnriched {
        project_id: project.to_owned(),
        ..enriched(&lead_id, &format!("Ada {surname}"), EnrichmentStatus::Verified, now)
    };
    produce_records(
        &stack,
        &[of_project("default", "Default"), of_project("acme", "Acme"), of_project("globex", "Globex")],
    )
    .await;
    let keys: BTreeMap<&str, String> =
        ["default", "acme", "globex"].into_iter().map(|p| (p, lead_key(p, &lead_id).into_owned())).collect();
    assert_eq!(
        (keys["default"].as_str(), keys["acme"].clone()),
        (lead_id.as_str(), format!("acme/{lead_id}"))
    );

    // Each configured project's lead is delivered; the unconfigured one's view is saved in the
    // same batch, undelivered.
    let store = run.store(&stack).await;
    let views = eventually("the three leads in the read model", WAIT, || {
        let store = store.clone();
        let keys: Vec<String> = keys.values().cloned().collect();
        async move {
            let found = store.load(&keys).await.map_err(|e| e.to_string())?;
            let delivered = |key: &String| found.get(key).is_some_and(|s| s.view.synced_version == 1);
            let ready = found.len() == 3 && delivered(&keys[0]) && delivered(&keys[1]);
            Ok::<_, String>(ready.then_some(found))
        }
    })
    .await
    .unwrap();
    let globex = &views[&keys["globex"]].view;
    assert_eq!((globex.synced_version, globex.last_delivery.as_ref()), (0, None), "globex has no CRM");
    assert_eq!(globex.project_id, "globex");

    // Each CRM holds its own project's contact under the bare leadId, and nothing else of this run.
    let ours = |contacts: serde_json::Map<String, serde_json::Value>| -> Vec<(String, String)> {
        contacts
            .into_iter()
            .filter(|(id_, _)| id_.contains(&id))
            .map(|(id_, c)| {
                assert_eq!(common::version_of(&c), Some(1), "{c}");
                (id_, c["properties"]["lastname"].as_str().unwrap().to_owned())
            })
            .collect()
    };
    assert_eq!(ours(default_crm.contacts().await), [(lead_id.clone(), "Default".to_owned())]);
    assert_eq!(ours(acme_crm.contacts().await), [(lead_id.clone(), "Acme".to_owned())]);
    assert!(acme_eu_crm.contacts().await.is_empty(), "no lead went through another project's connection");

    // Two documents for the one leadId of the two delivered projects, and the third's, each
    // under its lead key and naming its project.
    let config = MongoConfig { uri: stack.mongodb_uri.clone(), database: run.database.clone() };
    let documents: Vec<Document> = leadflow_core::store::mongo::client(&config, "test")
        .await
        .unwrap()
        .database(&run.database)
        .collection::<Document>(LEADS)
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let mut ids: Vec<(&str, &str)> =
        documents.iter().map(|d| (d.get_str("_id").unwrap(), d.get_str("projectId").unwrap())).collect();
    ids.sort();
    // Sorted by _id: "acme/…", then the bare id ("cs…"), then "globex/…".
    let acme_key = format!("acme/{lead_id}");
    let globex_key = format!("globex/{lead_id}");
    assert_eq!(
        ids,
        [(acme_key.as_str(), "acme"), (lead_id.as_str(), "default"), (globex_key.as_str(), "globex")]
    );

    // The unconfigured project's lead is counted, again when it is due again, and logged once.
    eventually("the globex lead is counted", WAIT, || async {
        Ok::<_, String>((unconfigured_count(&ops, "globex").await? == 1).then_some(()))
    })
    .await
    .unwrap();
    let mut rescored = scored(&lead_id, 1, 80.0, Stage::Hot, now);
    rescored.project_id = "globex".into();
    produce_records(&stack, &[rescored]).await;
    eventually("the globex lead is counted again", WAIT, || async {
        Ok::<_, String>((unconfigured_count(&ops, "globex").await? == 2).then_some(()))
    })
    .await
    .unwrap();
    assert_eq!(unconfigured_count(&ops, "acme").await.unwrap(), 0);
    let logged =
        sink.logs().lines().filter(|l| l.contains("has no CRM connection") && l.contains("globex")).count();
    assert_eq!(logged, 1, "at most once per project per minute");

    // Receipts: one per delivered project, naming it; none, and no dead letter, for globex.
    let records = read_to_end(&stack, topics::CRM_DELIVERIES, &run.deliveries_from, WAIT).await;
    let receipts: Vec<CrmDelivery> =
        common::decode_all(&stack, records.iter().filter(|r| keys.values().any(|k| &r.key == k))).await;
    let mut receipts: Vec<(&str, &str, u64)> =
        receipts.iter().map(|r| (r.project_id.as_str(), r.lead_id.as_str(), r.version)).collect();
    receipts.sort();
    assert_eq!(receipts, [("acme", lead_id.as_str(), 1), ("default", lead_id.as_str(), 1)]);
    let letters = read_to_end(&stack, topics::DLQ, &run.dlq_from, WAIT).await;
    let letters: Vec<DeadLetter> =
        common::decode_all(&stack, letters.iter().filter(|r| r.key.contains(&lead_id))).await;
    assert!(letters.is_empty(), "nothing is dead-lettered: {letters:?}");
    assert!(!sink.logs().contains("acme-crm-token-0123"), "the token is in no log line");
}
