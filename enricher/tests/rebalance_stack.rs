//! A rebalance while a batch waits on the API's rate limit, as when KEDA scales out because
//! throttling made lag: the waiting instance must not commit the partitions it lost. 40 names
//! against a quota of 2 requests per 12 s; a second instance joins during the first one's
//! paused wait. Each lead gets exactly one LeadEnriched (`read_committed`).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{EnricherRun, StandIn, json_faults, names, produce_names, run_id};
use leadflow_core::contract::topics;
use leadflow_testkit::Stack;
use leadflow_testkit::kafka::read_to_end;

/// Every enricher started here consumes every name written after its start: the fenced twins'
/// instances, which have no quota, would enrich the other test's names at once, and those read
/// as duplicates. The tests take turns.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_waiting_on_the_quota_when_an_instance_joins_is_abandoned_not_committed() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let stand_in = StandIn::start(json_faults(0, 0.0, Some(2), 12)).await;
    let run = EnricherRun::new(&stack);
    let id = run_id();
    let submitted = names(&id, 40);
    produce_names(&stack, &submitted).await;

    let mut first = run.start(&stack, &stand_in, "a", &[]).await;
    first.wait_for_log("consumption paused", Duration::from_secs(60)).await.unwrap();
    let _second = run.start(&stack, &stand_in, "b", &[]).await;
    first.wait_for_log("batch abandoned to a rebalance", Duration::from_secs(60)).await.unwrap();

    let enriched = run.read_enriched(&stack, &id, submitted.len(), Duration::from_secs(240)).await;
    assert!(enriched.len() >= submitted.len());
    let all = read_to_end(&stack, topics::ENRICHED, &run.enriched_from, Duration::from_secs(30)).await;
    let mut per_lead: HashMap<&str, usize> = HashMap::new();
    for record in all.iter().filter(|r| r.key.starts_with(&format!("{id}-"))) {
        *per_lead.entry(record.key.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = per_lead.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "leads enriched more than once: {twice:?}");
    assert_eq!(per_lead.len(), submitted.len(), "every lead enriched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_fenced_by_a_duplicate_instance_id_exits_instead_of_idling() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let stand_in = StandIn::start(json_faults(0, 0.0, None, 86_400)).await;
    let run = EnricherRun::new(&stack);
    let mut first = run.start(&stack, &stand_in, "twin", &[]).await;
    first.wait_for_log("partitions assigned", Duration::from_secs(60)).await.unwrap();
    let mut second = run.start(&stack, &stand_in, "twin", &[]).await;
    let status = first.wait_exit(Duration::from_secs(60)).await.unwrap();
    assert_eq!(status.code(), Some(1), "the fenced instance exits 1: {}", first.logs());
    assert!(second.wait_exit(Duration::from_millis(1)).await.is_err(), "the newer one stays up");
}
