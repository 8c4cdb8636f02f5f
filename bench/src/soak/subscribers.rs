//! The soak's long-lived subscribers, on every replica and in both eras: handshake-era sessions
//! subscribed with `events/subscribe` that read their GET stream, 2026-07-28 push streams
//! (`events/stream`) and pollers (`events/poll`). All are set up before the first publish and
//! follow the soak's pattern to the end, so each must receive every sequence number once and
//! in order (one publisher, each publish acknowledged before the next is sent: log order is
//! sequence order). What they receive, skip or see twice goes to one shared [`Tally`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use mcpbus_proto::sse::SseDecoder;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::conn::{Conn, Endpoint};
use crate::stats::{self, Latency};
use crate::{events, fanout, mcp};

/// How long a poller waits when the log had nothing more for it: the server's default
/// `nextPollMs`, as a client that honours it would.
const POLL_PAUSE: Duration = Duration::from_secs(1);

/// Locks a mutex; a panicked holder cannot leave these tallies half-written.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counts errors and keeps the first, shared by tasks.
#[derive(Debug, Default)]
pub(crate) struct Errors {
    count: AtomicU64,
    first: Mutex<Option<String>>,
}

impl Errors {
    /// Records one.
    pub(crate) fn fail(&self, error: String) {
        self.count.fetch_add(1, Ordering::Relaxed);
        lock(&self.first).get_or_insert(error);
    }

    /// How many so far.
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The first one, if any.
    pub(crate) fn first(&self) -> Option<String> {
        lock(&self.first).clone()
    }
}

/// What every long-lived subscriber reports.
#[derive(Debug)]
pub(crate) struct Tally {
    /// Events received (the first time each), over every subscriber.
    pub delivered: AtomicU64,
    /// Sequence numbers skipped: a later event came first (each one skipped counts).
    pub skipped: AtomicU64,
    /// Events received again, or after a later one.
    pub repeats: AtomicU64,
    /// Streams that ended while the run went on.
    pub ended: AtomicU64,
    /// Failed setups and polls, ended streams.
    pub errors: Errors,
    /// Publish → arrival on the streams in the current window, ns.
    window: Mutex<Histogram<u64>>,
}

impl Tally {
    /// Nothing yet.
    pub(crate) fn new() -> Self {
        Tally {
            delivered: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            repeats: AtomicU64::new(0),
            ended: AtomicU64::new(0),
            errors: Errors::default(),
            window: Mutex::new(stats::latency_histogram()),
        }
    }

    /// The latencies of the window that ends now; the next window starts empty.
    pub(crate) fn take_window(&self) -> Latency {
        let mut h = lock(&self.window);
        let latency = Latency::of(&h);
        h.reset();
        latency
    }
}

/// How a long-lived subscriber receives events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A handshake-era session: `events/subscribe`, then `events/emit` on its GET stream.
    GetStream,
    /// A 2026-07-28 push stream (`events/stream`).
    PushStream,
    /// A 2026-07-28 poller (`events/poll` from its last cursor).
    Poller,
}

impl Kind {
    /// The name in the summary.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::GetStream => "session + GET stream",
            Kind::PushStream => "push stream",
            Kind::Poller => "poller",
        }
    }
}

/// How many long-lived subscribers of each kind every replica gets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Sessions with their GET stream.
    pub sessions: usize,
    /// Push streams.
    pub push_streams: usize,
    /// Pollers.
    pub pollers: usize,
}

impl Plan {
    /// Long-lived subscribers per replica.
    pub(crate) fn per_replica(&self) -> usize {
        self.sessions + self.push_streams + self.pollers
    }
}

/// One long-lived subscriber.
#[derive(Debug)]
pub(crate) struct Subscriber {
    /// How it receives events.
    pub kind: Kind,
    /// The replica it is on (index of `--replica`).
    pub replica: usize,
    /// Events it received (the first time each).
    pub received: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Subscriber {
    /// Waits for its task to end (after the stop signal).
    pub(crate) async fn join(self) {
        let _ = self.task.await;
    }
}

/// One subscriber's place in the sequence.
struct Follower {
    next: u64,
    received: Arc<AtomicU64>,
    tally: Arc<Tally>,
}

impl Follower {
    /// Takes sequence number `seq`; true when it is new.
    fn see(&mut self, seq: u64) -> bool {
        if seq < self.next {
            self.tally.repeats.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        if seq > self.next {
            self.tally
                .skipped
                .fetch_add(seq - self.next, Ordering::Relaxed);
        }
        self.next = seq + 1;
        self.received.fetch_add(1, Ordering::Relaxed);
        self.tally.delivered.fetch_add(1, Ordering::Relaxed);
        true
    }
}

/// The sequence number and send time (ns since the start) of a soak event in an SSE `data`
/// field: an `events/emit` or a `notifications/events/event`.
pub(crate) fn soak_event(data: &str) -> Option<(u64, u64)> {
    if data.is_empty() {
        return None;
    }
    let message: Value = serde_json::from_str(data).ok()?;
    let payload = mcp::event_payload(&message)?;
    Some((payload.get("seq")?.as_u64()?, payload.get("t")?.as_u64()?))
}

/// Sets up every long-lived subscriber of `plan` on every replica, subscribed to `pattern`:
/// when this returns, each stream is open and each poller holds the log's head as its cursor.
pub(crate) async fn start(
    replicas: &[Endpoint],
    plan: Plan,
    pattern: &str,
    start: Instant,
    tally: &Arc<Tally>,
    stop: &watch::Receiver<bool>,
) -> Result<Vec<Subscriber>, String> {
    let mut out = Vec::new();
    for (replica, endpoint) in replicas.iter().enumerate() {
        let kinds = std::iter::repeat_n(Kind::GetStream, plan.sessions)
            .chain(std::iter::repeat_n(Kind::PushStream, plan.push_streams))
            .chain(std::iter::repeat_n(Kind::Poller, plan.pollers));
        for kind in kinds {
            let received = Arc::new(AtomicU64::new(0));
            let follower = Follower {
                next: 0,
                received: received.clone(),
                tally: tally.clone(),
            };
            let task = spawn(kind, endpoint, pattern, follower, start, stop.clone())
                .await
                .map_err(|e| format!("{} on replica {replica}: {e}", kind.name()))?;
            out.push(Subscriber {
                kind,
                replica,
                received,
                task,
            });
        }
    }
    Ok(out)
}

/// Opens one subscriber of `kind` and starts the task that follows it.
async fn spawn(
    kind: Kind,
    endpoint: &Endpoint,
    pattern: &str,
    follower: Follower,
    start: Instant,
    stop: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, String> {
    Ok(match kind {
        Kind::GetStream => {
            // The POST connection goes once the stream is open: the open stream alone must
            // keep the session alive (its idle timeout is short in the soak's configuration).
            let mut conn = Conn::connect(endpoint).await?;
            let (stream, body) =
                fanout::open_subscribed_stream(&mut conn, endpoint, pattern).await?;
            tokio::spawn(follow_stream(stream, body, follower, start, stop))
        }
        Kind::PushStream => {
            let (stream, body) = events::open_push_stream(endpoint, pattern).await?;
            tokio::spawn(follow_stream(stream, body, follower, start, stop))
        }
        Kind::Poller => {
            let mut conn = Conn::connect(endpoint).await?;
            let head = events::poll(&mut conn, endpoint, 1, pattern, &Value::Null).await?;
            let (endpoint, pattern) = (endpoint.clone(), pattern.to_string());
            tokio::spawn(follow_polls(
                endpoint,
                pattern,
                conn,
                head.cursor,
                follower,
                stop,
            ))
        }
    })
}

/// Reads one stream until told to stop, recording each soak event's latency.
async fn follow_stream(
    conn: Conn,
    mut body: Incoming,
    mut follower: Follower,
    start: Instant,
    mut stop: watch::Receiver<bool>,
) {
    // The connection stays open as long as its sender lives.
    let _conn = conn;
    let mut decoder = SseDecoder::new();
    loop {
        let frame = tokio::select! {
            biased;
            _ = stop.changed() => return,
            frame = body.frame() => frame,
        };
        let now = start.elapsed().as_nanos() as u64;
        let Some(Ok(frame)) = frame else {
            if !*stop.borrow() {
                follower.tally.ended.fetch_add(1, Ordering::Relaxed);
                let why = frame.and_then(Result::err).map(|e| format!(": {e}"));
                let message = format!("a long-lived stream ended{}", why.unwrap_or_default());
                follower.tally.errors.fail(message);
            }
            return;
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        for event in decoder.push(&data) {
            if let Some((seq, sent)) = soak_event(&event.data)
                && follower.see(seq)
            {
                stats::record(&mut lock(&follower.tally.window), now.saturating_sub(sent));
            }
        }
    }
}

/// Polls from `cursor` until told to stop: again at once while the server says more waits,
/// else after [`POLL_PAUSE`]. A failed poll is an error; the next one opens a new connection.
async fn follow_polls(
    endpoint: Endpoint,
    pattern: String,
    conn: Conn,
    mut cursor: Value,
    mut follower: Follower,
    mut stop: watch::Receiver<bool>,
) {
    let mut conn = Some(conn);
    for id in 2u64.. {
        if *stop.borrow() {
            return;
        }
        let mut more = false;
        let c = match conn.take() {
            Some(c) => Ok(c),
            None => Conn::connect(&endpoint).await,
        };
        match c {
            Ok(mut c) => match events::poll(&mut c, &endpoint, id, &pattern, &cursor).await {
                Ok(answer) => {
                    for seq in answer.seqs {
                        follower.see(seq as u64);
                    }
                    cursor = answer.cursor;
                    more = answer.has_more;
                    conn = Some(c);
                }
                Err(e) => follower.tally.errors.fail(format!("events/poll: {e}")),
            },
            Err(e) => follower.tally.errors.fail(e),
        }
        if !more {
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(POLL_PAUSE) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soak_events_carry_a_sequence_number_and_a_send_time() {
        let emit = r#"{"jsonrpc":"2.0","method":"events/emit","params":{"topic":"soak/t1","payload":{"seq":7,"t":123}}}"#;
        assert_eq!(soak_event(emit), Some((7, 123)));
        let pushed = r#"{"jsonrpc":"2.0","method":"notifications/events/event","params":{"eventId":"e","name":"soak/+","cursor":"4","data":{"topic":"soak/t0","payload":{"seq":4,"t":9}}}}"#;
        assert_eq!(soak_event(pushed), Some((4, 9)));
        assert_eq!(soak_event(""), None);
        assert_eq!(
            soak_event(
                r#"{"jsonrpc":"2.0","method":"events/emit","params":{"payload":{"seq":1}}}"#
            ),
            None
        );
    }

    #[test]
    fn a_follower_counts_skips_and_repeats() {
        let tally = Arc::new(Tally::new());
        let received = Arc::new(AtomicU64::new(0));
        let mut f = Follower {
            next: 0,
            received: received.clone(),
            tally: tally.clone(),
        };
        assert!(f.see(0));
        assert!(f.see(1));
        assert!(f.see(4));
        assert!(!f.see(4));
        assert!(!f.see(2));
        assert!(f.see(5));
        assert_eq!(received.load(Ordering::Relaxed), 4);
        assert_eq!(tally.delivered.load(Ordering::Relaxed), 4);
        assert_eq!(tally.skipped.load(Ordering::Relaxed), 2);
        assert_eq!(tally.repeats.load(Ordering::Relaxed), 2);
        let errors = Errors::default();
        errors.fail("first".into());
        errors.fail("second".into());
        assert_eq!((errors.count(), errors.first()), (2, Some("first".into())));
    }
}
