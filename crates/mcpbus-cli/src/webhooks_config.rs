//! `[webhooks]` and `[[auth.tokens]]`: SEP-3415 webhook delivery in `mcpbus serve`, and the
//! bearer tokens that give requests the principal webhooks need (docs/protocol.md 3.6).

use std::path::{Path, PathBuf};
use std::time::Duration;

use mcpbus::server::auth::{BearerTokens, InvalidToken};
use mcpbus::webhooks::{RetryPolicy, WebhookConfig, WebhookTlsError, certificates_from_pem};
use serde::Deserialize;

/// `[webhooks]`; every duration in milliseconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhooksSection {
    /// Serve `events/subscribe` (default false).
    #[serde(default)]
    pub enabled: bool,
    /// Lifetime granted when the client suggests none.
    pub default_ttl_ms: Option<u64>,
    /// The shortest lifetime granted.
    pub min_ttl_ms: Option<u64>,
    /// The longest lifetime granted (also for `ttlMs: null`).
    pub max_ttl_ms: Option<u64>,
    /// Attempts per event, the first included.
    pub max_attempts: Option<u32>,
    /// The wait after a first failure, doubled after each further one.
    pub initial_backoff_ms: Option<u64>,
    /// The longest wait between attempts.
    pub max_backoff_ms: Option<u64>,
    /// The longest time from an event's first attempt to its last.
    pub retry_window_ms: Option<u64>,
    /// How long one attempt may take.
    pub timeout_ms: Option<u64>,
    /// The largest body POSTed.
    pub max_body_bytes: Option<usize>,
    /// Webhook subscriptions held at once.
    pub max_subscriptions: Option<usize>,
    /// How long a replica's lease on a subscription's delivery lasts unless renewed (with
    /// Redis: a subscription whose replica died moves to another within about this long).
    pub lease_ttl_ms: Option<u64>,
    /// Private ranges, addresses or host names deliveries may go to.
    #[serde(default)]
    pub allow_private: Vec<String>,
    /// A PEM file of CA certificates trusted for https endpoints besides the built-in roots.
    pub ca_file: Option<PathBuf>,
}

/// Why `[webhooks]` cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WebhooksConfigError {
    /// The CA file cannot be read.
    #[error("[webhooks] ca_file {path}: {source}")]
    CaFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The CA file has no usable certificate.
    #[error("[webhooks] ca_file {path}: {source}")]
    CaPem {
        /// The file.
        path: String,
        /// Why.
        source: WebhookTlsError,
    },
}

impl Default for WebhooksSection {
    fn default() -> Self {
        toml::from_str("").unwrap_or_else(|_| unreachable!("every field has a default"))
    }
}

impl WebhooksSection {
    /// The library's settings, or `None` when webhooks are off.
    pub(crate) fn to_config(&self) -> Result<Option<WebhookConfig>, WebhooksConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        let extra_root_certificates = match &self.ca_file {
            None => Vec::new(),
            Some(path) => read_ca_file(path)?,
        };
        let d = WebhookConfig::default();
        let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
        Ok(Some(WebhookConfig {
            default_ttl: ms(self.default_ttl_ms, d.default_ttl),
            min_ttl: ms(self.min_ttl_ms, d.min_ttl),
            max_ttl: ms(self.max_ttl_ms, d.max_ttl),
            retry: RetryPolicy {
                max_attempts: self.max_attempts.unwrap_or(d.retry.max_attempts).max(1),
                initial_backoff: ms(self.initial_backoff_ms, d.retry.initial_backoff),
                max_backoff: ms(self.max_backoff_ms, d.retry.max_backoff),
                max_window: ms(self.retry_window_ms, d.retry.max_window),
            },
            timeout: ms(self.timeout_ms, d.timeout),
            max_body_bytes: self.max_body_bytes.unwrap_or(d.max_body_bytes),
            max_subscriptions: self.max_subscriptions.unwrap_or(d.max_subscriptions),
            allow_private: self.allow_private.clone(),
            extra_root_certificates,
            lease_ttl: ms(self.lease_ttl_ms, d.lease_ttl),
            ..d
        }))
    }
}

/// The certificates of a PEM file.
fn read_ca_file(path: &Path) -> Result<Vec<Vec<u8>>, WebhooksConfigError> {
    let shown = || path.display().to_string();
    let pem = std::fs::read(path).map_err(|source| WebhooksConfigError::CaFile {
        path: shown(),
        source,
    })?;
    certificates_from_pem(&pem).map_err(|source| WebhooksConfigError::CaPem {
        path: shown(),
        source,
    })
}

/// `[auth]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthSection {
    /// Bearer tokens of the HTTP endpoint, each naming a principal.
    #[serde(default)]
    pub tokens: Vec<TokenEntry>,
    /// The HTTP endpoint as an OAuth resource server (docs/auth.md).
    pub oauth: Option<crate::oauth_config::OAuthSection>,
    /// Serve beyond loopback without any authentication (also `--allow-unauthenticated`).
    #[serde(default)]
    pub allow_unauthenticated: bool,
}

/// One `[[auth.tokens]]`: the token itself comes from the environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenEntry {
    /// Who the token authenticates.
    pub principal: String,
    /// The environment variable holding the token (16 bytes or more).
    pub token_env: String,
}

/// Why `[auth]` cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthConfigError {
    /// A token's variable is not set.
    #[error("[auth] token of principal {principal:?}: the environment variable {var} is not set")]
    MissingToken {
        /// The principal.
        principal: String,
        /// The variable.
        var: String,
    },
    /// A token or principal is unusable.
    #[error("[auth] {0}")]
    Token(#[from] InvalidToken),
}

impl AuthSection {
    /// The tokens, read from the environment through `env`.
    pub(crate) fn to_tokens(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<BearerTokens, AuthConfigError> {
        let mut tokens = BearerTokens::new();
        for entry in &self.tokens {
            let token = env(&entry.token_env).ok_or_else(|| AuthConfigError::MissingToken {
                principal: entry.principal.clone(),
                var: entry.token_env.clone(),
            })?;
            tokens = tokens.with(&token, &entry.principal)?;
        }
        Ok(tokens)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn webhooks_are_off_unless_enabled() {
        assert!(WebhooksSection::default().to_config().unwrap().is_none());
        let s: WebhooksSection = toml::from_str(
            "enabled = true\ninitial_backoff_ms = 50\nallow_private = [\"127.0.0.0/8\"]",
        )
        .unwrap();
        let c = s.to_config().unwrap().unwrap();
        assert_eq!(c.retry.initial_backoff, Duration::from_millis(50));
        assert_eq!(c.retry.max_attempts, 5);
        assert_eq!(c.allow_private, ["127.0.0.0/8"]);
    }

    #[test]
    fn a_ca_file_that_is_missing_or_holds_no_certificate_is_refused() {
        let section = |path: &str| -> WebhooksSection {
            toml::from_str(&format!("enabled = true\nca_file = {path:?}")).unwrap()
        };
        let missing = section("/nonexistent/ca.pem").to_config().unwrap_err();
        assert!(
            matches!(missing, WebhooksConfigError::CaFile { .. }),
            "{missing}"
        );
        let dir = std::env::temp_dir().join(format!("mcpbus-ca-{}", std::process::id()));
        std::fs::write(&dir, "not pem").unwrap();
        let empty = section(dir.to_str().unwrap()).to_config().unwrap_err();
        std::fs::remove_file(&dir).unwrap();
        assert!(
            empty.to_string().contains("no CERTIFICATE section"),
            "{empty}"
        );
    }

    #[test]
    fn tokens_come_from_the_environment() {
        let s: AuthSection =
            toml::from_str("tokens = [{ principal = \"alice\", token_env = \"T\" }]").unwrap();
        let tokens = s
            .to_tokens(|v| (v == "T").then(|| "0123456789abcdef".into()))
            .unwrap();
        assert_eq!(
            tokens
                .identity("0123456789abcdef")
                .map(|i| i.subject.clone()),
            Some("alice".into())
        );
        assert!(s.to_tokens(|_| None).is_err());
        assert!(s.to_tokens(|_| Some("short".into())).is_err());
    }
}
