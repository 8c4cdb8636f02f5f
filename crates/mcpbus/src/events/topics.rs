//! Declared topics: what a server offers (docs/protocol.md 2.1), who may subscribe to what
//! (2.3, 2.5).

use std::collections::BTreeMap;
use std::sync::Arc;

use mcpbus_proto::events::{EventKind, EventTopicDescriptor, SuggestedHandle, reject_reason};
use mcpbus_proto::events_ext::DeliveryMode;
use mcpbus_proto::topic::{DeclaredPattern, TopicError, TopicPattern};
use serde_json::Value;

use super::access::{AccessRules, Caller};

/// Who is subscribing: what the server knows of the caller's identity.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The caller's session id (also sent in `InitializeResult._meta.session_id`).
    pub session_id: Arc<str>,
    /// The caller's agent id (by default its session id).
    pub agent_id: Arc<str>,
    /// What the caller authenticated as, if it did (docs/auth.md).
    pub identity: Option<Arc<crate::server::Identity>>,
}

/// One subscribe pattern checked against one declared topic.
#[derive(Debug)]
pub struct AuthorizationRequest<'a> {
    /// The declared topic pattern (with `{name}` placeholders).
    pub declared: &'a str,
    /// The pattern the client asked for.
    pub pattern: &'a str,
    /// What the client's pattern puts at each placeholder: a literal, `"+"` or `"#"`.
    pub params: &'a BTreeMap<String, String>,
}

/// Decides whether a principal may subscribe. An `Err` denies (the check fails closed).
pub type Authorizer = Arc<
    dyn Fn(&Principal, &AuthorizationRequest<'_>) -> Result<bool, String> + Send + Sync + 'static,
>;

/// A topic a server declares (docs/protocol.md 2.1), with an optional authorizer (2.5).
#[derive(Clone)]
pub struct TopicSpec {
    descriptor: EventTopicDescriptor,
    authorizer: Option<Authorizer>,
    /// The SEP-3415 event type's name (docs/protocol.md 3.2); by default the pattern.
    pub(crate) event_name: Option<String>,
    /// The SEP-3415 delivery modes offered; by default poll and push.
    pub(crate) delivery: Option<Vec<DeliveryMode>>,
}

impl std::fmt::Debug for TopicSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicSpec")
            .field("descriptor", &self.descriptor)
            .field("authorizer", &self.authorizer.is_some())
            .field("event_name", &self.event_name)
            .field("delivery", &self.delivery)
            .finish()
    }
}

impl TopicSpec {
    /// A topic whose payloads are fit for a model's context (`kind: "content"`).
    pub fn content(pattern: impl Into<String>) -> Self {
        Self::new(pattern, EventKind::Content)
    }

    /// A machine-only topic (`kind: "signal"`).
    pub fn signal(pattern: impl Into<String>) -> Self {
        Self::new(pattern, EventKind::Signal)
    }

    /// A topic of the given kind.
    pub fn new(pattern: impl Into<String>, kind: EventKind) -> Self {
        Self::from_descriptor(EventTopicDescriptor::new(pattern, kind))
    }

    /// A topic from a full descriptor.
    pub fn from_descriptor(descriptor: EventTopicDescriptor) -> Self {
        TopicSpec {
            descriptor,
            authorizer: None,
            event_name: None,
            delivery: None,
        }
    }

    /// The name the topic has as a SEP-3415 event type in `events/list` (docs/protocol.md 3.2;
    /// default: the pattern verbatim, e.g. `build/+`).
    pub fn event_name(mut self, name: impl Into<String>) -> Self {
        self.event_name = Some(name.into());
        self
    }

    /// Narrows the SEP-3415 delivery modes the topic offers (default: poll and push, and
    /// webhook on a server built with webhooks). A mode the server does not serve is not
    /// listed; no mode at all leaves the topic out of `events/list`.
    pub fn delivery(mut self, modes: impl IntoIterator<Item = DeliveryMode>) -> Self {
        self.delivery = Some(modes.into_iter().collect());
        self
    }

    /// Whether a callback decides who may subscribe.
    pub(crate) fn has_authorizer(&self) -> bool {
        self.authorizer.is_some()
    }

    /// Sets the description.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.descriptor = self.descriptor.with_description(text);
        self
    }

    /// Whether events on this topic are retained by default.
    pub fn retained(mut self, retained: bool) -> Self {
        self.descriptor = self.descriptor.retained(retained);
        self
    }

    /// The handling the server suggests to clients.
    pub fn suggested_handle(mut self, handle: SuggestedHandle) -> Self {
        self.descriptor = self.descriptor.with_suggested_handle(handle);
        self
    }

    /// The JSON Schema of the payload.
    pub fn schema(mut self, schema: Value) -> Self {
        self.descriptor = self.descriptor.with_schema(schema);
        self
    }

    /// Replaces the default `{session_id}`/`{agent_id}` check with a callback (fails closed).
    pub fn authorize<F>(mut self, f: F) -> Self
    where
        F: Fn(&Principal, &AuthorizationRequest<'_>) -> Result<bool, String>
            + Send
            + Sync
            + 'static,
    {
        self.authorizer = Some(Arc::new(f));
        self
    }

    /// The descriptor advertised to clients.
    pub fn descriptor(&self) -> &EventTopicDescriptor {
        &self.descriptor
    }
}

/// A declared topic with its parsed pattern.
pub(crate) struct DeclaredTopic {
    pub(crate) pattern: DeclaredPattern,
    pub(crate) spec: TopicSpec,
}

/// A declared topic pattern that is not valid (docs/protocol.md 2.1, 2.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("declared topic {pattern:?}: {source}")]
pub struct InvalidDeclaredTopic {
    /// The offending pattern.
    pub pattern: String,
    /// What is wrong with it.
    #[source]
    pub source: TopicError,
}

/// The declared topics of a server, and the topic permissions that apply to them all.
pub(crate) struct DeclaredTopics(Vec<DeclaredTopic>, AccessRules);

impl DeclaredTopics {
    /// Parses every declared pattern; fails on the first invalid one, naming it.
    pub(crate) fn new(
        specs: Vec<TopicSpec>,
        access: AccessRules,
    ) -> Result<Self, InvalidDeclaredTopic> {
        specs
            .into_iter()
            .map(
                |spec| match DeclaredPattern::new(&spec.descriptor.pattern) {
                    Ok(pattern) => Ok(DeclaredTopic { pattern, spec }),
                    Err(source) => Err(InvalidDeclaredTopic {
                        pattern: spec.descriptor.pattern.clone(),
                        source,
                    }),
                },
            )
            .collect::<Result<Vec<_>, _>>()
            .map(|topics| DeclaredTopics(topics, access))
    }

    /// The topic permissions (docs/auth.md).
    pub(crate) fn access(&self) -> &AccessRules {
        &self.1
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The descriptors, as advertised.
    pub(crate) fn descriptors(&self) -> Vec<EventTopicDescriptor> {
        self.0.iter().map(|t| t.spec.descriptor.clone()).collect()
    }

    /// Every declared topic, in declaration order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &DeclaredTopic> {
        self.0.iter()
    }

    /// The index (in declaration order) of the first declared topic a concrete topic falls
    /// under.
    pub(crate) fn position(&self, topic: &str) -> Option<usize> {
        self.0.iter().position(|t| t.pattern.matches_topic(topic))
    }

    /// The first declared topic a concrete topic falls under, with its index.
    pub(crate) fn find(&self, topic: &str) -> Option<(usize, &DeclaredTopic)> {
        self.0
            .iter()
            .enumerate()
            .find(|(_, t)| t.pattern.matches_topic(topic))
    }

    /// Checks one parsed subscribe pattern: it must overlap a declared topic, the caller must
    /// be authorized for every declared topic it overlaps, and the topic permissions must grant
    /// it.
    pub(crate) fn check(
        &self,
        principal: &Principal,
        pattern: &TopicPattern,
    ) -> Result<(), &'static str> {
        let mut any = false;
        for declared in &self.0 {
            let Some(params) = declared.pattern.bind(pattern) else {
                continue;
            };
            any = true;
            let request = AuthorizationRequest {
                declared: declared.pattern.as_str(),
                pattern: pattern.as_str(),
                params: &params,
            };
            if !declared.spec.allows(principal, &request) {
                return Err(reject_reason::PERMISSION_DENIED);
            }
        }
        if !any {
            return Err(reject_reason::UNKNOWN_TOPIC);
        }
        self.1
            .check_subscribe(&Caller::of(Some(principal)), pattern)
            .map_err(|_| reject_reason::PERMISSION_DENIED)
    }
}

impl TopicSpec {
    /// Whether `principal` may subscribe as `request` asks: the authorizer decides when there
    /// is one (an error denies), else the default scope rule.
    pub(crate) fn allows(&self, principal: &Principal, request: &AuthorizationRequest<'_>) -> bool {
        match &self.authorizer {
            Some(authorize) => match authorize(principal, request) {
                Ok(allowed) => allowed,
                Err(e) => {
                    tracing::warn!(error = %e, declared = request.declared, "authorizer failed; denying");
                    false
                }
            },
            None => default_scope_check(principal, request.params),
        }
    }
}

/// docs/protocol.md 2.5: `{session_id}` and `{agent_id}` must hold the caller's own id,
/// literally.
fn default_scope_check(principal: &Principal, params: &BTreeMap<String, String>) -> bool {
    params.iter().all(|(name, value)| match name.as_str() {
        "session_id" => value.as_str() == &*principal.session_id,
        "agent_id" => value.as_str() == &*principal.agent_id,
        _ => true,
    })
}
