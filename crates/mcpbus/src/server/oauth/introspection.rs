//! RFC 7662 token introspection (docs/auth.md): for opaque access tokens (or any token, when
//! the server does not check JWTs itself), the authorization server is asked whether the token
//! is active, authenticating as the resource server's own client (HTTP Basic). An active
//! token's answer goes through the same checks as a JWT's claims (issuer when named, audience,
//! lifetime, subject). Answers are cached briefly, keyed by the token's SHA-256: an active one
//! until the configured time or the token's `exp`, whichever comes first; an inactive one for
//! the configured time, so that a replayed junk token does not reach the authorization server
//! on every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::claims::{self, Policy, Source};
use super::discovery::Discovery;
use super::error::TokenError;
use super::fetch::{Fetcher, Url, form_encode};
use super::verifier::TokenVerifier;
use crate::server::Identity;
use crate::util::lock;

/// The most answers cached; past it, expired ones go, then all of them.
const MAX_CACHED: usize = 10_000;

/// Asks the authorization server about tokens.
#[derive(Debug)]
pub(crate) struct Introspector {
    /// The configured endpoint, or the metadata's.
    pub(crate) endpoint: Option<Url>,
    pub(crate) discovery: Arc<Discovery>,
    pub(crate) fetcher: Fetcher,
    /// `Basic base64(client_id:client_secret)`, each part form-encoded (RFC 6749 2.3.1).
    pub(crate) authorization: String,
    pub(crate) cache_ttl: Duration,
    pub(crate) policy: Arc<Policy>,
    pub(crate) cache: Mutex<HashMap<[u8; 32], Cached>>,
}

/// A cached answer and until when it stands.
#[derive(Debug, Clone)]
pub(crate) struct Cached {
    answer: Result<Identity, TokenError>,
    until: Instant,
}

/// The `Authorization` header of the resource server's own client.
pub(crate) fn basic_authorization(client_id: &str, client_secret: &str) -> String {
    let pair = format!("{}:{}", form_encode(client_id), form_encode(client_secret));
    format!("Basic {}", STANDARD.encode(pair))
}

impl Introspector {
    async fn check(&self, token: &str) -> Result<Identity, TokenError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(hit) = lock(&self.cache)
            .get(&key)
            .filter(|c| c.until > Instant::now())
        {
            return hit.answer.clone();
        }
        let answer = self.ask(token).await?;
        let now = claims::now_secs();
        let checked = if answer.get("active") == Some(&Value::Bool(true)) {
            let claims = answer.as_object().cloned().unwrap_or_default();
            claims::identity(&claims, &self.policy, Source::Introspection, now)
        } else {
            Err(TokenError::Inactive)
        };
        self.remember(key, &checked, &answer, now);
        checked
    }

    /// The endpoint's answer (a JSON object); `Unavailable` when it cannot be had.
    async fn ask(&self, token: &str) -> Result<Value, TokenError> {
        let endpoint = match &self.endpoint {
            Some(url) => url.clone(),
            None => {
                let metadata = self.discovery.metadata().await?;
                let uri = metadata.introspection_endpoint.as_deref().ok_or_else(|| {
                    TokenError::Unavailable(
                        "the authorization server's metadata has no introspection_endpoint".into(),
                    )
                })?;
                Url::parse(uri).map_err(TokenError::Unavailable)?
            }
        };
        let form = format!("token={}&token_type_hint=access_token", form_encode(token));
        self.fetcher
            .post_form(&endpoint, form, &self.authorization)
            .await
            .map_err(|e| {
                // A refusal of our own client credentials is the deployment's problem, not the
                // caller's: it shows in the log, and the caller may retry.
                tracing::warn!("token introspection: {e}");
                TokenError::Unavailable(e.to_string())
            })
    }

    /// Caches an answer: an accepted token until the cache time or its expiry, a refused one
    /// for the cache time (a malformed answer is not cached).
    fn remember(
        &self,
        key: [u8; 32],
        checked: &Result<Identity, TokenError>,
        answer: &Value,
        now: u64,
    ) {
        if matches!(checked, Err(TokenError::Claim(_))) {
            return;
        }
        let mut ttl = self.cache_ttl;
        let exp = answer
            .as_object()
            .and_then(|c| claims::numeric_date(c, "exp").ok().flatten());
        if let Some(exp) = exp {
            ttl = ttl.min(Duration::from_secs(exp.saturating_sub(now)));
        }
        if ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut cache = lock(&self.cache);
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, c| c.until > now);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(
            key,
            Cached {
                answer: checked.clone(),
                until: now + ttl,
            },
        );
    }
}

impl TokenVerifier for Introspector {
    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Identity, TokenError>> {
        self.check(token).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_credentials_are_form_encoded_then_base64() {
        // RFC 6749 2.3.1: "a b:c" as client id and "p@ss" as secret.
        let header = basic_authorization("a b:c", "p@ss");
        let decoded = STANDARD
            .decode(header.trim_start_matches("Basic "))
            .unwrap_or_default();
        assert_eq!(String::from_utf8_lossy(&decoded), "a+b%3Ac:p%40ss");
    }
}
