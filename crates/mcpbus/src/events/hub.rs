//! The event hub: declared topics, subscriptions of every session, retained values, fan-out.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use mcpbus_proto::events::{
    EventKind, EventParams, EventPriority, EventSubscribeResult, EventTopicDescriptor,
    EventUnsubscribeResult, EventsCapability, RejectedTopic, RetainedEvent, SubscribedTopic,
    SuggestedHandle, reject_reason,
};
use mcpbus_proto::jsonrpc::ErrorObject;
use mcpbus_proto::mcp::methods;
use mcpbus_proto::topic::{DeclaredPattern, Topic, TopicError, TopicPattern};
use serde::Serialize;
use serde_json::Value;

use super::retained::{RetainedStore, parse_expires_at};
use super::trie::TopicTrie;
use crate::cluster::{BusEvent, ClusterError, EventBus};
use crate::service::Peer;

/// Who is subscribing: what the server knows of the caller's identity.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The caller's session id (also sent in `InitializeResult._meta.session_id`).
    pub session_id: Arc<str>,
    /// The caller's agent id (by default its session id).
    pub agent_id: Arc<str>,
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

/// A topic a server declares (PROTOCOL.md 2.1), with an optional authorizer (2.5).
#[derive(Clone)]
pub struct TopicSpec {
    descriptor: EventTopicDescriptor,
    authorizer: Option<Authorizer>,
}

impl std::fmt::Debug for TopicSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicSpec")
            .field("descriptor", &self.descriptor)
            .field("authorizer", &self.authorizer.is_some())
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
        }
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

struct DeclaredTopic {
    pattern: DeclaredPattern,
    spec: TopicSpec,
}

/// An event to publish.
#[derive(Debug, Clone)]
pub struct Event {
    topic: String,
    payload: Value,
    event_id: Option<String>,
    priority: Option<EventPriority>,
    retained: Option<bool>,
    source: Option<String>,
    expires_at: Option<String>,
}

impl Event {
    /// An event on a concrete topic with a JSON payload.
    pub fn new(topic: impl Into<String>, payload: Value) -> Self {
        Event {
            topic: topic.into(),
            payload,
            event_id: None,
            priority: None,
            retained: None,
            source: None,
            expires_at: None,
        }
    }

    /// Sets the event id (default: a new ULID).
    pub fn event_id(mut self, id: impl Into<String>) -> Self {
        self.event_id = Some(id.into());
        self
    }

    /// Sets the priority (absent means normal).
    pub fn priority(mut self, priority: EventPriority) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Whether to retain the event (default: the declared topic's `retained`).
    pub fn retained(mut self, retained: bool) -> Self {
        self.retained = Some(retained);
        self
    }

    /// Sets the source (who produced the event).
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Sets the expiry as an RFC 3339 timestamp.
    pub fn expires_at(mut self, at: impl Into<String>) -> Self {
        self.expires_at = Some(at.into());
        self
    }

    /// Sets the expiry relative to now.
    pub fn expires_in(mut self, ttl: Duration) -> Self {
        let at = Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        self.expires_at = Some(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        self
    }
}

/// What an emit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmitReport {
    /// The event's id.
    pub event_id: String,
    /// Sessions the event was queued for.
    pub delivered: usize,
    /// Whether it was stored as the topic's retained value.
    pub retained: bool,
    /// The event's position in the shared log, when the hub has an event bus.
    pub cursor: Option<String>,
}

/// Why an event was not published.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The topic is not a valid concrete topic.
    #[error("invalid topic: {0}")]
    InvalidTopic(#[from] TopicError),
    /// The topic matches none of the declared topic patterns.
    #[error("topic {0:?} matches no declared topic")]
    UndeclaredTopic(String),
    /// `expiresAt` is not an RFC 3339 timestamp.
    #[error("invalid expiresAt {0:?}: expected an RFC 3339 timestamp")]
    InvalidExpiresAt(String),
    /// `expiresAt` has already passed: the event would never be delivered.
    #[error("expiresAt {0:?} has already passed")]
    AlreadyExpired(String),
    /// The payload could not be serialized.
    #[error("payload could not be serialized: {0}")]
    Serialize(String),
    /// The shared event bus could not store the event (it was not published).
    #[error("event not published: {0}")]
    Bus(#[from] ClusterError),
    /// The hub has a shared event bus, whose publishes must be awaited: use
    /// [`EventHub::publish`].
    #[error("this hub publishes through a shared event bus: use EventHub::publish")]
    NeedsPublish,
}

/// Counters of the hub, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Events published.
    pub emitted: u64,
    /// Event copies queued for sessions.
    pub deliveries: u64,
    /// Sessions registered right now.
    pub sessions: usize,
    /// (pattern, session) subscriptions right now.
    pub subscriptions: usize,
    /// Events dropped by the sessions registered right now because they read too slowly.
    pub dropped: u64,
}

struct SessionEntry {
    peer: Peer,
    patterns: HashSet<TopicPattern>,
}

#[derive(Default)]
struct Routes {
    trie: TopicTrie<u64>,
    sessions: HashMap<u64, SessionEntry>,
}

struct HubInner {
    topics: Vec<DeclaredTopic>,
    instructions: Option<String>,
    routes: RwLock<Routes>,
    retained: Mutex<RetainedStore>,
    next_key: AtomicU64,
    bus: Option<Arc<dyn EventBus>>,
    emitted: AtomicU64,
    deliveries: AtomicU64,
}

/// Declared topics, every session's subscriptions, retained values, and fan-out.
///
/// Clonable; every clone is the same hub. Locks are never held across an `.await`.
#[derive(Clone)]
pub struct EventHub {
    inner: Arc<HubInner>,
}

impl std::fmt::Debug for EventHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHub")
            .field("topics", &self.inner.topics.len())
            .field("stats", &self.stats())
            .finish()
    }
}

/// An event checked against the declared topics, ready to deliver or publish.
struct Prepared {
    params: EventParams,
    expires: Option<chrono::DateTime<Utc>>,
}

#[derive(Serialize)]
struct EmitFrame<'a> {
    jsonrpc: &'static str,
    method: &'static str,
    params: &'a EventParams,
}

impl EventHub {
    /// A hub for the given declared topics. Fails on an invalid declared pattern.
    pub fn new(topics: Vec<TopicSpec>, instructions: Option<String>) -> Result<Self, TopicError> {
        Self::with_bus(topics, instructions, None)
    }

    /// A hub whose events, subscriptions and retained values live in a shared `bus` (several
    /// replicas), or in this process when `None`.
    pub fn with_bus(
        topics: Vec<TopicSpec>,
        instructions: Option<String>,
        bus: Option<Arc<dyn EventBus>>,
    ) -> Result<Self, TopicError> {
        let topics = topics
            .into_iter()
            .map(|spec| {
                Ok(DeclaredTopic {
                    pattern: DeclaredPattern::new(&spec.descriptor.pattern)?,
                    spec,
                })
            })
            .collect::<Result<Vec<_>, TopicError>>()?;
        Ok(EventHub {
            inner: Arc::new(HubInner {
                topics,
                instructions,
                routes: RwLock::default(),
                retained: Mutex::default(),
                next_key: AtomicU64::new(1),
                bus,
                emitted: AtomicU64::new(0),
                deliveries: AtomicU64::new(0),
            }),
        })
    }

    fn routes_read(&self) -> std::sync::RwLockReadGuard<'_, Routes> {
        self.inner.routes.read().unwrap_or_else(|p| p.into_inner())
    }

    fn routes_write(&self) -> std::sync::RwLockWriteGuard<'_, Routes> {
        self.inner.routes.write().unwrap_or_else(|p| p.into_inner())
    }

    fn retained_store(&self) -> std::sync::MutexGuard<'_, RetainedStore> {
        self.inner
            .retained
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Whether any topic is declared (and so whether the events capability is advertised).
    pub fn has_topics(&self) -> bool {
        !self.inner.topics.is_empty()
    }

    /// The declared topics, as advertised.
    pub fn descriptors(&self) -> Vec<EventTopicDescriptor> {
        self.inner
            .topics
            .iter()
            .map(|t| t.spec.descriptor.clone())
            .collect()
    }

    /// The `events` capability, present only when a topic is declared.
    pub fn capability(&self) -> Option<EventsCapability> {
        self.has_topics().then(|| EventsCapability {
            topics: self.descriptors(),
            instructions: self.inner.instructions.clone(),
        })
    }

    /// Counters for metrics.
    pub fn stats(&self) -> HubStats {
        let routes = self.routes_read();
        HubStats {
            emitted: self.inner.emitted.load(Ordering::Relaxed),
            deliveries: self.inner.deliveries.load(Ordering::Relaxed),
            sessions: routes.sessions.len(),
            subscriptions: routes.trie.len(),
            dropped: routes
                .sessions
                .values()
                .map(|s| s.peer.dropped_events())
                .sum(),
        }
    }

    /// Whether events go through a shared event bus.
    pub fn has_bus(&self) -> bool {
        self.inner.bus.is_some()
    }

    /// Publishes an event to every session with a matching subscription, at most once each.
    ///
    /// With a shared event bus this cannot wait for the bus and fails with
    /// [`EmitError::NeedsPublish`]; [`publish`](Self::publish) works in both cases.
    pub fn emit(&self, event: Event) -> Result<EmitReport, EmitError> {
        if self.inner.bus.is_some() {
            return Err(EmitError::NeedsPublish);
        }
        let prepared = self.prepare(event)?;
        self.emit_local(prepared)
    }

    /// Publishes an event: through the shared event bus when there is one (the report's
    /// `cursor` is its log position, and `Ok` means the bus stored it), else like
    /// [`emit`](Self::emit).
    pub async fn publish(&self, event: Event) -> Result<EmitReport, EmitError> {
        let prepared = self.prepare(event)?;
        let Some(bus) = &self.inner.bus else {
            return self.emit_local(prepared);
        };
        let params = serde_json::to_vec(&prepared.params)
            .map(Bytes::from)
            .map_err(|e| EmitError::Serialize(e.to_string()))?;
        let cursor = bus
            .publish(&BusEvent {
                topic: prepared.params.topic.clone(),
                params,
                retained: prepared.params.retained,
                expires_at_ms: prepared.expires.map(|at| at.timestamp_millis()),
            })
            .await?;
        self.inner.emitted.fetch_add(1, Ordering::Relaxed);
        Ok(EmitReport {
            event_id: prepared.params.event_id,
            delivered: 0,
            retained: prepared.params.retained,
            cursor: Some(cursor),
        })
    }

    /// Validates an event against the declared topics and fills in its defaults.
    fn prepare(&self, event: Event) -> Result<Prepared, EmitError> {
        let topic = Topic::new(&event.topic)?;
        let declared = self
            .inner
            .topics
            .iter()
            .find(|t| t.pattern.matches_topic(topic.as_str()))
            .ok_or_else(|| EmitError::UndeclaredTopic(event.topic.clone()))?;
        let now = Utc::now();
        let expires = match &event.expires_at {
            None => None,
            Some(s) => {
                let at = parse_expires_at(s).map_err(|_| EmitError::InvalidExpiresAt(s.clone()))?;
                if at <= now {
                    return Err(EmitError::AlreadyExpired(s.clone()));
                }
                Some(at)
            }
        };
        let retained = event.retained.unwrap_or(declared.spec.descriptor.retained);
        let params = EventParams {
            topic: event.topic,
            event_id: event
                .event_id
                .unwrap_or_else(|| ulid::Ulid::new().to_string()),
            payload: event.payload,
            priority: event.priority,
            retained,
            source: event.source,
            expires_at: event.expires_at,
            meta: None,
        };
        Ok(Prepared { params, expires })
    }

    /// Delivers a prepared event to this process's sessions.
    fn emit_local(&self, prepared: Prepared) -> Result<EmitReport, EmitError> {
        let Prepared { params, expires } = prepared;
        let frame = serde_json::to_vec(&EmitFrame {
            jsonrpc: "2.0",
            method: methods::EVENTS_EMIT,
            params: &params,
        })
        .map(Bytes::from)
        .map_err(|e| EmitError::Serialize(e.to_string()))?;
        let event_id = params.event_id.clone();
        let retained = params.retained;
        let topic = params.topic.clone();
        if retained {
            self.retained_store().set(params, expires);
        }
        let delivered = self.deliver(&topic, &frame);
        self.inner.emitted.fetch_add(1, Ordering::Relaxed);
        self.inner
            .deliveries
            .fetch_add(delivered as u64, Ordering::Relaxed);
        Ok(EmitReport {
            event_id,
            delivered,
            retained,
            cursor: None,
        })
    }

    /// Queues one serialized `events/emit` frame for every session whose patterns match `topic`.
    fn deliver(&self, topic: &str, frame: &Bytes) -> usize {
        let mut keys = Vec::new();
        let routes = self.routes_read();
        routes.trie.matches(topic, &mut keys);
        let mut delivered = 0;
        for key in keys {
            if let Some(entry) = routes.sessions.get(&key)
                && entry.peer.send_frame(frame.clone(), true)
            {
                delivered += 1;
            }
        }
        delivered
    }

    /// Every unexpired retained value of this process whose topic matches `pattern` (with a
    /// shared event bus, see [`retained_shared`](Self::retained_shared)).
    pub fn retained_matching(&self, pattern: &TopicPattern) -> Vec<RetainedEvent> {
        self.retained_store().matching(pattern, Utc::now())
    }

    /// Every unexpired retained value whose topic matches `pattern`, from the shared event bus
    /// when there is one.
    pub async fn retained_shared(
        &self,
        pattern: &TopicPattern,
    ) -> Result<Vec<RetainedEvent>, ClusterError> {
        match &self.inner.bus {
            Some(bus) => bus.retained(pattern).await,
            None => Ok(self.retained_matching(pattern)),
        }
    }

    /// Registers a session's peer; returns its key for later calls.
    pub(crate) fn register(&self, peer: Peer) -> u64 {
        let key = self.inner.next_key.fetch_add(1, Ordering::Relaxed);
        self.routes_write().sessions.insert(
            key,
            SessionEntry {
                peer,
                patterns: HashSet::new(),
            },
        );
        key
    }

    /// Removes a session and all of its subscriptions.
    pub(crate) fn unregister(&self, key: u64) {
        let mut routes = self.routes_write();
        if let Some(entry) = routes.sessions.remove(&key) {
            for pattern in &entry.patterns {
                routes.trie.remove(pattern, key);
            }
        }
    }

    /// Handles `events/subscribe` for one session (PROTOCOL.md 2.2, 2.3, 2.5).
    pub(crate) async fn subscribe(
        &self,
        key: u64,
        principal: &Principal,
        topics: Vec<String>,
    ) -> Result<EventSubscribeResult, ErrorObject> {
        // A pattern deeper than 8 segments fails the whole request, before anything changes.
        let mut parsed = Vec::with_capacity(topics.len());
        for raw in topics {
            match TopicPattern::new(&raw) {
                Err(e @ TopicError::TooManySegments { .. }) => {
                    return Err(ErrorObject::invalid_params(format_args!(
                        "pattern {raw:?}: {e}"
                    )));
                }
                other => parsed.push((raw, other)),
            }
        }
        let mut result = EventSubscribeResult {
            subscribed: Vec::new(),
            rejected: Vec::new(),
            retained: Vec::new(),
            meta: None,
        };
        let mut accepted = Vec::new();
        for (raw, pattern) in parsed {
            let reason = match pattern {
                Err(_) => Some(reject_reason::INVALID_PATTERN),
                Ok(pattern) => match self.check(principal, &pattern) {
                    Ok(()) => {
                        accepted.push(pattern);
                        None
                    }
                    Err(reason) => Some(reason),
                },
            };
            match reason {
                Some(reason) => result.rejected.push(RejectedTopic {
                    pattern: raw,
                    reason: reason.to_string(),
                }),
                None => result.subscribed.push(SubscribedTopic { pattern: raw }),
            }
        }
        if let Some(bus) = &self.inner.bus {
            if !accepted.is_empty() {
                bus.subscribe(&principal.session_id, &accepted)
                    .await
                    .map_err(bus_error)?;
            }
            let mut seen = HashSet::new();
            for pattern in &accepted {
                for event in bus.retained(pattern).await.map_err(bus_error)? {
                    if seen.insert(event.event_id.clone()) {
                        result.retained.push(event);
                    }
                }
            }
            return Ok(result);
        }
        {
            let mut routes = self.routes_write();
            let routes = &mut *routes;
            if let Some(entry) = routes.sessions.get_mut(&key) {
                for pattern in &accepted {
                    if entry.patterns.insert(pattern.clone()) {
                        routes.trie.insert(pattern, key);
                    }
                }
            }
        }
        let mut seen = HashSet::new();
        let mut store = self.retained_store();
        let now = Utc::now();
        for pattern in &accepted {
            for event in store.matching(pattern, now) {
                if seen.insert(event.event_id.clone()) {
                    result.retained.push(event);
                }
            }
        }
        Ok(result)
    }

    /// Handles `events/unsubscribe`: every requested pattern is reported, subscribed or not.
    pub(crate) async fn unsubscribe(
        &self,
        key: u64,
        session_id: &str,
        topics: Vec<String>,
    ) -> Result<EventUnsubscribeResult, ErrorObject> {
        if let Some(bus) = &self.inner.bus {
            let patterns: Vec<TopicPattern> = topics
                .iter()
                .filter_map(|raw| TopicPattern::new(raw).ok())
                .collect();
            if !patterns.is_empty() {
                bus.unsubscribe(session_id, &patterns)
                    .await
                    .map_err(bus_error)?;
            }
            return Ok(EventUnsubscribeResult {
                unsubscribed: topics,
                meta: None,
            });
        }
        let mut routes = self.routes_write();
        let routes = &mut *routes;
        if let Some(entry) = routes.sessions.get_mut(&key) {
            for raw in &topics {
                if let Ok(pattern) = TopicPattern::new(raw)
                    && entry.patterns.remove(&pattern)
                {
                    routes.trie.remove(&pattern, key);
                }
            }
        }
        Ok(EventUnsubscribeResult {
            unsubscribed: topics,
            meta: None,
        })
    }

    /// Checks one parsed subscribe pattern: it must overlap a declared topic, and the caller
    /// must be authorized for every declared topic it overlaps.
    fn check(&self, principal: &Principal, pattern: &TopicPattern) -> Result<(), &'static str> {
        let mut any = false;
        for declared in &self.inner.topics {
            let Some(params) = declared.pattern.bind(pattern) else {
                continue;
            };
            any = true;
            let request = AuthorizationRequest {
                declared: declared.pattern.as_str(),
                pattern: pattern.as_str(),
                params: &params,
            };
            let allowed = match &declared.spec.authorizer {
                Some(authorize) => match authorize(principal, &request) {
                    Ok(allowed) => allowed,
                    Err(e) => {
                        tracing::warn!(error = %e, declared = request.declared, "authorizer failed; denying");
                        false
                    }
                },
                None => default_scope_check(principal, &params),
            };
            if !allowed {
                return Err(reject_reason::PERMISSION_DENIED);
            }
        }
        if any {
            Ok(())
        } else {
            Err(reject_reason::UNKNOWN_TOPIC)
        }
    }
}

/// A failure of the shared bus, as a JSON-RPC internal error the client can retry.
fn bus_error(e: ClusterError) -> ErrorObject {
    ErrorObject::new(mcpbus_proto::error_codes::INTERNAL_ERROR, e.to_string())
}

/// PROTOCOL.md 2.5: `{session_id}` and `{agent_id}` must hold the caller's own id, literally.
fn default_scope_check(principal: &Principal, params: &BTreeMap<String, String>) -> bool {
    params.iter().all(|(name, value)| match name.as_str() {
        "session_id" => value.as_str() == &*principal.session_id,
        "agent_id" => value.as_str() == &*principal.agent_id,
        _ => true,
    })
}
