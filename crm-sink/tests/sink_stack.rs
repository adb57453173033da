//! The crm-sink against the real stack (Kafka, the schema registry, MongoDB) and the project's
//! CRM stand-in in HubSpot mode: which leads reach the CRM, when they are delivered again,
//! reviews, poison records, and `crm-sink reconcile`.

mod common;

use std::time::Duration;

use common::{
    CrmStandIn, ONE_AT_A_TIME, SinkRun, enriched, produce_records, run_id, scored, version_history,
    version_of,
};
use crm_sink::read_model::{LeadStatus, LeadView};
use leadflow_core::contract::records::{
    CrmDelivery, DeliveryStatus, EnrichmentStatus, LeadReviewed, PipelineStage, ReviewDecision, Stage,
};
use leadflow_core::contract::topics;
use leadflow_testkit::kafka::{end_offsets, produce, producer, read_to_end};
use leadflow_testkit::{ServiceProcess, Stack, eventually};
use serde_json::json;
use time::OffsetDateTime;

const WAIT: Duration = Duration::from_secs(60);

/// A sink of the test's own against the stack and a well-behaved CRM stand-in.
struct Running {
    stack: Stack,
    crm: CrmStandIn,
    run: SinkRun,
    sink: ServiceProcess,
}

impl Running {
    async fn start() -> Running {
        let stack = Stack::get();
        let crm = CrmStandIn::start(json!({})).await;
        let run = SinkRun::new(&stack);
        let sink = run.start(&stack, "a", &crm, &[]).await;
        Running { stack, crm, run, sink }
    }
}

/// Waits until MongoDB holds a view of `lead_id` that `ready` accepts: the sink has finished
/// the batch that produced it, deliveries included.
async fn wait_for_view(
    run: &SinkRun,
    stack: &Stack,
    lead_id: &str,
    ready: impl Fn(&LeadView) -> bool,
) -> LeadView {
    let store = run.store(stack).await;
    eventually(&format!("the read model of {lead_id}"), WAIT, || {
        let store = store.clone();
        let ready = &ready;
        async move {
            let view = store.lead(lead_id).await.map_err(|e| e.to_string())?;
            Ok(view.filter(|v| ready(v)))
        }
    })
    .await
    .unwrap()
}

async fn receipts_of(run: &SinkRun, stack: &Stack, lead_id: &str) -> Vec<CrmDelivery> {
    let records = read_to_end(stack, topics::CRM_DELIVERIES, &run.deliveries_from, WAIT).await;
    let mut receipts: Vec<CrmDelivery> =
        common::decode_all(stack, records.iter().filter(|r| r.key == lead_id)).await;
    receipts.sort_by_key(|r| r.version);
    receipts
}

#[tokio::test]
async fn verified_leads_become_contacts_to_check_leads_wait_and_a_review_releases_one() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Running { stack, crm, run, mut sink } = Running::start().await;
    let id = run_id();
    let now = OffsetDateTime::now_utc();
    let verified: Vec<String> = (0..3).map(|i| format!("{id}-v{i}")).collect();
    let to_check: Vec<String> = (0..2).map(|i| format!("{id}-t{i}")).collect();
    let mut records: Vec<_> =
        verified.iter().map(|lead| enriched(lead, "Ada Lovelace", EnrichmentStatus::Verified, now)).collect();
    records
        .extend(to_check.iter().map(|lead| enriched(lead, "Zoë Ångström", EnrichmentStatus::ToCheck, now)));
    produce_records(&stack, &records).await;

    for lead in &to_check {
        let view = wait_for_view(&run, &stack, lead, |_| true).await;
        assert_eq!(view.status(), Some(LeadStatus::ToCheck));
        assert_eq!(view.synced_version, 0, "a To Check lead is not delivered");
    }
    for lead in &verified {
        let view = wait_for_view(&run, &stack, lead, |v| v.synced_version == 1).await;
        assert!(view.synced_at.is_some());
    }
    let contacts = crm.contacts().await;
    for lead in &verified {
        let contact = &contacts[lead.as_str()];
        assert_eq!(version_of(contact), Some(1), "{contact}");
        // HubSpot keeps every value as text.
        let properties = &contact["properties"];
        assert_eq!(properties["leadflow_id"], lead.as_str());
        assert_eq!(properties["country"], "United Kingdom");
        assert_eq!(properties["leadflow_country_code"], "GB");
        assert_eq!(properties["leadflow_country_probability"], "0.82");
        assert_eq!(properties["leadflow_status"], "Verified");
        assert_eq!(properties["firstname"], "Ada");
        assert_eq!(properties["lastname"], "Lovelace");
        assert_eq!(properties["company"], "Analytical Engines");
    }
    for lead in &to_check {
        assert!(!contacts.contains_key(lead.as_str()), "{lead} is To Check and must wait for review");
    }

    // A person verifies one To Check lead: it travels through Kafka and reaches the CRM.
    let reviewed = &to_check[0];
    produce_records(
        &stack,
        &[LeadReviewed {
            project_id: "default".into(),
            lead_id: reviewed.clone(),
            decision: ReviewDecision::Verified,
            reviewer: Some("grace@example.com".into()),
            note: Some("spoke on the phone".into()),
            reviewed_at: OffsetDateTime::now_utc(),
        }],
    )
    .await;
    let view = wait_for_view(&run, &stack, reviewed, |v| v.synced_version == 2).await;
    assert_eq!(view.status(), Some(LeadStatus::Verified));
    let contacts = crm.contacts().await;
    assert_eq!(contacts[reviewed.as_str()]["properties"]["leadflow_status"], "Verified");
    assert_eq!(version_history(&contacts[reviewed.as_str()]), [2], "one write, of version 2");
    assert!(!contacts.contains_key(to_check[1].as_str()));

    stop(&mut sink).await;
    let receipts = receipts_of(&run, &stack, reviewed).await;
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!((receipts[0].version, receipts[0].status), (2, DeliveryStatus::Delivered));
    assert_eq!(receipts[0].destination, "http");
}

#[tokio::test]
async fn becoming_qualified_updates_the_contact_exactly_once() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Running { stack, crm, run, mut sink } = Running::start().await;
    let lead = format!("{}-q", run_id());
    let t0 = OffsetDateTime::now_utc();
    produce_records(&stack, &[enriched(&lead, "Grace Hopper", EnrichmentStatus::Verified, t0)]).await;
    produce_records(&stack, &[scored(&lead, 1, 30.0, Stage::Warm, t0)]).await;
    let delivered =
        wait_for_view(&run, &stack, &lead, |v| v.scoring.is_some() && v.synced_version == v.version).await;
    let writes_before = version_history(&crm.contacts().await[lead.as_str()]);

    let t1 = t0 + time::Duration::minutes(5);
    produce_records(&stack, &[scored(&lead, 2, 120.0, Stage::Qualified, t1)]).await;
    let qualified =
        wait_for_view(&run, &stack, &lead, |v| v.scoring.as_ref().is_some_and(|s| s.lead_version == 2)).await;
    assert_eq!(qualified.version, delivered.version + 1, "the stage change is one new version");
    assert_eq!(qualified.synced_version, qualified.version);
    // A score change within the stage is not something the CRM shows.
    let t2 = t1 + time::Duration::minutes(5);
    produce_records(&stack, &[scored(&lead, 3, 140.0, Stage::Qualified, t2)]).await;
    let later =
        wait_for_view(&run, &stack, &lead, |v| v.scoring.as_ref().is_some_and(|s| s.lead_version == 3)).await;
    assert_eq!(later.version, qualified.version);

    let contact = crm.contacts().await[lead.as_str()].clone();
    assert_eq!(contact["properties"]["leadflow_stage"], "qualified");
    assert_eq!(version_of(&contact), Some(qualified.version));
    let mut writes = writes_before.clone();
    writes.push(qualified.version);
    assert_eq!(version_history(&contact), writes, "exactly one update: {contact}");

    stop(&mut sink).await;
    let receipts = receipts_of(&run, &stack, &lead).await;
    let after: Vec<u64> =
        receipts.iter().filter(|r| r.version > delivered.version).map(|r| r.version).collect();
    assert_eq!(after, vec![qualified.version], "{receipts:?}");
}

#[tokio::test]
async fn a_refused_contact_and_a_poison_record_are_dead_lettered_and_reconcile_only_acts_when_out_of_sync() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Running { stack, crm, run, mut sink } = Running::start().await;
    let id = run_id();
    let now = OffsetDateTime::now_utc();
    let good = format!("{id}-good");
    let bad = format!("{id}-bad");
    let mut refused = enriched(&bad, "Ada Lovelace", EnrichmentStatus::Verified, now);
    // Operators can write to the enriched topic with the CLI, past the gateway's checks.
    refused.email = Some("not an address".into());
    produce_records(&stack, &[enriched(&good, "Ada Lovelace", EnrichmentStatus::Verified, now), refused])
        .await;
    let kafka = producer(&stack);
    produce(&kafka, topics::SCORES, &format!("{id}-poison"), b"{not json").await;

    wait_for_view(&run, &stack, &good, |v| v.synced_version == 1).await;
    let view = wait_for_view(&run, &stack, &bad, |v| v.last_delivery.is_some()).await;
    assert_eq!(view.synced_version, 0);
    assert!(view.refused_at_current_version());
    assert!(!crm.contacts().await.contains_key(bad.as_str()), "the CRM refused it");

    let letters = run.read_dead_letters(&stack, &id, 2).await;
    let refusal = letters.iter().find(|l| l.lead_id == bad).expect("a dead letter for the refused contact");
    assert_eq!(refusal.stage, PipelineStage::CrmSink);
    assert_eq!(refusal.error_kind, "crm_rejected");
    assert!(refusal.error.contains("properties.email"), "the error names the field: {}", refusal.error);
    let poison = letters
        .iter()
        .find(|l| l.lead_id == format!("{id}-poison"))
        .expect("a dead letter for the poison record");
    assert_eq!(poison.source_topic.as_deref(), Some(topics::SCORES));
    use base64::Engine;
    let original =
        base64::engine::general_purpose::STANDARD.decode(poison.original_value.as_ref().unwrap()).unwrap();
    assert_eq!(original, b"{not json");

    // Reconcile reads the CRM's copies, finds the refused lead missing, asks for it again, and
    // reports the CRM's answer.
    let resync_from = end_offsets(&stack, topics::CRM_RESYNC);
    let before = crm.hubspot_stats().await;
    let output = reconcile(&run, &stack, &crm).await;
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("1 in sync, 1 repaired (0 lagging, 0 changed in the CRM, 1 missing)"),
        "{stdout}"
    );
    assert!(stdout.contains("0 delivered, 1 refused"), "{stdout}");
    let after = crm.hubspot_stats().await;
    assert!(after.batch_reads > before.batch_reads, "reconcile read the CRM: {after:?}");
    assert!(after.upserts > before.upserts, "the CRM was asked again: {after:?}");
    let resync: u64 = end_offsets(&stack, topics::CRM_RESYNC)
        .iter()
        .map(|(p, end)| (end - resync_from.get(p).copied().unwrap_or(0)) as u64)
        .sum();
    assert_eq!(resync, 1, "one resync request");

    // Once the lead's email is fixed upstream, it is delivered and every lead is in sync:
    // reconcile then reads the CRM, asks for nothing, and writes nothing to it.
    produce_records(
        &stack,
        &[enriched(&bad, "Ada Lovelace", EnrichmentStatus::Verified, now + time::Duration::seconds(1))],
    )
    .await;
    wait_for_view(&run, &stack, &bad, |v| v.synced_version == 2).await;
    let resync_from = end_offsets(&stack, topics::CRM_RESYNC);
    let before = crm.hubspot_stats().await;
    let output = reconcile(&run, &stack, &crm).await;
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("2 in sync, 0 repaired"), "{stdout}");
    assert!(stdout.contains("reconcile: nothing to deliver"), "{stdout}");
    assert_eq!(end_offsets(&stack, topics::CRM_RESYNC), resync_from, "no resync requests");
    let after = crm.hubspot_stats().await;
    assert_eq!(after.upserts, before.upserts, "nothing delivered: {after:?}");

    stop(&mut sink).await;
}

/// SIGTERM, and a clean exit: everything the sink did is committed.
async fn stop(sink: &mut ServiceProcess) {
    sink.signal(libc::SIGTERM).unwrap();
    assert_eq!(sink.wait_exit(Duration::from_secs(30)).await.unwrap().code(), Some(0), "{}", sink.logs());
}

async fn reconcile(run: &SinkRun, stack: &Stack, crm: &CrmStandIn) -> std::process::Output {
    let mut env = leadflow_testkit::service_env(stack, "127.0.0.1:0");
    env.extend(run.env(stack, "reconcile", crm));
    tokio::process::Command::new(env!("CARGO_BIN_EXE_crm-sink"))
        .args(["reconcile", "--wait-s", "60"])
        .envs(env)
        .env("LEADFLOW_TELEMETRY__LOG_FORMAT", "text")
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_log_destination_writes_the_original_line_and_a_receipt() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let crm = CrmStandIn::start(json!({})).await;
    let run = SinkRun::new(&stack);
    let mut sink = run.start(&stack, "a", &crm, &[("LEADFLOW_CRM__DESTINATION", "log".to_owned())]).await;
    let lead = format!("{}-log", run_id());
    produce_records(
        &stack,
        &[enriched(&lead, "Ada Lovelace", EnrichmentStatus::Verified, OffsetDateTime::now_utc())],
    )
    .await;
    wait_for_view(&run, &stack, &lead, |v| v.synced_version == 1).await;
    stop(&mut sink).await;

    let line = sink.logs().lines().find(|l| l.contains(&lead) && l.contains("[CRM Sync]")).map(str::to_owned);
    let line = line.unwrap_or_else(|| panic!("no [CRM Sync] line for {lead}:\n{}", sink.logs()));
    assert!(line.contains("[CRM Sync] Sending verified lead Ada Lovelace to Sales Team..."), "{line}");
    assert_eq!(crm.hubspot_stats().await.requests, 0, "the log destination calls no CRM");
    let receipts = receipts_of(&run, &stack, &lead).await;
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!((receipts[0].destination.as_str(), receipts[0].version), ("log", 1));
}

#[tokio::test]
async fn huge_poison_records_on_every_input_topic_are_dead_lettered_whole_and_the_next_record_is_read() {
    let _turn = ONE_AT_A_TIME.lock().await;
    // The CRM stays up: the sink also reads the Verified leads other tests write meanwhile, and
    // would stall on them with no CRM to deliver them to.
    let Running { stack, run, sink: _sink, crm: _crm } = Running::start().await;
    let id = run_id();
    let now = OffsetDateTime::now_utc();
    let key = |topic: &str| format!("{id}-{}", topic.replace('.', "_"));
    let lead = key(topics::ENRICHED);
    let valid: Vec<(&str, serde_json::Value)> = vec![
        (
            topics::ENRICHED,
            serde_json::to_value(enriched(&lead, "Ada Lovelace", EnrichmentStatus::ToCheck, now)).unwrap(),
        ),
        (
            topics::SCORES,
            serde_json::to_value(scored(&key(topics::SCORES), 1, 20.0, Stage::Warm, now)).unwrap(),
        ),
        (
            topics::REVIEWS,
            serde_json::to_value(LeadReviewed {
                project_id: "default".into(),
                lead_id: key(topics::REVIEWS),
                decision: ReviewDecision::Rejected,
                reviewer: None,
                note: None,
                reviewed_at: now,
            })
            .unwrap(),
        ),
        (
            topics::CRM_RESYNC,
            serde_json::to_value(leadflow_core::contract::records::CrmResyncRequested {
                project_id: "default".into(),
                lead_id: key(topics::CRM_RESYNC),
                version: 1,
                requested_at: now,
                crm_differs: false,
            })
            .unwrap(),
        ),
    ];
    let not_json = leadflow_testkit::poison::huge_non_json();
    for (topic, record) in &valid {
        let violation = leadflow_testkit::poison::huge_schema_violation(record);
        let line = record.to_string().into_bytes();
        let key = key(topic);
        leadflow_testkit::poison::produce_with_cli(
            &stack,
            topic,
            &[(&key, &not_json), (&key, &violation), (&key, &line)],
        );
        let letters = leadflow_testkit::poison::dead_letters_for(
            &stack,
            &run.dlq_from,
            &key,
            2,
            Duration::from_secs(90),
        )
        .await;
        leadflow_testkit::poison::assert_bounded_letter(
            &letters[0].0,
            &letters[0].1,
            &not_json,
            "malformed",
            topic,
        );
        leadflow_testkit::poison::assert_bounded_letter(
            &letters[1].0,
            &letters[1].1,
            &violation,
            "schema_violation",
            topic,
        );
        leadflow_testkit::poison::wait_until_committed_to_end(
            &stack,
            &run.group,
            topic,
            Duration::from_secs(60),
        )
        .await;
    }
    let view = wait_for_view(&run, &stack, &lead, |_| true).await;
    assert_eq!(view.key, lead, "the enriched record after the poison ones is in the read model");
}
