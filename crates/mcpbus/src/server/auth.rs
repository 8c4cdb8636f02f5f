//! The smallest real authentication (docs/protocol.md 3.6.1): static bearer tokens, each
//! mapped to a principal, checked on the HTTP endpoint. A request of the 2026-07-28 era that
//! carries a known token acts as its principal: it may hold webhook subscriptions, and its
//! principal is its agent id for scoped topics. Requests without a token are served as before,
//! without a principal.

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::identity::Identity;
use crate::events::Principal;

/// Bearer tokens and the identity each one authenticates (`ServerBuilder::bearer_tokens`).
/// Tokens are kept as SHA-256 digests, looked up by digest; `Debug` shows principals only.
#[derive(Clone, Default)]
pub struct BearerTokens {
    by_digest: HashMap<[u8; 32], Arc<Identity>>,
}

impl std::fmt::Debug for BearerTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut principals: Vec<&str> = self.by_digest.values().map(|p| &*p.subject).collect();
        principals.sort_unstable();
        f.debug_struct("BearerTokens")
            .field("principals", &principals)
            .finish()
    }
}

/// A token or a principal the server refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidToken {
    /// Shorter than 16 bytes: too easy to guess.
    #[error("a bearer token must be at least 16 bytes long (principal {0:?})")]
    TooShort(String),
    /// Characters a bearer token may not have (RFC 6750 `b64token`).
    #[error("the bearer token of principal {0:?} has characters RFC 6750 does not allow")]
    Charset(String),
    /// An empty principal.
    #[error("a principal name must not be empty")]
    EmptyPrincipal,
}

impl BearerTokens {
    /// No tokens: nobody is authenticated, and an `Authorization` header is ignored.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `token`, authenticating `principal` (with no scopes).
    pub fn with(self, token: &str, principal: &str) -> Result<Self, InvalidToken> {
        self.with_identity(token, Identity::named(principal))
    }

    /// Adds `token`, authenticating `identity`.
    pub fn with_identity(mut self, token: &str, identity: Identity) -> Result<Self, InvalidToken> {
        let principal = &*identity.subject;
        if principal.is_empty() {
            return Err(InvalidToken::EmptyPrincipal);
        }
        if token.len() < 16 {
            return Err(InvalidToken::TooShort(principal.into()));
        }
        let b64token = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b);
        if !token.bytes().all(b64token) {
            return Err(InvalidToken::Charset(principal.into()));
        }
        self.by_digest.insert(digest(token), Arc::new(identity));
        Ok(self)
    }

    /// Whether no token is configured.
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// The identity a token authenticates.
    pub fn identity(&self, token: &str) -> Option<Arc<Identity>> {
        self.by_digest.get(&digest(token)).cloned()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// What an `Authorization` header says, given the configured tokens.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Authorization {
    /// No header, or no tokens configured (the header is then not looked at).
    Anonymous,
    /// A known token.
    Principal(Arc<Identity>),
    /// A header that is not a bearer token, or an unknown token.
    Refused,
}

impl BearerTokens {
    /// Reads an `Authorization` header value.
    pub(crate) fn authorize(&self, header: Option<&[u8]>) -> Authorization {
        let Some(header) = header.filter(|_| !self.is_empty()) else {
            return Authorization::Anonymous;
        };
        let Ok(header) = std::str::from_utf8(header) else {
            return Authorization::Refused;
        };
        let Some((scheme, token)) = header.trim().split_once(' ') else {
            return Authorization::Refused;
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Authorization::Refused;
        }
        self.identity(token.trim())
            .map_or(Authorization::Refused, Authorization::Principal)
    }
}

/// The principal the topic rules see for an authenticated caller of the 2026-07-28 era: its
/// agent id is the identity's, and it has no session (so `{session_id}` topics stay Forbidden).
pub(crate) fn topic_principal(identity: &Arc<Identity>) -> Principal {
    Principal {
        session_id: "".into(),
        agent_id: identity.agent_id.clone(),
        identity: Some(identity.clone()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_map_to_principals() {
        let tokens = BearerTokens::new()
            .with("alice-token-0123456789", "alice")
            .unwrap();
        assert_eq!(
            tokens.authorize(Some(b"Bearer alice-token-0123456789")),
            Authorization::Principal(Arc::new(Identity::named("alice")))
        );
        assert_eq!(
            tokens.authorize(Some(b"bearer alice-token-0123456789")),
            Authorization::Principal(Arc::new(Identity::named("alice")))
        );
        assert_eq!(tokens.authorize(None), Authorization::Anonymous);
        assert_eq!(
            tokens.authorize(Some(b"Bearer nope-nope-nope-nope")),
            Authorization::Refused
        );
        assert_eq!(
            tokens.authorize(Some(b"Basic YWxpY2U6cHc=")),
            Authorization::Refused
        );
        assert!(!format!("{tokens:?}").contains("token-0123"));
        assert_eq!(
            BearerTokens::new().authorize(Some(b"Bearer x")),
            Authorization::Anonymous
        );
        assert!(BearerTokens::new().with("short", "a").is_err());
        assert!(BearerTokens::new().with("has space in it ok", "a").is_err());
    }
}
