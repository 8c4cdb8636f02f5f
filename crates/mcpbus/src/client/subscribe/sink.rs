//! What a subscription hands its handler: occurrences turned into the [`EventParams`] the
//! handshake era's `on_event` receives, cursor advances, gaps, errors and the end, each once
//! and in order, with duplicates (by `eventId`) and expired events left out.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use mcpbus_proto::events::EventParams;
use mcpbus_proto::events_ext::EventOccurrence;
use mcpbus_proto::jsonrpc::ErrorObject;
use mcpbus_proto::modern::meta::SUBSCRIPTION_ID;
use serde_json::{Map, Value};

use super::{SubscriptionEvent, SubscriptionHandler};
use crate::events::retained::parse_expires_at;
use crate::util::lock;

/// `_meta` key of an event's position in the subscription (the same key the handshake era's
/// `events/emit` uses for the event log's cursor).
pub const CURSOR_KEY: &str = "mcpbus/cursor";
/// `_meta` key of the SEP-3415 event type an event arrived under.
pub const EVENT_TYPE_KEY: &str = "mcpbus/eventType";
/// `_meta` key of an event's SEP-3415 `timestamp` (when it occurred).
pub const TIMESTAMP_KEY: &str = "mcpbus/timestamp";

/// How many event ids are remembered to drop a duplicate (a server may send an event again
/// around a reconnection; SEP-3415 leaves de-duplication by `eventId` to the client).
const REMEMBERED_IDS: usize = 4096;

/// The event ids seen last.
#[derive(Default)]
pub(crate) struct RecentIds {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl RecentIds {
    /// Whether `id` is new (and remembers it). Empty ids are never duplicates: they say
    /// nothing.
    pub(crate) fn insert(&mut self, id: &str) -> bool {
        if id.is_empty() {
            return true;
        }
        if !self.set.insert(id.to_owned()) {
            return false;
        }
        if self.order.len() == REMEMBERED_IDS
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.order.push_back(id.to_owned());
        true
    }
}

/// The subscription's side of its handler.
pub(super) struct Sink {
    handler: SubscriptionHandler,
    /// The position after the last thing handed to the handler; shared with the
    /// [`Subscription`](super::Subscription) handle.
    cursor: Arc<Mutex<Option<String>>>,
    seen: RecentIds,
}

impl Sink {
    pub(super) fn new(handler: SubscriptionHandler, cursor: Arc<Mutex<Option<String>>>) -> Self {
        Sink {
            handler,
            cursor,
            seen: RecentIds::default(),
        }
    }

    /// The position to resume from.
    pub(super) fn cursor(&self) -> Option<String> {
        lock(&self.cursor).clone()
    }

    /// One event; `cursor` is the position once it is handled (`None` inside a poll batch,
    /// whose cursor covers the whole batch).
    pub(super) fn event(&mut self, occurrence: &EventOccurrence, cursor: Option<&str>) {
        let event = event_params(occurrence, cursor);
        if !self.seen.insert(&event.event_id) {
            tracing::debug!(event_id = %event.event_id, "dropping an event delivered twice");
            return self.position(cursor);
        }
        if expired(&event) {
            tracing::debug!(event_id = %event.event_id, "dropping an expired event");
            return self.position(cursor);
        }
        (self.handler)(SubscriptionEvent::Event(event));
        if let Some(cursor) = cursor {
            *lock(&self.cursor) = Some(cursor.to_owned());
        }
    }

    /// The subscription's position moved without an event (a heartbeat, an empty poll, the
    /// start): tells the handler when it changed.
    pub(super) fn position(&mut self, cursor: Option<&str>) {
        let Some(cursor) = cursor else {
            return;
        };
        if lock(&self.cursor).as_deref() == Some(cursor) {
            return;
        }
        (self.handler)(SubscriptionEvent::Cursor(cursor.to_owned()));
        *lock(&self.cursor) = Some(cursor.to_owned());
    }

    /// The server keeps no cursor for this subscription (`null`): resume from now.
    pub(super) fn forget_cursor(&mut self) {
        *lock(&self.cursor) = None;
    }

    /// Delivery resumed later than asked (`truncated`): events may have been skipped.
    pub(super) fn gap(&mut self, cursor: Option<&str>) {
        (self.handler)(SubscriptionEvent::Gap {
            cursor: cursor.map(str::to_owned),
        });
        if let Some(cursor) = cursor {
            *lock(&self.cursor) = Some(cursor.to_owned());
        }
    }

    /// A recoverable error the server reported; the subscription goes on.
    pub(super) fn error(&mut self, error: ErrorObject) {
        (self.handler)(SubscriptionEvent::Error(error));
    }

    /// The server ended the subscription.
    pub(super) fn terminated(&mut self, error: ErrorObject) {
        (self.handler)(SubscriptionEvent::Terminated(error));
    }
}

fn expired(event: &EventParams) -> bool {
    event
        .expires_at
        .as_deref()
        .and_then(|at| parse_expires_at(at).ok())
        .is_some_and(|at| at <= Utc::now())
}

/// An occurrence as the handshake era's `events/emit` carries the same event.
///
/// An mcpbus server's occurrence `data` is that very event without its id (`topic`, `payload`,
/// `priority`, `source`, `retained`, `expiresAt`; docs/protocol.md 3.2): it is read back as it
/// was published. Any other server's `data` becomes the payload, under the event type's name as
/// topic. Either way `_meta` keeps the occurrence's own keys (but the stream id) and gains the
/// cursor ([`CURSOR_KEY`], when known), the event type ([`EVENT_TYPE_KEY`]) and the timestamp
/// ([`TIMESTAMP_KEY`]).
pub fn event_params(occurrence: &EventOccurrence, cursor: Option<&str>) -> EventParams {
    let mut event = published(occurrence).unwrap_or_else(|| {
        EventParams::new(
            occurrence.name.clone(),
            occurrence.event_id.clone(),
            occurrence.data.clone(),
        )
    });
    let mut meta = occurrence.meta.clone().unwrap_or_default();
    meta.remove(SUBSCRIPTION_ID);
    if let Some(cursor) = cursor {
        meta.insert(CURSOR_KEY.into(), Value::String(cursor.to_owned()));
    }
    meta.insert(
        EVENT_TYPE_KEY.into(),
        Value::String(occurrence.name.clone()),
    );
    meta.insert(
        TIMESTAMP_KEY.into(),
        Value::String(occurrence.timestamp.clone()),
    );
    event.meta = Some(meta);
    event
}

/// The published event inside an mcpbus occurrence: `data` with a string `topic` and a
/// `payload`.
fn published(occurrence: &EventOccurrence) -> Option<EventParams> {
    let Value::Object(data) = &occurrence.data else {
        return None;
    };
    if !data.get("topic").is_some_and(Value::is_string) || !data.contains_key("payload") {
        return None;
    }
    let mut fields: Map<String, Value> = data.clone();
    fields.remove("_meta");
    fields.insert("eventId".into(), Value::String(occurrence.event_id.clone()));
    serde_json::from_value(Value::Object(fields)).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn occurrence(data: Value) -> EventOccurrence {
        serde_json::from_value(json!({
            "eventId": "01J", "name": "build/+", "timestamp": "2026-02-19T15:30:00.000Z",
            "data": data, "cursor": "7",
            "_meta": {"io.modelcontextprotocol/subscriptionId": 3, "x": 1}
        }))
        .unwrap()
    }

    #[test]
    fn an_mcpbus_occurrence_reads_back_as_the_published_event() {
        let o = occurrence(json!({"topic": "build/web", "payload": {"ok": true},
                                  "priority": "high", "retained": true, "source": "ci"}));
        let e = event_params(&o, o.cursor());
        assert_eq!(e.topic, "build/web");
        assert_eq!(e.event_id, "01J");
        assert_eq!(e.payload, json!({"ok": true}));
        assert!(e.retained);
        assert_eq!(e.source.as_deref(), Some("ci"));
        let meta = e.meta.unwrap();
        assert_eq!(meta[CURSOR_KEY], "7");
        assert_eq!(meta[EVENT_TYPE_KEY], "build/+");
        assert_eq!(meta[TIMESTAMP_KEY], "2026-02-19T15:30:00.000Z");
        assert_eq!(meta["x"], 1);
        assert!(!meta.contains_key(SUBSCRIPTION_ID));
    }

    #[test]
    fn another_servers_data_is_the_payload_under_the_type_name() {
        let o = occurrence(json!({"messageId": "m1", "topic": "not mcpbus"}));
        let e = event_params(&o, None);
        assert_eq!(e.topic, "build/+");
        assert_eq!(e.payload["messageId"], "m1");
        assert!(!e.meta.unwrap().contains_key(CURSOR_KEY));
    }

    #[test]
    fn duplicates_and_expired_events_are_dropped_and_positions_reported_once() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink_got = got.clone();
        let handler: SubscriptionHandler = Arc::new(move |e| sink_got.lock().unwrap().push(e));
        let cursor = Arc::new(Mutex::new(None));
        let mut sink = Sink::new(handler, cursor.clone());
        let o = occurrence(json!({"topic": "build/web", "payload": 1}));
        sink.event(&o, Some("7"));
        sink.event(&o, Some("8"));
        let old = occurrence(json!({"topic": "build/web", "payload": 1,
                                    "expiresAt": "2001-01-01T00:00:00Z"}));
        let old = EventOccurrence {
            event_id: "02".into(),
            ..old
        };
        sink.event(&old, Some("9"));
        sink.position(Some("9"));
        sink.gap(Some("12"));
        let got = got.lock().unwrap();
        assert!(matches!(&got[0], SubscriptionEvent::Event(e) if e.event_id == "01J"));
        assert_eq!(got[1], SubscriptionEvent::Cursor("8".into()));
        assert_eq!(got[2], SubscriptionEvent::Cursor("9".into()));
        assert_eq!(
            got[3],
            SubscriptionEvent::Gap {
                cursor: Some("12".into())
            }
        );
        assert_eq!(got.len(), 4);
        assert_eq!(cursor.lock().unwrap().as_deref(), Some("12"));
    }
}
