//! Where a delivery goes, checked against SSRF (docs/protocol.md 3.6.5): the callback URL is
//! read once, its host is resolved at every attempt, every address that is not public is
//! refused unless the allow-list names it, and the connection goes to the address that was
//! checked (never resolved a second time), with the URL's host in `Host`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::config::{AllowList, canonical, in_net};

/// A callback URL, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallbackUrl {
    /// `https` (true) or `http`.
    pub(crate) https: bool,
    /// The host, lowercase, without brackets around an IPv6 address.
    pub(crate) host: String,
    pub(crate) port: u16,
    /// What goes in `Host`.
    pub(crate) authority: String,
    /// The request target.
    pub(crate) path_and_query: String,
}

impl CallbackUrl {
    /// Reads an absolute `http` or `https` URL without user information or fragment.
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        if url.contains('#') {
            return Err("delivery.url must not have a fragment".into());
        }
        let uri: http::Uri = url
            .parse()
            .map_err(|_| format!("delivery.url {url:?} is not a URL"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err("delivery.url must be an https URL".into()),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| "delivery.url has no host".to_owned())?;
        if authority.as_str().contains('@') {
            return Err("delivery.url must not carry user information".into());
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if host.is_empty() {
            return Err("delivery.url has no host".into());
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path_and_query = uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        Ok(CallbackUrl {
            https,
            host,
            port,
            authority: authority.as_str().to_owned(),
            path_and_query,
        })
    }

    /// Whether the allow-list covers this URL's host by name or as an address literal (what
    /// plain `http` needs).
    pub(crate) fn host_allowed(&self, allow: &AllowList) -> bool {
        self.origin_allowed(allow)
            || allow.allows_host(&self.host)
            || self
                .host
                .parse::<IpAddr>()
                .is_ok_and(|ip| allow.allows_ip(ip))
    }
}

impl CallbackUrl {
    /// Whether the URL lies under an origin allowed at runtime.
    pub(crate) fn origin_allowed(&self, allow: &AllowList) -> bool {
        allow.allows_origin(self.https, &self.host, self.port)
    }
}

/// Why a destination is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// It resolves only to addresses that are not public (nor allowed).
    NotPublic(IpAddr),
    /// It does not resolve.
    Unresolvable,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotPublic(ip) => write!(
                f,
                "delivery.url resolves to {ip}, which is not a public address (and the \
                 server's webhook allow-list does not name it)"
            ),
            Refusal::Unresolvable => f.write_str("delivery.url's host does not resolve"),
        }
    }
}

/// Resolves `url`'s host and picks the first address that may be contacted: a public one, or
/// one the allow-list covers (by range, or because it names the host).
pub(crate) async fn resolve(url: &CallbackUrl, allow: &AllowList) -> Result<SocketAddr, Refusal> {
    let addrs: Vec<SocketAddr> = match url.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, url.port)],
        Err(_) => tokio::net::lookup_host((url.host.as_str(), url.port))
            .await
            .map_err(|_| Refusal::Unresolvable)?
            .collect(),
    };
    let by_name = allow.allows_host(&url.host) || url.origin_allowed(allow);
    let first = addrs.first().ok_or(Refusal::Unresolvable)?.ip();
    addrs
        .into_iter()
        .find(|a| by_name || is_public(a.ip()) || allow.allows_ip(a.ip()))
        .ok_or(Refusal::NotPublic(first))
}

/// Whether an address is globally reachable, per the IANA special-purpose registries (IPv4
/// and IPv6): loopback, private, shared, link-local, documentation, benchmarking, multicast,
/// reserved, unique-local and the like are not.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => v4_is_public(v4),
        IpAddr::V6(v6) => v6_is_public(v6),
    }
}

const V4_SPECIAL: &[([u8; 4], u8)] = &[
    ([0, 0, 0, 0], 8),
    ([10, 0, 0, 0], 8),
    ([100, 64, 0, 0], 10),
    ([127, 0, 0, 0], 8),
    ([169, 254, 0, 0], 16),
    ([172, 16, 0, 0], 12),
    ([192, 0, 0, 0], 24),
    ([192, 0, 2, 0], 24),
    ([192, 31, 196, 0], 24),
    ([192, 52, 193, 0], 24),
    ([192, 88, 99, 0], 24),
    ([192, 168, 0, 0], 16),
    ([192, 175, 48, 0], 24),
    ([198, 18, 0, 0], 15),
    ([198, 51, 100, 0], 24),
    ([203, 0, 113, 0], 24),
    ([224, 0, 0, 0], 4),
    ([240, 0, 0, 0], 4),
];

fn v4_is_public(ip: Ipv4Addr) -> bool {
    !V4_SPECIAL
        .iter()
        .any(|(net, prefix)| in_net(IpAddr::V4(ip), IpAddr::V4(Ipv4Addr::from(*net)), *prefix))
}

fn v6_is_public(ip: Ipv6Addr) -> bool {
    let v6 = |s: &str, prefix: u8| {
        s.parse::<Ipv6Addr>()
            .is_ok_and(|net| in_net(IpAddr::V6(ip), IpAddr::V6(net), prefix))
    };
    // NAT64 (64:ff9b::/96) carries an IPv4 address: it is as public as that address.
    if v6("64:ff9b::", 96) {
        let [.., a, b, c, d] = ip.octets();
        return v4_is_public(Ipv4Addr::new(a, b, c, d));
    }
    // Only global unicast (2000::/3) is public, less its special blocks: IETF protocol
    // assignments (2001::/23, Teredo and benchmarking among them), documentation, 6to4.
    v6("2000::", 3)
        && !v6("2001::", 23)
        && !v6("2001:db8::", 32)
        && !v6("2002::", 16)
        && !v6("3fff::", 20)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn public(s: &str) -> bool {
        is_public(s.parse().unwrap())
    }

    #[test]
    fn special_addresses_are_not_public() {
        for s in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2001:db8::1",
            "2002::1",
        ] {
            assert!(!public(s), "{s} must not be public");
        }
    }

    #[test]
    fn global_addresses_are_public() {
        // Only classified, never contacted.
        for s in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(public(s), "{s} must be public");
        }
    }

    #[test]
    fn urls_are_read() {
        let u = CallbackUrl::parse("https://Hooks.Example/a/b?x=1").unwrap();
        assert!(u.https);
        assert_eq!(u.host, "hooks.example");
        assert_eq!(u.port, 443);
        assert_eq!(u.path_and_query, "/a/b?x=1");
        let u = CallbackUrl::parse("http://[::1]:8080").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 8080));
        assert_eq!(u.path_and_query, "/");
        assert!(CallbackUrl::parse("ftp://x/").is_err());
        assert!(CallbackUrl::parse("https://user@x/").is_err());
        assert!(CallbackUrl::parse("https://x/#f").is_err());
        assert!(CallbackUrl::parse("/relative").is_err());
    }

    #[tokio::test]
    async fn loopback_is_refused_unless_allowed() {
        let url = CallbackUrl::parse("http://127.0.0.1:9/hook").unwrap();
        let none = AllowList::default();
        assert_eq!(
            resolve(&url, &none).await,
            Err(Refusal::NotPublic("127.0.0.1".parse().unwrap()))
        );
        let allow = AllowList::parse(&["127.0.0.0/8".into()]).unwrap();
        assert_eq!(
            resolve(&url, &allow).await.unwrap(),
            "127.0.0.1:9".parse().unwrap()
        );
        assert!(url.host_allowed(&allow));
        assert!(!url.host_allowed(&none));
    }
}
