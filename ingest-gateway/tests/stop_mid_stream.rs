//! The gateway stopped in the middle of a stream of posts. With SIGTERM it stops accepting,
//! finishes what is in flight, flushes and exits 0; killed with SIGKILL it just dies. Either way,
//! every event it answered 202 for is in Kafka exactly once: a 202 is sent only after the broker
//! acknowledged the record, so nothing acknowledged can be lost with the process.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Gateway, codec, end_offsets, read_from, run_id};
use leadflow_core::contract::records::LeadEvent;
use leadflow_core::stage::startup::register_all;
use leadflow_testkit::Stack;
use serde_json::json;

const POSTS: usize = 400;
const CONCURRENCY: usize = 16;

#[tokio::test]
async fn sigterm_mid_stream_exits_0_and_every_202_is_in_kafka_exactly_once() {
    let status = every_202_survives_a_stop_mid_stream(libc::SIGTERM).await;
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn sigkill_mid_stream_loses_no_202() {
    let status = every_202_survives_a_stop_mid_stream(libc::SIGKILL).await;
    assert_eq!(status.code(), None, "killed by a signal, not exited");
}

/// Posts events from 16 clients, stops the gateway with `signal` after a quarter of them, checks
/// that every 202 is in Kafka exactly once, and returns how the process ended.
async fn every_202_survives_a_stop_mid_stream(signal: i32) -> std::process::ExitStatus {
    let stack = Stack::get();
    let mut gateway = Gateway::start(&stack).await;
    let run = run_id();
    let from = end_offsets(&stack, "leads.events.v1");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let completed = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));

    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, url, run, completed, next, key) = (
            client.clone(),
            format!("{}/api/events", gateway.base_url),
            run.clone(),
            completed.clone(),
            next.clone(),
            gateway.key.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut accepted = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= POSTS {
                    return accepted;
                }
                let event_id = format!("{run}.e{n}");
                let body = json!({"eventId": event_id, "leadId": format!("{run}.lead{}", n % 8), "eventType": "page_view"});
                // Refused connections after the shutdown began are expected; only 202s matter.
                if let Ok(response) = client.post(&url).bearer_auth(&key).json(&body).send().await
                    && response.status() == 202
                {
                    accepted.push(event_id);
                }
                completed.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    leadflow_testkit::eventually("a quarter of the posts answered", Duration::from_secs(60), || {
        let done = completed.load(Ordering::SeqCst);
        async move { Ok((done >= POSTS / 4).then_some(())) }
    })
    .await
    .unwrap();
    gateway.process.signal(signal).unwrap();
    let status = gateway.process.wait_exit(Duration::from_secs(30)).await.unwrap();
    if signal == libc::SIGTERM {
        assert_eq!(status.code(), Some(0), "{}", gateway.process.logs());
    }

    let mut accepted = BTreeSet::new();
    for worker in workers {
        accepted.extend(worker.await.unwrap());
    }
    assert!(accepted.len() >= POSTS / 4, "only {} accepted", accepted.len());
    assert!(accepted.len() < POSTS, "the shutdown came after every post; the test proved nothing");

    let codec = codec(&stack);
    register_all(&codec).await.unwrap();

    let records = read_from(&stack, "leads.events.v1", &from, |r| {
        let ours: BTreeSet<String> = r
            .iter()
            .filter(|p| p.key.starts_with(&run))
            .filter_map(|p| String::from_utf8_lossy(&p.value[5..]).split('"').nth(3).map(str::to_owned))
            .collect();
        accepted.is_subset(&ours)
    })
    .await;
    let mut copies: BTreeMap<String, usize> = BTreeMap::new();
    for record in records.iter().filter(|p| p.key.starts_with(&run)) {
        let event: LeadEvent = codec.decode(&record.value).await.unwrap();
        *copies.entry(event.event_id).or_default() += 1;
    }
    for id in &accepted {
        assert_eq!(
            copies.get(id),
            Some(&1),
            "{id} was answered 202 but is in Kafka {:?} times",
            copies.get(id)
        );
    }
    assert!(copies.values().all(|n| *n == 1), "no event is published twice");
    status
}
