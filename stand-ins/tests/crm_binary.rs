//! The `crm-standin` process in its versioned mode (`--mode versioned`; HubSpot mode is the
//! default): announces its address, answers, and exits 0 on SIGTERM; refuses bad flags with
//! exit 2.

mod common;

use std::process::Command;

use common::StandInProcess;

use serde_json::{Value, json};
use stand_ins::crm::UPSERT_PATH;

#[tokio::test]
async fn it_announces_its_address_answers_and_stops_cleanly_on_sigterm() {
    let stand_in = StandInProcess::start(
        env!("CARGO_BIN_EXE_crm-standin"),
        "crm stand-in",
        &["--listen", "127.0.0.1:0", "--mode", "versioned", "--burst-limit", "5"],
    );
    let addr = stand_in.addr.clone();

    let client = reqwest::Client::new();
    let input = json!({"idProperty": "leadflow_id", "id": "L1", "idempotencyKey": "L1:1",
                       "properties": {"leadflow_version": 1}});
    let response = client
        .post(format!("http://{addr}{UPSERT_PATH}"))
        .json(&json!({"inputs": [input]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"status": "COMPLETE", "results": [{"id": "L1", "version": 1, "new": true}]}));
    let stats: Value =
        client.get(format!("http://{addr}/__admin/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        stats,
        json!({"requests": 1, "inputs": 1, "appliedWrites": 1, "repeatedIdempotencyKeys": 0, "rateLimited": 0,
               "injectedErrors": 0, "droppedConnections": 0})
    );

    let status = stand_in.terminate();
    assert!(status.success(), "exited with {status}");
}

#[test]
fn bad_flags_print_the_usage_and_exit_2() {
    let output =
        Command::new(env!("CARGO_BIN_EXE_crm-standin")).args(["--error-rate", "lots"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--error-rate") && stderr.contains("usage:"), "{stderr}");
}
