//! A live view of the hub for one request: the events matching one pattern, as they are
//! delivered in this process, for a SEP-3415 push stream or a long poll (docs/protocol.md 3.4).
//!
//! The hub matches each event once in its trie and hands it to the watch's sink, which queues
//! it without ever blocking the publisher. A watch that falls more than its buffer behind stops
//! queueing and says so ([`Watch::overflowed`]): its reader then reads the log from its cursor
//! instead, so that falling behind costs a re-read, never an event.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use mcpbus_proto::topic::TopicPattern;
use tokio::sync::mpsc;

use super::delivery::{EventSink, LoggedEvent};
use super::feed::SubscriberKey;
use super::hub::EventHub;

/// The events matching a pattern, live, until dropped (which detaches it from the hub).
pub(crate) struct Watch {
    hub: EventHub,
    key: SubscriberKey,
    rx: mpsc::Receiver<LoggedEvent>,
    overflowed: Arc<AtomicBool>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").field("key", &self.key).finish()
    }
}

struct WatchSink {
    tx: mpsc::Sender<LoggedEvent>,
    overflowed: Arc<AtomicBool>,
}

impl EventSink for WatchSink {
    fn deliver(&self, _frame: &Bytes, _cursor: &str) -> bool {
        // The hub calls `deliver_logged`; a watch has no use for the legacy frame.
        true
    }

    fn deliver_logged(&self, event: &LoggedEvent, _frame: &Bytes) -> bool {
        if self.overflowed.load(Ordering::Acquire) {
            return true;
        }
        match self.tx.try_send(event.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflowed.store(true, Ordering::Release);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

impl EventHub {
    /// Watches the events matching `pattern` that this process delivers from now on, holding
    /// at most `buffer` of them unread.
    pub(crate) fn watch(&self, pattern: TopicPattern, buffer: usize) -> Watch {
        let (tx, rx) = mpsc::channel(buffer.max(1));
        let overflowed = Arc::new(AtomicBool::new(false));
        let sink = Arc::new(WatchSink {
            tx,
            overflowed: overflowed.clone(),
        });
        let id: Arc<str> = format!("$watch/{}", crate::util::random_hex(8)).into();
        let key = self.attach_local(id, sink, pattern);
        Watch {
            hub: self.clone(),
            key,
            rx,
            overflowed,
        }
    }
}

impl Watch {
    /// The next live event; `None` once the watch has overflowed (read the log instead, then
    /// [`resume`](Self::resume)).
    pub(crate) async fn next(&mut self) -> Option<LoggedEvent> {
        if self.overflowed() {
            return None;
        }
        self.rx.recv().await
    }

    /// A live event already queued, without waiting.
    pub(crate) fn try_next(&mut self) -> Option<LoggedEvent> {
        if self.overflowed() {
            return None;
        }
        self.rx.try_recv().ok()
    }

    /// Whether events were dropped because the reader fell behind.
    pub(crate) fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Acquire)
    }

    /// Forgets what is queued and starts queueing again. Call it *before* reading the log
    /// again: what is forgotten, and what arrives while the log is read, is then either in the
    /// read or queued after it (the reader skips what it has already passed).
    pub(crate) fn resume(&mut self) {
        while self.rx.try_recv().is_ok() {}
        self.overflowed.store(false, Ordering::Release);
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.hub.detach(self.key);
    }
}
