//! One batch of submitted names in, one LeadEnriched per name out (plus a dead letter for each
//! record that cannot be read, and for each name the API could not answer).

use std::collections::{HashMap, HashSet};

use leadflow_core::contract::records::{LeadEnriched, NameSubmitted, PipelineStage};
use leadflow_core::stage::exactly_once::ProcessError;
use leadflow_core::stage::pause::PauseSignal;
use leadflow_core::stage::typed::{Decoded, Emit, Transform};
use time::OffsetDateTime;

use crate::cache::LookupKey;
use crate::countries::country_name;
use crate::metrics::EnricherMetrics;
use crate::predictor::{Lookup, Predictor};
use crate::rules::{self, Verdict};

pub struct EnrichProcessor {
    pub predictor: Predictor,
    pub verified_threshold: f64,
    pub provider: String,
    pub metrics: EnricherMetrics,
}

impl Transform for EnrichProcessor {
    type Input = NameSubmitted;
    const STAGE: PipelineStage = PipelineStage::Enricher;

    /// Until the request rate frees the next request: names that arrive meanwhile share it (up
    /// to 10 a request) instead of each waiting for a request of its own.
    fn gather_for(&self) -> std::time::Duration {
        self.predictor.limiter.lock().expect("not poisoned").until_free(std::time::Instant::now())
    }

    async fn apply(
        &self,
        batch: Vec<Decoded<NameSubmitted>>,
        pause: &PauseSignal,
    ) -> Result<Vec<Emit>, ProcessError> {
        let keys: Vec<LookupKey> = batch
            .iter()
            .filter_map(|input| lookup_key(&input.record))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let lookups = self.predictor.predict(&keys, pause).await;

        let now = OffsetDateTime::now_utc();
        let mut outputs = Vec::with_capacity(batch.len());
        for Decoded { position, record: name, .. } in batch {
            let (verdict, failure) = self.judge(&name, &lookups);
            if let Some(error) = failure {
                outputs.push(Emit::dead_letter(&position, rules::REASON_ENRICHMENT_FAILED, error));
            }
            self.metrics
                .names_processed
                .with_label_values(&[status_label(&verdict), verdict.reason.unwrap_or("none")])
                .inc();
            let enriched = LeadEnriched {
                project_id: name.project_id,
                lead_id: name.lead_id,
                name: name.name,
                email: name.email,
                company: name.company,
                country_name: verdict.country_code.as_deref().and_then(country_name).map(str::to_owned),
                country_code: verdict.country_code,
                probability: verdict.probability,
                status: verdict.status,
                reason: verdict.reason.map(str::to_owned),
                provider: self.provider.clone(),
                enriched_at: now,
            };
            outputs.push(Emit::record(&position, &enriched));
        }
        Ok(outputs)
    }
}

impl EnrichProcessor {
    /// The verdict for one name, and the error when the API could not be asked.
    fn judge(&self, name: &NameSubmitted, lookups: &HashMap<LookupKey, Lookup>) -> (Verdict, Option<String>) {
        let Some(key) = lookup_key(name) else { return (rules::no_prediction(), None) };
        match lookups.get(&key) {
            Some(Lookup::Predicted(countries)) => (rules::verdict(countries, self.verified_threshold), None),
            Some(Lookup::Failed(error)) => (rules::enrichment_failed(), Some(error.clone())),
            None => {
                (rules::enrichment_failed(), Some(format!("no prediction was fetched for {:?}", key.name)))
            }
        }
    }
}

/// What the name is looked up by: in its own project (see `crate::cache` for why).
fn lookup_key(name: &NameSubmitted) -> Option<LookupKey> {
    rules::lookup_key(&name.name).map(|key| LookupKey { project: name.project_id.clone(), name: key })
}

fn status_label(verdict: &Verdict) -> &'static str {
    match verdict.status {
        leadflow_core::contract::records::EnrichmentStatus::Verified => "verified",
        leadflow_core::contract::records::EnrichmentStatus::ToCheck => "to_check",
    }
}

#[cfg(test)]
mod tests;
