//! The alert rules and the Grafana dashboards name only metrics that the services really export.
//!
//! Starts all five services against the local stack (ops endpoints on ports of the OS's choosing,
//! consumer groups of their own at the end of their topics, databases of their own), with the
//! nationalize and CRM stand-ins, and pushes a little traffic through them: names and events
//! through the gateway (one event invalid, so a rejection is counted), and one undecodable
//! record on each consumer's input topic (so each stage dead-letters once). Labelled metric
//! families appear in `/metrics` only once a label value has been used, hence the traffic.
//! Then every `leadflow_*` identifier in `deploy/prometheus/alerts.yml` and in every dashboard
//! expression under `deploy/grafana/dashboards/` must be among the series names scraped.
//! Series names are compared as scraped: a histogram is `<name>_bucket`, `_sum` and `_count`,
//! so a query of the bare histogram name (which selects nothing) is refused too.
//!
//! It also checks that the stack's Prometheus (`deploy/local/stack up`, PROMETHEUS_URL) has a
//! scrape target for each of the five services.
//!
//! Uses the binaries from `target/debug` (`cargo build --workspace --bins`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use leadflow_core::contract::topics;
use leadflow_testkit::kafka::{new_group_at_end_of, produce, producer};
use leadflow_testkit::stand_in::StandInProcess;
use leadflow_testkit::{ServiceProcess, Stack, repo_root, unique, workspace_binary};
use serde_json::{Value, json};

const CRM_SINK_INPUTS: [&str; 4] = [topics::ENRICHED, topics::SCORES, topics::REVIEWS, topics::CRM_RESYNC];

/// Series names in a Prometheus text exposition (sample lines, not `# HELP`/`# TYPE`).
fn series_names(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// Every `leadflow_[a-z0-9_]+` identifier in `text`.
fn leadflow_identifiers(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut found = BTreeSet::new();
    let mut at = 0;
    while let Some(offset) = text[at..].find("leadflow_") {
        let start = at + offset;
        let preceded = start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start + "leadflow_".len();
        while end < bytes.len()
            && (bytes[end].is_ascii_lowercase() || bytes[end].is_ascii_digit() || bytes[end] == b'_')
        {
            end += 1;
        }
        if !preceded && end > start + "leadflow_".len() {
            found.insert(text[start..end].to_owned());
        }
        at = end;
    }
    found
}

fn collect_exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", Value::String(expr)) => out.push(expr.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// Metric names the alerts and dashboards use, each with the files that use it.
fn referenced_metrics() -> BTreeMap<String, BTreeSet<String>> {
    let root = repo_root();
    let mut used: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut add = |file: &Path, text: &str| {
        let shown = file.strip_prefix(&root).unwrap_or(file).display().to_string();
        for name in leadflow_identifiers(text) {
            used.entry(name).or_default().insert(shown.clone());
        }
    };
    let alerts = root.join("deploy/prometheus/alerts.yml");
    add(&alerts, &std::fs::read_to_string(&alerts).unwrap());
    let dir = root.join("deploy/grafana/dashboards");
    let mut dashboards = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let mut exprs = Vec::new();
            collect_exprs(&dashboard, &mut exprs);
            assert!(!exprs.is_empty(), "{} has no expressions", path.display());
            add(&path, &exprs.join("\n"));
            dashboards += 1;
        }
    }
    assert!(dashboards > 0, "no dashboards in {}", dir.display());
    used
}

#[test]
fn identifiers_are_found_whole() {
    let ids = leadflow_identifiers(
        "rate(leadflow_a_total[5m]) / x_leadflow_b + {__name__=~\"leadflow_.*\"} leadflow_c_bucket{le=\"1\"}",
    );
    assert_eq!(ids, BTreeSet::from(["leadflow_a_total".to_owned(), "leadflow_c_bucket".to_owned()]));
    let names = series_names("# TYPE leadflow_h histogram\nleadflow_h_bucket{le=\"1\"} 0\nleadflow_g 1\n");
    assert_eq!(names, BTreeSet::from(["leadflow_g".to_owned(), "leadflow_h_bucket".to_owned()]));
}

#[tokio::test]
async fn alerts_and_dashboards_name_only_exported_metrics() {
    let used = referenced_metrics();
    let stack = Stack::get();

    let nationalize = StandInProcess::start("nationalize-standin").await;
    let crm = StandInProcess::start("crm-standin").await;
    let db = |prefix: &str| unique(prefix).replace('-', "_");
    let enricher_env = [
        ("LEADFLOW_CONSUMER__GROUP_ID", new_group_at_end_of(&stack, "obs-enricher", &[topics::NAMES])),
        ("LEADFLOW_NATIONALIZE__BASE_URL", format!("http://{}", nationalize.addr)),
        ("LEADFLOW_NATIONALIZE__REQUESTS_PER_SECOND", "1000".to_owned()),
        ("LEADFLOW_MONGO__URI", stack.mongodb_uri.clone()),
        ("LEADFLOW_MONGO__DATABASE", db("obs_enricher")),
    ];
    let scorer_env = [
        ("LEADFLOW_CONSUMER__GROUP_ID", new_group_at_end_of(&stack, "obs-scorer", &[topics::EVENTS])),
        ("LEADFLOW_MONGO__URI", stack.mongodb_uri.clone()),
        ("LEADFLOW_MONGO__DATABASE", db("obs_scorer")),
    ];
    let sink_env = [
        ("LEADFLOW_CONSUMER__GROUP_ID", new_group_at_end_of(&stack, "obs-crm-sink", &CRM_SINK_INPUTS)),
        ("LEADFLOW_CRM__HTTP__BASE_URL", format!("http://{}", crm.addr)),
        ("LEADFLOW_MONGO__URI", stack.mongodb_uri.clone()),
        ("LEADFLOW_MONGO__DATABASE", db("obs_crm_sink")),
    ];
    let automator_env = [
        (
            "LEADFLOW_CONSUMER__GROUP_ID",
            new_group_at_end_of(
                &stack,
                "obs-automator",
                &[topics::SCORES, topics::ENRICHED, topics::REVIEWS],
            ),
        ),
        ("LEADFLOW_MONGO__URI", stack.mongodb_uri.clone()),
        ("LEADFLOW_MONGO__DATABASE", db("obs_automator")),
    ];
    let mut gateway_env = vec![("LEADFLOW_HTTP__LISTEN", "127.0.0.1:0".to_owned())];
    gateway_env.extend(leadflow_testkit::auth::gateway_auth_env());
    // The stand-in plays HubSpot: the sink's properties first, as the demo does.
    leadflow_testkit::stand_in::crm_sink_setup(&workspace_binary("crm-sink"), &sink_env);

    let mut services = Vec::new();
    for (name, env) in [
        ("ingest-gateway", &gateway_env[..]),
        ("enricher", &enricher_env[..]),
        ("scorer", &scorer_env[..]),
        ("crm-sink", &sink_env[..]),
        ("automator", &automator_env[..]),
    ] {
        let (mut process, ops) =
            ServiceProcess::spawn_against(&stack, &workspace_binary(name), env).await.unwrap();
        process.wait_http_ok(&format!("http://{ops}/readyz"), Duration::from_secs(60)).await.unwrap();
        services.push((name, process, ops));
    }
    for (_, process, _) in services.iter_mut().skip(1) {
        process.wait_for_log("consuming", Duration::from_secs(60)).await.unwrap();
    }
    let api =
        services[0].1.wait_for_log_field("API listening", "addr", Duration::from_secs(30)).await.unwrap();

    // Traffic: names (some Verified, some To Check), events with one invalid, a 404.
    let run = unique("obs");
    let http = reqwest::Client::new();
    let key = leadflow_testkit::auth::create_project_and_key(
        &format!("http://{api}"),
        "default",
        &["ingest"],
        1_000_000,
    )
    .await
    .unwrap();
    let names: Vec<Value> = ["Ada Lovelace", "Kenji Watanabe", "Grace Hopper", "Zoë Ångström"]
        .iter()
        .enumerate()
        .map(|(i, name)| json!({"leadId": format!("{run}-{i}"), "name": name, "company": "Example Ltd"}))
        .collect();
    let response = http
        .post(format!("http://{api}/api/leads"))
        .bearer_auth(&key)
        .json(&json!({"names": names}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
    let events = json!({"events": [
        {"eventId": format!("{run}-e1"), "leadId": format!("{run}-0"), "eventType": "page_view", "timestamp": "2026-01-16T10:00:00Z"},
        {"eventId": format!("{run}-e2"), "leadId": format!("{run}-0"), "eventType": "demo_request", "timestamp": "2026-01-16T10:05:00Z"},
        {"eventId": format!("{run}-e3"), "leadId": "", "eventType": "no_such_type"},
    ]});
    let response = http
        .post(format!("http://{api}/api/events/batch"))
        .bearer_auth(&key)
        .json(&events)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success() || response.status().is_client_error(), "{response:?}");
    // The Segment-compatible API: an anonymous visitor's track, then an identify that merges it.
    let anonymous = format!("{run}-anon");
    let segment = json!({"batch": [
        {"type": "track", "event": "Page Viewed", "messageId": format!("{run}-m1"), "anonymousId": anonymous},
        {"type": "identify", "messageId": format!("{run}-m2"), "anonymousId": anonymous, "userId": format!("{run}-user")},
    ]});
    let response = http
        .post(format!("http://{api}/v1/batch"))
        .basic_auth(&key, Some(""))
        .json(&segment)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let _ = http.get(format!("http://{api}/no-such-route")).send().await.unwrap();
    // One undecodable record per consumer: each stage dead-letters it.
    let kafka = producer(&stack);
    for topic in [topics::NAMES, topics::EVENTS, topics::ENRICHED] {
        produce(&kafka, topic, &format!("{run}-poison"), b"not a schema-registry framed record").await;
    }

    // Scrape until every referenced metric is exported (labelled ones appear with their first
    // use), or fail after the deadline with what is missing.
    let deadline = Duration::from_secs(120);
    let start = Instant::now();
    let (exported, by_service) = loop {
        let mut exported = BTreeSet::new();
        let mut by_service = BTreeMap::new();
        for (name, process, ops) in services.iter_mut() {
            assert!(process.try_exit_status().is_none(), "{name} exited; its logs:\n{}", process.logs());
            let body = http.get(format!("http://{ops}/metrics")).send().await.unwrap().text().await.unwrap();
            let names = series_names(&body);
            assert!(names.contains("leadflow_build_info"), "{name}: no leadflow_build_info in /metrics");
            exported.extend(names.iter().cloned());
            by_service.insert(name.to_string(), names);
        }
        let missing = used.keys().filter(|m| !exported.contains(*m)).count();
        if missing == 0 || start.elapsed() > deadline {
            break (exported, by_service);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let missing: Vec<String> = used
        .iter()
        .filter(|(m, _)| !exported.contains(*m))
        .map(|(m, files)| format!("  {m} (used in {})", files.iter().cloned().collect::<Vec<_>>().join(", ")))
        .collect();
    assert!(
        missing.is_empty(),
        "metrics named by the alerts or dashboards that no service exports (after {deadline:?} of traffic):\n{}\n\n\
         exported, by service:\n{}",
        missing.join("\n"),
        by_service
            .iter()
            .map(|(s, names)| format!("  {s}: {}", names.iter().cloned().collect::<Vec<_>>().join(" ")))
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!("{} referenced metrics, all exported ({} series names scraped)", used.len(), exported.len());

    for (name, process, _) in services.iter_mut() {
        process.signal(libc::SIGTERM).unwrap();
        let status = process.wait_exit(Duration::from_secs(30)).await.unwrap();
        assert_eq!(status.code(), Some(0), "{name}: {}", process.logs());
    }
}

/// The stack's Prometheus (PROMETHEUS_URL, from the environment or `.local/stack.env`) is up and
/// has a scrape job for each service. The targets may be down: the services run only when
/// started (e.g. by scripts/demo), on the fixed ops ports 9101-9105.
#[tokio::test]
async fn the_stack_prometheus_scrapes_the_five_services() {
    let url = std::env::var("PROMETHEUS_URL").ok().or_else(|| {
        let env = std::fs::read_to_string(repo_root().join(".local/stack.env")).ok()?;
        env.lines().find_map(|l| l.strip_prefix("PROMETHEUS_URL=").map(str::to_owned))
    });
    let url = url.expect(
        "PROMETHEUS_URL is neither set nor in .local/stack.env; start the stack with `deploy/local/stack up`",
    );
    // Targets appear once service discovery has run (a few seconds after Prometheus starts).
    let wanted = [
        ("ingest-gateway", 9101),
        ("enricher", 9102),
        ("scorer", 9103),
        ("crm-sink", 9104),
        ("automator", 9105),
    ];
    let start = Instant::now();
    let jobs: BTreeMap<String, String> = loop {
        let body: Value = reqwest::get(format!("{url}/api/v1/targets"))
            .await
            .unwrap_or_else(|e| panic!("{url}/api/v1/targets: {e} (is `deploy/local/stack up` running?)"))
            .json()
            .await
            .unwrap();
        assert_eq!(body["status"], "success", "{body}");
        let jobs: BTreeMap<String, String> = body["data"]["activeTargets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["labels"]["job"].as_str().unwrap_or("").to_owned(),
                    t["scrapeUrl"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        if wanted.iter().all(|(job, _)| jobs.contains_key(*job)) || start.elapsed() > Duration::from_secs(30)
        {
            break jobs;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    for (job, port) in wanted {
        assert_eq!(
            jobs.get(job).map(String::as_str),
            Some(format!("http://127.0.0.1:{port}/metrics").as_str()),
            "Prometheus at {url} has no target for {job}: {jobs:?}"
        );
    }
    let rules: Value = reqwest::get(format!("{url}/api/v1/rules")).await.unwrap().json().await.unwrap();
    let loaded = rules["data"]["groups"].as_array().map_or(0, Vec::len);
    assert!(loaded > 0, "Prometheus at {url} loaded no alert rule groups: {rules}");
}
