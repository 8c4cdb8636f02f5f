//! The authorization server's signing keys, cached, and the verifier of JWT access tokens that
//! uses them (docs/auth.md).
//!
//! The key set (the metadata's `jwks_uri`, or a configured one) is fetched when first needed
//! and kept for `max_age`. A token naming a `kid` the cached set lacks makes the server fetch
//! the set again (the authorization server rotated its keys), but never sooner than
//! `min_refresh` after the previous fetch: tokens with made-up key ids cannot make the server
//! hammer the authorization server, and until the next fetch is allowed they are refused as
//! invalid. When the set cannot be fetched the answer is `Unavailable` (503), unless the
//! cached set, stale or not, holds the token's key.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;
use tokio::time::Instant;

use super::claims::{self, Policy, Source};
use super::discovery::Discovery;
use super::error::{TokenError, clip};
use super::fetch::{Fetcher, Url};
use super::jws::{self, Alg, Jwk};
use super::verifier::TokenVerifier;
use crate::server::Identity;

/// Where the key set is.
#[derive(Debug)]
pub(crate) enum KeySource {
    /// A configured `jwks_uri`.
    Fixed(Url),
    /// The `jwks_uri` of the authorization server's metadata.
    Discovered(Arc<Discovery>),
}

/// How long keys are kept, and how often they may be fetched.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CachePolicy {
    /// A key set older than this is fetched again before use.
    pub(crate) max_age: Duration,
    /// The least time between two fetches.
    pub(crate) min_refresh: Duration,
}

/// The cached key set.
#[derive(Debug)]
pub(crate) struct KeyCache {
    source: KeySource,
    fetcher: Fetcher,
    policy: CachePolicy,
    state: tokio::sync::Mutex<Cached>,
}

#[derive(Debug, Default)]
struct Cached {
    keys: Option<(Arc<[Jwk]>, Instant)>,
    /// When the last fetch (successful or not) started.
    last_fetch: Option<Instant>,
    /// Why the last fetch failed, while no later one succeeded.
    failure: Option<String>,
}

impl KeyCache {
    pub(crate) fn new(source: KeySource, fetcher: Fetcher, policy: CachePolicy) -> Self {
        KeyCache {
            source,
            fetcher,
            policy,
            state: Default::default(),
        }
    }

    /// The keys that may have signed a token of `alg` naming `kid` (every key of the set that
    /// fits the algorithm when the token names none). Fetches the set when it is missing,
    /// stale, or lacks the key, as the rate limit allows.
    pub(crate) async fn keys_for(
        &self,
        kid: Option<&str>,
        alg: Alg,
    ) -> Result<Vec<Jwk>, TokenError> {
        // One fetch at a time: verifications that need it wait for it rather than each
        // asking the authorization server.
        let mut state = self.state.lock().await;
        let fresh = state
            .keys
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() < self.policy.max_age);
        let known = matching(&state, kid, alg);
        if fresh && !known.is_empty() {
            return Ok(known);
        }
        let may_fetch = state
            .last_fetch
            .is_none_or(|at| at.elapsed() >= self.policy.min_refresh);
        if may_fetch {
            state.last_fetch = Some(Instant::now());
            match self.fetch().await {
                Ok(keys) => {
                    state.keys = Some((keys.into(), Instant::now()));
                    state.failure = None;
                }
                Err(why) => {
                    tracing::warn!("authorization server keys: {why}");
                    state.failure = Some(why);
                }
            }
        }
        let found = matching(&state, kid, alg);
        match (&state.keys, &state.failure) {
            _ if !found.is_empty() => Ok(found),
            // The keys could not be fetched: the token cannot be judged either way.
            (None, _) | (Some(_), Some(_)) => Err(TokenError::Unavailable(
                state
                    .failure
                    .clone()
                    .unwrap_or_else(|| "the signing keys were not fetched yet".into()),
            )),
            (Some(_), None) => Err(TokenError::BadSignature(match kid {
                Some(kid) => format!(
                    "no key '{}' of the authorization server fits {}",
                    clip(kid),
                    alg.name()
                ),
                None => format!("no key of the authorization server fits {}", alg.name()),
            })),
        }
    }

    async fn fetch(&self) -> Result<Vec<Jwk>, String> {
        let url = match &self.source {
            KeySource::Fixed(url) => url.clone(),
            KeySource::Discovered(discovery) => {
                let metadata = discovery.metadata().await.map_err(|e| e.to_string())?;
                let uri = metadata.jwks_uri.as_deref().ok_or_else(|| {
                    "the authorization server's metadata has no jwks_uri".to_owned()
                })?;
                Url::parse(uri)?
            }
        };
        let document = self
            .fetcher
            .get_json(&url)
            .await
            .map_err(|e| e.to_string())?;
        parse_set(&document).map_err(|e| format!("{}: {e}", url.text))
    }
}

/// The keys of `state` for `kid` and `alg`.
fn matching(state: &Cached, kid: Option<&str>, alg: Alg) -> Vec<Jwk> {
    let Some((keys, _)) = &state.keys else {
        return Vec::new();
    };
    keys.iter()
        .filter(|k| k.fits(alg) && kid.is_none_or(|kid| k.kid.as_deref() == Some(kid)))
        .cloned()
        .collect()
}

/// The usable signing keys of a JWK Set document; keys of other types or uses are skipped, a
/// malformed signing key is an error.
pub(crate) fn parse_set(document: &Value) -> Result<Vec<Jwk>, String> {
    let Some(keys) = document.get("keys").and_then(Value::as_array) else {
        return Err("the key set has no \"keys\" list".into());
    };
    let mut usable = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let key = key
            .as_object()
            .ok_or_else(|| format!("key {i} is not an object"))?;
        if let Some(jwk) = Jwk::parse(key).map_err(|e| format!("key {i}: {e}"))? {
            usable.push(jwk);
        }
    }
    Ok(usable)
}

/// Verifies JWT access tokens: signature with the authorization server's keys, then claims.
/// Tokens that are not JWTs are left to the next verifier.
#[derive(Debug)]
pub(crate) struct JwtVerifier {
    pub(crate) keys: KeyCache,
    pub(crate) policy: Arc<Policy>,
}

impl JwtVerifier {
    async fn check(&self, token: &str) -> Result<Identity, TokenError> {
        if !jws::looks_like_jwt(token) {
            return Err(TokenError::Unrecognized);
        }
        let jws = jws::parse(token)?;
        let keys = self.keys.keys_for(jws.kid.as_deref(), jws.alg).await?;
        if !keys.iter().any(|k| jws.verifies_with(k)) {
            return Err(TokenError::BadSignature(
                "no key of the authorization server verifies it".into(),
            ));
        }
        claims::identity(&jws.claims, &self.policy, Source::Jwt, claims::now_secs())
    }
}

impl TokenVerifier for JwtVerifier {
    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Identity, TokenError>> {
        self.check(token).boxed()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::Ordering;

    use mcpbus_testkit::{AuthServer, MetadataAt};
    use serde_json::json;

    use super::*;

    #[test]
    fn a_key_set_keeps_its_signing_keys() {
        let set = json!({"keys": [
            {"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"},
            {"kty": "oct", "k": "c2VjcmV0"},
            {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"},
        ]});
        let keys = parse_set(&set).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("r"));
        assert!(parse_set(&json!({})).is_err());
        assert!(parse_set(&json!({"keys": [1]})).is_err());
        assert!(parse_set(&json!({"keys": [{"kty": "RSA", "e": "AQAB"}]})).is_err());
    }

    fn cache(auth: &AuthServer, min_refresh: Duration) -> KeyCache {
        let url = Url::parse(&format!("{}/jwks", auth.issuer())).unwrap();
        let fetcher = Fetcher::new(
            crate::webhooks::Tls::new(&[]).unwrap(),
            Duration::from_secs(5),
        );
        let policy = CachePolicy {
            max_age: Duration::from_secs(600),
            min_refresh,
        };
        KeyCache::new(KeySource::Fixed(url), fetcher, policy)
    }

    #[tokio::test]
    async fn an_unknown_kid_refetches_the_set_at_most_once_per_interval() {
        let auth = AuthServer::start(MetadataAt::OAuth);
        let keys = cache(&auth, Duration::from_millis(300));
        let fetches = || auth.hits.jwks.load(Ordering::SeqCst);
        assert_eq!(
            keys.keys_for(Some("es-1"), Alg::Es256).await.unwrap().len(),
            1
        );
        // Both keys fit nothing but their own family; a kid-less token tries all that fit.
        assert_eq!(keys.keys_for(None, Alg::Rs256).await.unwrap().len(), 1);
        assert_eq!(fetches(), 1);
        // Junk key ids: none within the interval of the last fetch; after it, one fetch, then
        // refusals without asking again.
        let junk = keys.keys_for(Some("junk"), Alg::Es256).await.unwrap_err();
        assert!(matches!(junk, TokenError::BadSignature(_)), "{junk}");
        assert_eq!(fetches(), 1);
        tokio::time::sleep(Duration::from_millis(350)).await;
        for _ in 0..5 {
            let junk = keys.keys_for(Some("junk"), Alg::Es256).await.unwrap_err();
            assert!(matches!(junk, TokenError::BadSignature(_)), "{junk}");
        }
        assert_eq!(fetches(), 2);
        let wrong_family = keys.keys_for(Some("rs-1"), Alg::Es256).await.unwrap_err();
        assert!(matches!(wrong_family, TokenError::BadSignature(_)));
        // After the interval, a rotated key is found.
        auth.add_key("es-2");
        auth.publish("es-2");
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(
            keys.keys_for(Some("es-2"), Alg::Es256).await.unwrap().len(),
            1
        );
        assert_eq!(fetches(), 3);
    }

    #[tokio::test]
    async fn keys_that_cannot_be_fetched_are_unavailable_unless_cached() {
        let auth = AuthServer::start(MetadataAt::OAuth);
        auth.set_failing(true);
        let keys = cache(&auth, Duration::from_millis(200));
        let down = keys.keys_for(Some("es-1"), Alg::Es256).await.unwrap_err();
        assert!(matches!(down, TokenError::Unavailable(_)), "{down}");
        // Within the interval the server is not asked again, and the answer stays the same.
        let again = keys.keys_for(Some("es-1"), Alg::Es256).await.unwrap_err();
        assert!(matches!(again, TokenError::Unavailable(_)));
        assert_eq!(
            auth.hits.jwks.load(Ordering::SeqCst),
            0,
            "503 before counting"
        );
        auth.set_failing(false);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(keys.keys_for(Some("es-1"), Alg::Es256).await.is_ok());
        // Down again: a known key still verifies from the cache; an unknown one cannot be
        // judged.
        auth.set_failing(true);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(keys.keys_for(Some("es-1"), Alg::Es256).await.is_ok());
        let unknown = keys.keys_for(Some("es-9"), Alg::Es256).await.unwrap_err();
        assert!(matches!(unknown, TokenError::Unavailable(_)), "{unknown}");
    }
}
