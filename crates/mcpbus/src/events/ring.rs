//! The history of the in-memory event log (docs/protocol.md 3.3): a bounded ring holding each
//! published event once, in cursor order, so that a poll or a push stream can read from a
//! cursor.
//!
//! Positions are the log's counter: the ring holds the newest `capacity` events, and remembers
//! the position of the newest one it let go, so that a cursor older than that is known to have
//! lost events (`truncated`) rather than silently skipping them.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::delivery::LoggedEvent;
use super::log::{LogPage, LogPosition};

/// The default number of events the in-memory log keeps for replay.
pub const DEFAULT_HISTORY: usize = 100_000;

/// The newest events, oldest first.
#[derive(Debug)]
pub(crate) struct Ring {
    entries: VecDeque<(u64, LoggedEvent)>,
    capacity: usize,
    /// The position of the newest event let go (0: none yet).
    evicted: u64,
}

impl Ring {
    pub(crate) fn new(capacity: usize) -> Self {
        Ring {
            entries: VecDeque::new(),
            capacity,
            evicted: 0,
        }
    }

    /// How many events it holds.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Keeps `event` at position `seq` (positions only grow), letting the oldest go when full.
    pub(crate) fn push(&mut self, seq: u64, event: LoggedEvent) {
        if self.capacity == 0 {
            self.evicted = seq;
            return;
        }
        if self.entries.len() == self.capacity
            && let Some((old, _)) = self.entries.pop_front()
        {
            self.evicted = old;
        }
        self.entries.push_back((seq, event));
    }

    /// Reads up to `max` events after `cursor`, skipping those published before `not_before`.
    /// `head` is the log's newest position: a cursor past it (from another process, or from
    /// before a restart) cannot be served and starts over from the oldest event kept, as a
    /// cursor the ring has let go of does; both are `truncated`.
    pub(crate) fn read(
        &self,
        cursor: LogPosition,
        not_before: Option<DateTime<Utc>>,
        max: usize,
        head: u64,
    ) -> LogPage {
        let mut truncated = false;
        let mut start = match cursor {
            LogPosition(n, 0) if n >= self.evicted && n <= head => n,
            // Older than the ring, newer than the log, or another log's cursor.
            _ => {
                truncated = true;
                self.evicted
            }
        };
        let mut from = self.entries.partition_point(|(seq, _)| *seq <= start);
        if let Some(floor) = not_before {
            let skip = self
                .entries
                .range(from..)
                .take_while(|(_, e)| e.published_at < floor);
            if let Some((seq, _)) = skip.last() {
                truncated = true;
                start = *seq;
                from = self.entries.partition_point(|(s, _)| *s <= start);
            }
        }
        let events: Vec<LoggedEvent> = self
            .entries
            .range(from..)
            .take(max)
            .map(|(_, e)| e.clone())
            .collect();
        let at_end = from + events.len() >= self.entries.len();
        // At the end the next read starts from the head: positions the ring does not hold (server
        // notices) are passed too.
        let next = if at_end {
            head.max(start)
        } else {
            self.entries[from + events.len() - 1].0
        };
        LogPage {
            events,
            start: position_str(start),
            next: position_str(next),
            truncated,
            at_end,
        }
    }
}

fn position_str(n: u64) -> Arc<str> {
    n.to_string().into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use chrono::TimeZone;

    fn event(seq: u64) -> LoggedEvent {
        LoggedEvent {
            cursor: seq.to_string().into(),
            topic: "a/b".into(),
            params: Bytes::new(),
            published_at: Utc.timestamp_opt(1_000 + seq as i64, 0).unwrap(),
        }
    }

    fn ring(capacity: usize, upto: u64) -> Ring {
        let mut ring = Ring::new(capacity);
        for seq in 1..=upto {
            ring.push(seq, event(seq));
        }
        ring
    }

    fn cursors(page: &LogPage) -> Vec<String> {
        page.events.iter().map(|e| e.cursor.to_string()).collect()
    }

    #[test]
    fn reads_after_a_cursor_in_pages() {
        let ring = ring(10, 5);
        let page = ring.read(LogPosition(2, 0), None, 2, 5);
        assert_eq!(cursors(&page), ["3", "4"]);
        assert!(!page.at_end && !page.truncated);
        assert_eq!(&*page.next, "4");
        let page = ring.read(LogPosition(4, 0), None, 2, 5);
        assert_eq!(cursors(&page), ["5"]);
        assert!(page.at_end);
        let page = ring.read(LogPosition(5, 0), None, 2, 7);
        assert!(page.events.is_empty() && page.at_end);
        assert_eq!(
            &*page.next, "7",
            "positions the ring does not hold are passed"
        );
    }

    #[test]
    fn a_cursor_the_ring_let_go_of_is_truncated() {
        let ring = ring(3, 10);
        let page = ring.read(LogPosition(6, 0), None, 10, 10);
        assert!(page.truncated);
        assert_eq!(&*page.start, "7");
        assert_eq!(cursors(&page), ["8", "9", "10"]);
        let page = ring.read(LogPosition(7, 0), None, 10, 10);
        assert!(!page.truncated, "the newest event let go is a valid cursor");
    }

    #[test]
    fn cursors_from_elsewhere_start_over_from_the_oldest_kept() {
        let ring = ring(3, 4);
        for foreign in [LogPosition(99, 0), LogPosition(2, 5)] {
            let page = ring.read(foreign, None, 10, 4);
            assert!(page.truncated);
            assert_eq!(cursors(&page), ["2", "3", "4"]);
        }
    }

    #[test]
    fn the_age_floor_skips_older_events_and_says_so() {
        let ring = ring(10, 5);
        let floor = Utc.timestamp_opt(1_004, 0).unwrap();
        let page = ring.read(LogPosition(0, 0), Some(floor), 10, 5);
        assert!(page.truncated);
        assert_eq!(&*page.start, "3");
        assert_eq!(cursors(&page), ["4", "5"]);
        let page = ring.read(LogPosition(4, 0), Some(floor), 10, 5);
        assert!(
            !page.truncated,
            "nothing after the cursor is older than the floor"
        );
    }

    #[test]
    fn a_ring_of_nothing_keeps_the_position() {
        let mut ring = Ring::new(0);
        ring.push(1, event(1));
        let page = ring.read(LogPosition(0, 0), None, 10, 1);
        assert!(page.truncated);
        assert!(page.events.is_empty());
        assert_eq!(&*page.next, "1");
    }
}
