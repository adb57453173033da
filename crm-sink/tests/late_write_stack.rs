//! A late write rolls a contact back, and the sink repairs it by itself. HubSpot is last writer
//! wins: a request the client gave up on can still be applied after a newer version was written.
//! The HubSpot-mode stand-in holds every write 5 s while the sink waits 500 ms, so the sink's
//! writes of version 1 pile up held (it resends after each timeout and backoff); once version 1
//! is confirmed by a read back, the stand-in answers at once again and the lead's version 2 goes
//! through well before the last held version-1 write lands over it. The sink's check reads the
//! contact back after `late_apply_window` (8 s, longer than any hold) and delivers version 2
//! again.

mod common;

use std::time::Duration;

use common::{
    CrmStandIn, ONE_AT_A_TIME, SinkRun, enriched, produce_records, run_id, scored, version_history,
    version_of,
};
use leadflow_core::contract::records::{EnrichmentStatus, Stage};
use leadflow_testkit::{Stack, eventually};
use serde_json::json;
use time::OffsetDateTime;

#[tokio::test]
async fn a_contact_rolled_back_by_a_late_write_is_read_back_and_delivered_again() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    let crm = CrmStandIn::start(json!({ "lateApplyRate": 1.0, "lateApplyDelayMs": 5000 })).await;
    let run = SinkRun::new(&stack);
    let settings = [
        ("LEADFLOW_CRM__HTTP__REQUEST_TIMEOUT", "500ms".to_owned()),
        ("LEADFLOW_CRM__HTTP__LATE_APPLY_WINDOW", "8s".to_owned()),
        ("LEADFLOW_CRM__HTTP__MAX_ATTEMPTS", "30".to_owned()),
        // Backoffs well under the 5 s hold, so that the write sent just before the read that
        // confirms version 1 is still held then, and lands after version 2.
        ("LEADFLOW_CRM__HTTP__BACKOFF_INITIAL", "100ms".to_owned()),
        ("LEADFLOW_CRM__HTTP__BACKOFF_MAX", "1s".to_owned()),
    ];
    let mut sink = run.start(&stack, "a", &crm, &settings).await;
    let lead = format!("{}-late", run_id());
    let now = OffsetDateTime::now_utc();

    produce_records(&stack, &[enriched(&lead, "Ada Lovelace", EnrichmentStatus::Verified, now)]).await;
    eventually("version 1 is confirmed by a read back", Duration::from_secs(60), || async {
        Ok(run.lead(&stack, &lead).await.filter(|v| v.synced_version == 1).map(|_| ()))
    })
    .await
    .unwrap();
    crm.set_faults(json!({})).await;
    produce_records(&stack, &[scored(&lead, 1, 60.0, Stage::Hot, now)]).await;

    let rolled_back =
        eventually("a held write of version 1 lands after version 2", Duration::from_secs(60), || async {
            let history = crm.contacts().await.get(&lead).map(version_history).unwrap_or_default();
            let two = history.iter().position(|v| *v == 2);
            Ok(two.filter(|at| history[*at..].contains(&1)).map(|_| history))
        })
        .await
        .unwrap();
    let repaired = eventually("the check delivers version 2 again", Duration::from_secs(60), || async {
        let contact = crm.contacts().await.get(&lead).cloned();
        let history = contact.as_ref().map(version_history).unwrap_or_default();
        let last_one = history.iter().rposition(|v| *v == 1);
        let fixed = contact.as_ref().and_then(version_of) == Some(2)
            && last_one.is_some_and(|at| history[at..].contains(&2));
        Ok(fixed.then_some(history))
    })
    .await
    .unwrap();
    assert!(repaired.len() > rolled_back.len(), "{rolled_back:?} then {repaired:?}");
    assert_eq!(run.lead(&stack, &lead).await.unwrap().synced_version, 2);
    sink.signal(libc::SIGTERM).unwrap();
    sink.wait_exit(Duration::from_secs(30)).await.unwrap();
}
