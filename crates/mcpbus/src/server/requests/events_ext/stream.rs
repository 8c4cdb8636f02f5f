//! `events/stream` (docs/protocol.md 3.4): a push subscription that lasts as long as its
//! request. On Streamable HTTP it is the POST's SSE answer, on stdio notifications; the client
//! ends it by closing the answer (HTTP) or with `notifications/cancelled` (stdio), and whatever
//! the stream held (its watch on the hub, its slot) is released with it.
//!
//! The stream first says where it starts (`notifications/events/active`), then sends the
//! retained values (from now) or the events after the client's cursor read from the log, then
//! the live events of this process as the hub delivers them, each with its cursor, and a
//! heartbeat with the cursor checked up to whenever the interval passes. A stream whose reader
//! falls behind its buffer reads the log again from its cursor; only if the log no longer holds
//! what it missed does the client hear of a gap (`active` again, `truncated: true`). Over HTTP
//! the client's own pace counts too: while its connection has `stream_buffer` frames untaken,
//! the stream takes nothing more from the hub (its watch overflows, and it reads the log once
//! there is room), so a client that reads slowly holds a bounded amount of memory.

use std::cmp::Ordering;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mcpbus_proto::events_ext::{
    DeliveryMode, EventOccurrence, EventsActiveNotificationParams, EventsErrorNotificationParams,
    EventsHeartbeatNotificationParams, StreamEventsRequestParams, StreamEventsResult, methods,
};
use mcpbus_proto::jsonrpc::{ErrorObject, RequestId};
use mcpbus_proto::modern::NotificationMeta;
use serde::Serialize;
use serde_json::Value;

use super::scan::{PAGE, read_error};
use super::{age_floor, hub_with_topics, subscription};
use crate::events::event_types::{EventSubscription, occurrence, retained_occurrence};
use crate::events::watch::Watch;
use crate::events::{EventHub, LogPosition, LoggedEvent, ReadError, ReadFrom};
use crate::server::context::Context;
use crate::service::{Backlog, Peer, parse_params, to_result};

/// `events/stream`: refused at once (and no stream opened) when the subscription is invalid;
/// otherwise it runs until the client leaves or the server ends it.
pub(crate) async fn stream(params: Option<Value>, ctx: Context) -> Result<Value, ErrorObject> {
    let p: StreamEventsRequestParams = parse_params(params)?;
    let hub = hub_with_topics(&ctx)?.clone();
    let sub = subscription(&ctx, &p.subscription, DeliveryMode::Push)?;
    let _slot = StreamSlot::take(&hub)?;
    // Attached before anything is read: what is published from here on is either in the
    // reads below or queued behind them.
    let watch = hub.watch(sub.pattern.clone(), hub.delivery_config().stream_buffer);
    let mut push = Push {
        out: Out {
            peer: ctx.peer().clone(),
            id: ctx.request.id.clone(),
        },
        cursor: "0".into(),
        hub,
        sub,
        watch,
        backlog: ctx.peer().backlog(),
        cancel: ctx.cancellation().clone(),
    };
    match p.subscription.cursor() {
        None => push.start_now().await?,
        Some(cursor) => {
            let from = ReadFrom {
                cursor,
                not_before: age_floor(&p.subscription),
            };
            push.replay(from, Announce::Always)
                .await
                .map_err(read_error)?;
        }
    }
    push.live(&ctx).await;
    to_result(&StreamEventsResult::new(ctx.request.id.clone()))
}

/// One open push stream, counted against `DeliveryConfig::max_streams` until dropped (and not
/// against the limits on requests in flight).
struct StreamSlot(Arc<AtomicUsize>);

impl StreamSlot {
    fn take(hub: &EventHub) -> Result<Self, ErrorObject> {
        use std::sync::atomic::Ordering::AcqRel;
        let max = hub.delivery_config().max_streams;
        let open = hub.push_stream_counter();
        open.fetch_update(AcqRel, std::sync::atomic::Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .map(|_| StreamSlot(open.clone()))
        .map_err(|_| ErrorObject::resource_exhausted("streams", u64::try_from(max).ok()))
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Whether a read announces where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Announce {
    /// At the start of a stream: always.
    Always,
    /// Mid-stream, after the reader fell behind: only for a gap.
    IfTruncated,
}

/// The notifications of one stream, each naming it in `_meta`.
struct Out {
    peer: Peer,
    id: RequestId,
}

impl Out {
    fn meta(&self) -> Option<NotificationMeta> {
        Some(NotificationMeta::for_subscription(self.id.clone()))
    }

    fn send(&self, method: &str, params: impl Serialize) {
        if let Ok(params) = serde_json::to_value(params) {
            let _ = self.peer.notify(method, Some(params));
        }
    }

    fn active(&self, cursor: &str, truncated: bool) {
        let params = EventsActiveNotificationParams {
            cursor: Some(cursor.to_owned()),
            truncated,
            meta: self.meta(),
        };
        self.send(methods::ACTIVE, params);
    }

    fn event(&self, occurrence: EventOccurrence) {
        self.send(methods::EVENT, occurrence.for_subscription(&self.id));
    }

    fn heartbeat(&self, cursor: &str) {
        let params = EventsHeartbeatNotificationParams {
            cursor: Some(cursor.to_owned()),
            meta: self.meta(),
        };
        self.send(methods::HEARTBEAT, params);
    }

    fn error(&self, error: ErrorObject) {
        let params = EventsErrorNotificationParams {
            error,
            meta: self.meta(),
        };
        self.send(methods::ERROR, params);
    }
}

/// The state of one push stream.
struct Push {
    out: Out,
    hub: EventHub,
    sub: EventSubscription,
    watch: Watch,
    /// Everything of the subscription up to here has been sent: safe for the client to persist.
    cursor: Arc<str>,
    /// How far the client's connection is behind, where the transport can tell (HTTP).
    backlog: Option<Arc<Backlog>>,
    /// Cancelled when the client leaves (or the server ends the stream).
    cancel: tokio_util::sync::CancellationToken,
}

impl Push {
    /// A stream from now: the head of the log, then the retained values (docs/protocol.md 3.2).
    async fn start_now(&mut self) -> Result<(), ErrorObject> {
        let log_error = |e| ErrorObject::internal(format_args!("the event log: {e}"));
        self.cursor = self.hub.log().head().await.map_err(log_error)?;
        let values = if self.sub.retained {
            self.hub
                .retained_values(&self.sub.pattern)
                .await
                .map_err(log_error)?
        } else {
            Vec::new()
        };
        self.out.active(&self.cursor, false);
        for value in &values {
            if let Some(o) = retained_occurrence(&self.sub.name, value, Some(&self.cursor)) {
                self.out.event(o);
            }
        }
        Ok(())
    }

    /// Sends the subscription's events of the log after `from`, up to its end. The first read
    /// is announced as `announce` says; an error of that read is the caller's.
    async fn replay(&mut self, from: ReadFrom<'_>, announce: Announce) -> Result<(), ReadError> {
        let mut page = self.hub.log().read_after(from, PAGE).await?;
        if announce == Announce::Always || page.truncated {
            self.out.active(&page.start, page.truncated);
        }
        self.cursor = page.start.clone();
        loop {
            let now = Utc::now();
            for event in &page.events {
                // A client that reads slowly takes a page at its own pace; one that left
                // ends the stream (the cursor is where it stopped).
                if !self.room().await {
                    return Ok(());
                }
                self.send(event, now);
            }
            self.cursor = later(&self.cursor, &page.next);
            if page.at_end {
                return Ok(());
            }
            let next = self.cursor.clone();
            let from = ReadFrom {
                cursor: &next,
                not_before: None,
            };
            page = self.hub.log().read_after(from, PAGE).await?;
        }
    }

    /// Sends one event of the log if it is the subscription's and after the cursor.
    fn send(&mut self, event: &LoggedEvent, now: DateTime<Utc>) {
        if !is_after(&event.cursor, &self.cursor) {
            return;
        }
        self.cursor = event.cursor.clone();
        if !self.sub.wants(event, now) {
            return;
        }
        if let Some(o) = occurrence(&self.sub.name, event, Some(&event.cursor)) {
            self.out.event(o);
            self.hub.count_delivered(&event.topic, 1);
        }
    }

    /// Live delivery until the client leaves or the server ends the stream.
    async fn live(&mut self, ctx: &Context) {
        let interval = self.hub.delivery_config().heartbeat_interval();
        let mut heartbeat =
            tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if !self.room().await {
                return;
            }
            tokio::select! {
                _ = ctx.cancellation().cancelled() => return,
                _ = self.out.peer.closed() => return,
                // stdio: the client is gone; do not hold the process for the drain timeout.
                _ = self.out.peer.input_closed() => return,
                _ = heartbeat.tick() => self.heartbeat(),
                event = self.watch.next() => match event {
                    Some(event) => self.send(&event, Utc::now()),
                    None if self.watch.overflowed() => self.catch_up(ctx).await,
                    // The hub is gone: the server is ending.
                    None => return,
                },
            }
        }
    }

    /// Waits while the client's connection has `stream_buffer` frames it has not taken: the
    /// hub's events pile up in the watch meanwhile, which overflows, and the stream reads the
    /// log again from its cursor once there is room. `false` if the stream ended meanwhile.
    async fn room(&self) -> bool {
        let Some(backlog) = &self.backlog else {
            return true;
        };
        let limit = self.hub.delivery_config().stream_buffer.max(1);
        if backlog.has_room(limit) {
            return true;
        }
        tokio::select! {
            () = backlog.room(limit) => true,
            () = self.cancel.cancelled() => false,
            () = self.out.peer.closed() => false,
        }
    }

    /// The heartbeat: the cursor checked up to. Everything the hub delivered up to its head is
    /// in the watch's queue by now; once that is sent, the stream has checked up to the head.
    fn heartbeat(&mut self) {
        let head = self.hub.delivered_head();
        while let Some(event) = self.watch.try_next() {
            self.send(&event, Utc::now());
        }
        if let Some(head) = head
            && !self.watch.overflowed()
        {
            self.cursor = later(&self.cursor, &head);
        }
        self.out.heartbeat(&self.cursor);
    }

    /// After the reader fell behind: reads the log from the cursor (retrying while the log
    /// cannot be read, and telling the client so), then goes back to live delivery.
    async fn catch_up(&mut self, ctx: &Context) {
        let mut backoff = Duration::from_millis(100);
        loop {
            self.watch.resume();
            let cursor = self.cursor.clone();
            let from = ReadFrom {
                cursor: &cursor,
                not_before: None,
            };
            match self.replay(from, Announce::IfTruncated).await {
                Ok(()) => return,
                Err(e) => self.out.error(read_error(e)),
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = ctx.cancellation().cancelled() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

/// Whether cursor `a` is after `b` (cursors of one log); a cursor that does not read never is.
fn is_after(a: &str, b: &str) -> bool {
    LogPosition::compare(a, b) == Some(Ordering::Greater)
}

/// The later of two cursors.
fn later(a: &Arc<str>, b: &Arc<str>) -> Arc<str> {
    if is_after(b, a) { b.clone() } else { a.clone() }
}
