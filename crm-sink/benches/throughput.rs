//! crm-sink benchmark on the local stack (run with `bench/crm-sink`, which builds the release
//! binaries and starts the stack): Verified leads delivered per second, through the CRM
//! stand-in (HubSpot mode) at each of BENCH_LATENCIES milliseconds per CRM request ("0 50").
//!
//! Each run writes BENCH_LEADS LeadEnriched records (all Verified) to `leads.enriched.v1`,
//! starts the release crm-sink in a consumer group and database of its own with the stand-in
//! in this process (start-up is not timed: the clock starts when the sink logs "consuming"),
//! and stops the clock when the stand-in has applied a write for every lead. BENCH_RUNS runs
//! per latency; the median is printed.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{CrmStandIn, SinkRun, enriched, produce_records, run_id};
use leadflow_core::contract::records::EnrichmentStatus;
use leadflow_testkit::{Stack, eventually};
use serde_json::json;
use time::OffsetDateTime;

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

struct Measured {
    leads_per_s: f64,
    requests: u64,
}

async fn one_run(stack: &Stack, leads: usize, latency_ms: u64) -> Measured {
    let crm = CrmStandIn::start(json!({ "latencyMs": latency_ms })).await;
    let run = SinkRun::new(stack);
    let id = run_id();
    let now = OffsetDateTime::now_utc();
    let records: Vec<_> = (0..leads)
        .map(|i| enriched(&format!("{id}-{i}"), "Ada Lovelace", EnrichmentStatus::Verified, now))
        .collect();
    produce_records(stack, &records).await;

    let mut sink = run.start(stack, "bench", &crm, &[]).await;
    let started = Instant::now();
    eventually("every lead delivered", Duration::from_secs(600), || async {
        let writes = crm.hubspot_stats().await.applied_writes;
        Ok((writes >= leads as u64).then_some(()))
    })
    .await
    .unwrap();
    let elapsed = started.elapsed();
    let requests = crm.hubspot_stats().await.requests;
    sink.signal(libc::SIGTERM).unwrap();
    sink.wait_exit(Duration::from_secs(30)).await.unwrap();
    Measured { leads_per_s: leads as f64 / elapsed.as_secs_f64(), requests }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let stack = Stack::get();
    let leads: usize = setting("BENCH_LEADS", "5000").parse().expect("BENCH_LEADS is a number");
    let runs: usize = setting("BENCH_RUNS", "3").parse().expect("BENCH_RUNS is a number");
    let latencies: Vec<u64> = setting("BENCH_LATENCIES", "0 50")
        .split_whitespace()
        .map(|l| l.parse().expect("BENCH_LATENCIES holds numbers of milliseconds"))
        .collect();
    println!("crm-sink throughput: {leads} Verified leads per run, {runs} runs per CRM latency");
    for latency in latencies {
        let mut rates = Vec::with_capacity(runs);
        for r in 1..=runs {
            let measured = one_run(&stack, leads, latency).await;
            println!(
                "  latency {latency:>3} ms, run {r}: {:>7.0} leads/s ({} CRM requests)",
                measured.leads_per_s, measured.requests
            );
            rates.push(measured.leads_per_s);
        }
        rates.sort_by(f64::total_cmp);
        println!("median at {latency} ms per CRM request: {:.0} leads/s", rates[rates.len() / 2]);
    }
}
