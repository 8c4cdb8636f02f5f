//! The read side of the shared log (docs/protocol.md 3.3): events after a cursor, with `XRANGE`
//! on the log's Redis Stream, so that any replica answers any SEP-3415 poll and resumes any push
//! stream, and cursors outlive restarts.
//!
//! A cursor is a stream id. One the stream can no longer serve is not an error: a cursor older
//! than the oldest entry once trimming has begun, or newer than the newest id (another
//! deployment's, or a log that was lost), starts over from the oldest entry kept, `truncated`.
//! The log is trimmed approximately, so a cursor just before the oldest entry kept counts as
//! trimmed even when nothing after it was lost: a rare spurious `truncated`, never a silent gap.
//! Whether trimming began is `XINFO STREAM`'s `entries-added` (Redis 7.0); without it (Redis 6)
//! every cursor before the oldest entry is taken as trimmed.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use mcpbus::events::{LogPage, LogPosition, LoggedEvent, ReadError, ReadFrom};
use redis::Value;

use crate::store::{Entry, field, parse_entries};
use crate::{Inner, backend_error, scripts};

/// The topic of the server's notices in the log (never an event of a subscriber).
const NOTICE_TOPIC: &str = "$mcpbus/notice";

/// The publish time of a log entry: the milliseconds of its stream id.
pub(crate) fn published_at(id: &str) -> DateTime<Utc> {
    LogPosition::parse(id)
        .and_then(|p| i64::try_from(p.0).ok())
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
        .unwrap_or_else(Utc::now)
}

/// A log event entry as the hub takes it; `None` for other entries and server notices.
pub(crate) fn event_of(entry: &Entry) -> Option<LoggedEvent> {
    if field(entry, "k").map(Bytes::as_ref) != Some(b"e") {
        return None;
    }
    let topic = String::from_utf8_lossy(field(entry, "t")?);
    Some(LoggedEvent {
        cursor: entry.0.as_str().into(),
        topic: topic.as_ref().into(),
        params: field(entry, "p")?.clone(),
        published_at: published_at(&entry.0),
    })
}

/// Where the stream stands.
struct Bounds {
    exists: bool,
    length: u64,
    /// Entries ever added; `None` before Redis 7.0, which does not count them.
    added: Option<u64>,
    first: Option<LogPosition>,
    last: LogPosition,
}

async fn bounds(inner: &Inner) -> Result<Bounds, ReadError> {
    let mut conn = inner.conn();
    let reply: Vec<Value> = redis::Script::new(scripts::LOG_BOUNDS)
        .key(inner.keys.log())
        .invoke_async(&mut conn)
        .await
        .map_err(backend_error)?;
    let int = |v: Option<&Value>| match v {
        Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
        _ => 0,
    };
    let text = |v: Option<&Value>| match v {
        Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(Value::SimpleString(s)) => s.clone(),
        _ => String::new(),
    };
    Ok(Bounds {
        exists: int(reply.first()) == 1,
        length: int(reply.get(1)),
        added: match reply.get(2) {
            Some(Value::Int(n)) => u64::try_from(*n).ok(),
            _ => None,
        },
        first: LogPosition::parse(&text(reply.get(3))),
        last: LogPosition::parse(&text(reply.get(4))).unwrap_or(LogPosition(0, 0)),
    })
}

/// The position just before `p` (an exclusive start that reads `p` itself).
fn before(p: LogPosition) -> LogPosition {
    match p {
        LogPosition(0, 0) => p,
        LogPosition(ms, 0) => LogPosition(ms - 1, u64::MAX),
        LogPosition(ms, seq) => LogPosition(ms, seq - 1),
    }
}

impl Bounds {
    /// Where a read after `cursor` can start, and whether that skips anything.
    fn place(&self, cursor: LogPosition) -> (LogPosition, bool) {
        let oldest = self.first.map_or(self.last, before);
        if !self.exists {
            return (LogPosition(0, 0), cursor > LogPosition(0, 0));
        }
        if cursor > self.last {
            return (oldest, true);
        }
        // Without the count (Redis 6), trimming may have begun.
        let trimmed = self.added.is_none_or(|added| added > self.length);
        if trimmed && self.first.is_none_or(|first| cursor < first) && cursor < oldest {
            return (oldest, true);
        }
        (cursor, false)
    }
}

/// `XRANGE` after `start` (exclusive) up to `end` (inclusive), at most `count` entries.
async fn range(
    inner: &Inner,
    start: LogPosition,
    end: &str,
    count: usize,
) -> Result<Vec<Entry>, ReadError> {
    let mut conn = inner.conn();
    let reply: Value = redis::cmd("XRANGE")
        .arg(inner.keys.log())
        .arg(format!("({start}"))
        .arg(end)
        .arg("COUNT")
        .arg(count)
        .query_async(&mut conn)
        .await
        .map_err(backend_error)?;
    Ok(parse_entries(reply))
}

/// Reads up to `max` log entries after `from` (see the module's documentation).
pub(crate) async fn read_after(
    inner: &Inner,
    from: ReadFrom<'_>,
    max: usize,
) -> Result<LogPage, ReadError> {
    let cursor = LogPosition::parse(from.cursor)
        .ok_or_else(|| ReadError::InvalidCursor(from.cursor.to_owned()))?;
    let bounds = bounds(inner).await?;
    let (mut start, mut truncated) = bounds.place(cursor);
    if let Some(floor) = from.not_before {
        let floor = before(LogPosition(
            u64::try_from(floor.timestamp_millis()).unwrap_or(0),
            0,
        ));
        if floor > start {
            // Anything between the cursor and the floor is skipped.
            truncated |= !range(inner, start, &floor.to_string(), 1).await?.is_empty();
            start = floor;
        }
    }
    let max = max.max(1);
    let entries = range(inner, start, "+", max).await?;
    let at_end = entries.len() < max;
    let next: Arc<str> = match entries.last() {
        Some(entry) => entry.0.as_str().into(),
        None => start.to_string().into(),
    };
    let events = entries
        .iter()
        .filter_map(event_of)
        .filter(|e| &*e.topic != NOTICE_TOPIC)
        .collect();
    Ok(LogPage {
        events,
        start: start.to_string().into(),
        next,
        truncated,
        at_end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(length: u64, added: u64, first: Option<(u64, u64)>, last: (u64, u64)) -> Bounds {
        Bounds {
            exists: true,
            length,
            added: Some(added),
            first: first.map(|(a, b)| LogPosition(a, b)),
            last: LogPosition(last.0, last.1),
        }
    }

    #[test]
    fn cursors_are_placed_in_the_stream() {
        let untrimmed = bounds(3, 3, Some((10, 0)), (12, 0));
        assert_eq!(
            untrimmed.place(LogPosition(0, 0)),
            (LogPosition(0, 0), false)
        );
        assert_eq!(
            untrimmed.place(LogPosition(11, 0)),
            (LogPosition(11, 0), false)
        );
        assert_eq!(
            untrimmed.place(LogPosition(13, 0)),
            (LogPosition(9, u64::MAX), true)
        );
        let trimmed = bounds(3, 9, Some((10, 2)), (12, 0));
        assert_eq!(trimmed.place(LogPosition(5, 0)), (LogPosition(10, 1), true));
        assert_eq!(
            trimmed.place(LogPosition(10, 1)),
            (LogPosition(10, 1), false)
        );
        assert_eq!(
            trimmed.place(LogPosition(10, 2)),
            (LogPosition(10, 2), false)
        );
        let missing = Bounds {
            exists: false,
            ..bounds(0, 0, None, (0, 0))
        };
        assert_eq!(missing.place(LogPosition(0, 0)), (LogPosition(0, 0), false));
        assert_eq!(missing.place(LogPosition(7, 0)), (LogPosition(0, 0), true));
        let uncounted = Bounds {
            added: None,
            ..bounds(3, 3, Some((10, 0)), (12, 0))
        };
        assert!(
            uncounted.place(LogPosition(5, 0)).1,
            "Redis 6: possibly trimmed"
        );
        assert!(!uncounted.place(LogPosition(11, 0)).1);
    }

    #[test]
    fn before_steps_back_one_id() {
        assert_eq!(before(LogPosition(5, 2)), LogPosition(5, 1));
        assert_eq!(before(LogPosition(5, 0)), LogPosition(4, u64::MAX));
    }
}
