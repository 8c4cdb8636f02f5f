//! Reading the event log for one subscription (docs/protocol.md 3.3): the events after a
//! cursor whose topics it matches, in log order, and where the next read starts.

use std::sync::Arc;

use chrono::Utc;
use mcpbus_proto::jsonrpc::ErrorObject;

use crate::events::event_types::EventSubscription;
use crate::events::{EventHub, LoggedEvent, ReadError, ReadFrom};

/// Log entries read per round trip.
pub(crate) const PAGE: usize = 512;

/// Log entries one scan reads at most before it answers (a poll then says `hasMore`), so that a
/// subscription whose events are rare in a long log costs several quick polls, not one slow one.
const BUDGET: usize = 20_000;

/// What a scan found.
#[derive(Debug)]
pub(crate) struct Scan {
    /// The subscription's events, oldest first.
    pub(crate) events: Vec<LoggedEvent>,
    /// Where the scan started (the cursor asked for, or where it had to resume).
    pub(crate) start: Arc<str>,
    /// Where the next scan starts: safe to persist, every matching event before it is in
    /// `events`.
    pub(crate) next: Arc<str>,
    /// Whether the scan started later than the cursor asked for.
    pub(crate) truncated: bool,
    /// Whether it stopped before the end of the log (the batch is full, or the budget spent).
    pub(crate) more: bool,
}

/// The error a client gets for a log that cannot be read.
pub(crate) fn read_error(e: ReadError) -> ErrorObject {
    match e {
        ReadError::InvalidCursor(cursor) => ErrorObject::invalid_params(format_args!(
            "cursor {cursor:?} is not a cursor of this server"
        )),
        ReadError::Backend(e) => ErrorObject::internal(format_args!("the event log: {e}")),
    }
}

/// Up to `max` events of `sub` after `from`.
pub(crate) async fn scan(
    hub: &EventHub,
    sub: &EventSubscription,
    from: ReadFrom<'_>,
    max: usize,
) -> Result<Scan, ReadError> {
    let log = hub.log();
    let first = log.read_after(from, PAGE).await?;
    let mut scan = Scan {
        events: Vec::new(),
        start: first.start.clone(),
        next: first.start.clone(),
        truncated: first.truncated,
        more: false,
    };
    let mut page = first;
    let mut read = 0;
    loop {
        read += PAGE;
        let now = Utc::now();
        for event in page.events {
            if !sub.wants(&event, now) {
                continue;
            }
            if scan.events.len() == max {
                // One more than fits: the batch ends at the previous event.
                scan.more = true;
                return Ok(scan);
            }
            scan.next = event.cursor.clone();
            scan.events.push(event);
        }
        scan.next = page.next.clone();
        if page.at_end {
            return Ok(scan);
        }
        if read >= BUDGET {
            scan.more = true;
            return Ok(scan);
        }
        let from = ReadFrom {
            cursor: &scan.next,
            not_before: None,
        };
        page = log.read_after(from, PAGE).await?;
    }
}
