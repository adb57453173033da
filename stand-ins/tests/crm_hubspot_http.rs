//! The CRM stand-in's HubSpot mode over real connections (through `serve_with`), one test per
//! rule of the wire that a client can get wrong.

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use stand_ins::crm::{
    DATED_READ_PATH, DATED_UPSERT_PATH, Faults, HubSpotStats, PROPERTIES_PATH, READ_PATH, Settings,
    UPSERT_PATH, serve_with,
};
use tokio::net::TcpListener;

const PATIENCE: Duration = Duration::from_secs(10);

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

struct Crm {
    base: String,
    client: Client,
}

impl Crm {
    async fn start(settings: Settings) -> Crm {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        // Runs until the test's runtime ends.
        tokio::spawn(serve_with(listener, settings, std::future::pending()));
        Crm { base, client: Client::new() }
    }

    async fn leadflow() -> Crm {
        Crm::start(Settings::hubspot_with_leadflow_properties(Faults::default())).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        Reply { status, headers, body }
    }

    async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(self.client.post(format!("{}{path}", self.base)).json(body)).await
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(self.client.get(format!("{}{path}", self.base))).await
    }

    async fn upsert(&self, inputs: Value) -> Reply {
        self.post(UPSERT_PATH, &json!({ "inputs": inputs })).await
    }

    async fn contacts(&self) -> Value {
        self.get("/__admin/contacts").await.body["contacts"].clone()
    }

    async fn stats(&self) -> HubSpotStats {
        serde_json::from_value(self.get("/__admin/stats").await.body).unwrap()
    }

    async fn set_faults(&self, faults: Value) {
        let reply = self.send(self.client.put(format!("{}/__admin/faults", self.base)).json(&faults)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
}

fn input(id: &str, properties: Value) -> Value {
    json!({"idProperty": "leadflow_id", "id": id, "properties": properties})
}

fn property(name: &str, unique: bool) -> Value {
    json!({"name": name, "label": name, "type": "string", "fieldType": "text", "groupName": "leadflow",
           "hasUniqueValue": unique})
}

#[tokio::test]
async fn properties_must_be_created_before_they_are_written() {
    let crm = Crm::start(Settings::hubspot(Faults::default())).await;
    let by_missing_key = crm.upsert(json!([input("L1", json!({}))])).await;
    assert_eq!(by_missing_key.status, StatusCode::BAD_REQUEST);
    assert_eq!(by_missing_key.body["message"], "Property leadflow_id does not exist");

    let created = crm.post(PROPERTIES_PATH, &property("leadflow_id", true)).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let mut shown = created.body.clone();
    assert!(shown.as_object_mut().unwrap().remove("createdAt").is_some());
    assert_eq!(
        shown,
        json!({"name": "leadflow_id", "label": "leadflow_id", "type": "string", "fieldType": "text",
               "groupName": "leadflow", "hasUniqueValue": true})
    );
    let again = crm.post(PROPERTIES_PATH, &property("leadflow_id", true)).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(
        (&again.body["category"], &again.body["message"]),
        (&json!("OBJECT_ALREADY_EXISTS"), &json!("Property named 'leadflow_id' already exists."))
    );
    let incomplete = crm.post(PROPERTIES_PATH, &json!({"name": "leadflow_version", "type": "number"})).await;
    assert_eq!(incomplete.status, StatusCode::BAD_REQUEST);
    assert_eq!(incomplete.body["message"], "Missing required fields: label, fieldType, groupName");

    let unknown = crm.upsert(json!([input("L1", json!({"leadflow_version": 1}))])).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.body["category"], "VALIDATION_ERROR");
    assert!(unknown.body["message"].as_str().unwrap().contains("PROPERTY_DOESNT_EXIST"), "{}", unknown.body);
    assert_eq!(
        unknown.body["errors"],
        json!([{"message": "Property \"leadflow_version\" does not exist", "code": "PROPERTY_DOESNT_EXIST",
                "context": {"propertyName": ["leadflow_version"]}, "in": "inputs[0].properties.leadflow_version"}])
    );
    assert_eq!(crm.contacts().await, json!({}), "nothing applied");

    assert_eq!(
        crm.post(PROPERTIES_PATH, &property("leadflow_version", false)).await.status,
        StatusCode::CREATED
    );
    let ok = crm.upsert(json!([input("L1", json!({"leadflow_version": 1}))])).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let listed = crm.get(PROPERTIES_PATH).await.body["results"].clone();
    let names: Vec<&str> = listed.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(
        names.contains(&"leadflow_version") && names.contains(&"email") && names.contains(&"hs_object_id")
    );
    assert_eq!(crm.get(&format!("{PROPERTIES_PATH}/leadflow_id")).await.body["hasUniqueValue"], true);
    assert_eq!(crm.get(&format!("{PROPERTIES_PATH}/nope")).await.status, StatusCode::NOT_FOUND);
    let stats = crm.stats().await;
    assert_eq!((stats.property_errors, stats.validation_errors, stats.applied_writes), (2, 3, 1));
}

#[tokio::test]
async fn the_body_is_strict_and_a_bad_one_applies_nothing() {
    let crm = Crm::leadflow().await;
    let mut keyed = input("L2", json!({}));
    keyed["idempotencyKey"] = json!("L2:1");
    let with_email = |email: &str| input("L3", json!({"email": email}));
    let cases = [
        (json!({"inputs": [input("L1", json!({})), keyed]}), "inputs[1].idempotencyKey", false),
        (json!({"inputs": [input("L1", json!({}))], "idempotencyKey": "k"}), "idempotencyKey", false),
        (
            json!({"inputs": [input("L1", json!({"hs_object_id": "7"}))]}),
            "inputs[0].properties.hs_object_id",
            true,
        ),
        (json!({"inputs": [with_email("ada@example.c0m")]}), "inputs[0].properties.email", true),
        (json!({"inputs": [with_email("x@y.z")]}), "inputs[0].properties.email", true),
        (json!({"inputs": []}), "inputs", false),
    ];
    for (body, field, about_properties) in cases {
        let reply = crm.post(UPSERT_PATH, &body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{field}");
        assert_eq!(reply.body["category"], "VALIDATION_ERROR", "{field}");
        assert!(reply.body["correlationId"].is_string(), "{field}");
        assert_eq!(reply.body["errors"][0]["in"], field, "{}", reply.body);
        let message = reply.body["message"].as_str().unwrap();
        assert_eq!(message.starts_with("Property values were not valid"), about_properties, "{message}");
    }
    let by_stage = json!({"inputs": [{"idProperty": "leadflow_stage", "id": "new", "properties": {}}]});
    let reply = crm.post(UPSERT_PATH, &by_stage).await;
    assert_eq!(
        reply.body["message"],
        "Unable to perform update/upsert by non-unique property: leadflow_stage"
    );
    assert_eq!(crm.contacts().await, json!({}));
    assert_eq!(crm.stats().await.validation_errors, 7);
}

#[tokio::test]
async fn the_last_writer_wins_even_with_an_older_version_at_either_path() {
    let crm = Crm::leadflow().await;
    let first = crm
        .upsert(json!([input("L1", json!({"leadflow_version": 5, "firstname": "Ann", "company": "X"}))]))
        .await;
    assert_eq!(first.status, StatusCode::OK);
    let result = &first.body["results"][0];
    assert_eq!(
        (&result["id"], &result["new"], &result["archived"]),
        (&json!("1001"), &json!(true), &json!(false))
    );
    assert_eq!(
        result["properties"],
        json!({"leadflow_id": "L1", "leadflow_version": "5", "firstname": "Ann", "company": "X", "hs_object_id": "1001"})
    );
    assert!(result["createdAt"].is_string() && result["updatedAt"].is_string());

    let older = json!({"inputs": [input("L1", json!({"leadflow_version": 3, "firstname": "Old"}))]});
    let second = crm.post(DATED_UPSERT_PATH, &older).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(
        (&second.body["results"][0]["id"], &second.body["results"][0]["new"]),
        (&json!("1001"), &json!(false))
    );
    let contact = &crm.contacts().await["L1"];
    assert_eq!(contact["properties"]["leadflow_version"], "3", "no version guard");
    assert_eq!(contact["properties"]["firstname"], "Old");
    assert_eq!(contact["properties"]["company"], "X", "a property not given is kept");
    assert_eq!(contact["versionHistory"], json!(["5", "3"]));

    let two = crm.upsert(json!([input("L2", json!({})), input("L3", json!({}))])).await;
    let ids: Vec<&Value> = two.body["results"].as_array().unwrap().iter().map(|r| &r["id"]).collect();
    assert_eq!(ids, [&json!("1003"), &json!("1002")], "results come reversed");
}

#[tokio::test]
async fn an_email_of_another_contact_is_a_409_alone_and_a_207_among_others() {
    let crm = Crm::leadflow().await;
    crm.upsert(json!([input("L1", json!({"email": "ada@example.com"}))])).await;
    let alone = crm.upsert(json!([input("L2", json!({"email": "ada@example.com"}))])).await;
    assert_eq!(alone.status, StatusCode::CONFLICT);
    assert_eq!(
        (&alone.body["status"], &alone.body["category"], &alone.body["message"]),
        (&json!("error"), &json!("CONFLICT"), &json!("Contact already exists. Existing ID: 1001"))
    );
    assert!(alone.body["correlationId"].is_string());

    let among = crm
        .upsert(json!([
            input("L3", json!({"email": "bo@example.com"})),
            input("L2", json!({"email": "ada@example.com"})),
            input("L4", json!({"email": "bo@example.com"})),
        ]))
        .await;
    assert_eq!(among.status, StatusCode::MULTI_STATUS);
    assert_eq!((&among.body["status"], &among.body["numErrors"]), (&json!("COMPLETE"), &json!(2)));
    assert_eq!(among.body["results"].as_array().unwrap().len(), 1);
    let error = &among.body["errors"][1];
    assert_eq!(error["category"], "CONFLICT");
    assert_eq!(
        error["context"],
        json!({"id": ["L4"], "existingId": ["1002"]}),
        "same email earlier in the batch"
    );
    assert_eq!(error["errors"][0]["in"], "inputs[2].properties.email");
    let contacts = crm.contacts().await;
    assert!(contacts.get("L3").is_some() && contacts.get("L2").is_none() && contacts.get("L4").is_none());
    let stats = crm.stats().await;
    assert_eq!((stats.conflicts, stats.multi_status, stats.conflicting_inputs), (1, 1, 3));
}

#[tokio::test]
async fn whole_batch_conflicts_refuse_the_request_and_apply_nothing() {
    let crm = Crm::leadflow().await;
    crm.upsert(json!([input("L1", json!({"email": "ada@example.com", "firstname": "Ann"}))])).await;
    crm.set_faults(json!({"conflictAnswer": "wholeBatch"})).await;
    let reply = crm
        .upsert(json!([
            input("L1", json!({"firstname": "Changed"})),
            input("L2", json!({"email": "ADA@example.com"}))
        ]))
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.body["message"], "Contact already exists. Existing ID: 1001");
    let contacts = crm.contacts().await;
    assert_eq!(contacts["L1"]["properties"]["firstname"], "Ann");
    assert!(contacts.get("L2").is_none());
}

#[tokio::test]
async fn batch_read_answers_200_when_all_are_found_and_207_listing_the_rest() {
    let crm = Crm::leadflow().await;
    crm.upsert(json!([
        input("L1", json!({"leadflow_version": 2, "firstname": "Ann"})),
        input("L2", json!({}))
    ]))
    .await;
    let read = |ids: &[&str]| {
        json!({"idProperty": "leadflow_id", "inputs": ids.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
               "properties": ["leadflow_version", "no_such_property"]})
    };
    let all = crm.post(READ_PATH, &read(&["L1"])).await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.body["status"], "COMPLETE");
    assert_eq!(
        all.body["results"][0]["properties"],
        json!({"leadflow_version": "2", "hs_object_id": "1001", "leadflow_id": "L1"})
    );
    let some = crm.post(DATED_READ_PATH, &read(&["L1", "L9", "L8"])).await;
    assert_eq!(some.status, StatusCode::MULTI_STATUS);
    assert_eq!(some.body["numErrors"], 1);
    assert_eq!(some.body["errors"][0]["category"], "OBJECT_NOT_FOUND");
    assert_eq!(some.body["errors"][0]["context"]["ids"], json!(["L9", "L8"]));
    assert_eq!(some.body["results"].as_array().unwrap().len(), 1);
    let by_internal_id = crm.post(READ_PATH, &json!({"inputs": [{"id": "1002"}]})).await;
    assert_eq!(by_internal_id.body["results"][0]["properties"], json!({"hs_object_id": "1002"}));
    let strict = crm.post(READ_PATH, &json!({"inputs": [{"id": "L1"}], "after": 1})).await;
    assert_eq!(strict.status, StatusCode::BAD_REQUEST);
    let stats = crm.stats().await;
    assert_eq!((stats.batch_reads, stats.multi_status), (4, 1));
}

#[tokio::test]
async fn a_person_deleting_or_editing_a_contact_is_seen_by_the_api() {
    let crm = Crm::leadflow().await;
    crm.upsert(json!([input("L1", json!({"leadflow_version": 1, "email": "ada@example.com"}))])).await;
    let patch = crm
        .send(
            crm.client
                .patch(format!("{}/__admin/contacts/L1", crm.base))
                .json(&json!({"properties": {"firstname": "Edited", "leadflow_version": 9}})),
        )
        .await;
    assert_eq!(patch.status, StatusCode::OK);
    let read = json!({"idProperty": "leadflow_id", "inputs": [{"id": "L1"}], "properties": ["firstname"]});
    assert_eq!(crm.post(READ_PATH, &read).await.body["results"][0]["properties"]["firstname"], "Edited");
    assert_eq!(crm.contacts().await["L1"]["versionHistory"], json!(["1", "9"]));

    let delete = |key: &str| crm.client.delete(format!("{}/__admin/contacts/{key}", crm.base));
    assert_eq!(crm.send(delete("L1")).await.status, StatusCode::NO_CONTENT);
    assert_eq!(crm.send(delete("L1")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(crm.contacts().await["L1"]["archived"], true);
    assert_eq!(crm.post(READ_PATH, &read).await.status, StatusCode::MULTI_STATUS, "archived is not found");
    // A new contact for the same lead, and the deleted one's email is free again.
    let again = crm.upsert(json!([input("L1", json!({"email": "ada@example.com"}))])).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        (&again.body["results"][0]["id"], &again.body["results"][0]["new"]),
        (&json!("1002"), &json!(true))
    );
    assert_eq!(crm.contacts().await["L1"]["archived"], false);
}

#[tokio::test]
async fn the_ten_second_and_daily_limits_answer_429_with_headers_and_no_retry_after() {
    let crm = Crm::leadflow().await;
    crm.set_faults(json!({"burstLimit": 2, "burstWindowMs": 60000, "dailyLimit": 10})).await;
    let ok = crm.upsert(json!([input("L1", json!({}))])).await;
    let header = |reply: &Reply, name: &str| reply.headers[name].to_str().unwrap().to_owned();
    assert_eq!(header(&ok, "x-hubspot-ratelimit-max"), "2");
    assert_eq!(header(&ok, "x-hubspot-ratelimit-remaining"), "1");
    assert_eq!(header(&ok, "x-hubspot-ratelimit-interval-milliseconds"), "60000");
    assert_eq!(header(&ok, "x-hubspot-ratelimit-daily"), "10");
    assert_eq!(header(&ok, "x-hubspot-ratelimit-daily-remaining"), "9");
    crm.get(PROPERTIES_PATH).await;
    let limited = crm.upsert(json!([input("L1", json!({"firstname": "Late"}))])).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        (&limited.body["status"], &limited.body["errorType"], &limited.body["policyName"]),
        (&json!("error"), &json!("RATE_LIMIT"), &json!("TEN_SECONDLY_ROLLING"))
    );
    assert_eq!(limited.body["message"], "You have reached your ten_secondly_rolling limit.");
    assert!(limited.body["correlationId"].is_string() && limited.body["groupName"].is_string());
    assert_eq!(header(&limited, "x-hubspot-ratelimit-remaining"), "0");
    assert!(limited.headers.get("retry-after").is_none());

    // A PUT restarts the window but not the day: two of one were used.
    crm.set_faults(json!({"dailyLimit": 1})).await;
    let daily = crm.upsert(json!([input("L1", json!({}))])).await;
    assert_eq!(daily.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        (&daily.body["policyName"], &daily.body["message"]),
        (&json!("DAILY"), &json!("You have reached your daily limit."))
    );
    assert_eq!(header(&daily, "x-hubspot-ratelimit-daily-remaining"), "0");
    assert!(
        daily.headers.get("retry-after").is_none() && daily.headers.get("x-hubspot-ratelimit-max").is_none()
    );
    assert_eq!(crm.post("/__admin/daily/reset", &json!({})).await.status, StatusCode::NO_CONTENT);
    assert_eq!(crm.upsert(json!([input("L1", json!({}))])).await.status, StatusCode::OK);
    let stats = crm.stats().await;
    assert_eq!((stats.rate_limited, stats.daily_rate_limited), (1, 1));
    assert_eq!(crm.contacts().await["L1"]["properties"].get("firstname"), None, "a 429 applies nothing");
}

#[tokio::test]
async fn a_token_is_required_when_set_and_missing_scopes_are_a_403() {
    let settings = Settings {
        token: Some("secret".into()),
        ..Settings::hubspot_with_leadflow_properties(Faults::default())
    };
    let crm = Crm::start(settings).await;
    let body = json!({"inputs": [input("L1", json!({}))]});
    let anonymous = crm.post(UPSERT_PATH, &body).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.body["category"], "INVALID_AUTHENTICATION");
    assert!(anonymous.body["message"].as_str().unwrap().starts_with("Authentication credentials not found"));
    let authorized =
        |path: &str| crm.client.post(format!("{}{path}", crm.base)).bearer_auth("secret").json(&body);
    assert_eq!(crm.send(authorized(UPSERT_PATH)).await.status, StatusCode::OK);
    assert_eq!(crm.contacts().await.as_object().unwrap().len(), 1, "admin calls need no token");

    crm.set_faults(json!({"missingScopes": true})).await;
    let scoped = crm.send(authorized(UPSERT_PATH)).await;
    assert_eq!(scoped.status, StatusCode::FORBIDDEN);
    assert_eq!(scoped.body["category"], "MISSING_SCOPES");
    assert_eq!(
        scoped.body["errors"][0]["context"]["requiredGranularScopes"],
        json!(["crm.objects.contacts.write"])
    );
    assert_eq!(crm.stats().await.unauthorized, 2);
}

#[tokio::test]
async fn a_late_apply_lands_after_the_client_has_given_up() {
    let crm = Crm::leadflow().await;
    crm.set_faults(json!({"lateApplyRate": 1.0, "lateApplyDelayMs": 600})).await;
    let impatient = Client::builder().timeout(Duration::from_millis(200)).build().unwrap();
    let sent = impatient
        .post(format!("{}{UPSERT_PATH}", crm.base))
        .json(&json!({"inputs": [input("L1", json!({"leadflow_version": 4}))]}))
        .send()
        .await;
    assert!(sent.expect_err("the client should have timed out").is_timeout());

    let deadline = Instant::now() + PATIENCE;
    loop {
        let contacts = crm.contacts().await;
        if let Some(contact) = contacts.get("L1") {
            assert_eq!(contact["properties"]["leadflow_version"], "4");
            break;
        }
        assert!(Instant::now() < deadline, "the held write was never applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = crm.stats().await;
    assert_eq!((stats.late_applies, stats.applied_writes), (1, 1));
}

#[tokio::test]
async fn injected_failures_and_dropped_connections_keep_their_versioned_meaning() {
    let crm = Crm::leadflow().await;
    crm.set_faults(json!({"errorRate": 1.0})).await;
    let failed = crm.upsert(json!([input("L1", json!({}))])).await;
    assert_eq!(failed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(crm.contacts().await, json!({}));
    assert_eq!(crm.get(PROPERTIES_PATH).await.status, StatusCode::OK, "setup calls are not failed");

    crm.set_faults(json!({"dropAfterWriteRate": 1.0})).await;
    let sent = crm
        .client
        .post(format!("{}{UPSERT_PATH}", crm.base))
        .json(&json!({"inputs": [input("L1", json!({}))]}));
    let error = sent.send().await.expect_err("the connection should have been dropped");
    assert!(error.is_request() && !error.is_timeout(), "{error:?}");
    assert!(crm.contacts().await.get("L1").is_some());
    let stats = crm.stats().await;
    assert_eq!((stats.injected_errors, stats.dropped_connections), (1, 1));
}

#[tokio::test]
async fn admin_precreates_properties_and_reset_restores_the_start() {
    let crm = Crm::start(Settings::hubspot(Faults::default())).await;
    let created = crm
        .post(
            "/__admin/properties",
            &json!([{"name": "leadflow_id", "hasUniqueValue": true}, {"name": "email"}]),
        )
        .await;
    assert_eq!(created.body, json!({"created": ["leadflow_id"]}));
    let misnamed = crm.post("/__admin/properties", &json!([{"name": "Leadflow"}])).await;
    assert_eq!(misnamed.status, StatusCode::BAD_REQUEST);
    assert_eq!(crm.upsert(json!([input("L1", json!({}))])).await.status, StatusCode::OK);
    let bad = crm
        .send(crm.client.put(format!("{}/__admin/faults", crm.base)).json(&json!({"lateApplyRate": 2})))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(crm.post("/__admin/reset", &json!({})).await.status, StatusCode::NO_CONTENT);
    assert_eq!(crm.contacts().await, json!({}));
    assert_eq!(crm.stats().await, HubSpotStats::default());
    assert_eq!(
        crm.upsert(json!([input("L1", json!({}))])).await.status,
        StatusCode::BAD_REQUEST,
        "back to the built-ins"
    );
}
