//! `events/poll` (docs/protocol.md 3.4): one batch of a subscription's events after a cursor.
//!
//! Stateless: the cursor names a position of the event log, so any replica answers any poll
//! (with Redis, every replica reads the same log). A poll from "now" (cursor `null`) returns the
//! current retained values of the subscription's topics and the log's head; a poll from a
//! cursor returns up to `maxEvents` events after it. With `timeoutMs` (a long poll) the server
//! holds a poll that found nothing until a matching event is published here or the time is up.

use std::time::Duration;

use mcpbus_proto::events_ext::{DeliveryMode, PollEventsRequestParams, PollEventsResult};
use mcpbus_proto::jsonrpc::ErrorObject;
use serde_json::Value;
use tokio::time::Instant;

use super::scan::{Scan, read_error, scan};
use super::{age_floor, hub_with_topics, subscription};
use crate::events::event_types::{EventSubscription, occurrence, retained_occurrence};
use crate::events::{EventHub, ReadFrom};
use crate::server::context::Context;
use crate::service::{parse_params, to_result};

/// `events/poll`.
pub(crate) async fn poll(params: Option<Value>, ctx: Context) -> Result<Value, ErrorObject> {
    let p: PollEventsRequestParams = parse_params(params)?;
    let hub = hub_with_topics(&ctx)?.clone();
    let sub = subscription(&ctx, &p.subscription, DeliveryMode::Poll)?;
    let config = hub.delivery_config();
    let next_poll_ms = u64::try_from(config.next_poll.as_millis()).unwrap_or(u64::MAX);
    let Some(cursor) = p.subscription.cursor() else {
        let mut result = from_now(&hub, &sub).await?;
        result.next_poll_ms = Some(next_poll_ms);
        return to_result(&result);
    };
    let max = p.max_events.map_or(config.default_poll_events, |n| {
        usize::try_from(n).unwrap_or(usize::MAX)
    });
    let max = max.clamp(1, config.max_poll_events.max(1));
    let wait = Duration::from_millis(p.timeout_ms.unwrap_or(0)).min(config.max_poll_wait);
    let from = ReadFrom {
        cursor,
        not_before: age_floor(&p.subscription),
    };
    let found = if wait.is_zero() {
        scan(&hub, &sub, from, max).await.map_err(read_error)?
    } else {
        long_poll(&hub, &sub, from, max, wait, &ctx).await?
    };
    let events = found
        .events
        .iter()
        .filter_map(|e| {
            let found = occurrence(&sub.name, e, None);
            if found.is_some() {
                hub.count_delivered(&e.topic, 1);
            }
            found
        })
        .collect();
    to_result(&PollEventsResult {
        events,
        cursor: Some(found.next.to_string()),
        truncated: found.truncated,
        has_more: Some(found.more),
        next_poll_ms: Some(next_poll_ms),
        meta: None,
    })
}

/// A poll from now: the retained values first (docs/protocol.md 3.2), and the head of the log
/// to poll after.
async fn from_now(
    hub: &EventHub,
    sub: &EventSubscription,
) -> Result<PollEventsResult, ErrorObject> {
    // The head first: a value retained after it is read comes again from the log, never lost.
    let head = hub
        .log()
        .head()
        .await
        .map_err(|e| ErrorObject::internal(format_args!("the event log: {e}")))?;
    let mut events = Vec::new();
    if sub.retained {
        let values = hub
            .retained_values(&sub.pattern)
            .await
            .map_err(|e| ErrorObject::internal(format_args!("the event log: {e}")))?;
        events.extend(
            values
                .iter()
                .filter_map(|v| retained_occurrence(&sub.name, v, None)),
        );
    }
    Ok(PollEventsResult {
        events,
        cursor: Some(head.to_string()),
        truncated: false,
        has_more: Some(false),
        next_poll_ms: None,
        meta: None,
    })
}

/// A poll that waits up to `wait` for a first event. The watch is attached before the log is
/// read, so an event published meanwhile wakes it; the log is then read again from where the
/// last read ended.
pub(crate) async fn long_poll(
    hub: &EventHub,
    sub: &EventSubscription,
    from: ReadFrom<'_>,
    max: usize,
    wait: Duration,
    ctx: &Context,
) -> Result<Scan, ErrorObject> {
    let deadline = Instant::now() + wait;
    let mut watch = hub.watch(sub.pattern.clone(), 1);
    let mut found = scan(hub, sub, from, max).await.map_err(read_error)?;
    while found.events.is_empty() && !found.more {
        tokio::select! {
            _ = watch.next() => {}
            _ = tokio::time::sleep_until(deadline) => break,
            _ = ctx.cancellation().cancelled() => return Err(cancelled()),
        }
        // Before reading again: what wakes the watch from now on is after this read's start.
        watch.resume();
        let next = found.next.clone();
        let from = ReadFrom {
            cursor: &next,
            not_before: None,
        };
        let again = scan(hub, sub, from, max).await.map_err(read_error)?;
        found = Scan {
            start: found.start,
            truncated: found.truncated || again.truncated,
            ..again
        };
        if Instant::now() >= deadline {
            break;
        }
    }
    Ok(found)
}

fn cancelled() -> ErrorObject {
    ErrorObject::new(
        mcpbus_proto::error_codes::REQUEST_CANCELLED,
        "poll cancelled",
    )
}
