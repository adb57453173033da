//! The CRM budget holds per deployment: two crm-sink processes in one group share one request
//! budget through MongoDB, so together they keep within what the CRM allows. Against the
//! HubSpot-mode stand-in, which refuses a 13th request in any second, both sinks are configured
//! for 11 requests a second each: counted apart they would send up to 22 a second and draw 429s;
//! shared, none.

mod common;

use std::time::Duration;

use common::{CrmStandIn, ONE_AT_A_TIME, SinkRun, enriched, produce_records, run_id};
use leadflow_core::contract::records::EnrichmentStatus;
use leadflow_testkit::{Stack, eventually};
use serde_json::json;
use time::OffsetDateTime;

const LEADS: usize = 120;

/// `leadflow_crm_requests_total{outcome="ok"}` of the sink whose ops endpoint is `ops`.
async fn ok_requests(ops: &str) -> u64 {
    let text = reqwest::get(format!("http://{ops}/metrics")).await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with("leadflow_crm_requests_total{") && l.contains("outcome=\"ok\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test]
async fn two_sinks_in_one_group_keep_within_one_crm_budget_together() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let crm = CrmStandIn::start(json!({ "burstLimit": 12, "burstWindowMs": 1000 })).await;
    let run = SinkRun::new(&stack);
    // One contact a request, so the leads make 120 requests; 11 a second for each sink.
    let settings = [
        ("LEADFLOW_CRM__HTTP__BATCH_SIZE", "1".to_owned()),
        ("LEADFLOW_CRM__HTTP__REQUESTS_PER_WINDOW", "11".to_owned()),
        ("LEADFLOW_CRM__HTTP__WINDOW", "1s".to_owned()),
        ("LEADFLOW_CRM__HTTP__BUDGET_NAME", format!("budget-test-{}", run_id())),
    ];
    let (mut a, ops_a) = run.start_with_ops(&stack, "a", &crm, &settings).await;
    let (mut b, ops_b) = run.start_with_ops(&stack, "b", &crm, &settings).await;

    let id = run_id();
    let now = OffsetDateTime::now_utc();
    let records: Vec<_> = (0..LEADS)
        .map(|i| enriched(&format!("{id}-{i}"), "Ada Lovelace", EnrichmentStatus::Verified, now))
        .collect();
    produce_records(&stack, &records).await;

    eventually("every lead reaches the CRM", Duration::from_secs(180), || async {
        let contacts = crm.contacts().await;
        Ok((contacts.keys().filter(|k| k.starts_with(&id)).count() == LEADS).then_some(()))
    })
    .await
    .unwrap();

    let stats = crm.hubspot_stats().await;
    assert_eq!(stats.rate_limited, 0, "the two sinks never went over the CRM's limit together: {stats:?}");
    let (from_a, from_b) = (ok_requests(&ops_a).await, ok_requests(&ops_b).await);
    assert!(
        from_a > 0 && from_b > 0,
        "both sinks delivered (a {from_a}, b {from_b}), so both spent the budget"
    );
    assert!(from_a + from_b >= LEADS as u64, "a {from_a} + b {from_b}");
    a.signal(libc::SIGTERM).unwrap();
    b.signal(libc::SIGTERM).unwrap();
    a.wait_exit(Duration::from_secs(30)).await.unwrap();
    b.wait_exit(Duration::from_secs(30)).await.unwrap();
}
