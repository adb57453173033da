//! The CRM's refusals, end to end: the crm-sink binary on the real stack against the CRM
//! stand-in in HubSpot mode. An email that belongs to another contact dead-letters only that
//! lead, naming the contact; properties that do not exist make the sink unready and dead-letter
//! nothing until `crm-sink setup` creates them; the daily limit pauses deliveries, trying once
//! per probe, until the day resets.

mod common;
mod hubspot_crm;

use std::time::Duration;

use common::{ONE_AT_A_TIME, SinkRun, enriched, produce_records, run_id};
use crm_sink::read_model::LeadView;
use hubspot_crm::{
    HubSpotCrm, assert_no_foreign_leads, crm_sink_command, metric, produce_verified_leads, readiness,
    start_sink, stop, wait_for_metric, wait_synced,
};
use leadflow_core::contract::records::{DeadLetter, DeliveryStatus, EnrichmentStatus, PipelineStage};
use leadflow_core::contract::topics;
use leadflow_testkit::kafka::read_to_end;
use leadflow_testkit::{Stack, eventually};
use serde_json::json;
use stand_ins::crm::{ConflictAnswer, Faults, PropertySpec, Settings};
use time::OffsetDateTime;

const WAIT: Duration = Duration::from_secs(90);

/// The dead letters committed on the DLQ since `run` began for leads whose id starts with
/// `prefix`, read once the sink has stopped.
async fn dead_letters(run: &SinkRun, stack: &Stack, prefix: &str) -> Vec<DeadLetter> {
    let records = read_to_end(stack, topics::DLQ, &run.dlq_from, Duration::from_secs(60)).await;
    common::decode_all(stack, records.iter().filter(|r| r.key.starts_with(prefix))).await
}

/// Kafka's default partitioner (the Java client's murmur2, which the services and the test
/// producer use): the partition of `key` among `partitions`.
fn partition_of(key: &str, partitions: usize) -> usize {
    const M: u32 = 0x5bd1_e995;
    let data = key.as_bytes();
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes(chunk.try_into().unwrap()).wrapping_mul(M);
        k ^= k >> 24;
        h = h.wrapping_mul(M) ^ k.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, byte) in tail.iter().enumerate() {
            h ^= u32::from(*byte) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    (h & 0x7fff_ffff) as usize % partitions
}

#[test]
fn partition_of_hashes_as_kafkas_java_client() {
    // Kafka's own murmur2 test vectors (UtilsTest), as signed 32-bit values.
    for (key, hash) in [("21", -973_932_308i32), ("foobar", -790_332_482), ("abc", 479_470_107)] {
        assert_eq!(partition_of(key, 1 << 31), (hash as u32 & 0x7fff_ffff) as usize, "{key}");
    }
}

/// A lead id `{prefix}-{name}…` for each of `names`, all on one partition of the lead topics, so
/// that a sink reads them in one fetch.
fn leads_on_one_partition(stack: &Stack, prefix: &str, names: &[&str]) -> Vec<String> {
    let partitions = leadflow_testkit::kafka::end_offsets(stack, topics::ENRICHED).len();
    let target = partition_of(&format!("{prefix}-{}", names[0]), partitions);
    names
        .iter()
        .map(|name| {
            (0..)
                .map(|n| if n == 0 { format!("{prefix}-{name}") } else { format!("{prefix}-{name}{n}") })
                .find(|lead| partition_of(lead, partitions) == target)
                .unwrap()
        })
        .collect()
}

fn history(contact: &serde_json::Value) -> Vec<String> {
    serde_json::from_value(contact["versionHistory"].clone()).unwrap()
}

/// Lead A is a contact; then B, with A's email (in capitals: HubSpot compares emails without
/// case), goes in one request with C and D: B is dead-lettered naming A's contact id, A is left
/// as it was, and C and D are delivered with one write each.
async fn an_email_conflict_dead_letters_only_that_lead(answer: ConflictAnswer) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let faults = Faults { conflict_answer: answer, ..Faults::default() };
    let crm = HubSpotCrm::start(Settings::hubspot_with_leadflow_properties(faults)).await;
    let run = SinkRun::new(&stack);
    let (mut sink, _) = start_sink(&run, &stack, &crm, &[]).await;
    let id = run_id();
    let a = format!("{id}-a");
    let [b, c, d]: [String; 3] = leads_on_one_partition(&stack, &id, &["b", "c", "d"]).try_into().unwrap();
    let now = OffsetDateTime::now_utc();
    produce_records(&stack, &[enriched(&a, "Ada Lovelace", EnrichmentStatus::Verified, now)]).await;
    wait_synced(&run, &stack, std::slice::from_ref(&a), 1, WAIT).await;
    let contact_a = crm.contacts().await[a.as_str()].clone();
    let existing_id = contact_a["id"].as_str().unwrap().to_owned();

    // B, C and D, on one partition, wait while no sink runs, so that the next one reads them in
    // one fetch and sends them in one request (the request counts below depend on it).
    stop(&mut sink).await;
    let mut same_email = enriched(&b, "Bob Byron", EnrichmentStatus::Verified, now);
    same_email.email = Some(format!("{a}@example.com").to_uppercase());
    produce_records(
        &stack,
        &[
            same_email,
            enriched(&c, "Charles Babbage", EnrichmentStatus::Verified, now),
            enriched(&d, "Mary Somerville", EnrichmentStatus::Verified, now),
        ],
    )
    .await;
    let (mut sink, _) = start_sink(&run, &stack, &crm, &[]).await;
    wait_synced(&run, &stack, &[c.clone(), d.clone()], 1, WAIT).await;
    let store = run.store(&stack).await;
    let refused: LeadView = eventually(&format!("{b} refused"), WAIT, || {
        let store = store.clone();
        let b = &b;
        async move {
            let view = store.lead(b).await.map_err(|e| e.to_string())?;
            Ok(view.filter(|v| {
                v.last_delivery.as_ref().is_some_and(|d| d.status == DeliveryStatus::DeadLettered)
            }))
        }
    })
    .await
    .unwrap();
    assert_eq!(refused.synced_version, 0);
    let views = store.load(&[b.clone(), c.clone(), d.clone()]).await.unwrap();
    let partitions: Vec<i32> = views.values().map(|s| s.view.partition).collect();
    assert!(partitions.iter().all(|p| *p == partitions[0]), "B, C and D on one partition: {partitions:?}");
    stop(&mut sink).await;

    let letters = dead_letters(&run, &stack, &id).await;
    assert_eq!(letters.len(), 1, "only B is dead-lettered: {letters:?}");
    let letter = &letters[0];
    assert_eq!(letter.lead_id, b);
    assert_eq!((letter.stage, letter.error_kind.as_str()), (PipelineStage::CrmSink, "crm_rejected"));
    assert!(
        letter.error.contains(&format!("Contact already exists. Existing ID: {existing_id}")),
        "the dead letter names A's contact {existing_id}: {}",
        letter.error
    );
    let contacts = crm.contacts_of(&id).await;
    assert_eq!(contacts[a.as_str()], contact_a, "A is left as it was");
    assert!(!contacts.contains_key(b.as_str()), "B has no contact: {:?}", contacts.keys());
    for (lead, first) in [(&c, "Charles"), (&d, "Mary")] {
        let contact = &contacts[lead.as_str()];
        assert_eq!(contact["properties"]["firstname"], first);
        assert_eq!(contact["properties"]["email"], format!("{lead}@example.com").to_lowercase());
        assert_eq!(history(contact), ["1"], "{lead} written once: {contact}");
    }
    let stats = crm.stats().await;
    eprintln!("CRM stand-in: {stats}");
    assert_no_foreign_leads(&run, &stack, &id).await;
    // A's request, then B, C and D's: answered 207, or 409 and then each alone.
    let (upserts, multi_status, conflicts) = match answer {
        ConflictAnswer::MultiStatus => (2, 1, 0),
        ConflictAnswer::WholeBatch => (5, 0, 2),
    };
    assert_eq!(
        (&stats["upserts"], &stats["multiStatus"], &stats["conflicts"], &stats["appliedWrites"]),
        (&json!(upserts), &json!(multi_status), &json!(conflicts), &json!(3)),
        "{stats}"
    );
}

#[tokio::test]
async fn an_email_conflict_answered_207_dead_letters_only_that_lead_naming_the_existing_contact() {
    an_email_conflict_dead_letters_only_that_lead(ConflictAnswer::MultiStatus).await;
}

#[tokio::test]
async fn an_email_conflict_answered_409_for_the_whole_batch_dead_letters_only_that_lead_naming_the_existing_contact()
 {
    an_email_conflict_dead_letters_only_that_lead(ConflictAnswer::WholeBatch).await;
}

/// Lines of `crm-sink setup`'s output that say a property was created, and that one is ready.
fn setup_lines(stdout: &str) -> (usize, usize) {
    let created = stdout.lines().filter(|l| l.contains(" created (")).count();
    let ready = stdout.lines().filter(|l| l.ends_with(" is ready")).count();
    (created, ready)
}

#[tokio::test]
async fn missing_properties_make_the_sink_unready_and_dead_letter_nothing_until_setup_creates_them() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    // Someone created the upsert key by hand, and nothing else: every write names properties
    // the account lacks, so HubSpot answers PROPERTY_DOESNT_EXIST.
    let settings = Settings {
        precreated_properties: vec![PropertySpec::new("leadflow_id", true)],
        ..Settings::hubspot(Faults::default())
    };
    let crm = HubSpotCrm::start(settings).await;
    let run = SinkRun::new(&stack);
    let (mut sink, ops) = start_sink(&run, &stack, &crm, &[]).await;
    let id = run_id();
    let leads = produce_verified_leads(&stack, &id, 3).await;

    let unready = eventually("the sink unready because of the CRM", WAIT, || {
        let ops = &ops;
        async move {
            match readiness(ops).await? {
                (503, body) if body.contains("crm: ") => Ok(Some(body)),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await
    .unwrap();
    assert!(unready.contains("leadflow_version") && unready.contains("crm-sink setup"), "{unready}");
    assert_eq!(metric(&ops, "leadflow_crm_configuration_error").await, Some(1.0));
    assert!(crm.stat("propertyErrors").await >= 1, "{}", crm.stats().await);
    assert!(crm.contacts_of(&id).await.is_empty());

    let setup = crm_sink_command(&run, &stack, &crm, &["setup"]).await;
    let stdout = String::from_utf8_lossy(&setup.stdout);
    eprintln!("crm-sink setup:\n{stdout}");
    assert!(setup.status.success(), "{setup:?}");
    assert!(stdout.contains("crm.http: leadflow_version created (number)"), "{stdout}");
    assert!(stdout.contains("crm.http: leadflow_id is ready"), "{stdout}");
    assert_eq!(
        setup_lines(&stdout),
        (5, 6),
        "five custom properties created; leadflow_id and five standard ready"
    );
    assert!(stdout.contains("setup: every CRM has the properties the sink writes"), "{stdout}");

    // The sink asks again after its configuration pause, without a restart.
    wait_synced(&run, &stack, &leads, 1, Duration::from_secs(120)).await;
    eventually("the sink ready again", WAIT, || {
        let ops = &ops;
        async move {
            match readiness(ops).await? {
                (200, _) => Ok(Some(())),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(metric(&ops, "leadflow_crm_configuration_error").await, Some(0.0));
    assert_eq!(crm.contacts_of(&id).await.len(), leads.len());
    stop(&mut sink).await;
    let letters = dead_letters(&run, &stack, &id).await;
    assert!(letters.is_empty(), "nothing dead-lettered: {letters:?}");

    let again = crm_sink_command(&run, &stack, &crm, &["setup"]).await;
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success(), "{again:?}");
    assert_eq!(setup_lines(&stdout), (0, 11), "a second setup creates nothing: {stdout}");
}

#[tokio::test]
async fn the_daily_limit_pauses_deliveries_trying_once_per_probe_until_the_day_resets() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let faults = Faults { daily_limit: Some(2), ..Faults::default() };
    let crm = HubSpotCrm::start(Settings::hubspot_with_leadflow_properties(faults)).await;
    let run = SinkRun::new(&stack);
    let one_contact_a_request = ("LEADFLOW_CRM__HTTP__BATCH_SIZE", "1".to_owned());
    let (mut sink, ops) = start_sink(&run, &stack, &crm, std::slice::from_ref(&one_contact_a_request)).await;
    let id = run_id();
    let leads = produce_verified_leads(&stack, &id, 5).await;

    // Two requests spend the day; the third is refused, and the next try is a probe (15 min) away.
    wait_for_metric(&ops, "leadflow_crm_daily_limit_reached", 1.0, WAIT).await;
    assert_no_foreign_leads(&run, &stack, &id).await;
    assert_eq!(crm.stat("dailyRateLimited").await, 1, "one refusal, no spinning: {}", crm.stats().await);
    assert_eq!(crm.stat("appliedWrites").await, 2);
    assert_eq!(crm.contacts_of(&id).await.len(), 2);
    stop(&mut sink).await;
    assert!(dead_letters(&run, &stack, &id).await.is_empty(), "a spent day dead-letters nothing");

    // With a short probe, the sink tries once per probe while the day is still spent...
    let short_probe = ("LEADFLOW_CRM__HTTP__DAILY_LIMIT_PROBE", "2s".to_owned());
    let (mut sink, ops) = start_sink(&run, &stack, &crm, &[one_contact_a_request, short_probe]).await;
    eventually("two more probes", WAIT, || async {
        let refused = crm.stat("dailyRateLimited").await;
        Ok((refused >= 3).then_some(()))
    })
    .await
    .unwrap();
    assert_eq!(metric(&ops, "leadflow_crm_daily_limit_reached").await, Some(1.0));
    assert_no_foreign_leads(&run, &stack, &id).await;
    assert_eq!(crm.stat("appliedWrites").await, 2, "nothing written while the day is spent");

    // ...and once a new day comes (with room for the backlog), its next probe gets through.
    crm.set_faults(json!({ "dailyLimit": 20 })).await;
    crm.reset_daily_limit().await;
    wait_synced(&run, &stack, &leads, 1, WAIT).await;
    assert_eq!(metric(&ops, "leadflow_crm_daily_limit_reached").await, Some(0.0));
    assert_eq!(crm.contacts_of(&id).await.len(), leads.len());
    stop(&mut sink).await;
    assert!(dead_letters(&run, &stack, &id).await.is_empty(), "nothing dead-lettered");
    eprintln!("CRM stand-in: {}", crm.stats().await);
}
