//! The enricher binary on the real stack (Kafka, the registry, MongoDB) with the project's
//! nationalize stand-in: exactly once through kill -9, pausing on a rate limit, and dead letters
//! that never stop a partition.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use common::{EnricherRun, StandIn, decode_all, json_faults, names, produce_names, run_id};
use leadflow_core::contract::records::{DeadLetter, EnrichmentStatus, LeadEnriched, PipelineStage};
use leadflow_core::contract::topics;
use leadflow_testkit::kafka::{committed_offsets, end_offsets, produce, producer, read_from_within};
use leadflow_testkit::{Stack, eventually, poison};
use serde_json::json;

/// Every enricher started here consumes every name written after its start, so two tests at
/// once would enrich each other's names: they take turns.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Small transactions, so that a kill lands among many of them.
fn small_batches() -> Vec<(&'static str, String)> {
    vec![("LEADFLOW_CONSUMER__MAX_BATCH_RECORDS", "50".to_owned())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_name_is_enriched_exactly_once_through_two_kill_9s() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    // Latency keeps the enricher busy long enough to be killed mid-work.
    let stand_in = StandIn::start(json_faults(60, 0.0, None, 86_400)).await;
    let run = EnricherRun::new(&stack);
    let id = run_id();
    let leads = names(&id, 1000);
    produce_names(&stack, &leads).await;
    let names_end = end_offsets(&stack, topics::NAMES);

    let mut enricher = run.start(&stack, &stand_in, "a", &small_batches()).await;
    for (kill, after) in [(1, 150usize), (2, 500)] {
        let counter = common::DistinctKeys::new(&format!("{id}-"));
        read_from_within(&stack, topics::ENRICHED, &run.enriched_from, Duration::from_secs(120), |records| {
            counter.count(records) >= after
        })
        .await;
        let committed = committed_offsets(&stack, &run.group, topics::NAMES);
        let remaining: i64 =
            names_end.iter().map(|(p, end)| end - committed.get(p).copied().unwrap_or(0)).sum();
        assert!(remaining > 0, "kill {kill} must land while names are still being enriched");
        enricher.signal(libc::SIGKILL).unwrap();
        let status = enricher.wait_exit(Duration::from_secs(10)).await.unwrap();
        assert_eq!(status.code(), None, "kill {kill}: killed by a signal, not exited");
        enricher = run.start(&stack, &stand_in, "a", &small_batches()).await;
    }

    // Done means the group's committed offsets reached the end of what was produced: after that
    // nothing more can be written for these names.
    eventually("the group commits every produced name", Duration::from_secs(180), || {
        let committed = committed_offsets(&stack, &run.group, topics::NAMES);
        let done = names_end.iter().all(|(p, end)| committed.get(p).is_some_and(|c| c >= end));
        async move { Ok(done.then_some(())).map_err(|_: ()| String::new()) }
    })
    .await
    .unwrap();
    let enriched: Vec<LeadEnriched> = run.read_enriched(&stack, &id, 1000, Duration::from_secs(60)).await;

    let mut per_lead: HashMap<&str, usize> = HashMap::new();
    for record in &enriched {
        *per_lead.entry(record.lead_id.as_str()).or_default() += 1;
    }
    let duplicated: Vec<_> = per_lead.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicated.is_empty(), "leads enriched more than once: {duplicated:?}");
    let missing: Vec<_> = leads.iter().filter(|l| !per_lead.contains_key(l.lead_id.as_str())).collect();
    assert!(missing.is_empty(), "{} leads never enriched", missing.len());
    assert_eq!(enriched.len(), 1000);
    for record in &enriched {
        let answer = stand_ins::nationalize::predict(&enricher::rules::lookup_key(&record.name).unwrap());
        let countries: Vec<_> = answer
            .country
            .iter()
            .map(|c| enricher::rules::CountryProbability {
                country_id: c.country_id.clone(),
                probability: c.probability,
            })
            .collect();
        let expected = enricher::rules::verdict(&countries, 0.6);
        assert_eq!(record.country_code, expected.country_code, "{}", record.lead_id);
        assert_eq!(record.status, expected.status, "{}", record.lead_id);
    }
    enricher.signal(libc::SIGTERM).unwrap();
    assert_eq!(enricher.wait_exit(Duration::from_secs(30)).await.unwrap().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_partitions_and_one_leaving_hands_its_work_over() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let stand_in = StandIn::start(json_faults(40, 0.0, None, 86_400)).await;
    let run = EnricherRun::new(&stack);
    let id = run_id();
    let leads = names(&id, 400);
    let mut a = run.start(&stack, &stand_in, "a", &small_batches()).await;
    let mut b = run.start(&stack, &stand_in, "b", &small_batches()).await;
    // Both members hold partitions before any work arrives.
    for instance in [&mut a, &mut b] {
        instance.wait_for_log("partitions assigned", Duration::from_secs(30)).await.unwrap();
    }
    eventually("a and b split the six partitions", Duration::from_secs(30), || {
        let (la, lb) = (last_assignment(&a.logs()), last_assignment(&b.logs()));
        async move {
            Ok(match (la, lb) {
                (Some(x), Some(y)) if !x.is_empty() && !y.is_empty() && x.len() + y.len() == 6 => Some(()),
                _ => None,
            })
        }
    })
    .await
    .unwrap();
    produce_names(&stack, &leads).await;

    let counter = common::DistinctKeys::new(&format!("{id}-"));
    read_from_within(&stack, topics::ENRICHED, &run.enriched_from, Duration::from_secs(60), |records| {
        counter.count(records) >= 100
    })
    .await;
    a.signal(libc::SIGTERM).unwrap();
    assert_eq!(a.wait_exit(Duration::from_secs(30)).await.unwrap().code(), Some(0), "{}", a.logs());

    let enriched = run.read_enriched(&stack, &id, 400, Duration::from_secs(120)).await;
    let mut seen = std::collections::HashSet::new();
    let repeated: Vec<_> =
        enriched.iter().filter(|e| !seen.insert(e.lead_id.clone())).map(|e| &e.lead_id).collect();
    assert!(repeated.is_empty(), "enriched twice across the handover: {repeated:?}");
    // a static member's partitions move when its session ends (10 s), which may come after the
    // last name if a had finished its share before it stopped.
    eventually("b takes every partition over", Duration::from_secs(30), || {
        let held = last_assignment(&b.logs()).map(|p| p.len());
        async move { Ok((held == Some(6)).then_some(())) }
    })
    .await
    .unwrap();
}

/// The partitions named by the last "partitions assigned" line of a log.
fn last_assignment(logs: &str) -> Option<Vec<String>> {
    let line = logs.lines().rfind(|l| l.contains("partitions assigned"))?;
    let at = line.find("partitions=")? + "partitions=".len();
    let list = line[at..].split_whitespace().next().unwrap_or("").trim_matches('"');
    Some(list.split(',').filter(|p| !p.is_empty()).map(str::to_owned).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_api_pauses_consumption_then_it_resumes_with_nothing_failed() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let stand_in = StandIn::start(json_faults(0, 0.0, Some(1), 3)).await;
    let run = EnricherRun::new(&stack);
    let id = run_id();
    let mut enricher = run.start(&stack, &stand_in, "a", &[]).await;
    // Another client spends the window's quota first, so the enricher meets a 429.
    reqwest::get(format!("{}/?name=someone", stand_in.base_url)).await.unwrap();
    produce_names(&stack, &names(&id, 25)).await;

    enricher.wait_for_log("consumption paused", Duration::from_secs(30)).await.unwrap();
    enricher.wait_for_log("consumption resumed", Duration::from_secs(30)).await.unwrap();
    let enriched = run.read_enriched(&stack, &id, 25, Duration::from_secs(60)).await;
    assert_eq!(enriched.len(), 25);
    assert!(enriched.iter().all(|e| e.reason.as_deref() != Some("enrichment_failed")), "{enriched:?}");
    assert!(stand_in.stats().await["rateLimited"].as_u64().unwrap() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_become_dead_letters_and_the_partition_keeps_moving() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let stand_in = StandIn::start(json_faults(0, 1.0, None, 86_400)).await;
    let run = EnricherRun::new(&stack);
    let id = run_id();
    let lead = names(&id, 1).remove(0);
    // A poison record and then a good one under the same key: the same partition, in order.
    let poison = b"{\"leadId\": \"not closed";
    produce(&producer(&stack), topics::NAMES, &lead.lead_id, poison).await;
    produce_names(&stack, std::slice::from_ref(&lead)).await;
    let _enricher =
        run.start(&stack, &stand_in, "a", &[("LEADFLOW_NATIONALIZE__MAX_ATTEMPTS", "2".into())]).await;

    let enriched = run.read_enriched(&stack, &id, 1, Duration::from_secs(60)).await;
    assert_eq!(enriched[0].status, EnrichmentStatus::ToCheck);
    assert_eq!(enriched[0].reason.as_deref(), Some("enrichment_failed"));
    assert_eq!(stand_in.stats().await["requests"], 2, "max_attempts requests, then give up");

    let letters = read_from_within(&stack, topics::DLQ, &run.dlq_from, Duration::from_secs(30), |records| {
        records.iter().filter(|r| r.key == lead.lead_id).count() >= 2
    })
    .await;
    let letters: Vec<DeadLetter> = decode_all(&stack, letters.iter().filter(|r| r.key == lead.lead_id)).await;
    let base64 = |text: &Option<String>| {
        base64::engine::general_purpose::STANDARD.decode(text.as_deref().unwrap()).unwrap()
    };
    let malformed = letters.iter().find(|l| l.error_kind == "malformed").expect("the poison record's letter");
    assert_eq!(malformed.stage, PipelineStage::Enricher);
    assert_eq!(base64(&malformed.original_value), poison);
    assert_eq!(malformed.source_topic.as_deref(), Some(topics::NAMES));
    let failed =
        letters.iter().find(|l| l.error_kind == "enrichment_failed").expect("the failed name's letter");
    assert!(failed.error.contains("after 2 attempts"), "{}", failed.error);
    let replayed: leadflow_core::contract::records::NameSubmitted =
        common::codec(&stack).decode(&base64(&failed.original_value)).await.unwrap();
    assert_eq!(replayed, lead, "the letter holds the original record, ready to replay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_poison_names_typed_into_the_cli_are_dead_lettered_whole_and_the_next_name_is_enriched() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let stand_in = StandIn::start(json!({})).await;
    let run = EnricherRun::new(&stack);
    let id = run_id();
    let lead = names(&id, 1).remove(0);
    let valid = serde_json::to_value(&lead).unwrap();
    let (not_json, violation) = (poison::huge_non_json(), poison::huge_schema_violation(&valid));
    let valid_line = valid.to_string().into_bytes();
    // One key, so one partition: the valid name waits behind both poison ones.
    poison::produce_with_cli(
        &stack,
        topics::NAMES,
        &[(&lead.lead_id, &not_json), (&lead.lead_id, &violation), (&lead.lead_id, &valid_line)],
    );
    let _enricher = run.start(&stack, &stand_in, "a", &[]).await;

    let enriched = run.read_enriched(&stack, &id, 1, Duration::from_secs(90)).await;
    assert_eq!(enriched[0].lead_id, lead.lead_id, "the name after the poison is enriched");
    let letters =
        poison::dead_letters_for(&stack, &run.dlq_from, &lead.lead_id, 2, Duration::from_secs(30)).await;
    poison::assert_bounded_letter(&letters[0].0, &letters[0].1, &not_json, "malformed", topics::NAMES);
    poison::assert_bounded_letter(
        &letters[1].0,
        &letters[1].1,
        &violation,
        "schema_violation",
        topics::NAMES,
    );
    poison::wait_until_committed_to_end(&stack, &run.group, topics::NAMES, Duration::from_secs(30)).await;
}
