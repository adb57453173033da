//! The automator's metrics, counted where each thing happens; every label is a fixed set.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

#[derive(Clone)]
pub struct AutomatorMetrics {
    pub firings: IntCounterVec,
    pub executions: IntCounterVec,
    pub executions_re_emitted: IntCounter,
    pub rules_updates: IntCounterVec,
    pub deliveries: IntCounterVec,
    pub delivery_duration: HistogramVec,
    pub endpoints_disabled: IntGauge,
    pub endpoints_disabled_total: IntCounterVec,
    pub deliveries_pending: IntGauge,
    pub dispatch_duration: Histogram,
}

impl AutomatorMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let metrics = AutomatorMetrics {
            firings: IntCounterVec::new(
                Opts::new(
                    "automator_firings_total",
                    "Rules whose condition a record fired, by result: executed (the execution key was free) or already_executed (the rule acted on the lead that UTC day already). Counted again when a batch is redone.",
                ),
                &["result"],
            )?,
            executions: IntCounterVec::new(
                Opts::new(
                    "automator_executions_total",
                    "Executions recorded, by outcome: queued (a delivery was queued) or nothing_queued (no action could be). Counted again when a batch is redone.",
                ),
                &["outcome"],
            )?,
            executions_re_emitted: IntCounter::new(
                "automator_executions_re_emitted_total",
                "Execution records emitted again from their stored copy, for a trigger read again from the offset that made them (a batch redone after a crash).",
            )?,
            rules_updates: IntCounterVec::new(
                Opts::new(
                    "automator_rules_updates_total",
                    "Records read from automations.rules.v1, by outcome (applied, deleted, refused).",
                ),
                &["outcome"],
            )?,
            deliveries: IntCounterVec::new(
                Opts::new(
                    "webhook_deliveries_total",
                    "Delivery attempts by target (webhook, notify_sales, email) and outcome (succeeded, failed, timeout, unreachable, refused), and deliveries given up after the last attempt of the schedule (given_up).",
                ),
                &["target", "outcome"],
            )?,
            delivery_duration: HistogramVec::new(
                HistogramOpts::new(
                    "webhook_delivery_duration_seconds",
                    "The time of one delivery attempt, from the request to the endpoint's answer (or the timeout), by target.",
                )
                .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
                &["target"],
            )?,
            endpoints_disabled: IntGauge::new(
                "webhook_endpoints_disabled",
                "Webhook subscriptions that are disabled now, in every project (sampled by each automator instance).",
            )?,
            endpoints_disabled_total: IntCounterVec::new(
                Opts::new(
                    "webhook_endpoints_disabled_total",
                    "Subscriptions this instance disabled, by reason: gone (a 410) or failing (failing for longer than webhooks.disable_after).",
                ),
                &["reason"],
            )?,
            deliveries_pending: IntGauge::new(
                "webhook_deliveries_pending",
                "Deliveries waiting for an attempt on the partitions this instance holds (parked ones of disabled subscriptions included).",
            )?,
            dispatch_duration: Histogram::with_opts(HistogramOpts::new(
                "webhook_dispatch_look_duration_seconds",
                "The time of one look for due deliveries.",
            ))?,
        };
        // Every series exists from the start, so that rate() and increase() see a first event.
        for result in ["executed", "already_executed"] {
            metrics.firings.with_label_values(&[result]);
        }
        for outcome in ["queued", "nothing_queued"] {
            metrics.executions.with_label_values(&[outcome]);
        }
        for outcome in ["applied", "deleted", "refused"] {
            metrics.rules_updates.with_label_values(&[outcome]);
        }
        for target in ["webhook", "notify_sales", "email"] {
            for outcome in ["succeeded", "failed", "timeout", "unreachable", "refused", "given_up"] {
                metrics.deliveries.with_label_values(&[target, outcome]);
            }
            metrics.delivery_duration.with_label_values(&[target]);
        }
        for reason in ["gone", "failing"] {
            metrics.endpoints_disabled_total.with_label_values(&[reason]);
        }
        registry.register(Box::new(metrics.firings.clone()))?;
        registry.register(Box::new(metrics.executions.clone()))?;
        registry.register(Box::new(metrics.executions_re_emitted.clone()))?;
        registry.register(Box::new(metrics.rules_updates.clone()))?;
        registry.register(Box::new(metrics.deliveries.clone()))?;
        registry.register(Box::new(metrics.delivery_duration.clone()))?;
        registry.register(Box::new(metrics.endpoints_disabled.clone()))?;
        registry.register(Box::new(metrics.endpoints_disabled_total.clone()))?;
        registry.register(Box::new(metrics.deliveries_pending.clone()))?;
        registry.register(Box::new(metrics.dispatch_duration.clone()))?;
        Ok(metrics)
    }
}
