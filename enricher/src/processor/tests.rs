//! The processor's batch work with plain values in: the project's nationalize stand-in served
//! in-process on loopback, and the prediction cache in a database of each test's own on the
//! stack's MongoDB. No broker, no registry.

use leadflow_core::contract::records::{EnrichmentStatus, LeadEnriched, NameSubmitted, RecordPosition};
use leadflow_core::contract::topics;
use leadflow_core::stage::pause::PauseSignal;
use leadflow_core::stage::typed::{DeadLetterSpec, Decoded, Emit, Transform};
use leadflow_testkit::stand_in::{FIRST_NAMES, StandInServer};
use leadflow_testkit::{Stack, unique};
use stand_ins::nationalize::Faults;
use time::OffsetDateTime;

use super::EnrichProcessor;
use crate::cache::PredictionCache;
use crate::config::EnricherConfig;
use crate::metrics::EnricherMetrics;
use crate::predictor::Predictor;
use crate::rules::{self, CountryProbability, REASON_ENRICHMENT_FAILED, REASON_NO_PREDICTION};

const THRESHOLD: f64 = 0.6;

async fn stand_in(faults: Faults) -> StandInServer {
    StandInServer::start(|listener, stop| stand_ins::nationalize::serve(listener, faults, stop)).await
}

/// A processor asking `stand_in`, with its cache in a database of its own.
async fn processor(stand_in: &StandInServer) -> EnrichProcessor {
    let mut config: EnricherConfig = leadflow_core::runtime::config::load(
        &[leadflow_core::runtime::config::SHARED_DEFAULTS, crate::DEFAULTS],
        None,
    )
    .unwrap();
    config.nationalize.base_url = stand_in.base_url.clone();
    config.nationalize.requests_per_second = 1000.0;
    config.nationalize.daily_quota = 0;
    config.nationalize.max_attempts = 2;
    config.nationalize.backoff_initial = std::time::Duration::from_millis(10);
    config.mongo.uri = Stack::get().mongodb_uri;
    let database = unique("enricher_unit").replace('-', "_");
    let database =
        leadflow_core::store::mongo::client(&config.mongo, "test").await.unwrap().database(&database);
    let metrics = EnricherMetrics::register(&prometheus::Registry::new()).unwrap();
    let cache = PredictionCache::new(&database, &config.cache);
    EnrichProcessor {
        predictor: Predictor::new(&config.nationalize, cache, metrics.clone()).unwrap(),
        verified_threshold: THRESHOLD,
        provider: "nationalize.io".to_owned(),
        metrics,
    }
}

/// The submitted names, at offsets 0, 1, 2, …
fn inputs(names: &[String]) -> Vec<Decoded<NameSubmitted>> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| Decoded {
            position: RecordPosition { topic: topics::NAMES.into(), partition: 0, offset: i as i64 },
            key: Some(format!("lead-{i}").into_bytes()),
            record: NameSubmitted {
                project_id: "default".into(),
                lead_id: format!("lead-{i}"),
                name: name.clone(),
                email: None,
                company: None,
                submitted_at: OffsetDateTime::now_utc(),
            },
        })
        .collect()
}

async fn apply(processor: &EnrichProcessor, batch: &[Decoded<NameSubmitted>]) -> Vec<Emit> {
    processor.apply(batch.to_vec(), &PauseSignal::default()).await.unwrap_or_else(|e| panic!("{e}"))
}

/// Each emitted LeadEnriched with the position of the input that caused it.
fn enriched(outputs: &[Emit]) -> Vec<(RecordPosition, LeadEnriched)> {
    outputs
        .iter()
        .filter_map(|emit| match emit {
            Emit::Record { cause, record } => Some((cause.clone(), record.decode::<LeadEnriched>()?)),
            Emit::DeadLetter(_) => None,
        })
        .collect()
}

fn dead_letters(outputs: &[Emit]) -> Vec<&DeadLetterSpec> {
    outputs
        .iter()
        .filter_map(|emit| match emit {
            Emit::DeadLetter(spec) => Some(spec),
            Emit::Record { .. } => None,
        })
        .collect()
}

/// What the rules make of the stand-in's deterministic answer for `name`.
fn expected_verdict(name: &str) -> rules::Verdict {
    let prediction = stand_ins::nationalize::predict(&rules::lookup_key(name).unwrap());
    let countries: Vec<CountryProbability> = prediction
        .country
        .into_iter()
        .map(|c| CountryProbability { country_id: c.country_id, probability: c.probability })
        .collect();
    rules::verdict(&countries, THRESHOLD)
}

#[tokio::test]
async fn each_name_becomes_verified_or_to_check_as_its_prediction_says() {
    let api = stand_in(Faults::default()).await;
    let processor = processor(&api).await;
    // The first seven give both outcomes against the stand-in.
    let names: Vec<String> = FIRST_NAMES[..7].iter().map(|first| format!("{first} Example")).collect();
    let batch = inputs(&names);

    let outputs = apply(&processor, &batch).await;

    let records = enriched(&outputs);
    assert_eq!(records.len(), outputs.len(), "no dead letter: {outputs:?}");
    assert_eq!(records.len(), batch.len(), "one LeadEnriched per name");
    for ((cause, record), input) in records.iter().zip(&batch) {
        let expected = expected_verdict(&input.record.name);
        assert_eq!(cause, &input.position);
        assert_eq!(record.lead_id, input.record.lead_id);
        assert_eq!(
            (&record.status, &record.country_code, record.probability, record.reason.as_deref()),
            (&expected.status, &expected.country_code, expected.probability, expected.reason),
            "{}",
            input.record.name
        );
    }
    let statuses: Vec<_> = records.iter().map(|(_, r)| &r.status).collect();
    assert!(statuses.contains(&&EnrichmentStatus::Verified), "{statuses:?}");
    assert!(statuses.contains(&&EnrichmentStatus::ToCheck), "{statuses:?}");
}

#[tokio::test]
async fn a_name_without_a_usable_first_token_is_to_check_with_no_prediction_and_no_request() {
    let api = stand_in(Faults::default()).await;
    let processor = processor(&api).await;
    let batch = inputs(&["... Example".to_owned()]);

    let outputs = apply(&processor, &batch).await;

    let records = enriched(&outputs);
    assert_eq!(records.len(), outputs.len(), "no dead letter: {outputs:?}");
    let [(cause, record)] = records.as_slice() else { panic!("one record: {records:?}") };
    assert_eq!(cause, &batch[0].position);
    assert_eq!(
        (&record.status, record.reason.as_deref(), &record.country_code),
        (&EnrichmentStatus::ToCheck, Some(REASON_NO_PREDICTION), &None)
    );
    assert_eq!(api.stats().await["requests"], 0, "the API was not asked");
}

#[tokio::test]
async fn a_name_the_api_never_answers_is_to_check_and_a_dead_letter_of_its_input() {
    let api = stand_in(Faults { error_rate: 1.0, ..Faults::default() }).await;
    let processor = processor(&api).await;
    // The second name needs no request, so it must not be dead-lettered with the first.
    let batch = inputs(&["Ada Example".to_owned(), "... Example".to_owned()]);

    let outputs = apply(&processor, &batch).await;

    let letters = dead_letters(&outputs);
    assert_eq!(letters.len(), 1, "{outputs:?}");
    assert_eq!((&letters[0].cause, letters[0].error_kind), (&batch[0].position, "enrichment_failed"));
    let records = enriched(&outputs);
    assert_eq!(records.len(), 2, "a record for each name, the failed one too");
    let (cause, failed) = &records[0];
    assert_eq!(cause, &batch[0].position);
    assert_eq!(
        (&failed.status, failed.reason.as_deref()),
        (&EnrichmentStatus::ToCheck, Some(REASON_ENRICHMENT_FAILED))
    );
    assert_eq!(api.stats().await["requests"], 2, "both attempts of the retry budget were made");
}

#[tokio::test]
async fn each_project_gets_its_own_enrichment_of_one_lead_id_and_name() {
    let api = stand_in(Faults::default()).await;
    let processor = processor(&api).await;
    let name = format!("{} Example", FIRST_NAMES[0]);
    let mut batch = inputs(&[name.clone(), name.clone()]);
    batch[1].record.project_id = "acme".into();
    batch[1].record.lead_id = batch[0].record.lead_id.clone();

    let records = enriched(&apply(&processor, &batch).await);

    let got: Vec<(&str, &str)> =
        records.iter().map(|(_, r)| (r.project_id.as_str(), r.lead_id.as_str())).collect();
    assert_eq!(got, [("default", "lead-0"), ("acme", "lead-0")], "each output carries its input's project");
    assert_eq!(records[0].1.country_code, records[1].1.country_code);
    assert_eq!(api.stats().await["requests"], 1, "both misses of one batch go in one request");
    // The next batch of each project is answered by that project's own cache entry.
    apply(&processor, &batch).await;
    assert_eq!(api.stats().await["requests"], 1);
    assert_eq!(processor.metrics.cache_lookups.with_label_values(&["memory_hit"]).get(), 2);
}
