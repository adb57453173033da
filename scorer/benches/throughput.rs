//! Scorer benchmarks on the local stack (run with `bench/scorer`, which builds the release
//! binaries and starts the stack):
//!
//! 1. Throughput, events per second, with exactly-once on and off (at-least-once: no Kafka
//!    transaction, offsets committed after the records are acknowledged; the MongoDB writes are
//!    the same). Each run writes BENCH_EVENTS events over BENCH_LEADS leads to
//!    `leads.events.v1`, starts the release scorer in a consumer group and database of its own
//!    (start-up is not timed), and times until a `read_committed` reader has seen a LeadScored
//!    for every event. Runs alternate on and off, BENCH_RUNS of each.
//! 2. End-to-end latency at steady rates: single events POSTed to the release gateway at
//!    each of BENCH_RATES events/s ("500 200") for BENCH_SECONDS, each timed from when it was due to the moment
//!    its LeadScored reaches a `read_committed` reader; p50 and p99 over all events, and the
//!    number that never arrived within the deadline.
//! 3. History: BENCH_HISTORY ("1000000 100000") events over BENCH_HISTORY_LEADS (10,000) leads,
//!    timed as a throughput run, then the second count more on the same leads: an event's cost
//!    must not grow with its lead's history. `BENCH_HISTORY=0` skips it.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ScorerRun, event, produce_events, run_id};
use leadflow_core::contract::records::LeadEvent;
use leadflow_core::contract::topics;
use leadflow_testkit::{ServiceProcess, Stack, repo_root};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use time::macros::datetime;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn release_binary(name: &str) -> String {
    let path = repo_root().join("target/release").join(name);
    assert!(path.exists(), "{} is not built; run bench/scorer", path.display());
    path.to_string_lossy().into_owned()
}

/// Events `indices` of the run: event i goes to lead i mod `leads`, i seconds after the start,
/// so each lead's events come in order.
fn input(run: &str, indices: std::ops::Range<usize>, leads: usize) -> Vec<LeadEvent> {
    let start = datetime!(2026-01-16 00:00 UTC);
    let types = ["page_view", "signup", "download", "demo_request", "contract_signed"];
    indices
        .map(|i| {
            let lead = format!("{run}-L{}", i % leads);
            event(
                &format!("{run}-e{i}"),
                &lead,
                types[i % types.len()],
                start + time::Duration::seconds(i as i64),
            )
        })
        .collect()
}

async fn scorer(stack: &Stack, run: &ScorerRun, exactly_once: bool) -> ServiceProcess {
    let mut env = run.env(stack, "bench");
    env.push(("LEADFLOW_CONSUMER__EXACTLY_ONCE", exactly_once.to_string()));
    // Per-batch timings (process, commit) go to the log under target/test-logs/.
    env.push((
        "LEADFLOW_TELEMETRY__LOG_FILTER",
        "warn,leadflow_core=info,leadflow_core::stage::exactly_once=debug".to_owned(),
    ));
    let (mut process, _) =
        ServiceProcess::spawn_against(stack, &release_binary("scorer"), &env).await.unwrap();
    process.wait_for_log("consuming", Duration::from_secs(60)).await.unwrap();
    process
}

async fn throughput(stack: &Stack, exactly_once: bool, n: usize, leads: usize) -> f64 {
    let run = ScorerRun::new(stack);
    let id = run_id();
    produce_events(stack, &input(&id, 0..n, leads)).await;
    timed_scoring(stack, &run, exactly_once, &id, n, &run.scores_from).await
}

/// Starts the scorer of `run` and times until `n` LeadScored of the run `id` have been read
/// from `from`; stops the scorer, so that the next run starts on a quiet machine.
async fn timed_scoring(
    stack: &Stack,
    run: &ScorerRun,
    exactly_once: bool,
    id: &str,
    n: usize,
    from: &HashMap<i32, i64>,
) -> f64 {
    let mut process = scorer(stack, run, exactly_once).await;
    let started = Instant::now();
    let prefix = format!("{id}-L");
    // Counts each record once: the reader's check runs after every record.
    let (counted, looked_at) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    leadflow_testkit::kafka::read_from_within(stack, topics::SCORES, from, Duration::from_secs(1800), |r| {
        let new = r[looked_at.get()..].iter().filter(|r| r.key.starts_with(&prefix)).count();
        looked_at.set(r.len());
        counted.set(counted.get() + new);
        counted.get() >= n
    })
    .await;
    let rate = n as f64 / started.elapsed().as_secs_f64();
    process.signal(libc::SIGTERM).unwrap();
    process.wait_exit(Duration::from_secs(60)).await.unwrap();
    rate
}

/// Whether an event's cost grows with its lead's history: `first` events over `leads` leads,
/// then `second` more on the same leads, each phase timed as a throughput run (exactly-once).
async fn history(stack: &Stack, first: usize, second: usize, leads: usize) {
    let run = ScorerRun::new(stack);
    let id = run_id();
    let produced = Instant::now();
    produce_events(stack, &input(&id, 0..first, leads)).await;
    println!(
        "history: {first} events over {leads} leads produced in {:.0} s",
        produced.elapsed().as_secs_f64()
    );
    let rate_first = timed_scoring(stack, &run, true, &id, first, &run.scores_from).await;
    let from = leadflow_testkit::kafka::end_offsets(stack, topics::SCORES);
    produce_events(stack, &input(&id, first..first + second, leads)).await;
    let rate_second = timed_scoring(stack, &run, true, &id, second, &from).await;
    println!(
        "history: first {first} events {rate_first:.0} events/s; then {second} more on the same leads \
         ({} events a lead before them) {rate_second:.0} events/s: {:+.1}%",
        first / leads,
        (rate_second / rate_first - 1.0) * 100.0
    );
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn latency(stack: &Stack, rate: u64, seconds: u64) {
    let run = ScorerRun::new(stack);
    let mut scorer = scorer(stack, &run, true).await;
    let mut env = vec![
        ("LEADFLOW_HTTP__LISTEN", "127.0.0.1:0".to_owned()),
        ("LEADFLOW_TELEMETRY__LOG_FILTER", "warn,ingest_gateway=info,leadflow_core=info".to_owned()),
    ];
    env.extend(leadflow_testkit::auth::gateway_auth_env());
    let (mut gateway, _) =
        ServiceProcess::spawn_against(stack, &release_binary("ingest-gateway"), &env).await.unwrap();
    let api = gateway.wait_for_log_field("API listening", "addr", Duration::from_secs(30)).await.unwrap();
    let url = format!("http://{api}/api/events");
    // A key whose limit the benchmark never meets: it measures the pipeline, not the limiter.
    let key = leadflow_testkit::auth::create_project_and_key(
        &format!("http://{api}"),
        "default",
        &["ingest"],
        leadflow_testkit::auth::TEST_EVENTS_PER_MINUTE,
    )
    .await
    .unwrap();

    let arrivals: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let reader = {
        let arrivals = arrivals.clone();
        let from = run.scores_from.clone();
        let bootstrap = stack.kafka_bootstrap.clone();
        tokio::spawn(async move {
            let consumer: StreamConsumer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("group.id", leadflow_testkit::unique("bench-reader"))
                .set("isolation.level", "read_committed")
                .set("fetch.wait.max.ms", "5")
                .create()
                .unwrap();
            let mut assignment = TopicPartitionList::new();
            for (p, o) in &from {
                assignment.add_partition_offset(topics::SCORES, *p, Offset::Offset(*o)).unwrap();
            }
            consumer.assign(&assignment).unwrap();
            let codec = common::codec(&Stack::get());
            loop {
                let Ok(message) = consumer.recv().await else { continue };
                let at = Instant::now();
                if let Some(value) = message.payload()
                    && let Ok(scored) =
                        codec.decode::<leadflow_core::contract::records::LeadScored>(value).await
                {
                    arrivals.lock().unwrap().insert(scored.event_id, at);
                }
            }
        })
    };

    let id = run_id();
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    let total = (rate * seconds) as usize;
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let period = Duration::from_micros(1_000_000 / rate);
    let mut ticker = tokio::time::interval(period);
    let start = datetime!(2026-01-16 00:00 UTC);
    let mut posts = Vec::with_capacity(total);
    let t0 = Instant::now();
    for i in 0..total {
        ticker.tick().await;
        // Timed from when the event was due, so a sender that falls behind shows as latency.
        let due = t0 + period * i as u32;
        let body = serde_json::json!({
            "eventId": format!("{id}-e{i}"), "leadId": format!("{id}-L{}", i % 200),
            "eventType": "page_view", "timestamp": (start + time::Duration::seconds(i as i64)).format(&time::format_description::well_known::Rfc3339).unwrap(),
        });
        let (client, url, key, sent) = (client.clone(), url.clone(), key.clone(), sent.clone());
        posts.push(tokio::spawn(async move {
            let at = due;
            let ok = client
                .post(&url)
                .bearer_auth(&key)
                .json(&body)
                .send()
                .await
                .map(|r| r.status().as_u16() == 202)
                .unwrap_or(false);
            if ok {
                sent.lock().unwrap().insert(body["eventId"].as_str().unwrap().to_owned(), at);
            }
        }));
    }
    for post in posts {
        post.await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let all_arrived = {
            let (sent, arrived) = (sent.lock().unwrap(), arrivals.lock().unwrap());
            sent.keys().all(|k| arrived.contains_key(k))
        };
        if all_arrived {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    reader.abort();
    let (accepted, mut latencies) = {
        let (sent, arrived) = (sent.lock().unwrap(), arrivals.lock().unwrap());
        let latencies: Vec<f64> = sent
            .iter()
            .filter_map(|(k, at)| arrived.get(k).map(|a| a.duration_since(*at).as_secs_f64() * 1000.0))
            .collect();
        (sent.len(), latencies)
    };
    latencies.sort_by(f64::total_cmp);
    let missing = accepted - latencies.len();
    for process in [&mut scorer, &mut gateway] {
        process.signal(libc::SIGTERM).unwrap();
        process.wait_exit(Duration::from_secs(60)).await.unwrap();
    }
    println!(
        "latency at {rate} events/s for {seconds} s: {} accepted of {total}, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {missing} not scored within 60 s",
        accepted,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let stack = Stack::get();
    let n = setting("BENCH_EVENTS", 10_000) as usize;
    let leads = setting("BENCH_LEADS", 500) as usize;
    let runs = setting("BENCH_RUNS", 3);
    println!("scorer throughput: {n} events over {leads} leads per run");
    println!("{:>4} {:>26} {:>26}", "run", "exactly-once events/s", "at-least-once events/s");
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for r in 1..=runs {
        let a = throughput(&stack, true, n, leads).await;
        let b = throughput(&stack, false, n, leads).await;
        println!("{r:>4} {a:>26.0} {b:>26.0}");
        on.push(a);
        off.push(b);
    }
    on.sort_by(f64::total_cmp);
    off.sort_by(f64::total_cmp);
    let (m_on, m_off) = (on[on.len() / 2], off[off.len() / 2]);
    println!(
        "median: exactly-once {m_on:.0} events/s, at-least-once {m_off:.0} events/s: exactly-once costs {:.1}%",
        (1.0 - m_on / m_off) * 100.0
    );
    let rates = std::env::var("BENCH_RATES").unwrap_or_else(|_| "500 200".to_owned());
    for rate in rates.split_whitespace().filter_map(|r| r.parse().ok()) {
        latency(&stack, rate, setting("BENCH_SECONDS", 30)).await;
    }
    let phases = std::env::var("BENCH_HISTORY").unwrap_or_else(|_| "1000000 100000".to_owned());
    if let [first, second] =
        phases.split_whitespace().filter_map(|n| n.parse().ok()).collect::<Vec<usize>>()[..]
        && first > 0
    {
        history(&stack, first, second, setting("BENCH_HISTORY_LEADS", 10_000) as usize).await;
    }
}
