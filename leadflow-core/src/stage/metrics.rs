//! The metrics every stage's loop reports.

use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

#[derive(Clone)]
pub struct StageMetrics {
    pub(crate) consumer_lag: IntGaugeVec,
    pub(crate) transactions: IntCounterVec,
    pub(crate) records_consumed: prometheus::IntCounter,
    pub(crate) batch_duration: prometheus::HistogramVec,
    pub(crate) paused: IntGauge,
    pub(crate) rebalances: IntCounterVec,
    pub(crate) dead_letters: IntCounterVec,
}

impl StageMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let metrics = StageMetrics {
            consumer_lag: IntGaugeVec::new(
                Opts::new(
                    "kafka_consumer_lag_records",
                    "Records in the partition after this consumer's position (from librdkafka statistics).",
                ),
                &["topic", "partition"],
            )?,
            transactions: IntCounterVec::new(
                Opts::new("kafka_transactions_total", "Batch transactions, by outcome (committed, aborted)."),
                &["outcome"],
            )?,
            batch_duration: prometheus::HistogramVec::new(
                prometheus::HistogramOpts::new(
                    "kafka_batch_duration_seconds",
                    "Time per batch, by phase: process (the stage's own work) and commit (writes, offsets, transaction).",
                )
                .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
                &["phase"],
            )?,
            records_consumed: prometheus::IntCounter::new(
                "kafka_records_committed_total",
                "Input records whose batch committed.",
            )?,
            paused: IntGauge::new(
                "kafka_consumption_paused",
                "1 while consumption is paused for an outside limit (e.g. an API's rate limit).",
            )?,
            rebalances: IntCounterVec::new(
                Opts::new("kafka_rebalances_total", "Rebalance events, by kind (assign, revoke)."),
                &["kind"],
            )?,
            dead_letters: IntCounterVec::new(
                Opts::new(
                    "dead_letters_total",
                    "Records a stage put on the dead-letter topic instead of processing them, by stage and error kind.",
                ),
                &["stage", "error_kind"],
            )?,
        };
        registry.register(Box::new(metrics.dead_letters.clone()))?;
        registry.register(Box::new(metrics.consumer_lag.clone()))?;
        registry.register(Box::new(metrics.transactions.clone()))?;
        registry.register(Box::new(metrics.records_consumed.clone()))?;
        registry.register(Box::new(metrics.batch_duration.clone()))?;
        registry.register(Box::new(metrics.paused.clone()))?;
        registry.register(Box::new(metrics.rebalances.clone()))?;
        Ok(metrics)
    }
}
