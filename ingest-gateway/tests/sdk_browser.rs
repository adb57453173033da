//! Browser SDKs in a real headless Chromium (Debian's `chromium`, driven by npm's
//! `playwright-core`; `scripts/install-browser-test` installs both and the analytics-next
//! bundle), each on a page of another origin than the gateway's, on the real stack (the gateway,
//! the scorer, Kafka, the registry, MongoDB) unless said otherwise:
//!
//! - `@segment/analytics-next` from npm (bundled by esbuild) sends identify, track and page
//!   through CORS as text/plain, configured by `cdnSettings` and by `cdnURL` (the gateway's
//!   settings document); each is scored under its messageId. A page of an origin the project
//!   does not allow gets nothing through.
//! - LeadFlow's `ls.js`, served by the gateway: a visitor's anonymous page views and tracks, then
//!   `identify` on the sign-up page: the known lead's score rises by exactly the anonymous
//!   events' points, each counted once, and the anonymous lead closes into it.
//! - `ls.js` with the gateway down (no stack): the page sees no error.
//! - `ls.js`'s logic under node's test runner (`tests/browser/lsjs_unit.test.mjs`, no browser).
//!
//! Screenshots: `target/sdk-screenshots/`. Uses the scorer binary from `target/debug`.

#[path = "common/browser.rs"]
mod browser;
mod common;
#[path = "common/sdk.rs"]
mod sdk;

use std::time::Duration;

use leadflow_testkit::{free_port, repo_root, unique};
use sdk::{SdkStack, driver_result, final_score, lead_id_of, times_scored};
use serde_json::{Value, json};

fn screenshots(test: &str) -> std::path::PathBuf {
    repo_root().join("target/sdk-screenshots").join(test)
}

#[tokio::test]
async fn analytics_next_sends_through_cors_as_text_plain_and_is_scored() {
    browser::browser_tools();
    let page_port = free_port();
    let origin = format!("http://127.0.0.1:{page_port}");
    let points = [("signed_up", 20.0), ("page_view", 5.0), ("identify", 1.0)];
    let stack = SdkStack::start("sdk-next", std::slice::from_ref(&origin), &points).await;
    let run = unique("next");
    let printed = browser::run_driver(
        "sdk_analytics_next.mjs",
        &screenshots("analytics-next"),
        &[
            ("GATEWAY_URL", stack.gateway.base_url.clone()),
            ("WRITE_KEY", stack.write_key.clone()),
            ("RUN", run.clone()),
            ("PAGE_PORT", page_port.to_string()),
        ],
        Duration::from_secs(180),
        || format!("gateway log:\n{}", stack.gateway.process.logs()),
    )
    .await;
    let result = driver_result(&printed);
    assert_eq!(result["pageOrigin"], origin.as_str());
    browser::assert_screenshots(&screenshots("analytics-next"), &["cdnSettings", "cdnURL"]);

    for variant in ["cdnSettings", "cdnURL"] {
        let sent = &result["variants"][variant];
        let lead = lead_id_of(sent["userId"].as_str().unwrap());
        let messages = sent["messages"].as_array().unwrap();
        let ids: Vec<&str> = messages.iter().map(|m| m["messageId"].as_str().unwrap()).collect();
        let scored = stack.scored(&lead, &ids, Duration::from_secs(60)).await;
        for message in messages {
            let (event_id, call) =
                (message["messageId"].as_str().unwrap(), message["type"].as_str().unwrap());
            assert_eq!(times_scored(&scored, event_id), 1, "{variant} {call}: {scored:?}");
            let expected_type = match call {
                "track" => "signed_up",
                "page" => "page_view",
                other => other,
            };
            assert_eq!(scored.iter().find(|s| s.event_id == event_id).unwrap().event_type, expected_type);
        }
        assert_eq!(final_score(&scored), 26.0, "{variant}: {scored:?}");
    }
    stack.stop().await;
}

#[tokio::test]
async fn ls_js_anonymous_page_views_join_the_known_lead_on_identify() {
    browser::browser_tools();
    let page_port = free_port();
    let origin = format!("http://127.0.0.1:{page_port}");
    let points = [
        ("page_view", 5.0),
        ("pricing_viewed", 7.0),
        ("demo_requested", 30.0),
        ("signed_up", 20.0),
        ("webinar_attended", 11.0),
    ];
    let points_of = |event_type: &str| points.iter().find(|(t, _)| *t == event_type).map_or(0.0, |(_, p)| *p);
    let stack = SdkStack::start("sdk-lsjs", std::slice::from_ref(&origin), &points).await;
    let run = unique("ls");
    let user_id = format!("ls user {run}");
    let known = lead_id_of(&user_id);

    // The known lead exists before the visitor signs up: a webinar, sent server-side.
    let baseline = format!("{run}-webinar");
    let (status, answer) = stack
        .post_v1("/track", &json!({"userId": user_id, "event": "Webinar Attended", "messageId": baseline}))
        .await;
    assert_eq!((status, &answer), (200, &json!({"success": true})));
    let before = final_score(&stack.scored(&known, &[&baseline], Duration::from_secs(60)).await);
    assert_eq!(before, 11.0);

    let printed = browser::run_driver(
        "sdk_lsjs.mjs",
        &screenshots("lsjs"),
        &[
            ("GATEWAY_URL", stack.gateway.base_url.clone()),
            ("WRITE_KEY", stack.write_key.clone()),
            ("PAGE_PORT", page_port.to_string()),
            ("MODE", "visit".to_owned()),
            ("USER_ID", user_id.clone()),
        ],
        Duration::from_secs(180),
        || format!("gateway log:\n{}", stack.gateway.process.logs()),
    )
    .await;
    let result = driver_result(&printed);
    browser::assert_screenshots(&screenshots("lsjs"), &["landing", "signup", "test-page"]);
    let anonymous_lead = lead_id_of(result["anonymousId"].as_str().unwrap());
    let anonymous: Vec<(&str, &str)> = result["anonymous"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["messageId"].as_str().unwrap(), event_type_of(m)))
        .collect();
    let signed_up = result["known"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["event"] == "Signed Up")
        .map(|m| m["messageId"].as_str().unwrap())
        .unwrap();
    let anonymous_points: f64 = anonymous.iter().map(|(_, t)| points_of(t)).sum();
    assert_eq!(anonymous_points, 3.0 * 5.0 + 7.0 + 30.0, "{anonymous:?}");

    let mut expected: Vec<&str> = anonymous.iter().map(|(id, _)| *id).collect();
    expected.push(signed_up);
    let scored = stack.scored(&known, &expected, Duration::from_secs(90)).await;
    for (event_id, event_type) in &anonymous {
        assert_eq!(
            times_scored(&scored, event_id),
            1,
            "{event_id} ({event_type}) on the known lead: {scored:?}"
        );
    }
    assert_eq!(
        final_score(&scored),
        before + anonymous_points + 20.0,
        "the known lead gains the anonymous events' points and its sign-up's: {scored:?}"
    );
    let closed = eventually_closed(&stack, &anonymous_lead, &known).await;
    assert_eq!(closed.score, 0.0, "the anonymous lead's closing record: {closed:?}");
    stack.stop().await;
}

/// The event type the gateway gives a message the ls.js driver reported.
fn event_type_of(message: &Value) -> &'static str {
    match (message["type"].as_str(), message["event"].as_str()) {
        (Some("page"), _) => "page_view",
        (Some("track"), Some("Pricing Viewed")) => "pricing_viewed",
        (Some("track"), Some("Demo Requested")) => "demo_requested",
        other => panic!("an anonymous call the test did not make: {other:?}"),
    }
}

/// The anonymous lead's record closing it into `known` (`mergedInto`), once the scorer wrote it.
async fn eventually_closed(
    stack: &SdkStack,
    anonymous: &str,
    known: &str,
) -> leadflow_core::contract::records::LeadScored {
    leadflow_testkit::eventually(
        "the anonymous lead closed into the known one",
        Duration::from_secs(60),
        || async {
            let scored = stack.scored(anonymous, &[], Duration::from_secs(30)).await;
            let closing: Vec<_> = scored.iter().filter(|s| s.merged_into.is_some()).cloned().collect();
            match closing.as_slice() {
                [] => Err(format!("no closing record yet: {scored:?}")),
                [one] if one.merged_into.as_deref() == Some(known) => Ok(Some(one.clone())),
                more => {
                    panic!("the anonymous lead closed {} times or into another lead: {more:?}", more.len())
                }
            }
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn ls_js_with_the_gateway_down_shows_the_page_no_error() {
    browser::browser_tools();
    let printed = browser::run_driver(
        "sdk_lsjs.mjs",
        &screenshots("lsjs-down"),
        &[
            // A port nothing listens on: every request the tracker makes is refused.
            ("GATEWAY_URL", format!("http://127.0.0.1:{}", free_port())),
            ("WRITE_KEY", "lf_test_write_key".to_owned()),
            ("PAGE_PORT", free_port().to_string()),
            ("MODE", "down".to_owned()),
        ],
        Duration::from_secs(180),
        String::new,
    )
    .await;
    let result = driver_result(&printed);
    assert!(result["failedRequests"].as_u64().unwrap() >= 3, "the tracker never tried the gateway: {result}");
    assert_eq!(result["scriptErrors"]["onerror"], 0);
    assert_eq!(result["scriptErrors"]["unhandledRejections"], 0);
    assert_eq!(result["scriptErrors"]["consoleErrors"], 0);
}

#[tokio::test]
async fn ls_js_logic_passes_its_unit_tests() {
    let (_, driver_dir) = browser::browser_tools();
    let output = tokio::process::Command::new("node")
        .args(["--test", "lsjs_unit.test.mjs"])
        .current_dir(&driver_dir)
        .kill_on_drop(true)
        .output();
    let output =
        tokio::time::timeout(Duration::from_secs(120), output).await.expect("node --test hung").unwrap();
    let printed =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{printed}");
    assert!(printed.contains("# fail 0") && !printed.contains("# pass 0"), "{printed}");
}
