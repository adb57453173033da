//! The management API through `oneshot`: who may do what, the answers' shapes, and that a key's
//! text is shown once and works until it is revoked or rotated.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};

use crate::auth::scope::Scope;
use crate::testing::{Harness, TEST_ADMIN_TOKEN, store_project};

async fn call(
    h: &Harness,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let builder =
        Request::builder().method(method).uri(path).header(header::AUTHORIZATION, format!("Bearer {token}"));
    let request = match body {
        Some(b) => builder.header(header::CONTENT_TYPE, "application/json").body(Body::from(b.to_string())),
        None => builder.body(Body::empty()),
    }
    .unwrap();
    let (status, _, body) = h.send(request).await;
    (status, body)
}

#[tokio::test]
async fn the_admin_creates_lists_and_changes_projects_and_nobody_else_may() {
    let h = Harness::new();
    let body = json!({"id": "acme", "allowedOrigins": ["https://App.Acme.example"], "eventsPerMinute": 500});
    let (status, project) =
        call(&h, Method::POST, "/api/projects", TEST_ADMIN_TOKEN, Some(body.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    assert_eq!(
        (&project["id"], &project["name"], &project["allowedOrigins"], &project["eventsPerMinute"]),
        (&json!("acme"), &json!("acme"), &json!(["https://app.acme.example"]), &json!(500))
    );
    let (status, conflict) = call(&h, Method::POST, "/api/projects", TEST_ADMIN_TOKEN, Some(body)).await;
    assert_eq!(
        (status, conflict["error"].as_str(), conflict["field"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"), Some("id"))
    );
    let (status, bad) =
        call(&h, Method::POST, "/api/projects", TEST_ADMIN_TOKEN, Some(json!({"id": "Acme Corp"}))).await;
    assert_eq!((status, bad["field"].as_str()), (StatusCode::BAD_REQUEST, Some("id")));

    let (status, list) = call(&h, Method::GET, "/api/projects", TEST_ADMIN_TOKEN, None).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> =
        list["projects"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["acme", "default"]);

    let (status, patched) = call(
        &h,
        Method::PATCH,
        "/api/projects/acme",
        TEST_ADMIN_TOKEN,
        Some(json!({"name": "Acme", "eventsPerMinute": null})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!((&patched["name"], &patched["eventsPerMinute"]), (&json!("Acme"), &Value::Null));
    let (status, _) =
        call(&h, Method::PATCH, "/api/projects/nope", TEST_ADMIN_TOKEN, Some(json!({"name": "x"}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A project's own admin key may read its project, not list, create or change projects.
    let admin_key = h.key_of("acme", &[Scope::Admin], None);
    assert_eq!(call(&h, Method::GET, "/api/projects/acme", &admin_key, None).await.0, StatusCode::OK);
    assert_eq!(
        call(&h, Method::GET, "/api/projects/default", &admin_key, None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(call(&h, Method::GET, "/api/projects", &admin_key, None).await.0, StatusCode::FORBIDDEN);
    let new = Some(json!({"id": "other"}));
    assert_eq!(call(&h, Method::POST, "/api/projects", &admin_key, new).await.0, StatusCode::FORBIDDEN);
    let (status, answer) =
        call(&h, Method::PATCH, "/api/projects/acme", &admin_key, Some(json!({"name": "x"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
}

#[tokio::test]
async fn a_key_is_shown_once_works_until_revoked_and_a_rotation_replaces_it() {
    let h = Harness::new();
    store_project(&h.store, "acme", &[], None);
    let body = json!({"name": "ci", "scopes": ["read", "ingest"], "eventsPerMinute": 50});
    let (status, made) =
        call(&h, Method::POST, "/api/projects/acme/keys", TEST_ADMIN_TOKEN, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let key = made["key"].as_str().unwrap().to_owned();
    let id = made["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with(&format!("lf_{id}_")), "{made}");
    assert_eq!(
        (&made["projectId"], &made["scopes"], &made["eventsPerMinute"]),
        (&json!("acme"), &json!(["ingest", "read"]), &json!(50))
    );

    let (status, list) = call(&h, Method::GET, "/api/projects/acme/keys", TEST_ADMIN_TOKEN, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["keys"].as_array().unwrap().len(), 1);
    assert_eq!(list["keys"][0]["revokedAt"], Value::Null);
    let listed = list.to_string();
    assert!(!listed.contains(&key) && !listed.contains(&crate::auth::keys::hash(&key)), "{listed}");
    assert!(list["keys"][0].get("hash").is_none() && list["keys"][0].get("key").is_none());

    assert_eq!(call(&h, Method::GET, "/api/scoring-rules", &key, None).await.0, StatusCode::OK);
    let (status, rotated) =
        call(&h, Method::POST, &format!("/api/projects/acme/keys/{id}/rotate"), TEST_ADMIN_TOKEN, None).await;
    assert_eq!(status, StatusCode::CREATED, "{rotated}");
    assert_eq!(
        (&rotated["name"], &rotated["scopes"], &rotated["eventsPerMinute"]),
        (&json!("ci"), &json!(["ingest", "read"]), &json!(50))
    );
    assert_ne!(rotated["id"], made["id"]);
    let new_key = rotated["key"].as_str().unwrap();
    assert_eq!(
        call(&h, Method::GET, "/api/scoring-rules", &key, None).await.0,
        StatusCode::UNAUTHORIZED,
        "the old key is revoked"
    );
    assert_eq!(call(&h, Method::GET, "/api/scoring-rules", new_key, None).await.0, StatusCode::OK);
    let rotate_again = format!("/api/projects/acme/keys/{id}/rotate");
    assert_eq!(call(&h, Method::POST, &rotate_again, TEST_ADMIN_TOKEN, None).await.0, StatusCode::CONFLICT);

    let new_id = rotated["id"].as_str().unwrap();
    let revoke = format!("/api/projects/acme/keys/{new_id}");
    assert_eq!(call(&h, Method::DELETE, &revoke, TEST_ADMIN_TOKEN, None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(
        call(&h, Method::DELETE, &revoke, TEST_ADMIN_TOKEN, None).await.0,
        StatusCode::NO_CONTENT,
        "idempotent"
    );
    assert_eq!(call(&h, Method::GET, "/api/scoring-rules", new_key, None).await.0, StatusCode::UNAUTHORIZED);
    let (status, body) =
        call(&h, Method::DELETE, "/api/projects/acme/keys/0123456789ab", TEST_ADMIN_TOKEN, None).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::NOT_FOUND, Some("keyId")));
    let (_, list) = call(&h, Method::GET, "/api/projects/acme/keys", TEST_ADMIN_TOKEN, None).await;
    assert!(list["keys"].as_array().unwrap().iter().all(|k| k["revokedAt"].is_string()), "{list}");
}

#[tokio::test]
async fn a_projects_admin_key_manages_its_own_keys_only_and_other_scopes_may_not() {
    let h = Harness::new();
    store_project(&h.store, "acme", &[], None);
    store_project(&h.store, "globex", &[], None);
    let acme_admin = h.key_of("acme", &[Scope::Admin], None);
    let acme_reader = h.key_of("acme", &[Scope::Read], None);
    let globex_key = h.key_of("globex", &[Scope::Read], None);
    let globex_id = crate::auth::keys::key_id_of(&globex_key).unwrap().to_owned();
    let body = Some(json!({"name": "sdk", "scopes": ["ingest"]}));
    assert_eq!(
        call(&h, Method::POST, "/api/projects/acme/keys", &acme_admin, body.clone()).await.0,
        StatusCode::CREATED
    );
    let (status, answer) =
        call(&h, Method::POST, "/api/projects/acme/keys", &acme_reader, body.clone()).await;
    assert_eq!(
        (status, answer["message"].as_str()),
        (StatusCode::FORBIDDEN, Some("this key lacks the admin scope"))
    );
    assert_eq!(
        call(&h, Method::POST, "/api/projects/globex/keys", &acme_admin, body.clone()).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&h, Method::GET, "/api/projects/globex/keys", &acme_admin, None).await.0,
        StatusCode::NOT_FOUND
    );
    let revoke_other = format!("/api/projects/globex/keys/{globex_id}");
    assert_eq!(call(&h, Method::DELETE, &revoke_other, &acme_admin, None).await.0, StatusCode::NOT_FOUND);
    let through_own = format!("/api/projects/acme/keys/{globex_id}");
    assert_eq!(
        call(&h, Method::DELETE, &through_own, &acme_admin, None).await.0,
        StatusCode::NOT_FOUND,
        "another project's key"
    );
    assert_eq!(
        call(&h, Method::GET, "/api/scoring-rules", &globex_key, None).await.0,
        StatusCode::OK,
        "still valid"
    );
    let (status, answer) = call(
        &h,
        Method::POST,
        "/api/projects/acme/keys",
        TEST_ADMIN_TOKEN,
        Some(json!({"name": "x", "scopes": []})),
    )
    .await;
    assert_eq!((status, answer["field"].as_str()), (StatusCode::BAD_REQUEST, Some("scopes")));
    assert_eq!(
        call(&h, Method::POST, "/api/projects/nope/keys", TEST_ADMIN_TOKEN, body).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, _) = call(&h, Method::GET, "/api/projects", "wrong-admin-token-0123456789", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
