//! Projects on the real stack (Kafka, the registry, MongoDB) with the nationalize stand-in:
//! two projects submit the same leadId with the same name, and each gets its own enrichment,
//! under its own lead key, on that key's partition, from its own cache entry.

mod common;

use std::time::Duration;

use common::{EnricherRun, StandIn, java_partition_of, json_faults, produce_names, run_id};
use futures::TryStreamExt;
use leadflow_core::contract::project::DEFAULT_PROJECT;
use leadflow_core::contract::records::{LeadEnriched, NameSubmitted, TopicRecord};
use leadflow_core::contract::topics;
use leadflow_core::store::documents::{NATIONALIZE_CACHE, PredictionDoc};
use leadflow_core::store::mongo::MongoConfig;
use leadflow_testkit::kafka::{end_offsets, read_from_within};
use leadflow_testkit::{Stack, eventually};
use mongodb::bson::doc;
use time::OffsetDateTime;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_projects_with_one_lead_id_and_one_name_are_enriched_apart() {
    let stack = Stack::get();
    let stand_in = StandIn::start(json_faults(0, 0.0, None, 86_400)).await;
    let run = EnricherRun::new(&stack);
    let id = run_id();
    let lead_id = format!("{id}-0");
    let name = format!("N{id}x0 Example");
    let submitted = |project: &str| NameSubmitted {
        project_id: project.to_owned(),
        lead_id: lead_id.clone(),
        name: name.clone(),
        email: None,
        company: None,
        submitted_at: OffsetDateTime::now_utc(),
    };
    let inputs = [submitted(DEFAULT_PROJECT), submitted("acme")];
    let keys: Vec<String> = inputs.iter().map(|n| n.key().into_owned()).collect();
    assert_eq!(keys, [lead_id.clone(), format!("acme/{lead_id}")]);
    let names_from = end_offsets(&stack, topics::NAMES);
    let _enricher = run.start(&stack, &stand_in, "a", &[]).await;
    produce_names(&stack, &inputs).await;

    let records =
        read_from_within(&stack, topics::ENRICHED, &run.enriched_from, Duration::from_secs(60), |r| {
            keys.iter().all(|key| r.iter().any(|record| &record.key == key))
        })
        .await;
    let partitions = end_offsets(&stack, topics::ENRICHED).len() as i32;
    let names_read = read_from_within(&stack, topics::NAMES, &names_from, Duration::from_secs(30), |r| {
        keys.iter().all(|key| r.iter().any(|record| &record.key == key))
    })
    .await;
    for (input, key) in inputs.iter().zip(&keys) {
        let ours: Vec<_> = records.iter().filter(|r| &r.key == key).collect();
        assert_eq!(ours.len(), 1, "{key}: one LeadEnriched");
        let enriched: Vec<LeadEnriched> = common::decode_all(&stack, ours.iter().copied()).await;
        let enriched = &enriched[0];
        assert_eq!(
            (enriched.project_id.as_str(), enriched.lead_id.as_str()),
            (input.project_id.as_str(), lead_id.as_str()),
            "{key}: the output carries the input's project"
        );
        assert_eq!(enriched.key(), key.as_str());
        let expected = java_partition_of(key, partitions);
        assert_eq!(ours[0].partition, expected, "{key}: LeadEnriched on its key's partition");
        let name_record = names_read.iter().find(|r| &r.key == key).unwrap();
        assert_eq!(name_record.partition, expected, "{key}: NameSubmitted on the same partition");
    }
    // One cache document per project for the one name: no project reads another's.
    let config = MongoConfig { uri: stack.mongodb_uri.clone(), database: run.database.clone() };
    let cache = leadflow_core::store::mongo::client(&config, "test")
        .await
        .unwrap()
        .database(&run.database)
        .collection::<PredictionDoc>(NATIONALIZE_CACHE);
    let lookup = enricher::rules::lookup_key(&name).unwrap();
    let stored = eventually("both cache documents are stored", Duration::from_secs(10), || {
        let cache = cache.clone();
        async move {
            let found: Vec<PredictionDoc> = cache
                .find(doc! {})
                .await
                .map_err(|e| e.to_string())?
                .try_collect()
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((found.len() >= 2).then_some(found))
        }
    })
    .await
    .unwrap();
    let mut ids: Vec<(String, String)> = stored.into_iter().map(|d| (d.id, d.project_id)).collect();
    ids.sort();
    assert_eq!(
        ids,
        [(format!("acme:{lookup}"), "acme".to_owned()), (lookup.clone(), DEFAULT_PROJECT.to_owned())]
    );
}
