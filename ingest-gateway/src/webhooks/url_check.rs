//! The SSRF guard on a subscription's URL, with I/O: `leadflow_core`'s pure [`check_url`], then
//! the host resolved and every address it resolves to checked by [`check_resolved`]. Run when a
//! subscription is made (nothing is sent then) and again before each test delivery, whose
//! connection then goes to the checked addresses only.

use std::net::{IpAddr, SocketAddr};

use leadflow_core::model::webhook::{UrlPolicy, UrlRefusal, check_resolved, check_url};
use reqwest::Url;

/// A URL that may be called, and the addresses its host resolved to, each allowed.
#[derive(Debug, Clone)]
pub struct CheckedUrl {
    pub url: Url,
    /// The host as a name, for pinning the resolution; `None` for an IP literal.
    pub domain: Option<String>,
    pub addrs: Vec<SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum UrlCheckError {
    #[error(transparent)]
    Refused(#[from] UrlRefusal),
    #[error("the host {host:?} cannot be resolved: {source}")]
    Unresolvable { host: String, source: std::io::Error },
}

pub async fn check(url: &str, policy: UrlPolicy) -> Result<CheckedUrl, UrlCheckError> {
    let url = check_url(url, policy)?;
    let host = url.host_str().ok_or(UrlRefusal::NoHost)?;
    let port = url.port_or_known_default().ok_or(UrlRefusal::NoHost)?;
    // An IPv6 literal is written in brackets; `check_url` has judged every literal already.
    let literal = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok();
    let (domain, addrs): (Option<String>, Vec<SocketAddr>) = match literal {
        Some(addr) => (None, vec![SocketAddr::new(addr, port)]),
        None => {
            let resolved = tokio::net::lookup_host((host, port))
                .await
                .map_err(|source| UrlCheckError::Unresolvable { host: host.to_owned(), source })?;
            (Some(host.to_owned()), resolved.collect())
        }
    };
    let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
    check_resolved(&ips, policy)?;
    Ok(CheckedUrl { url, domain, addrs })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOPBACK_HTTP: UrlPolicy = UrlPolicy::LOCAL_TESTS;

    async fn refusal(url: &str, policy: UrlPolicy) -> String {
        check(url, policy).await.expect_err(url).to_string()
    }

    #[tokio::test]
    async fn metadata_private_mapped_and_link_local_addresses_are_refused() {
        for url in [
            "http://169.254.169.254/latest/meta-data",
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.1/hook",
            "https://[::ffff:169.254.169.254]/",
            "https://[fe80::1]/",
            "https://0xa9.254.169.254/",
        ] {
            let why = refusal(url, LOOPBACK_HTTP).await;
            assert!(why.contains("address") || why.contains("http is allowed only"), "{url}: {why}");
        }
    }

    #[tokio::test]
    async fn schemes_userinfo_and_plain_http_elsewhere_are_refused() {
        assert!(refusal("ftp://example.com/x", LOOPBACK_HTTP).await.contains("https, not ftp"));
        assert!(refusal("https://user:pw@example.com/", LOOPBACK_HTTP).await.contains("user name"));
        assert!(refusal("http://93.184.216.34/hook", LOOPBACK_HTTP).await.contains("only to a loopback"));
        assert!(refusal("http://127.0.0.1:9/hook", UrlPolicy::PRODUCTION).await.contains("loopback"));
        assert!(refusal("https://localhost/hook", UrlPolicy::PRODUCTION).await.contains("Loopback"));
    }

    #[tokio::test]
    async fn loopback_http_in_tests_and_public_https_pass_with_their_addresses() {
        let checked = check("http://127.0.0.1:9/hook", LOOPBACK_HTTP).await.unwrap();
        assert_eq!(checked.addrs, ["127.0.0.1:9".parse::<SocketAddr>().unwrap()]);
        assert_eq!(checked.domain, None);
        let checked = check("https://[2606:4700::1111]/hook", UrlPolicy::PRODUCTION).await.unwrap();
        assert_eq!(checked.addrs[0].port(), 443);
        let checked = check("http://localhost:9/hook", LOOPBACK_HTTP).await.unwrap();
        assert_eq!(checked.domain.as_deref(), Some("localhost"));
        assert!(checked.addrs.iter().all(|a| a.ip().is_loopback()), "{:?}", checked.addrs);
    }
}
