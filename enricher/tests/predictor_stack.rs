//! The API client path against the project's nationalize stand-in and the stack's MongoDB:
//! batching, the two cache levels, 429 handling and the retry budget. The stand-in counts the
//! requests it gets, so each test asserts on what actually crossed the wire.

mod common;

use std::time::Duration;

use common::{StandIn, json_faults};
use enricher::cache::{LookupKey, PredictionCache};
use enricher::config::CacheConfig;
use enricher::metrics::EnricherMetrics;
use enricher::predictor::{Lookup, Predictor};
use leadflow_core::contract::project::DEFAULT_PROJECT;
use leadflow_core::stage::pause::PauseSignal;
use leadflow_core::store::documents::PredictionDoc;
use leadflow_testkit::{Stack, unique};

struct Setup {
    predictor: Predictor,
    metrics: EnricherMetrics,
    database: String,
}

async fn predictor(stack: &Stack, stand_in: &StandIn, database: Option<&str>, max_attempts: u32) -> Setup {
    let mut config = common::predictor_config(&stand_in.base_url);
    config.nationalize.daily_quota = 0;
    config.nationalize.max_attempts = max_attempts;
    config.nationalize.backoff_initial = Duration::from_millis(10);
    config.mongo.uri = stack.mongodb_uri.clone();
    let database = database.map(str::to_owned).unwrap_or_else(|| unique("predictor_test").replace('-', "_"));
    let db = leadflow_core::store::mongo::client(&config.mongo, "test").await.unwrap().database(&database);
    let cache =
        PredictionCache::new(&db, &CacheConfig { collection: "nationalize_cache".into(), ..config.cache });
    cache.ensure_ttl_index().await.unwrap();
    let metrics = EnricherMetrics::register(&prometheus::Registry::new()).unwrap();
    Setup {
        predictor: Predictor::new(&config.nationalize, cache, metrics.clone()).unwrap(),
        metrics,
        database,
    }
}

/// `n` names of the default project.
fn keys(prefix: &str, n: usize) -> Vec<LookupKey> {
    (0..n).map(|i| LookupKey::new(DEFAULT_PROJECT, &format!("{prefix}x{i}"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_go_ten_per_request_and_repeats_cost_no_request() {
    let stack = Stack::get();
    let stand_in = StandIn::start(json_faults(0, 0.0, None, 86_400)).await;
    let setup = predictor(&stack, &stand_in, None, 3).await;
    let names = keys(&unique("b").replace('-', ""), 25);

    let first = setup.predictor.predict(&names, &PauseSignal::default()).await;
    assert_eq!(stand_in.requests().await, 3, "25 names are 10 + 10 + 5");
    assert_eq!(first.len(), 25);
    for name in &names {
        let Some(Lookup::Predicted(countries)) = first.get(name) else {
            panic!("{name:?}: {:?}", first.get(name))
        };
        let expected = stand_ins::nationalize::predict(&name.name);
        assert_eq!(countries.len(), expected.country.len(), "{name:?}");
        assert_eq!(
            countries[0].country_id,
            expected.country.first().map(|c| c.country_id.clone()).unwrap_or_default()
        );
    }

    let again = setup.predictor.predict(&names, &PauseSignal::default()).await;
    assert_eq!(stand_in.requests().await, 3, "the in-process cache answers repeats");
    assert_eq!(again.len(), 25);
    assert_eq!(setup.metrics.cache_lookups.with_label_values(&["memory_hit"]).get(), 25);

    // A new process has an empty LRU: MongoDB answers.
    let fresh = predictor(&stack, &stand_in, Some(&setup.database), 3).await;
    let from_store = fresh.predictor.predict(&names, &PauseSignal::default()).await;
    assert_eq!(stand_in.requests().await, 3, "the MongoDB cache answers a cold process");
    assert!(from_store.values().all(|l| matches!(l, Lookup::Predicted(_))));
    assert_eq!(fresh.metrics.cache_lookups.with_label_values(&["store_hit"]).get(), 25);
    assert_eq!(fresh.metrics.cache_hit_ratio.get(), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_pauses_until_retry_after_and_never_fails_the_names() {
    let stack = Stack::get();
    let stand_in = StandIn::start(json_faults(0, 0.0, Some(1), 2)).await;
    let setup = predictor(&stack, &stand_in, None, 1).await;
    let names = keys(&unique("r").replace('-', ""), 20);
    let pause = PauseSignal::default();
    // Another client on the same key spends the window's quota, so the predictor's first request
    // meets a 429 without any earlier header having warned it.
    let spent = reqwest::get(format!("{}/?name=someone", stand_in.base_url)).await.unwrap();
    assert_eq!(spent.status(), 200);

    let watcher = {
        let pause = pause.clone();
        tokio::spawn(async move {
            leadflow_testkit::eventually("the predictor holds a pause", Duration::from_secs(10), || {
                let paused = pause.is_paused();
                async move { Ok(paused.then_some(())) }
            })
            .await
        })
    };
    let lookups = setup.predictor.predict(&names, &pause).await;
    watcher.await.unwrap().expect("a 429 pauses consumption");
    assert!(!pause.is_paused(), "the pause ends when the request goes through");
    assert!(lookups.values().all(|l| matches!(l, Lookup::Predicted(_))), "{lookups:?}");
    let stats = stand_in.stats().await;
    assert!(stats["rateLimited"].as_u64().unwrap() >= 1, "{stats}");
    assert_eq!(stats["successful"], 3, "the other client's request and the predictor's two: {stats}");
    assert_eq!(
        setup.metrics.api_requests.with_label_values(&["rejected"]).get()
            + setup.metrics.api_requests.with_label_values(&["retryable_error"]).get(),
        0,
        "with max_attempts = 1, any counted failure would have failed the names"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_within_the_budget_then_fail_the_names() {
    let stack = Stack::get();
    let stand_in = StandIn::start(json_faults(0, 1.0, None, 86_400)).await;
    let setup = predictor(&stack, &stand_in, None, 3).await;
    let names = keys(&unique("e").replace('-', ""), 5);

    let lookups = setup.predictor.predict(&names, &PauseSignal::default()).await;
    for name in &names {
        let Some(Lookup::Failed(reason)) = lookups.get(name) else {
            panic!("{name:?}: {:?}", lookups.get(name))
        };
        assert!(reason.contains("after 3 attempts"), "{reason}");
    }
    let stats = stand_in.stats().await;
    assert_eq!(stats["requests"], 3, "one request, tried max_attempts times: {stats}");
    assert_eq!(stats["injectedErrors"], 3, "{stats}");

    // Once the API recovers, the same names are asked again: a failure is not cached.
    stand_in.set_faults(json_faults(0, 0.0, None, 86_400)).await;
    let recovered = setup.predictor.predict(&names, &PauseSignal::default()).await;
    assert!(recovered.values().all(|l| matches!(l, Lookup::Predicted(_))));
    assert_eq!(stand_in.requests().await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_project_has_its_own_cache_entry_for_a_name() {
    let stack = Stack::get();
    let stand_in = StandIn::start(json_faults(0, 0.0, None, 86_400)).await;
    let setup = predictor(&stack, &stand_in, None, 3).await;
    let name = format!("{}x0", unique("p").replace('-', ""));
    let (default, acme, globex) = (
        LookupKey::new(DEFAULT_PROJECT, &name),
        LookupKey::new("acme", &name),
        LookupKey::new("globex", &name),
    );

    // Both projects miss in one batch: one request for the name, an entry for each project.
    let both = setup.predictor.predict(&[default.clone(), acme.clone()], &PauseSignal::default()).await;
    assert!(both.values().all(|l| matches!(l, Lookup::Predicted(_))), "{both:?}");
    assert_eq!(stand_in.requests().await, 1, "a name two projects miss at once is asked once");
    let config = leadflow_core::store::mongo::MongoConfig {
        uri: stack.mongodb_uri.clone(),
        database: setup.database.clone(),
    };
    let stored: Vec<PredictionDoc> = {
        use futures::TryStreamExt;
        let db =
            leadflow_core::store::mongo::client(&config, "test").await.unwrap().database(&setup.database);
        db.collection::<PredictionDoc>("nationalize_cache")
            .find(mongodb::bson::doc! {})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap()
    };
    let mut ids: Vec<(String, String)> = stored.into_iter().map(|d| (d.id, d.project_id)).collect();
    ids.sort();
    assert_eq!(
        ids,
        [(format!("acme:{name}"), "acme".to_owned()), (name.clone(), DEFAULT_PROJECT.to_owned())],
        "one document per (project, name)"
    );

    // A third project finds neither entry, in memory or stored: it pays for its own lookup.
    let fresh = predictor(&stack, &stand_in, Some(&setup.database), 3).await;
    let third = fresh.predictor.predict(std::slice::from_ref(&globex), &PauseSignal::default()).await;
    assert!(matches!(third.get(&globex), Some(Lookup::Predicted(_))));
    assert_eq!(stand_in.requests().await, 2, "another project's entry is not this project's");
    assert_eq!(fresh.metrics.cache_lookups.with_label_values(&["store_hit"]).get(), 0);
    // And each of the first two finds its own stored entry.
    let again = fresh.predictor.predict(&[default, acme], &PauseSignal::default()).await;
    assert_eq!(again.len(), 2);
    assert_eq!(stand_in.requests().await, 2);
    assert_eq!(fresh.metrics.cache_lookups.with_label_values(&["store_hit"]).get(), 2);
}
