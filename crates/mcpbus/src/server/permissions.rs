//! Topic permissions on the server's side (docs/auth.md, "Topic permissions"): the builder
//! takes the rules, and handlers check what they publish for a caller.

use super::context::Context;
use super::requests::events_ext::caller_principal;
use super::{Server, ServerBuilder, ToolError};
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
