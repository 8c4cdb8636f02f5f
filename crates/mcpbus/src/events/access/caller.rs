//! Who asks, as the topic permissions see it: the identity a credential proved, if any, and the
//! ids the rules' placeholders are filled with.

use std::sync::Arc;

use super::rule::Var;
use crate::events::Principal;
use crate::server::Identity;

/// A caller of the topic permissions ([`AccessRules`](super::AccessRules)).
#[derive(Debug, Clone, Default)]
pub struct Caller {
    identity: Option<Arc<Identity>>,
    agent_id: Option<Arc<str>>,
    session_id: Option<Arc<str>>,
    privileged: bool,
}

impl Caller {
    /// A caller without a credential, agent id or session.
    pub fn anonymous() -> Self {
        Caller::default()
    }

    /// A caller authenticated as `identity`; its agent id is the identity's.
    pub fn authenticated(identity: Arc<Identity>) -> Self {
        Caller {
            agent_id: Some(identity.agent_id.clone()),
            identity: Some(identity),
            ..Caller::default()
        }
    }

    /// This caller, with `agent_id` as its `{agent_id}`.
    pub fn with_agent_id(mut self, agent_id: impl Into<Arc<str>>) -> Self {
        self.agent_id = Some(agent_id.into());
        self
    }

    /// This caller, with `session_id` as its `{session_id}`.
    pub fn with_session_id(mut self, session_id: impl Into<Arc<str>>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }

    /// This caller, granted every action on every topic unless a deny rule that applies to it
    /// refuses: an operator's credential, such as `mcpbus serve`'s shared publish token.
    pub fn privileged(mut self) -> Self {
        self.privileged = true;
        self
    }

    /// What the caller authenticated as, if it did.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_deref()
    }

    /// The caller a subscriber is: its identity, agent id and session id (an empty id is none:
    /// an authenticated request of the 2026-07-28 era has no session).
    pub(crate) fn of(principal: Option<&Principal>) -> Self {
        let Some(p) = principal else {
            return Caller::anonymous();
        };
        let id = |s: &Arc<str>| (!s.is_empty()).then(|| s.clone());
        Caller {
            identity: p.identity.clone(),
            agent_id: id(&p.agent_id),
            session_id: id(&p.session_id),
            privileged: false,
        }
    }

    pub(crate) fn is_privileged(&self) -> bool {
        self.privileged
    }

    /// The value a placeholder is filled with, if the caller has one.
    pub(crate) fn value(&self, var: Var) -> Option<&str> {
        match var {
            Var::AgentId => self.agent_id.as_deref(),
            Var::SessionId => self.session_id.as_deref(),
            Var::Subject => self.identity.as_deref().map(|i| &*i.subject),
            Var::ClientId => self
                .identity
                .as_deref()
                .and_then(|i| i.client_id.as_deref()),
        }
    }

    /// The caller's subject, for the logs (`-` without a credential).
    pub(crate) fn subject(&self) -> &str {
        self.identity.as_deref().map_or("-", |i| &*i.subject)
    }
}
