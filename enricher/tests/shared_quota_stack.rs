//! The daily quota held per deployment, not per replica: enrichers sharing a MongoDB database
//! and a `quota_name` together send at most `daily_quota` requests, and the names the quota
//! leaves waiting stay in lag (not failed, not dead-lettered) until there is quota again. The
//! nationalize stand-in counts what actually crossed the wire.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::{EnricherRun, StandIn, json_faults, names, produce_names, run_id};
use enricher::cache::{LookupKey, PredictionCache};

use enricher::metrics::EnricherMetrics;
use enricher::predictor::Predictor;
use leadflow_core::contract::project::DEFAULT_PROJECT;
use leadflow_core::contract::topics;
use leadflow_core::stage::pause::PauseSignal;
use leadflow_core::store::documents::{BUDGETS, BudgetDoc};
use leadflow_testkit::kafka::{committed_offsets, end_offsets, read_to_end};
use leadflow_testkit::{Stack, eventually, unique};
use mongodb::bson::doc;

/// Every enricher started here consumes every name written after its start (see
/// `rebalance_stack.rs`): the tests take turns.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const QUOTA: u64 = 5;

/// A predictor with a daily quota of [`QUOTA`], one name per request, its cache and quota in
/// `database` on the MongoDB at `mongodb_uri`.
async fn predictor(stand_in: &StandIn, mongodb_uri: &str, database: &str) -> (Predictor, EnricherMetrics) {
    let mut config = common::predictor_config(&stand_in.base_url);
    config.nationalize.daily_quota = QUOTA;
    config.nationalize.names_per_request = 1;
    config.mongo.uri = mongodb_uri.to_owned();
    let db = leadflow_core::store::mongo::client(&config.mongo, "test").await.unwrap().database(database);
    let metrics = EnricherMetrics::register(&prometheus::Registry::new()).unwrap();
    let cache = PredictionCache::new(&db, &config.cache);
    (Predictor::new(&config.nationalize, cache, metrics.clone()).unwrap(), metrics)
}

fn keys(prefix: &str, n: usize) -> Vec<LookupKey> {
    (0..n).map(|i| LookupKey::new(DEFAULT_PROJECT, &format!("{prefix}x{i}"))).collect()
}

/// Predicts `keys` in the background, holding `pause` while it waits.
fn predict_in_background(
    predictor: &Arc<Predictor>,
    keys: Vec<LookupKey>,
    pause: &PauseSignal,
) -> tokio::task::JoinHandle<()> {
    let (predictor, pause) = (predictor.clone(), pause.clone());
    tokio::spawn(async move {
        predictor.predict(&keys, &pause).await;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_predictors_on_one_database_send_at_most_the_quota_and_both_pause() {
    let stack = Stack::get();
    let stand_in = StandIn::start(json_faults(0, 0.0, None, 86_400)).await;
    let database = unique("quota_test").replace('-', "_");
    let (first, first_metrics) = predictor(&stand_in, &stack.mongodb_uri, &database).await;
    let (second, second_metrics) = predictor(&stand_in, &stack.mongodb_uri, &database).await;
    let (first, second) = (Arc::new(first), Arc::new(second));
    let prefix = unique("q").replace('-', "");
    let (first_pause, second_pause) = (PauseSignal::default(), PauseSignal::default());
    let tasks = [
        predict_in_background(&first, keys(&format!("{prefix}a"), 20), &first_pause),
        predict_in_background(&second, keys(&format!("{prefix}b"), 20), &second_pause),
    ];

    eventually("both predictors wait on the spent quota", Duration::from_secs(30), || {
        let paused = first_pause.is_paused() && second_pause.is_paused();
        async move { Ok(paused.then_some(())) }
    })
    .await
    .unwrap();
    assert_eq!(stand_in.requests().await, QUOTA, "40 names wanted 40 requests; the pair sent the quota");
    assert_eq!(first_metrics.daily_quota_remaining.get(), 0);
    assert_eq!(second_metrics.daily_quota_remaining.get(), 0);
    let client = mongodb::Client::with_uri_str(&stack.mongodb_uri).await.unwrap();
    let budgets = client.database(&database).collection::<BudgetDoc>(BUDGETS);
    let today = time::OffsetDateTime::now_utc().date();
    let stored = budgets
        .find_one(doc! { "_id": BudgetDoc::id_of("nationalize/daily", &today.to_string()) })
        .await
        .unwrap()
        .expect("today's quota document");
    assert_eq!(stored.used, QUOTA as i64);
    for task in tasks {
        task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_that_cannot_be_counted_sends_nothing() {
    let stand_in = StandIn::start(json_faults(0, 0.0, None, 86_400)).await;
    // Nothing listens on loopback port 9: the cache and the quota both fail to reach MongoDB.
    let (predictor, _metrics) = predictor(&stand_in, "mongodb://127.0.0.1:9", "unreachable").await;
    let predictor = Arc::new(predictor);
    let pause = PauseSignal::default();
    let task = predict_in_background(&predictor, keys(&unique("u").replace('-', ""), 3), &pause);

    eventually("the predictor waits on the quota", Duration::from_secs(30), || {
        let paused = pause.is_paused();
        async move { Ok(paused.then_some(())) }
    })
    .await
    .unwrap();
    assert_eq!(stand_in.requests().await, 0, "no request goes out uncounted");
    assert!(!task.is_finished(), "the names wait; they are not failed");
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_enrichers_in_one_group_stay_within_one_daily_quota_and_the_rest_waits_in_lag() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let stand_in = StandIn::start(json_faults(0, 0.0, None, 86_400)).await;
    let run = EnricherRun::new(&stack);
    let id = run_id();
    let submitted = names(&id, 30);
    let quota: &[(&'static str, String)] = &[
        ("LEADFLOW_NATIONALIZE__DAILY_QUOTA", QUOTA.to_string()),
        ("LEADFLOW_NATIONALIZE__NAMES_PER_REQUEST", "1".to_owned()),
    ];
    let mut a = run.start(&stack, &stand_in, "a", quota).await;
    let mut b = run.start(&stack, &stand_in, "b", quota).await;
    for instance in [&mut a, &mut b] {
        instance.wait_for_log("partitions assigned", Duration::from_secs(30)).await.unwrap();
    }
    produce_names(&stack, &submitted).await;
    let names_end = end_offsets(&stack, topics::NAMES);

    // 30 names over six partitions: both replicas get some, and each meets the spent quota.
    for instance in [&mut a, &mut b] {
        instance.wait_for_log("DailyQuota", Duration::from_secs(60)).await.unwrap();
        instance.wait_for_log("consumption paused", Duration::from_secs(30)).await.unwrap();
    }
    assert_eq!(stand_in.requests().await, QUOTA, "the two replicas together sent one quota");
    let committed = committed_offsets(&stack, &run.group, topics::NAMES);
    let lag: i64 = names_end.iter().map(|(p, end)| end - committed.get(p).copied().unwrap_or(0)).sum();
    assert!(lag >= (submitted.len() as u64 - QUOTA) as i64, "the waiting names are lag: {lag}");
    let letters = read_to_end(&stack, topics::DLQ, &run.dlq_from, Duration::from_secs(10)).await;
    let ours: Vec<&str> =
        letters.iter().map(|r| r.key.as_str()).filter(|key| key.starts_with(&format!("{id}-"))).collect();
    assert!(ours.is_empty(), "no waiting name is dead-lettered: {ours:?}");

    // With the quota lifted (a new day, a bigger plan), every name is enriched, each once.
    for instance in [&mut a, &mut b] {
        instance.signal(libc::SIGTERM).unwrap();
        instance.wait_exit(Duration::from_secs(60)).await.unwrap();
    }
    let _a = run.start(&stack, &stand_in, "a", &[]).await;
    let _b = run.start(&stack, &stand_in, "b", &[]).await;
    let enriched = run.read_enriched(&stack, &id, submitted.len(), Duration::from_secs(120)).await;
    let mut per_lead: HashMap<&str, usize> = HashMap::new();
    for record in &enriched {
        *per_lead.entry(record.lead_id.as_str()).or_default() += 1;
    }
    assert_eq!(per_lead.len(), submitted.len(), "no lead was lost");
    let twice: Vec<_> = per_lead.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "leads enriched more than once: {twice:?}");
    assert!(
        enriched.iter().all(|e| e.reason.as_deref() != Some("enrichment_failed")),
        "no name failed while it waited"
    );
}
