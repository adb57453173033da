//! One HTTP attempt of a delivery, to a URL that is checked again at the moment of sending: the
//! host is resolved here, every address it resolves to must pass the policy, and the connection
//! goes to those checked addresses only (the client is pinned to them), so a DNS answer that
//! changes between the check and the connection cannot reach a private or metadata address.
//! Redirects are never followed and no proxy is used.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use leadflow_core::model::webhook::{UrlPolicy, check_resolved, check_url};

use crate::dispatch::attempt::AttemptResult;

/// The request's headers beyond the content type (the Standard Webhooks ones, for a webhook).
pub type Headers = Vec<(&'static str, String)>;

/// Sends `body` to `url` and says how it ended and how long it took.
pub async fn post(
    url: &str,
    headers: &Headers,
    body: &str,
    policy: UrlPolicy,
    timeout: Duration,
) -> (AttemptResult, u64) {
    let started = Instant::now();
    let result = attempt(url, headers, body, policy, timeout).await;
    (result, u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX))
}

async fn attempt(
    url: &str,
    headers: &Headers,
    body: &str,
    policy: UrlPolicy,
    timeout: Duration,
) -> AttemptResult {
    let parsed = match check_url(url, policy) {
        Ok(parsed) => parsed,
        Err(refusal) => return AttemptResult::Refused(refusal.to_string()),
    };
    let Some(host) = parsed.host_str().map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned())
    else {
        return AttemptResult::Refused("the URL has no host".into());
    };
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => match tokio::time::timeout(timeout, tokio::net::lookup_host((host.as_str(), port))).await {
            Ok(Ok(found)) => found.collect(),
            Ok(Err(e)) => return AttemptResult::Unreachable(format!("cannot resolve the host: {e}")),
            Err(_) => return AttemptResult::Timeout,
        },
    };
    let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
    if let Err(refusal) = check_resolved(&ips, policy) {
        return AttemptResult::Refused(refusal.to_string());
    }
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .resolve_to_addrs(&host, &addrs)
        .build()
    {
        Ok(client) => client,
        Err(e) => return AttemptResult::Unreachable(format!("cannot build the HTTP client: {e}")),
    };
    let mut request = client.post(parsed).header("content-type", "application/json").body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    match request.send().await {
        Ok(response) => AttemptResult::Answered(response.status().as_u16()),
        Err(e) if e.is_timeout() => AttemptResult::Timeout,
        // reqwest's error names the URL, which for an incoming webhook holds its credential.
        Err(e) => AttemptResult::Unreachable(describe(e.without_url())),
    }
}

fn describe(error: reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Refused before any connection is made: these tests send nothing to such addresses.
    #[tokio::test]
    async fn private_link_local_and_metadata_addresses_are_refused_before_anything_is_sent() {
        let policy = UrlPolicy::LOCAL_TESTS;
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "https://169.254.169.254/",
            "https://10.0.0.1/hook",
            "https://[::ffff:169.254.169.254]/",
            "https://[fd00::1]/",
            "http://example.com/hook",
            "ftp://127.0.0.1/",
        ] {
            let (result, _) = post(url, &Vec::new(), "{}", policy, Duration::from_secs(1)).await;
            assert!(matches!(result, AttemptResult::Refused(_)), "{url}: {result:?}");
        }
    }

    #[tokio::test]
    async fn a_host_that_resolves_to_loopback_is_refused_without_the_loopback_allowance() {
        let (result, _) = post(
            "https://localhost:1/hook",
            &Vec::new(),
            "{}",
            UrlPolicy::PRODUCTION,
            Duration::from_secs(1),
        )
        .await;
        assert!(matches!(result, AttemptResult::Refused(_)), "{result:?}");
    }
}
