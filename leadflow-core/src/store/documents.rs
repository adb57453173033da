//! Every MongoDB document shape and collection name, in one place: the writer of a collection
//! and each of its readers use the same type, so they cannot drift apart. Each section names
//! the collection's writer and readers.
//!
//! Only the shapes (and the domain logic on them) live here; the I/O — queries, indexes,
//! transactions — stays in each service's store.

use mongodb::bson;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::contract::project;
use crate::contract::records::{LeadScored, RecordPosition, Stage};
use crate::model::read_model::{LeadStatus, LeadView};
use crate::model::scoring::{Checkpoint, LeadState, ScoringEvent, ScoringRules};

// ----- `leads` ------------------------------------------------------------------------------

/// The lead read model, one [`LeadViewDoc`] per lead. Written by the crm-sink
/// (`crm-sink/src/store.rs`), which also reads it back (its batches, reconcile, the out-of-sync
/// gauge); read by the gateway's read API (`ingest-gateway/src/read/read_store.rs`).
pub const LEADS: &str = "leads";

/// A `leads` document: the [`LeadView`] plus a `revision` for optimistic concurrency and two
/// flags kept in step with the view so that reconcile and the out-of-sync gauge are index
/// lookups (`outOfSync`, `refused`).
///
/// It also holds fields derived from the view for the read API, which filters and sorts on them:
/// `status` (the effective status: a review's decision, else the enrichment's), `score` (the
/// scored score, 0 when unscored), `lastActivityMs` (the newest of the last event, the
/// enrichment and the review, as epoch milliseconds: RFC 3339 text does not sort by instant) and
/// `nameLower` (the lower-cased name, for case-insensitive search). They are recomputed from the
/// view on every write ([`LeadViewDoc::from_view`]), never read back into it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadViewDoc {
    #[serde(flatten)]
    pub view: LeadView,
    pub revision: u64,
    #[serde(rename = "outOfSync")]
    pub out_of_sync: bool,
    /// The CRM refused the current version.
    pub refused: bool,
    /// Derived from the view for the read API (see the type's doc). Defaulted when reading a
    /// document written before they existed; the next write of the lead stores them.
    #[serde(default)]
    pub status: Option<LeadStatus>,
    #[serde(default)]
    pub score: f64,
    #[serde(rename = "lastActivityMs", default)]
    pub last_activity_ms: i64,
    #[serde(rename = "nameLower", default)]
    pub name_lower: Option<String>,
    /// `crmCheckAfter` as epoch milliseconds (0: none), for the crm-sink's check of contacts a
    /// late write may have rolled back: an index range, where RFC 3339 text would not sort.
    #[serde(rename = "checkCrmAtMs", default)]
    pub check_crm_at_ms: i64,
}

impl LeadViewDoc {
    /// The document of `view` at `revision`, its flags and derived fields computed from it.
    pub fn from_view(view: LeadView, revision: u64) -> Self {
        LeadViewDoc {
            out_of_sync: view.out_of_sync(),
            refused: view.refused_at_current_version(),
            status: view.status(),
            score: view.scoring.as_ref().map_or(0.0, |s| s.score),
            last_activity_ms: view
                .last_activity_at()
                .map_or(0, |at| (at.unix_timestamp_nanos() / 1_000_000) as i64),
            name_lower: view.enrichment.as_ref().map(|e| e.name.to_lowercase()),
            check_crm_at_ms: view
                .crm_check_after
                .map_or(0, |at| (at.unix_timestamp_nanos() / 1_000_000) as i64),
            view,
            revision,
        }
    }
}

// ----- `lead_scores` ------------------------------------------------------------------------

/// The scorer's state of each lead, one [`LeadDoc`] per lead. Written by the scorer
/// (`scorer/src/store.rs`: its batches and the decay pass), which also reads it back; read by the
/// gateway's read API (`ingest-gateway/src/read/read_store.rs`: a lead's score and newest event).
pub const LEAD_SCORES: &str = "lead_scores";

/// The shape of a [`LeadDoc`] that keeps a bounded state: `tail` and `base`.
pub const LEAD_DOC_SCHEMA: u32 = 2;

/// One event of a lead, in [`LeadDoc::tail`] (and in a v1 document's `events`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppliedEvent {
    #[serde(rename = "eventId")]
    pub event_id: String,
    #[serde(rename = "eventType")]
    pub event_type: String,
    /// RFC 3339, exactly as the event carried it (a BSON date would cut it to milliseconds).
    pub timestamp: String,
}

impl AppliedEvent {
    /// The event as scoring takes it: an unreadable timestamp (never written by the scorer) is
    /// the epoch.
    pub fn to_scoring(&self) -> ScoringEvent {
        ScoringEvent {
            event_id: self.event_id.clone(),
            event_type: self.event_type.clone(),
            timestamp: parse_timestamp(&self.timestamp),
        }
    }

    pub fn from_scoring(event: &ScoringEvent) -> Self {
        AppliedEvent {
            event_id: event.event_id.clone(),
            event_type: event.event_type.clone(),
            timestamp: format_timestamp(event.timestamp),
        }
    }
}

/// [`LeadDoc::base`]: the fold state right after the newest event that left the tail
/// ([`Checkpoint`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointDoc {
    #[serde(flatten)]
    pub event: AppliedEvent,
    pub score: f64,
    /// Per capped type, the events on the event's UTC day up to and including it.
    #[serde(default)]
    pub counts: BTreeMap<String, u32>,
}

/// A `lead_scores` document: a lead's scoring state, bounded in size whatever its event count
/// (see `leadflow_core::model::scoring::LeadState`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadDoc {
    /// The lead's key (`contract::project::lead_key`): its project and its id.
    #[serde(rename = "_id")]
    pub key: String,
    /// The lead's project, beside the key so that the decay pass finds each project's rules.
    /// Absent in documents written before projects: the default project.
    #[serde(rename = "projectId", default = "project::default_project")]
    pub project_id: String,
    /// Applied events so far: the optimistic-concurrency check of every write.
    pub version: u64,
    /// The Kafka partition of the lead's key, so a decay pass can pick the leads it owns.
    pub partition: i32,
    /// Version 1 documents kept every applied event here, in the order applied. Read only to
    /// convert such a document ([`LeadDoc::state`]); never written again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<AppliedEvent>,
    /// [`LEAD_DOC_SCHEMA`]; absent in version 1 documents.
    #[serde(default = "schema_v1")]
    pub schema: u32,
    /// The lead's newest events after `base`, at most `scoring.tail_events`, in history order.
    #[serde(default)]
    pub tail: Vec<AppliedEvent>,
    /// Absent while no event has left the tail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<CheckpointDoc>,
    pub score: f64,
    pub stage: Stage,
    /// The newest event timestamp: the score is as of then.
    #[serde(rename = "asOf")]
    pub as_of: String,
    /// `asOf` as epoch milliseconds, for the decay pass's range query: RFC 3339 text with an
    /// offset does not sort by instant. Absent (0) in documents written before it was kept.
    #[serde(rename = "asOfMs", default)]
    pub as_of_ms: i64,
    #[serde(rename = "rulesVersion")]
    pub rules_version: String,
    /// The stage last announced by the decay pass, so it announces each drop once.
    #[serde(rename = "decayedStage", default)]
    pub decayed_stage: Option<Stage>,
    /// Set once the lead has merged into another (an identity merge): its applied events were
    /// moved there, and its later events are forwarded there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<MergeDoc>,
}

/// [`LeadDoc::merged`]: where a lead went, and the merge as it was done, so that a batch redone
/// from the merge record emits the same records again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeDoc {
    /// The lead id it merged into (of the same project).
    pub into: String,
    /// Where the merge record was read.
    pub source: RecordPosition,
    /// The LeadScored that closed the lead (score 0, `mergedInto`).
    pub record: LeadScored,
}

fn schema_v1() -> u32 {
    1
}

impl LeadDoc {
    /// The empty state of the lead whose records carry `key`.
    pub fn new(key: &str, partition: i32) -> Self {
        LeadDoc {
            key: key.to_owned(),
            project_id: project::split_lead_key(key).0.to_owned(),
            version: 0,
            partition,
            events: Vec::new(),
            schema: LEAD_DOC_SCHEMA,
            tail: Vec::new(),
            base: None,
            score: 0.0,
            stage: Stage::Cold,
            as_of: String::new(),
            as_of_ms: 0,
            rules_version: String::new(),
            decayed_stage: None,
            merged: None,
        }
    }

    /// The lead's scoring state. A version 1 document's events are folded once under `rules`,
    /// keeping the `k` newest as the tail; [`LeadDoc::set_state`] then writes it as version 2.
    pub fn state(&self, rules: &ScoringRules, k: usize) -> LeadState {
        if self.schema < LEAD_DOC_SCHEMA {
            let events: Vec<ScoringEvent> = self.events.iter().map(AppliedEvent::to_scoring).collect();
            return LeadState::from_events(rules, &events, k);
        }
        LeadState {
            base: self.base.as_ref().map(|base| Checkpoint {
                event: base.event.to_scoring(),
                score: base.score,
                counts: base.counts.clone(),
            }),
            tail: self.tail.iter().map(AppliedEvent::to_scoring).collect(),
            score: self.score,
            stage: self.stage,
        }
    }

    /// Whether `event` can have been applied to this lead before, so that `score_history` must
    /// be asked: its eventId is in the tail, or it is not newer than the tail's newest (a late
    /// event, a redelivery, or one that was too late). An event newer than every event applied,
    /// whose id the tail does not hold, can only repeat an id that has left the tail under
    /// another timestamp; the history's unique index catches that one at the save. A version 1
    /// document holds no tail yet, so every event of it is asked about.
    pub fn may_have_applied(&self, event: &ScoringEvent) -> bool {
        if self.schema < LEAD_DOC_SCHEMA {
            return !self.events.is_empty();
        }
        let Some(newest) = self.tail.last() else { return self.base.is_some() };
        let newest = newest.to_scoring();
        self.tail.iter().any(|held| held.event_id == event.event_id)
            || (event.timestamp, &event.event_id, &event.event_type)
                <= (newest.timestamp, &newest.event_id, &newest.event_type)
    }

    /// Stores `state` as this document's (version 2, without a version 1 event list).
    pub fn set_state(&mut self, state: &LeadState) {
        self.events = Vec::new();
        self.schema = LEAD_DOC_SCHEMA;
        self.tail = state.tail.iter().map(AppliedEvent::from_scoring).collect();
        self.base = state.base.as_ref().map(|base| CheckpointDoc {
            event: AppliedEvent::from_scoring(&base.event),
            score: base.score,
            counts: base.counts.clone(),
        });
        self.score = state.score;
        self.stage = state.stage;
        self.as_of = state.as_of().map(format_timestamp).unwrap_or_default();
        self.as_of_ms = state.as_of().map_or(0, |at| (at.unix_timestamp_nanos() / 1_000_000) as i64);
    }

    /// [`LeadDoc::as_of`] as a time; `None` before the first event.
    pub fn as_of_time(&self) -> Option<OffsetDateTime> {
        OffsetDateTime::parse(&self.as_of, &Rfc3339).ok()
    }
}

/// RFC 3339 with the offset the time carries.
fn format_timestamp(timestamp: OffsetDateTime) -> String {
    timestamp.format(&Rfc3339).expect("a timestamp of a valid event formats as RFC 3339")
}

/// An unreadable timestamp (never written by the scorer) is the epoch.
fn parse_timestamp(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

// ----- `score_history` ----------------------------------------------------------------------

/// The scorer's audit trail, append-only, one [`HistoryDoc`] per applied event, unique on
/// `(leadId, eventId)`, where `leadId` is the lead's key (project and id), so that eventIds are
/// unique per lead of a project, and indexed on `(leadId, ts)`. Written by the scorer
/// (`scorer/src/store.rs`), which reads it back for "is this event applied?" and the records of
/// redelivered events; read by the gateway's read API (`ingest-gateway/src/read/read_store.rs`:
/// a lead's history and velocity).
pub const SCORE_HISTORY: &str = "score_history";

/// A `score_history` document: the record an applied event produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryDoc {
    /// The lead's key (`contract::project::lead_key`).
    #[serde(rename = "leadId")]
    pub lead_key: String,
    #[serde(rename = "eventId")]
    pub event_id: String,
    /// The lead's version once this event was applied: processing order.
    pub seq: u64,
    /// The event's timestamp as epoch nanoseconds ([`HistoryDoc::ts_of`]), which sorts by
    /// instant (the RFC 3339 text keeps the client's offset). Absent in entries written before it
    /// was kept: [`HistoryDoc::timestamp_nanos`] falls back to the record's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<i64>,
    pub record: LeadScored,
    /// Where the event was read. A later read of the same `eventId` from here is a redelivery
    /// (the record is emitted again); from anywhere else, a client's repeat (nothing is).
    /// Absent in entries written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<RecordPosition>,
}

impl HistoryDoc {
    /// `timestamp` as the `ts` of an entry: epoch nanoseconds, held at the ends of `i64` (years
    /// 1677 and 2262) so that any timestamp has one.
    pub fn ts_of(timestamp: OffsetDateTime) -> i64 {
        let nanos = timestamp.unix_timestamp_nanos();
        i64::try_from(nanos).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX })
    }

    /// The event's timestamp as epoch nanoseconds: `ts`, or the record's for an older entry.
    pub fn timestamp_nanos(&self) -> i64 {
        self.ts.unwrap_or_else(|| Self::ts_of(self.record.event_timestamp))
    }
}

// ----- `nationalize_cache` ------------------------------------------------------------------

/// The enricher's name → country prediction cache, one [`PredictionDoc`] per (project, name),
/// expiring after a TTL on `fetchedAt`. Written and read only by the enricher
/// (`enricher/src/cache.rs`). This is the name in the enricher's defaults; its
/// `cache.collection` setting may change it.
pub const NATIONALIZE_CACHE: &str = "nationalize_cache";

/// A `nationalize_cache` document: the countries predicted for a name in one project, and when
/// they were fetched. Scoped by project so that one tenant's lookups never reveal or shape
/// another's (see `enricher/src/cache.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionDoc {
    /// [`PredictionDoc::id_of`] the project and the name.
    #[serde(rename = "_id")]
    pub id: String,
    /// The project that asked; absent in documents written before projects: the default one.
    #[serde(rename = "projectId", default = "project::default_project")]
    pub project_id: String,
    pub countries: Vec<PredictedCountry>,
    #[serde(rename = "fetchedAt")]
    pub fetched_at: bson::DateTime,
}

impl PredictionDoc {
    /// The `_id` of `name`'s prediction in `project`: the bare name in the default project (as
    /// before projects, so its stored predictions stay found), `<project>:<name>` elsewhere. A
    /// default-project name that itself holds a `:` is written `default:<name>`, so that no
    /// default name can take the id of another project's name (a project id never holds `:`).
    pub fn id_of(project: &str, name: &str) -> String {
        if project::is_default_project(project) && !name.contains(':') {
            name.to_owned()
        } else {
            format!("{project}:{name}")
        }
    }
}

/// One country of a [`PredictionDoc`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictedCountry {
    #[serde(rename = "countryId")]
    pub country_id: String,
    pub probability: f64,
}

// ----- `budgets` ----------------------------------------------------------------------------

/// Usage of budgets shared by every replica of a service (an API's daily quota, a CRM's rate
/// limit), one [`BudgetDoc`] per budget and window, expiring on `expiresAt` (a TTL index).
/// Written and read by `leadflow_core::store::shared_budget` on behalf of the enricher
/// (`enricher/src/quota.rs`, the nationalize daily quota) and the crm-sink (its CRM budget).
pub const BUDGETS: &str = "budgets";

/// A `budgets` document: how much of one window of one budget has been taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetDoc {
    /// [`BudgetDoc::id_of`] the budget's name and the window's id.
    #[serde(rename = "_id")]
    pub id: String,
    /// Taken so far in the window; never above the window's limit.
    pub used: i64,
    /// When the TTL index may drop the document: after its window has ended.
    #[serde(rename = "expiresAt")]
    pub expires_at: bson::DateTime,
}

impl BudgetDoc {
    /// `<budget name>/<window id>`.
    pub fn id_of(name: &str, window: &str) -> String {
        format!("{name}/{window}")
    }
}

// ----- `automation_leads` -------------------------------------------------------------------

/// What the automator knows of each lead, one [`AutomationLeadDoc`] per lead: the facts its
/// rules' conditions compare before and after a record. Written and read by the automator only
/// (`automator/src/store.rs`).
pub const AUTOMATION_LEADS: &str = "automation_leads";

/// The most event times an [`AutomationLeadDoc`] keeps for its 24-hour velocity: a velocity
/// condition asks for at most [`crate::model::automation::MAX_VELOCITY_EVENTS`].
pub const MAX_RECENT_EVENTS: usize = crate::model::automation::MAX_VELOCITY_EVENTS as usize;

/// An `automation_leads` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutomationLeadDoc {
    /// The lead key (`contract::project::lead_key`).
    #[serde(rename = "_id")]
    pub key: String,
    pub stage: Option<Stage>,
    pub score: Option<f64>,
    /// The enricher's status, from the lead's newest LeadEnriched.
    pub status: Option<crate::contract::records::EnrichmentStatus>,
    /// A person's newest decision (LeadReviewed), which overrides the enricher's status.
    #[serde(default)]
    pub review: Option<crate::contract::records::ReviewDecision>,
    pub name: Option<String>,
    /// The event times (epoch ms) of the lead's scored events in the 24 hours up to its newest,
    /// oldest first, at most [`MAX_RECENT_EVENTS`].
    #[serde(default)]
    pub recent_events_ms: Vec<i64>,
    /// The newest offset of the lead's partition applied here, per input topic: a record at or
    /// below it is a redelivery, applied already. -1: none yet.
    pub scores_offset: i64,
    pub enriched_offset: i64,
    #[serde(default = "no_offset")]
    pub reviews_offset: i64,
    /// Optimistic concurrency: a save matches the version it read.
    pub version: u64,
}

fn no_offset() -> i64 {
    -1
}

impl AutomationLeadDoc {
    /// The status the lead has now: a person's decision if there is one (a rejected lead is not
    /// verified, counted as To Check), else the enricher's, as the read model has it.
    pub fn effective_status(&self) -> Option<crate::contract::records::EnrichmentStatus> {
        use crate::contract::records::{EnrichmentStatus, ReviewDecision};
        match self.review {
            Some(ReviewDecision::Verified) => Some(EnrichmentStatus::Verified),
            Some(ReviewDecision::Rejected) => Some(EnrichmentStatus::ToCheck),
            None => self.status,
        }
    }

    pub fn new(key: &str) -> Self {
        AutomationLeadDoc {
            key: key.to_owned(),
            stage: None,
            score: None,
            status: None,
            review: None,
            name: None,
            recent_events_ms: Vec::new(),
            scores_offset: -1,
            enriched_offset: -1,
            reviews_offset: -1,
            version: 0,
        }
    }
}

// ----- `automation_executions` --------------------------------------------------------------

/// Every execution of an automation rule, one [`ExecutionDoc`] per execution key (project,
/// rule, lead, UTC day): the `_id` makes a second execution of a key impossible. Written by the
/// automator, in the MongoDB transaction that precedes its Kafka transaction; read by the
/// automator (a redone batch re-emits the stored record) and the gateway's
/// `GET /api/automations/executions`.
pub const AUTOMATION_EXECUTIONS: &str = "automation_executions";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionDoc {
    /// The execution key.
    #[serde(rename = "_id")]
    pub key: String,
    pub project_id: String,
    pub rule_id: String,
    pub lead_key: String,
    /// `executedAt` as epoch ms, for the newest-first listing.
    pub executed_at_ms: i64,
    /// Where the trigger was read: a batch redone from the same offset emits `record` again.
    pub source: RecordPosition,
    pub record: crate::contract::records::AutomationExecuted,
}

// ----- `webhook_endpoints` ------------------------------------------------------------------

/// Webhook subscriptions, one [`WebhookEndpointDoc`] each. Written by the gateway
/// (`/api/webhooks`) and by the automator (an endpoint's health, disabling); read by both.
pub const WEBHOOK_ENDPOINTS: &str = "webhook_endpoints";

/// A `webhook_endpoints` document. Its `Debug` hides the secret.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEndpointDoc {
    /// A UUID: a slug, as a rule's `subscriptionId` must be.
    #[serde(rename = "_id")]
    pub id: String,
    pub project_id: String,
    pub url: String,
    /// The event kinds it takes (`model::webhook::EventKind` names).
    pub event_kinds: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// `whsec_…`, shown once when the subscription is made and never answered again.
    pub secret: String,
    pub enabled: bool,
    #[serde(default)]
    pub disabled_reason: Option<String>,
    #[serde(default)]
    pub disabled_at_ms: Option<i64>,
    /// The first failed attempt since the last success (epoch ms): what the disable policy counts
    /// from.
    #[serde(default)]
    pub failing_since_ms: Option<i64>,
    pub created_at_ms: i64,
}

impl std::fmt::Debug for WebhookEndpointDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpointDoc")
            .field("id", &self.id)
            .field("project_id", &self.project_id)
            .field("url", &self.url)
            .field("event_kinds", &self.event_kinds)
            .field("secret", &"[redacted]")
            .field("enabled", &self.enabled)
            .field("disabled_reason", &self.disabled_reason)
            .field("failing_since_ms", &self.failing_since_ms)
            .finish_non_exhaustive()
    }
}

// ----- `webhook_deliveries` -----------------------------------------------------------------

/// The outbound delivery queue and its log, one [`DeliveryDoc`] per message. Written by the
/// automator: queued in the transaction of the execution that makes it, then each attempt; the
/// gateway writes the deliveries of `POST /api/webhooks/{id}/test` and requeues on replay. Read
/// by the automator's dispatcher (what is due, per endpoint) and by
/// `GET /api/webhooks/{id}/deliveries`.
pub const WEBHOOK_DELIVERIES: &str = "webhook_deliveries";

/// The most attempts a delivery keeps in its log: every attempt of the standard schedule, and
/// of a replay after it.
pub const MAX_LOGGED_ATTEMPTS: usize = 20;

/// A `webhook_deliveries` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryDoc {
    /// The message id, sent as `Webhook-Id` on every attempt.
    #[serde(rename = "_id")]
    pub id: String,
    /// The subscription, or [`DeliveryDoc::notify_sales_endpoint`] of the project.
    pub endpoint_id: String,
    pub project_id: String,
    pub target: DeliveryTarget,
    /// The lead's partition: the automator instance holding it sends the delivery. -1 for the
    /// gateway's test deliveries, which no automator sends.
    pub partition: i32,
    /// The event kind (`lead.entered_stage`, `webhook.test`, ...).
    pub kind: String,
    /// The exact body sent and signed.
    pub body: String,
    pub state: DeliveryState,
    /// Attempts made so far, replays included; a save matches it (optimistic concurrency).
    pub attempt_count: u32,
    /// Attempts made since the delivery was queued or last replayed: what the schedule counts.
    #[serde(default)]
    pub scheduled_attempts: u32,
    /// When the next attempt is due (epoch ms), while pending.
    pub next_attempt_at_ms: i64,
    #[serde(default)]
    pub attempts: Vec<DeliveryAttempt>,
    pub created_at_ms: i64,
    #[serde(default)]
    pub delivered_at_ms: Option<i64>,
    #[serde(default)]
    pub execution_key: Option<String>,
}

impl DeliveryDoc {
    /// The queue of a project's `notifySales` messages: one per project, since the incoming
    /// webhook is configuration, not a subscription.
    pub fn notify_sales_endpoint(project_id: &str) -> String {
        format!("notify-sales/{project_id}")
    }

    /// The queue of a project's emails, one per project for the same reason.
    pub fn email_endpoint(project_id: &str) -> String {
        format!("email/{project_id}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryTarget {
    /// A subscription: signed, to its URL.
    Webhook,
    /// The configured Slack-compatible incoming webhook.
    NotifySales,
    /// An email through the configured SMTP server.
    Email,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its next attempt (or for its endpoint to be enabled again).
    Pending,
    Delivered,
    /// Every attempt of the schedule failed; a replay queues it again.
    Failed,
    /// Its subscription was deleted.
    Dropped,
}

/// One attempt, as `GET /api/webhooks/{id}/deliveries` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryAttempt {
    pub attempted_at_ms: i64,
    /// `succeeded`, or `failed` (an answer other than 2xx), `timeout`, `unreachable`, `refused`
    /// (the URL's address is not allowed).
    pub outcome: String,
    #[serde(default)]
    pub response_code: Option<u16>,
    pub latency_ms: u64,
    /// What went wrong, bounded; never the secret or the body.
    #[serde(default)]
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::records::{EnrichmentStatus, LeadEnriched, LeadReviewed, ReviewDecision};
    use time::macros::datetime;

    #[test]
    fn the_derived_fields_follow_the_view() {
        let mut view = LeadView::new("lead-1", 0);
        let bare = bson::to_document(&LeadViewDoc::from_view(view.clone(), 1)).unwrap();
        assert_eq!(bare.get_f64("score").unwrap(), 0.0);
        assert_eq!(bare.get_i64("lastActivityMs").unwrap(), 0);
        assert!(bare.get("status").unwrap().as_null().is_some());

        view.apply_enriched(&LeadEnriched {
            project_id: "default".into(),
            lead_id: "lead-1".into(),
            name: "Ada ÉLAN".into(),
            email: None,
            company: None,
            country_code: None,
            country_name: None,
            probability: Some(0.3),
            status: EnrichmentStatus::ToCheck,
            reason: None,
            provider: "nationalize".into(),
            enriched_at: datetime!(2026-01-16 10:00:00.123 UTC),
        });
        let enriched = bson::to_document(&LeadViewDoc::from_view(view.clone(), 2)).unwrap();
        assert_eq!(enriched.get_str("status").unwrap(), "To Check");
        assert_eq!(enriched.get_str("nameLower").unwrap(), "ada élan");
        assert_eq!(
            enriched.get_i64("lastActivityMs").unwrap(),
            datetime!(2026-01-16 10:00:00.123 UTC).unix_timestamp() * 1000 + 123
        );

        view.apply_reviewed(&LeadReviewed {
            project_id: "default".into(),
            lead_id: "lead-1".into(),
            decision: ReviewDecision::Rejected,
            reviewer: None,
            note: None,
            reviewed_at: datetime!(2026-01-17 10:00 UTC),
        });
        let reviewed = LeadViewDoc::from_view(view, 3);
        let document = bson::to_document(&reviewed).unwrap();
        assert_eq!(document.get_str("status").unwrap(), "Rejected", "a review overrides the enrichment");
        assert_eq!(
            document.get_i64("lastActivityMs").unwrap(),
            datetime!(2026-01-17 10:00 UTC).unix_timestamp() * 1000
        );
        let back: LeadViewDoc = bson::from_document(document).unwrap();
        assert_eq!(back, reviewed, "the derived fields read back");
    }

    #[test]
    fn a_document_written_before_the_derived_fields_still_reads() {
        let mut document = bson::to_document(&LeadViewDoc::from_view(LeadView::new("lead-1", 2), 4)).unwrap();
        for field in ["status", "score", "lastActivityMs", "nameLower"] {
            document.remove(field);
        }
        let read: LeadViewDoc = bson::from_document(document).unwrap();
        assert_eq!((read.revision, read.view.partition), (4, 2));
    }

    #[test]
    fn a_lead_scores_document_keeps_its_field_names() {
        let rules = ScoringRules::seeds();
        let mut state = LeadState::default();
        let at = datetime!(2026-01-16 10:00:00.123456789 UTC);
        let events: Vec<ScoringEvent> = ["e1", "e2"]
            .iter()
            .map(|id| ScoringEvent { event_id: (*id).into(), event_type: "page_view".into(), timestamp: at })
            .collect();
        state.apply(&rules, &events, 1);
        let mut lead = LeadDoc::new("lead-1", 3);
        lead.set_state(&state);
        let document = bson::to_document(&lead).unwrap();
        let keys: Vec<&str> = document.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "_id",
                "projectId",
                "version",
                "partition",
                "schema",
                "tail",
                "base",
                "score",
                "stage",
                "asOf",
                "asOfMs",
                "rulesVersion",
                "decayedStage"
            ],
            "no events list"
        );
        let event = document.get_array("tail").unwrap()[0].as_document().unwrap();
        assert_eq!(
            event.keys().map(String::as_str).collect::<Vec<_>>(),
            ["eventId", "eventType", "timestamp"]
        );
        let base = document.get_document("base").unwrap();
        assert_eq!(
            base.keys().map(String::as_str).collect::<Vec<_>>(),
            ["eventId", "eventType", "timestamp", "score", "counts"]
        );
        let read = bson::from_document::<LeadDoc>(document).unwrap();
        assert_eq!(read, lead);
        assert_eq!(read.state(&rules, 1), state, "the state reads back as it was");
        assert_eq!(read.as_of_time(), Some(at));
    }

    #[test]
    fn a_version_1_document_reads_and_converts_to_the_fold_of_its_events() {
        let rules = ScoringRules::seeds();
        let mut v1 = bson::to_document(&LeadDoc::new("lead-1", 3)).unwrap();
        v1.remove("schema");
        v1.remove("tail");
        let events =
            [("e2", "signup", "2026-01-16T10:05:00+02:00"), ("e1", "page_view", "2026-01-16T10:00:00Z")];
        let events: Vec<AppliedEvent> = events
            .iter()
            .map(|(id, event_type, at)| AppliedEvent {
                event_id: (*id).into(),
                event_type: (*event_type).into(),
                timestamp: (*at).into(),
            })
            .collect();
        v1.insert("events", bson::to_bson(&events).unwrap());
        let read: LeadDoc = bson::from_document(v1).unwrap();
        assert_eq!((read.schema, read.events.len()), (1, 2));

        let state = read.state(&rules, 1);

        let scoring_events: Vec<ScoringEvent> = events.iter().map(AppliedEvent::to_scoring).collect();
        assert_eq!(state, LeadState::from_events(&rules, &scoring_events, 1));
        assert_eq!(state.score, crate::model::scoring::score(&rules, &scoring_events));
        assert_eq!(state.tail.len(), 1);
        let mut written = read.clone();
        written.set_state(&state);
        let document = bson::to_document(&written).unwrap();
        assert!(!document.contains_key("events"), "the v1 list is never written again");
        assert_eq!(document.get_i64("schema").unwrap(), i64::from(LEAD_DOC_SCHEMA));
    }

    #[test]
    fn only_events_that_can_repeat_one_applied_are_asked_about() {
        let rules = ScoringRules::seeds();
        let at = |minute: i64| datetime!(2026-01-16 10:00 UTC) + time::Duration::minutes(minute);
        let event = |id: &str, minute: i64| ScoringEvent {
            event_id: id.into(),
            event_type: "page_view".into(),
            timestamp: at(minute),
        };
        let fresh = LeadDoc::new("lead-1", 0);
        assert!(!fresh.may_have_applied(&event("e1", 0)), "a lead without events has applied none");

        let mut lead = LeadDoc::new("lead-1", 0);
        let applied: Vec<ScoringEvent> = (0..5).map(|i| event(&format!("e{i}"), i)).collect();
        lead.set_state(&LeadState::from_events(&rules, &applied, 3));
        assert!(!lead.may_have_applied(&event("e9", 9)), "newer than all, an id the tail lacks");
        assert!(lead.may_have_applied(&event("e4", 4)), "the newest again (a redelivery)");
        assert!(lead.may_have_applied(&event("e3", 20)), "an id the tail holds, whatever its time");
        assert!(lead.may_have_applied(&event("e0", 0)), "older than the tail: left it, or too late");
        assert!(lead.may_have_applied(&event("x", 3)), "late: may be a repeat of an evicted one");

        let mut v1 = lead.clone();
        (v1.schema, v1.events, v1.tail) = (1, v1.tail.clone(), Vec::new());
        assert!(v1.may_have_applied(&event("e9", 9)), "a version 1 document: always asked");
    }

    #[test]
    fn a_history_entry_s_ts_sorts_by_instant_and_any_timestamp_has_one() {
        let early = datetime!(2026-01-16 10:00 +02:00);
        let late = datetime!(2026-01-16 09:00 UTC);
        assert!(HistoryDoc::ts_of(early) < HistoryDoc::ts_of(late), "08:00Z is before 09:00Z");
        assert_eq!(HistoryDoc::ts_of(datetime!(1500-01-01 0:00 UTC)), i64::MIN);
        assert_eq!(HistoryDoc::ts_of(OffsetDateTime::UNIX_EPOCH), 0);
    }

    #[test]
    fn a_prediction_keeps_its_field_names() {
        let prediction = PredictionDoc {
            id: PredictionDoc::id_of("default", "ada"),
            project_id: "default".into(),
            countries: vec![PredictedCountry { country_id: "GB".into(), probability: 0.4 }],
            fetched_at: bson::DateTime::from_millis(1_700_000_000_000),
        };
        let document = bson::to_document(&prediction).unwrap();
        assert_eq!(
            document,
            bson::doc! {
                "_id": "ada",
                "projectId": "default",
                "countries": [{ "countryId": "GB", "probability": 0.4 }],
                "fetchedAt": bson::DateTime::from_millis(1_700_000_000_000),
            }
        );
        assert_eq!(bson::from_document::<PredictionDoc>(document).unwrap(), prediction);

        let mut before_projects = bson::to_document(&prediction).unwrap();
        before_projects.remove("projectId");
        let read: PredictionDoc = bson::from_document(before_projects).unwrap();
        assert_eq!(read.project_id, "default", "a document written before projects is the default's");
    }

    #[test]
    fn a_budget_keeps_its_field_names() {
        let budget = BudgetDoc {
            id: BudgetDoc::id_of("nationalize/daily", "2026-11-22"),
            used: 3,
            expires_at: bson::DateTime::from_millis(1_700_000_000_000),
        };
        let document = bson::to_document(&budget).unwrap();
        assert_eq!(
            document,
            bson::doc! {
                "_id": "nationalize/daily/2026-11-22",
                "used": 3i64,
                "expiresAt": bson::DateTime::from_millis(1_700_000_000_000),
            }
        );
        assert_eq!(bson::from_document::<BudgetDoc>(document).unwrap(), budget);
    }

    #[test]
    fn a_prediction_id_names_the_project_and_no_two_projects_share_one() {
        assert_eq!(PredictionDoc::id_of("default", "ada"), "ada");
        assert_eq!(PredictionDoc::id_of("acme", "ada"), "acme:ada");
        // A default-project name shaped like another project's id does not take it.
        assert_eq!(PredictionDoc::id_of("default", "acme:ada"), "default:acme:ada");
        assert_ne!(PredictionDoc::id_of("default", "acme:ada"), PredictionDoc::id_of("acme", "ada"));
    }
}
