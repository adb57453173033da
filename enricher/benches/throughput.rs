//! Enricher throughput on the local stack, in names per second, on its two paths:
//!
//! - stand-in path: every first name is new, so each costs an API request (10 names per
//!   request) to the project's nationalize stand-in, served in this process with no latency
//!   (`BENCH_LATENCY_MS` adds some), and a MongoDB cache write;
//! - cache-hit path: new leads with the same first names, answered by the in-process LRU.
//!
//! Each phase writes its names to `leads.names.v1` first, then starts timing when the enricher
//! (the release binary, its own consumer group starting at the end of the topic) is consuming,
//! and stops when a `read_committed` reader has seen a LeadEnriched for every lead. Run with
//! `bench/enricher` (which starts the stack) or `cargo bench -p enricher --bench throughput`.
//! Settings: BENCH_NAMES (names per phase, 20000), BENCH_LATENCY_MS (0),
//! BENCH_CONCURRENCY (API requests at once, 4), BENCH_RUNS (3).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{EnricherRun, StandIn, json_faults, names, run_id};
use leadflow_core::contract::records::NameSubmitted;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Phase {
    seconds: f64,
    requests: u64,
}

async fn phase(
    stack: &leadflow_testkit::Stack,
    run: &EnricherRun,
    stand_in: &StandIn,
    id: &str,
    leads: &[NameSubmitted],
    enricher: &mut Option<leadflow_testkit::ServiceProcess>,
    concurrency: u64,
) -> Phase {
    let from = leadflow_testkit::kafka::end_offsets(stack, leadflow_core::contract::topics::ENRICHED);
    common::produce_names(stack, leads).await;
    let requests_before = stand_in.requests().await;
    if enricher.is_none() {
        let env = [
            ("LEADFLOW_NATIONALIZE__MAX_CONCURRENT_REQUESTS", concurrency.to_string()),
            ("LEADFLOW_NATIONALIZE__REQUESTS_PER_SECOND", "100000".to_owned()),
            ("LEADFLOW_TELEMETRY__LOG_FILTER", "warn,leadflow_core=info".to_owned()),
        ];
        // Start-up is not timed: the clock starts once the enricher is consuming.
        *enricher = Some(run.start(stack, stand_in, "bench", &env).await);
    }
    let started = Instant::now();
    let counter = common::DistinctKeys::new(&format!("{id}-"));
    let topic = leadflow_core::contract::topics::ENRICHED;
    leadflow_testkit::kafka::read_from_within(stack, topic, &from, Duration::from_secs(600), |records| {
        counter.count(records) >= leads.len()
    })
    .await;
    Phase { seconds: started.elapsed().as_secs_f64(), requests: stand_in.requests().await - requests_before }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let stack = leadflow_testkit::Stack::get();
    let n = setting("BENCH_NAMES", 20_000) as usize;
    let latency = setting("BENCH_LATENCY_MS", 0);
    let concurrency = setting("BENCH_CONCURRENCY", 4);
    let runs = setting("BENCH_RUNS", 3);
    println!(
        "enricher throughput: {n} names per phase, stand-in latency {latency} ms, {concurrency} requests at once"
    );
    println!(
        "{:>4} {:>22} {:>10} {:>22} {:>10}",
        "run", "stand-in path names/s", "requests", "cache-hit names/s", "requests"
    );
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for r in 1..=runs {
        let stand_in = StandIn::start(json_faults(latency, 0.0, None, 86_400)).await;
        let run = EnricherRun::new(&stack);
        let mut enricher = None;
        let id = run_id();
        let first = names(&id, n);
        let a = phase(&stack, &run, &stand_in, &id, &first, &mut enricher, concurrency).await;
        let id_b = run_id();
        let again: Vec<NameSubmitted> = first
            .iter()
            .enumerate()
            .map(|(i, lead)| NameSubmitted { lead_id: format!("{id_b}-{i}"), ..lead.clone() })
            .collect();
        let b = phase(&stack, &run, &stand_in, &id_b, &again, &mut enricher, concurrency).await;
        let (cold_rate, warm_rate) = (n as f64 / a.seconds, n as f64 / b.seconds);
        println!("{r:>4} {cold_rate:>22.0} {:>10} {warm_rate:>22.0} {:>10}", a.requests, b.requests);
        cold.push(cold_rate);
        warm.push(warm_rate);
        if let Some(process) = enricher.as_ref() {
            process.signal(libc::SIGTERM).unwrap();
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "median: stand-in path {:.0} names/s, cache-hit path {:.0} names/s",
        median(&mut cold),
        median(&mut warm)
    );
}
