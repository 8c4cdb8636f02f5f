//! The hub as an event log sees it: [`LogFeed`], through which a log hands back what it
//! recorded and a shared log attaches the subscribers it serves on this replica.

use std::sync::{Arc, Weak};

use mcpbus_proto::topic::TopicPattern;

use super::delivery::{EventSink, LoggedEvent};

/// What the hub does for its log (implemented by the hub; a trait so that the log module and
/// the hub do not import each other).
pub(crate) trait FeedTarget: Send + Sync + 'static {
    /// See [`LogFeed::event`].
    fn deliver(&self, event: &LoggedEvent) -> usize;
    /// See [`LogFeed::subscription`].
    fn apply_subscription(&self, id: &str, patterns: &[TopicPattern], added: bool);
    /// See [`LogFeed::attach`].
    fn attach(
        &self,
        id: Arc<str>,
        sink: Arc<dyn EventSink>,
        patterns: Vec<TopicPattern>,
    ) -> SubscriberKey;
    /// See [`LogFeed::detach`].
    fn detach(&self, key: SubscriberKey);
    /// See [`LogFeed::count_log_error`].
    fn count_log_error(&self, operation: &'static str);
}

/// The hub as an [`EventLog`](super::EventLog) sees it: where the log hands back what it
/// recorded, and where a shared log attaches the subscribers it serves on this replica.
#[derive(Clone)]
pub struct LogFeed {
    pub(crate) hub: Weak<dyn FeedTarget>,
}

impl std::fmt::Debug for LogFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogFeed")
            .field("hub_alive", &(self.hub.strong_count() > 0))
            .finish()
    }
}

/// A subscriber attached to the hub (see [`LogFeed::attach`]); detach it with the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriberKey(pub(crate) u64);

impl LogFeed {
    /// Delivers a logged event to every attached subscriber whose patterns match its topic
    /// (at most once each); returns how many sinks took it.
    pub fn event(&self, event: &LoggedEvent) -> usize {
        self.hub.upgrade().map_or(0, |hub| hub.deliver(event))
    }

    /// Applies a subscription change to `subscriber`, if it is attached here.
    pub fn subscription(&self, subscriber: &str, patterns: &[TopicPattern], added: bool) {
        if let Some(hub) = self.hub.upgrade() {
            hub.apply_subscription(subscriber, patterns, added);
        }
    }

    /// Attaches a subscriber with the patterns it holds now; events delivered from now on
    /// reach `sink`. A subscriber attached again replaces its earlier attachment.
    pub fn attach(
        &self,
        subscriber: Arc<str>,
        sink: Arc<dyn EventSink>,
        patterns: impl IntoIterator<Item = TopicPattern>,
    ) -> Option<SubscriberKey> {
        let hub = self.hub.upgrade()?;
        Some(hub.attach(subscriber, sink, patterns.into_iter().collect()))
    }

    /// Counts a failed operation of the log's own (e.g. `read`: a shared log's reader lost its
    /// connection) in the `mcpbus_log_errors_total` metric of the hub.
    pub fn count_log_error(&self, operation: &'static str) {
        if let Some(hub) = self.hub.upgrade() {
            hub.count_log_error(operation);
        }
    }

    /// Detaches a subscriber (no-op when a newer attachment replaced it).
    pub fn detach(&self, key: SubscriberKey) {
        if let Some(hub) = self.hub.upgrade() {
            hub.detach(key);
        }
    }
}
