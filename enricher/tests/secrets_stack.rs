//! The nationalize API key on the real stack: it travels in the request's query (`apikey=`),
//! and reqwest's error texts name the URL, so a failing API could copy the key into every log
//! line and dead letter. The enricher runs with a key of its own against an API that answers
//! 503, one that answers too late, and a port nothing listens on; each name ends as a dead
//! letter, and the key must be in none of them, and in no line the process logged.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine;
use common::{EnricherRun, StandIn, decode_all, json_faults, names, produce_names, run_id};
use leadflow_core::contract::records::DeadLetter;
use leadflow_core::contract::topics;
use leadflow_testkit::kafka::{Published, read_from_within, read_to_end};
use leadflow_testkit::{Stack, free_port, unique};

/// Every enricher started here consumes every name written after its start, so two tests at
/// once would enrich each other's names: they take turns.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const NAMES_PER_CASE: usize = 3;

/// How the API fails in one case.
struct Case {
    label: &'static str,
    /// The stand-in's faults; it always requires the key, so a request without it is a 401.
    faults: serde_json::Value,
    /// Where the enricher sends its requests instead of the stand-in, if anywhere.
    base_url: Option<String>,
    /// What the dead letter's error says happened.
    expected_error: &'static str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_is_in_no_log_line_and_no_dead_letter_when_the_api_fails() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let stack = Stack::get();
    // Recognisable, and only characters a query keeps as they are, so a copy of the URL holds it
    // verbatim.
    let key = unique("canary-apikey").replace('_', "-");
    let with_key = |mut faults: serde_json::Value| {
        faults["apiKey"] = key.clone().into();
        faults
    };
    let cases = [
        Case {
            label: "the API answers 503",
            faults: with_key(json_faults(0, 1.0, None, 86_400)),
            base_url: None,
            expected_error: "server error 503",
        },
        Case {
            label: "the API answers after the request timeout",
            faults: with_key(json_faults(3_000, 0.0, None, 86_400)),
            base_url: None,
            expected_error: "the request timed out",
        },
        Case {
            label: "nothing listens at the base URL",
            faults: with_key(json_faults(0, 0.0, None, 86_400)),
            base_url: Some(format!("http://127.0.0.1:{}", free_port())),
            expected_error: "the request failed",
        },
    ];

    // Where the key turned up, in every case.
    let mut leaks: Vec<String> = Vec::new();
    for case in cases {
        let label = case.label;
        let stand_in = StandIn::start(case.faults.clone()).await;
        let run = EnricherRun::new(&stack);
        let id = run_id();
        let mut env = vec![
            ("LEADFLOW_NATIONALIZE__API_KEY", key.clone()),
            ("LEADFLOW_NATIONALIZE__MAX_ATTEMPTS", "2".to_owned()),
            ("LEADFLOW_NATIONALIZE__REQUEST_TIMEOUT", "300ms".to_owned()),
        ];
        if let Some(base_url) = &case.base_url {
            env.push(("LEADFLOW_NATIONALIZE__BASE_URL", base_url.clone()));
        }
        let mut enricher = run.start(&stack, &stand_in, "a", &env).await;
        produce_names(&stack, &names(&id, NAMES_PER_CASE)).await;

        // This enricher's dead letters: other tests' enrichers (in other groups) may read these
        // names too, so the letters are told apart by what they say.
        let prefix = format!("{id}-");
        let this_case = |r: &Published| {
            let text = String::from_utf8_lossy(&r.value);
            r.key.starts_with(&prefix)
                && text.contains("\"errorKind\":\"enrichment_failed\"")
                && text.contains(case.expected_error)
        };
        read_from_within(&stack, topics::DLQ, &run.dlq_from, Duration::from_secs(60), |records| {
            records.iter().filter(|r| this_case(r)).map(|r| &r.key).collect::<HashSet<_>>().len()
                >= NAMES_PER_CASE
        })
        .await;
        enricher.signal(libc::SIGTERM).unwrap();
        let exit = enricher.wait_exit(Duration::from_secs(30)).await.unwrap();
        assert_eq!(exit.code(), Some(0), "{label}: {}", enricher.logs());

        // Where the key turned up: every line the process logged, and every dead letter written
        // since this run started, whoever wrote it.
        let logs = enricher.logs();
        leaks.extend(logs.lines().filter(|l| l.contains(&key)).map(|l| format!("{label}: a log line: {l}")));
        let written = read_to_end(&stack, topics::DLQ, &run.dlq_from, Duration::from_secs(30)).await;
        let letters: Vec<DeadLetter> = decode_all(&stack, written.iter()).await;
        for (record, letter) in written.iter().zip(&letters) {
            let original = letter
                .original_value
                .as_deref()
                .map(|v| base64::engine::general_purpose::STANDARD.decode(v).unwrap())
                .unwrap_or_default();
            let places = [
                ("the record", String::from_utf8_lossy(&record.value).into_owned()),
                ("its headers", format!("{:?}", record.headers)),
                ("its error", letter.error.clone()),
                ("its original key", letter.original_key.clone().unwrap_or_default()),
                ("its original value", String::from_utf8_lossy(&original).into_owned()),
            ];
            leaks.extend(
                places
                    .into_iter()
                    .filter(|(_, text)| text.contains(&key))
                    .map(|(place, text)| format!("{label}: a dead letter's {place}: {text}")),
            );
        }
        let failed: Vec<&DeadLetter> = letters
            .iter()
            .filter(|l| l.lead_id.starts_with(&prefix) && l.error_kind == "enrichment_failed")
            .filter(|l| l.error.contains(case.expected_error))
            .collect();
        let failed_leads: HashSet<&str> = failed.iter().map(|l| l.lead_id.as_str()).collect();
        assert_eq!(failed_leads.len(), NAMES_PER_CASE, "{label}: a dead letter per name: {letters:?}");
        for letter in &failed {
            assert!(letter.error.starts_with("gave up after 2 attempts: "), "{label}: {}", letter.error);
        }
        assert!(logs.contains("API request failed; retrying"), "{label}: the failures are logged:\n{logs}");
        if case.expected_error.starts_with("server error") {
            // Every request carried the key (the stand-in answers 401 without it), so what was
            // kept out of the texts was in the URL.
            let stats = stand_in.stats().await;
            let requests = stats["requests"].as_u64().unwrap();
            assert!(requests >= 2 && stats["injectedErrors"] == requests, "{label}: {stats}");
        }
    }
    assert!(leaks.is_empty(), "the API key is in {} places:\n{}", leaks.len(), leaks.join("\n"));
}
