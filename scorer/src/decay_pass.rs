//! The periodic decay pass. Decay from a lead's newest event up to now is applied when a score
//! is read; this pass is how a lead that has gone quiet gets announced when decay moves it down
//! a stage. It looks only at leads on the partitions this instance holds, writes a LeadScored
//! (`eventType: decay`) for each drop, then records the announced stage in the lead's document.
//!
//! At-least-once: a crash between the record and the mark announces the drop again. The
//! `eventId` (`decay:<stage>:<UTC date>`) is the same for the repeat, so readers can drop it.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use leadflow_core::contract::codec::SchemaCodec;
use leadflow_core::contract::records::{LeadScored, TopicRecord};
use leadflow_core::model::scoring;
use leadflow_core::stage::rules_feed::RuleBook;
use rdkafka::producer::{FutureProducer, FutureRecord};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics::ScorerMetrics;
use crate::store::LeadStore;

pub struct DecayPass {
    pub store: LeadStore,
    pub codec: Arc<SchemaCodec>,
    pub producer: FutureProducer,
    /// Each project's rules in force.
    pub rules: watch::Receiver<RuleBook>,
    pub assigned: Arc<Mutex<BTreeSet<i32>>>,
    pub interval: Duration,
    pub metrics: ScorerMetrics,
}

impl DecayPass {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            match self.once(OffsetDateTime::now_utc()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(leads = n, "decay pass announced stage drops"),
                Err(e) => tracing::warn!(error = %e, "decay pass failed; retried at the next interval"),
            }
        }
    }

    /// One pass as of `now`; returns how many drops it announced.
    pub async fn once(&self, now: OffsetDateTime) -> Result<usize, String> {
        let partitions: Vec<i32> = self.assigned.lock().expect("not poisoned").iter().copied().collect();
        if partitions.is_empty() {
            return Ok(0);
        }
        let book = self.rules.borrow().clone();
        // Projects differ in their grace periods: fetch the leads quiet for the shortest one, and
        // let each lead's own project's rules decide.
        let quiet_since = now - time::Duration::seconds_f64(book.shortest_grace_days() * 86_400.0);
        let candidates =
            self.store.decay_candidates(&partitions, quiet_since).await.map_err(|e| e.to_string())?;
        let mut announced = 0;
        for lead in candidates {
            let rules = book.for_project(&lead.project_id).rules;
            let Some(as_of) = lead.as_of_time() else { continue };
            let effective = scoring::decayed_score(lead.score, as_of, now, &rules.decay);
            let stage = rules.stage_for(effective);
            let last = lead.decayed_stage.unwrap_or(lead.stage);
            if stage >= last {
                continue;
            }
            let record = LeadScored {
                project_id: lead.project_id.clone(),
                lead_id: leadflow_core::contract::project::split_lead_key(&lead.key).1.to_owned(),
                event_id: format!("decay:{}:{}", stage_name(stage), now.date()),
                event_type: "decay".to_owned(),
                delta: round6(effective - lead.score),
                score: round6(effective),
                stage,
                previous_stage: Some(last),
                event_timestamp: now,
                rules_version: rules.version.clone(),
                processed_at: now,
                late: false,
                reason: Some("decay".to_owned()),
                lead_version: Some(lead.version),
                merged_into: None,
            };
            let value = self.codec.encode(&record).await.map_err(|e| e.to_string())?;
            self.producer
                .send(
                    FutureRecord::to(LeadScored::TOPIC).key(record.key().as_ref()).payload(&value),
                    Duration::from_secs(10),
                )
                .await
                .map_err(|(e, _)| e.to_string())?;
            self.store.mark_decayed(&lead, stage).await.map_err(|e| e.to_string())?;
            self.metrics.decay_announcements.inc();
            announced += 1;
        }
        Ok(announced)
    }
}

fn stage_name(stage: leadflow_core::contract::records::Stage) -> String {
    serde_json::to_value(stage).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
