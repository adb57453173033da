//! Live lead updates for `GET /api/stream`: the gateway tails the topics that change what a
//! lead looks like (enriched, scored, reviewed, delivered to the CRM) and fans each record out
//! to every connected client as a small JSON update.
//!
//! Each gateway process numbers the updates it has seen and keeps the newest
//! [`BUFFERED_UPDATES`] in memory. An update's SSE id is `<run>-<seq>`, where `run` names this
//! process's lifetime. A client that reconnects with `Last-Event-ID` gets every update it
//! missed if the same process still holds them; otherwise (another replica, a restart, or too
//! far behind) it gets a `reset` event first, and should re-read what it shows from the read
//! API. The tail reads `read_committed` from the end of each partition with no consumer group:
//! every replica sees every update, and a stream holds only what happened after it started.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use leadflow_core::contract::codec::SchemaCodec;
use leadflow_core::contract::records::{CrmDelivery, LeadEnriched, LeadReviewed, LeadScored};
use leadflow_core::contract::topics;
use leadflow_core::stage::kafka::KafkaConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// How many updates a process keeps for reconnecting clients.
pub const BUFFERED_UPDATES: usize = 10_000;

/// The topics whose records change what a lead looks like.
pub const TAILED_TOPICS: [&str; 4] =
    [topics::ENRICHED, topics::SCORES, topics::REVIEWS, topics::CRM_DELIVERIES];

/// One update, as sent: `id` is the SSE event id, `data` the JSON payload. `project` is the
/// project of the lead it is about: a stream carries only its caller's project's updates.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    pub seq: u64,
    pub project: String,
    pub data: Value,
}

/// Where a reconnecting client resumes.
#[derive(Debug, PartialEq)]
pub struct Resume {
    /// Updates the client missed that this process still holds, oldest first.
    pub missed: Vec<Arc<Update>>,
    /// True when the client may have missed updates this process cannot give it.
    pub reset: bool,
}

pub struct LiveUpdates {
    run: String,
    buffer: Mutex<Buffer>,
    sender: broadcast::Sender<Arc<Update>>,
}

struct Buffer {
    next_seq: u64,
    updates: VecDeque<Arc<Update>>,
}

impl LiveUpdates {
    pub fn new() -> Arc<Self> {
        let run = format!("{:x}", fastrand::u64(..));
        let (sender, _) = broadcast::channel(1024);
        Arc::new(LiveUpdates {
            run,
            buffer: Mutex::new(Buffer { next_seq: 1, updates: VecDeque::new() }),
            sender,
        })
    }

    pub fn event_id(&self, update: &Update) -> String {
        format!("{}-{}", self.run, update.seq)
    }

    /// Numbers, keeps and broadcasts one update of a lead of `project`.
    pub fn publish(&self, project: &str, data: Value) {
        let mut buffer = self.buffer.lock().expect("not poisoned");
        let update = Arc::new(Update { seq: buffer.next_seq, project: project.to_owned(), data });
        buffer.next_seq += 1;
        if buffer.updates.len() == BUFFERED_UPDATES {
            buffer.updates.pop_front();
        }
        buffer.updates.push_back(update.clone());
        // Sent while the buffer is locked, so a subscriber sees each update exactly once:
        // either in its resume backlog or on its receiver.
        let _ = self.sender.send(update);
    }

    /// Subscribes from `last_event_id` (the SSE header), or from now when there is none.
    pub fn subscribe(&self, last_event_id: Option<&str>) -> (Resume, broadcast::Receiver<Arc<Update>>) {
        let buffer = self.buffer.lock().expect("not poisoned");
        let receiver = self.sender.subscribe();
        let resume = match last_event_id {
            None => Resume { missed: Vec::new(), reset: false },
            Some(id) => match self.seq_of(id) {
                Some(seen) => {
                    let oldest_kept = buffer.updates.front().map_or(buffer.next_seq, |u| u.seq);
                    let missed = buffer.updates.iter().filter(|u| u.seq > seen).cloned().collect();
                    Resume { missed, reset: seen + 1 < oldest_kept }
                }
                None => Resume { missed: Vec::new(), reset: true },
            },
        };
        (resume, receiver)
    }

    /// The sequence number in an id of this run's; `None` for another run's or a malformed one.
    fn seq_of(&self, id: &str) -> Option<u64> {
        let (run, seq) = id.trim().rsplit_once('-')?;
        (run == self.run).then(|| seq.parse().ok()).flatten()
    }
}

/// The update a record makes, with its lead's project, or `None` for a record that does not
/// decode (the stage that reads it dead-letters it; the stream just skips it). `leadId` is the
/// bare lead id, as the caller's project knows it.
pub async fn update_of(codec: &SchemaCodec, topic: &str, value: &[u8]) -> Option<(String, Value)> {
    Some(match topic {
        topics::ENRICHED => {
            let r: LeadEnriched = codec.decode(value).await.ok()?;
            (
                r.project_id,
                json!({"kind": "enriched", "leadId": r.lead_id, "name": r.name, "status": r.status,
                   "countryCode": r.country_code, "probability": r.probability, "at": r.enriched_at.unix_timestamp()}),
            )
        }
        topics::SCORES => {
            let r: LeadScored = codec.decode(value).await.ok()?;
            (
                r.project_id,
                json!({"kind": "scored", "leadId": r.lead_id, "eventId": r.event_id, "eventType": r.event_type,
                   "score": r.score, "stage": r.stage, "previousStage": r.previous_stage}),
            )
        }
        topics::REVIEWS => {
            let r: LeadReviewed = codec.decode(value).await.ok()?;
            (r.project_id, json!({"kind": "reviewed", "leadId": r.lead_id, "decision": r.decision}))
        }
        topics::CRM_DELIVERIES => {
            let r: CrmDelivery = codec.decode(value).await.ok()?;
            (
                r.project_id,
                json!({"kind": "crm_sync", "leadId": r.lead_id, "version": r.version, "status": r.status,
                   "destination": r.destination}),
            )
        }
        _ => return None,
    })
}

/// Tails the topics from their end until shutdown, publishing an update per record.
pub async fn follow(
    kafka: KafkaConfig,
    codec: Arc<SchemaCodec>,
    updates: Arc<LiveUpdates>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(500);
    while !shutdown.is_cancelled() {
        match tail(&kafka, &codec, &updates, &shutdown).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "cannot tail the lead topics for live updates")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.cancelled() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

async fn tail(
    kafka: &KafkaConfig,
    codec: &SchemaCodec,
    updates: &LiveUpdates,
    shutdown: &CancellationToken,
) -> Result<(), rdkafka::error::KafkaError> {
    let mut cfg =
        leadflow_core::stage::kafka::consumer_config(kafka, &format!("gateway-live-{:x}", fastrand::u64(..)));
    cfg.set("isolation.level", "read_committed");
    let consumer: StreamConsumer = cfg.create()?;
    let mut assignment = TopicPartitionList::new();
    for topic in TAILED_TOPICS {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            assignment.add_partition_offset(topic, partition.id(), Offset::End)?;
        }
    }
    consumer.assign(&assignment)?;
    tracing::info!(topics = %TAILED_TOPICS.join(","), "tailing lead topics for live updates");
    loop {
        let message = tokio::select! {
            message = consumer.recv() => message?,
            _ = shutdown.cancelled() => return Ok(()),
        };
        if let Some(value) = message.payload()
            && let Some((project, update)) = update_of(codec, message.topic(), value).await
        {
            updates.publish(&project, update);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published(updates: &LiveUpdates, n: usize) {
        for i in 0..n {
            updates.publish("default", json!({ "n": i }));
        }
    }

    #[test]
    fn a_reconnecting_client_gets_exactly_what_it_missed() {
        let updates = LiveUpdates::new();
        published(&updates, 5);
        let (resume, _) = updates.subscribe(None);
        assert_eq!(resume, Resume { missed: Vec::new(), reset: false }, "a new client starts from now");
        let seen = updates.event_id(&Update { seq: 3, project: "default".into(), data: Value::Null });
        let (resume, mut receiver) = updates.subscribe(Some(&seen));
        assert!(!resume.reset);
        assert_eq!(resume.missed.iter().map(|u| u.seq).collect::<Vec<_>>(), vec![4, 5]);
        updates.publish("default", json!({ "n": 5 }));
        assert_eq!(receiver.try_recv().unwrap().seq, 6, "then live updates follow, none twice");
    }

    #[test]
    fn an_id_this_process_cannot_serve_asks_the_client_to_reset() {
        let updates = LiveUpdates::new();
        published(&updates, BUFFERED_UPDATES + 10);
        let too_old = updates.event_id(&Update { seq: 2, project: "default".into(), data: Value::Null });
        let (resume, _) = updates.subscribe(Some(&too_old));
        assert!(resume.reset, "updates 3..=10 are gone");
        assert_eq!(resume.missed.len(), BUFFERED_UPDATES, "what is kept is still sent");
        for other in ["0-5", "garbage", ""] {
            let (resume, _) = updates.subscribe(Some(other));
            assert!(resume.reset && resume.missed.is_empty(), "{other:?}");
        }
        let newest = updates.event_id(&Update {
            seq: (BUFFERED_UPDATES + 10) as u64,
            project: "default".into(),
            data: Value::Null,
        });
        assert_eq!(updates.subscribe(Some(&newest)).0, Resume { missed: Vec::new(), reset: false });
    }
}
