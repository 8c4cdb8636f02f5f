//! The event hub: declared topics, every subscriber's patterns in one trie, and fan-out.
//!
//! One path for every event, whatever the deployment: [`EventHub::publish`] validates and
//! serializes the event, the [`EventLog`] appends it and feeds it back, and
//! the hub's `deliver` matches it once and hands one frame to each matching sink. The log
//! decides where and when (in memory: at once; with Redis: from each replica's log reader);
//! the hub never asks which log it has.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use chrono::Utc;
use mcpbus_proto::error_codes;
use mcpbus_proto::events::{
    EventParams, EventSubscribeResult, EventTopicDescriptor, EventUnsubscribeResult,
    EventsCapability, RejectedTopic, RetainedEvent, SubscribedTopic, reject_reason,
};
use mcpbus_proto::jsonrpc::ErrorObject;
use mcpbus_proto::topic::{Topic, TopicError, TopicPattern};

use super::access::AccessRules;
use super::config::DeliveryConfig;
use super::delivery::{EventSink, LoggedEvent};
use super::event::{EmitError, EmitReport, Event};
use super::feed::{FeedTarget, LogFeed, SubscriberKey};
use super::log::{EventLog, MemoryEventLog, NewEvent};
use super::retained::parse_expires_at;
use super::topics::{DeclaredTopics, InvalidDeclaredTopic, Principal, TopicSpec};
use super::trie::TopicTrie;
use crate::error::BackendError;
use crate::metrics::{Metrics, TopicCounters};
use crate::util::{read, write};

/// Counters of the hub, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Events published through this hub.
    pub emitted: u64,
    /// Event copies handed to this process's subscribers.
    pub deliveries: u64,
    /// Subscribers attached to this process right now.
    pub sessions: usize,
    /// (pattern, subscriber) subscriptions attached to this process right now.
    pub subscriptions: usize,
    /// Events dropped since start because a subscriber read too slowly.
    pub dropped: u64,
}

struct Subscriber {
    id: Arc<str>,
    sink: Arc<dyn EventSink>,
    patterns: HashSet<TopicPattern>,
    /// Whether what it takes counts as delivered in the metrics: not for a watch, which only
    /// wakes a reader (a push stream counts what it sends itself, a poll what it returns).
    counted: bool,
}

#[derive(Default)]
struct Routes {
    trie: TopicTrie<u64>,
    subscribers: HashMap<u64, Subscriber>,
    by_id: HashMap<Arc<str>, u64>,
}

impl Routes {
    /// Removes a subscriber and its patterns; returns its sink.
    fn remove(&mut self, key: u64) -> Option<Arc<dyn EventSink>> {
        let sub = self.subscribers.remove(&key)?;
        for pattern in &sub.patterns {
            self.trie.remove(pattern, key);
        }
        if self.by_id.get(&sub.id) == Some(&key) {
            self.by_id.remove(&sub.id);
        }
        crate::util::shrink_sparse(&mut self.subscribers);
        crate::util::shrink_sparse(&mut self.by_id);
        Some(sub.sink)
    }
}

pub(crate) struct HubInner {
    topics: DeclaredTopics,
    instructions: Option<String>,
    log: Arc<dyn EventLog>,
    routes: RwLock<Routes>,
    next_key: AtomicU64,
    emitted: AtomicU64,
    deliveries: AtomicU64,
    /// Drops counted where they happened outside a sink, and by sinks since detached.
    dropped: AtomicU64,
    /// Who hears the server notices that travel through the log (never subscribers).
    notices: std::sync::OnceLock<NoticeHandler>,
    /// Who sees every event this process delivers, after its sinks (never counted as a
    /// delivery).
    observer: std::sync::OnceLock<EventObserver>,
    /// The cursor of the newest event every sink of this process has been offered.
    delivered: std::sync::Mutex<Option<Arc<str>>>,
    /// How SEP-3415 subscriptions are served (docs/protocol.md 3.4).
    delivery: DeliveryConfig,
    /// Open `events/stream` push streams of this process.
    pub(crate) push_streams: Arc<std::sync::atomic::AtomicUsize>,
    /// The process's metrics registry.
    metrics: Metrics,
    /// The counters of each declared topic, in declaration order.
    topic_counters: Vec<TopicCounters>,
}

/// Hears a server notice read from the log (see [`EventHub::publish_notice`]).
pub(crate) type NoticeHandler = Arc<dyn Fn(&serde_json::Value) + Send + Sync>;

/// Sees every event a process delivers ([`EventHub::on_delivered`]).
pub(crate) type EventObserver = Arc<dyn Fn(&LoggedEvent) + Send + Sync>;

/// The topic of server notices in the log. No subscriber ever receives it: the hub hands it
/// to the server before matching, and a declared pattern cannot make it publishable since
/// `publish` refuses it.
pub(crate) const NOTICE_TOPIC: &str = "$mcpbus/notice";

/// Declared topics, every subscriber's patterns, and fan-out through the [`EventLog`].
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

impl EventHub {
    /// A hub for the given declared topics over an in-memory log. Fails on an invalid
    /// declared pattern.
    pub fn new(
        topics: Vec<TopicSpec>,
        instructions: Option<String>,
    ) -> Result<Self, InvalidDeclaredTopic> {
        Self::with_log(topics, instructions, Arc::new(MemoryEventLog::new()))
    }

    /// A hub whose events, subscriptions and retained values go through `log` (e.g. one shared
    /// by several replicas).
    pub fn with_log(
        topics: Vec<TopicSpec>,
        instructions: Option<String>,
        log: Arc<dyn EventLog>,
    ) -> Result<Self, InvalidDeclaredTopic> {
        Self::with_config(topics, instructions, log, DeliveryConfig::default())
    }

    /// Like [`with_log`](Self::with_log), with the settings of SEP-3415 polls and push streams.
    pub fn with_config(
        topics: Vec<TopicSpec>,
        instructions: Option<String>,
        log: Arc<dyn EventLog>,
        delivery: DeliveryConfig,
    ) -> Result<Self, InvalidDeclaredTopic> {
        let config = (delivery, AccessRules::default());
        Self::with_access(topics, instructions, log, config)
    }

    /// Like [`with_config`](Self::with_config), with topic permissions applying to every
    /// subscription and publish checked through the hub's declared topics.
    pub(crate) fn with_access(
        topics: Vec<TopicSpec>,
        instructions: Option<String>,
        log: Arc<dyn EventLog>,
        (delivery, access): (DeliveryConfig, AccessRules),
    ) -> Result<Self, InvalidDeclaredTopic> {
        let metrics = Metrics::new();
        let topics = DeclaredTopics::new(topics, access.counted_in(metrics.clone()))?;
        let topic_counters = topics
            .iter()
            .map(|t| metrics.topic(&t.spec.descriptor().pattern))
            .collect();
        let inner = Arc::new(HubInner {
            topics,
            instructions,
            log,
            routes: RwLock::default(),
            next_key: AtomicU64::new(1),
            emitted: AtomicU64::new(0),
            deliveries: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            notices: std::sync::OnceLock::new(),
            observer: std::sync::OnceLock::new(),
            delivered: std::sync::Mutex::new(None),
            delivery,
            push_streams: Arc::default(),
            metrics,
            topic_counters,
        });
        let target: std::sync::Weak<dyn FeedTarget> = Arc::downgrade(&inner) as _;
        inner.log.attach(LogFeed { hub: target });
        Ok(EventHub { inner })
    }

    /// Whether any topic is declared (and so whether the events capability is advertised).
    pub fn has_topics(&self) -> bool {
        !self.inner.topics.is_empty()
    }

    /// The declared topics, as advertised.
    pub fn descriptors(&self) -> Vec<EventTopicDescriptor> {
        self.inner.topics.descriptors()
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
        let routes = self.inner.routes_read();
        let live: u64 = routes.subscribers.values().map(|s| s.sink.dropped()).sum();
        HubStats {
            emitted: self.inner.emitted.load(Ordering::Relaxed),
            deliveries: self.inner.deliveries.load(Ordering::Relaxed),
            sessions: routes.subscribers.len(),
            subscriptions: routes.trie.len(),
            dropped: self.inner.dropped.load(Ordering::Relaxed) + live,
        }
    }

    /// Publishes an event to every subscriber whose patterns match its topic, at most once
    /// each, in log order. `Ok` means the log stored it (the report has its cursor); the same
    /// call works with the in-memory log and with a shared one.
    pub async fn publish(&self, event: Event) -> Result<EmitReport, EmitError> {
        let (event, declared) = self.prepare(event)?;
        let event_id = event.params.event_id.clone();
        let retained = event.params.retained;
        // Timed only when the append is a round trip to a shared log (Redis).
        let started = self.log_is_shared().then(std::time::Instant::now);
        let appended = self.inner.log.append(event).await;
        self.inner
            .metrics
            .observe_append(started.map(|s| s.elapsed()), appended.is_ok());
        let appended = appended?;
        self.inner.emitted.fetch_add(1, Ordering::Relaxed);
        if let Some(counters) = self.inner.topic_counters.get(declared) {
            counters.published.inc();
        }
        Ok(EmitReport {
            event_id,
            delivered: appended.delivered,
            retained,
            cursor: appended.cursor.to_string(),
        })
    }

    /// Whether the log is shared with other replicas.
    pub(crate) fn log_is_shared(&self) -> bool {
        self.inner.log.is_shared()
    }

    /// The event log, for reading it back.
    pub(crate) fn log(&self) -> &Arc<dyn EventLog> {
        &self.inner.log
    }

    /// The settings of SEP-3415 polls and push streams.
    pub(crate) fn delivery_config(&self) -> &DeliveryConfig {
        &self.inner.delivery
    }

    /// The cursor of the newest event every sink of this process has been offered.
    pub(crate) fn delivered_head(&self) -> Option<Arc<str>> {
        crate::util::lock(&self.inner.delivered).clone()
    }

    /// Attaches a sink of this process only (not recorded in the log: it lives as long as one
    /// request) for the events matching `pattern`.
    pub(crate) fn attach_local(
        &self,
        id: Arc<str>,
        sink: Arc<dyn EventSink>,
        pattern: TopicPattern,
    ) -> SubscriberKey {
        self.inner.attach(id, sink, vec![pattern], false)
    }

    /// The process's metrics registry (see [`Metrics`]).
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Counts `n` copies of an event on `topic` handed to a subscriber outside the sinks
    /// (a push stream's sends, a poll's answer, a webhook's acknowledged POST).
    pub(crate) fn count_delivered(&self, topic: &str, n: u64) {
        self.inner.count_delivered(topic, n);
    }

    /// The counters of each declared topic, in declaration order.
    pub(crate) fn topic_counters(&self) -> &[TopicCounters] {
        &self.inner.topic_counters
    }

    /// The declared topics.
    pub(crate) fn declared(&self) -> &DeclaredTopics {
        &self.inner.topics
    }

    /// Open `events/stream` push streams of this process.
    pub fn push_streams(&self) -> usize {
        self.inner.push_streams.load(Ordering::Relaxed)
    }

    /// The counter of open push streams.
    pub(crate) fn push_stream_counter(&self) -> &Arc<std::sync::atomic::AtomicUsize> {
        &self.inner.push_streams
    }

    /// Sets who hears the server notices read from the log (once; later calls are ignored).
    pub(crate) fn on_notice(&self, handler: NoticeHandler) {
        let _ = self.inner.notices.set(handler);
    }

    /// Sets who sees every event this process delivers, whichever replica published it (once;
    /// later calls are ignored). It runs on the delivery path: it must not block.
    pub(crate) fn on_delivered(&self, observer: EventObserver) {
        let _ = self.inner.observer.set(observer);
    }

    /// Appends a server notice (e.g. "the tool list changed") for every replica reading the
    /// log; subscribers never see it.
    pub(crate) async fn publish_notice(
        &self,
        notice: serde_json::Value,
    ) -> Result<(), BackendError> {
        let params = EventParams {
            topic: NOTICE_TOPIC.into(),
            event_id: ulid::Ulid::new().to_string(),
            payload: notice,
            priority: None,
            retained: false,
            source: None,
            expires_at: None,
            meta: None,
        };
        let json = Bytes::from(serde_json::to_vec(&params).unwrap_or_default());
        let event = NewEvent {
            params,
            json,
            expires_at: None,
            published_at: Utc::now(),
        };
        self.inner.log.append(event).await.map(|_| ())
    }

    /// Validates an event against the declared topics, fills in its defaults and serializes
    /// its params once; also returns the index of the declared topic it falls under.
    fn prepare(&self, event: Event) -> Result<(NewEvent, usize), EmitError> {
        if event.topic == NOTICE_TOPIC {
            return Err(EmitError::UndeclaredTopic(event.topic));
        }
        let topic = Topic::new(&event.topic)?;
        let (index, declared) = self
            .inner
            .topics
            .find(topic.as_str())
            .ok_or_else(|| EmitError::UndeclaredTopic(event.topic.clone()))?;
        let expires_at = match &event.expires_at {
            None => None,
            Some(s) => {
                let at = parse_expires_at(s).map_err(|_| EmitError::InvalidExpiresAt(s.clone()))?;
                if at <= Utc::now() {
                    return Err(EmitError::AlreadyExpired(s.clone()));
                }
                Some(at)
            }
        };
        let retained = event
            .retained
            .unwrap_or(declared.spec.descriptor().retained);
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
        let json = serde_json::to_vec(&params)
            .map(Bytes::from)
            .map_err(EmitError::Serialize)?;
        let event = NewEvent {
            params,
            json,
            expires_at,
            published_at: Utc::now(),
        };
        Ok((event, index))
    }

    /// Every unexpired retained value whose topic matches `pattern`, ordered by topic.
    pub async fn retained(
        &self,
        pattern: &TopicPattern,
    ) -> Result<Vec<RetainedEvent>, BackendError> {
        self.inner.log.retained(pattern).await
    }

    /// Like [`retained`](Self::retained), with publish times when the log knows them.
    pub(crate) async fn retained_values(
        &self,
        pattern: &TopicPattern,
    ) -> Result<Vec<super::log::RetainedValue>, BackendError> {
        self.inner.log.retained_values(pattern).await
    }

    /// Attaches a subscriber whose events go to `sink` (see [`LogFeed::attach`]).
    pub(crate) fn attach(&self, id: Arc<str>, sink: Arc<dyn EventSink>) -> SubscriberKey {
        self.inner.attach(id, sink, Vec::new(), true)
    }

    /// Detaches a subscriber and every pattern it held here.
    pub(crate) fn detach(&self, key: SubscriberKey) {
        FeedTarget::detach(&*self.inner, key);
    }

    /// Counts events a transport dropped for a subscriber that read too slowly.
    pub(crate) fn count_dropped(&self, events: u64) {
        self.inner.dropped.fetch_add(events, Ordering::Relaxed);
    }

    /// Handles `events/subscribe` (docs/protocol.md 2.2, 2.3, 2.5): each pattern is checked
    /// against the declared topics and the caller's rights, the accepted ones are recorded in
    /// the log, and the retained values they match are returned.
    pub(crate) async fn subscribe(
        &self,
        principal: &Principal,
        topics: Vec<String>,
    ) -> Result<EventSubscribeResult, ErrorObject> {
        let parsed = parse_patterns(topics)?;
        let mut result = EventSubscribeResult {
            subscribed: Vec::new(),
            rejected: Vec::new(),
            retained: Vec::new(),
            meta: None,
        };
        let mut accepted = Vec::new();
        for (raw, pattern) in parsed {
            let checked = pattern
                .map_err(|_| reject_reason::INVALID_PATTERN)
                .and_then(|p| self.inner.topics.check(principal, &p).map(|()| p));
            match checked {
                Ok(pattern) => {
                    accepted.push(pattern);
                    result.subscribed.push(SubscribedTopic { pattern: raw });
                }
                Err(reason) => result.rejected.push(RejectedTopic {
                    pattern: raw,
                    reason: reason.to_string(),
                }),
            }
        }
        if !accepted.is_empty() {
            self.inner
                .log
                .subscription(&principal.session_id, &accepted, true)
                .await
                .map_err(log_error)?;
        }
        result.retained = self.retained_for(&accepted).await?;
        Ok(result)
    }

    /// The retained values matching any of `patterns`, each once.
    async fn retained_for(
        &self,
        patterns: &[TopicPattern],
    ) -> Result<Vec<RetainedEvent>, ErrorObject> {
        let mut seen = HashSet::new();
        let mut found = Vec::new();
        for pattern in patterns {
            for event in self.retained(pattern).await.map_err(log_error)? {
                if seen.insert(event.event_id.clone()) {
                    found.push(event);
                }
            }
        }
        Ok(found)
    }

    /// Handles `events/unsubscribe`: every requested pattern is reported, subscribed or not.
    pub(crate) async fn unsubscribe(
        &self,
        subscriber: &str,
        topics: Vec<String>,
    ) -> Result<EventUnsubscribeResult, ErrorObject> {
        let patterns: Vec<TopicPattern> = topics
            .iter()
            .filter_map(|raw| TopicPattern::new(raw).ok())
            .collect();
        if !patterns.is_empty() {
            self.inner
                .log
                .subscription(subscriber, &patterns, false)
                .await
                .map_err(log_error)?;
        }
        Ok(EventUnsubscribeResult {
            unsubscribed: topics,
            meta: None,
        })
    }
}

/// A requested subscribe pattern as written, and what parsing it gave.
type ParsedPattern = (String, Result<TopicPattern, TopicError>);

/// Parses subscribe patterns; a pattern deeper than 8 segments fails the whole request,
/// before anything changes, while other invalid ones are rejected one by one.
fn parse_patterns(topics: Vec<String>) -> Result<Vec<ParsedPattern>, ErrorObject> {
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
    Ok(parsed)
}

/// A failure of the event log, as a JSON-RPC internal error the client can retry.
fn log_error(e: BackendError) -> ErrorObject {
    ErrorObject::new(error_codes::INTERNAL_ERROR, e.to_string())
}

impl HubInner {
    fn routes_read(&self) -> std::sync::RwLockReadGuard<'_, Routes> {
        read(&self.routes)
    }

    fn routes_write(&self) -> std::sync::RwLockWriteGuard<'_, Routes> {
        write(&self.routes)
    }

    /// Keeps the drops of a sink that leaves in the hub's total.
    /// Hands a notice read from the log to the server.
    fn hear_notice(&self, event: &LoggedEvent) {
        let Some(handler) = self.notices.get() else {
            return;
        };
        match serde_json::from_slice::<serde_json::Value>(&event.params) {
            Ok(params) => handler(params.get("payload").unwrap_or(&serde_json::Value::Null)),
            Err(e) => tracing::warn!(error = %e, "unreadable server notice in the event log"),
        }
    }

    /// Matches an event once and hands its frame to every matching sink.
    fn deliver_to_sinks(&self, event: &LoggedEvent) -> usize {
        let mut keys = Vec::new();
        let sinks: Vec<(Arc<dyn EventSink>, bool)> = {
            let routes = self.routes_read();
            routes.trie.matches(&event.topic, &mut keys);
            keys.iter()
                .filter_map(|k| {
                    routes
                        .subscribers
                        .get(k)
                        .map(|s| (s.sink.clone(), s.counted))
                })
                .collect()
        };
        if sinks.is_empty() {
            return 0;
        }
        // One frame for every subscriber, built outside the routes lock.
        let frame = event.emit_frame();
        let mut delivered = 0;
        let mut counted = 0;
        for (sink, counts) in &sinks {
            if sink.deliver_logged(event, &frame) {
                delivered += 1;
                counted += u64::from(*counts);
            }
        }
        self.deliveries
            .fetch_add(delivered as u64, Ordering::Relaxed);
        if counted > 0 {
            self.count_delivered(&event.topic, counted);
        }
        delivered
    }

    /// See [`EventHub::count_delivered`]: one scan of the declared topics, then an atomic add.
    fn count_delivered(&self, topic: &str, n: u64) {
        if let Some(counters) = self
            .topics
            .position(topic)
            .and_then(|i| self.topic_counters.get(i))
        {
            counters.delivered.inc_by(n);
        }
    }

    fn retire(&self, sink: Option<Arc<dyn EventSink>>) {
        if let Some(sink) = sink {
            self.dropped.fetch_add(sink.dropped(), Ordering::Relaxed);
        }
    }
}

impl FeedTarget for HubInner {
    /// Matches a logged event once and hands its frame to every matching sink.
    fn deliver(&self, event: &LoggedEvent) -> usize {
        let delivered = if &*event.topic == NOTICE_TOPIC {
            self.hear_notice(event);
            0
        } else {
            let delivered = self.deliver_to_sinks(event);
            if let Some(observer) = self.observer.get() {
                observer(event);
            }
            delivered
        };
        // Only once every sink has been offered the event: a push stream's heartbeat may then
        // say it has checked up to here (docs/protocol.md 3.4).
        *crate::util::lock(&self.delivered) = Some(event.cursor.clone());
        delivered
    }

    /// Adds or removes patterns of an attached subscriber (others are ignored: a shared log
    /// feeds every replica the changes of every subscriber).
    fn apply_subscription(&self, id: &str, patterns: &[TopicPattern], added: bool) {
        let mut routes = self.routes_write();
        let routes = &mut *routes;
        let Some(&key) = routes.by_id.get(id) else {
            return;
        };
        let Some(sub) = routes.subscribers.get_mut(&key) else {
            return;
        };
        for pattern in patterns {
            if added {
                if sub.patterns.insert(pattern.clone()) {
                    routes.trie.insert(pattern, key);
                }
            } else if sub.patterns.remove(pattern) {
                routes.trie.remove(pattern, key);
            }
        }
    }

    fn attach(
        &self,
        id: Arc<str>,
        sink: Arc<dyn EventSink>,
        patterns: Vec<TopicPattern>,
    ) -> SubscriberKey {
        self.attach(id, sink, patterns, true)
    }

    fn detach(&self, key: SubscriberKey) {
        let removed = self.routes_write().remove(key.0);
        self.retire(removed);
    }

    fn count_log_error(&self, operation: &'static str) {
        self.metrics.count_log_error(operation);
    }
}

impl HubInner {
    /// Attaches a subscriber; `counted`: whether what it takes counts as delivered.
    fn attach(
        &self,
        id: Arc<str>,
        sink: Arc<dyn EventSink>,
        patterns: Vec<TopicPattern>,
        counted: bool,
    ) -> SubscriberKey {
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        let mut routes = self.routes_write();
        if let Some(old) = routes.by_id.get(&id).copied() {
            self.retire(routes.remove(old));
        }
        let patterns: HashSet<TopicPattern> = patterns.into_iter().collect();
        for pattern in &patterns {
            routes.trie.insert(pattern, key);
        }
        routes.by_id.insert(id.clone(), key);
        let subscriber = Subscriber {
            id,
            sink,
            patterns,
            counted,
        };
        routes.subscribers.insert(key, subscriber);
        SubscriberKey(key)
    }
}
