//! An event to publish, what publishing it did, and why it could fail.

use std::time::Duration;

use chrono::Utc;
use mcpbus_proto::events::EventPriority;
use mcpbus_proto::topic::TopicError;
use serde_json::Value;

use crate::error::BackendError;

/// An event to publish.
#[derive(Debug, Clone)]
pub struct Event {
    pub(crate) topic: String,
    pub(crate) payload: Value,
    pub(crate) event_id: Option<String>,
    pub(crate) priority: Option<EventPriority>,
    pub(crate) retained: Option<bool>,
    pub(crate) source: Option<String>,
    pub(crate) expires_at: Option<String>,
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

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmitReport {
    /// The event's id.
    pub event_id: String,
    /// Subscribers it was handed to before the publish returned: every one with the
    /// in-memory log; 0 with a shared log, whose replicas deliver it from their log readers.
    pub delivered: usize,
    /// Whether it was stored as the topic's retained value.
    pub retained: bool,
    /// The event's position in the event log (`_meta["mcpbus/cursor"]` of its deliveries).
    pub cursor: String,
}

/// Why an event was not published.
#[derive(Debug, thiserror::Error)]
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
    Serialize(#[source] serde_json::Error),
    /// The event log could not store the event (it was not published; retry later).
    #[error("event not published: {0}")]
    Log(#[from] BackendError),
}
