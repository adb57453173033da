//! The CRM client against the project's CRM stand-in in its HubSpot mode (last writer wins,
//! strict bodies, properties that must exist, email conflicts, ten-second and daily limits),
//! served in-process on a port of the OS's choosing, with its faults: dropped connections,
//! injected 503s, late applies, a burst limit, timeouts and a field it refuses.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crm_sink::http_destination::{
    ContactOutcome, ContactUpsert, DeliveryError, HttpDestination, HttpDestinationConfig,
    HttpDestinationMetrics,
};
use crm_sink::hubspot_wire::{READ_PATH, UPSERT_PATH};
use leadflow_core::stage::pause::PauseSignal;
use leadflow_testkit::eventually;
use prometheus::Registry;
use serde_json::{Map, Value, json};
use stand_ins::crm::{ConflictAnswer, Faults, HubSpotStats, Settings};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The CRM stand-in in HubSpot mode, stopped when dropped.
struct StandIn {
    base_url: String,
    _stop: oneshot::Sender<()>,
}

impl StandIn {
    /// With LeadFlow's properties created, as `crm-sink setup` leaves an account.
    async fn start(faults: Faults) -> StandIn {
        Self::start_with(Settings::hubspot_with_leadflow_properties(faults)).await
    }

    async fn start_with(settings: Settings) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(stand_ins::crm::serve_with(listener, settings, async move {
            let _ = stopped.await;
        }));
        StandIn { base_url, _stop: stop }
    }

    async fn get(&self, path: &str) -> Value {
        let response = reqwest::get(format!("{}{path}", self.base_url)).await.unwrap();
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response.json().await.unwrap()
    }

    async fn stats(&self) -> HubSpotStats {
        serde_json::from_value(self.get("/__admin/stats").await).unwrap()
    }

    /// The live contacts, by lead id.
    async fn contacts(&self) -> BTreeMap<String, Value> {
        let all: BTreeMap<String, Value> =
            serde_json::from_value(self.get("/__admin/contacts").await["contacts"].take()).unwrap();
        all.into_iter().filter(|(_, c)| c["archived"] != json!(true)).collect()
    }

    async fn reset_daily_limit(&self) {
        let response = reqwest::Client::new()
            .post(format!("{}/__admin/daily/reset", self.base_url))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }
}

fn config(base_url: &str) -> HttpDestinationConfig {
    HttpDestinationConfig {
        base_url: base_url.into(),
        upsert_path: UPSERT_PATH.into(),
        read_path: READ_PATH.into(),
        access_token: Default::default(),
        batch_size: 100,
        requests_per_window: 190,
        window: Duration::from_secs(10),
        request_timeout: Duration::from_secs(10),
        max_attempts: 8,
        // Short, so that retries do not make the tests slow.
        backoff_initial: Duration::from_millis(1),
        backoff_max: Duration::from_millis(10),
        late_apply_window: Duration::from_secs(60),
        daily_limit_probe: Duration::from_secs(3600),
        budget_name: String::new(),
    }
}

fn destination(config: &HttpDestinationConfig) -> (HttpDestination, HttpDestinationMetrics) {
    let metrics = HttpDestinationMetrics::register(&Registry::new()).unwrap();
    (HttpDestination::new(config, metrics.clone()).unwrap(), metrics)
}

/// `n` contacts with versions 1 to 5 and a valid email each.
fn contacts(n: usize) -> Vec<ContactUpsert> {
    (0..n)
        .map(|i| ContactUpsert {
            lead_id: format!("lead-{i:03}"),
            version: (i % 5) as u64 + 1,
            properties: Map::from_iter([
                ("firstname".to_owned(), Value::from(format!("Name{i}"))),
                ("email".to_owned(), Value::from(format!("lead{i}@example.com"))),
            ]),
        })
        .collect()
}

fn count(counter: &prometheus::IntCounterVec, label: &str) -> u64 {
    counter.with_label_values(&[label]).get()
}

/// The CRM holds exactly `sent`, each with its version and properties (HubSpot keeps them as
/// text), written `writes` times.
fn assert_holds_exactly(held: &BTreeMap<String, Value>, sent: &[ContactUpsert], writes: usize) {
    assert_eq!(held.len(), sent.len(), "{:?}", held.keys().collect::<Vec<_>>());
    for contact in sent {
        let stored = &held[&contact.lead_id];
        assert_eq!(
            stored["properties"]["leadflow_version"],
            json!(contact.version.to_string()),
            "{}",
            contact.lead_id
        );
        for (name, value) in &contact.properties {
            assert_eq!(&stored["properties"][name], value, "{} {name}", contact.lead_id);
        }
        let history = stored["versionHistory"].as_array().unwrap();
        assert_eq!(history.len(), writes, "{}: {history:?}", contact.lead_id);
    }
}

fn delivered(n: usize, unsure: bool) -> Vec<ContactOutcome> {
    vec![ContactOutcome::Delivered { unsure }; n]
}

/// Watches a pause signal from its own thread, without sleeping, and says whether it ever saw
/// the signal paused.
struct PauseWatch {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<bool>,
}

impl PauseWatch {
    fn start(signal: &PauseSignal) -> PauseWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let (signal, stopping) = (signal.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                if signal.is_paused() {
                    return true;
                }
                std::thread::yield_now();
            }
            false
        });
        PauseWatch { stop, thread }
    }

    fn saw_a_pause(self) -> bool {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

#[tokio::test]
async fn two_hundred_fifty_contacts_go_in_three_requests_and_all_arrive() {
    let crm = StandIn::start(Faults::default()).await;
    let (destination, metrics) = destination(&config(&crm.base_url));
    let sent = contacts(250);

    let outcomes = destination.upsert(&sent, &PauseSignal::default()).await.unwrap();

    assert_eq!(outcomes, delivered(250, false));
    assert_eq!(crm.stats().await.upserts, 3);
    assert_holds_exactly(&crm.contacts().await, &sent, 1);
    assert_eq!(count(&metrics.requests, "ok"), 3);
}

#[tokio::test]
async fn nothing_to_upsert_sends_nothing() {
    let crm = StandIn::start(Faults::default()).await;
    let (destination, _) = destination(&config(&crm.base_url));
    assert!(destination.upsert(&[], &PauseSignal::default()).await.unwrap().is_empty());
    assert_eq!(crm.stats().await.requests, 0);
}

#[tokio::test]
async fn a_write_whose_answer_was_lost_is_read_back_and_not_written_again() {
    let crm = StandIn::start(Faults { drop_after_write_rate: 0.5, ..Faults::default() }).await;
    let (destination, metrics) =
        destination(&HttpDestinationConfig { batch_size: 25, ..config(&crm.base_url) });
    let sent = contacts(250);

    let outcomes = destination.upsert(&sent, &PauseSignal::default()).await.unwrap();

    let stats = crm.stats().await;
    assert!(stats.dropped_connections > 0, "{stats:?}");
    assert_eq!(stats.batch_reads, stats.dropped_connections, "one read back per lost answer: {stats:?}");
    assert_eq!(stats.applied_writes, 250, "the read found each lost write applied: {stats:?}");
    assert_holds_exactly(&crm.contacts().await, &sent, 1);
    let unsure = outcomes.iter().filter(|o| **o == ContactOutcome::Delivered { unsure: true }).count();
    assert_eq!(unsure as u64, 25 * stats.dropped_connections, "flagged for a later check: {outcomes:?}");
    assert_eq!(count(&metrics.contacts, "confirmed_by_read"), unsure as u64);
    assert_eq!(count(&metrics.requests, "unknown_outcome"), stats.dropped_connections);
}

#[tokio::test]
async fn server_errors_are_read_back_then_retried_until_the_contacts_arrive() {
    let crm = StandIn::start(Faults { error_rate: 0.5, ..Faults::default() }).await;
    let (destination, metrics) =
        destination(&HttpDestinationConfig { batch_size: 10, ..config(&crm.base_url) });
    let sent = contacts(50);

    let outcomes = destination.upsert(&sent, &PauseSignal::default()).await.unwrap();

    assert!(outcomes.iter().all(|o| matches!(o, ContactOutcome::Delivered { .. })), "{outcomes:?}");
    let stats = crm.stats().await;
    assert!(stats.injected_errors > 0, "{stats:?}");
    assert_eq!(count(&metrics.requests, "server_error"), count(&metrics.retries, "server_error"));
    assert_holds_exactly(&crm.contacts().await, &sent, 1);
}

#[tokio::test]
async fn a_request_that_keeps_failing_gives_up_after_max_attempts() {
    let crm = StandIn::start(Faults { error_rate: 1.0, ..Faults::default() }).await;
    let (destination, metrics) =
        destination(&HttpDestinationConfig { max_attempts: 3, ..config(&crm.base_url) });

    let result = destination.upsert(&contacts(5), &PauseSignal::default()).await;

    match result {
        Err(DeliveryError::GaveUp(message)) => assert!(message.contains("503"), "{message}"),
        other => panic!("expected GaveUp, got {other:?}"),
    }
    assert_eq!((count(&metrics.requests, "server_error"), count(&metrics.retries, "server_error")), (3, 2));
    assert!(crm.contacts().await.is_empty());
}

#[tokio::test]
async fn a_late_apply_is_read_back_resent_and_flagged_for_the_check() {
    // The stand-in holds every write 600 ms, then applies it; the client waits 200 ms.
    let crm =
        StandIn::start(Faults { late_apply_rate: 1.0, late_apply_delay_ms: 600, ..Faults::default() }).await;
    let (destination, metrics) = destination(&HttpDestinationConfig {
        request_timeout: Duration::from_millis(200),
        max_attempts: 20,
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(100),
        ..config(&crm.base_url)
    });
    let sent = contacts(1);

    let outcomes = destination.upsert(&sent, &PauseSignal::default()).await.unwrap();

    assert_eq!(outcomes, delivered(1, true), "delivered, and checked again later");
    assert!(count(&metrics.requests, "unknown_outcome") >= 1);
    assert!(crm.stats().await.batch_reads >= 1, "the client read before writing again");
    let contacts = eventually("the held writes land", Duration::from_secs(10), || async {
        let contacts = crm.contacts().await;
        Ok((crm.stats().await.late_applies > 0 && !contacts.is_empty()).then_some(contacts))
    })
    .await
    .unwrap();
    assert_eq!(contacts[&sent[0].lead_id]["properties"]["leadflow_version"], json!("1"));
}

#[tokio::test]
async fn a_burst_limit_is_waited_out_paused_and_without_using_attempts() {
    let crm =
        StandIn::start(Faults { burst_limit: Some(2), burst_window_ms: 1_000, ..Faults::default() }).await;
    // One attempt: a 429 that used one would fail the upsert.
    let (destination, metrics) =
        destination(&HttpDestinationConfig { batch_size: 1, max_attempts: 1, ..config(&crm.base_url) });
    let pause = PauseSignal::default();
    let watch = PauseWatch::start(&pause);
    let sent = contacts(5);

    let outcomes = destination.upsert(&sent, &pause).await.unwrap();

    assert!(watch.saw_a_pause(), "the wait for the window held the pause");
    assert!(!pause.is_paused(), "released once the contacts went");
    assert_eq!(outcomes, delivered(5, false));
    let stats = crm.stats().await;
    assert!(stats.rate_limited > 0, "{stats:?}");
    assert_eq!(count(&metrics.requests, "rate_limited"), stats.rate_limited);
    assert_holds_exactly(&crm.contacts().await, &sent, 1);
}

#[tokio::test]
async fn the_client_limiter_keeps_under_the_crms_burst_limit() {
    // The stand-in allows 2 requests a second; the client, 2 per 1.1 s (a margin for the time
    // between the client's clock and the stand-in's). The timing itself is checked in the
    // limiter's own tests; here, that the client waits (paused) instead of drawing 429s.
    let crm =
        StandIn::start(Faults { burst_limit: Some(2), burst_window_ms: 1_000, ..Faults::default() }).await;
    let (destination, metrics) = destination(&HttpDestinationConfig {
        batch_size: 1,
        requests_per_window: 2,
        window: Duration::from_millis(1_100),
        ..config(&crm.base_url)
    });
    let pause = PauseSignal::default();
    let watch = PauseWatch::start(&pause);

    let outcomes = destination.upsert(&contacts(5), &pause).await.unwrap();

    assert!(watch.saw_a_pause(), "the wait for the limiter held the pause");
    assert_eq!(outcomes, delivered(5, false));
    let stats = crm.stats().await;
    assert_eq!((stats.upserts, stats.rate_limited), (5, 0));
    assert_eq!(count(&metrics.requests, "ok"), 5);
}

#[tokio::test]
async fn the_daily_limit_holds_the_connection_until_its_probe_instead_of_spinning() {
    let crm = StandIn::start(Faults { daily_limit: Some(2), ..Faults::default() }).await;
    let (destination, metrics) =
        destination(&HttpDestinationConfig { batch_size: 1, ..config(&crm.base_url) });
    let pause = PauseSignal::default();
    let sent = contacts(4);

    let task = tokio::spawn({
        let destination = destination.clone();
        let (sent, pause) = (sent.clone(), pause.clone());
        async move { destination.upsert(&sent, &pause).await }
    });
    eventually("the daily limit is reached", Duration::from_secs(10), || async {
        Ok((metrics.daily_limit_reached.get() == 1).then_some(()))
    })
    .await
    .unwrap();

    assert!(pause.is_paused(), "the stage's partitions are paused meanwhile");
    assert!(destination.blocked_for() > Duration::from_secs(3500), "the next try is the hourly probe");
    let stats = crm.stats().await;
    assert_eq!(
        (stats.daily_rate_limited, stats.applied_writes),
        (1, 2),
        "one refusal, then silence: {stats:?}"
    );
    assert_eq!(count(&metrics.requests, "daily_limited"), 1);
    task.abort();
    crm.reset_daily_limit().await;
}

#[tokio::test]
async fn an_email_conflict_is_refused_alone_naming_the_existing_contact_and_the_rest_arrive() {
    for answer in [ConflictAnswer::MultiStatus, ConflictAnswer::WholeBatch] {
        let crm = StandIn::start(Faults { conflict_answer: answer, ..Faults::default() }).await;
        let (destination, metrics) = destination(&config(&crm.base_url));
        let first = contacts(1);
        destination.upsert(&first, &PauseSignal::default()).await.unwrap();
        let existing = crm.contacts().await[&first[0].lead_id]["id"].as_str().unwrap().to_owned();
        // lead-002 has the email lead-000's contact has.
        let mut sent = contacts(5);
        sent.remove(0);
        sent[1].properties.insert("email".into(), json!("lead0@example.com"));

        let outcomes = destination.upsert(&sent, &PauseSignal::default()).await.unwrap();

        let ContactOutcome::Rejected { error } = &outcomes[1] else { panic!("{answer:?}: {outcomes:?}") };
        assert!(error.contains("Contact already exists") && error.contains(&existing), "{answer:?}: {error}");
        let others: Vec<_> =
            outcomes.iter().enumerate().filter(|(i, _)| *i != 1).map(|(_, o)| o.clone()).collect();
        assert_eq!(others, delivered(3, false), "{answer:?}");
        let stats = crm.stats().await;
        match answer {
            ConflictAnswer::MultiStatus => {
                assert_eq!(
                    (stats.upserts, stats.multi_status),
                    (2, 1),
                    "a 207, nothing sent again: {stats:?}"
                )
            }
            ConflictAnswer::WholeBatch => {
                assert_eq!(stats.upserts, 2 + 4, "a 409 for the batch, then each alone: {stats:?}")
            }
        }
        assert_eq!(crm.contacts().await.len(), 4, "{answer:?}");
        assert_eq!(count(&metrics.contacts, "rejected"), 1);
    }
}

#[tokio::test]
async fn one_bad_email_in_a_batch_is_rejected_alone_and_the_rest_arrive() {
    let crm = StandIn::start(Faults::default()).await;
    let (destination, metrics) = destination(&config(&crm.base_url));
    let mut sent = contacts(5);
    sent[2].properties.insert("email".into(), json!("not an email"));

    let outcomes = destination.upsert(&sent, &PauseSignal::default()).await.unwrap();

    let ContactOutcome::Rejected { error } = &outcomes[2] else { panic!("{outcomes:?}") };
    assert!(error.starts_with("400"), "{error}");
    assert!(!error.contains("not an email"), "the stand-in keeps the value out: {error}");
    let others: Vec<_> =
        outcomes.iter().enumerate().filter(|(i, _)| *i != 2).map(|(_, o)| o.clone()).collect();
    assert_eq!(others, delivered(4, false));
    assert_eq!(crm.stats().await.upserts, 6, "the batch, then each contact alone");
    let good: Vec<_> = sent.iter().enumerate().filter(|(i, _)| *i != 2).map(|(_, c)| c.clone()).collect();
    assert_holds_exactly(&crm.contacts().await, &good, 1);
    assert_eq!((count(&metrics.contacts, "delivered"), count(&metrics.contacts, "rejected")), (4, 1));
}

#[tokio::test]
async fn a_missing_property_or_scope_is_a_configuration_error_not_a_refused_contact() {
    // Only HubSpot's own properties: leadflow_id (the upsert key) does not exist.
    let bare = StandIn::start_with(Settings::hubspot(Faults::default())).await;
    let (client, metrics) = destination(&config(&bare.base_url));

    let error = client.upsert(&contacts(3), &PauseSignal::default()).await.unwrap_err();

    let DeliveryError::Config(message) = &error else { panic!("{error}") };
    assert!(message.contains("leadflow_id") && message.contains("crm-sink setup"), "{message}");
    assert_eq!(client.config_problem().as_deref(), Some(message.as_str()), "reported until fixed");
    assert_eq!((metrics.configuration_error.get(), count(&metrics.contacts, "rejected")), (1, 0));
    assert!(client.blocked_for() > Duration::from_secs(20), "no spinning on a refusal");
    assert_eq!(bare.stats().await.upserts, 1, "not sent one by one");

    let scopes = StandIn::start(Faults { missing_scopes: true, ..Faults::default() }).await;
    let (client, _) = destination(&config(&scopes.base_url));
    let error = client.upsert(&contacts(1), &PauseSignal::default()).await.unwrap_err();
    assert!(matches!(&error, DeliveryError::Config(m) if m.contains("scopes")), "{error}");

    // leadflow_id exists, leadflow_stage does not: PROPERTY_DOESNT_EXIST for the whole batch.
    let partial = StandIn::start_with(Settings {
        precreated_properties: stand_ins::crm::PropertySpec::leadflow()
            .into_iter()
            .filter(|p| p.name != "leadflow_stage")
            .collect(),
        ..Settings::hubspot(Faults::default())
    })
    .await;
    let (client, _) = destination(&config(&partial.base_url));
    let mut staged = contacts(2);
    staged[1].properties.insert("leadflow_stage".into(), json!("hot"));
    let error = client.upsert(&staged, &PauseSignal::default()).await.unwrap_err();
    assert!(matches!(&error, DeliveryError::Config(m) if m.contains("leadflow_stage")), "{error}");
    assert!(partial.contacts().await.is_empty(), "nothing applied, nothing refused");
}

#[tokio::test]
async fn a_batch_read_finds_the_contacts_the_crm_holds() {
    let crm = StandIn::start(Faults::default()).await;
    let (destination, _) = destination(&config(&crm.base_url));
    let sent = contacts(3);
    destination.upsert(&sent, &PauseSignal::default()).await.unwrap();

    let found = destination
        .read(&["lead-000", "lead-002", "nobody"], &["email"], &PauseSignal::default())
        .await
        .unwrap();

    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found["lead-002"].version(), Some(3));
    assert_eq!(found["lead-000"].text("email").as_deref(), Some("lead0@example.com"));
}

#[tokio::test]
async fn two_replicas_sharing_a_budget_keep_within_it_together() {
    // The CRM refuses a 13th request in any second. Each replica alone may send 11 a second; two
    // that counted alone would send 22 and draw 429s. Sharing the budget in MongoDB (the stack's),
    // together they send at most 11 in any second.
    let crm =
        StandIn::start(Faults { burst_limit: Some(12), burst_window_ms: 1_000, ..Faults::default() }).await;
    let stack = leadflow_testkit::Stack::get();
    let mongo = leadflow_core::store::mongo::MongoConfig {
        uri: stack.mongodb_uri.clone(),
        database: format!("crm_budget_{}", std::process::id()),
    };
    let client = leadflow_core::store::mongo::client(&mongo, "crm-budget-test").await.unwrap();
    let collection =
        leadflow_core::store::shared_budget::SharedBudget::collection_in(&client.database(&mongo.database));
    let replica = HttpDestinationConfig {
        batch_size: 1,
        requests_per_window: 11,
        window: Duration::from_secs(1),
        budget_name: format!("test-{}", std::process::id()),
        ..config(&crm.base_url)
    };
    let (a, metrics_a) = destination(&replica);
    let (b, _) = destination(&replica);
    a.share_budget(collection.clone()).unwrap();
    b.share_budget(collection).unwrap();
    let (sent_a, sent_b): (Vec<_>, Vec<_>) =
        contacts(30).into_iter().partition(|c| c.lead_id.as_str() < "lead-015");

    let (pause_a, pause_b) = (PauseSignal::default(), PauseSignal::default());
    let (outcomes_a, outcomes_b) = tokio::join!(a.upsert(&sent_a, &pause_a), b.upsert(&sent_b, &pause_b));

    assert_eq!(outcomes_a.unwrap(), delivered(15, false));
    assert_eq!(outcomes_b.unwrap(), delivered(15, false));
    let stats = crm.stats().await;
    assert_eq!((stats.upserts, stats.rate_limited), (30, 0), "never over the CRM's limit: {stats:?}");
    assert!(count(&metrics_a.budget_waits, "exhausted") > 0, "the replicas waited for the shared budget");
    client.database(&mongo.database).drop().await.unwrap();
}
