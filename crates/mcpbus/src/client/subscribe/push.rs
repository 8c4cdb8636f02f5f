//! Push delivery: one `events/stream` request per subscription, kept open by a task of its own.
//!
//! The stream's notifications are routed here by the request's id (its subscription id). The
//! first `notifications/events/active` confirms the subscription; after it the stream is
//! watched: when neither an event nor a heartbeat came for twice the heartbeat interval
//! (SEP-3415's rule), or the stream ended or broke, a new `events/stream` is sent with the last
//! cursor, after 0.5 s doubling to 30 s while reopening keeps failing. A new stream from a cursor
//! replays what came meanwhile, so nothing is lost while the log still holds it, and the server
//! says `truncated` when it does not.

use std::time::Duration;

use mcpbus_proto::events_ext::{
    EventOccurrence, EventsActiveNotificationParams, EventsErrorNotificationParams,
    EventsHeartbeatNotificationParams, methods,
};
use mcpbus_proto::jsonrpc::{Notification, RequestId};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Failure, Runner, Started};
use crate::error::{Error, Result};
use crate::service::RequestOptions;
use crate::util::lock;

/// The first wait before opening the stream again.
const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait before opening it again.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long one `events/stream` request may stay open before it is replaced (at once, from its
/// cursor): the stream has no answer to wait for, but a request needs a bound.
const STREAM_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// How one stream ended.
enum Ended {
    /// The client stopped the subscription.
    Stopped,
    /// The server ended the subscription (`notifications/events/terminated`), or refused it
    /// for good.
    Terminated(mcpbus_proto::jsonrpc::ErrorObject),
    /// The request failed before the stream was confirmed.
    Refused(Error),
    /// The stream ended, broke or fell silent after it was confirmed: open another.
    Lost(String),
}

/// Runs the subscription until it is stopped or ends; tells `started` how the first stream
/// opened.
pub(super) async fn run(mut runner: Runner, started: Started) -> Result<()> {
    let mut started = Some(started);
    let mut backoff = INITIAL_BACKOFF;
    loop {
        let mut confirmed = false;
        let ended = stream(&mut runner, &mut started, &mut confirmed).await;
        let reason = match ended {
            Ended::Stopped => return Ok(()),
            Ended::Terminated(error) => {
                runner.sink.terminated(error.clone());
                return Err(Error::Remote(error));
            }
            Ended::Refused(e) => match runner.failure(&mut started, e) {
                Failure::Reported => return Ok(()),
                Failure::Over(e) => return Err(e),
                Failure::Retry(e) => e.to_string(),
            },
            Ended::Lost(_) if runner.peer.is_closed() => return Err(Error::Closed),
            Ended::Lost(reason) => reason,
        };
        if confirmed {
            backoff = INITIAL_BACKOFF;
        }
        tracing::info!(name = %runner.name, %reason, ?backoff, "the events/stream ended; reopening it from its cursor");
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = runner.stop.cancelled() => return Ok(()),
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Opens one stream from the subscription's cursor and follows it until it ends.
async fn stream(runner: &mut Runner, started: &mut Option<Started>, confirmed: &mut bool) -> Ended {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let routes = runner.routes.clone();
    let current: std::sync::Mutex<Option<RequestId>> = std::sync::Mutex::new(None);
    // Registered before the request goes out, so that its first notification finds its way.
    let on_id = |id: &RequestId| {
        routes.register(id.clone(), tx.clone());
        if let Some(old) = lock(&current).replace(id.clone()) {
            routes.retire(&old);
        }
    };
    let params = runner.params(runner.sink.cursor());
    let opts = RequestOptions {
        timeout: Some(STREAM_LIFETIME),
        ..RequestOptions::default()
    };
    let silence = runner.heartbeat * 2;
    let (link, peer, stop) = (
        runner.link.clone(),
        runner.peer.clone(),
        runner.stop.clone(),
    );
    let ended = {
        let request = link.send_tracked(&peer, methods::EVENTS_STREAM, Some(params), opts, &on_id);
        tokio::pin!(request);
        let mut deadline = Instant::now() + silence;
        loop {
            tokio::select! {
                // Notifications first: those that came before the request's end are handled
                // before it.
                biased;
                Some(note) = rx.recv() => {
                    deadline = Instant::now() + silence;
                    if let Some(ended) = note_of(runner, note, started, confirmed) {
                        break ended;
                    }
                }
                outcome = &mut request => {
                    while let Ok(note) = rx.try_recv() {
                        if let Some(ended) = note_of(runner, note, started, confirmed) {
                            return retire(&routes, &current, ended);
                        }
                    }
                    break match outcome {
                        Ok(_) if *confirmed => Ended::Lost("the server ended the stream".into()),
                        Ok(_) => Ended::Refused(Error::Protocol(
                            "events/stream ended before notifications/events/active".into(),
                        )),
                        Err(e) if *confirmed => Ended::Lost(e.to_string()),
                        Err(e) => Ended::Refused(e),
                    };
                }
                // Dropping the request closes its stream (HTTP) or cancels it (stdio).
                _ = tokio::time::sleep_until(deadline) => {
                    let reason = format!("no event nor heartbeat for {silence:?}");
                    break if *confirmed || started.is_none() {
                        Ended::Lost(reason)
                    } else {
                        Ended::Refused(Error::Protocol(format!(
                            "events/stream: {reason} before notifications/events/active"
                        )))
                    };
                }
                _ = stop.cancelled() => break Ended::Stopped,
            }
        }
    };
    retire(&routes, &current, ended)
}

fn retire(
    routes: &super::routes::Routes,
    current: &std::sync::Mutex<Option<RequestId>>,
    ended: Ended,
) -> Ended {
    if let Some(id) = lock(current).take() {
        routes.retire(&id);
    }
    ended
}

/// Handles one notification of the stream; `Some` when it ends the stream.
fn note_of(
    runner: &mut Runner,
    note: Notification,
    started: &mut Option<Started>,
    confirmed: &mut bool,
) -> Option<Ended> {
    let sink = &mut runner.sink;
    match note.method.as_str() {
        methods::ACTIVE => {
            let active: EventsActiveNotificationParams = read(note)?;
            if let Some(started) = started.take() {
                let _ = started.send(Ok(()));
            }
            *confirmed = true;
            if active.truncated {
                sink.gap(active.cursor.as_deref());
            } else {
                sink.position(active.cursor.as_deref());
            }
        }
        methods::EVENT => {
            let occurrence: EventOccurrence = read(note)?;
            sink.event(&occurrence, occurrence.cursor());
        }
        methods::HEARTBEAT => {
            let heartbeat: EventsHeartbeatNotificationParams = read(note)?;
            sink.position(heartbeat.cursor.as_deref());
        }
        methods::ERROR => {
            let error: EventsErrorNotificationParams = read(note)?;
            sink.error(error.error);
        }
        methods::TERMINATED => {
            let error: EventsErrorNotificationParams = read(note)?;
            return Some(Ended::Terminated(error.error));
        }
        _ => {}
    }
    None
}

/// A notification's params, or `None` (logged) when they do not read.
fn read<T: DeserializeOwned>(note: Notification) -> Option<T> {
    let params = note.params.unwrap_or_default();
    match serde_json::from_value(params) {
        Ok(value) => Some(value),
        Err(e) => {
            tracing::warn!(method = %note.method, error = %e, "ignoring a malformed notification");
            None
        }
    }
}
