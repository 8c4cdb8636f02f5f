//! A lossy live view of the hub for observers (a dashboard's tail, a debugging tool): the
//! events matching one pattern as this process delivers them, whichever replica published
//! them, and what the hub knows about its event log.
//!
//! Unlike a subscription, a tail never slows anything down and never makes anyone re-read the
//! log: it holds a bounded buffer, and an event that finds the buffer full is dropped and
//! counted ([`EventTail::lost`]). Its drops are its own: they are not the subscribers' drops of
//! [`HubStats::dropped`](super::HubStats::dropped), and what it takes is not counted as
//! delivered.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use mcpbus_proto::topic::TopicPattern;
use tokio::sync::mpsc;

use super::delivery::{EventSink, LoggedEvent};
use super::feed::SubscriberKey;
use super::hub::EventHub;
use crate::error::BackendError;

/// The events matching a pattern, live, until dropped (which detaches it from the hub).
///
/// Made by [`EventHub::tail`].
pub struct EventTail {
    hub: EventHub,
    key: SubscriberKey,
    rx: mpsc::Receiver<LoggedEvent>,
    lost: Arc<AtomicU64>,
}

impl std::fmt::Debug for EventTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventTail")
            .field("key", &self.key)
            .field("lost", &self.lost())
            .finish()
    }
}

struct TailSink {
    tx: mpsc::Sender<LoggedEvent>,
    lost: Arc<AtomicU64>,
}

impl EventSink for TailSink {
    fn deliver(&self, _frame: &Bytes, _cursor: &str) -> bool {
        // The hub calls `deliver_logged`; a tail has no use for the frame.
        true
    }

    fn deliver_logged(&self, event: &LoggedEvent, _frame: &Bytes) -> bool {
        match self.tx.try_send(event.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                // Never wait for a slow observer: the publisher's path must not block.
                self.lost.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

impl EventHub {
    /// Tails the events matching `pattern` that this process delivers from now on, holding
    /// at most `buffer` of them unread: when the reader falls behind, newer events are dropped
    /// and counted in [`EventTail::lost`]. With a shared log (Redis), the events published
    /// on every replica are delivered by each, so a tail on any replica sees them all.
    pub fn tail(&self, pattern: TopicPattern, buffer: usize) -> EventTail {
        let (tx, rx) = mpsc::channel(buffer.max(1));
        let lost = Arc::new(AtomicU64::new(0));
        let sink = Arc::new(TailSink {
            tx,
            lost: lost.clone(),
        });
        let id: Arc<str> = format!("$tail/{}", crate::util::random_hex(8)).into();
        let key = self.attach_local(id, sink, pattern);
        EventTail {
            hub: self.clone(),
            key,
            rx,
            lost,
        }
    }

    /// How many entries the event log keeps now; `None` when the log cannot tell. With Redis,
    /// a round trip to Redis (so also a sign that Redis answers).
    pub async fn log_length(&self) -> Result<Option<u64>, BackendError> {
        self.log().length().await
    }

    /// Whether the event log is shared with other replicas (Redis).
    pub fn has_shared_log(&self) -> bool {
        self.log_is_shared()
    }

    /// What this process counted for each declared topic since it started, in declaration
    /// order: the numbers of `mcpbus_events_published_total` and
    /// `mcpbus_events_delivered_total`.
    pub fn topic_totals(&self) -> Vec<TopicTotals> {
        self.declared()
            .iter()
            .zip(self.topic_counters())
            .map(|(declared, counters)| TopicTotals {
                pattern: declared.spec.descriptor().pattern.clone(),
                published: counters.published.get(),
                delivered: counters.delivered.get(),
            })
            .collect()
    }
}

/// The counters of one declared topic in this process ([`EventHub::topic_totals`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicTotals {
    /// The declared pattern.
    pub pattern: String,
    /// Events this process accepted on the topic.
    pub published: u64,
    /// Copies of them this process handed to subscribers (sessions, push streams, polls,
    /// acknowledged webhooks; never a tail).
    pub delivered: u64,
}

impl EventTail {
    /// The next event, waiting for one; `None` only if the hub is gone.
    pub async fn next(&mut self) -> Option<LoggedEvent> {
        self.rx.recv().await
    }

    /// An event already queued, without waiting.
    pub fn try_next(&mut self) -> Option<LoggedEvent> {
        self.rx.try_recv().ok()
    }

    /// Events dropped so far because the reader fell more than its buffer behind.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

impl Drop for EventTail {
    fn drop(&mut self) {
        self.hub.detach(self.key);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::events::{Event, TopicSpec};
    use mcpbus_proto::events::EventKind;

    fn hub() -> EventHub {
        EventHub::new(vec![TopicSpec::new("a/+", EventKind::Content)], None).unwrap()
    }

    #[tokio::test]
    async fn a_tail_sees_matching_events_and_counts_what_it_could_not_hold() {
        let hub = hub();
        let mut tail = hub.tail(TopicPattern::new("a/x").unwrap(), 2);
        for n in 0..5 {
            hub.publish(Event::new("a/x", serde_json::json!(n)))
                .await
                .unwrap();
        }
        hub.publish(Event::new("a/y", serde_json::json!("other")))
            .await
            .unwrap();
        let first = tail.next().await.unwrap();
        assert_eq!(&*first.topic, "a/x");
        assert!(tail.try_next().is_some());
        assert!(
            tail.try_next().is_none(),
            "a/y does not match, the rest was lost"
        );
        assert_eq!(tail.lost(), 3);
        // The tail's losses and takes are not the subscribers'.
        let stats = hub.stats();
        assert_eq!(stats.dropped, 0);
        let totals = hub.topic_totals();
        assert_eq!((totals[0].published, totals[0].delivered), (6, 0));
        assert_eq!(stats.sessions, 1);
        drop(tail);
        assert_eq!(hub.stats().sessions, 0, "dropping the tail detaches it");
        assert_eq!(hub.log_length().await.unwrap(), Some(6));
        assert!(!hub.has_shared_log());
    }
}
