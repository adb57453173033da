//! The crash window that a kill rarely hits, made deterministic: the sink's batch work against
//! real MongoDB and the CRM stand-in (typed input, so no registry), run twice on the same batch as
//! if the process had died after saving the views and before the Kafka commit. The redo must
//! not call the CRM again and must emit the very receipts the lost commit carried.

mod common;

use common::{CrmStandIn, enriched, run_id};
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
use leadflow_testkit::{Stack, unique};
use serde_json::json;
use time::OffsetDateTime;

async fn processor(stack: &Stack, crm: &CrmStandIn) -> SinkProcessor {
    let database = unique("crm_sink_redo").replace('-', "_");
    let mongo = MongoConfig { uri: stack.mongodb_uri.clone(), database: database.clone() };
    let store = LeadStore::new(leadflow_core::store::mongo::client(&mongo, "test").await.unwrap(), &database);
    store.ensure_indexes().await.unwrap();
    let config: HttpDestinationConfig = serde_json::from_value(json!({
        "base_url": crm.base_url, "access_token": "", "batch_size": 100, "requests_per_window": 190,
        "window_ms": 10000, "request_timeout_ms": 5000, "max_attempts": 3, "backoff_initial_ms": 10,
        "backoff_max_ms": 100,
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
    let processor = processor(&stack, &crm).await;
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
    let requests = crm.stats().await["requests"].clone();

    // The commit of `first` is lost: the same records come again.
    let redo = processor.process_batch(&batch).await;
    assert_eq!(receipts(&redo), first_receipts, "the same receipts, deliveredAt included");
    assert_eq!(crm.stats().await["requests"], requests, "the CRM is not called again");

    // Once committed, the trigger records are never read again; later records of the same leads
    // that change nothing the CRM shows deliver nothing and emit nothing.
    let later = vec![input(&enriched(&ada, "Ada Lovelace", EnrichmentStatus::Verified, now), 12)];
    let outputs = processor.process_batch(&later).await;
    assert!(receipts(&outputs).is_empty(), "no receipt without a delivery");
    assert_eq!(crm.stats().await["requests"], requests);
}

#[tokio::test]
async fn a_batch_redone_before_its_views_were_saved_delivers_again_under_the_same_keys() {
    let stack = Stack::get();
    // The CRM applies the write and drops the connection every time: the sink never hears back,
    // so its batch fails before anything is saved, as after a crash mid-delivery.
    let crm = CrmStandIn::start(json!({ "dropAfterWriteRate": 1.0 })).await;
    let processor = processor(&stack, &crm).await;
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

    crm.set_faults(json!({})).await;
    let outputs = processor.process_batch(&batch).await;
    let receipts = receipts(&outputs);
    assert_eq!(receipts.len(), 1);
    let stats = crm.stats().await;
    assert!(stats["repeatedIdempotencyKeys"].as_u64().unwrap() >= 1, "the redo reused the key: {stats}");
    let contacts = crm.contacts().await;
    assert_eq!(contacts[lead.as_str()]["version"], 1);
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
