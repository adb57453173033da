//! The `nationalize-standin` process: announces its address, answers, and exits 0 on SIGTERM;
//! refuses bad flags with exit 2.

mod common;

use std::process::Command;

use common::StandInProcess;

use stand_ins::nationalize::{Prediction, predict};

#[tokio::test]
async fn it_announces_its_address_answers_and_stops_cleanly_on_sigterm() {
    let stand_in = StandInProcess::start(
        env!("CARGO_BIN_EXE_nationalize-standin"),
        "nationalize stand-in",
        &["--listen", "127.0.0.1:0", "--quota", "5"],
    );
    let addr = stand_in.addr.clone();

    let response = reqwest::get(format!("http://{addr}/?name=Anna")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-rate-limit-limit"], "5");
    assert_eq!(response.json::<Prediction>().await.unwrap(), predict("Anna"));

    let status = stand_in.terminate();
    assert!(status.success(), "exited with {status}");
}

#[test]
fn bad_flags_print_the_usage_and_exit_2() {
    let output = Command::new(env!("CARGO_BIN_EXE_nationalize-standin"))
        .args(["--error-rate", "lots"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--error-rate") && stderr.contains("usage:"), "{stderr}");
}
