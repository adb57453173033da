//! Everything the HubSpot mode holds (properties, contacts, limits, faults, counters) and its
//! judgement of each request, apart from HTTP: time is passed in and answers are
//! `(status, body)`.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::super::faults::{ConflictAnswer, Faults};
use super::super::settings::Settings;
use super::super::state::on_sequence;
use super::contacts::{Conflict, Contacts, Outcome};
use super::errors::error_body;
use super::limits::{Budget, Limits, Policy};
use super::properties::{Properties, PropertySpec};
use super::upsert::Write;

/// The counters `GET /__admin/stats` returns in HubSpot mode, since start or the last reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HubSpotStats {
    /// Every non-admin request, whatever its answer.
    pub requests: u64,
    /// Batch upsert requests, whatever their answer.
    pub upserts: u64,
    /// Batch read requests, whatever their answer.
    pub batch_reads: u64,
    /// Inputs of upserts that reached the write (applied or conflicting).
    pub inputs: u64,
    /// Inputs applied to a contact.
    pub applied_writes: u64,
    /// Inputs refused because their email (or another unique value) belongs to another contact.
    pub conflicting_inputs: u64,
    /// Answers 409.
    pub conflicts: u64,
    /// Answers 207 (upserts with conflicts, reads with ids not found).
    pub multi_status: u64,
    /// Answers 400, property errors included.
    pub validation_errors: u64,
    /// Answers 400 about properties: one that does not exist, is read-only, or a bad value.
    pub property_errors: u64,
    /// Answers 401 or 403.
    pub unauthorized: u64,
    /// Answers 429 from the ten-second window.
    pub rate_limited: u64,
    /// Answers 429 from the daily limit.
    pub daily_rate_limited: u64,
    pub injected_errors: u64,
    pub dropped_connections: u64,
    /// Upserts held, then applied (whether or not the client was still there).
    pub late_applies: u64,
}

/// What kind of non-admin call a request is: faults other than the limits touch only data calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Upsert,
    Read,
    Properties,
}

#[derive(Debug)]
pub struct HubSpot {
    faults: Faults,
    token: Option<String>,
    precreated: Vec<PropertySpec>,
    pub limits: Limits,
    pub properties: Properties,
    pub contacts: Contacts,
    pub stats: HubSpotStats,
    /// Data calls admitted, valid upserts, and applied upserts since the faults were set:
    /// indices into the fault sequences.
    admitted: u64,
    valid_upserts: u64,
    applied: u64,
}

impl HubSpot {
    pub fn new(settings: &Settings, now: OffsetDateTime) -> Self {
        let properties = Properties::new(&settings.precreated_properties, now);
        HubSpot {
            faults: settings.faults.clone(),
            token: settings.token.clone(),
            precreated: settings.precreated_properties.clone(),
            limits: Limits::new(now.date()),
            contacts: Contacts::new(properties.unique_names()),
            properties,
            stats: HubSpotStats::default(),
            admitted: 0,
            valid_upserts: 0,
            applied: 0,
        }
    }

    /// Back to the start: the start's properties, no contacts, zero counters, default faults.
    pub fn reset(&mut self, now: OffsetDateTime) {
        let settings = Settings {
            token: self.token.take(),
            precreated_properties: std::mem::take(&mut self.precreated),
            ..Settings::hubspot(Faults::default())
        };
        *self = HubSpot::new(&settings, now);
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Replaces the faults and restarts the rolling window and fault sequences; the day's count,
    /// contacts and stats carry on.
    pub fn set_faults(&mut self, faults: Faults) {
        self.limits.restart_window();
        (self.faults, self.admitted, self.valid_upserts, self.applied) = (faults, 0, 0, 0);
    }

    /// Adds properties as if created by the API; answers which names were new.
    pub fn precreate(&mut self, specs: &[PropertySpec], now: OffsetDateTime) -> Vec<String> {
        let mut created = Vec::new();
        for spec in specs {
            if self.properties.add(spec, now) {
                if spec.has_unique_value {
                    self.contacts.add_unique(&spec.name);
                }
                created.push(spec.name.clone());
            }
        }
        created
    }

    /// The 401/403 a request gets before anything else, from its `Authorization` header.
    pub fn authorize(&mut self, call: Call, authorization: Option<&str>) -> Result<(), StatusCode> {
        self.stats.requests += 1;
        match call {
            Call::Upsert => self.stats.upserts += 1,
            Call::Read => self.stats.batch_reads += 1,
            Call::Properties => {}
        }
        let bearer = authorization.and_then(|value| value.strip_prefix("Bearer "));
        let refused = if self.token.as_deref().is_some_and(|token| bearer != Some(token)) {
            Some(StatusCode::UNAUTHORIZED)
        } else if self.faults.missing_scopes {
            Some(StatusCode::FORBIDDEN)
        } else {
            None
        };
        self.stats.unauthorized += u64::from(refused.is_some());
        refused.map_or(Ok(()), Err)
    }

    pub fn peek_budget(&mut self, now: Instant, today: time::Date) -> Budget {
        self.limits.peek(&self.faults, now, today)
    }

    /// After the latency: the limits, then (for data calls) the injected 503.
    pub fn admit(
        &mut self,
        call: Call,
        now: Instant,
        today: time::Date,
    ) -> (Budget, Option<(StatusCode, Value)>) {
        let (budget, refused) = self.limits.admit(&self.faults, now, today);
        if let Some(policy) = refused {
            match policy {
                Policy::Daily => self.stats.daily_rate_limited += 1,
                Policy::TenSecondly => self.stats.rate_limited += 1,
            }
            return (budget, Some((StatusCode::TOO_MANY_REQUESTS, policy.body())));
        }
        if call != Call::Properties {
            self.admitted += 1;
            if on_sequence(self.admitted, self.faults.error_rate) {
                self.stats.injected_errors += 1;
                let body = error_body("INTERNAL_ERROR", "injected failure", json!({}));
                return (budget, Some((StatusCode::SERVICE_UNAVAILABLE, body)));
            }
        }
        (budget, None)
    }

    /// Counts a 400 answer.
    pub fn rejected(&mut self, property_errors: bool) {
        self.stats.validation_errors += 1;
        self.stats.property_errors += u64::from(property_errors);
    }

    /// For a valid upsert: how long to hold it before applying, if it is to be applied late.
    pub fn late_delay(&mut self) -> Option<Duration> {
        self.valid_upserts += 1;
        on_sequence(self.valid_upserts, self.faults.late_apply_rate)
            .then(|| Duration::from_millis(self.faults.late_apply_delay_ms))
    }

    /// Applies a valid batch at `now`: the answer, and whether to drop the connection instead.
    pub fn apply(
        &mut self,
        writes: &[Write],
        now: OffsetDateTime,
        late: bool,
    ) -> ((StatusCode, Value), bool) {
        let all_or_nothing = self.faults.conflict_answer == ConflictAnswer::WholeBatch;
        let outcome = self.contacts.upsert(writes, now, all_or_nothing);
        self.stats.inputs += writes.len() as u64;
        self.stats.late_applies += u64::from(late);
        let answer = match outcome {
            Outcome::Refused(conflict) => {
                self.stats.conflicting_inputs += 1;
                (StatusCode::CONFLICT, conflict_body(&conflict))
            }
            Outcome::Applied { results, conflicts } => {
                self.stats.applied_writes += results.len() as u64;
                self.stats.conflicting_inputs += conflicts.len() as u64;
                upsert_answer(writes, results, conflicts)
            }
        };
        match answer.0 {
            StatusCode::CONFLICT => self.stats.conflicts += 1,
            StatusCode::MULTI_STATUS => self.stats.multi_status += 1,
            _ => {}
        }
        self.applied += 1;
        let drop = on_sequence(self.applied, self.faults.drop_after_write_rate);
        self.stats.dropped_connections += u64::from(drop);
        (answer, drop)
    }
}

fn conflict_message(conflict: &Conflict) -> String {
    format!("Contact already exists. Existing ID: {}", conflict.existing_id)
}

fn conflict_body(conflict: &Conflict) -> Value {
    error_body("CONFLICT", &conflict_message(conflict), json!({}))
}

/// 200 when every input applied; 409 when the lone input conflicted; else 207 with one error
/// per conflicting input. `results` come reversed: HubSpot does not promise their order.
fn upsert_answer(
    writes: &[Write],
    results: Vec<(super::contacts::Contact, bool)>,
    conflicts: Vec<Conflict>,
) -> (StatusCode, Value) {
    if let [only] = conflicts.as_slice()
        && results.is_empty()
        && writes.len() == 1
    {
        return (StatusCode::CONFLICT, conflict_body(only));
    }
    let results: Vec<Value> = results
        .iter()
        .rev()
        .map(|(contact, new)| {
            let mut json = contact.api_json(contact.all_properties());
            json["new"] = Value::Bool(*new);
            json
        })
        .collect();
    if conflicts.is_empty() {
        return (StatusCode::OK, json!({"status": "COMPLETE", "results": results}));
    }
    let errors: Vec<Value> = conflicts
        .iter()
        .map(|c| {
            let message = conflict_message(c);
            json!({"status": "error", "category": "CONFLICT", "message": message,
                   "context": {"id": [writes[c.input].id], "existingId": [c.existing_id]},
                   "errors": [{"message": message, "in": format!("inputs[{}].properties.{}", c.input, c.property)}]})
        })
        .collect();
    let body = json!({"status": "COMPLETE", "results": results, "numErrors": errors.len(), "errors": errors});
    (StatusCode::MULTI_STATUS, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(id: &str, email: &str) -> Write {
        Write {
            id_property: "leadflow_id".into(),
            id: id.into(),
            properties: vec![("email".into(), Some(email.into()))],
        }
    }

    fn crm(answer: ConflictAnswer) -> HubSpot {
        let faults = Faults { conflict_answer: answer, ..Faults::default() };
        HubSpot::new(&Settings::hubspot_with_leadflow_properties(faults), OffsetDateTime::UNIX_EPOCH)
    }

    const T: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

    #[test]
    fn a_lone_conflicting_input_is_a_409_and_more_are_a_207_listing_each() {
        let mut crm = crm(ConflictAnswer::MultiStatus);
        let ((status, _), _) = crm.apply(&[write("L1", "ada@example.com")], T, false);
        assert_eq!(status, StatusCode::OK);
        let ((status, body), _) = crm.apply(&[write("L2", "ada@example.com")], T, false);
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["message"], "Contact already exists. Existing ID: 1001");
        assert_eq!(body["category"], "CONFLICT");
        let batch =
            [write("L3", "bo@example.com"), write("L2", "ada@example.com"), write("L4", "cy@example.com")];
        let ((status, body), _) = crm.apply(&batch, T, false);
        assert_eq!(status, StatusCode::MULTI_STATUS);
        assert_eq!(body["numErrors"], 1);
        assert_eq!(body["errors"][0]["context"], json!({"id": ["L2"], "existingId": ["1001"]}));
        assert_eq!(body["errors"][0]["errors"][0]["in"], "inputs[1].properties.email");
        let ids: Vec<_> = body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["properties"]["leadflow_id"].clone())
            .collect();
        assert_eq!(ids, [json!("L4"), json!("L3")], "reversed");
        let two_failing = [write("L5", "ada@example.com"), write("L6", "bo@example.com")];
        assert_eq!(crm.apply(&two_failing, T, false).0.0, StatusCode::MULTI_STATUS);
        assert_eq!((crm.stats.conflicts, crm.stats.multi_status, crm.stats.conflicting_inputs), (1, 2, 4));
    }

    #[test]
    fn whole_batch_refuses_everything_on_any_conflict() {
        let mut crm = crm(ConflictAnswer::WholeBatch);
        crm.apply(&[write("L1", "ada@example.com")], T, false);
        let ((status, body), _) =
            crm.apply(&[write("L3", "bo@example.com"), write("L2", "ADA@example.com")], T, false);
        assert_eq!((status, body["category"].as_str()), (StatusCode::CONFLICT, Some("CONFLICT")));
        assert!(crm.contacts.find(Some("leadflow_id"), "L3").is_none());
        assert_eq!(crm.stats.applied_writes, 1);
    }

    #[test]
    fn a_token_is_checked_before_missing_scopes() {
        let settings = Settings { token: Some("t".into()), ..Settings::hubspot(Faults::default()) };
        let mut crm = HubSpot::new(&settings, T);
        assert_eq!(crm.authorize(Call::Upsert, None), Err(StatusCode::UNAUTHORIZED));
        assert_eq!(crm.authorize(Call::Upsert, Some("Bearer x")), Err(StatusCode::UNAUTHORIZED));
        assert_eq!(crm.authorize(Call::Upsert, Some("Bearer t")), Ok(()));
        crm.set_faults(Faults { missing_scopes: true, ..Faults::default() });
        assert_eq!(crm.authorize(Call::Read, Some("Bearer t")), Err(StatusCode::FORBIDDEN));
        assert_eq!((crm.stats.requests, crm.stats.unauthorized, crm.stats.batch_reads), (4, 3, 1));
    }
}
