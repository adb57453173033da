//! End to end on the real stack: names posted to the gateway, enriched by the enricher through
//! the nationalize stand-in, delivered by the crm-sink to the CRM stand-in (HubSpot mode).
//! Verified leads become contacts with their country and probability; To Check leads do not.
//!
//! Uses the gateway's and enricher's binaries from `target/debug` (`cargo test --workspace`
//! builds them).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{CrmStandIn, ONE_AT_A_TIME, SinkRun, hubspot_text, run_id, version_of};
use crm_sink::read_model::{LeadStatus, LeadView};
use leadflow_core::contract::topics;
use leadflow_testkit::kafka::new_group_at_end;
use leadflow_testkit::stand_in::{FIRST_NAMES, StandInServer};
use leadflow_testkit::{ServiceProcess, Stack, auth, eventually, unique, workspace_binary};
use serde_json::{Value, json};

#[tokio::test]
async fn names_posted_to_the_gateway_reach_the_crm_when_verified() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();

    let nationalize = StandInServer::start(|listener, stop| {
        stand_ins::nationalize::serve(listener, Default::default(), stop)
    })
    .await;
    let crm = CrmStandIn::start(json!({})).await;

    let enricher_env = vec![
        ("LEADFLOW_NATIONALIZE__BASE_URL", nationalize.base_url.clone()),
        ("LEADFLOW_NATIONALIZE__REQUESTS_PER_SECOND", "1000".to_owned()),
        ("LEADFLOW_MONGO__URI", stack.mongodb_uri.clone()),
        ("LEADFLOW_MONGO__DATABASE", unique("e2e_enricher").replace('-', "_")),
        ("LEADFLOW_CONSUMER__GROUP_ID", new_group_at_end(&stack, "e2e-enricher", topics::NAMES)),
        ("LEADFLOW_CONSUMER__INSTANCE_ID", "e2e".to_owned()),
    ];
    let (mut enricher, _) =
        ServiceProcess::spawn_against(&stack, &workspace_binary("enricher"), &enricher_env).await.unwrap();
    enricher.wait_for_log("consuming", Duration::from_secs(60)).await.unwrap();
    let run = SinkRun::new(&stack);
    let mut sink = run.start(&stack, "a", &crm, &[]).await;
    // The gateway takes names only with a project's ingest key, which its admin creates.
    let mut gateway_env = vec![("LEADFLOW_HTTP__LISTEN", "127.0.0.1:0".to_owned())];
    gateway_env.extend(auth::gateway_auth_env());
    let (mut gateway, _) =
        ServiceProcess::spawn_against(&stack, &workspace_binary("ingest-gateway"), &gateway_env)
            .await
            .unwrap();
    let api = gateway.wait_for_log_field("API listening", "addr", Duration::from_secs(30)).await.unwrap();
    let key = auth::create_project_and_key(
        &format!("http://{api}"),
        "default",
        &["ingest"],
        auth::TEST_EVENTS_PER_MINUTE,
    )
    .await
    .unwrap();

    let id = run_id();
    let names: Vec<Value> = FIRST_NAMES
        .iter()
        .enumerate()
        .map(|(i, first)| {
            json!({
                "leadId": format!("{id}-{i}"),
                "name": format!("{first} Example"),
                "email": format!("{}@example.com", first.to_lowercase()),
                "company": "Example Ltd",
            })
        })
        .collect();
    let response = reqwest::Client::new()
        .post(format!("http://{api}/api/leads"))
        .bearer_auth(&key)
        .json(&json!({ "names": names }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());

    // The sink saves a lead's view after delivering it, so once every lead has a view with an
    // enrichment, every delivery there will be has been made.
    let store = run.store(&stack).await;
    let lead_ids: Vec<String> = (0..FIRST_NAMES.len()).map(|i| format!("{id}-{i}")).collect();
    let views: HashMap<String, LeadView> =
        eventually("every lead enriched in the read model", Duration::from_secs(90), || {
            let store = store.clone();
            let lead_ids = lead_ids.clone();
            async move {
                let found = store.load(&lead_ids).await.map_err(|e| e.to_string())?;
                let enriched = found.values().filter(|s| s.view.enrichment.is_some()).count();
                if enriched < lead_ids.len() {
                    return Err(format!("{enriched} of {} enriched", lead_ids.len()));
                }
                Ok(Some(found.into_iter().map(|(k, v)| (k, v.view)).collect()))
            }
        })
        .await
        .unwrap();

    let contacts = crm.contacts().await;
    let (mut verified, mut to_check) = (0, 0);
    for (lead_id, view) in &views {
        let enrichment = view.enrichment.as_ref().unwrap();
        match view.status() {
            Some(LeadStatus::Verified) => {
                verified += 1;
                let contact =
                    contacts.get(lead_id).unwrap_or_else(|| panic!("Verified {lead_id} is not in the CRM"));
                let properties = &contact["properties"];
                assert_eq!(properties["leadflow_status"], "Verified");
                // HubSpot keeps every value as text.
                assert_eq!(properties["leadflow_country_code"], json!(enrichment.country_code));
                assert_eq!(properties["country"], json!(enrichment.country_name));
                assert_eq!(
                    hubspot_text(&properties["leadflow_country_probability"]),
                    hubspot_text(&json!(enrichment.probability))
                );
                assert!(enrichment.probability.unwrap() > 0.6);
                assert_eq!(properties["company"], "Example Ltd");
                assert_eq!(version_of(contact), Some(view.version), "{contact}");
            }
            Some(LeadStatus::ToCheck) => {
                to_check += 1;
                assert!(!contacts.contains_key(lead_id), "To Check {lead_id} reached the CRM");
            }
            other => panic!("{lead_id}: unexpected status {other:?}"),
        }
    }
    assert!(
        verified > 0 && to_check > 0,
        "the names should give both outcomes: {verified} Verified, {to_check} To Check"
    );
    assert_eq!(contacts.keys().filter(|k| k.starts_with(&id)).count(), verified);

    for process in [&mut gateway, &mut enricher, &mut sink] {
        process.signal(libc::SIGTERM).unwrap();
        assert_eq!(
            process.wait_exit(Duration::from_secs(30)).await.unwrap().code(),
            Some(0),
            "{}",
            process.logs()
        );
    }
}
