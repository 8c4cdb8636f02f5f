//! The bounded outgoing queue of one session.
//!
//! Responses and requests are never dropped (their number is bounded by the requests in flight).
//! Events are droppable: when a session already holds `capacity` undelivered events, the oldest
//! of them is dropped and counted, so that a slow session never blocks the publisher.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::Notify;

/// Default number of undelivered events a session may hold before the oldest are dropped.
pub const DEFAULT_OUTBOUND_CAPACITY: usize = 1024;

#[derive(Debug)]
struct Entry {
    frame: Bytes,
    droppable: bool,
}

#[derive(Debug, Default)]
struct State {
    entries: VecDeque<Entry>,
    droppable: usize,
    closed: bool,
}

/// A bounded, drop-oldest queue of serialized frames with a single consumer.
#[derive(Debug)]
pub(crate) struct OutboundQueue {
    state: Mutex<State>,
    notify: Notify,
    capacity: usize,
    dropped: AtomicU64,
}

impl OutboundQueue {
    /// A queue holding at most `capacity` droppable frames (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        OutboundQueue {
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            capacity: capacity.max(1),
            dropped: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the queue inconsistent (every update is a
        // single push or pop), so a poisoned lock is simply taken over.
        crate::util::lock(&self.state)
    }

    /// Queues a frame. Returns `false` if the queue is closed (the frame is discarded).
    pub(crate) fn push(&self, frame: Bytes, droppable: bool) -> bool {
        {
            let mut st = self.lock();
            if st.closed {
                return false;
            }
            if droppable {
                if st.droppable >= self.capacity
                    && let Some(pos) = st.entries.iter().position(|e| e.droppable)
                {
                    st.entries.remove(pos);
                    st.droppable -= 1;
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
                st.droppable += 1;
            }
            st.entries.push_back(Entry { frame, droppable });
        }
        self.notify.notify_one();
        true
    }

    /// Takes every queued frame (waiting for at least one). `None` once closed and drained.
    pub(crate) async fn pop_batch(&self, out: &mut Vec<Bytes>) -> bool {
        loop {
            {
                let mut st = self.lock();
                if !st.entries.is_empty() {
                    out.extend(st.entries.drain(..).map(|e| e.frame));
                    st.droppable = 0;
                    return true;
                }
                if st.closed {
                    return false;
                }
            }
            self.notify.notified().await;
        }
    }

    /// Closes the queue: later pushes are refused; queued frames are still delivered.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_one();
    }

    /// Events dropped so far because the session was too slow.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Frames waiting right now.
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drops_oldest_events_but_never_responses() {
        let q = OutboundQueue::new(2);
        q.push(Bytes::from_static(b"r1"), false);
        q.push(Bytes::from_static(b"e1"), true);
        q.push(Bytes::from_static(b"e2"), true);
        q.push(Bytes::from_static(b"e3"), true);
        q.push(Bytes::from_static(b"r2"), false);
        assert_eq!(q.dropped(), 1);
        let mut out = Vec::new();
        assert!(q.pop_batch(&mut out).await);
        assert_eq!(out, vec!["r1", "e2", "e3", "r2"]);
        q.close();
        assert!(!q.push(Bytes::from_static(b"x"), false));
        out.clear();
        assert!(!q.pop_batch(&mut out).await);
    }
}
