//! Exactly one execution per (rule, lead, UTC day) however the automator dies: 500 leads cross
//! into hot while the automator is killed with SIGKILL three times mid-work. The execution
//! topic (read_committed) holds exactly one record per key, and the receiver sees every
//! execution's Webhook-Id, at least once, and no other id.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{AutomatorRun, ONE_AT_A_TIME, Receiver};
use leadflow_core::contract::records::Stage;
use leadflow_core::model::automation::Condition;
use leadflow_testkit::Stack;
use leadflow_testkit::kafka::produce_records;
use time::macros::datetime;

const LEADS: usize = 500;
const KILLS: usize = 3;

#[tokio::test(flavor = "multi_thread")]
async fn five_hundred_leads_enter_hot_through_three_kills_and_each_executes_once() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let run = AutomatorRun::new(&stack);
    let receiver = Receiver::start().await;
    let (subscription, secret) =
        run.subscribe(&stack, &format!("{}/hot", receiver.base), &["lead.entered_stage"]).await;
    receiver.expect_secret("/hot", &secret).await;
    run.rule(&stack, "hot-to-hook", Condition::EntersStage { stage: Stage::Hot }, &subscription).await;
    // Small batches, so that a kill lands between a batch's MongoDB commit and its Kafka one
    // as often as anywhere else.
    let small = [("LEADFLOW_CONSUMER__MAX_BATCH_RECORDS", "10".to_owned())];
    let mut automator = run.start(&stack, "a1", &small).await;

    let at = datetime!(2026-03-09 12:00 UTC);
    let chunk = LEADS / (KILLS + 1);
    for round in 0..=KILLS {
        let leads = (round * chunk)..((round + 1) * chunk);
        let records: Vec<_> = leads
            .flat_map(|i| {
                let lead = format!("lead-{i}");
                [
                    run.scored(&lead, "e1", 20.0, Stage::Warm, at),
                    run.scored(&lead, "e2", 45.0, Stage::Hot, at),
                ]
            })
            .collect();
        produce_records(&stack, &records).await;
        if round == KILLS {
            break;
        }
        // Mid-work: some of this round's deliveries have arrived, not all of them.
        let reached = round * chunk + chunk / 3;
        receiver.wait_for("/hot", Duration::from_secs(120), |d| distinct_ids(d) >= reached).await;
        automator.signal(libc::SIGKILL).unwrap();
        automator.wait_exit(Duration::from_secs(10)).await.unwrap();
        automator = run.start(&stack, &format!("a{}", round + 2), &small).await;
    }

    let seen = receiver.wait_for("/hot", Duration::from_secs(240), |d| distinct_ids(d) >= LEADS).await;
    drop(automator);
    let executions = run.executions(&stack, LEADS).await;
    let mut per_key: BTreeMap<&str, usize> = BTreeMap::new();
    for execution in &executions {
        *per_key.entry(execution.execution_key.as_str()).or_default() += 1;
    }
    assert_eq!(per_key.len(), LEADS, "one execution key per lead");
    let repeated: Vec<_> = per_key.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "keys recorded more than once: {repeated:?}");

    let executed_ids: BTreeSet<String> =
        executions.iter().map(|e| e.actions[0].message_id.clone().expect("queued")).collect();
    let received_ids: BTreeSet<String> = seen.iter().filter_map(|d| d.webhook_id.clone()).collect();
    assert_eq!(executed_ids.len(), LEADS, "one message id per execution");
    assert_eq!(received_ids, executed_ids, "every execution's id arrived, and no other");
    assert!(seen.iter().all(|d| d.verified), "every delivery verifies");
    println!(
        "{} deliveries for {} executions ({} repeats after kills)",
        seen.len(),
        LEADS,
        seen.len() - LEADS
    );
}

fn distinct_ids(deliveries: &[stand_ins::webhooks::Delivery]) -> usize {
    deliveries.iter().filter_map(|d| d.webhook_id.as_deref()).collect::<BTreeSet<_>>().len()
}
