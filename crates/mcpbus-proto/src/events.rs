//! The topic events extension of the handshake era: `events/subscribe`, `events/unsubscribe`,
//! `events/list` (client to server requests) and `events/emit` (server to client notification).
//!
//! Wire format as in docs/protocol.md section 2: camelCase members, unknown members ignored.

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `InitializeResult._meta` key holding the client's session id.
pub const META_SESSION_ID: &str = "session_id";

/// The key of the `capabilities.experimental` member that repeats the `events` capability. The
/// official SDKs drop capability members they do not know (such as `events`) but keep every
/// member of `experimental`, so their users find the topics there.
pub const EXPERIMENTAL_EVENTS: &str = "mcpbus/events";

/// What a topic's payloads are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// Payloads fit for a model's context.
    Content,
    /// Machine-only payloads, never shown to a model.
    Signal,
}

/// The server's advice on how a client should handle a topic's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SuggestedHandle {
    /// Discard.
    Drop,
    /// Record without telling anyone.
    Silent,
    /// Tell the user.
    Notify,
    /// Ask the user what to do.
    Ask,
    /// Put into the model's context.
    Inject,
    /// Interrupt the current turn.
    Interrupt,
}

/// Delivery priority of an event. Unknown values read as [`EventPriority::Normal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventPriority {
    /// Handle before anything else.
    Urgent,
    /// Handle soon.
    High,
    /// The default.
    #[default]
    Normal,
    /// Handle when idle.
    Low,
}

impl EventPriority {
    /// Drain order: urgent 0, high 1, normal 2, low 3.
    pub fn rank(&self) -> u8 {
        match self {
            EventPriority::Urgent => 0,
            EventPriority::High => 1,
            EventPriority::Normal => 2,
            EventPriority::Low => 3,
        }
    }

    /// The wire name (`"urgent"`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            EventPriority::Urgent => "urgent",
            EventPriority::High => "high",
            EventPriority::Normal => "normal",
            EventPriority::Low => "low",
        }
    }

    /// Reads a wire name; anything unknown is [`EventPriority::Normal`].
    pub fn from_wire(s: &str) -> Self {
        match s {
            "urgent" => EventPriority::Urgent,
            "high" => EventPriority::High,
            "low" => EventPriority::Low,
            _ => EventPriority::Normal,
        }
    }
}

impl<'de> Deserialize<'de> for EventPriority {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Never fatal: a priority this crate does not know (or of the wrong type) is normal.
        let value = Value::deserialize(deserializer)?;
        Ok(value
            .as_str()
            .map_or(EventPriority::Normal, EventPriority::from_wire))
    }
}

/// Reads `suggestedHandle`, treating a value this crate does not know as absent: it is only a
/// hint, and a newer server's vocabulary must not make the whole capability unreadable.
fn lenient_handle<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SuggestedHandle>, D::Error> {
    let value = Option::<Value>::deserialize(deserializer)?;
    Ok(value.and_then(|v| serde_json::from_value(v).ok()))
}

/// A topic (pattern) a server declares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventTopicDescriptor {
    /// Topic pattern; may hold `{name}` placeholders, each a whole segment.
    pub pattern: String,
    /// What the payloads are for.
    pub kind: EventKind,
    /// What the topic carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// How a client should handle the events.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_handle"
    )]
    pub suggested_handle: Option<SuggestedHandle>,
    /// Whether the last event of each concrete topic is retained for new subscribers.
    #[serde(default)]
    pub retained: bool,
    /// JSON Schema of the payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
}

impl EventTopicDescriptor {
    /// A non-retained topic with no description, hint or schema.
    pub fn new(pattern: impl Into<String>, kind: EventKind) -> Self {
        EventTopicDescriptor {
            pattern: pattern.into(),
            kind,
            description: None,
            suggested_handle: None,
            retained: false,
            schema: None,
        }
    }

    /// Sets the description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets the suggested handling.
    pub fn with_suggested_handle(mut self, handle: SuggestedHandle) -> Self {
        self.suggested_handle = Some(handle);
        self
    }

    /// Marks the topic as retained.
    pub fn retained(mut self, retained: bool) -> Self {
        self.retained = retained;
        self
    }

    /// Sets the payload schema.
    pub fn with_schema(mut self, schema: Value) -> Self {
        self.schema = Some(schema);
        self
    }
}

/// The server's `events` capability.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsCapability {
    /// The declared topics.
    #[serde(default)]
    pub topics: Vec<EventTopicDescriptor>,
    /// How to use the events, for the client or model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
}

/// Params of `events/emit`: one delivered event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventParams {
    /// The concrete topic.
    pub topic: String,
    /// Unique id of the event (a ULID by default).
    pub event_id: String,
    /// The payload: any JSON value, possibly `null`.
    #[serde(default)]
    pub payload: Value,
    /// Priority; absent means normal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<EventPriority>,
    /// Whether the event is retained as the topic's last value.
    #[serde(default)]
    pub retained: bool,
    /// Where the event came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// When the event expires (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Notification metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

impl EventParams {
    /// A non-retained event without priority, source or expiry.
    pub fn new(topic: impl Into<String>, event_id: impl Into<String>, payload: Value) -> Self {
        EventParams {
            topic: topic.into(),
            event_id: event_id.into(),
            payload,
            priority: None,
            retained: false,
            source: None,
            expires_at: None,
            meta: None,
        }
    }

    /// The priority, absent or unknown counting as normal.
    pub fn effective_priority(&self) -> EventPriority {
        self.priority.unwrap_or_default()
    }
}

/// A retained event returned by `events/subscribe`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetainedEvent {
    /// The concrete topic.
    pub topic: String,
    /// Id of the event.
    pub event_id: String,
    /// The payload, possibly `null`.
    #[serde(default)]
    pub payload: Value,
    /// True when delivered from the retained store.
    #[serde(default)]
    pub retained: bool,
    /// Priority, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<EventPriority>,
    /// Where the event came from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// When the event expires (RFC 3339), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl RetainedEvent {
    /// The retained form of an emitted event (`retained: true`).
    pub fn from_params(params: &EventParams) -> RetainedEvent {
        RetainedEvent {
            topic: params.topic.clone(),
            event_id: params.event_id.clone(),
            payload: params.payload.clone(),
            retained: true,
            priority: params.priority,
            source: params.source.clone(),
            expires_at: params.expires_at.clone(),
        }
    }

    /// The event as `events/emit` params, e.g. to hand it to the same handler as live events.
    pub fn to_params(&self) -> EventParams {
        EventParams {
            topic: self.topic.clone(),
            event_id: self.event_id.clone(),
            payload: self.payload.clone(),
            priority: self.priority,
            retained: self.retained,
            source: self.source.clone(),
            expires_at: self.expires_at.clone(),
            meta: None,
        }
    }
}

impl From<&EventParams> for RetainedEvent {
    fn from(params: &EventParams) -> Self {
        RetainedEvent::from_params(params)
    }
}

/// Params of `events/subscribe`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSubscribeParams {
    /// The topic patterns to subscribe to.
    pub topics: Vec<String>,
    /// Request metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

/// An accepted subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribedTopic {
    /// The pattern as requested.
    pub pattern: String,
}

/// A refused subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedTopic {
    /// The pattern as requested.
    pub pattern: String,
    /// Why, one of [`reject_reason`].
    pub reason: String,
}

/// Values of [`RejectedTopic::reason`].
pub mod reject_reason {
    /// The pattern matches no declared topic.
    pub const UNKNOWN_TOPIC: &str = "unknown_topic";
    /// Authorization refused.
    pub const PERMISSION_DENIED: &str = "permission_denied";
    /// The pattern is not valid syntax.
    pub const INVALID_PATTERN: &str = "invalid_pattern";
}

/// Result of `events/subscribe`; all three lists are always serialized.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSubscribeResult {
    /// The accepted patterns.
    pub subscribed: Vec<SubscribedTopic>,
    /// The refused patterns.
    #[serde(default)]
    pub rejected: Vec<RejectedTopic>,
    /// Unexpired retained events matching the accepted patterns.
    #[serde(default)]
    pub retained: Vec<RetainedEvent>,
    /// Result metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

/// Params of `events/unsubscribe`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventUnsubscribeParams {
    /// The patterns to drop.
    pub topics: Vec<String>,
    /// Request metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

/// Result of `events/unsubscribe`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventUnsubscribeResult {
    /// Every requested pattern (no existence check).
    pub unsubscribed: Vec<String>,
    /// Result metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

/// Result of `events/list`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventListResult {
    /// The declared topics.
    pub topics: Vec<EventTopicDescriptor>,
    /// Result metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}
