//! The enricher's metrics. Every label is bounded: statuses, reasons, outcomes, cache results
//! and error kinds are fixed sets.

use prometheus::{Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct EnricherMetrics {
    pub names_processed: IntCounterVec,
    pub api_requests: IntCounterVec,
    pub api_request_duration: Histogram,
    pub cache_lookups: IntCounterVec,
    pub cache_hit_ratio: Gauge,
    pub cache_store_errors: IntCounter,
    pub daily_quota_remaining: IntGauge,
    /// 1 while API requests wait for the daily quota or a server block (a 429): what KEDA reads
    /// so as not to add replicas that would wait for the same limit.
    pub api_limited: IntGauge,
}

impl EnricherMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let metrics = EnricherMetrics {
            names_processed: IntCounterVec::new(
                Opts::new(
                    "enricher_names_processed_total",
                    "Names enriched, by status (verified, to_check) and reason. A batch redone after an \
                     aborted transaction counts again.",
                ),
                &["status", "reason"],
            )?,
            api_requests: IntCounterVec::new(
                Opts::new(
                    "enricher_api_requests_total",
                    "Requests to the prediction API, by outcome (ok, rate_limited, retryable_error, rejected).",
                ),
                &["outcome"],
            )?,
            api_request_duration: Histogram::with_opts(
                HistogramOpts::new("enricher_api_request_duration_seconds", "Time for one API request.")
                    .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            )?,
            cache_lookups: IntCounterVec::new(
                Opts::new(
                    "enricher_cache_lookups_total",
                    "Prediction lookups, by result (memory_hit, store_hit, miss).",
                ),
                &["result"],
            )?,
            cache_hit_ratio: Gauge::new(
                "enricher_cache_hit_ratio",
                "Share of lookups since start answered by the cache (memory or MongoDB).",
            )?,
            cache_store_errors: IntCounter::new(
                "enricher_cache_store_errors_total",
                "MongoDB cache reads or writes that failed (the API is asked instead).",
            )?,
            daily_quota_remaining: IntGauge::new(
                "enricher_api_daily_quota_remaining_requests",
                "Requests left today, as last heard: the smaller of the daily quota shared by every replica \
                 and the API's X-Rate-Limit-Remaining.",
            )?,
            api_limited: IntGauge::new(
                "enricher_api_limited",
                "1 while API requests wait for the daily quota or for a block the API asked for (429).",
            )?,
        };
        registry.register(Box::new(metrics.api_limited.clone()))?;
        registry.register(Box::new(metrics.names_processed.clone()))?;
        registry.register(Box::new(metrics.api_requests.clone()))?;
        registry.register(Box::new(metrics.api_request_duration.clone()))?;
        registry.register(Box::new(metrics.cache_lookups.clone()))?;
        registry.register(Box::new(metrics.cache_hit_ratio.clone()))?;
        registry.register(Box::new(metrics.cache_store_errors.clone()))?;
        registry.register(Box::new(metrics.daily_quota_remaining.clone()))?;
        Ok(metrics)
    }

    pub fn update_hit_ratio(&self) {
        let count = |result: &str| self.cache_lookups.with_label_values(&[result]).get() as f64;
        let hits = count("memory_hit") + count("store_hit");
        let total = hits + count("miss");
        if total > 0.0 {
            self.cache_hit_ratio.set(hits / total);
        }
    }
}
