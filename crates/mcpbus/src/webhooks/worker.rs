//! The delivery of one webhook subscription (docs/protocol.md 3.6.2): read the log after the
//! subscription's watermark, POST each matching event in log order with retries, and advance
//! the watermark past an event only once it is acknowledged (2xx) or abandoned (retries spent,
//! `413`); a `410` ends the subscription. One event is in flight at a time, so arrivals are in
//! log order and every payload's `cursor` (the watermark when it is sent) is safe to persist.
//!
//! The watermark is written to the store after every settled event, by the lease holder only:
//! a replica that takes the delivery over starts after the last settled event, so it repeats at
//! most the one event in flight when the previous holder stopped. No attempt is made once this
//! replica cannot count on its lease.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use mcpbus_proto::events_ext::webhook::{DeliveryErrorCategory, WebhookControl};
use mcpbus_proto::events_ext::{DeliveryMode, EventOccurrence};
use mcpbus_proto::jsonrpc::ErrorObject;
use tokio::time::Instant;

use super::destination::{self, CallbackUrl};
use super::registry::{Inner, control_id, signed_headers};
use super::sender;
use super::signing::WebhookSecret;
use super::store::{SaveOutcome, WebhookRecord};
use super::sub::Sub;
use crate::events::ReadFrom;
use crate::events::event_types::occurrence;
use crate::events::watch::Watch;
use crate::server::requests::events_ext::scan::scan;

/// Matching events read from the log per batch.
const BATCH: usize = 64;
/// Live events a subscription's watch holds before it falls back to reading the log.
const WATCH_BUFFER: usize = 256;
/// How often an idle worker looks at the log even without news from this process's hub (a
/// safety net: the hub sees every event of the log, other replicas' included).
const IDLE_RECHECK: Duration = Duration::from_secs(30);
/// The wait after a failed read of the log.
const READ_RETRY: Duration = Duration::from_secs(1);
/// The wait after a failed write of the delivery state.
const SAVE_RETRY: Duration = Duration::from_millis(200);

/// How an event's delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The endpoint answered 2xx.
    Acked,
    /// Given up on: retries spent, or an answer that asks for none (`413`).
    Abandoned,
    /// The subscription ended meanwhile.
    Stopped,
}

/// Delivers `sub` until it ends: first `initial` (retained values), then the log.
pub(super) async fn run(
    inner: Arc<Inner>,
    sub: Arc<Sub>,
    initial: Vec<EventOccurrence>,
    not_before: Option<DateTime<Utc>>,
) {
    // Attached before the first read: what is published from here on wakes the loop.
    let mut watch = inner.hub.watch(sub.events.pattern.clone(), WATCH_BUFFER);
    tracing::info!(subscription = %sub.id, lease = %sub.token, "webhook delivery starts here");
    let mut stopped = false;
    for occurrence in initial {
        if deliver_occurrence(&inner, &sub, occurrence).await == Outcome::Stopped {
            stopped = true;
            break;
        }
    }
    if !stopped {
        deliver_log(&inner, &sub, &mut watch, not_before).await;
    }
    inner.finish(&sub).await;
    tracing::info!(subscription = %sub.id, lease = %sub.token, "webhook delivery stops here");
}

/// The log loop: batches after the watermark, until the subscription ends.
async fn deliver_log(
    inner: &Inner,
    sub: &Arc<Sub>,
    watch: &mut Watch,
    mut not_before: Option<DateTime<Utc>>,
) {
    let mut first = true;
    loop {
        if !wait_until_active(sub).await {
            return;
        }
        watch.resume();
        let watermark = sub.watermark();
        let from = ReadFrom {
            cursor: &watermark,
            not_before: not_before.take(),
        };
        let found = match scan(&inner.hub, &sub.events, from, BATCH).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(subscription = %sub.id, "webhook delivery cannot read the event log: {e}");
                if !pause(sub, READ_RETRY).await {
                    return;
                }
                continue;
            }
        };
        // The first read's truncation was answered to the subscribe call itself.
        if found.truncated && !first && !send_gap(inner, sub, &found.start).await {
            return;
        }
        first = false;
        if !found.events.is_empty()
            && let Err(e) = still_allowed(inner, sub)
        {
            terminate(inner, sub, e).await;
            return;
        }
        for event in &found.events {
            let Some(occurrence) = occurrence(&sub.events.name, event, None) else {
                continue;
            };
            let outcome = deliver_occurrence(inner, sub, occurrence).await;
            if outcome == Outcome::Acked {
                inner.hub.count_delivered(&event.topic, 1);
            }
            if outcome == Outcome::Stopped || !settle(inner, sub, &event.cursor).await {
                return;
            }
        }
        if !settle(inner, sub, &found.next).await {
            return;
        }
        if !found.more && !wait_for_news(sub, watch).await {
            return;
        }
    }
}

/// Sends one event, its `cursor` the watermark as it stands (every earlier event settled).
async fn deliver_occurrence(inner: &Inner, sub: &Sub, mut occurrence: EventOccurrence) -> Outcome {
    occurrence.cursor = Some(Some(sub.watermark().to_string()));
    let Ok(body) = serde_json::to_vec(&occurrence) else {
        return Outcome::Abandoned;
    };
    let id = occurrence.event_id.clone();
    deliver(inner, sub, &id, Bytes::from(body)).await
}

/// A `gap` envelope: the log no longer holds what followed the watermark, which moves to where
/// reading resumed.
async fn send_gap(inner: &Inner, sub: &Sub, start: &Arc<str>) -> bool {
    tracing::warn!(subscription = %sub.id, "webhook subscription fell behind the log; sending a gap");
    sub.set_watermark(start);
    let body = WebhookControl::Gap {
        cursor: Some(start.to_string()),
    };
    let body = serde_json::to_vec(&body).unwrap_or_default();
    deliver(inner, sub, &control_id("gap"), Bytes::from(body)).await != Outcome::Stopped
        && save(inner, sub).await
}

/// Moves the watermark to `cursor` (every event up to it is settled) and writes it to the
/// store when it moved; false when delivery must stop here.
async fn settle(inner: &Inner, sub: &Sub, cursor: &str) -> bool {
    !sub.set_watermark(cursor) || save(inner, sub).await
}

/// Writes the delivery state to the store, as the lease holder. False when delivery must stop
/// here: the lease is lost (another replica delivers now), the subscription is gone, or the
/// store stayed unreachable until the lease could no longer be counted on.
async fn save(inner: &Inner, sub: &Sub) -> bool {
    loop {
        let state = sub.delivery_state();
        match inner.store.save_state(&sub.id, &sub.token, &state).await {
            Ok(SaveOutcome::Saved) => return true,
            Ok(SaveOutcome::Gone) => {
                tracing::info!(subscription = %sub.id, "webhook subscription ended elsewhere");
                sub.end();
                return false;
            }
            Ok(_) => {
                tracing::warn!(subscription = %sub.id, "webhook lease lost; another replica delivers");
                sub.cancel.cancel();
                return false;
            }
            Err(e) => {
                tracing::warn!(subscription = %sub.id, "cannot save the webhook watermark: {e}");
                if !sub.lease_valid() {
                    sub.cancel.cancel();
                    return false;
                }
                if !pause(sub, SAVE_RETRY).await {
                    return false;
                }
            }
        }
    }
}

/// Checks the principal against the topic rules again (docs/protocol.md 2.5): an authorizer
/// may have changed its mind since the subscription was made, or the topic permissions
/// (docs/auth.md) changed, or the principal's grants did.
fn still_allowed(inner: &Inner, sub: &Sub) -> Result<(), ErrorObject> {
    let principal = crate::server::auth::topic_principal(&sub.identity());
    inner
        .hub
        .declared()
        .subscribe_event(
            &sub.name,
            sub.arguments.as_ref(),
            DeliveryMode::Webhook,
            Some(&principal),
        )
        .map(|_| ())
}

/// Ends the subscription on the server's side: it is dropped, and one `terminated` envelope
/// (a single attempt) tells the endpoint why.
async fn terminate(inner: &Inner, sub: &Arc<Sub>, error: ErrorObject) {
    tracing::info!(subscription = %sub.id, "webhook subscription terminated: {}", error.message);
    inner.end(sub).await;
    let body = serde_json::to_vec(&WebhookControl::Terminated { error }).unwrap_or_default();
    let _ = attempt(inner, sub, &control_id("terminated"), Bytes::from(body)).await;
}

/// Ends a stored subscription that cannot be delivered any more (its topic is no longer
/// declared, or the principal no longer allowed): it is deleted, and one `terminated` envelope
/// tells the endpoint why.
pub(super) async fn terminate_stored(inner: &Inner, record: &WebhookRecord, error: ErrorObject) {
    tracing::info!(subscription = %record.id, "webhook subscription terminated: {}", error.message);
    if let Err(e) = inner.store.delete(&record.id).await {
        tracing::warn!(subscription = %record.id, "could not delete the webhook subscription: {e}");
    }
    let Ok(url) = CallbackUrl::parse(&record.url) else {
        return;
    };
    let secrets: Vec<WebhookSecret> = record
        .secrets
        .iter()
        .filter_map(|s| WebhookSecret::parse(&s.secret).ok())
        .collect();
    let body = serde_json::to_vec(&WebhookControl::Terminated { error }).unwrap_or_default();
    let webhook_id = control_id("terminated");
    let _ = post_once(
        inner,
        &record.id,
        &url,
        &secrets,
        &webhook_id,
        Bytes::from(body),
    )
    .await;
}

/// Delivers one body with bounded exponential backoff; each attempt is signed anew with a
/// fresh timestamp. Time spent suspended does not count: a resumed delivery starts over.
async fn deliver(inner: &Inner, sub: &Sub, webhook_id: &str, body: Bytes) -> Outcome {
    if body.len() > inner.config.max_body_bytes {
        tracing::warn!(subscription = %sub.id, webhook_id, size = body.len(),
            "webhook body over the size limit, not sent");
        return Outcome::Abandoned;
    }
    let policy = &inner.config.retry;
    let mut first = Instant::now();
    let mut attempts = 0;
    loop {
        if !sub.is_active() {
            if !wait_until_active(sub).await {
                return Outcome::Stopped;
            }
            first = Instant::now();
            attempts = 0;
        }
        if sub.cancel.is_cancelled() {
            return Outcome::Stopped;
        }
        if !sub.lease_valid() {
            // The lease could not be renewed in time: another replica may deliver by now.
            tracing::warn!(subscription = %sub.id, "webhook lease not renewed in time; delivery stops here");
            sub.cancel.cancel();
            return Outcome::Stopped;
        }
        attempts += 1;
        let failure = match attempt(inner, sub, webhook_id, body.clone()).await {
            Ok(status) if (200..300).contains(&status) => None,
            Ok(status) => Some((Some(status), sender::status_category(status))),
            Err(category) => Some((None, category)),
        };
        sub.record(failure.as_ref().map(|(_, c)| c.clone()), &inner.config);
        inner.hub.metrics().observe_webhook(failure.is_none());
        let Some((status, category)) = failure else {
            return Outcome::Acked;
        };
        // Other replicas answer refreshes with the status as stored.
        if !save(inner, sub).await {
            return Outcome::Stopped;
        }
        // 410 and 413 are never retried (SEP-3415). A 410 also ends the subscription: the
        // endpoint says it is gone for good (docs/protocol.md 3.6); a 413 ends that delivery.
        if status == Some(410) {
            tracing::info!(subscription = %sub.id, webhook_id, "webhook endpoint answered 410 Gone; subscription ended");
            inner.end(sub).await;
            return Outcome::Stopped;
        }
        if status == Some(413) {
            tracing::info!(subscription = %sub.id, webhook_id, "webhook endpoint refused the body (413); not retried");
            return Outcome::Abandoned;
        }
        let wait = policy.backoff(attempts);
        if attempts >= policy.max_attempts || first.elapsed() + wait > policy.max_window {
            tracing::warn!(subscription = %sub.id, webhook_id, attempts, error = category.as_str(),
                "webhook delivery abandoned");
            return Outcome::Abandoned;
        }
        if !pause(sub, wait).await {
            return Outcome::Stopped;
        }
    }
}

/// One attempt: the destination resolved and checked again (a rebinding attack sees its
/// private address refused here), then the POST. Returns the status.
async fn attempt(
    inner: &Inner,
    sub: &Sub,
    webhook_id: &str,
    body: Bytes,
) -> Result<u16, DeliveryErrorCategory> {
    let secrets = sub.signing_secrets();
    post_once(inner, &sub.id, &sub.url, &secrets, webhook_id, body).await
}

/// One signed POST of `body` to `url` for subscription `id`.
async fn post_once(
    inner: &Inner,
    id: &str,
    url: &CallbackUrl,
    secrets: &[WebhookSecret],
    webhook_id: &str,
    body: Bytes,
) -> Result<u16, DeliveryErrorCategory> {
    let addr = match destination::resolve(url, &inner.allow).await {
        Ok(addr) => addr,
        Err(refusal) => {
            tracing::warn!(subscription = %id, "webhook destination refused: {refusal}");
            return Err(DeliveryErrorCategory::ConnectionRefused);
        }
    };
    let headers = signed_headers(id, webhook_id, secrets, &body);
    sender::post(inner.target(url, addr), &headers, body)
        .await
        .map(|answer| answer.status)
}

/// Waits until delivery is active; false when the subscription ends first.
async fn wait_until_active(sub: &Sub) -> bool {
    loop {
        if sub.cancel.is_cancelled() || sub.expires() <= Instant::now() {
            return false;
        }
        if sub.is_active() {
            return true;
        }
        tokio::select! {
            _ = sub.changed.notified() => {}
            _ = sub.cancel.cancelled() => return false,
            _ = tokio::time::sleep_until(sub.expires()) => {}
        }
    }
}

/// Sleeps `wait`; false when the subscription ends first.
async fn pause(sub: &Sub, wait: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(wait) => !sub.cancel.is_cancelled(),
        _ = sub.cancel.cancelled() => false,
    }
}

/// Waits for something to read: a live event, a refresh, or the idle recheck; false when the
/// subscription ends (unsubscribed, or its lifetime passed without a refresh).
async fn wait_for_news(sub: &Sub, watch: &mut Watch) -> bool {
    tokio::select! {
        _ = watch.next() => true,
        _ = sub.changed.notified() => true,
        _ = tokio::time::sleep(IDLE_RECHECK) => true,
        _ = sub.cancel.cancelled() => false,
        _ = tokio::time::sleep_until(sub.expires()) => sub.expires() > Instant::now(),
    }
}
