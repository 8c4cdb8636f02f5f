//! The soak's churn: on each replica, one short-lived subscriber after another, each from now
//! on the soak's pattern, receiving a few events before it goes, in turn:
//!
//! - a handshake-era session (initialize, `events/subscribe`, GET stream) ended with `DELETE`;
//! - the same, abandoned: both connections dropped without `DELETE`, as clients that just go
//!   away do, so that the server's idle timeout has to reap it;
//! - a 2026-07-28 push stream (`events/stream`) whose connection is dropped.
//!
//! At most one is open per replica at a time, one starts every `--churn-every`, so the count is
//! bounded by the run's length (and the abandoned sessions alive at once by the idle timeout).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use mcpbus_proto::sse::SseDecoder;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::subscribers::{Errors, soak_event};
use crate::conn::{Conn, Endpoint};
use crate::{events, fanout, mcp};

/// The longest one churned subscriber may take, setup and its few events included.
const CHURN_TIMEOUT: Duration = Duration::from_secs(15);

/// The kinds of churn, taken in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A session ended with `DELETE`.
    Deleted,
    /// A session whose connections were dropped.
    Abandoned,
    /// A push stream whose connection was dropped.
    PushDropped,
}

impl Kind {
    /// Every kind, in the order they take turns.
    pub(crate) const ALL: [Kind; 3] = [Kind::Deleted, Kind::Abandoned, Kind::PushDropped];

    /// The name in errors and the summary.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Deleted => "session ended with DELETE",
            Kind::Abandoned => "session abandoned",
            Kind::PushDropped => "push stream dropped",
        }
    }
}

/// What the churn did, shared by the churn tasks of every replica.
#[derive(Debug, Default)]
pub(crate) struct ChurnTally {
    /// Completed operations of each kind, in the order of [`Kind::ALL`].
    pub done: [AtomicU64; 3],
    /// Failed or timed-out operations.
    pub errors: Errors,
}

impl ChurnTally {
    /// Completed operations of every kind.
    pub(crate) fn total(&self) -> u64 {
        self.done.iter().map(|d| d.load(Ordering::Relaxed)).sum()
    }
}

/// Settings of one replica's churn.
#[derive(Debug, Clone)]
pub(crate) struct Churn {
    /// The replica's MCP endpoint.
    pub endpoint: Endpoint,
    /// The pattern subscribed to.
    pub pattern: String,
    /// One operation starts this often (later when the previous one took longer).
    pub every: Duration,
    /// Events each subscriber receives before it goes.
    pub events: usize,
}

/// Starts one replica's churn; it ends when `stop` turns true.
pub(crate) fn spawn(
    churn: Churn,
    tally: std::sync::Arc<ChurnTally>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(churn.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for (i, kind) in Kind::ALL.iter().cycle().enumerate() {
            tokio::select! {
                biased;
                _ = stop.changed() => return,
                _ = tick.tick() => {}
            }
            let outcome = tokio::select! {
                biased;
                _ = stop.changed() => return,
                r = tokio::time::timeout(CHURN_TIMEOUT, once(*kind, &churn)) => r,
            };
            match outcome {
                Ok(Ok(())) => {
                    tally.done[i % Kind::ALL.len()].fetch_add(1, Ordering::Relaxed);
                }
                Ok(Err(e)) => tally.errors.fail(format!("churn, {}: {e}", kind.name())),
                Err(_) => tally.errors.fail(format!(
                    "churn, {}: not done within {CHURN_TIMEOUT:?}",
                    kind.name()
                )),
            }
        }
    })
}

/// One churned subscriber, from setup to its end.
async fn once(kind: Kind, churn: &Churn) -> Result<(), String> {
    let endpoint = &churn.endpoint;
    match kind {
        Kind::Deleted | Kind::Abandoned => {
            let mut conn = Conn::connect(endpoint).await?;
            let (session, stream, body) =
                fanout::open_session_stream(&mut conn, endpoint, &churn.pattern).await?;
            wait_for_events(body, churn.events).await?;
            if kind == Kind::Deleted {
                let answer = conn
                    .exchange(mcp::delete_session(endpoint, &session))
                    .await?;
                if !answer.status.is_success() {
                    return Err(format!("DELETE: HTTP {}", answer.status));
                }
            }
            drop(stream);
        }
        Kind::PushDropped => {
            let (stream, body) = events::open_push_stream(endpoint, &churn.pattern).await?;
            wait_for_events(body, churn.events).await?;
            drop(stream);
        }
    }
    Ok(())
}

/// Reads a stream until `events` soak events arrived; the body is dropped when it returns.
async fn wait_for_events(mut body: Incoming, events: usize) -> Result<(), String> {
    let mut decoder = SseDecoder::new();
    let mut seen = 0;
    while seen < events {
        let frame = match body.frame().await {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => return Err(format!("stream failed after {seen} event(s): {e}")),
            None => return Err(format!("stream ended after {seen} of {events} event(s)")),
        };
        if let Ok(data) = frame.into_data() {
            seen += decoder
                .push(&data)
                .iter()
                .filter(|e| soak_event(&e.data).is_some())
                .count();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn kinds_take_turns() {
        let names: Vec<_> = Kind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), 3);
        let tally = ChurnTally::default();
        tally.done[0].fetch_add(2, Ordering::Relaxed);
        tally.done[2].fetch_add(1, Ordering::Relaxed);
        assert_eq!(tally.total(), 3);
        let endpoint = Endpoint::parse("http://127.0.0.1:1/mcp").unwrap();
        let request = mcp::delete_session(&endpoint, "abc");
        assert_eq!(request.method(), Method::DELETE);
        assert_eq!(request.headers()["mcp-session-id"], "abc");
    }
}
