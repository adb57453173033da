//! One batch of submitted names in, one LeadEnriched per name out (plus a dead letter for each
//! record that cannot be read, and for each name the API could not answer).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use leadflow_core::contract::codec::{CodecError, SchemaCodec};
use leadflow_core::contract::records::{LeadEnriched, NameSubmitted, PipelineStage, TopicRecord};
use leadflow_core::stage::exactly_once::{BatchProcessor, InputRecord, OutputRecord, ProcessError};
use leadflow_core::stage::pause::PauseSignal;
use time::OffsetDateTime;

use crate::countries::country_name;
use crate::metrics::EnricherMetrics;
use crate::predictor::{Lookup, Predictor};
use crate::rules::{self, Verdict};

pub struct EnrichProcessor {
    pub codec: Arc<SchemaCodec>,
    pub predictor: Predictor,
    pub verified_threshold: f64,
    pub provider: String,
    pub metrics: EnricherMetrics,
}

enum Item<'a> {
    Name(&'a InputRecord, NameSubmitted),
    Poison(&'a InputRecord, &'static str, String),
}

impl BatchProcessor for EnrichProcessor {
    async fn process(
        &self,
        batch: &[InputRecord],
        pause: &PauseSignal,
    ) -> Result<Vec<OutputRecord>, ProcessError> {
        let mut items = Vec::with_capacity(batch.len());
        for record in batch {
            let Some(value) = record.value.as_deref() else {
                items.push(Item::Poison(record, "malformed", "a record with no value".to_owned()));
                continue;
            };
            match self.codec.decode::<NameSubmitted>(value).await {
                Ok(name) => items.push(Item::Name(record, name)),
                Err(CodecError::Poison { kind, message }) => {
                    items.push(Item::Poison(record, kind.as_str(), message))
                }
                Err(e) => return Err(ProcessError::Transient(e.to_string())),
            }
        }
        let keys: Vec<String> = items
            .iter()
            .filter_map(|item| match item {
                Item::Name(_, name) => rules::lookup_key(&name.name),
                Item::Poison(..) => None,
            })
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let lookups = self.predictor.predict(&keys, pause).await;

        let now = OffsetDateTime::now_utc();
        let mut outputs = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Item::Name(record, name) => {
                    let (verdict, failure) = self.judge(&name, &lookups);
                    if let Some(error) = failure {
                        outputs.push(
                            self.dead_letter(record, rules::REASON_ENRICHMENT_FAILED, error, now).await?,
                        );
                    }
                    self.metrics
                        .names_processed
                        .with_label_values(&[status_label(&verdict), verdict.reason.unwrap_or("none")])
                        .inc();
                    let enriched = LeadEnriched {
                        lead_id: name.lead_id,
                        name: name.name,
                        email: name.email,
                        company: name.company,
                        country_name: verdict
                            .country_code
                            .as_deref()
                            .and_then(country_name)
                            .map(str::to_owned),
                        country_code: verdict.country_code,
                        probability: verdict.probability,
                        status: verdict.status,
                        reason: verdict.reason.map(str::to_owned),
                        provider: self.provider.clone(),
                        enriched_at: now,
                    };
                    match self.codec.encode(&enriched).await {
                        Ok(value) => outputs.push(OutputRecord {
                            topic: LeadEnriched::TOPIC,
                            key: enriched.lead_id,
                            value,
                        }),
                        Err(CodecError::Poison { kind, message }) => {
                            outputs.push(self.dead_letter(record, kind.as_str(), message, now).await?)
                        }
                        Err(e) => return Err(ProcessError::Transient(e.to_string())),
                    }
                }
                Item::Poison(record, kind, message) => {
                    outputs.push(self.dead_letter(record, kind, message, now).await?)
                }
            }
        }
        Ok(outputs)
    }
}

impl EnrichProcessor {
    /// The verdict for one name, and the error when the API could not be asked.
    fn judge(&self, name: &NameSubmitted, lookups: &HashMap<String, Lookup>) -> (Verdict, Option<String>) {
        let Some(key) = rules::lookup_key(&name.name) else { return (rules::no_prediction(), None) };
        match lookups.get(&key) {
            Some(Lookup::Predicted(countries)) => (rules::verdict(countries, self.verified_threshold), None),
            Some(Lookup::Failed(error)) => (rules::enrichment_failed(), Some(error.clone())),
            None => (rules::enrichment_failed(), Some(format!("no prediction was fetched for {key:?}"))),
        }
    }

    async fn dead_letter(
        &self,
        record: &InputRecord,
        error_kind: &str,
        error: String,
        now: OffsetDateTime,
    ) -> Result<OutputRecord, ProcessError> {
        self.metrics.dlq_records.with_label_values(&[error_kind]).inc();
        record.dead_letter(&self.codec, PipelineStage::Enricher, error_kind, error, now).await
    }
}

fn status_label(verdict: &Verdict) -> &'static str {
    match verdict.status {
        leadflow_core::contract::records::EnrichmentStatus::Verified => "verified",
        leadflow_core::contract::records::EnrichmentStatus::ToCheck => "to_check",
    }
}
