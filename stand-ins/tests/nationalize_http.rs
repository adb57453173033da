//! The stand-in's HTTP contract, driven in-process through the router.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use serde_json::{Value, json};
use stand_ins::nationalize::{Faults, Stats, UNLIMITED, predict, router};
use tower::ServiceExt;

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> u64 {
        let value = self.headers.get(name).unwrap_or_else(|| panic!("no {name} header"));
        value.to_str().unwrap().parse().unwrap()
    }
}

async fn call(app: &Router, method: Method, uri: &str, body: &str) -> Reply {
    let request = Request::builder().method(method).uri(uri).body(Body::from(body.to_owned())).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
    Reply { status, headers, body }
}

async fn get(app: &Router, uri: &str) -> Reply {
    call(app, Method::GET, uri, "").await
}

fn expected(names: &[&str]) -> Value {
    json!(names.iter().map(|n| predict(n)).collect::<Vec<_>>())
}

#[tokio::test]
async fn a_single_name_gets_one_prediction_object_and_the_rate_headers() {
    let app = router(Faults::default());
    let reply = get(&app, "/?name=Michael").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, json!(predict("Michael")));
    assert_eq!(reply.body["name"], "Michael");
    assert!(reply.body["count"].as_u64().unwrap() > 0);
    assert!(!reply.body["country"].as_array().unwrap().is_empty());
    assert!(reply.body["country"][0]["country_id"].is_string());
    assert_eq!(reply.header("x-rate-limit-limit"), UNLIMITED);
    assert_eq!(reply.header("x-rate-limit-remaining"), UNLIMITED - 1);
    assert_eq!(reply.header("x-rate-limit-reset"), 86_400);
    assert!(reply.headers.get("retry-after").is_none());
}

#[tokio::test]
async fn a_batch_answers_in_request_order_under_both_spellings_of_the_key() {
    let app = router(Faults::default());
    for uri in
        ["/?name[]=anna&name[]=Bob&name[]=unknown-x", "/?name%5B%5D=anna&name%5B%5D=Bob&name%5B%5D=unknown-x"]
    {
        let reply = get(&app, uri).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}");
        assert_eq!(reply.body, expected(&["anna", "Bob", "unknown-x"]), "{uri}");
    }
}

#[tokio::test]
async fn names_are_percent_decoded() {
    let app = router(Faults::default());
    let reply = get(&app, "/?name=Jos%C3%A9+Mar%C3%ADa").await;
    assert_eq!(reply.body, json!(predict("José María")));
}

#[tokio::test]
async fn ten_names_are_a_batch_and_eleven_are_refused() {
    let app = router(Faults::default());
    let names: Vec<String> = (0..11).map(|i| format!("n{i}")).collect();
    let uri = |n: usize| {
        format!("/?{}", names[..n].iter().map(|n| format!("name[]={n}")).collect::<Vec<_>>().join("&"))
    };
    let ten = get(&app, &uri(10)).await;
    assert_eq!(ten.status, StatusCode::OK);
    assert_eq!(ten.body.as_array().unwrap().len(), 10);
    let eleven = get(&app, &uri(11)).await;
    assert_eq!(eleven.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(eleven.body, json!({"error": "Invalid 'name' parameter"}));
    assert_eq!(eleven.header("x-rate-limit-remaining"), UNLIMITED - 2);
}

#[tokio::test]
async fn a_request_without_a_name_is_refused() {
    let app = router(Faults::default());
    for uri in ["/", "/?apikey=x", "/?names=anna"] {
        let reply = get(&app, uri).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{uri}");
        assert_eq!(reply.body, json!({"error": "Missing 'name' parameter"}), "{uri}");
    }
}

#[tokio::test]
async fn unknown_names_get_an_empty_country_list() {
    let app = router(Faults::default());
    let reply = get(&app, "/?name=UnknownPerson").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, json!({"count": 0, "name": "UnknownPerson", "country": []}));
}

#[tokio::test]
async fn past_the_quota_requests_get_429_with_retry_after() {
    let app = router(Faults { quota: Some(2), window_s: 60, ..Faults::default() });
    assert_eq!(get(&app, "/?name=a").await.header("x-rate-limit-remaining"), 1);
    // A batch still counts as one request.
    let second = get(&app, "/?name[]=b&name[]=c").await;
    assert_eq!((second.status, second.header("x-rate-limit-remaining")), (StatusCode::OK, 0));

    let third = get(&app, "/?name=d").await;
    assert_eq!(third.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(third.body, json!({"error": "Request limit reached"}));
    assert_eq!(third.header("x-rate-limit-limit"), 2);
    assert_eq!(third.header("x-rate-limit-remaining"), 0);
    let retry_after = third.header("retry-after");
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(third.header("x-rate-limit-reset"), retry_after);
}

#[tokio::test]
async fn an_error_rate_of_one_fails_every_request() {
    let app = router(Faults { error_rate: 1.0, ..Faults::default() });
    for _ in 0..3 {
        let reply = get(&app, "/?name=anna").await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(reply.body, json!({"error": "injected failure"}));
        assert!(reply.headers.contains_key("x-rate-limit-remaining"));
    }
    let stats: Stats = serde_json::from_value(get(&app, "/__admin/stats").await.body).unwrap();
    assert_eq!(stats, Stats { requests: 3, injected_errors: 3, ..Stats::default() });
}

#[tokio::test]
async fn half_the_requests_fail_at_an_error_rate_of_one_half() {
    let app = router(Faults { error_rate: 0.5, ..Faults::default() });
    let mut failed = 0;
    for _ in 0..20 {
        failed += usize::from(get(&app, "/?name=anna").await.status == StatusCode::SERVICE_UNAVAILABLE);
    }
    assert!((8..=12).contains(&failed), "{failed} of 20 failed");
}

#[tokio::test]
async fn stats_count_requests_and_the_names_answered() {
    let app = router(Faults::default());
    get(&app, "/?name=anna").await;
    get(&app, "/?name[]=a&name[]=b&name[]=c").await;
    get(&app, "/").await;
    let reply = get(&app, "/__admin/stats").await;
    assert_eq!(
        reply.body,
        json!({"requests": 3, "names": 4, "rateLimited": 0, "injectedErrors": 0, "successful": 2})
    );
}

#[tokio::test]
async fn admin_faults_take_effect_and_reset_clears_them_and_the_stats() {
    let app = router(Faults::default());
    let put = call(&app, Method::PUT, "/__admin/faults", r#"{"quota":1,"windowS":30}"#).await;
    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(
        put.body,
        json!({"latencyMs": 0, "errorRate": 0.0, "quota": 1, "windowS": 30, "apiKey": null})
    );
    assert_eq!(get(&app, "/?name=a").await.status, StatusCode::OK);
    assert_eq!(get(&app, "/?name=a").await.status, StatusCode::TOO_MANY_REQUESTS);

    assert_eq!(call(&app, Method::POST, "/__admin/reset", "").await.status, StatusCode::NO_CONTENT);
    assert_eq!(get(&app, "/__admin/stats").await.body, json!(Stats::default()));
    assert_eq!(get(&app, "/__admin/faults").await.body, json!(Faults::default()));
    assert_eq!(get(&app, "/?name=a").await.status, StatusCode::OK);
}

#[tokio::test]
async fn admin_rejects_unknown_fields_and_impossible_values_by_name() {
    let app = router(Faults { quota: Some(5), ..Faults::default() });
    for (body, named) in [
        (r#"{"latencyMs":1,"latency":5}"#, "`latency`"),
        (r#"{"errorRate":2.0}"#, "errorRate"),
        (r#"{"windowS":0}"#, "windowS"),
    ] {
        let reply = call(&app, Method::PUT, "/__admin/faults", body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(reply.body["error"].as_str().unwrap().contains(named), "{body}: {}", reply.body);
    }
    assert_eq!(get(&app, "/__admin/faults").await.body["quota"], 5, "a refused PUT changes nothing");
}

#[tokio::test]
async fn a_required_api_key_must_be_sent() {
    let app = router(Faults { api_key: Some("s3cret".into()), ..Faults::default() });
    for uri in ["/?name=anna", "/?name=anna&apikey=wrong"] {
        let reply = get(&app, uri).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(reply.body, json!({"error": "Invalid API key"}));
        assert!(reply.headers.contains_key("x-rate-limit-limit"));
    }
    let reply = get(&app, "/?name=anna&apikey=s3cret").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, json!(predict("anna")));
}

#[tokio::test]
async fn latency_delays_the_answer() {
    let app = router(Faults { latency_ms: 50, ..Faults::default() });
    let started = Instant::now();
    assert_eq!(get(&app, "/?name=anna").await.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(50), "answered after {:?}", started.elapsed());
}
