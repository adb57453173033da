//! Where a webhook may be sent: a guard against server-side request forgery, checked twice,
//! once on the URL when a subscription is made and once on the addresses its host resolves to
//! before each connection.
//!
//! - [`check_url`]: `https` only; `http` only to a loopback host (`localhost`, 127.0.0.0/8,
//!   `::1`) and only when [`UrlPolicy::allow_loopback`] is set, for tests; no user name or
//!   password; any port. A host written as an IP address (in any of the spellings the URL
//!   standard reads, `0x7f.1` say) is judged by [`check_resolved`] at once, so
//!   `https://169.254.169.254/` and `https://10.0.0.1/` are refused before anything is stored.
//! - [`check_resolved`]: every address the host resolves to must be allowed, or the URL is
//!   refused; the caller then connects to those checked addresses only (a resolver that gave a
//!   public address to the check and a private one to the connection would otherwise get
//!   through) and does not follow redirects.
//!
//! Which [`AddressClass`]es pass: public ones always; loopback only with `allow_loopback`;
//! private ranges (10/8, 172.16/12, 192.168/16, fc00::/7, the old site-local fec0::/10) and the
//! carrier-grade NAT range 100.64/10 only with `allow_private`, for receivers inside one's own
//! network. Never: link-local (169.254/16, fe80::/10), the cloud metadata addresses
//! (169.254.169.254, fd00:ec2::254, 100.100.100.200), unspecified, multicast, broadcast, and the
//! reserved, documentation and benchmarking ranges, since no receiver lives there. An IPv6
//! address that carries an IPv4 one (IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4
//! `2002::/16`) is judged by the IPv4 address it reaches.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// What [`check_url`] and [`check_resolved`] let through beyond public addresses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    /// `http` to loopback, and loopback addresses: for tests and local demos, never production.
    pub allow_loopback: bool,
    /// Private and carrier-grade NAT addresses, for a receiver inside one's own network.
    pub allow_private: bool,
}

impl UrlPolicy {
    /// Public `https` endpoints only.
    pub const PRODUCTION: UrlPolicy = UrlPolicy { allow_loopback: false, allow_private: false };
    /// Also `http` to a receiver on this machine.
    pub const LOCAL_TESTS: UrlPolicy = UrlPolicy { allow_loopback: true, allow_private: false };

    fn allows(self, class: AddressClass) -> bool {
        match class {
            AddressClass::Public => true,
            AddressClass::Loopback => self.allow_loopback,
            AddressClass::Private | AddressClass::SharedAddressSpace => self.allow_private,
            AddressClass::LinkLocal
            | AddressClass::Metadata
            | AddressClass::Unspecified
            | AddressClass::Multicast
            | AddressClass::Broadcast
            | AddressClass::Reserved => false,
        }
    }
}

/// The kind of network an address belongs to, as far as sending a webhook there goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Public,
    Loopback,
    /// RFC 1918 and unique-local (and the deprecated site-local) addresses.
    Private,
    /// 100.64.0.0/10, carrier-grade NAT (RFC 6598).
    SharedAddressSpace,
    LinkLocal,
    /// A cloud provider's instance metadata service.
    Metadata,
    Unspecified,
    Multicast,
    Broadcast,
    /// "This network", IETF protocol assignments, documentation, benchmarking, discard and
    /// not-yet-allocated ranges.
    Reserved,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    #[error("not a URL: {0}")]
    Unparsable(#[source] url::ParseError),
    #[error("a webhook URL must be https, not {0}")]
    Scheme(String),
    #[error("http is allowed only to a loopback host, and only in tests")]
    PlainHttp,
    #[error("a webhook URL must not carry a user name or password")]
    Userinfo,
    #[error("a webhook URL needs a host")]
    NoHost,
    #[error("{addr} is a {class:?} address, where webhooks are not sent")]
    Address { addr: IpAddr, class: AddressClass },
    #[error("the host resolved to no address")]
    NoAddresses,
}

/// Checks a webhook URL as given; see the [module docs](self). The URL is returned parsed (and
/// normalised: an IP host is in its canonical form).
pub fn check_url(url: &str, policy: UrlPolicy) -> Result<Url, UrlRefusal> {
    let parsed = Url::parse(url).map_err(UrlRefusal::Unparsable)?;
    if !["https", "http"].contains(&parsed.scheme()) {
        return Err(UrlRefusal::Scheme(parsed.scheme().to_owned()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(UrlRefusal::Userinfo);
    }
    let host = parsed.host().ok_or(UrlRefusal::NoHost)?;
    let literal = match host {
        Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        Host::Domain(_) => None,
    };
    let loopback_host = match (&host, literal) {
        (_, Some(addr)) => classify(addr) == AddressClass::Loopback,
        (Host::Domain(name), None) => is_localhost(name),
        _ => false,
    };
    if parsed.scheme() == "http" && !(policy.allow_loopback && loopback_host) {
        return Err(UrlRefusal::PlainHttp);
    }
    if let Some(addr) = literal {
        check_resolved(&[addr], policy)?;
    } else if loopback_host && !policy.allow_loopback {
        return Err(UrlRefusal::Address { addr: Ipv4Addr::LOCALHOST.into(), class: AddressClass::Loopback });
    }
    Ok(parsed)
}

/// Checks every address a webhook host resolved to; one refused address refuses them all.
pub fn check_resolved(addrs: &[IpAddr], policy: UrlPolicy) -> Result<(), UrlRefusal> {
    if addrs.is_empty() {
        return Err(UrlRefusal::NoAddresses);
    }
    for &addr in addrs {
        let class = classify(addr);
        if !policy.allows(class) {
            return Err(UrlRefusal::Address { addr, class });
        }
    }
    Ok(())
}

/// `localhost` and its subdomains, which resolvers keep on this machine (RFC 6761).
fn is_localhost(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

pub fn classify(addr: IpAddr) -> AddressClass {
    match addr {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn in_v4(addr: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(addr) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn in_v6(addr: Ipv6Addr, net: [u16; 8], prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(addr) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

fn classify_v4(addr: Ipv4Addr) -> AddressClass {
    use AddressClass::*;
    // Most specific first: the metadata addresses sit inside link-local and CGNAT.
    const TABLE: &[([u8; 4], u32, AddressClass)] = &[
        ([0, 0, 0, 0], 32, Unspecified),
        ([255, 255, 255, 255], 32, Broadcast),
        ([169, 254, 169, 254], 32, Metadata),
        ([100, 100, 100, 200], 32, Metadata),
        ([0, 0, 0, 0], 8, Reserved),
        ([127, 0, 0, 0], 8, Loopback),
        ([10, 0, 0, 0], 8, Private),
        ([172, 16, 0, 0], 12, Private),
        ([192, 168, 0, 0], 16, Private),
        ([100, 64, 0, 0], 10, SharedAddressSpace),
        ([169, 254, 0, 0], 16, LinkLocal),
        ([192, 0, 0, 0], 24, Reserved),
        ([192, 0, 2, 0], 24, Reserved),
        ([192, 88, 99, 0], 24, Reserved),
        ([198, 18, 0, 0], 15, Reserved),
        ([198, 51, 100, 0], 24, Reserved),
        ([203, 0, 113, 0], 24, Reserved),
        ([224, 0, 0, 0], 4, Multicast),
        ([240, 0, 0, 0], 4, Reserved),
    ];
    TABLE.iter().find(|(net, prefix, _)| in_v4(addr, *net, *prefix)).map_or(Public, |(_, _, class)| *class)
}

fn classify_v6(addr: Ipv6Addr) -> AddressClass {
    use AddressClass::*;
    if let Some(v4) = embedded_v4(addr) {
        return classify_v4(v4);
    }
    const TABLE: &[([u16; 8], u32, AddressClass)] = &[
        ([0; 8], 128, Unspecified),
        ([0, 0, 0, 0, 0, 0, 0, 1], 128, Loopback),
        ([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128, Metadata),
        // The rest of ::/96: IPv4-compatible addresses, deprecated and unroutable.
        ([0; 8], 96, Reserved),
        ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, Private),
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, Private),
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, LinkLocal),
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, Multicast),
        ([0x0100, 0, 0, 0, 0, 0, 0, 0], 64, Reserved),
        ([0x2001, 0x0db8, 0, 0, 0, 0, 0, 0], 32, Reserved),
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, Reserved),
    ];
    if let Some((_, _, class)) = TABLE.iter().find(|(net, prefix, _)| in_v6(addr, *net, *prefix)) {
        return *class;
    }
    // Global unicast is 2000::/3; everything else is unallocated.
    if in_v6(addr, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3) { Public } else { Reserved }
}

/// The IPv4 address an IPv6 one reaches: IPv4-mapped, NAT64's well-known prefix, or 6to4.
fn embedded_v4(addr: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = addr.to_ipv4_mapped() {
        return Some(v4);
    }
    let bits = u128::from(addr);
    if in_v6(addr, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96) {
        return Some(Ipv4Addr::from(bits as u32));
    }
    if in_v6(addr, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        return Some(Ipv4Addr::from((bits >> 80) as u32));
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const ALL: UrlPolicy = UrlPolicy { allow_loopback: true, allow_private: true };
    const PRIVATE_ONLY: UrlPolicy = UrlPolicy { allow_loopback: false, allow_private: true };

    fn refused(addr: IpAddr, policy: UrlPolicy) -> bool {
        matches!(check_resolved(&[addr], policy), Err(UrlRefusal::Address { .. }))
    }

    /// An address inside `net/prefix`, the host bits taken from `noise`.
    fn v4_in(net: [u8; 4], prefix: u32, noise: u32) -> Ipv4Addr {
        let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
        Ipv4Addr::from((u32::from(Ipv4Addr::from(net)) & mask) | (noise & !mask))
    }

    fn v6_in(net: [u16; 8], prefix: u32, noise: u128) -> Ipv6Addr {
        let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
        Ipv6Addr::from((u128::from(Ipv6Addr::from(net)) & mask) | (noise & !mask))
    }

    fn mapped(v4: Ipv4Addr) -> IpAddr {
        IpAddr::V6(v4.to_ipv6_mapped())
    }

    /// Ranges never allowed, whatever the policy.
    const NEVER_V4: &[([u8; 4], u32)] = &[
        ([169, 254, 0, 0], 16),
        ([0, 0, 0, 0], 8),
        ([224, 0, 0, 0], 4),
        ([240, 0, 0, 0], 4),
        ([192, 0, 2, 0], 24),
        ([198, 18, 0, 0], 15),
    ];
    /// Ranges allowed only with `allow_private`.
    const PRIVATE_V4: &[([u8; 4], u32)] =
        &[([10, 0, 0, 0], 8), ([172, 16, 0, 0], 12), ([192, 168, 0, 0], 16), ([100, 64, 0, 0], 10)];
    const NEVER_V6: &[([u16; 8], u32)] = &[
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),
        ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
    ];
    const PRIVATE_V6: &[([u16; 8], u32)] = &[([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7)];

    proptest! {
        #[test]
        fn every_v4_address_in_a_refused_range_is_refused_also_when_mapped(noise: u32, which: prop::sample::Index) {
            let (net, prefix) = NEVER_V4[which.index(NEVER_V4.len())];
            let addr = v4_in(net, prefix, noise);
            for candidate in [IpAddr::V4(addr), mapped(addr)] {
                prop_assert!(refused(candidate, ALL), "{candidate} passed with everything allowed");
            }
            let (net, prefix) = PRIVATE_V4[which.index(PRIVATE_V4.len())];
            let private = v4_in(net, prefix, noise);
            // 100.100.100.200, inside 100.64/10, is a metadata address and never allowed.
            prop_assume!(classify(IpAddr::V4(private)) != AddressClass::Metadata);
            for candidate in [IpAddr::V4(private), mapped(private)] {
                prop_assert!(refused(candidate, UrlPolicy::LOCAL_TESTS), "{candidate} passed");
                prop_assert!(!refused(candidate, PRIVATE_ONLY),
                    "{candidate} refused though private addresses are allowed");
            }
            let loopback = v4_in([127, 0, 0, 0], 8, noise);
            for candidate in [IpAddr::V4(loopback), mapped(loopback)] {
                prop_assert!(refused(candidate, PRIVATE_ONLY));
                prop_assert!(!refused(candidate, UrlPolicy::LOCAL_TESTS), "{candidate} refused in tests");
            }
        }

        #[test]
        fn every_v6_address_in_a_refused_range_is_refused(noise: u128, which: prop::sample::Index) {
            let (net, prefix) = NEVER_V6[which.index(NEVER_V6.len())];
            let addr = IpAddr::V6(v6_in(net, prefix, noise));
            prop_assert!(refused(addr, ALL), "{addr} passed with everything allowed");
            let (net, prefix) = PRIVATE_V6[which.index(PRIVATE_V6.len())];
            let private = IpAddr::V6(v6_in(net, prefix, noise));
            prop_assert!(refused(private, UrlPolicy::LOCAL_TESTS), "{private} passed");
        }

        #[test]
        fn addresses_in_public_ranges_pass(noise: u32, noise6: u128) {
            for addr in [
                IpAddr::V4(v4_in([8, 0, 0, 0], 8, noise)),
                IpAddr::V4(v4_in([1, 1, 1, 0], 24, noise)),
                IpAddr::V6(v6_in([0x2606, 0x4700, 0, 0, 0, 0, 0, 0], 32, noise6)),
                IpAddr::V6(v6_in([0x2a00, 0x1450, 0, 0, 0, 0, 0, 0], 32, noise6)),
            ] {
                prop_assert_eq!(check_resolved(&[addr], UrlPolicy::PRODUCTION), Ok(()), "{}", addr);
            }
        }
    }

    #[test]
    fn each_special_address_has_its_class() {
        let cases: &[(&str, AddressClass)] = &[
            ("169.254.169.254", AddressClass::Metadata),
            ("fd00:ec2::254", AddressClass::Metadata),
            ("100.100.100.200", AddressClass::Metadata),
            ("::ffff:169.254.169.254", AddressClass::Metadata),
            ("64:ff9b::a9fe:a9fe", AddressClass::Metadata),
            ("2002:a9fe:a9fe::1", AddressClass::Metadata),
            ("0.0.0.0", AddressClass::Unspecified),
            ("::", AddressClass::Unspecified),
            ("255.255.255.255", AddressClass::Broadcast),
            ("224.0.0.1", AddressClass::Multicast),
            ("ff02::1", AddressClass::Multicast),
            ("127.0.0.1", AddressClass::Loopback),
            ("127.255.0.9", AddressClass::Loopback),
            ("::1", AddressClass::Loopback),
            ("::ffff:127.0.0.1", AddressClass::Loopback),
            ("10.0.0.1", AddressClass::Private),
            ("172.31.255.255", AddressClass::Private),
            ("192.168.1.1", AddressClass::Private),
            ("fd12:3456::1", AddressClass::Private),
            ("::ffff:10.1.2.3", AddressClass::Private),
            ("100.64.0.1", AddressClass::SharedAddressSpace),
            ("100.127.255.255", AddressClass::SharedAddressSpace),
            ("169.254.1.1", AddressClass::LinkLocal),
            ("fe80::1", AddressClass::LinkLocal),
            ("::1.2.3.4", AddressClass::Reserved),
            ("4000::1", AddressClass::Reserved),
            ("8.8.8.8", AddressClass::Public),
            ("1.1.1.1", AddressClass::Public),
            ("172.32.0.1", AddressClass::Public),
            ("100.128.0.1", AddressClass::Public),
            ("2606:4700::1111", AddressClass::Public),
            ("::ffff:8.8.8.8", AddressClass::Public),
            ("2002:808:808::1", AddressClass::Public),
        ];
        for (text, class) in cases {
            assert_eq!(classify(text.parse().unwrap()), *class, "{text}");
        }
    }

    #[test]
    fn https_urls_to_public_hosts_pass_with_any_port_and_come_back_parsed() {
        for url in [
            "https://hooks.example.com/leadflow",
            "https://hooks.example.com:8443/a?b=c",
            "https://8.8.8.8/x",
            "https://[2606:4700::1111]/x",
        ] {
            assert_eq!(
                check_url(url, UrlPolicy::PRODUCTION).unwrap().as_str(),
                Url::parse(url).unwrap().as_str()
            );
        }
    }

    #[test]
    fn ip_hosts_that_are_not_public_are_refused_in_any_spelling() {
        for url in [
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.1/hook",
            "https://[fd00:ec2::254]/",
            "https://[::ffff:169.254.169.254]/",
            "https://0xa9.0xfe.0xa9.0xfe/",
            "https://2852039166/",
            "https://0/",
            "https://127.1/",
        ] {
            assert!(
                matches!(check_url(url, UrlPolicy::PRODUCTION), Err(UrlRefusal::Address { .. })),
                "{url}: {:?}",
                check_url(url, UrlPolicy::PRODUCTION)
            );
        }
        // Allowing private addresses never opens the metadata service.
        let private = PRIVATE_ONLY;
        assert!(check_url("https://10.0.0.1/hook", private).is_ok());
        assert!(check_url("https://169.254.169.254/", ALL).is_err());
    }

    #[test]
    fn http_is_only_for_loopback_in_tests() {
        for url in
            ["http://127.0.0.1:8093/a", "http://localhost:8093/a", "http://[::1]/a", "http://LOCALHOST./a"]
        {
            assert!(check_url(url, UrlPolicy::LOCAL_TESTS).is_ok(), "{url}");
            assert_eq!(check_url(url, UrlPolicy::PRODUCTION).unwrap_err(), UrlRefusal::PlainHttp, "{url}");
        }
        for url in ["http://hooks.example.com/a", "http://8.8.8.8/a", "http://10.0.0.1/a"] {
            assert_eq!(check_url(url, ALL).unwrap_err(), UrlRefusal::PlainHttp, "{url}");
        }
        assert!(check_url("https://localhost/a", UrlPolicy::LOCAL_TESTS).is_ok());
        assert!(matches!(
            check_url("https://app.localhost/a", UrlPolicy::PRODUCTION),
            Err(UrlRefusal::Address { class: AddressClass::Loopback, .. })
        ));
    }

    #[test]
    fn other_schemes_userinfo_and_nonsense_are_refused() {
        assert_eq!(check_url("ftp://example.com/", ALL).unwrap_err(), UrlRefusal::Scheme("ftp".into()));
        assert_eq!(check_url("file:///etc/passwd", ALL).unwrap_err(), UrlRefusal::Scheme("file".into()));
        assert_eq!(check_url("https://user:pw@example.com/", ALL).unwrap_err(), UrlRefusal::Userinfo);
        assert_eq!(check_url("https://user@example.com/", ALL).unwrap_err(), UrlRefusal::Userinfo);
        assert!(matches!(check_url("not a url", ALL), Err(UrlRefusal::Unparsable(_))));
        assert!(matches!(check_url("https://", ALL), Err(UrlRefusal::Unparsable(_))));
    }

    #[test]
    fn resolved_addresses_are_refused_if_any_one_is() {
        let public: IpAddr = "8.8.8.8".parse().unwrap();
        let metadata: IpAddr = "169.254.169.254".parse().unwrap();
        assert_eq!(check_resolved(&[public], UrlPolicy::PRODUCTION), Ok(()));
        assert_eq!(
            check_resolved(&[public, metadata], UrlPolicy::PRODUCTION),
            Err(UrlRefusal::Address { addr: metadata, class: AddressClass::Metadata })
        );
        assert_eq!(check_resolved(&[], ALL), Err(UrlRefusal::NoAddresses));
    }
}
