//! The gateway's metrics. Labels are bounded: routes are the router's patterns, reasons are the
//! validation reasons, topics are the project's topics.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct GatewayMetrics {
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    pub records_published: IntCounterVec,
    pub records_rejected: IntCounterVec,
    /// The Segment API's messages, by outcome: `accepted` (became records) or `dead_lettered`.
    pub segment_messages: IntCounterVec,
    pub producer_queue_depth: IntGauge,
}

impl GatewayMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let metrics = GatewayMetrics {
            requests: IntCounterVec::new(
                Opts::new("gateway_http_requests_total", "HTTP requests answered, by route and status."),
                &["route", "status"],
            )?,
            request_duration: HistogramVec::new(
                HistogramOpts::new(
                    "gateway_http_request_duration_seconds",
                    "Time to answer a request, by route.",
                )
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
                &["route"],
            )?,
            records_published: IntCounterVec::new(
                Opts::new("gateway_records_published_total", "Records acknowledged by Kafka, by topic."),
                &["topic"],
            )?,
            records_rejected: IntCounterVec::new(
                Opts::new("gateway_records_rejected_total", "Records refused before publishing, by reason."),
                &["reason"],
            )?,
            segment_messages: IntCounterVec::new(
                Opts::new(
                    "gateway_segment_messages_total",
                    "Segment API messages acknowledged by Kafka, by outcome (accepted, dead_lettered).",
                ),
                &["outcome"],
            )?,
            producer_queue_depth: IntGauge::new(
                "gateway_producer_queue_depth",
                "Records handed to the Kafka producer and not yet acknowledged.",
            )?,
        };
        registry.register(Box::new(metrics.requests.clone()))?;
        registry.register(Box::new(metrics.request_duration.clone()))?;
        registry.register(Box::new(metrics.records_published.clone()))?;
        registry.register(Box::new(metrics.records_rejected.clone()))?;
        registry.register(Box::new(metrics.segment_messages.clone()))?;
        registry.register(Box::new(metrics.producer_queue_depth.clone()))?;
        Ok(metrics)
    }
}
