//! [`SharedBudget`] against the real MongoDB-wire server of the local stack: concurrent takers
//! together never pass the limit, a rolling budget holds in every interval of its window, and
//! budgets of different names do not share usage. Each test has its own database. Times are
//! passed in, so that a run spans many windows without waiting for them.

use std::time::Duration;

use futures::future::join_all;
use leadflow_core::store::shared_budget::{Grant, SharedBudget};
use leadflow_testkit::{Stack, unique};
use mongodb::bson::doc;
use mongodb::{Client, Database};
use time::macros::datetime;
use time::{OffsetDateTime, UtcOffset};

async fn database() -> Database {
    let stack = Stack::get();
    let client = Client::with_uri_str(&stack.mongodb_uri).await.unwrap();
    client.database(&unique("budget_test").replace('-', "_"))
}

const NOON: OffsetDateTime = datetime!(2026-11-22 12:00 UTC);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_takers_of_a_daily_budget_of_100_get_exactly_100_in_400_attempts() {
    let database = database().await;
    let budget =
        SharedBudget::daily(SharedBudget::collection_in(&database), "api/daily", 100, UtcOffset::UTC);
    budget.ensure_ttl_index().await.unwrap();

    let takers = (0..8).map(|taker| {
        let budget = budget.clone();
        tokio::spawn(async move {
            let mut granted = 0u32;
            for attempt in 0..50 {
                let now = NOON + time::Duration::seconds(taker * 50 + attempt);
                match budget.take(1, now).await.unwrap() {
                    Grant::Granted { remaining } => {
                        assert!(remaining < 100, "a grant leaves less than the whole day");
                        granted += 1;
                    }
                    Grant::Exhausted { until } => assert_eq!(until, datetime!(2026-11-23 00:00 UTC)),
                }
            }
            granted
        })
    });
    let granted: u32 = join_all(takers).await.into_iter().map(Result::unwrap).sum();

    assert_eq!(granted, 100, "exactly the day's budget, across all takers");
    let stored = SharedBudget::collection_in(&database)
        .find_one(doc! { "_id": "api/daily/2026-11-22" })
        .await
        .unwrap()
        .expect("the day's document");
    assert_eq!(stored.used, 100);
    assert_eq!(
        budget.take(1, datetime!(2026-11-23 00:00 UTC)).await.unwrap(),
        Grant::Granted { remaining: 99 },
        "the next day starts afresh"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_budget_never_holds_more_than_its_limit_in_any_interval_of_its_window() {
    let database = database().await;
    // 20 per second in 4 sub-windows of 250 ms, 4 each (16 per second steady).
    let (limit, window) = (20u64, Duration::from_secs(1));
    let budget =
        SharedBudget::rolling(SharedBudget::collection_in(&database), "crm/burst", limit, window, 4).unwrap();
    assert_eq!(budget.limit_per_window(), 4);

    // Four takers, each asking every 7 ms (offset by 2 ms from the next) over 3 simulated
    // seconds: far more than the budget, across 12 sub-windows and their edges.
    let takers = (0..4i64).map(|taker| {
        let budget = budget.clone();
        tokio::spawn(async move {
            let mut granted = Vec::new();
            for step in 0..428i64 {
                let now = NOON + time::Duration::milliseconds(step * 7 + taker * 2);
                if let Grant::Granted { .. } = budget.take(1, now).await.unwrap() {
                    granted.push(now);
                }
            }
            granted
        })
    });
    let mut granted: Vec<OffsetDateTime> =
        join_all(takers).await.into_iter().flat_map(Result::unwrap).collect();
    granted.sort();

    assert_eq!(granted.len(), 12 * 4, "every sub-window gave its share");
    for (i, start) in granted.iter().enumerate() {
        let within = granted[i..].iter().take_while(|at| **at < *start + window).count();
        assert!(within as u64 <= limit, "{within} grants in the second from {start}");
    }
}

#[tokio::test]
async fn budgets_of_different_names_do_not_share_usage() {
    let database = database().await;
    let collection = SharedBudget::collection_in(&database);
    let first = SharedBudget::daily(collection.clone(), "first", 2, UtcOffset::UTC);
    let second = SharedBudget::daily(collection, "second", 2, UtcOffset::UTC);
    for _ in 0..2 {
        assert!(matches!(first.take(1, NOON).await.unwrap(), Grant::Granted { .. }));
    }
    assert!(matches!(first.take(1, NOON).await.unwrap(), Grant::Exhausted { .. }));
    assert_eq!(second.take(1, NOON).await.unwrap(), Grant::Granted { remaining: 1 });
    assert_eq!(second.take(1, NOON).await.unwrap(), Grant::Granted { remaining: 0 });
    assert!(matches!(second.take(1, NOON).await.unwrap(), Grant::Exhausted { .. }));
}

#[tokio::test]
async fn a_take_of_several_is_all_or_nothing_and_more_than_a_window_is_never_granted() {
    let database = database().await;
    let budget = SharedBudget::daily(SharedBudget::collection_in(&database), "bulk", 10, UtcOffset::UTC);
    assert_eq!(budget.take(7, NOON).await.unwrap(), Grant::Granted { remaining: 3 });
    let until = datetime!(2026-11-23 00:00 UTC);
    assert_eq!(budget.take(4, NOON).await.unwrap(), Grant::Exhausted { until }, "4 do not fit in 3");
    assert_eq!(budget.take(3, NOON).await.unwrap(), Grant::Granted { remaining: 0 }, "nothing was taken");
    assert_eq!(
        budget.take(11, datetime!(2026-11-23 08:00 UTC)).await.unwrap(),
        Grant::Exhausted { until: datetime!(2026-11-24 00:00 UTC) }
    );
}

#[tokio::test]
async fn an_unreachable_mongodb_is_an_error_not_a_grant() {
    let client = leadflow_core::store::mongo::client(
        &leadflow_core::store::mongo::MongoConfig {
            // A port nothing listens on: loopback port 9 (discard) is closed on the test hosts.
            uri: "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300".to_owned(),
            database: "none".to_owned(),
        },
        "shared-budget-test",
    )
    .await
    .unwrap();
    let budget =
        SharedBudget::daily(SharedBudget::collection_in(&client.database("none")), "x", 5, UtcOffset::UTC);
    assert!(budget.take(1, NOON).await.is_err());
}
