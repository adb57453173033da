//! The binary against the real stack: ready when Kafka and the registry answer, exit 0 on
//! SIGINT; bad command lines and config keys stop it with exit code 2 and say why.

use std::process::Command;

#[tokio::test]
async fn ready_against_the_stack_then_exits_0_on_sigint() {
    // A group of its own at the end of its topics and a database of its own: this test is about
    // the process, and leads left by other tests must not give it work.
    let stack = leadflow_testkit::Stack::get();
    let group =
        leadflow_testkit::kafka::new_group_at_end_of(&stack, "crm-sink-lifecycle", &crm_sink::INPUT_TOPICS);
    let env = [
        ("LEADFLOW_CONSUMER__GROUP_ID", group),
        ("LEADFLOW_MONGO__URI", stack.mongodb_uri.clone()),
        ("LEADFLOW_MONGO__DATABASE", leadflow_testkit::unique("crm_sink_lifecycle").replace('-', "_")),
    ];
    leadflow_testkit::check_service_lifecycle_with(env!("CARGO_BIN_EXE_crm-sink"), libc::SIGINT, &env)
        .await
        .unwrap();
}

#[test]
fn an_unknown_command_or_option_is_a_usage_error() {
    for args in [&["sync"][..], &["reconcile", "--wait"], &["reconcile", "--wait-s", "soon"]] {
        let output = Command::new(env!("CARGO_BIN_EXE_crm-sink")).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("usage: crm-sink"), "{args:?}: {stderr}");
    }
}

#[test]
fn an_unknown_destination_fails_start_up_naming_the_value() {
    let output = Command::new(env!("CARGO_BIN_EXE_crm-sink"))
        .env("LEADFLOW_CRM__DESTINATION", "salesforce")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("salesforce"), "{stderr}");
}
