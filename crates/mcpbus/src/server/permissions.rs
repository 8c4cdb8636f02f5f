//! Topic permissions on the server's side (docs/auth.md, "Topic permissions"): the builder
//! takes the rules, handlers check what they publish for a caller, and a handshake-era session
//! opened with a credential stays bound to the identity it proved, so that the rules see the
//! same caller on every request of the session.

use std::sync::Arc;

use super::context::{Context, lock};
use super::requests::events_ext::caller_principal;
use super::{Identity, Server, ServerBuilder, ToolError};
use crate::events::access::{AccessDenied, AccessRules, Caller};

impl ServerBuilder {
    /// Topic permissions (docs/auth.md): who may subscribe to, publish on, and register
    /// webhooks for which topics, checked on every path (both eras' subscriptions, webhooks at
    /// registration and before each delivery, the tool and resource bridges, and publishes that
    /// ask [`Context::authorize_publish`]). They apply on top of the declared topics' own
    /// scoping and authorizers: both must allow. Without rules (the default) nothing changes.
    pub fn access_rules(mut self, rules: AccessRules) -> Self {
        self.access = rules;
        self
    }
}

impl Server {
    /// The topic permissions, e.g. to check a publish that arrives outside MCP (an HTTP
    /// endpoint of the application's).
    pub fn access_rules(&self) -> &AccessRules {
        self.inner.hub.declared().access()
    }

    /// Binds a handshake-era session being opened to the identity its credential proved: the
    /// rules see that identity, and its agent id is the session's (`{agent_id}`).
    pub(crate) fn open_with_identity(&self, session_id: &str, identity: Option<Arc<Identity>>) {
        let Some(identity) = identity else {
            return;
        };
        if let Some(session) = lock(&self.inner.sessions).get(session_id) {
            let mut principal = lock(&session.principal);
            principal.agent_id = identity.agent_id.clone();
            principal.identity = Some(identity);
        }
    }

    /// Marks a session another replica opened as bound to `subject`, until a request proves
    /// the full identity again ([`check_session_identity`](Self::check_session_identity)).
    pub(crate) fn set_bound_subject(&self, session_id: &str, subject: &str) {
        if let Some(session) = lock(&self.inner.sessions).get(session_id) {
            let mut principal = lock(&session.principal);
            let mut identity = Identity::named(subject);
            identity.agent_id = principal.agent_id.clone();
            principal.identity = Some(Arc::new(identity));
        }
    }

    /// Checks a request's credential against the identity its session is bound to: a bound
    /// session needs a credential of the same subject on every request (which refreshes the
    /// identity, scopes included). A session opened without one stays anonymous whatever later
    /// requests present.
    pub(crate) fn check_session_identity(
        &self,
        session_id: &str,
        identity: Option<Arc<Identity>>,
    ) -> Result<(), SessionCredential> {
        let Some(session) = lock(&self.inner.sessions).get(session_id).cloned() else {
            return Ok(());
        };
        let mut principal = lock(&session.principal);
        let Some(bound) = &principal.identity else {
            return Ok(());
        };
        match identity {
            None => Err(SessionCredential::Missing),
            Some(identity) if identity.subject == bound.subject => {
                principal.identity = Some(identity);
                Ok(())
            }
            Some(_) => Err(SessionCredential::Other),
        }
    }
}

/// Why a request may not act on a session bound to an identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionCredential {
    /// The request carries no credential.
    Missing,
    /// Its credential names another subject.
    Other,
}

impl Context {
    /// Whether the topic permissions let the caller publish on `topic` (a refusal is logged
    /// and counted). A handler that publishes on a caller's behalf asks this first; the `?`
    /// operator turns a refusal into a tool error.
    pub fn authorize_publish(&self, topic: &str) -> Result<(), AccessDenied> {
        self.server
            .access_rules()
            .check_publish(&self.caller(), topic)
    }

    /// The caller as the topic permissions see it.
    pub(crate) fn caller(&self) -> Caller {
        Caller::of(caller_principal(self).as_ref())
    }
}

impl From<AccessDenied> for ToolError {
    fn from(denied: AccessDenied) -> Self {
        ToolError::failed(denied.to_string())
    }
}
