//! Projects, keys, scopes, revocation and the shared rate limit, against the real stack: the
//! gateway binary (one or two replicas on one MongoDB database of the test's own), Kafka and the
//! registry.
//!
//! - Isolation: projects A and B hold the same lead id. For every endpoint (list, get, history,
//!   intelligence, leaderboard, review, rules, stream, and posting events and names), B's key
//!   sees none of A's data and changes none of it, and A's stream never carries B's updates. The
//!   test prints the matrix it checked.
//! - Scopes: an ingest-only key cannot read; a read key cannot post or change rules.
//! - Revocation: a key revoked through one replica is refused by both within `auth.cache_ttl`,
//!   and a stream open on the other replica ends within that bound.
//! - Rate limit: a key of 100 events per minute gets 100 accepted across two replicas, the
//!   101st is a 429 with Retry-After and the RateLimit-* headers, and Kafka holds exactly the
//!   100 accepted events.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{Chunk, Gateway, next_events, read_events, run_id, send_as};
use leadflow_core::contract::project::lead_key;
use leadflow_core::contract::records::{
    EnrichmentStatus, LeadEnriched, LeadEvent, LeadReviewed, LeadScored, Stage,
};
use leadflow_core::model::read_model::LeadView;
use leadflow_core::store::documents::{HistoryDoc, LEAD_SCORES, LEADS, LeadDoc, LeadViewDoc, SCORE_HISTORY};
use leadflow_core::store::mongo::MongoConfig;
use leadflow_testkit::auth::{TEST_ADMIN_TOKEN, create_key, create_project, revoke_key};
use leadflow_testkit::kafka::{codec, end_offsets, read_to_end};
use leadflow_testkit::{Stack, eventually, unique};
use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;

/// `auth.cache_ttl` of the gateways these tests start (the default).
const CACHE_TTL: Duration = Duration::from_secs(2);

fn project_id(prefix: &str) -> String {
    unique(prefix).replace('_', "-")
}

/// A project's key: its text and its id.
struct Key {
    text: String,
    id: String,
}

async fn key(base_url: &str, project: &str, scopes: &[&str], events_per_minute: u32) -> Key {
    let made = create_key(base_url, project, scopes, events_per_minute).await.unwrap();
    Key { text: made["key"].as_str().unwrap().to_owned(), id: made["id"].as_str().unwrap().to_owned() }
}

/// `replicas` gateways on one MongoDB database of this run's.
async fn gateways(stack: &Stack, replicas: usize) -> (Vec<Gateway>, String) {
    let database = run_id();
    let env =
        [("LEADFLOW_MONGO__URI", stack.mongodb_uri.clone()), ("LEADFLOW_MONGO__DATABASE", database.clone())];
    let mut started = Vec::new();
    for _ in 0..replicas {
        started.push(Gateway::start_with(stack, &env).await);
    }
    (started, database)
}

/// One lead of one project in the read model and the scorer's state, written as the crm-sink
/// and the scorer write them (the shared document shapes, keyed by the lead key).
async fn seed_lead(
    stack: &Stack,
    database: &str,
    project: &str,
    lead: &str,
    name: &str,
    score: f64,
    events: &[&str],
) {
    let mongo = MongoConfig { uri: stack.mongodb_uri.clone(), database: database.to_owned() };
    let client = leadflow_core::store::mongo::client(&mongo, "tenancy-test").await.unwrap();
    let db = client.database(database);
    let now = OffsetDateTime::now_utc();
    let key = lead_key(project, lead).into_owned();
    let mut view = LeadView::new(&key, 0);
    view.apply_enriched(&LeadEnriched {
        project_id: project.into(),
        lead_id: lead.into(),
        name: name.into(),
        email: Some(format!("{}@{project}.example", name.to_lowercase())),
        company: Some(format!("{project} Inc")),
        country_code: Some("GB".into()),
        country_name: Some("United Kingdom".into()),
        probability: Some(0.9),
        status: EnrichmentStatus::Verified,
        reason: None,
        provider: "nationalize".into(),
        enriched_at: now,
    });
    view.apply_scored(&LeadScored {
        project_id: project.into(),
        lead_id: lead.into(),
        event_id: events.last().unwrap().to_string(),
        event_type: "page_view".into(),
        delta: score,
        score,
        stage: if score > 50.0 { Stage::Hot } else { Stage::Cold },
        previous_stage: None,
        event_timestamp: now,
        rules_version: "v1".into(),
        processed_at: now,
        late: false,
        reason: None,
        lead_version: Some(1),
        merged_into: None,
    });
    db.collection::<LeadViewDoc>(LEADS).insert_one(LeadViewDoc::from_view(view, 1)).await.unwrap();
    let applied: Vec<(&str, &str, OffsetDateTime)> =
        events.iter().map(|id| (*id, "page_view", now)).collect();
    let (mut state, history) = leadflow_testkit::scorer_state::applied(
        project,
        lead,
        &applied,
        &leadflow_core::model::scoring::ScoringRules::seeds(),
        32,
    );
    // The score the test names, whatever the events' points.
    state.score = score;
    db.collection::<LeadDoc>(LEAD_SCORES).insert_one(state).await.unwrap();
    db.collection::<HistoryDoc>(SCORE_HISTORY).insert_many(history).await.unwrap();
}

/// One row of the isolation matrix: what was checked and whether it held.
struct Row {
    endpoint: &'static str,
    check: String,
    held: bool,
}

fn print_matrix(rows: &[Row]) {
    println!("\nisolation matrix (project B's key against project A's data, same leadId):");
    println!("{:<34} {:<7} check", "endpoint", "result");
    for row in rows {
        println!("{:<34} {:<7} {}", row.endpoint, if row.held { "ok" } else { "FAILED" }, row.check);
    }
}

fn sorted(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items
}

fn names(body: &Value, list: &str) -> Vec<String> {
    body[list].as_array().map_or_else(Vec::new, |items| {
        items
            .iter()
            .map(|l| format!("{}:{}", l["leadId"].as_str().unwrap_or(""), l["name"].as_str().unwrap_or("")))
            .collect()
    })
}

async fn open_stream(base_url: &str, key: &str) -> reqwest::Response {
    let response =
        reqwest::Client::new().get(format!("{base_url}/api/stream")).bearer_auth(key).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response
}

fn reviewed(events: &[common::SseEvent], lead: &str, decision: &str) -> bool {
    events
        .iter()
        .any(|e| e.data["kind"] == "reviewed" && e.data["leadId"] == lead && e.data["decision"] == decision)
}

#[tokio::test]
async fn project_b_sees_and_changes_none_of_project_as_data_on_any_endpoint() {
    let stack = Stack::get();
    let (mut replicas, database) = gateways(&stack, 1).await;
    let mut gateway = replicas.remove(0);
    gateway
        .process
        .wait_for_log("tailing lead topics for live updates", Duration::from_secs(30))
        .await
        .unwrap();
    let url = gateway.base_url.clone();
    let (a, b) = (project_id("iso-a"), project_id("iso-b"));
    for project in [&a, &b] {
        create_project(&url, project, None).await.unwrap();
    }
    let ka = key(&url, &a, &["ingest", "read", "admin"], 1_000_000).await.text;
    let kb = key(&url, &b, &["ingest", "read", "admin"], 1_000_000).await.text;
    seed_lead(&stack, &database, &a, "same", "Alice", 80.0, &["a.e1", "a.e2"]).await;
    seed_lead(&stack, &database, &a, "only-a", "Oscar", 70.0, &["a.e3"]).await;
    seed_lead(&stack, &database, &b, "same", "Bruno", 10.0, &["b.e1"]).await;
    let get = |key: &str, path: &str| {
        let (url, key, path) = (url.clone(), key.to_owned(), path.to_owned());
        async move {
            let (status, _, body) = send_as(&url, &key, Method::GET, &path, None).await;
            (status, body)
        }
    };
    let mut rows = Vec::new();
    let mut row =
        |endpoint: &'static str, check: String, held: bool| rows.push(Row { endpoint, check, held });

    // Reads: B gets its own lead of the shared id, and A's leads are not there (404 as unknown).
    let (_, list_b) = get(&kb, "/api/leads").await;
    let (_, list_a) = get(&ka, "/api/leads").await;
    row(
        "GET /api/leads",
        format!("B lists {:?}, A lists {:?}", names(&list_b, "leads"), names(&list_a, "leads")),
        names(&list_b, "leads") == ["same:Bruno"]
            && sorted(names(&list_a, "leads")) == ["only-a:Oscar", "same:Alice"],
    );
    let (status_same, lead_b) = get(&kb, "/api/leads/same").await;
    let (status_other, other) = get(&kb, "/api/leads/only-a").await;
    let (status_unknown, unknown) = get(&kb, "/api/leads/nobody").await;
    row(
        "GET /api/leads/{id}",
        format!(
            "B's same = {} {:?}; A's only-a = {status_other} {}; unknown = {status_unknown}",
            status_same, lead_b["name"], other["error"]
        ),
        status_same == 200
            && lead_b["name"] == "Bruno"
            && lead_b["email"] == format!("bruno@{b}.example")
            && status_other == 404
            && other["error"] == unknown["error"],
    );
    let (_, history_b) = get(&kb, "/api/leads/same/history").await;
    let (status_other, _) = get(&kb, "/api/leads/only-a/history").await;
    let ids: Vec<&str> =
        history_b["entries"].as_array().unwrap().iter().map(|e| e["eventId"].as_str().unwrap()).collect();
    row(
        "GET /api/leads/{id}/history",
        format!("B's same has events {ids:?}; A's only-a = {status_other}"),
        ids == ["b.e1"] && status_other == 404,
    );
    let (_, intel_b) = get(&kb, "/api/leads/same/intelligence").await;
    let (status_other, _) = get(&kb, "/api/leads/only-a/intelligence").await;
    row(
        "GET /api/leads/{id}/intelligence",
        format!("B's same scores {}; A's only-a = {status_other}", intel_b["score"]),
        intel_b["score"] == 10.0 && status_other == 404,
    );
    let (_, board_b) = get(&kb, "/api/leaderboard").await;
    row(
        "GET /api/leaderboard",
        format!("B's total {} top {:?}", board_b["total"], names(&board_b, "top")),
        board_b["total"] == 1 && names(&board_b, "top") == ["same:Bruno"],
    );

    // Writes: whatever B posts is keyed by B's project, so it can never reach A's lead.
    let mut stream_a = open_stream(&url, &ka).await;
    let mut stream_b = open_stream(&url, &kb).await;
    let (mut pending_a, mut pending_b) = (String::new(), String::new());
    let reviews_from = end_offsets(&stack, "leads.reviews.v1");
    let events_from = end_offsets(&stack, "leads.events.v1");
    let names_from = end_offsets(&stack, "leads.names.v1");
    let (status, _, _) =
        send_as(&url, &kb, Method::POST, "/api/leads/same/review", Some(&json!({"decision": "Rejected"})))
            .await;
    assert_eq!(status, 202);
    send_as(&url, &kb, Method::POST, "/api/leads/only-a/review", Some(&json!({"decision": "Rejected"})))
        .await;
    send_as(
        &url,
        &kb,
        Method::POST,
        "/api/events",
        Some(&json!({"leadId": "same", "eventType": "page_view"})),
    )
    .await;
    send_as(&url, &kb, Method::POST, "/api/leads", Some(&json!({"leadId": "same", "name": "Mallory"}))).await;
    // B's update reaches B's stream first; then A's own review, which must come to A's stream
    // with nothing of B's before it.
    let seen_b = read_events(&mut stream_b, &mut pending_b, |e| reviewed(e, "same", "Rejected")).await;
    let (status, _, _) =
        send_as(&url, &ka, Method::POST, "/api/leads/same/review", Some(&json!({"decision": "Verified"})))
            .await;
    assert_eq!(status, 202);
    let seen_a = read_events(&mut stream_a, &mut pending_a, |e| reviewed(e, "same", "Verified")).await;
    let b_in_a = seen_a.iter().filter(|e| e.data["decision"] == "Rejected").count();
    row(
        "GET /api/stream",
        format!("A's stream: {} updates, {b_in_a} of B's; B's stream saw its review", seen_a.len()),
        b_in_a == 0 && !seen_b.is_empty(),
    );

    let codec = codec(&stack);
    let mut written = Vec::new();
    for (topic, from) in [
        ("leads.reviews.v1", &reviews_from),
        ("leads.events.v1", &events_from),
        ("leads.names.v1", &names_from),
    ] {
        for record in read_to_end(&stack, topic, from, Duration::from_secs(30)).await {
            if record.key.starts_with(&format!("{a}/")) || record.key.starts_with(&format!("{b}/")) {
                written.push((topic, record.key.clone(), record.value.clone()));
            }
        }
    }
    let mut reviews: Vec<(String, String)> = Vec::new();
    for (_, key, value) in written.iter().filter(|(t, _, _)| *t == "leads.reviews.v1") {
        let review: LeadReviewed = codec.decode(value).await.unwrap();
        reviews.push((key.clone(), format!("{}:{:?}", review.project_id, review.decision)));
    }
    let b_writes_keyed_to_a = written
        .iter()
        .filter(|(_, key, _)| key.starts_with(&format!("{a}/")) && key != &format!("{a}/same"))
        .count();
    let review_keys: Vec<&str> = reviews.iter().map(|(k, _)| k.as_str()).collect();
    row(
        "POST /api/leads/{id}/review",
        format!("reviews on Kafka: {reviews:?}"),
        review_keys.iter().filter(|k| k.starts_with(&format!("{b}/"))).count() == 2
            && reviews.iter().all(|(k, v)| v.starts_with(k.split('/').next().unwrap()))
            && review_keys.iter().filter(|k| k.starts_with(&format!("{a}/"))).count() == 1,
    );
    let event_keys: Vec<&str> =
        written.iter().filter(|(t, _, _)| *t != "leads.reviews.v1").map(|(_, k, _)| k.as_str()).collect();
    for (_, _, value) in written.iter().filter(|(t, _, _)| *t == "leads.events.v1") {
        let event: LeadEvent = codec.decode(value).await.unwrap();
        assert_eq!(event.project_id, b, "an event B posted names B's project");
    }
    row(
        "POST /api/events, /api/leads",
        format!("B's records keyed {event_keys:?}; {b_writes_keyed_to_a} of B's keyed to A"),
        event_keys == [format!("{b}/same"), format!("{b}/same")] && b_writes_keyed_to_a == 0,
    );

    // Rules: B's change is B's alone.
    let mut rules = serde_json::to_value(leadflow_core::model::scoring::ScoringRules::seeds()).unwrap();
    let version = format!("b-{}", run_id());
    rules["version"] = json!(version);
    rules["points"]["page_view"] = json!(1.0);
    let (status, _, _) = send_as(&url, &kb, Method::PUT, "/api/scoring-rules", Some(&rules)).await;
    assert_eq!(status, 202);
    eventually("B's rules in force for B", Duration::from_secs(30), || {
        let get = get(&kb, "/api/scoring-rules");
        let version = version.clone();
        async move { Ok((get.await.1["rules"]["version"] == version.as_str()).then_some(())) }
    })
    .await
    .unwrap();
    let (_, rules_a) = get(&ka, "/api/scoring-rules").await;
    row(
        "GET/PUT /api/scoring-rules",
        format!("after B's PUT, A's rules are {} ({})", rules_a["rules"]["version"], rules_a["source"]),
        rules_a["rules"]["version"] == "v1"
            && rules_a["source"] == "default"
            && rules_a["rules"]["points"]["page_view"] != 1.0,
    );
    // And A's data as A reads it is as seeded.
    let (_, lead_a) = get(&ka, "/api/leads/same").await;
    row(
        "GET /api/leads/{id} (as A)",
        format!("A's same is still {} with score {}", lead_a["name"], lead_a["score"]),
        lead_a["name"] == "Alice" && lead_a["score"] == 80.0,
    );

    print_matrix(&rows);
    assert!(rows.iter().all(|r| r.held), "an isolation check failed; see the matrix above");
    let logs = gateway.process.logs();
    for secret in [ka.as_str(), kb.as_str(), TEST_ADMIN_TOKEN] {
        assert!(!logs.contains(secret), "a credential is in the gateway's log");
    }
}

#[tokio::test]
async fn an_ingest_key_cannot_read_and_a_read_key_cannot_post_or_change_rules() {
    let stack = Stack::get();
    let (gateways, _) = gateways(&stack, 1).await;
    let url = &gateways[0].base_url;
    let project = project_id("scopes");
    create_project(url, &project, None).await.unwrap();
    let ingest = key(url, &project, &["ingest"], 1_000_000).await.text;
    let read = key(url, &project, &["read"], 1_000_000).await.text;
    let event = json!({"leadId": "l-1", "eventType": "page_view"});
    // (key, method, path, body, the status expected, the scope its refusal names)
    type Case<'a> = (&'a str, Method, &'a str, Option<Value>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (&ingest, Method::GET, "/api/leads", None, 403, "read"),
        (&ingest, Method::GET, "/api/leads/l-1", None, 403, "read"),
        (&ingest, Method::GET, "/api/leaderboard", None, 403, "read"),
        (&ingest, Method::GET, "/api/stream", None, 403, "read"),
        (&ingest, Method::GET, "/api/scoring-rules", None, 403, "read"),
        (&ingest, Method::POST, "/api/events", Some(event.clone()), 202, ""),
        (&read, Method::POST, "/api/events", Some(event.clone()), 403, "ingest"),
        (&read, Method::POST, "/api/events/batch", Some(json!({"events": [event]})), 403, "ingest"),
        (&read, Method::POST, "/api/leads", Some(json!({"name": "Ada"})), 403, "ingest"),
        (&read, Method::PUT, "/api/scoring-rules", Some(json!({"version": "x"})), 403, "admin"),
        (&read, Method::POST, "/api/leads/l-1/review", Some(json!({"decision": "Verified"})), 403, "admin"),
        (&read, Method::GET, "/api/scoring-rules", None, 200, ""),
        (&read, Method::GET, "/api/leads", None, 200, ""),
        (TEST_ADMIN_TOKEN, Method::GET, "/api/leads", None, 403, ""),
        (
            "lf_0123456789ab_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            Method::GET,
            "/api/leads",
            None,
            401,
            "",
        ),
    ];
    for (key, method, path, body, want, scope) in cases {
        let (status, headers, answer) = send_as(url, key, method.clone(), path, body.as_ref()).await;
        assert_eq!(status, want, "{method} {path}: {answer}");
        if !scope.is_empty() {
            assert_eq!(answer["message"], format!("this key lacks the {scope} scope"), "{method} {path}");
        }
        if want == 401 {
            assert_eq!(headers["www-authenticate"], "Bearer");
        }
    }
}

#[tokio::test]
async fn a_revoked_key_is_refused_by_both_replicas_within_the_cache_ttl_and_its_stream_ends() {
    let stack = Stack::get();
    let (mut replicas, _) = gateways(&stack, 2).await;
    let (first, second) = (replicas[0].base_url.clone(), replicas[1].base_url.clone());
    let project = project_id("revoke");
    create_project(&first, &project, None).await.unwrap();
    let k = key(&first, &project, &["read"], 1_000_000).await;
    for url in [&first, &second] {
        assert_eq!(send_as(url, &k.text, Method::GET, "/api/scoring-rules", None).await.0, 200, "{url}");
    }
    let mut stream = open_stream(&second, &k.text).await;
    let mut pending = String::new();

    revoke_key(&first, &project, &k.id).await.unwrap();
    let revoked_at = Instant::now();
    let mut refused_after = Vec::new();
    for url in [&first, &second] {
        eventually(&format!("{url} refuses the revoked key"), CACHE_TTL + Duration::from_secs(3), || {
            let (url, key) = (url.clone(), k.text.clone());
            async move {
                let (status, _, _) = send_as(&url, &key, Method::GET, "/api/scoring-rules", None).await;
                Ok((status == 401).then_some(()))
            }
        })
        .await
        .unwrap();
        refused_after.push(revoked_at.elapsed());
    }
    let deadline = tokio::time::Instant::now() + CACHE_TTL + Duration::from_secs(3);
    let ended = loop {
        match next_events(&mut stream, &mut pending, deadline).await {
            Some(Chunk::Ended) => break Some(revoked_at.elapsed()),
            Some(Chunk::Events(_)) => continue,
            None => break None,
        }
    };
    println!(
        "revoked key refused after {refused_after:?} (replica 1, replica 2); stream ended after {ended:?}; bound {CACHE_TTL:?}"
    );
    // The bound plus the time of one poll and one request.
    let slack = Duration::from_millis(700);
    assert!(refused_after.iter().all(|t| *t <= CACHE_TTL + slack), "refused after {refused_after:?}");
    let ended = ended.expect("the stream on the other replica outlived its revoked key");
    assert!(ended <= CACHE_TTL + slack, "the stream ended after {ended:?}");
    let logs = replicas.remove(1).process.logs();
    assert!(logs.contains("a stream's key was revoked"), "{logs}");
}

#[tokio::test]
async fn the_101st_event_in_a_minute_is_429_across_two_replicas_and_kafka_holds_exactly_100() {
    let stack = Stack::get();
    let (replicas, _) = gateways(&stack, 2).await;
    let (first, second) = (replicas[0].base_url.clone(), replicas[1].base_url.clone());
    let project = project_id("limit");
    create_project(&first, &project, None).await.unwrap();
    let k = key(&first, &project, &["ingest"], 100).await.text;
    let run = run_id();
    let from = end_offsets(&stack, "leads.events.v1");
    let batch = |half: usize| {
        let events: Vec<Value> = (0..50)
            .map(|i| json!({"eventId": format!("{run}.e{}", half * 50 + i), "leadId": format!("{run}.l{}", i % 5), "eventType": "page_view"}))
            .collect();
        json!({ "events": events })
    };
    // Both halves of the budget, one through each replica: one budget, shared.
    let started = Instant::now();
    let (status, headers, body) =
        send_as(&first, &k, Method::POST, "/api/events/batch", Some(&batch(0))).await;
    assert_eq!((status, body["accepted"].as_u64()), (202, Some(50)), "{body}");
    assert_eq!(headers["ratelimit-limit"], "100");
    let (status, headers, body) =
        send_as(&second, &k, Method::POST, "/api/events/batch", Some(&batch(1))).await;
    assert_eq!((status, body["accepted"].as_u64()), (202, Some(50)), "{body}");
    let remaining: u32 = headers["ratelimit-remaining"].to_str().unwrap().parse().unwrap();
    let event = |n: usize| json!({"eventId": format!("{run}.e{n}"), "leadId": format!("{run}.l0"), "eventType": "page_view"});
    let (status, headers, body) = send_as(&first, &k, Method::POST, "/api/events", Some(&event(100))).await;
    let elapsed = started.elapsed();
    // One event is earned back every 600 ms: the 101st is refused when it comes sooner.
    assert!(
        elapsed < Duration::from_millis(600),
        "the 100 took {elapsed:?}; the test needs them within 600 ms"
    );
    assert_eq!(remaining, 0, "after 100 of 100");
    assert_eq!((status, body["error"].as_str()), (429, Some("rate_limited")), "{body}");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=1).contains(&retry_after), "one event fits again within a second: {retry_after}");
    assert_eq!(
        (headers["ratelimit-limit"].to_str().unwrap(), headers["ratelimit-remaining"].to_str().unwrap()),
        ("100", "0")
    );
    let reset: u64 = headers["ratelimit-reset"].to_str().unwrap().parse().unwrap();
    assert!((59..=60).contains(&reset), "the whole budget is back in a minute: {reset}");
    let (status, _, _) = send_as(&second, &k, Method::POST, "/api/events", Some(&event(101))).await;
    assert_eq!(status, 429, "the other replica shares the budget");

    let prefix = format!("{project}/");
    let records = read_to_end(&stack, "leads.events.v1", &from, Duration::from_secs(30)).await;
    let codec = codec(&stack);
    let mut ids = HashSet::new();
    for record in records.iter().filter(|r| r.key.starts_with(&prefix)) {
        let event: LeadEvent = codec.decode(&record.value).await.unwrap();
        assert_eq!(event.project_id, project);
        ids.insert(event.event_id);
    }
    let published = records.iter().filter(|r| r.key.starts_with(&prefix)).count();
    println!(
        "rate limit: 100 accepted in {elapsed:?} over two replicas; Kafka holds {published} of this key's events"
    );
    assert_eq!((published, ids.len()), (100, 100), "exactly the 100 accepted events, once each");
    assert!(!ids.contains(&format!("{run}.e100")) && !ids.contains(&format!("{run}.e101")));
}
