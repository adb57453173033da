//! The webhook receiver's HTTP contract, through `serve` on a loopback port with a real client.
//! Deliveries are signed here from the spec, in a few lines: leadflow-core is not a
//! dependency of the stand-ins (its dependencies would change theirs, serde_json's map order
//! among them), and LeadFlow's signing meets this receiver in the automator's tests.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use stand_ins::webhooks::{
    Delivery, Faults, PathStats, ReceiverSecret, Settings, Stats, Verification, serve,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A test's signing key, `whsec_<base64>`; different seeds give different keys.
struct WebhookSecret(String);

impl WebhookSecret {
    fn new(seed: u8) -> Self {
        WebhookSecret(format!("whsec_{}", STANDARD.encode([seed; 32])))
    }

    fn expose(&self) -> String {
        self.0.clone()
    }
}

/// `v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`, as the spec signs.
fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = STANDARD.decode(&secret.0["whsec_".len()..]).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// A receiver served in the test, stopped when dropped.
struct Receiver {
    base: String,
    client: Client,
    _stop: oneshot::Sender<()>,
}

impl Receiver {
    async fn start(settings: Settings) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(serve(listener, settings, async {
            let _ = stopped.await;
        }));
        Receiver { base, client: Client::new(), _stop: stop }
    }

    async fn with_secret(secret: &WebhookSecret) -> Receiver {
        Self::start(Settings::with_secret(ReceiverSecret::parse(&secret.expose()).unwrap())).await
    }

    /// POSTs `body` to `path` with the three `webhook-*` headers signed by `secret` now.
    async fn deliver(&self, path: &str, secret: &WebhookSecret, id: &str, body: &str) -> reqwest::Response {
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let signature = sign(secret, id, timestamp, body.as_bytes());
        self.post(
            path,
            &[
                ("webhook-id", id),
                ("webhook-timestamp", &timestamp.to_string()),
                ("webhook-signature", &signature),
            ],
            body,
        )
        .await
    }

    async fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> reqwest::Response {
        let mut request =
            self.client.post(format!("{}{path}", self.base)).header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(body.to_owned()).send().await.unwrap()
    }

    async fn deliveries(&self, path: Option<&str>) -> Vec<Delivery> {
        // Test paths are plain ASCII; nothing in them needs escaping in a query.
        let filter = path.map(|p| format!("?path={p}")).unwrap_or_default();
        let url = format!("{}/__admin/deliveries{filter}", self.base);
        let body: Value = self.client.get(url).send().await.unwrap().json().await.unwrap();
        serde_json::from_value(body["deliveries"].clone()).unwrap()
    }

    async fn stats(&self) -> Stats {
        self.client.get(format!("{}/__admin/stats", self.base)).send().await.unwrap().json().await.unwrap()
    }

    async fn put(&self, admin: &str, body: Value) -> reqwest::Response {
        self.client.put(format!("{}/__admin/{admin}", self.base)).json(&body).send().await.unwrap()
    }
}

fn statuses(deliveries: &[Delivery]) -> Vec<u16> {
    deliveries.iter().map(|d| d.status).collect()
}

#[tokio::test]
async fn a_signed_delivery_is_answered_ok_recorded_and_verified() {
    let secret = WebhookSecret::new(1);
    let receiver = Receiver::with_secret(&secret).await;
    let id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W".to_owned();
    let body = r#"{"type":"lead.stage_entered","data":{"leadId":"lead-7","stage":"hot"}}"#;

    let response = receiver.deliver("/a", &secret, &id, body).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "ok");

    let deliveries = receiver.deliveries(None).await;
    assert_eq!(deliveries.len(), 1);
    let d = &deliveries[0];
    assert_eq!((d.seq, d.path.as_str(), d.status), (1, "/a", 200));
    assert_eq!(d.webhook_id.as_deref(), Some(id.as_str()));
    assert!(d.webhook_signature.as_deref().unwrap().starts_with("v1,"));
    assert_eq!(d.body, body);
    assert_eq!(d.json.as_ref().unwrap()["data"]["stage"], "hot");
    assert_eq!(d.content_type.as_deref(), Some("application/json"));
    assert_eq!((d.verified, d.verification), (true, Verification::Valid));
    let now_s = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(d.webhook_timestamp.as_deref().unwrap().parse::<i64>().unwrap() <= now_s);
    assert!(d.received_at.ends_with('Z') && d.received_at_ms > 1_700_000_000_000, "{}", d.received_at);

    let one = PathStats { requests: 1, succeeded: 1, failed: 0, verified: 1, distinct_webhook_ids: 1 };
    assert_eq!(receiver.stats().await, Stats { total: one, by_path: [("/a".to_owned(), one)].into() });
}

#[tokio::test]
async fn the_spec_reference_message_verifies_over_http() {
    // standard-webhooks/standard-webhooks, libraries/go/webhook_test.go (TestWebhookSign); its
    // timestamp is from 2021, so the tolerance is opened wide for this one.
    let settings = Settings {
        tolerance_s: u64::MAX,
        ..Settings::with_secret(ReceiverSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap())
    };
    let receiver = Receiver::start(settings).await;
    let headers = [
        ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
        ("webhook-timestamp", "1614265330"),
        ("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
    ];
    receiver.post("/spec", &headers, r#"{"test": 2432232314}"#).await;
    receiver.post("/spec", &headers, r#"{"test": 2432232315}"#).await;
    let verdicts: Vec<_> = receiver.deliveries(None).await.iter().map(|d| d.verification).collect();
    assert_eq!(verdicts, [Verification::Valid, Verification::Mismatch]);
}

#[tokio::test]
async fn unsigned_tampered_stale_or_foreign_deliveries_are_recorded_unverified_with_the_reason() {
    let secret = WebhookSecret::new(2);
    let other = WebhookSecret::new(3);
    let receiver = Receiver::with_secret(&secret).await;
    let body = r#"{"n":1}"#;

    receiver.post("/a", &[], body).await;
    receiver.deliver("/a", &other, "msg_1", body).await;
    let stale = time::OffsetDateTime::now_utc().unix_timestamp() - 3600;
    let stale_signature = sign(&secret, "msg_2", stale, body.as_bytes());
    receiver
        .post(
            "/a",
            &[
                ("webhook-id", "msg_2"),
                ("webhook-timestamp", &stale.to_string()),
                ("webhook-signature", &stale_signature),
            ],
            body,
        )
        .await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
    let signature = sign(&secret, "msg_3", now.parse().unwrap(), body.as_bytes());
    receiver
        .post(
            "/a",
            &[("webhook-id", "msg_3"), ("webhook-timestamp", &now), ("webhook-signature", &signature)],
            r#"{"n":2}"#,
        )
        .await;
    receiver
        .post(
            "/a",
            &[("webhook-id", "msg_4"), ("webhook-timestamp", "soon"), ("webhook-signature", &signature)],
            body,
        )
        .await;

    let deliveries = receiver.deliveries(Some("/a")).await;
    let verdicts: Vec<_> = deliveries.iter().map(|d| (d.verified, d.verification)).collect();
    assert_eq!(
        verdicts,
        [
            (false, Verification::MissingHeaders),
            (false, Verification::Mismatch),
            (false, Verification::OutsideTolerance),
            (false, Verification::Mismatch),
            (false, Verification::BadTimestamp),
        ]
    );
    // The receiver answers whatever it thinks of the signature: judging is the test's job.
    assert_eq!(statuses(&deliveries), [200; 5]);
    let stats = receiver.stats().await;
    assert_eq!((stats.total.requests, stats.total.verified, stats.total.distinct_webhook_ids), (5, 0, 4));
}

#[tokio::test]
async fn each_path_is_checked_with_its_own_secret_once_they_are_set() {
    let (a, b) = (WebhookSecret::new(4), WebhookSecret::new(5));
    let receiver = Receiver::start(Settings::default()).await;
    receiver.deliver("/a", &a, "msg_before", "{}").await;

    let set = receiver.put("secrets", json!({"perPath": {"/a": a.expose(), "/b": b.expose()}})).await;
    assert_eq!(set.status(), StatusCode::NO_CONTENT);
    assert_eq!(set.text().await.unwrap(), "", "a secret was echoed");
    receiver.deliver("/a", &a, "msg_a", "{}").await;
    receiver.deliver("/b", &b, "msg_b", "{}").await;
    receiver.deliver("/b", &a, "msg_a_to_b", "{}").await;
    receiver.deliver("/c", &a, "msg_c", "{}").await;

    let verdicts: Vec<_> =
        receiver.deliveries(None).await.iter().map(|d| (d.path.clone(), d.verification)).collect();
    let expected = [
        ("/a", Verification::NoSecret),
        ("/a", Verification::Valid),
        ("/b", Verification::Valid),
        ("/b", Verification::Mismatch),
        ("/c", Verification::NoSecret),
    ];
    assert_eq!(verdicts, expected.map(|(p, v)| (p.to_owned(), v)));

    let bad = receiver.put("secrets", json!({"secret": "whsec_***"})).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(!bad.text().await.unwrap().contains("***"));
}

#[tokio::test]
async fn a_failing_path_fails_its_first_requests_while_another_path_stays_healthy() {
    let secret = WebhookSecret::new(6);
    let receiver = Receiver::with_secret(&secret).await;
    let faults = json!({"perPath": {"/a": {"failFirst": 2}}});
    let set = receiver.put("faults", faults).await;
    assert_eq!(set.status(), StatusCode::OK);

    for attempt in 0..3 {
        let to_a = receiver.deliver("/a", &secret, "msg_a", "{}").await;
        let expected = if attempt < 2 { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK };
        assert_eq!(to_a.status(), expected, "attempt {attempt} to /a");
        assert_eq!(
            receiver.deliver("/b", &secret, &format!("msg_b{attempt}"), "{}").await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(statuses(&receiver.deliveries(Some("/a")).await), [500, 500, 200]);
    assert_eq!(statuses(&receiver.deliveries(Some("/b")).await), [200, 200, 200]);
    let stats = receiver.stats().await;
    assert_eq!(
        stats.by_path["/a"],
        PathStats { requests: 3, succeeded: 1, failed: 2, verified: 3, distinct_webhook_ids: 1 }
    );
    assert_eq!(
        stats.by_path["/b"],
        PathStats { requests: 3, succeeded: 3, failed: 0, verified: 3, distinct_webhook_ids: 3 }
    );
    assert_eq!(stats.total.distinct_webhook_ids, 4);

    // A new PUT starts the count again.
    receiver.put("faults", json!({"failFirst": 1, "failStatus": 503})).await;
    assert_eq!(
        receiver.deliver("/b", &secret, "msg_b9", "{}").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(receiver.deliver("/b", &secret, "msg_b9", "{}").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_answer_status_can_be_chosen() {
    let receiver = Receiver::start(Settings::default()).await;
    receiver.put("faults", json!({"status": 410, "perPath": {"/empty": {"status": 204}}})).await;
    let gone = receiver.post("/a", &[], "{}").await;
    assert_eq!(gone.status(), StatusCode::GONE);
    assert_eq!(gone.text().await.unwrap(), "injected failure");
    let empty = receiver.post("/empty", &[], "{}").await;
    assert_eq!(empty.status(), StatusCode::NO_CONTENT);
    assert_eq!(empty.text().await.unwrap(), "");
    let faults: Faults = receiver
        .client
        .get(format!("{}/__admin/faults", receiver.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(faults.status, 410);
    assert_eq!(faults.for_path("/empty").status, 204);
}

#[tokio::test]
async fn a_slow_answer_is_recorded_on_arrival() {
    let receiver = Receiver::start(Settings::default()).await;
    receiver.put("faults", json!({"latencyMs": 600_000})).await;
    let url = format!("{}/slow", receiver.base);
    let pending = tokio::spawn(async move { Client::new().post(url).body("{}").send().await });

    let deadline = Instant::now() + common::PATIENCE;
    while receiver.deliveries(Some("/slow")).await.is_empty() {
        assert!(Instant::now() < deadline, "the slow request was never recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!pending.is_finished(), "answered without the latency");
    pending.abort();
}

#[tokio::test]
async fn a_slack_style_message_is_just_a_post_of_text() {
    let receiver = Receiver::start(Settings::default()).await;
    let response = receiver
        .post("/slack/T000/B000/XXXX", &[], r#"{"text":"Lead Ada Lovelace is now hot (score 82)"}"#)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(response.text().await.unwrap(), "ok");
    let deliveries = receiver.deliveries(Some("/slack/T000/B000/XXXX")).await;
    assert_eq!(deliveries[0].json.as_ref().unwrap()["text"], "Lead Ada Lovelace is now hot (score 82)");
    assert_eq!(deliveries[0].verification, Verification::NoSecret);
}

#[tokio::test]
async fn other_methods_unknown_admin_paths_and_bad_faults_are_refused() {
    let receiver = Receiver::start(Settings::default()).await;
    let get = receiver.client.get(format!("{}/a", receiver.base)).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get.headers()["allow"], "POST");
    assert_eq!(receiver.post("/__admin/nothing", &[], "{}").await.status(), StatusCode::NOT_FOUND);
    for (faults, named) in [
        (json!({"failFirts": 1}), "failFirts"),
        (json!({"status": 99}), "status"),
        (json!({"perPath": {"a": {}}}), "perPath"),
    ] {
        let response = receiver.put("faults", faults).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let text = response.text().await.unwrap();
        assert!(text.contains(named), "{text}");
    }
    assert_eq!(receiver.stats().await, Stats::default(), "refused requests were counted as deliveries");
}

#[tokio::test]
async fn reset_forgets_the_deliveries_and_restores_the_start() {
    let secret = WebhookSecret::new(7);
    let receiver = Receiver::with_secret(&secret).await;
    receiver.put("faults", json!({"status": 500})).await;
    receiver.put("secrets", json!({})).await;
    assert_eq!(
        receiver.deliver("/a", &secret, "msg_1", "{}").await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );

    let reset = receiver.client.post(format!("{}/__admin/reset", receiver.base)).send().await.unwrap();
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    assert!(receiver.deliveries(None).await.is_empty());
    assert_eq!(receiver.stats().await, Stats::default());
    assert_eq!(receiver.deliver("/a", &secret, "msg_1", "{}").await.status(), StatusCode::OK);
    assert_eq!(receiver.deliveries(None).await[0].verification, Verification::Valid);
}

#[test]
fn the_binary_announces_its_address_verifies_and_stops_cleanly_on_sigterm() {
    let secret = WebhookSecret::new(8);
    let stand_in = common::StandInProcess::start(
        env!("CARGO_BIN_EXE_webhook-receiver"),
        "webhook receiver",
        &["--listen", "127.0.0.1:0", "--secret", &secret.expose()],
    );
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let base = format!("http://{}", stand_in.addr);
    let verified = runtime.block_on(async {
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let client = Client::new();
        let response = client
            .post(format!("{base}/hook"))
            .header("webhook-id", "msg_bin")
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", sign(&secret, "msg_bin", timestamp, b"{}"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value =
            client.get(format!("{base}/__admin/deliveries")).send().await.unwrap().json().await.unwrap();
        body["deliveries"][0]["verified"].clone()
    });
    assert_eq!(verified, json!(true));
    let status = stand_in.terminate();
    assert!(status.success(), "exited with {status}");
}
