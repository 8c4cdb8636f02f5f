//! The settings of webhook delivery (docs/protocol.md 3.6.7), and the allow-list of private
//! destinations.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::store::{MemoryWebhookStore, WebhookStore};

/// How webhook subscriptions are served (`ServerBuilder::webhooks`). The defaults follow
/// SEP-3415's guidance: grants of 30 minutes (at most a day), five attempts spread over at most
/// 15 minutes, a 5 s timeout, bodies of at most 256 KiB.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The lifetime granted when the client suggests none (`ttlMs` absent; default 30 min).
    pub default_ttl: Duration,
    /// The shortest grant: shorter suggestions are clamped up to it (default 1 min).
    pub min_ttl: Duration,
    /// The longest grant (default 24 h). A suggestion of no expiry (`ttlMs: null`) is granted
    /// this: a subscription nobody refreshes must end, so no expiry is never granted.
    pub max_ttl: Duration,
    /// Retries of a failed delivery.
    pub retry: RetryPolicy,
    /// How long one attempt (connect, send, answer) may take (default 5 s).
    pub timeout: Duration,
    /// The largest body POSTed (default 256 KiB); a larger event is not sent (abandoned).
    pub max_body_bytes: usize,
    /// How long a successful endpoint verification covers a (principal, URL) (default 24 h).
    pub verification_ttl: Duration,
    /// How long the previous secret still signs after a client rotates it (default 5 min).
    pub rotation_grace: Duration,
    /// Private destinations allowed despite the SSRF protection: CIDR ranges
    /// (`127.0.0.0/8`, `fd00::/8`), single addresses, or host names (`hooks.internal`).
    /// Plain `http://` callback URLs are accepted only to these destinations.
    pub allow_private: Vec<String>,
    /// Root certificates (DER) trusted for `https` endpoints besides the Mozilla roots the
    /// build ships (default none): a private CA of the receivers' network.
    pub extra_root_certificates: Vec<Vec<u8>>,
    /// Webhook subscriptions held at once (default 10,000); beyond, ResourceExhausted.
    pub max_subscriptions: usize,
    /// Delivery is suspended when, within this window, at least
    /// [`suspend_min_attempts`](Self::suspend_min_attempts) attempts were made and 95% of them
    /// failed (default 60 min); a refresh resumes it.
    pub suspend_window: Duration,
    /// The fewest attempts in a window before it can suspend delivery (default 100).
    pub suspend_min_attempts: u32,
    /// Where subscriptions live (default: a [`MemoryWebhookStore`] of this server alone).
    /// Give the replicas of a deployment one shared store (e.g. `RedisBackend::webhook_store`)
    /// and their subscriptions survive restarts and move between them. The store holds the
    /// clients' signing secrets.
    pub store: Arc<dyn WebhookStore>,
    /// How long a replica's lease on a subscription's delivery lasts unless renewed (default
    /// 5 s; at least 100 ms). It is renewed every fifth of it: a subscription whose replica
    /// died is delivered again by another within about this long.
    pub lease_ttl: Duration,
    /// Verification POSTs sent to one host per minute at most (default 10); beyond, a
    /// subscribe that needs one is ResourceExhausted (`data.limit = "verifications"`). It
    /// bounds what subscribing many URLs of a victim's host can send it.
    pub max_verifications_per_host: u32,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            default_ttl: Duration::from_secs(30 * 60),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(5),
            max_body_bytes: 256 * 1024,
            verification_ttl: Duration::from_secs(24 * 3600),
            rotation_grace: Duration::from_secs(5 * 60),
            allow_private: Vec::new(),
            extra_root_certificates: Vec::new(),
            max_subscriptions: 10_000,
            suspend_window: Duration::from_secs(3600),
            suspend_min_attempts: 100,
            max_verifications_per_host: 10,
            store: Arc::new(MemoryWebhookStore::new()),
            lease_ttl: Duration::from_secs(5),
        }
    }
}

impl WebhookConfig {
    /// The lifetime granted for a suggestion (`ttlMs`: absent, `null`, or milliseconds).
    pub(crate) fn grant(&self, suggested: Option<Option<u64>>) -> Duration {
        let max = self.max_ttl.max(self.min_ttl);
        match suggested {
            None => self.default_ttl.max(self.min_ttl).min(max),
            Some(None) => max,
            Some(Some(ms)) => Duration::from_millis(ms).max(self.min_ttl).min(max),
        }
    }
}

/// Bounded exponential backoff: attempt `n` (from 1) is followed, when it fails, by a wait of
/// `initial_backoff * 2^(n-1)`, at most `max_backoff`; an event is abandoned after
/// `max_attempts`, or when the next attempt would start later than `max_window` after the
/// first.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per event, the first included (default 5).
    pub max_attempts: u32,
    /// The wait after the first failure (default 30 s).
    pub initial_backoff: Duration,
    /// The longest wait between two attempts (default 5 min).
    pub max_backoff: Duration,
    /// The longest time from an event's first attempt to its last (default 15 min).
    pub max_window: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(300),
            max_window: Duration::from_secs(900),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (from 1).
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(20);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// An entry of [`WebhookConfig::allow_private`] that is neither a range, an address nor a
/// host name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("webhook allow-list entry {0:?} is not a CIDR range, an address or a host name")]
pub struct InvalidAllowEntry(pub String);

/// An origin given to `Server::allow_webhook_origin` is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidOrigin {
    /// Not `http://host[:port]` or `https://host[:port]` (no user, path, query or fragment).
    #[error("{0:?} is not an origin: expected http(s)://host[:port], without a path")]
    Malformed(String),
    /// The server was built without webhooks.
    #[error("this server does not deliver webhooks")]
    NoWebhooks,
}

/// One origin allowed at runtime: its scheme (`https` or not), host (lowercase, no brackets)
/// and port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    https: bool,
    host: String,
    port: u16,
}

/// The parsed allow-list, and the origins allowed since the server started.
#[derive(Debug, Clone, Default)]
pub(crate) struct AllowList {
    nets: Vec<(IpAddr, u8)>,
    hosts: Vec<String>,
    origins: Arc<Mutex<Vec<Origin>>>,
}

impl AllowList {
    pub(crate) fn parse(entries: &[String]) -> Result<Self, InvalidAllowEntry> {
        let mut list = AllowList::default();
        for entry in entries {
            let bad = || InvalidAllowEntry(entry.clone());
            let trimmed = entry.trim();
            if let Some((addr, prefix)) = trimmed.split_once('/') {
                let addr: IpAddr = addr.parse().map_err(|_| bad())?;
                let prefix: u8 = prefix.parse().map_err(|_| bad())?;
                let bits = if addr.is_ipv4() { 32 } else { 128 };
                if prefix > bits {
                    return Err(bad());
                }
                list.nets.push((addr, prefix));
            } else if let Ok(addr) = trimmed.trim_matches(['[', ']']).parse::<IpAddr>() {
                let bits = if addr.is_ipv4() { 32 } else { 128 };
                list.nets.push((addr, bits));
            } else if is_host_name(trimmed) {
                list.hosts.push(trimmed.to_ascii_lowercase());
            } else {
                return Err(bad());
            }
        }
        Ok(list)
    }

    /// Allows callback URLs under `origin` for the rest of the process, past the `https` and
    /// public-address rules (nothing else). Returns the origin as it is matched.
    pub(crate) fn allow_origin(&self, origin: &str) -> Result<String, InvalidOrigin> {
        let malformed = || InvalidOrigin::Malformed(origin.to_owned());
        let uri: http::Uri = origin
            .trim_end_matches('/')
            .parse()
            .map_err(|_| malformed())?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(malformed()),
        };
        let authority = uri.authority().ok_or_else(malformed)?;
        let plain_path = uri.path_and_query().is_none_or(|p| p.as_str() == "/");
        if authority.as_str().contains('@') || !plain_path || origin.contains('#') {
            return Err(malformed());
        }
        let allowed = Origin {
            https,
            host: authority
                .host()
                .trim_matches(['[', ']'])
                .to_ascii_lowercase(),
            port: authority.port_u16().unwrap_or(if https { 443 } else { 80 }),
        };
        let shown = format!("{}://{}", if https { "https" } else { "http" }, authority);
        let mut origins = crate::util::lock(&self.origins);
        if !origins.contains(&allowed) {
            origins.push(allowed);
        }
        Ok(shown)
    }

    /// Whether a URL of this scheme, host and port lies under an origin allowed at runtime.
    pub(crate) fn allows_origin(&self, https: bool, host: &str, port: u16) -> bool {
        crate::util::lock(&self.origins)
            .iter()
            .any(|o| o.https == https && o.port == port && o.host.eq_ignore_ascii_case(host))
    }

    /// Whether `host` (a URL's host, lowercase) is allowed by name.
    pub(crate) fn allows_host(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// Whether `ip` lies in an allowed range.
    pub(crate) fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets
            .iter()
            .any(|(net, prefix)| in_net(ip, canonical(*net), *prefix))
    }
}

fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Whether `ip` is in `net/prefix` (both of one family).
pub(crate) fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_entries() {
        let list = AllowList::parse(&["127.0.0.0/8".into(), "::1".into(), "hooks.internal".into()])
            .unwrap();
        assert!(list.allows_ip("127.1.2.3".parse().unwrap()));
        assert!(list.allows_ip("::ffff:127.0.0.1".parse().unwrap()));
        assert!(list.allows_ip("::1".parse().unwrap()));
        assert!(!list.allows_ip("10.0.0.1".parse().unwrap()));
        assert!(list.allows_host("HOOKS.internal"));
        assert!(AllowList::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(AllowList::parse(&["not a host".into()]).is_err());
    }

    #[test]
    fn origins_are_allowed_exactly() {
        let list = AllowList::default();
        assert!(!list.allows_origin(false, "127.0.0.1", 8080));
        assert_eq!(
            list.allow_origin("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(list.allows_origin(false, "127.0.0.1", 8080));
        assert!(
            !list.allows_origin(true, "127.0.0.1", 8080),
            "another scheme"
        );
        assert!(
            !list.allows_origin(false, "127.0.0.1", 8081),
            "another port"
        );
        assert!(
            list.clone().allows_origin(false, "127.0.0.1", 8080),
            "clones share it"
        );
        list.allow_origin("https://[::1]").unwrap();
        assert!(list.allows_origin(true, "::1", 443));
        for bad in [
            "127.0.0.1:80",
            "http://h/path",
            "http://u@h",
            "ftp://h",
            "http://h?q",
            "",
        ] {
            assert!(list.allow_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn grants_are_clamped() {
        let c = WebhookConfig::default();
        assert_eq!(c.grant(None), Duration::from_secs(1800));
        assert_eq!(c.grant(Some(None)), Duration::from_secs(86400));
        assert_eq!(c.grant(Some(Some(10))), Duration::from_secs(60));
        assert_eq!(c.grant(Some(Some(u64::MAX))), Duration::from_secs(86400));
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let r = RetryPolicy::default();
        assert_eq!(r.backoff(1), Duration::from_secs(30));
        assert_eq!(r.backoff(2), Duration::from_secs(60));
        assert_eq!(r.backoff(4), Duration::from_secs(240));
        assert_eq!(r.backoff(5), Duration::from_secs(300));
        assert_eq!(r.backoff(60), Duration::from_secs(300));
    }
}
