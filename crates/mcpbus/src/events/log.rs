//! The event log: the one ordered record of published events and subscription changes that
//! feeds the hub, in memory ([`MemoryEventLog`], the default) or shared by replicas (the
//! Redis log of the `mcpbus-redis` crate).
//!
//! The path of every event is the same whatever the log: the hub validates and serializes
//! it, [`EventLog::append`] gives it a cursor, the log hands it back to the hub through the
//! [`LogFeed`] (at once in memory; from the replica's log reader with Redis), and the hub
//! matches it in its one topic trie and gives the frame to each matching [`EventSink`].
//! Subscription changes travel the same way, so every replica applies them at the same point
//! of the log.

use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use mcpbus_proto::events::{EventParams, RetainedEvent};
use mcpbus_proto::topic::TopicPattern;

use super::delivery::LoggedEvent;
use super::feed::LogFeed;
use super::retained::RetainedStore;
use crate::error::BackendError;
use crate::util::lock;

/// An event on its way into the log: validated against the declared topics and serialized
/// once by the hub.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The event as published (its `_meta` is empty: the log adds the cursor).
    pub params: EventParams,
    /// `params` as JSON, the bytes every subscriber receives.
    pub json: Bytes,
    /// When it expires, if it does.
    pub expires_at: Option<DateTime<Utc>>,
}

/// What [`EventLog::append`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The event's position in the log.
    pub cursor: Arc<str>,
    /// Subscribers it was handed to before `append` returned (a shared log delivers later,
    /// from each replica's reader, and reports 0).
    pub delivered: usize,
}

/// The ordered log of events and subscription changes behind an [`EventHub`](super::EventHub).
pub trait EventLog: Send + Sync + 'static {
    /// Connects the log to the hub that reads it; called once, when the hub is built.
    fn attach(&self, feed: LogFeed);

    /// Appends an event (and keeps it as its topic's retained value when `params.retained`).
    /// An `Ok` means it is stored: every matching subscriber will get it, in log order.
    fn append(&self, event: NewEvent) -> BoxFuture<'_, Result<Appended, BackendError>>;

    /// Records that `subscriber` subscribed to (`added`) or unsubscribed from `patterns`, from
    /// this point of the log on.
    fn subscription<'a>(
        &'a self,
        subscriber: &'a str,
        patterns: &'a [TopicPattern],
        added: bool,
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Every unexpired retained value whose topic matches `pattern`, ordered by topic.
    fn retained<'a>(
        &'a self,
        pattern: &'a TopicPattern,
    ) -> BoxFuture<'a, Result<Vec<RetainedEvent>, BackendError>>;

    /// Whether other processes read this log too (then the server shares its own changes,
    /// such as list changes, through it). `false` by default: a log of this process only.
    fn is_shared(&self) -> bool {
        false
    }
}

/// The in-memory log of one process: cursors are a counter, retained values a map by topic
/// (expired ones purged as they are met), and every append is delivered before it returns, in
/// cursor order.
#[derive(Debug, Default)]
pub struct MemoryEventLog {
    feed: OnceLock<LogFeed>,
    state: Mutex<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    /// The cursor of the newest event.
    last: u64,
    retained: RetainedStore,
}

impl MemoryEventLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    fn append_now(&self, event: NewEvent) -> Appended {
        let topic: Arc<str> = event.params.topic.as_str().into();
        // The lock is held through delivery so that concurrent publishers deliver in cursor
        // order; sinks never block.
        let mut state = lock(&self.state);
        state.last += 1;
        let cursor: Arc<str> = state.last.to_string().into();
        if event.params.retained {
            state.retained.set(event.params, event.expires_at);
        }
        let logged = LoggedEvent {
            cursor: cursor.clone(),
            topic,
            params: event.json,
        };
        let delivered = self.feed.get().map_or(0, |feed| feed.event(&logged));
        Appended { cursor, delivered }
    }
}

impl EventLog for MemoryEventLog {
    fn attach(&self, feed: LogFeed) {
        if self.feed.set(feed).is_err() {
            tracing::warn!("an in-memory event log serves one hub; a second one is ignored");
        }
    }

    fn append(&self, event: NewEvent) -> BoxFuture<'_, Result<Appended, BackendError>> {
        futures::future::ready(Ok(self.append_now(event))).boxed()
    }

    fn subscription<'a>(
        &'a self,
        subscriber: &'a str,
        patterns: &'a [TopicPattern],
        added: bool,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        // Under the log's lock: no event is delivered halfway through the change.
        let _state = lock(&self.state);
        if let Some(feed) = self.feed.get() {
            feed.subscription(subscriber, patterns, added);
        }
        futures::future::ready(Ok(())).boxed()
    }

    fn retained<'a>(
        &'a self,
        pattern: &'a TopicPattern,
    ) -> BoxFuture<'a, Result<Vec<RetainedEvent>, BackendError>> {
        let found = lock(&self.state).retained.matching(pattern, Utc::now());
        futures::future::ready(Ok(found)).boxed()
    }
}
