//! Who a request authenticated as (docs/auth.md): the identity a credential proves, handed to
//! every handler through [`Context::identity`](super::Context::identity) and to the topic rules
//! through [`Principal::identity`](crate::events::Principal::identity).

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An authenticated caller: what a verified credential (a static bearer token, or an OAuth
/// access token) says about who is calling. It serializes (camelCase) for the stores shared
/// by replicas: a session's record, a webhook subscription's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// Who the credential names: a static token's principal, or an access token's `sub`.
    pub subject: Arc<str>,
    /// The OAuth client the token was issued to, when the credential says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<Arc<str>>,
    /// The scopes the credential grants.
    #[serde(default)]
    pub scopes: BTreeSet<String>,
    /// The agent id the caller's `{agent_id}` topics are bound to: the subject unless the
    /// server takes it from another claim.
    pub agent_id: Arc<str>,
    /// The claims the server chose to keep from the credential (none for a static token).
    #[serde(default)]
    pub claims: Map<String, Value>,
}

impl Identity {
    /// An identity that is only a name: its agent id is its subject, and it has no client, no
    /// scopes and no claims (what a static bearer token proves).
    pub fn named(subject: impl Into<Arc<str>>) -> Self {
        let subject = subject.into();
        Identity {
            agent_id: subject.clone(),
            subject,
            client_id: None,
            scopes: BTreeSet::new(),
            claims: Map::new(),
        }
    }

    /// This identity, granted `scopes` as well.
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes.extend(scopes.into_iter().map(Into::into));
        self
    }

    /// Whether the credential grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_identity_is_its_own_agent_with_no_scopes() {
        let id = Identity::named("alice").with_scopes(["events:publish"]);
        assert_eq!(&*id.agent_id, "alice");
        assert!(id.has_scope("events:publish"));
        assert!(!id.has_scope("events:subscribe"));
        assert!(id.client_id.is_none() && id.claims.is_empty());
    }
}
