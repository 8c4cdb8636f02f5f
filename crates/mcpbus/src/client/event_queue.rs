//! Client utilities of docs/protocol.md 2.6: a priority queue of events and the provenance envelope.

use std::collections::VecDeque;
use std::fmt::Write;

use mcpbus_proto::events::{EventParams, EventPriority};

/// Buffers events and drains them urgent → high → normal → low, first in first out within a
/// priority. A missing priority counts as normal.
#[derive(Debug, Default, Clone)]
pub struct EventQueue {
    buckets: [VecDeque<EventParams>; 4],
}

fn rank(event: &EventParams) -> usize {
    event
        .priority
        .map_or(EventPriority::Normal.rank(), |p| p.rank()) as usize
}

impl EventQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an event.
    pub fn push(&mut self, event: EventParams) {
        let r = rank(&event).min(3);
        self.buckets[r].push_back(event);
    }

    /// Takes the most urgent, oldest event.
    pub fn pop(&mut self) -> Option<EventParams> {
        self.buckets.iter_mut().find_map(VecDeque::pop_front)
    }

    /// Takes up to `max` events (all if `None`) in drain order.
    pub fn drain(&mut self, max: Option<usize>) -> Vec<EventParams> {
        let max = max.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        while out.len() < max {
            match self.pop() {
                Some(e) => out.push(e),
                None => break,
            }
        }
        out
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.buckets.iter().map(VecDeque::len).sum()
    }

    /// Whether no event is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How a client wraps an event before injecting it into a model's context, so that the model
/// can tell where it came from (docs/protocol.md 2.6). `trust` is the client's own assessment of the
/// server, never taken from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenanceEnvelope {
    /// The server's name, as the client knows it.
    pub server: String,
    /// The event's topic.
    pub topic: String,
    /// The event's priority (`normal` when absent).
    pub priority: String,
    /// The event's id, when known.
    pub event_id: Option<String>,
    /// The client's trust in the server, e.g. `trusted` or `untrusted`.
    pub trust: String,
    /// The event's source, when known.
    pub source: Option<String>,
}

impl ProvenanceEnvelope {
    /// The envelope of an event received from `server`, with the client's `trust` in it.
    pub fn for_event(
        server: impl Into<String>,
        event: &EventParams,
        trust: impl Into<String>,
    ) -> Self {
        ProvenanceEnvelope {
            server: server.into(),
            topic: event.topic.clone(),
            priority: event
                .priority
                .map_or("normal", |p| match p {
                    EventPriority::Urgent => "urgent",
                    EventPriority::High => "high",
                    EventPriority::Normal => "normal",
                    EventPriority::Low => "low",
                })
                .to_string(),
            event_id: Some(event.event_id.clone()),
            trust: trust.into(),
            source: event.source.clone(),
        }
    }

    /// Wraps a payload text: attributes in the normative order `server`, `topic`, `priority`,
    /// `event_id`, `trust`, `source`, attribute values escaped, payload text escaped.
    pub fn to_xml(&self, payload_text: &str) -> String {
        let mut out = String::with_capacity(payload_text.len() + 128);
        out.push_str("<mcp:event");
        attr(&mut out, "server", &self.server);
        attr(&mut out, "topic", &self.topic);
        attr(&mut out, "priority", &self.priority);
        if let Some(id) = &self.event_id {
            attr(&mut out, "event_id", id);
        }
        attr(&mut out, "trust", &self.trust);
        if let Some(source) = &self.source {
            attr(&mut out, "source", source);
        }
        out.push_str(">\n");
        for c in payload_text.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                c => out.push(c),
            }
        }
        out.push_str("\n</mcp:event>");
        out
    }

    /// Wraps an event's payload (as JSON text).
    pub fn wrap(&self, event: &EventParams) -> String {
        let text = serde_json::to_string(&event.payload).unwrap_or_else(|_| "null".into());
        self.to_xml(&text)
    }
}

fn attr(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, " {name}=\"");
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(id: &str, priority: Option<EventPriority>) -> EventParams {
        EventParams {
            topic: "t".into(),
            event_id: id.into(),
            payload: json!(null),
            priority,
            retained: false,
            source: None,
            expires_at: None,
            meta: None,
        }
    }

    #[test]
    fn drains_by_priority_then_arrival() {
        let mut q = EventQueue::new();
        q.push(event("n1", None));
        q.push(event("l1", Some(EventPriority::Low)));
        q.push(event("u1", Some(EventPriority::Urgent)));
        q.push(event("n2", Some(EventPriority::Normal)));
        q.push(event("h1", Some(EventPriority::High)));
        q.push(event("u2", Some(EventPriority::Urgent)));
        let order: Vec<String> = q.drain(None).into_iter().map(|e| e.event_id).collect();
        assert_eq!(order, ["u1", "u2", "h1", "n1", "n2", "l1"]);
        assert!(q.is_empty());
    }

    #[test]
    fn envelope_matches_the_normative_format() {
        let mut e = event("01J", Some(EventPriority::High));
        e.topic = "build/status".into();
        e.source = Some("ci".into());
        let env = ProvenanceEnvelope::for_event("ci-server", &e, "trusted");
        let xml = env.to_xml(r#"{"status": "ok", "note": "a < b & c"}"#);
        assert_eq!(
            xml,
            "<mcp:event server=\"ci-server\" topic=\"build/status\" priority=\"high\" event_id=\"01J\" trust=\"trusted\" source=\"ci\">\n{\"status\": \"ok\", \"note\": \"a &lt; b &amp; c\"}\n</mcp:event>"
        );
        let odd = ProvenanceEnvelope {
            server: "a\"b<c>\n\t&".into(),
            topic: "t".into(),
            priority: "normal".into(),
            event_id: None,
            trust: "untrusted".into(),
            source: None,
        };
        assert_eq!(
            odd.to_xml("x"),
            "<mcp:event server=\"a&quot;b&lt;c&gt;&#10;&#9;&amp;\" topic=\"t\" priority=\"normal\" trust=\"untrusted\">\nx\n</mcp:event>"
        );
    }
}
