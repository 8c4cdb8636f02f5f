//! Poll delivery: a task that calls `events/poll` with the subscription's cursor, as SEP-3415
//! asks of a client SDK.
//!
//! After an answer with `hasMore` it polls again at once; otherwise it waits `nextPollMs`, never
//! less than the floor (1 s by default) so that no server can make it spin. With a long poll
//! (`timeoutMs`) the server holds a poll that finds nothing, so the next poll goes out at once
//! after an answer that brought events or took at least the floor; an answer that came back
//! empty at once (a server that does not hold polls) waits as above. A failed poll is retried
//! after 1 s, doubling to 30 s, except the errors that say the subscription cannot be (NotFound,
//! Forbidden, InvalidParams, Unsupported, Method not found), which end it.
//!
//! A batch's events carry no cursor of their own (SEP-3415 puts one cursor on the answer): the
//! last event of a batch carries the answer's cursor, the others none. The batch already read
//! is always handed over whole before the task stops.

use std::time::Duration;

use mcpbus_proto::events_ext::{PollEventsResult, methods};
use serde_json::Value;
use tokio::time::Instant;

use super::{Failure, Runner, Started};
use crate::error::{Error, Result};
use crate::service::RequestOptions;

/// The first wait before polling again after a failed poll.
const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait after failed polls.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// What a long poll may take beyond the wait it asks for before the client gives up on it.
const LONG_POLL_SLACK: Duration = Duration::from_secs(30);

/// Runs the subscription until it is stopped or ends; tells `started` how the first poll went.
pub(super) async fn run(mut runner: Runner, started: Started) -> Result<()> {
    let mut started = Some(started);
    let mut backoff = INITIAL_BACKOFF;
    let mut first = true;
    loop {
        let sent = Instant::now();
        let outcome = tokio::select! {
            outcome = poll(&runner, first) => outcome,
            _ = runner.stop.cancelled() => return Ok(()),
        };
        let wait = match outcome {
            Ok(result) => {
                if let Some(started) = started.take() {
                    let _ = started.send(Ok(()));
                }
                first = false;
                backoff = INITIAL_BACKOFF;
                let brought = !result.events.is_empty();
                let wait = next_wait(&runner, &result, brought, sent.elapsed());
                hand_over(&mut runner, result);
                wait
            }
            Err(e) => {
                let e = match runner.failure(&mut started, e) {
                    Failure::Reported => return Ok(()),
                    Failure::Over(e) => return Err(e),
                    Failure::Retry(e) => e,
                };
                tracing::warn!(name = %runner.name, error = %e, ?backoff, "events/poll failed; polling again");
                let wait = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                wait
            }
        };
        if !wait.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = runner.stop.cancelled() => return Ok(()),
            }
        }
    }
}

/// One `events/poll` from the subscription's cursor.
async fn poll(runner: &Runner, first: bool) -> Result<PollEventsResult> {
    let mut params = runner.params(runner.sink.cursor());
    if !first {
        // The replay floor bounds how far back the subscription resumes; later polls follow
        // fresh cursors, and a slow consumer must not lose events to it.
        if let Some(object) = params.as_object_mut() {
            object.remove("maxAgeMs");
        }
    }
    if let Some(max) = runner.poll.max_events {
        params["maxEvents"] = Value::from(max);
    }
    let mut opts = RequestOptions::default();
    if let Some(wait) = runner.poll.long_poll {
        params["timeoutMs"] = Value::from(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
        opts.timeout = Some(wait + LONG_POLL_SLACK);
    }
    let value = runner
        .link
        .request(&runner.peer, methods::EVENTS_POLL, Some(params), opts)
        .await?;
    serde_json::from_value(value).map_err(|source| Error::InvalidResponse {
        method: methods::EVENTS_POLL.to_owned(),
        source,
    })
}

/// How long to wait before the next poll.
fn next_wait(
    runner: &Runner,
    result: &PollEventsResult,
    brought: bool,
    took: Duration,
) -> Duration {
    if result.has_more == Some(true) {
        return Duration::ZERO;
    }
    let floor = runner.poll.floor;
    if runner.poll.long_poll.is_some() && (brought || took >= floor) {
        return Duration::ZERO;
    }
    let asked = result.next_poll_ms.map_or(floor, Duration::from_millis);
    asked.max(floor)
}

/// Hands a poll's answer to the handler: the gap first, then the events (the last one with the
/// answer's cursor), then the cursor if no event carried it.
fn hand_over(runner: &mut Runner, result: PollEventsResult) {
    let sink = &mut runner.sink;
    let cursor = result.cursor.as_deref();
    if result.truncated {
        sink.gap(cursor);
    }
    let last = result.events.len().saturating_sub(1);
    for (i, occurrence) in result.events.iter().enumerate() {
        sink.event(occurrence, if i == last { cursor } else { None });
    }
    match cursor {
        Some(_) => sink.position(cursor),
        // An event type without replay: every poll asks from now (SEP-3415).
        None => sink.forget_cursor(),
    }
}
