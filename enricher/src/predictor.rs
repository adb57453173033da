//! Predictions for a set of lookup keys: from the cache when it has them, otherwise from the API
//! in requests of up to 10 names, several at once (bounded), each admitted by the rate limiter
//! and then by the daily quota shared across replicas (`crate::quota`).
//!
//! - A spent daily quota holds a pause, as a 429 does, until the UTC day ends (asked again every
//!   30 s meanwhile). So does a quota that cannot be asked because MongoDB is down: a request
//!   the quota cannot count is never sent.
//! - A 429 blocks every request until its Retry-After and holds a pause, so that the stage
//!   pauses its partitions: waiting names show up as lag, not as errors. It never uses up the
//!   retry budget.
//! - 5xx, timeouts and network errors are retried with jittered exponential backoff, up to
//!   `max_attempts` per request; then each name of the request is `Failed`, which the processor
//!   turns into `To Check` plus a dead letter. A partition never waits on a broken API.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use futures::StreamExt;
use leadflow_core::runtime::backoff::Backoff;
use leadflow_core::stage::pause::{PauseGuard, PauseSignal};
use leadflow_core::store::shared_budget::Grant;
use time::OffsetDateTime;

use crate::cache::{Countries, LookupKey, PredictionCache};
use crate::config::NationalizeConfig;
use crate::metrics::EnricherMetrics;
use crate::nationalize::{ApiError, NamePrediction, NationalizeClient, RateLimitHeaders};
use crate::quota::{self, DailyQuota};
use crate::rate_limit::{Admission, RateLimiter, WaitReason};

fn prediction_pairs(predictions: Vec<NamePrediction>) -> impl Iterator<Item = (String, Countries)> {
    predictions.into_iter().map(|p| (p.name, p.countries.into()))
}

/// One request's predictions, or why the API could not give them.
type FetchResult = Result<Vec<NamePrediction>, String>;

#[derive(Debug, Clone)]
pub enum Lookup {
    Predicted(Countries),
    /// The API could not answer within the retry budget; the text says why.
    Failed(String),
}

pub struct Predictor {
    pub client: NationalizeClient,
    pub cache: PredictionCache,
    pub limiter: Mutex<RateLimiter>,
    /// `None` when `daily_quota` is 0: no quota of ours (the server's 429s still apply).
    pub quota: Option<DailyQuota>,
    pub names_per_request: usize,
    pub max_concurrent_requests: usize,
    pub max_attempts: u32,
    pub backoff: Backoff,
    pub metrics: EnricherMetrics,
}

impl Predictor {
    /// The daily quota is counted in the `budgets` collection of the cache's database.
    pub fn new(
        config: &NationalizeConfig,
        cache: PredictionCache,
        metrics: EnricherMetrics,
    ) -> reqwest::Result<Self> {
        let quota = (config.daily_quota > 0)
            .then(|| DailyQuota::new(cache.database(), &config.quota_name, config.daily_quota));
        Ok(Predictor {
            client: NationalizeClient::new(&config.base_url, config.api_key.clone(), config.request_timeout)?,
            cache,
            limiter: Mutex::new(RateLimiter::new(config.requests_per_second)),
            quota,
            names_per_request: config.names_per_request,
            max_concurrent_requests: config.max_concurrent_requests,
            max_attempts: config.max_attempts,
            backoff: Backoff { initial: config.backoff_initial, max: config.backoff_max },
            metrics,
        })
    }

    /// A lookup for each of `keys` (distinct lookup keys, each of a project).
    ///
    /// The cache is asked per (project, name). The API is asked per name: the names two projects
    /// both miss in one batch go in one request, and its answer is stored for each of them. That
    /// shares nothing between tenants: each gets the API's answer of now, as it would alone.
    pub async fn predict(&self, keys: &[LookupKey], pause: &PauseSignal) -> HashMap<LookupKey, Lookup> {
        let mut found: HashMap<LookupKey, Lookup> = HashMap::with_capacity(keys.len());
        let mut misses = Vec::new();
        for key in keys {
            match self.cache.get_memory(key) {
                Some(countries) => {
                    found.insert(key.clone(), Lookup::Predicted(countries));
                }
                None => misses.push(key.clone()),
            }
        }
        self.count_lookups("memory_hit", found.len());
        if !misses.is_empty() {
            match self.cache.get_stored(&misses).await {
                Ok(stored) => {
                    self.count_lookups("store_hit", stored.len());
                    misses.retain(|key| !stored.contains_key(key));
                    found.extend(
                        stored.into_iter().map(|(key, countries)| (key, Lookup::Predicted(countries))),
                    );
                }
                Err(e) => {
                    self.metrics.cache_store_errors.inc();
                    tracing::warn!(error = %e, "prediction cache store unavailable; asking the API");
                }
            }
        }
        self.count_lookups("miss", misses.len());
        self.metrics.update_hit_ratio();

        // The missed names, each once, in the order first missed, and who asked for each.
        let mut asking: HashMap<&str, Vec<&LookupKey>> = HashMap::new();
        let mut names: Vec<String> = Vec::new();
        for key in &misses {
            let askers = asking.entry(key.name.as_str()).or_default();
            if askers.is_empty() {
                names.push(key.name.clone());
            }
            askers.push(key);
        }
        let requests: Vec<Vec<String>> =
            names.chunks(self.names_per_request).map(<[String]>::to_vec).collect();
        let answers: Vec<(Vec<String>, FetchResult)> = futures::stream::iter(requests)
            .map(|names| async move {
                let result = self.fetch(&names, pause).await;
                (names, result)
            })
            .buffer_unordered(self.max_concurrent_requests)
            .collect()
            .await;
        let askers_of = |name: &str| asking.get(name).into_iter().flatten().map(|key| (*key).clone());
        let mut fetched: Vec<(LookupKey, Countries)> = Vec::new();
        for (names, answer) in answers {
            match answer {
                Ok(predictions) => {
                    for (name, countries) in prediction_pairs(predictions) {
                        fetched.extend(askers_of(&name).map(|key| (key, countries.clone())));
                    }
                }
                Err(reason) => {
                    for name in names {
                        found.extend(askers_of(&name).map(|key| (key, Lookup::Failed(reason.clone()))));
                    }
                }
            }
        }
        if let Err(e) = self.cache.put_many(&fetched).await {
            self.metrics.cache_store_errors.inc();
            tracing::warn!(error = %e, "cannot store predictions in the cache");
        }
        found.extend(fetched.into_iter().map(|(key, countries)| (key, Lookup::Predicted(countries))));
        found
    }

    fn count_lookups(&self, result: &str, n: usize) {
        self.metrics.cache_lookups.with_label_values(&[result]).inc_by(n as u64);
    }

    /// One request, retried within the budget; 429s wait and do not count.
    async fn fetch(&self, names: &[String], pause: &PauseSignal) -> FetchResult {
        let mut failures = 0u32;
        loop {
            self.admit(pause).await;
            let started = Instant::now();
            let result = self.client.predict(names).await;
            self.metrics.api_request_duration.observe(started.elapsed().as_secs_f64());
            let outcome = result.as_ref().map_or_else(ApiError::outcome, |_| "ok");
            self.metrics.api_requests.with_label_values(&[outcome]).inc();
            match result {
                Ok((predictions, headers)) => {
                    self.observe(headers);
                    return Ok(predictions);
                }
                Err(ApiError::RateLimited { retry_after, headers }) => {
                    self.observe(headers);
                    self.limiter.lock().expect("not poisoned").block_until(Instant::now() + retry_after);
                    tracing::warn!(retry_after = ?retry_after, names = names.len(), "the API answered 429; waiting");
                }
                Err(ApiError::Retryable(e)) => {
                    failures += 1;
                    if failures >= self.max_attempts {
                        return Err(format!("gave up after {failures} attempts: {e}"));
                    }
                    let delay = self.backoff.delay(failures - 1);
                    tracing::warn!(error = %e, attempt = failures, retry_in = ?delay, "API request failed; retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(ApiError::Rejected(e)) => {
                    tracing::error!(error = %e, names = names.len(), "the API refused the request");
                    return Err(format!("refused: {e}"));
                }
            }
        }
    }

    fn observe(&self, headers: RateLimitHeaders) {
        let mut limiter = self.limiter.lock().expect("not poisoned");
        if let Some(remaining) = headers.remaining {
            limiter.observe_server_remaining(remaining);
            if remaining == 0
                && let Some(reset) = headers.reset
            {
                limiter.block_until(Instant::now() + reset);
            }
        }
        self.show_remaining(&limiter);
    }

    fn show_remaining(&self, limiter: &RateLimiter) {
        if let Some(remaining) = limiter.remaining_today() {
            self.metrics.daily_quota_remaining.set(i64::try_from(remaining).unwrap_or(i64::MAX));
        }
    }

    /// Waits for the rate limiter, then takes one request of the shared daily quota. A wait for
    /// the quota or the server holds a pause; spacing between requests is ordinary running and
    /// does not.
    async fn admit(&self, pause: &PauseSignal) {
        let mut held: Option<PauseGuard> = None;
        loop {
            let admission = self.limiter.lock().expect("not poisoned").admit(Instant::now());
            let (wait, reason) = match admission {
                Admission::Wait { for_, reason } => (for_, reason),
                Admission::Granted => match self.take_quota().await {
                    None => {
                        self.metrics.api_limited.set(0);
                        return;
                    }
                    Some(wait) => wait,
                },
            };
            if reason != WaitReason::RequestRate && held.is_none() {
                tracing::warn!(?reason, wait = ?wait, "API limit reached; pausing consumption");
                self.metrics.api_limited.set(1);
                held = Some(pause.hold());
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// One request of the shared daily quota: `None` when taken (or there is no quota), else
    /// how long to wait before asking again, and why.
    async fn take_quota(&self) -> Option<(std::time::Duration, WaitReason)> {
        let quota = self.quota.as_ref()?;
        let now = OffsetDateTime::now_utc();
        let taken = quota.take(now).await;
        let mut limiter = self.limiter.lock().expect("not poisoned");
        let wait = match taken {
            Ok(Grant::Granted { remaining }) => {
                limiter.observe_quota_remaining(remaining);
                None
            }
            Ok(Grant::Exhausted { until }) => {
                limiter.observe_quota_remaining(0);
                Some((quota::recheck_in(until, now), WaitReason::DailyQuota))
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot take from the shared daily quota; waiting, not sending unmetered");
                Some((quota::UNAVAILABLE_RETRY, WaitReason::QuotaUnavailable))
            }
        };
        self.show_remaining(&limiter);
        wait
    }
}
