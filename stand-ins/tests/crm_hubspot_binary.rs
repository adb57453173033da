//! The `crm-standin` process in HubSpot mode, its default: the token and precreated properties
//! come from its flags, and without them it knows only HubSpot's built-in properties.

mod common;

use common::StandInProcess;

use serde_json::{Value, json};
use stand_ins::crm::DATED_UPSERT_PATH;

#[tokio::test]
async fn hubspot_mode_checks_the_token_and_knows_the_precreated_properties() {
    let stand_in = StandInProcess::start(
        env!("CARGO_BIN_EXE_crm-standin"),
        "crm stand-in",
        &["--listen", "127.0.0.1:0", "--token", "t", "--precreate-properties", "leadflow"],
    );
    let url = format!("http://{}{DATED_UPSERT_PATH}", stand_in.addr);
    let body = json!({"inputs": [{"idProperty": "leadflow_id", "id": "L1",
                                  "properties": {"leadflow_version": 1, "leadflow_score": 40}}]});
    let client = reqwest::Client::new();
    let anonymous = client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let response = client.post(&url).bearer_auth("t").json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["results"][0]["properties"]["leadflow_score"], "40");

    let status = stand_in.terminate();
    assert!(status.success(), "exited with {status}");
}

#[tokio::test]
async fn without_a_mode_flag_it_is_hubspot_with_only_the_built_in_properties() {
    let stand_in = StandInProcess::start(
        env!("CARGO_BIN_EXE_crm-standin"),
        "crm stand-in",
        &["--listen", "127.0.0.1:0"],
    );
    let url = format!("http://{}{DATED_UPSERT_PATH}", stand_in.addr);
    let client = reqwest::Client::new();
    let upsert = |properties: Value| {
        let body =
            json!({"inputs": [{"idProperty": "email", "id": "ada@example.com", "properties": properties}]});
        client.post(&url).json(&body).send()
    };

    let built_in = upsert(json!({"firstname": "Ada"})).await.unwrap();
    assert_eq!(built_in.status(), 200);
    let answer: Value = built_in.json().await.unwrap();
    assert_eq!(answer["results"][0]["properties"]["firstname"], "Ada", "last writer wins' answer: {answer}");
    let ours = upsert(json!({"leadflow_version": 1})).await.unwrap();
    assert_eq!(ours.status(), 400);
    let refusal: Value = ours.json().await.unwrap();
    assert_eq!(refusal["errors"][0]["code"], "PROPERTY_DOESNT_EXIST", "{refusal}");

    let status = stand_in.terminate();
    assert!(status.success(), "exited with {status}");
}
