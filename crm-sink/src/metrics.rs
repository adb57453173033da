//! The crm-sink's own metrics; every label is a fixed set, but `project`, which takes one value
//! per project (an id of at most 63 characters; projects are created by an admin). The CRM client's request metrics
//! live with it (`crm_requests_total`, `crm_request_duration_seconds`, `crm_retries_total`), and
//! consumer lag with the stage (`kafka_consumer_lag_records`).

use prometheus::{IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct SinkMetrics {
    pub records_applied: IntCounterVec,
    pub deliveries: IntCounterVec,
    pub leads_out_of_sync: IntGauge,
    pub resync_requests: prometheus::IntCounter,
    pub unconfigured_project_leads: IntCounterVec,
    /// `crm_sink_crm_compared_total{result}`: contacts reconcile read back, by how they stood.
    pub crm_compared: IntCounterVec,
}

impl SinkMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let metrics = SinkMetrics {
            records_applied: IntCounterVec::new(
                Opts::new(
                    "crm_sink_records_applied_total",
                    "Records folded into the read model, by topic and effect (changed: a CRM-visible field; updated; ignored: older or repeated).",
                ),
                &["topic", "effect"],
            )?,
            deliveries: IntCounterVec::new(
                Opts::new(
                    "crm_sink_deliveries_total",
                    "Lead versions sent to the CRM, by outcome (delivered, dead_lettered) and destination (http, log); counted again when a batch is redone.",
                ),
                &["destination", "outcome"],
            )?,
            leads_out_of_sync: IntGauge::new(
                "crm_sink_leads_out_of_sync",
                "Verified leads whose current version the CRM has not acknowledged (counted periodically).",
            )?,
            resync_requests: prometheus::IntCounter::new(
                "crm_sink_resync_requests_total",
                "Re-delivery requests the periodic reconcile wrote to crm.resync.v1.",
            )?,
            unconfigured_project_leads: IntCounterVec::new(
                Opts::new(
                    "crm_sink_unconfigured_project_leads_total",
                    "Lead versions due for delivery but not sent because their project has no CRM connection \
                     (crm.projects.<id>), by project; counted again by each batch that meets the lead.",
                ),
                &["project"],
            )?,
            crm_compared: IntCounterVec::new(
                Opts::new(
                    "crm_sink_crm_compared_total",
                    "Contacts the periodic reconcile read back from the CRM, by result (in_sync, missing, lagging, \
                     changed: all three re-delivered; conflicting: newer in the CRM, left alone).",
                ),
                &["result"],
            )?,
        };
        for result in ["in_sync", "missing", "lagging", "changed", "conflicting"] {
            metrics.crm_compared.with_label_values(&[result]);
        }
        registry.register(Box::new(metrics.crm_compared.clone()))?;
        registry.register(Box::new(metrics.records_applied.clone()))?;
        registry.register(Box::new(metrics.deliveries.clone()))?;
        registry.register(Box::new(metrics.leads_out_of_sync.clone()))?;
        registry.register(Box::new(metrics.resync_requests.clone()))?;
        registry.register(Box::new(metrics.unconfigured_project_leads.clone()))?;
        Ok(metrics)
    }
}
