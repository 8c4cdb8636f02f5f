//! How far the connection of a stream is behind what was routed to it (docs/reliability.md,
//! "Slow and hostile clients").
//!
//! A 2026-07-28 SSE answer takes its frames from a channel that its HTTP body drains as fast
//! as the client reads. A push stream (`events/stream`) that kept writing into it while its
//! client read nothing would hold every event published meanwhile; with a [`Backlog`] it stops
//! taking events from the hub once `limit` frames wait, and reads the log again from its
//! cursor when there is room.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Frames routed to a stream that its connection has not taken yet.
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    queued: AtomicUsize,
    taken: Notify,
}

impl Backlog {
    /// One more frame waits.
    pub(crate) fn added(&self) {
        self.queued.fetch_add(1, Ordering::AcqRel);
    }

    /// The connection took one.
    pub(crate) fn taken(&self) {
        self.queued.fetch_sub(1, Ordering::AcqRel);
        self.taken.notify_waiters();
    }

    /// Whether fewer than `limit` frames wait.
    pub(crate) fn has_room(&self, limit: usize) -> bool {
        self.queued.load(Ordering::Acquire) < limit
    }

    /// Completes once fewer than `limit` frames wait.
    pub(crate) async fn room(&self, limit: usize) {
        loop {
            // Created before the check: a frame taken in between still wakes it.
            let taken = self.taken.notified();
            if self.has_room(limit) {
                return;
            }
            taken.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_full_backlog_waits_until_the_connection_takes_a_frame() {
        let backlog = Arc::new(Backlog::default());
        for _ in 0..3 {
            backlog.added();
        }
        assert!(backlog.has_room(4));
        assert!(!backlog.has_room(3));
        let waiter = tokio::spawn({
            let backlog = backlog.clone();
            async move { backlog.room(3).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "no room yet");
        backlog.taken();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
