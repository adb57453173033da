//! The dashboard in a real headless Chromium (Debian's `chromium`, driven by npm's
//! `playwright-core`; `scripts/install-browser-test` installs both). The whole pipeline runs on
//! the real stack: the gateway serving the dashboard, the enricher against the nationalize
//! stand-in, the scorer, and the crm-sink delivering to the CRM stand-in, sharing one MongoDB
//! database of this test's own. A dashboard user of the `default` project and a key of it (for
//! the forms, which post with a key) are made through the API with the admin token.
//! `tests/browser/dashboard.mjs` then logs in on the login page, submits names in the page and
//! watches them turn Verified or To Check (as the stand-in's deterministic predictions say),
//! reach the CRM, score, filter and chart, live; resume after a dropped connection with
//! `Last-Event-ID`; then a person verifies a To Check lead in the page and it reaches the CRM. Screenshots: `target/dashboard-screenshots/`.
//!
//! Uses the services' binaries from `target/debug` (`cargo test --workspace` builds them).

#[path = "common/browser.rs"]
mod browser;

use std::time::Duration;

use enricher::rules::{CountryProbability, lookup_key, verdict};
use leadflow_core::contract::records::EnrichmentStatus;
use leadflow_core::contract::topics;
use leadflow_testkit::kafka::{new_group_at_end, new_group_at_end_of};
use leadflow_testkit::stand_in::{FIRST_NAMES, StandInServer};
use leadflow_testkit::{ServiceProcess, Stack, eventually, repo_root, unique, workspace_binary};
use serde_json::{Value, json};

/// The status the enricher gives `name` against the stand-in, computed as the enricher does.
fn expected_status(name: &str) -> EnrichmentStatus {
    let prediction = stand_ins::nationalize::predict(&lookup_key(name).unwrap());
    let countries: Vec<CountryProbability> = prediction
        .country
        .iter()
        .map(|c| CountryProbability { country_id: c.country_id.clone(), probability: c.probability })
        .collect();
    verdict(&countries, 0.6).status
}

/// Three Verified names and two To Check ones, with a surname of this run's.
fn leads_to_submit(run: &str) -> Vec<Value> {
    let (mut verified, mut to_check) = (Vec::new(), Vec::new());
    for first in FIRST_NAMES {
        let name = format!("{first} {run}");
        match expected_status(&name) {
            EnrichmentStatus::Verified if verified.len() < 3 => verified.push(name),
            EnrichmentStatus::ToCheck if to_check.len() < 2 => to_check.push(name),
            _ => {}
        }
    }
    assert_eq!((verified.len(), to_check.len()), (3, 2), "the candidate names must give both outcomes");
    let email = |name: &str| format!("{}@example.com", name.split(' ').next().unwrap().to_lowercase());
    verified
        .iter()
        .map(|name| json!({"name": name, "email": email(name), "expected": "Verified"}))
        .chain(
            to_check.iter().map(|name| json!({"name": name, "email": email(name), "expected": "To Check"})),
        )
        .collect()
}

#[tokio::test]
async fn a_person_submits_names_and_watches_them_enrich_score_and_sync_live() {
    browser::browser_tools();
    let stack = Stack::get();
    let run = unique("dash").replace('-', "");
    let database = ("LEADFLOW_MONGO__DATABASE", run.clone());
    let mongo = ("LEADFLOW_MONGO__URI", stack.mongodb_uri.clone());

    let nationalize = StandInServer::start(|listener, stop| {
        stand_ins::nationalize::serve(listener, Default::default(), stop)
    })
    .await;
    // HubSpot mode, with the properties `crm-sink setup` would create.
    let crm_settings = stand_ins::crm::Settings::hubspot_with_leadflow_properties(Default::default());
    let crm =
        StandInServer::start(|listener, stop| stand_ins::crm::serve_with(listener, crm_settings, stop)).await;

    // Each consumer in a group of its own that starts at the end of its topics: the records
    // other tests left behind are not this test's.
    let mut services = Vec::new();
    for (binary, env) in [
        (
            "enricher",
            vec![
                mongo.clone(),
                database.clone(),
                ("LEADFLOW_NATIONALIZE__BASE_URL", nationalize.base_url.clone()),
                ("LEADFLOW_NATIONALIZE__REQUESTS_PER_SECOND", "1000".to_owned()),
                (
                    "LEADFLOW_CONSUMER__GROUP_ID",
                    new_group_at_end(&stack, "dashboard-enricher", topics::NAMES),
                ),
            ],
        ),
        (
            "scorer",
            vec![
                mongo.clone(),
                database.clone(),
                ("LEADFLOW_CONSUMER__GROUP_ID", new_group_at_end(&stack, "dashboard-scorer", topics::EVENTS)),
            ],
        ),
        (
            "crm-sink",
            vec![
                mongo.clone(),
                database.clone(),
                ("LEADFLOW_CRM__HTTP__BASE_URL", crm.base_url.clone()),
                (
                    "LEADFLOW_CONSUMER__GROUP_ID",
                    new_group_at_end_of(&stack, "dashboard-crm-sink", &crm_sink::INPUT_TOPICS),
                ),
            ],
        ),
    ] {
        let (mut process, _) =
            ServiceProcess::spawn_against(&stack, &workspace_binary(binary), &env).await.unwrap();
        process.wait_for_log("consuming", Duration::from_secs(60)).await.unwrap();
        services.push(process);
    }
    let admin_token = unique("dashboard-admin-token");
    let (mut gateway, _) = ServiceProcess::spawn_against(
        &stack,
        &workspace_binary("ingest-gateway"),
        &[
            ("LEADFLOW_HTTP__LISTEN", "127.0.0.1:0".to_owned()),
            mongo.clone(),
            database.clone(),
            ("LEADFLOW_AUTH__ADMIN_TOKEN", admin_token.clone()),
            ("LEADFLOW_AUTH__JWT_SECRET", unique("dashboard-jwt-secret-of-32-bytes-or-more")),
        ],
    )
    .await
    .unwrap();
    let api = gateway.wait_for_log_field("API listening", "addr", Duration::from_secs(30)).await.unwrap();
    let (user_email, user_password) = (format!("{run}@example.com"), unique("a-dashboard-password"));
    let other_project = unique("dash").replace('_', "-");
    let project_key =
        user_and_key(&format!("http://{api}"), &admin_token, &user_email, &user_password, &other_project)
            .await;

    let leads = leads_to_submit(&run);
    let screenshots = repo_root().join("target/dashboard-screenshots");
    browser::run_driver(
        "dashboard.mjs",
        &screenshots,
        &[
            ("DASHBOARD_URL", format!("http://{api}/")),
            ("LEADS", serde_json::to_string(&leads).unwrap()),
            ("USER_EMAIL", user_email.clone()),
            ("USER_PASSWORD", user_password.clone()),
            ("PROJECT", "default".to_owned()),
            ("OTHER_PROJECT", other_project.clone()),
            ("PROJECT_KEY", project_key.clone()),
        ],
        Duration::from_secs(600),
        || format!("gateway log:\n{}", gateway.logs()),
    )
    .await;

    // What the page showed is what the CRM holds: the Verified leads, the one a person verified
    // in the page, and no others.
    let contacts = crm.get("/__admin/contacts").await["contacts"].as_object().unwrap().clone();
    // Other tests on the same Kafka may post names of theirs meanwhile, which this run's
    // crm-sink delivers too: this run's leads are the ones with its surname.
    let mut emails_in_crm: Vec<&str> = contacts
        .values()
        .filter(|c| c["properties"]["lastname"] == run.as_str())
        .map(|c| c["properties"]["email"].as_str().unwrap_or("(no email)"))
        .collect();
    let reviewed = leads.iter().find(|l| l["expected"] == "To Check").unwrap();
    let mut verified_emails: Vec<&str> = leads
        .iter()
        .filter(|l| l["expected"] == "Verified")
        .chain([reviewed])
        .map(|l| l["email"].as_str().unwrap())
        .collect();
    emails_in_crm.sort_unstable();
    verified_emails.sort_unstable();
    assert_eq!(emails_in_crm, verified_emails);
    browser::assert_screenshots(
        &screenshots,
        &[
            "logged-in",
            "other-project",
            "logged-out",
            "submitted",
            "enriched-and-synced",
            "scored",
            "lead-chart",
            "leaderboard",
            "reviewed",
        ],
    );

    for process in services.iter_mut().chain([&mut gateway]) {
        process.signal(libc::SIGTERM).unwrap();
        assert_eq!(
            process.wait_exit(Duration::from_secs(30)).await.unwrap().code(),
            Some(0),
            "{}",
            process.logs()
        );
    }
}

/// Creates `other_project`, registers a dashboard user of the `default` project (which the
/// gateway creates at start, so the first attempt may find it missing) and of `other_project`,
/// and makes a key of `default` with the `ingest` and `read` scopes: the text of the key.
async fn user_and_key(
    base_url: &str,
    admin_token: &str,
    email: &str,
    password: &str,
    other_project: &str,
) -> String {
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{base_url}{path}")).bearer_auth(admin_token).json(&body).send()
    };
    let key = eventually("a key of the default project", Duration::from_secs(30), || async {
        let response = post(
            "/api/projects/default/keys",
            json!({"name": "dashboard test", "scopes": ["ingest", "read"]}),
        )
        .await
        .map_err(|e| e.to_string())?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        match status.as_u16() {
            201 => Ok(Some(body["key"].as_str().unwrap().to_owned())),
            _ => Err(format!("{status}: {body}")),
        }
    })
    .await
    .unwrap();
    let created = post("/api/projects", json!({"id": other_project})).await.unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    let projects = json!(["default", other_project]);
    let registered =
        post("/api/auth/register", json!({"email": email, "password": password, "projects": projects}))
            .await
            .unwrap();
    assert_eq!(registered.status(), 201, "{}", registered.text().await.unwrap());
    key
}
