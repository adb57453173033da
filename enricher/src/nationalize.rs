//! A client for nationalize.io-compatible APIs: `GET {base}/?name[]=a&name[]=b…` (at most 10
//! names), answered with one `{"name","country":[{"country_id","probability"}]}` per name, in
//! order. It makes one request; the limits, retries and the cache are the predictor's.
//!
//! The API key travels in the query (`apikey=`), and reqwest's error texts name the URL, so no
//! error text here comes from reqwest with its URL: [`request_error`] leaves it out, and takes
//! the key out of anything else that might hold it.

use std::time::Duration;

use leadflow_core::runtime::secret::Secret;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Deserialize;

use crate::rules::CountryProbability;

/// When a 429 gives no usable Retry-After or reset header.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq)]
pub struct NamePrediction {
    pub name: String,
    pub countries: Vec<CountryProbability>,
}

/// What the rate-limit headers of an answer said.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitHeaders {
    /// `X-Rate-Limit-Remaining`.
    pub remaining: Option<u64>,
    /// `X-Rate-Limit-Reset`: seconds until the quota window resets.
    pub reset: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 429: wait, then ask again; this never counts against the retry budget.
    #[error("rate limited; retry after {retry_after:?}")]
    RateLimited { retry_after: Duration, headers: RateLimitHeaders },
    /// 5xx, a timeout or a network error: worth retrying.
    #[error("{0}")]
    Retryable(String),
    /// Any other refusal (401 for a bad key, 422), or an answer that does not fit the names.
    #[error("{0}")]
    Rejected(String),
}

impl ApiError {
    /// A bounded label for metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Retryable(_) => "retryable_error",
            ApiError::Rejected(_) => "rejected",
        }
    }
}

#[derive(Clone)]
pub struct NationalizeClient {
    http: reqwest::Client,
    base_url: String,
    api_key: Option<Secret>,
}

#[derive(Deserialize)]
struct WirePrediction {
    name: String,
    #[serde(default)]
    country: Vec<WireCountry>,
}

#[derive(Deserialize)]
struct WireCountry {
    country_id: String,
    probability: f64,
}

impl NationalizeClient {
    /// An empty `api_key` sends none.
    pub fn new(base_url: &str, api_key: Secret, timeout: Duration) -> reqwest::Result<Self> {
        Ok(NationalizeClient {
            http: reqwest::Client::builder().timeout(timeout).build()?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: Some(api_key).filter(|k| !k.is_empty()),
        })
    }

    /// What went wrong, for logs and dead letters: reqwest's text without the URL (whose query
    /// holds the key), then its causes, with the key taken out should any of them hold it.
    fn request_error(&self, doing: &str, e: reqwest::Error) -> ApiError {
        let what = if e.is_timeout() { "timed out" } else { "failed" };
        let e = e.without_url();
        let mut text = format!("{doing} {what}: {e}");
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            text.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        ApiError::Retryable(self.scrub(&text))
    }

    fn scrub(&self, text: &str) -> String {
        self.api_key.as_ref().map_or_else(|| text.to_owned(), |key| key.scrub(text))
    }

    /// Asks for `names` (1 to 10) in one request.
    pub async fn predict(
        &self,
        names: &[String],
    ) -> Result<(Vec<NamePrediction>, RateLimitHeaders), ApiError> {
        let mut url = reqwest::Url::parse(&format!("{}/", self.base_url))
            .map_err(|e| ApiError::Rejected(format!("base URL {}: {e}", self.base_url)))?;
        {
            let mut query = url.query_pairs_mut();
            for name in names {
                query.append_pair("name[]", name);
            }
            if let Some(key) = &self.api_key {
                query.append_pair("apikey", key.expose());
            }
        }
        let response = self.http.get(url).send().await.map_err(|e| self.request_error("the request", e))?;
        let status = response.status();
        let headers = rate_limit_headers(response.headers());
        if status == StatusCode::TOO_MANY_REQUESTS {
            let retry_after =
                retry_after(response.headers()).or(headers.reset).unwrap_or(DEFAULT_RETRY_AFTER);
            return Err(ApiError::RateLimited { retry_after, headers });
        }
        if status.is_server_error() {
            return Err(ApiError::Retryable(format!("server error {status}")));
        }
        if !status.is_success() {
            // A refusal may quote the key it refuses.
            let body = self.scrub(&response.text().await.unwrap_or_default());
            return Err(ApiError::Rejected(format!(
                "{status}: {}",
                body.chars().take(200).collect::<String>()
            )));
        }
        let body = response.bytes().await.map_err(|e| self.request_error("reading the answer", e))?;
        Ok((parse_predictions(&body, names)?, headers))
    }
}

/// Parses a batch answer and pairs it with the names asked, in order. Entries with a code that
/// is not two letters or a probability outside [0, 1] are dropped, so that nothing the API
/// sends can make an output record its schema refuses.
pub fn parse_predictions(body: &[u8], names: &[String]) -> Result<Vec<NamePrediction>, ApiError> {
    let wire: Vec<WirePrediction> =
        serde_json::from_slice(body).map_err(|e| ApiError::Rejected(format!("unexpected answer: {e}")))?;
    if wire.len() != names.len() {
        return Err(ApiError::Rejected(format!("{} predictions for {} names", wire.len(), names.len())));
    }
    Ok(wire
        .into_iter()
        .zip(names)
        .map(|(prediction, asked)| {
            if prediction.name != *asked {
                tracing::debug!(asked = %asked, answered = %prediction.name, "the API echoed a different name");
            }
            let countries = prediction
                .country
                .into_iter()
                .filter(|c| (0.0..=1.0).contains(&c.probability))
                .filter_map(|c| {
                    let code = c.country_id.to_ascii_uppercase();
                    (code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()))
                        .then_some(CountryProbability { country_id: code, probability: c.probability })
                })
                .collect();
            NamePrediction { name: asked.clone(), countries }
        })
        .collect())
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

pub fn rate_limit_headers(headers: &HeaderMap) -> RateLimitHeaders {
    RateLimitHeaders {
        remaining: header_u64(headers, "x-rate-limit-remaining"),
        reset: header_u64(headers, "x-rate-limit-reset").map(Duration::from_secs),
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by nationalize.io).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    header_u64(headers, "retry-after").map(|s| Duration::from_secs(s.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_batch_answer_pairs_with_the_names_in_order() {
        let body = br#"[{"count":3,"name":"ana","country":[{"country_id":"PT","probability":0.7}]},
                        {"count":0,"name":"zzq","country":[]}]"#;
        let parsed = parse_predictions(body, &names(&["ana", "zzq"])).unwrap();
        assert_eq!(
            parsed[0].countries,
            vec![CountryProbability { country_id: "PT".into(), probability: 0.7 }]
        );
        assert!(parsed[1].countries.is_empty());
    }

    #[test]
    fn entries_that_would_break_the_output_schema_are_dropped() {
        let body = br#"[{"name":"x","country":[{"country_id":"pt","probability":0.5},
            {"country_id":"XYZ","probability":0.2},{"country_id":"FR","probability":1.5}]}]"#;
        let parsed = parse_predictions(body, &names(&["x"])).unwrap();
        assert_eq!(
            parsed[0].countries,
            vec![CountryProbability { country_id: "PT".into(), probability: 0.5 }]
        );
    }

    #[test]
    fn an_answer_of_the_wrong_length_or_shape_is_rejected() {
        assert!(matches!(parse_predictions(b"[]", &names(&["a"])), Err(ApiError::Rejected(_))));
        assert!(matches!(parse_predictions(b"{\"error\":1}", &names(&["a"])), Err(ApiError::Rejected(_))));
    }

    #[tokio::test]
    async fn a_failed_request_names_neither_the_url_nor_the_key() {
        // A port nothing listens on: the connection is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let key = Secret::new("k3y-in-the-query");
        let client =
            NationalizeClient::new(&format!("http://127.0.0.1:{port}"), key, Duration::from_secs(2)).unwrap();
        let error = client.predict(&names(&["ana"])).await.unwrap_err();
        assert!(matches!(error, ApiError::Retryable(_)), "{error}");
        let text = error.to_string();
        assert!(text.starts_with("the request failed: "), "{text}");
        assert!(
            !text.contains("k3y-in-the-query") && !text.contains("apikey") && !text.contains("ana"),
            "{text}"
        );
    }

    #[test]
    fn rate_limit_headers_are_read_when_present() {
        let mut headers = HeaderMap::new();
        headers.insert("X-Rate-Limit-Remaining", "0".parse().unwrap());
        headers.insert("X-Rate-Limit-Reset", "3600".parse().unwrap());
        headers.insert("Retry-After", "0".parse().unwrap());
        assert_eq!(
            rate_limit_headers(&headers),
            RateLimitHeaders { remaining: Some(0), reset: Some(Duration::from_secs(3600)) }
        );
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(1)), "a zero wait still waits a second");
        assert_eq!(rate_limit_headers(&HeaderMap::new()), RateLimitHeaders::default());
    }
}
