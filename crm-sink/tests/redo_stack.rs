//! The crash windows that a kill rarely hits, made deterministic: the sink's batch work against
//! real MongoDB and the CRM stand-in in HubSpot mode (typed input, so no registry), run twice on
//! the same batch as if the process had died after saving the views and before the Kafka commit
//! (the redo must not call the CRM again and must emit the very receipts the lost commit
//! carried), or during the delivery (the redo writes the same version again).

mod common;

use std::time::Duration;

use common::{CrmStandIn, enriched, run_id, version_history, version_of};
use crm_sink::connections::Connections;
use crm_sink::destination::Destination;
use crm_sink::http_destination::{HttpDestination, HttpDestinationConfig, HttpDestinationMetrics};
use crm_sink::metrics::SinkMetrics;
use crm_sink::processor::{Fact, SinkProcessor};
use crm_sink::store::LeadStore;
use leadflow_core::contract::project::DEFAULT_PROJECT;
use leadflow_core::contract::records::{
    CrmDelivery, DeliveryStatus, EnrichmentStatus, LeadEnriched, RecordPosition, TopicRecord,
};
use leadflow_core::contract::topics;
use leadflow_core::stage::pause::PauseSignal;
use leadflow_core::stage::typed::{Decoded, Emit, Transform};
use leadflow_core::store::mongo::MongoConfig;
use leadflow_testkit::{Stack, eventually, unique};
use serde_json::json;
use time::OffsetDateTime;

/// The sink's batch work with a database of its own, delivering to `crm`, each request given
/// `request_timeout_ms`.
async fn processor(stack: &Stack, crm: &CrmStandIn, request_timeout_ms: u64) -> SinkProcessor {
    let database = unique("crm_sink_redo").replace('-', "_");
    let mongo = MongoConfig { uri: stack.mongodb_uri.clone(), database: database.clone() };
    let store = LeadStore::new(leadflow_core::store::mongo::client(&mongo, "test").await.unwrap(), &database);
    store.ensure_indexes().await.unwrap();
    let config: HttpDestinationConfig = serde_json::from_value(json!({
        "base_url": crm.base_url, "access_token": "", "batch_size": 100, "requests_per_window": 190,
        "window_ms": 10000, "request_timeout_ms": request_timeout_ms, "max_attempts": 3,
        "backoff_initial_ms": 10, "backoff_max_ms": 100, "late_apply_window": "60s",
        "daily_limit_probe": "15m",
    }))
    .unwrap();
    let registry = prometheus::Registry::new();
    let destination = Destination::Http(
        HttpDestination::new(&config, HttpDestinationMetrics::register(&registry).unwrap()).unwrap(),
    );
    let connections = Connections::per_project([(DEFAULT_PROJECT.to_owned(), destination)]);
    SinkProcessor::new(store, connections, SinkMetrics::register(&registry).unwrap())
}

fn input(record: &LeadEnriched, offset: i64) -> Decoded<Fact> {
    Decoded {
        position: RecordPosition { topic: topics::ENRICHED.into(), partition: 0, offset },
        key: Some(record.key().as_bytes().to_vec()),
        record: Fact::Enriched(record.clone()),
    }
}

fn receipts(outputs: &[Emit]) -> Vec<CrmDelivery> {
    outputs
        .iter()
        .filter_map(|emit| match emit {
            Emit::Record { record, .. } => record.decode::<CrmDelivery>(),
            Emit::DeadLetter(_) => None,
        })
        .collect()
}

#[tokio::test]
async fn a_batch_redone_after_its_views_were_saved_re_emits_its_receipts_without_calling_the_crm() {
    let stack = Stack::get();
    let crm = CrmStandIn::start(json!({})).await;
    let processor = processor(&stack, &crm, 5000).await;
    let id = run_id();
    let now = OffsetDateTime::now_utc();
    let (ada, zoe) = (format!("{id}-ada"), format!("{id}-zoe"));
    let batch = vec![
        input(&enriched(&ada, "Ada Lovelace", EnrichmentStatus::Verified, now), 10),
        input(&enriched(&zoe, "Zoë Ångström", EnrichmentStatus::Verified, now), 11),
    ];

    let first = processor.process_batch(&batch).await;
    let first_receipts = receipts(&first);
    assert_eq!(first_receipts.len(), 2, "{first_receipts:?}");
    assert!(first_receipts.iter().all(|r| r.version == 1 && r.status == DeliveryStatus::Delivered));
    let requests = crm.hubspot_stats().await.requests;

    // The commit of `first` is lost: the same records come again.
    let redo = processor.process_batch(&batch).await;
    assert_eq!(receipts(&redo), first_receipts, "the same receipts, deliveredAt included");
    assert_eq!(crm.hubspot_stats().await.requests, requests, "the CRM is not called again");

    // Once committed, the trigger records are never read again; later records of the same leads
    // that change nothing the CRM shows deliver nothing and emit nothing.
    let later = vec![input(&enriched(&ada, "Ada Lovelace", EnrichmentStatus::Verified, now), 12)];
    let outputs = processor.process_batch(&later).await;
    assert!(receipts(&outputs).is_empty(), "no receipt without a delivery");
    assert_eq!(crm.hubspot_stats().await.requests, requests);
}

#[tokio::test]
async fn a_batch_redone_before_its_views_were_saved_writes_the_same_version_again() {
    let stack = Stack::get();
    // The CRM holds every write for 3 s, past the sink's 500 ms timeout, then applies it: the
    // sink never hears back and its read backs (each right after a timeout) find nothing yet, so
    // its batch fails before anything is saved, as after a crash mid-delivery.
    let crm = CrmStandIn::start(json!({ "lateApplyRate": 1.0, "lateApplyDelayMs": 3000 })).await;
    let processor = processor(&stack, &crm, 500).await;
    let lead = format!("{}-grace", run_id());
    let batch = vec![input(
        &enriched(&lead, "Grace Hopper", EnrichmentStatus::Verified, OffsetDateTime::now_utc()),
        5,
    )];
    assert!(
        processor.apply(batch.clone(), &PauseSignal::default()).await.is_err(),
        "the delivery never got an answer"
    );
    assert_eq!(processor.store.lead(&lead).await.unwrap(), None, "nothing saved");
    let held = crm.hubspot_stats().await.upserts;
    assert_eq!(held, 3, "one request per attempt, each held");
    // The held writes land late, all of them before the redo's.
    eventually("the held writes applied", Duration::from_secs(30), || async {
        Ok::<_, String>((crm.hubspot_stats().await.late_applies == held).then_some(()))
    })
    .await
    .unwrap();

    crm.set_faults(json!({})).await;
    let outputs = processor.process_batch(&batch).await;
    let receipts = receipts(&outputs);
    assert_eq!(receipts.len(), 1);
    assert_eq!((receipts[0].version, receipts[0].status), (1, DeliveryStatus::Delivered));
    // Last writer wins and no idempotency key: the redo is one more write of the same version.
    let contact = crm.contacts().await[lead.as_str()].clone();
    assert_eq!(version_history(&contact), vec![1; held as usize + 1], "{contact}");
    assert_eq!(version_of(&contact), Some(1));
    assert_eq!(contact["properties"]["firstname"], "Grace");
    assert_eq!(processor.store.lead(&lead).await.unwrap().unwrap().synced_version, 1);
}

trait ProcessBatch {
    async fn process_batch(&self, batch: &[Decoded<Fact>]) -> Vec<Emit>;
}

impl ProcessBatch for SinkProcessor {
    async fn process_batch(&self, batch: &[Decoded<Fact>]) -> Vec<Emit> {
        self.apply(batch.to_vec(), &PauseSignal::default()).await.unwrap_or_else(|e| panic!("{e}"))
    }
}
