//! The CRM client against the project's CRM stand-in, served in-process on a port of the OS's
//! choosing, with its faults: dropped connections, injected 503s, a burst limit, timeouts and a
//! field it refuses.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crm_sink::http_destination::{
    ContactOutcome, ContactUpsert, DeliveryError, HttpDestination, HttpDestinationConfig,
    HttpDestinationMetrics,
};
use leadflow_core::stage::pause::PauseSignal;
use prometheus::Registry;
use serde_json::{Map, Value, json};
use stand_ins::crm::{Contact, Faults, Stats};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The CRM stand-in, stopped when dropped.
struct StandIn {
    base_url: String,
    _stop: oneshot::Sender<()>,
}

impl StandIn {
    async fn start(faults: Faults) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(stand_ins::crm::serve(listener, faults, async move {
            let _ = stopped.await;
        }));
        StandIn { base_url, _stop: stop }
    }

    async fn get(&self, path: &str) -> Value {
        let response = reqwest::get(format!("{}{path}", self.base_url)).await.unwrap();
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response.json().await.unwrap()
    }

    async fn stats(&self) -> Stats {
        serde_json::from_value(self.get("/__admin/stats").await).unwrap()
    }

    async fn contacts(&self) -> BTreeMap<String, Contact> {
        serde_json::from_value(self.get("/__admin/contacts").await["contacts"].take()).unwrap()
    }
}

fn config(base_url: &str) -> HttpDestinationConfig {
    HttpDestinationConfig {
        base_url: base_url.into(),
        access_token: Default::default(),
        batch_size: 100,
        requests_per_window: 190,
        window: Duration::from_secs(10),
        request_timeout: Duration::from_secs(10),
        max_attempts: 8,
        // Short, so that retries do not make the tests slow.
        backoff_initial: Duration::from_millis(1),
        backoff_max: Duration::from_millis(10),
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

/// The CRM holds exactly `sent`, each written once, with its version and properties.
fn assert_holds_exactly(held: &BTreeMap<String, Contact>, sent: &[ContactUpsert]) {
    assert_eq!(held.len(), sent.len(), "{:?}", held.keys().collect::<Vec<_>>());
    for contact in sent {
        let stored = &held[&contact.lead_id];
        let mut expected = contact.properties.clone();
        expected.insert("leadflow_version".into(), contact.version.into());
        assert_eq!((stored.version, &stored.properties), (contact.version, &expected), "{}", contact.lead_id);
        assert_eq!(stored.writes, 1, "{} written more than once", contact.lead_id);
    }
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

    assert_eq!(outcomes, vec![ContactOutcome::Delivered; 250]);
    let stats = crm.stats().await;
    assert_eq!((stats.requests, stats.inputs, stats.applied_writes), (3, 250, 250));
    assert_holds_exactly(&crm.contacts().await, &sent);
    assert_eq!(count(&metrics.requests, "ok"), 3);
    assert_eq!(count(&metrics.contacts, "delivered"), 250);
    assert_eq!(metrics.request_duration.get_sample_count(), 3);
}

#[tokio::test]
async fn nothing_to_upsert_sends_nothing() {
    let crm = StandIn::start(Faults::default()).await;
    let (destination, _) = destination(&config(&crm.base_url));
    assert_eq!(destination.upsert(&[], &PauseSignal::default()).await.unwrap(), []);
    assert_eq!(crm.stats().await.requests, 0);
}

#[tokio::test]
async fn a_connection_dropped_after_the_write_is_retried_without_duplicating_a_contact() {
    let crm = StandIn::start(Faults { drop_after_write_rate: 0.5, ..Faults::default() }).await;
    let (destination, metrics) =
        destination(&HttpDestinationConfig { batch_size: 25, ..config(&crm.base_url) });
    let sent = contacts(250);

    let outcomes = destination.upsert(&sent, &PauseSignal::default()).await.unwrap();

    assert_eq!(outcomes, vec![ContactOutcome::Delivered; 250]);
    let stats = crm.stats().await;
    assert!(stats.dropped_connections > 0, "{stats:?}");
    assert!(stats.repeated_idempotency_keys > 0, "the retries carried the same keys: {stats:?}");
    assert_eq!(stats.applied_writes, 250, "{stats:?}");
    assert_holds_exactly(&crm.contacts().await, &sent);
    assert_eq!(count(&metrics.retries, "network_error"), stats.dropped_connections);
    assert_eq!(count(&metrics.requests, "ok"), 10);
}

#[tokio::test]
async fn server_errors_are_retried_until_the_contacts_arrive() {
    let crm = StandIn::start(Faults { error_rate: 0.5, ..Faults::default() }).await;
    let (destination, metrics) =
        destination(&HttpDestinationConfig { batch_size: 10, ..config(&crm.base_url) });
    let sent = contacts(50);

    let outcomes = destination.upsert(&sent, &PauseSignal::default()).await.unwrap();

    assert_eq!(outcomes, vec![ContactOutcome::Delivered; 50]);
    let stats = crm.stats().await;
    assert!(stats.injected_errors > 0, "{stats:?}");
    assert_eq!(count(&metrics.retries, "server_error"), stats.injected_errors);
    assert_eq!(count(&metrics.requests, "server_error"), stats.injected_errors);
    assert_holds_exactly(&crm.contacts().await, &sent);
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
    let stats = crm.stats().await;
    assert_eq!((stats.requests, stats.injected_errors), (3, 3));
    assert_eq!((count(&metrics.requests, "server_error"), count(&metrics.retries, "server_error")), (3, 2));
    assert!(crm.contacts().await.is_empty());
}

#[tokio::test]
async fn a_timeout_uses_an_attempt_like_any_network_error() {
    // The stand-in answers long after the client stops waiting.
    let crm = StandIn::start(Faults { latency_ms: 30_000, ..Faults::default() }).await;
    let (destination, metrics) = destination(&HttpDestinationConfig {
        max_attempts: 2,
        request_timeout: Duration::from_millis(100),
        ..config(&crm.base_url)
    });

    let result = destination.upsert(&contacts(1), &PauseSignal::default()).await;

    match result {
        Err(DeliveryError::GaveUp(message)) => assert!(message.contains("timed out"), "{message}"),
        other => panic!("expected GaveUp, got {other:?}"),
    }
    assert_eq!((count(&metrics.requests, "network_error"), count(&metrics.retries, "network_error")), (2, 1));
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

    assert!(watch.saw_a_pause(), "the wait for Retry-After held the pause");
    assert!(!pause.is_paused(), "released once the contacts went");
    assert_eq!(outcomes, vec![ContactOutcome::Delivered; 5]);
    let stats = crm.stats().await;
    assert!(stats.rate_limited > 0, "{stats:?}");
    assert_eq!(count(&metrics.retries, "rate_limited"), stats.rate_limited);
    assert_eq!(count(&metrics.requests, "rate_limited"), stats.rate_limited);
    assert_holds_exactly(&crm.contacts().await, &sent);
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
    let sent = contacts(5);

    let outcomes = destination.upsert(&sent, &pause).await.unwrap();

    assert!(watch.saw_a_pause(), "the wait for the limiter held the pause");
    assert_eq!(outcomes, vec![ContactOutcome::Delivered; 5]);
    let stats = crm.stats().await;
    assert_eq!((stats.requests, stats.rate_limited), (5, 0));
    assert_eq!(count(&metrics.requests, "ok"), 5);
}

#[tokio::test]
async fn one_bad_email_in_a_batch_is_rejected_alone_and_the_rest_arrive() {
    let crm = StandIn::start(Faults::default()).await;
    let (destination, metrics) = destination(&config(&crm.base_url));
    let mut sent = contacts(5);
    sent[2].properties.insert("email".into(), json!("not an email"));

    let outcomes = destination.upsert(&sent, &PauseSignal::default()).await.unwrap();

    let ContactOutcome::Rejected { error } = &outcomes[2] else { panic!("{outcomes:?}") };
    assert!(error.contains("400") && error.contains("properties.email"), "{error}");
    assert!(!error.contains("not an email"), "the stand-in keeps the value out: {error}");
    let others: Vec<_> = outcomes.iter().enumerate().filter(|(i, _)| *i != 2).map(|(_, o)| o).collect();
    assert_eq!(others, vec![&ContactOutcome::Delivered; 4]);
    let stats = crm.stats().await;
    assert_eq!(stats.requests, 6, "the batch, then each contact alone: {stats:?}");
    let good: Vec<_> = sent.iter().enumerate().filter(|(i, _)| *i != 2).map(|(_, c)| c.clone()).collect();
    assert_holds_exactly(&crm.contacts().await, &good);
    assert_eq!((count(&metrics.contacts, "delivered"), count(&metrics.contacts, "rejected")), (4, 1));
    assert_eq!((count(&metrics.requests, "ok"), count(&metrics.requests, "rejected")), (4, 2));
}
