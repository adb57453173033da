//! What every request meets, whichever layer serves it: unknown routes and methods answer JSON,
//! every listed route is served, the server-side timeout holds, and the dashboard is served
//! with nothing beside it.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::json;
use tower::ServiceExt;

use super::*;
use crate::testing::{Harness, RecordingPublisher};

#[tokio::test]
async fn unknown_routes_and_methods_answer_json_404_and_405() {
    let h = Harness::new();
    let (status, _, body) = h.send(Request::get("/api/nope").body(Body::empty()).unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (status, _, body) = h.send(Request::get("/api/events").body(Body::empty()).unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
}

/// Every path the document lists answers a method it does not list with 405, the JSON error
/// and an `Allow` header naming the methods it takes (a GET path takes HEAD too).
#[tokio::test]
async fn an_unlisted_method_on_a_listed_path_is_405_with_allow() {
    let h = Harness::new();
    for (_, path) in ROUTES {
        let mut listed: Vec<String> =
            ROUTES.iter().filter(|(_, p)| p == path).map(|(m, _)| m.to_uppercase()).collect();
        if listed.iter().any(|m| m == "GET") {
            listed.push("HEAD".to_owned());
        }
        listed.sort();
        for method in
            ["DELETE", "PATCH", "TRACE", "OPTIONS"].into_iter().filter(|m| !listed.iter().any(|l| l == m))
        {
            let request = Request::builder().method(method).uri(*path).body(Body::empty()).unwrap();
            let (status, headers, body) = h.send(request).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")),
                "{method} {path}"
            );
            let mut allow: Vec<String> =
                headers[header::ALLOW].to_str().unwrap().split(',').map(|m| m.trim().to_owned()).collect();
            allow.sort();
            assert_eq!(allow, listed, "{method} {path}");
        }
    }
}

#[tokio::test]
async fn a_request_that_outlives_the_timeout_is_503() {
    let h = Harness::with(RecordingPublisher { stall: true, ..Default::default() });
    let (status, headers, body) =
        h.post("/api/events", json!({"leadId": "lead-1", "eventType": "page_view"})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"], "timeout");
    assert!(headers.contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn every_listed_route_is_served() {
    let h = Harness::new();
    for (method, path) in ROUTES {
        let request = Request::builder()
            .method(method.to_uppercase().as_str())
            .uri(*path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .unwrap();
        // The status only: the body of /api/stream never ends.
        let status = router(h.state.clone()).oneshot(request).await.unwrap().status();
        assert!(
            ![StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED].contains(&status),
            "{method} {path}: {status}"
        );
    }
}

#[tokio::test]
async fn the_dashboard_is_served_at_the_root_with_its_modules_and_nothing_else() {
    let harness = Harness::new();
    let fetch = |path: &str| {
        let request = Request::get(path).body(Body::empty()).unwrap();
        router(harness.state.clone()).oneshot(request)
    };
    let page = fetch("/").await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert!(page.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("script-src 'self'"));
    let html = axum::body::to_bytes(page.into_body(), 1 << 20).await.unwrap();
    assert!(
        std::str::from_utf8(&html).unwrap().contains(r#"<script type="module" src="/dashboard/app.mjs">"#)
    );

    let module = fetch("/dashboard/app.mjs").await.unwrap();
    assert_eq!(module.status(), StatusCode::OK);
    assert_eq!(module.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
    assert_eq!(module.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");

    // The modules' tests live beside them but are not served; nor is anything outside the list.
    for path in ["/dashboard/model.test.mjs", "/dashboard/..%2Fsrc%2Flib.rs", "/dashboard/"] {
        let (status, body) = harness.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body["error"], "not_found", "{path}");
    }
}
