//! The event log: the one ordered record of published events and subscription changes that
//! feeds the hub, in memory ([`MemoryEventLog`], the default) or shared by replicas (the
//! Redis log of the `mcpbus-redis` crate).
//!
//! The path of every event is the same whatever the log: the hub validates and serializes
//! it, [`EventLog::append`] gives it a cursor, the log hands it back to the hub through the
//! [`LogFeed`] (at once in memory; from the replica's log reader with Redis), and the hub
//! matches it in its one topic trie and gives the frame to each matching [`EventSink`].
//! Subscription changes travel the same way, so every replica applies them at the same point
//! of the log.
//!
//! The log also has a read side (docs/protocol.md 3.3): [`EventLog::read_after`] gives the events
//! after a cursor, in order, so that SEP-3415 polls and push streams resume where a client left
//! off; the same cursor names the same event on every binding.

use std::cmp::Ordering;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use mcpbus_proto::events::{EventParams, RetainedEvent};
use mcpbus_proto::topic::TopicPattern;

use super::delivery::LoggedEvent;
use super::feed::LogFeed;
use super::retained::RetainedStore;
use super::ring::{DEFAULT_HISTORY, Ring};
use crate::error::BackendError;
use crate::util::lock;

/// An event on its way into the log: validated against the declared topics and serialized
/// once by the hub.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The event as published (its `_meta` is empty: the log adds the cursor).
    pub params: EventParams,
    /// `params` as JSON, the bytes every subscriber receives.
    pub json: Bytes,
    /// When it expires, if it does.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was published.
    pub published_at: DateTime<Utc>,
}

/// A cursor of a log as an ordered position: `"17"` is `(17, 0)`, a Redis stream id
/// `"1718000000000-3"` is `(1718000000000, 3)`. Both logs of this workspace write cursors of one
/// of these two forms, so that positions compare whatever the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogPosition(pub u64, pub u64);

impl LogPosition {
    /// Reads a cursor; `None` when it is neither `N` nor `N-M` (decimal).
    pub fn parse(cursor: &str) -> Option<Self> {
        let decimal = |s: &str| {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u64>().ok())
                .flatten()
        };
        match cursor.split_once('-') {
            None => Some(LogPosition(decimal(cursor)?, 0)),
            Some((a, b)) => Some(LogPosition(decimal(a)?, decimal(b)?)),
        }
    }

    /// Orders two cursors of the same log; `None` when either does not read.
    pub fn compare(a: &str, b: &str) -> Option<Ordering> {
        Some(Self::parse(a)?.cmp(&Self::parse(b)?))
    }
}

/// Where a read of the log starts.
#[derive(Debug, Clone, Copy)]
pub struct ReadFrom<'a> {
    /// After this cursor.
    pub cursor: &'a str,
    /// Skipping the events published before this instant (a SEP-3415 `maxAgeMs` floor); the
    /// read is then `truncated` if it skipped any.
    pub not_before: Option<DateTime<Utc>>,
}

/// What a read of the log found.
#[derive(Debug, Clone)]
pub struct LogPage {
    /// Events after [`start`](Self::start), in log order (notices of the server excluded).
    pub events: Vec<LoggedEvent>,
    /// Where the read started: the cursor asked for, or, when that cursor could not be served
    /// (older than the log, from another process or log, or behind the age floor), the position
    /// it resumed from.
    pub start: Arc<str>,
    /// The position to read after next: the last entry read, or the log's head at its end.
    pub next: Arc<str>,
    /// Whether the read started later than the cursor asked for: events may have been skipped.
    pub truncated: bool,
    /// Whether the read reached the end of the log.
    pub at_end: bool,
}

/// Why a read of the log failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The cursor is not a cursor of any log (a client error, `-32602`).
    #[error("malformed cursor {0:?}: not a cursor this server gave out")]
    InvalidCursor(String),
    /// The log could not be read (retry later).
    #[error("{0}")]
    Backend(#[from] BackendError),
}

/// Values of a [`RetainedEvent`] with what the log knows of it besides.
#[derive(Debug, Clone)]
pub struct RetainedValue {
    /// The retained event.
    pub event: RetainedEvent,
    /// When it was published, when the log knows.
    pub published_at: Option<DateTime<Utc>>,
}

/// What [`EventLog::append`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The event's position in the log.
    pub cursor: Arc<str>,
    /// Subscribers it was handed to before `append` returned (a shared log delivers later,
    /// from each replica's reader, and reports 0).
    pub delivered: usize,
}

/// The ordered log of events and subscription changes behind an [`EventHub`](super::EventHub).
pub trait EventLog: Send + Sync + 'static {
    /// Connects the log to the hub that reads it; called once, when the hub is built.
    fn attach(&self, feed: LogFeed);

    /// Appends an event (and keeps it as its topic's retained value when `params.retained`).
    /// An `Ok` means it is stored: every matching subscriber will get it, in log order.
    fn append(&self, event: NewEvent) -> BoxFuture<'_, Result<Appended, BackendError>>;

    /// Records that `subscriber` subscribed to (`added`) or unsubscribed from `patterns`, from
    /// this point of the log on.
    fn subscription<'a>(
        &'a self,
        subscriber: &'a str,
        patterns: &'a [TopicPattern],
        added: bool,
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Every unexpired retained value whose topic matches `pattern`, ordered by topic.
    fn retained<'a>(
        &'a self,
        pattern: &'a TopicPattern,
    ) -> BoxFuture<'a, Result<Vec<RetainedEvent>, BackendError>>;

    /// Whether other processes read this log too (then the server shares its own changes,
    /// such as list changes, through it). `false` by default: a log of this process only.
    fn is_shared(&self) -> bool {
        false
    }

    /// The cursor of the log's newest entry (what "from now" starts after).
    fn head(&self) -> BoxFuture<'_, Result<Arc<str>, BackendError>> {
        futures::future::ready(Err(no_history())).boxed()
    }

    /// Up to `max` entries after `from` (docs/protocol.md 3.3). A cursor older than the log,
    /// or one this log cannot place (another process's, another log's), is not an error: the
    /// page is `truncated` and starts from the oldest event kept. Only a string that is no
    /// cursor at all is [`ReadError::InvalidCursor`]. By default a log keeps no history.
    fn read_after<'a>(
        &'a self,
        from: ReadFrom<'a>,
        max: usize,
    ) -> BoxFuture<'a, Result<LogPage, ReadError>> {
        let _ = (from, max);
        futures::future::ready(Err(ReadError::Backend(no_history()))).boxed()
    }

    /// Like [`retained`](Self::retained), with each value's publish time when the log knows it.
    fn retained_values<'a>(
        &'a self,
        pattern: &'a TopicPattern,
    ) -> BoxFuture<'a, Result<Vec<RetainedValue>, BackendError>> {
        async move {
            let found = self.retained(pattern).await?;
            Ok(found
                .into_iter()
                .map(|event| RetainedValue {
                    event,
                    published_at: None,
                })
                .collect())
        }
        .boxed()
    }
    /// How many entries the log keeps now (for the `mcpbus_log_length` metric); `None` when
    /// the log cannot tell (the default).
    fn length(&self) -> BoxFuture<'_, Result<Option<u64>, BackendError>> {
        futures::future::ready(Ok(None)).boxed()
    }

    /// How many unexpired retained values the log holds (for the `mcpbus_retained_values`
    /// metric). By default it reads them all ([`retained`](Self::retained) with `#`).
    fn retained_count(&self) -> BoxFuture<'_, Result<usize, BackendError>> {
        async move {
            let all = TopicPattern::new("#").map_err(|e| {
                BackendError::new(crate::error::BackendErrorKind::Invalid, "pattern #", e)
            })?;
            Ok(self.retained(&all).await?.len())
        }
        .boxed()
    }
}

fn no_history() -> BackendError {
    BackendError::msg(
        crate::error::BackendErrorKind::Invalid,
        "this event log keeps no history to read from",
    )
}

impl fmt::Display for LogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// The in-memory log of one process: cursors are a counter (`"1"`, `"2"`, ...), the newest
/// events are kept in a bounded ring for replay (100,000 by default, see
/// [`with_history`](Self::with_history)), retained values are a map by topic (expired ones
/// purged as they are met), and every append is delivered before it returns, in cursor order.
///
/// Cursors are those of this process: after a restart, a client's cursor that is ahead of the
/// new log is recognised as foreign (`truncated`), but one that the new log has already
/// reached again cannot be told from the new log's own. A deployment whose cursors must survive
/// restarts uses the Redis log.
#[derive(Debug)]
pub struct MemoryEventLog {
    feed: OnceLock<LogFeed>,
    state: Mutex<MemoryState>,
}

#[derive(Debug)]
struct MemoryState {
    /// The cursor of the newest event.
    last: u64,
    retained: RetainedStore,
    history: Ring,
}

impl Default for MemoryEventLog {
    fn default() -> Self {
        Self::with_history(DEFAULT_HISTORY)
    }
}

impl MemoryEventLog {
    /// An empty log keeping the newest 100,000 events for replay.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty log keeping the newest `events` events for replay (0: none; every cursor but
    /// the newest is then `truncated`).
    pub fn with_history(events: usize) -> Self {
        MemoryEventLog {
            feed: OnceLock::new(),
            state: Mutex::new(MemoryState {
                last: 0,
                retained: RetainedStore::default(),
                history: Ring::new(events),
            }),
        }
    }

    fn append_now(&self, event: NewEvent) -> Appended {
        let topic: Arc<str> = event.params.topic.as_str().into();
        let notice = &*topic == super::hub::NOTICE_TOPIC;
        // The lock is held through delivery so that concurrent publishers deliver in cursor
        // order, and a reader never sees an event a sink has not been offered; sinks never
        // block.
        let mut state = lock(&self.state);
        state.last += 1;
        let seq = state.last;
        let cursor: Arc<str> = seq.to_string().into();
        if event.params.retained {
            state
                .retained
                .set_at(event.params, event.expires_at, Some(event.published_at));
        }
        let logged = LoggedEvent {
            cursor: cursor.clone(),
            topic,
            params: event.json,
            published_at: event.published_at,
        };
        if !notice {
            state.history.push(seq, logged.clone());
        }
        let delivered = self.feed.get().map_or(0, |feed| feed.event(&logged));
        Appended { cursor, delivered }
    }
}

impl EventLog for MemoryEventLog {
    fn attach(&self, feed: LogFeed) {
        if self.feed.set(feed).is_err() {
            tracing::warn!("an in-memory event log serves one hub; a second one is ignored");
        }
    }

    fn append(&self, event: NewEvent) -> BoxFuture<'_, Result<Appended, BackendError>> {
        futures::future::ready(Ok(self.append_now(event))).boxed()
    }

    fn subscription<'a>(
        &'a self,
        subscriber: &'a str,
        patterns: &'a [TopicPattern],
        added: bool,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        // Under the log's lock: no event is delivered halfway through the change.
        let _state = lock(&self.state);
        if let Some(feed) = self.feed.get() {
            feed.subscription(subscriber, patterns, added);
        }
        futures::future::ready(Ok(())).boxed()
    }

    fn retained<'a>(
        &'a self,
        pattern: &'a TopicPattern,
    ) -> BoxFuture<'a, Result<Vec<RetainedEvent>, BackendError>> {
        let found = lock(&self.state)
            .retained
            .matching_values(pattern, Utc::now());
        futures::future::ready(Ok(found.into_iter().map(|v| v.event).collect())).boxed()
    }

    fn retained_values<'a>(
        &'a self,
        pattern: &'a TopicPattern,
    ) -> BoxFuture<'a, Result<Vec<RetainedValue>, BackendError>> {
        let found = lock(&self.state)
            .retained
            .matching_values(pattern, Utc::now());
        futures::future::ready(Ok(found)).boxed()
    }

    fn length(&self) -> BoxFuture<'_, Result<Option<u64>, BackendError>> {
        let kept = lock(&self.state).history.len();
        futures::future::ready(Ok(Some(kept as u64))).boxed()
    }

    fn retained_count(&self) -> BoxFuture<'_, Result<usize, BackendError>> {
        let mut state = lock(&self.state);
        state.retained.purge_expired(Utc::now());
        futures::future::ready(Ok(state.retained.len())).boxed()
    }

    fn head(&self) -> BoxFuture<'_, Result<Arc<str>, BackendError>> {
        let last = lock(&self.state).last;
        futures::future::ready(Ok(last.to_string().into())).boxed()
    }

    fn read_after<'a>(
        &'a self,
        from: ReadFrom<'a>,
        max: usize,
    ) -> BoxFuture<'a, Result<LogPage, ReadError>> {
        let read = match LogPosition::parse(from.cursor) {
            None => Err(ReadError::InvalidCursor(from.cursor.to_owned())),
            Some(position) => {
                let state = lock(&self.state);
                Ok(state
                    .history
                    .read(position, from.not_before, max, state.last))
            }
        };
        futures::future::ready(read).boxed()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn positions_read_both_cursor_forms_and_order_them() {
        assert_eq!(LogPosition::parse("17"), Some(LogPosition(17, 0)));
        assert_eq!(LogPosition::parse("5-3"), Some(LogPosition(5, 3)));
        for bad in [
            "",
            "x",
            "-1",
            "1-",
            "1-2-3",
            "+1",
            " 1",
            "99999999999999999999",
        ] {
            assert_eq!(LogPosition::parse(bad), None, "{bad:?}");
        }
        assert_eq!(LogPosition::compare("9", "10"), Some(Ordering::Less));
        assert_eq!(
            LogPosition::compare("10-1", "10-0"),
            Some(Ordering::Greater)
        );
    }
}
