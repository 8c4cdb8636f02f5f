//! Where matched events go: the [`EventSink`] seam, and the one `events/emit` frame every sink
//! receives.
//!
//! The hub matches an event once and hands the same serialized frame to each matching
//! subscriber's sink: a stdio session's bounded queue, an HTTP session's standalone stream,
//! or (with Redis) the replica's batch of appends to shared streams. A sink never blocks the
//! publisher; where it must drop an event (a subscriber reading too slowly), it counts the
//! drop itself ([`EventSink::dropped`]).

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::service::Peer;

/// An event at its position in the event log: what every binding delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    /// Its position in the log (`_meta["mcpbus/cursor"]` on the wire).
    pub cursor: Arc<str>,
    /// The concrete topic.
    pub topic: Arc<str>,
    /// The `events/emit` params as a JSON object, without `_meta` (serialized once, by the
    /// hub, when the event was published).
    pub params: Bytes,
    /// When it was published (the `timestamp` of its SEP-3415 occurrence, docs/protocol.md
    /// 3.2).
    pub published_at: DateTime<Utc>,
}

impl LoggedEvent {
    /// The `events/emit` notification of this event, with its cursor in
    /// `params._meta["mcpbus/cursor"]` (docs/protocol.md 2.2).
    ///
    /// Built by splicing bytes: the params were serialized once at publish time, and the
    /// frame is built once per event whatever the number of subscribers.
    pub fn emit_frame(&self) -> Bytes {
        let body = self.params.trim_ascii_end();
        let cursor = serde_json::to_string(&*self.cursor).unwrap_or_else(|_| "\"\"".into());
        let mut out = Vec::with_capacity(body.len() + cursor.len() + 96);
        out.extend_from_slice(br#"{"jsonrpc":"2.0","method":"events/emit","params":"#);
        match body.strip_suffix(b"}") {
            Some(open) if open.len() > 1 => {
                out.extend_from_slice(open);
                out.extend_from_slice(br#","_meta":{"mcpbus/cursor":"#);
            }
            // `{}`: no member before `_meta`, so no comma.
            _ => out.extend_from_slice(br#"{"_meta":{"mcpbus/cursor":"#),
        }
        out.extend_from_slice(cursor.as_bytes());
        out.extend_from_slice(b"}}}");
        Bytes::from(out)
    }
}

/// Takes the events matched for one subscriber.
///
/// Called by the hub with no lock of the sink's held, possibly from several tasks at once
/// for different events. Must not block: a sink that cannot keep up drops events (oldest
/// first, where it can tell) and counts them.
pub trait EventSink: Send + Sync + 'static {
    /// Takes one `events/emit` frame (the same bytes for every subscriber) of the event at
    /// `cursor`. Returns `false` when the sink is closed and takes nothing any more.
    fn deliver(&self, frame: &Bytes, cursor: &str) -> bool;

    /// Takes one event, as logged and as its `events/emit` frame. What the hub calls; by
    /// default the frame goes to [`deliver`](Self::deliver). A sink that delivers another
    /// shape (a SEP-3415 push stream) reads the logged event instead.
    fn deliver_logged(&self, event: &LoggedEvent, frame: &Bytes) -> bool {
        self.deliver(frame, &event.cursor)
    }

    /// Events this sink has dropped so far because its subscriber read too slowly.
    fn dropped(&self) -> u64 {
        0
    }
}

/// A session whose events go through its connection's bounded outgoing queue (stdio, a child
/// process): drop-oldest, counted by the queue.
pub(crate) struct QueueSink(pub(crate) Peer);

impl EventSink for QueueSink {
    fn deliver(&self, frame: &Bytes, _cursor: &str) -> bool {
        self.0.send_frame(frame.clone(), true)
    }

    fn dropped(&self) -> u64 {
        self.0.dropped_events()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn event(params: &'static str) -> LoggedEvent {
        LoggedEvent {
            cursor: "17".into(),
            topic: "a/b".into(),
            params: Bytes::from_static(params.as_bytes()),
            published_at: Utc::now(),
        }
    }

    #[test]
    fn frames_carry_the_cursor_in_meta() {
        let frame = event(r#"{"topic":"a/b","eventId":"1","payload":{"x":1}}"#).emit_frame();
        let v: serde_json::Value = serde_json::from_slice(&frame).unwrap();
        assert_eq!(v["jsonrpc"], "2.0");
        assert_eq!(v["method"], "events/emit");
        assert_eq!(v["params"]["topic"], "a/b");
        assert_eq!(v["params"]["payload"]["x"], 1);
        assert_eq!(v["params"]["_meta"]["mcpbus/cursor"], "17");
    }

    #[test]
    fn an_empty_params_object_still_frames_as_json() {
        let frame = event("{}\n").emit_frame();
        let v: serde_json::Value = serde_json::from_slice(&frame).unwrap();
        assert_eq!(v["params"]["_meta"]["mcpbus/cursor"], "17");
    }
}
