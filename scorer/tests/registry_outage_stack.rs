//! A schema registry that fails is not a reason to dead-letter anything. A proxy in front of
//! the real registry answers 500, 504 and a 404 without the registry's error code while the
//! scorer meets a schema id it has never seen; nothing is dead-lettered, `/readyz` names the
//! registry, and once the registry answers again every event is scored.

mod common;

use std::time::Duration;

use common::{ONE_AT_A_TIME, ScorerRun, run_id};
use leadflow_core::contract::codec::SchemaCodec;
use leadflow_core::contract::topics;
use leadflow_testkit::fault_proxy::FaultProxy;
use leadflow_testkit::kafka::{produce, producer, read_to_end};
use leadflow_testkit::{Stack, eventually, unique};
use serde_json::json;

/// `http://host:port` and the path of the registry's URL.
fn split_url(url: &str) -> (String, String) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => (url[..after_scheme + i].to_owned(), url[after_scheme + i..].to_owned()),
        None => (url.to_owned(), String::new()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_errors_are_waited_out_and_nothing_is_dead_lettered() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    // A schema id the scorer has never seen, so that decoding must ask the registry.
    let direct: SchemaCodec = common::codec(&stack);
    let writer_id = direct
        .register_schema(&format!("{}-value", unique("test.outage")), r#"{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"leadId":{"type":"string"}}}"#)
        .await
        .unwrap();

    let (origin, path) = split_url(&stack.schema_registry_url);
    let proxy = FaultProxy::start(&origin).await;
    let run = ScorerRun::new(&stack);
    let (_scorer, ops) = run
        .start_with_ops(
            &stack,
            "a",
            &[
                ("LEADFLOW_SCHEMA_REGISTRY__URL", format!("{}{path}", proxy.base_url)),
                ("LEADFLOW_CONSUMER__RETRY_BACKOFF_MS", "200".into()),
            ],
        )
        .await;

    proxy.fail_with(&[500, 504, 404]);
    let lead = format!("{}-outage", run_id());
    let kafka = producer(&stack);
    for (i, event_type) in ["page_view", "signup", "demo_request"].iter().enumerate() {
        let event = json!({"eventId": format!("o{i}"), "leadId": lead, "eventType": event_type, "timestamp": format!("2026-01-16T12:0{i}:00Z")});
        let mut framed = vec![0u8];
        framed.extend_from_slice(&writer_id.to_be_bytes());
        framed.extend_from_slice(event.to_string().as_bytes());
        produce(&kafka, topics::EVENTS, &lead, &framed).await;
    }

    eventually("the scorer to meet several injected failures", Duration::from_secs(60), || {
        let failed = proxy.failed();
        async move { Ok((failed >= 6).then_some(())) }
    })
    .await
    .unwrap();
    let readiness = reqwest::get(format!("{ops}/readyz")).await.unwrap();
    let (status, body) = (readiness.status(), readiness.text().await.unwrap());
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("schema_registry"), "{body}");

    proxy.heal();
    let scores = run.read_scores(&stack, &lead, 3, Duration::from_secs(90)).await;
    let trail: Vec<f64> = scores.iter().map(|s| s.score).collect();
    assert_eq!(trail, vec![5.0, 25.0, 75.0], "every event is scored once the registry answers");
    let letters = read_to_end(&stack, topics::DLQ, &run.dlq_from, Duration::from_secs(30)).await;
    assert!(letters.iter().all(|r| r.key != lead), "nothing was dead-lettered for the outage");
    eventually("ready again", Duration::from_secs(30), || {
        let ops = ops.clone();
        async move {
            let status = reqwest::get(format!("{ops}/readyz")).await.map_err(|e| e.to_string())?.status();
            Ok((status == 200).then_some(()))
        }
    })
    .await
    .unwrap();
}
