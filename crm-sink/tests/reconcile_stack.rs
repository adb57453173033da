//! `crm-sink reconcile` against the real stack and the CRM stand-in in HubSpot mode: contacts a
//! person deleted or edited in the CRM, and contacts a late write rolled back, are repaired, and
//! exactly those; a contact newer in the CRM than in the read model is reported conflicting and
//! left as it is.

mod common;
mod hubspot_crm;

use std::time::Duration;

use common::{ONE_AT_A_TIME, SinkRun, produce_records, run_id, scored};
use crm_sink::read_model::LeadView;
use hubspot_crm::{
    HubSpotCrm, assert_no_foreign_leads, crm_sink_command, produce_verified_leads, start_sink, stop,
    wait_synced,
};
use leadflow_core::contract::records::Stage;
use leadflow_testkit::Stack;
use serde_json::{Value, json};
use stand_ins::crm::{Faults, Settings};
use time::OffsetDateTime;

const LEADS: usize = 20;
/// Each lead is enriched (v1), then scored into a stage (v2).
const VERSION: u64 = 2;

/// Whether the CRM's copy (`properties` as text) holds what the sink writes for `view`.
fn differences(contact: &Value, view: &LeadView) -> Vec<String> {
    let held = &contact["properties"];
    let mut expected = crm_sink::contact::properties(view);
    expected.insert("leadflow_version".into(), view.version.to_string().into());
    expected
        .iter()
        .filter(|(name, value)| {
            let text = held[name.as_str()].as_str();
            match value {
                Value::String(s) => text != Some(s.as_str()),
                Value::Number(n) => text.and_then(|t| t.parse::<f64>().ok()) != n.as_f64(),
                other => text != Some(other.to_string().as_str()),
            }
        })
        .map(|(name, value)| format!("{name}: CRM {} != read model {value}", held[name.as_str()]))
        .collect()
}

fn history(contact: &Value) -> Vec<String> {
    serde_json::from_value(contact["versionHistory"].clone()).unwrap()
}

#[tokio::test]
async fn reconcile_repairs_exactly_the_contacts_deleted_edited_or_rolled_back_in_the_crm() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let crm = HubSpotCrm::start(Settings::hubspot_with_leadflow_properties(Faults::default())).await;
    let run = SinkRun::new(&stack);
    // Only the reconcile command compares with the CRM here: the sink's own periodic check and
    // sweep are off, so that what reconcile reports is all that was found.
    let no_periodic_reconcile = [("LEADFLOW_CRM__RECONCILE_INTERVAL", "0".to_owned())];
    let (mut sink, _) = start_sink(&run, &stack, &crm, &no_periodic_reconcile).await;

    let id = run_id();
    let leads = produce_verified_leads(&stack, &id, LEADS).await;
    let now = OffsetDateTime::now_utc();
    let scored_records: Vec<_> = leads.iter().map(|lead| scored(lead, 1, 30.0, Stage::Warm, now)).collect();
    produce_records(&stack, &scored_records).await;
    wait_synced(&run, &stack, &leads, VERSION, Duration::from_secs(90)).await;
    stop(&mut sink).await;

    // While no sink runs, people and late writes change the CRM.
    let deleted = &leads[0..3];
    let edited = &leads[3..6];
    let rolled_back = &leads[6..8];
    let ahead = &leads[8];
    let untouched = &leads[9..];
    for lead in deleted {
        crm.delete(lead).await;
    }
    crm.edit(&edited[0], json!({ "leadflow_status": "Rejected" })).await;
    crm.edit(&edited[1], json!({ "leadflow_stage": "cold" })).await;
    crm.edit(&edited[2], json!({ "email": "someone.else@example.org" })).await;
    for lead in rolled_back {
        crm.edit(lead, json!({ "leadflow_version": "1", "leadflow_stage": "" })).await;
    }
    crm.edit(ahead, json!({ "leadflow_version": "7", "leadflow_stage": "hot" })).await;
    let before = crm.contacts_of(&id).await;
    let writes_before = crm.stat("appliedWrites").await;

    let (mut sink, _) = start_sink(&run, &stack, &crm, &no_periodic_reconcile).await;
    let output = crm_sink_command(&run, &stack, &crm, &["reconcile", "--wait-s", "120"]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("crm-sink reconcile:\n{stdout}");
    assert!(output.status.success(), "{output:?}");
    assert_no_foreign_leads(&run, &stack, &id).await;
    assert!(
        stdout.contains(
            "reconcile: 11 in sync, 8 repaired (2 lagging, 3 changed in the CRM, 3 missing), \
             1 conflicting (newer in the CRM, left as they are)"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("reconcile: 8 delivered, 0 refused by the CRM"), "{stdout}");
    stop(&mut sink).await;

    let after = crm.contacts_of(&id).await;
    assert_eq!(after.len(), LEADS, "one contact per lead: {:?}", after.keys());
    assert_eq!(crm.stat("appliedWrites").await - writes_before, 8, "one write per repaired contact");
    let views = run.store(&stack).await.load(&leads).await.unwrap();
    for lead in untouched {
        assert_eq!(after[lead.as_str()], before[lead.as_str()], "{lead} was in sync and is not written");
        let view = &views[lead.as_str()].view;
        assert_eq!(differences(&after[lead.as_str()], view), Vec::<String>::new(), "{lead}");
    }
    for lead in edited.iter().chain(rolled_back) {
        let (was, is) = (&before[lead.as_str()], &after[lead.as_str()]);
        assert_eq!(is["id"], was["id"], "{lead} is the same contact, written again");
        let mut grown = history(was);
        grown.push(VERSION.to_string());
        assert_eq!(history(is), grown, "{lead}: one write, of v{VERSION}");
        assert_eq!(differences(is, &views[lead.as_str()].view), Vec::<String>::new(), "{lead}");
    }
    for lead in deleted {
        let (was, is) = (&before[lead.as_str()], &after[lead.as_str()]);
        assert_eq!(was["archived"], true, "{lead} was deleted");
        assert_eq!(is["archived"], false, "{lead}: {is}");
        assert_ne!(is["id"], was["id"], "{lead} is a new contact");
        assert_eq!(history(is), [VERSION.to_string()], "{lead}: one write, of v{VERSION}");
        assert_eq!(differences(is, &views[lead.as_str()].view), Vec::<String>::new(), "{lead}");
    }
    assert_eq!(after[ahead.as_str()], before[ahead.as_str()], "{ahead} is newer in the CRM: left as it is");
    assert_eq!(after[ahead.as_str()]["properties"]["leadflow_version"], "7");
}
