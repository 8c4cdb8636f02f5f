//! The MCP Events extension of the 2026-07-28 era (SEP-3415, identifier
//! `io.modelcontextprotocol/events`, a draft of the Triggers & Events working group): wire types
//! only.
//!
//! A server lists event types (`events/list`, [`EventDescriptor`]); a client subscribes with a
//! name and arguments and receives [`EventOccurrence`]s, by one of three delivery modes:
//!
//! | mode | request | what comes back |
//! |---|---|---|
//! | poll | `events/poll` ([`PollEventsRequestParams`]) | [`PollEventsResult`]: a batch and a cursor |
//! | push | `events/stream` ([`StreamEventsRequestParams`]) | notifications on the request's stream: `notifications/events/active` ([`EventsActiveNotificationParams`]) first, then `notifications/events/event` (an [`EventOccurrence`]), `…/heartbeat`, `…/error`, `…/terminated`; a [`StreamEventsResult`] when the server ends it |
//! | webhook | `events/subscribe`, `events/unsubscribe` ([`webhook`]) | signed POSTs to a callback URL |
//!
//! Every result carries `resultType: "complete"` (wrap the payloads here in
//! [`Complete`](crate::modern::Complete)). Cursors are opaque strings; `null` (or absent) means
//! "from now" in a request and "no replay" in an answer. The five error codes the SEP requests
//! are in [`crate::error_codes`] ([`NOT_FOUND`](crate::error_codes::NOT_FOUND) to
//! [`CALLBACK_ENDPOINT_ERROR`](crate::error_codes::CALLBACK_ENDPOINT_ERROR)), with typed `data`
//! here ([`NotFoundData`], [`ResourceExhaustedData`], [`UnsupportedData`],
//! [`CallbackEndpointErrorData`]) and constructors on [`ErrorObject`].
//!
//! As everywhere in this crate, members the types do not know are ignored on input and `_meta`
//! objects keep every key. Which event types exist, and what a server does with a request, is
//! up to the caller.

mod errors;
pub mod webhook;

pub use errors::*;

use std::fmt;

use serde::de::Deserializer;
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::jsonrpc::{ErrorObject, RequestId};
use crate::modern::meta::SUBSCRIPTION_ID;
use crate::modern::{NotificationMeta, SubscriptionsListenResult};

/// The extension's identifier: its key in `capabilities.extensions`.
pub const EXTENSION_ID: &str = "io.modelcontextprotocol/events";

/// The `subscriptions/listen` filter member that asks for `notifications/events/list_changed`
/// (reserved by the extension).
pub const LIST_CHANGED_FILTER: &str = "eventsListChanged";

/// Method and notification names of the extension.
pub mod methods {
    /// `events/list`: the event types a server offers.
    pub const EVENTS_LIST: &str = "events/list";
    /// `events/poll`: one batch of events after a cursor.
    pub const EVENTS_POLL: &str = "events/poll";
    /// `events/stream`: a long-lived request whose stream carries the events.
    pub const EVENTS_STREAM: &str = "events/stream";
    /// `events/subscribe` with a `delivery`: registers (or refreshes) a webhook subscription.
    pub const EVENTS_SUBSCRIBE: &str = "events/subscribe";
    /// `events/unsubscribe` with a `delivery`: removes a webhook subscription.
    pub const EVENTS_UNSUBSCRIBE: &str = "events/unsubscribe";
    /// First message of a push stream, and again after a gap (`truncated: true`).
    pub const ACTIVE: &str = "notifications/events/active";
    /// One event on a push stream.
    pub const EVENT: &str = "notifications/events/event";
    /// A recoverable failure on a push stream; the stream goes on.
    pub const ERROR: &str = "notifications/events/error";
    /// The end of a push subscription, with the reason.
    pub const TERMINATED: &str = "notifications/events/terminated";
    /// The liveness signal of a push stream, carrying the cursor checked up to.
    pub const HEARTBEAT: &str = "notifications/events/heartbeat";
    /// The list of event types changed (only on a `subscriptions/listen` stream that asked).
    pub const LIST_CHANGED: &str = "notifications/events/list_changed";
}

/// Reads a member that may be absent or `null` and must stay so on the way back: `None` is
/// absent, `Some(None)` is `null`.
pub(crate) fn double_option<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The server's settings object under `capabilities.extensions["io.modelcontextprotocol/events"]`
/// (the client's is empty).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsExtensionSettings {
    /// Whether the server sends `notifications/events/list_changed` (absent means `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_changed: Option<bool>,
}

/// A delivery mode an event type offers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeliveryMode {
    /// `"poll"`: `events/poll`.
    Poll,
    /// `"push"`: `events/stream`.
    Push,
    /// `"webhook"`: `events/subscribe` with a callback URL.
    Webhook,
    /// A mode this crate does not know, kept as written.
    Other(String),
}

impl DeliveryMode {
    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            DeliveryMode::Poll => "poll",
            DeliveryMode::Push => "push",
            DeliveryMode::Webhook => "webhook",
            DeliveryMode::Other(other) => other,
        }
    }

    /// Reads a wire name.
    pub fn from_wire(value: &str) -> Self {
        match value {
            "poll" => DeliveryMode::Poll,
            "push" => DeliveryMode::Push,
            "webhook" => DeliveryMode::Webhook,
            other => DeliveryMode::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for DeliveryMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for DeliveryMode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DeliveryMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|s| DeliveryMode::from_wire(&s))
    }
}

/// One event type, as `events/list` describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDescriptor {
    /// The event type's name: what a subscription names.
    pub name: String,
    /// What the events are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The delivery modes offered (a non-empty subset of poll, push, webhook).
    pub delivery: Vec<DeliveryMode>,
    /// JSON Schema of a subscription's `arguments`.
    pub input_schema: Map<String, Value>,
    /// JSON Schema of an occurrence's `data`.
    pub payload_schema: Map<String, Value>,
    /// Metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

/// Params of `events/list` (paginated like `tools/list`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ListEventsRequestParams {
    /// The page to read (from an earlier result's `nextCursor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Request metadata (revision, client capabilities, ...).
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

/// Result of `events/list` (wrap it in [`Complete`](crate::modern::Complete)).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListEventsResult {
    /// The event types of this page.
    pub events: Vec<EventDescriptor>,
    /// The next page, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Result metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

/// One event: an entry of a poll result, the params of `notifications/events/event` (with the
/// stream's id in `_meta`), or the body of a webhook delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventOccurrence {
    /// Stable id, for de-duplication.
    pub event_id: String,
    /// The event type's name.
    pub name: String,
    /// When the event occurred (ISO 8601).
    pub timestamp: String,
    /// The payload, as the type's `payloadSchema` describes it.
    pub data: Value,
    /// The subscription's position after this event (push and webhook; a poll carries its
    /// cursor on the result). `None`: absent; `Some(None)`: `null` (no replay). Both mean the
    /// same; see [`EventOccurrence::cursor`].
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub cursor: Option<Option<String>>,
    /// Metadata (on a push stream: the stream's id).
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

impl EventOccurrence {
    /// The cursor, absent and `null` alike being `None`.
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_ref().and_then(Option::as_deref)
    }

    /// The id of the push stream that carried it (`_meta["io.modelcontextprotocol/subscriptionId"]`).
    pub fn subscription_id(&self) -> Option<RequestId> {
        self.meta
            .as_ref()
            .and_then(|m| m.get(SUBSCRIPTION_ID))
            .and_then(RequestId::from_value)
    }

    /// Tags the occurrence with the push stream it travels on.
    pub fn for_subscription(mut self, subscription_id: &RequestId) -> Self {
        self.meta
            .get_or_insert_with(Map::new)
            .insert(SUBSCRIPTION_ID.into(), subscription_id.to_value());
        self
    }
}

/// What the three subscribing requests share: which event type, with which arguments, from
/// where.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionParams {
    /// The event type's name.
    pub name: String,
    /// The subscription's arguments (as the type's `inputSchema` describes them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Map<String, Value>>,
    /// Where to start: a cursor from an earlier answer; `null` or absent is "from now".
    /// `None`: absent; `Some(None)`: `null`.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub cursor: Option<Option<String>>,
    /// The replay floor: no event older than this many milliseconds (ignored from "now").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_ms: Option<u64>,
}

impl SubscriptionParams {
    /// The cursor, absent and `null` alike being `None` ("from now").
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_ref().and_then(Option::as_deref)
    }
}

/// Params of `events/poll`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollEventsRequestParams {
    /// Name, arguments, cursor and replay floor.
    #[serde(flatten)]
    pub subscription: SubscriptionParams,
    /// At most this many events in the answer (absent: the server's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_events: Option<u64>,
    /// Long poll: the server may hold the request this long waiting for an event (from the
    /// working group's design sketch; absent: answer at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Request metadata (revision, client capabilities, ...).
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

/// Result of `events/poll` (wrap it in [`Complete`](crate::modern::Complete)).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollEventsResult {
    /// The events, oldest first (often none).
    pub events: Vec<EventOccurrence>,
    /// Where the next poll starts; `null` for an event type without replay. Always written.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Whether delivery started later than the cursor asked for (events were skipped).
    #[serde(default)]
    pub truncated: bool,
    /// Whether more events wait beyond this batch: poll again at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_more: Option<bool>,
    /// How long to wait before the next poll when nothing more waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_poll_ms: Option<u64>,
    /// Result metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

/// Params of `events/stream`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StreamEventsRequestParams {
    /// Name, arguments, cursor and replay floor.
    #[serde(flatten)]
    pub subscription: SubscriptionParams,
    /// Request metadata (revision, client capabilities, ...).
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

/// The final frame of a push stream the server ends: nothing but `resultType` and the stream's
/// id in `_meta`, exactly as a `subscriptions/listen` result (wrap it in
/// [`Complete`](crate::modern::Complete)).
pub type StreamEventsResult = SubscriptionsListenResult;

/// Params of `notifications/events/active`: the stream is confirmed (first message), or
/// resumes after a gap (`truncated: true`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventsActiveNotificationParams {
    /// Where delivery starts; `null` for an event type without replay. Always written.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Whether delivery starts later than the cursor asked for.
    #[serde(default)]
    pub truncated: bool,
    /// Metadata: the stream's id.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<NotificationMeta>,
}

/// Params of `notifications/events/heartbeat`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventsHeartbeatNotificationParams {
    /// The position the server has checked up to (safe to persist); `null` without replay.
    /// Always written.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Metadata: the stream's id.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<NotificationMeta>,
}

/// Params of `notifications/events/error` (recoverable, the stream goes on) and
/// `notifications/events/terminated` (the subscription has ended).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventsErrorNotificationParams {
    /// What went wrong, with a code of [`crate::error_codes`].
    pub error: ErrorObject,
    /// Metadata: the stream's id.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<NotificationMeta>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn absent_and_null_cursors_stay_as_they_were() {
        for v in [
            json!({"name": "a"}),
            json!({"name": "a", "cursor": null}),
            json!({"name": "a", "cursor": "7"}),
        ] {
            let p: PollEventsRequestParams = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(serde_json::to_value(&p).unwrap(), v);
        }
        let p: PollEventsRequestParams =
            serde_json::from_value(json!({"name": "a", "cursor": null})).unwrap();
        assert_eq!(p.subscription.cursor(), None);
    }

    #[test]
    fn unknown_delivery_modes_are_kept() {
        let modes: Vec<DeliveryMode> =
            serde_json::from_value(json!(["poll", "carrier-pigeon"])).unwrap();
        assert_eq!(modes[0], DeliveryMode::Poll);
        assert_eq!(modes[1].as_str(), "carrier-pigeon");
    }

    #[test]
    fn occurrences_name_their_stream() {
        let o = EventOccurrence {
            event_id: "e".into(),
            name: "n".into(),
            timestamp: "2026-02-19T15:30:00Z".into(),
            data: json!({}),
            cursor: Some(Some("1".into())),
            meta: None,
        }
        .for_subscription(&RequestId::Number(4));
        assert_eq!(o.subscription_id(), Some(RequestId::Number(4)));
        assert_eq!(o.cursor(), Some("1"));
    }
}
