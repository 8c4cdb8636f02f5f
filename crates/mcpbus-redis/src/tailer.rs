//! The log reader of one replica: reads the shared log in order and feeds it to the replica's
//! hub, which matches each event in its trie and hands the frame to the sinks attached here:
//! one per session whose GET stream this replica holds, appending to that session's shared
//! standalone stream.
//!
//! Exactly once: a session's record keeps `last`, the newest log id appended to its stream by
//! any replica, and the append script refuses ids at or before it. Every replica reads the log
//! in the same order and applies subscription changes (control entries of the same log) at the
//! same point, so two replicas holding one session (a takeover) make the same decisions, and a
//! replica that starts holding a session first appends what it missed since `last`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use mcpbus::events::{EventSink, LogFeed, LoggedEvent, SubscriberKey};
use mcpbus::{BackendError, BackendErrorKind};
use mcpbus_proto::topic::TopicPattern;
use redis::{AsyncConnectionConfig, RedisResult, Value};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use crate::store::{Entry, field, parse_entries};
use crate::{Inner, backend_error, lock, parse_stream_id, scripts};

/// The standalone stream's name (as the HTTP transport names it).
const STANDALONE: &str = "get";
/// Log entries read at once.
const BATCH: usize = 512;
/// How long one `XREAD` blocks.
const BLOCK_MS: u64 = 5000;

/// How long after its block time an `XREAD` may go unanswered before its connection is taken
/// for dead and replaced (a connection that went silent without a reset never fails by itself).
const XREAD_GRACE: Duration = Duration::from_secs(5);

/// What the session store asks of the tailer.
pub(crate) enum Command {
    /// Start appending this session's events (first those missed); answered when caught up.
    Attach(Arc<str>, oneshot::Sender<Result<(), BackendError>>),
    /// Stop (after as many detaches as attaches).
    Detach(Arc<str>),
}

/// One pattern of a session's subscription list, with the log ids it started and ended at.
#[derive(Debug, Deserialize)]
struct Sub {
    p: String,
    s: String,
    #[serde(default)]
    u: Option<String>,
}

impl Sub {
    /// Whether the pattern was subscribed when the log entry `at` was written.
    fn active_at(&self, at: Option<(u64, u64)>) -> bool {
        parse_stream_id(&self.s) < at && self.u.as_deref().is_none_or(|u| at < parse_stream_id(u))
    }
}

/// Reads a session's subscription list (an empty Lua table is encoded as `{}`).
fn parse_subs(raw: Option<&str>) -> Vec<Sub> {
    raw.and_then(|r| serde_json::from_str::<Vec<Sub>>(r).ok())
        .unwrap_or_default()
}

/// A session whose stream this replica holds: its place in the hub, and how many holds nest.
struct Attached {
    key: SubscriberKey,
    count: usize,
}

/// One pending append: a session, the event's log id, the frame.
type Append = (Arc<str>, String, Bytes);

/// Appends collected while the hub delivers one batch of log entries, stored together by
/// [`flush`] before the reader moves past them.
type Pending = Arc<Mutex<Vec<Append>>>;

/// The sink of a session whose stream this replica holds: the hub's frame goes into the
/// batch of guarded appends to the session's shared standalone stream.
struct StreamSink {
    session: Arc<str>,
    pending: Pending,
}

impl EventSink for StreamSink {
    fn deliver(&self, frame: &Bytes, cursor: &str) -> bool {
        lock(&self.pending).push((self.session.clone(), cursor.to_string(), frame.clone()));
        true
    }
}

struct Tailer {
    inner: Weak<Inner>,
    /// The newest log id processed.
    cursor: String,
    sessions: HashMap<Arc<str>, Attached>,
    pending: Pending,
}

/// The id of the newest log entry (`0-0` when the log is empty).
pub(crate) async fn log_top(inner: &Inner) -> RedisResult<String> {
    let mut conn = inner.conn();
    let top: Value = redis::cmd("XREVRANGE")
        .arg(inner.keys.log())
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut conn)
        .await?;
    Ok(parse_entries(top)
        .pop()
        .map_or_else(|| "0-0".to_string(), |e| e.0))
}

/// Runs until the backend is dropped; reconnects with backoff when Redis goes away.
pub(crate) async fn run(
    inner: Weak<Inner>,
    mut rx: mpsc::UnboundedReceiver<Command>,
    start: String,
) {
    let mut t = Tailer {
        inner,
        cursor: start,
        sessions: HashMap::new(),
        pending: Pending::default(),
    };
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(inner) = t.inner.upgrade() else {
            return;
        };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(None);
        let connected = inner
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await;
        drop(inner);
        let keep_going = match connected {
            Ok(conn) => t.read_log(&conn, &mut rx, &mut backoff).await,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "cannot reach Redis to read the event log");
                t.pause(&mut rx, &mut backoff).await
            }
        };
        if !keep_going {
            return;
        }
    }
}

/// What one `XREAD` ended with.
enum Read {
    Entries(Vec<Entry>),
    /// The connection failed: reconnect.
    Lost(redis::RedisError),
    /// The backend is gone: stop.
    Stop,
}

/// The entries of an `XREAD` reply on one stream (none on timeout).
fn xread_entries(reply: Value) -> Vec<Entry> {
    let Value::Array(streams) = reply else {
        return Vec::new();
    };
    let Some(Value::Array(mut stream)) = streams.into_iter().next() else {
        return Vec::new();
    };
    match stream.pop() {
        Some(entries) if stream.len() == 1 => parse_entries(entries),
        _ => Vec::new(),
    }
}

impl Tailer {
    /// Reads the log on `conn` and processes it until the connection fails (`true`: reconnect)
    /// or the backend is gone (`false`).
    async fn read_log(
        &mut self,
        conn: &redis::aio::MultiplexedConnection,
        rx: &mut mpsc::UnboundedReceiver<Command>,
        backoff: &mut Duration,
    ) -> bool {
        loop {
            let entries = match self.next_batch(conn, rx).await {
                Read::Entries(entries) => entries,
                Read::Stop => return false,
                Read::Lost(e) => {
                    self.feed().inspect(|f| f.count_log_error("read"));
                    tracing::warn!(error = %e, retry_in = ?backoff, "lost the Redis event log; reconnecting");
                    return self.pause(rx, backoff).await;
                }
            };
            if let Err(e) = self.process(entries).await {
                self.feed().inspect(|f| f.count_log_error("deliver"));
                tracing::warn!(error = %e, retry_in = ?backoff, "could not deliver events from the log; retrying");
                if !self.pause(rx, backoff).await {
                    return false;
                }
            } else {
                *backoff = Duration::from_millis(100);
            }
        }
    }

    /// Waits for the next entries after the cursor, answering commands meanwhile.
    async fn next_batch(
        &mut self,
        conn: &redis::aio::MultiplexedConnection,
        rx: &mut mpsc::UnboundedReceiver<Command>,
    ) -> Read {
        let Some(inner) = self.inner.upgrade() else {
            return Read::Stop;
        };
        let mut c = conn.clone();
        let mut xread = redis::cmd("XREAD");
        xread
            .arg("COUNT")
            .arg(BATCH)
            .arg("BLOCK")
            .arg(BLOCK_MS)
            .arg("STREAMS")
            .arg(inner.keys.log())
            .arg(&self.cursor);
        drop(inner);
        let read = async move { xread.query_async::<Value>(&mut c).await };
        tokio::pin!(read);
        let silent = tokio::time::sleep(Duration::from_millis(BLOCK_MS) + XREAD_GRACE);
        tokio::pin!(silent);
        loop {
            tokio::select! {
                r = &mut read => return match r {
                    Ok(reply) => Read::Entries(xread_entries(reply)),
                    Err(e) => Read::Lost(e),
                },
                () = &mut silent => {
                    let e = std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "XREAD got no answer: the connection went silent",
                    );
                    return Read::Lost(e.into());
                }
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.command(cmd).await,
                    None => return Read::Stop,
                },
            }
        }
    }

    /// The hub this replica feeds.
    fn feed(&self) -> Option<LogFeed> {
        self.inner.upgrade()?.feed.get().cloned()
    }

    /// Waits `backoff` (doubling it, up to 5 s) while still answering commands; `false` when
    /// the backend is gone.
    async fn pause(
        &mut self,
        rx: &mut mpsc::UnboundedReceiver<Command>,
        backoff: &mut Duration,
    ) -> bool {
        let sleep = tokio::time::sleep(*backoff);
        tokio::pin!(sleep);
        *backoff = (*backoff * 2).min(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = &mut sleep => return self.inner.strong_count() > 0,
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.command(cmd).await,
                    None => return false,
                },
            }
        }
    }

    async fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Attach(session, reply) => {
                if let Some(a) = self.sessions.get_mut(&session) {
                    a.count += 1;
                    let _ = reply.send(Ok(()));
                    return;
                }
                let _ = reply.send(self.attach(session).await);
            }
            Command::Detach(session) => {
                let Some(a) = self.sessions.get_mut(&session) else {
                    return;
                };
                a.count -= 1;
                if a.count == 0
                    && let Some(a) = self.sessions.remove(&session)
                    && let Some(feed) = self.feed()
                {
                    feed.detach(a.key);
                }
            }
        }
    }

    /// Starts holding a session's stream: appends what it missed, then attaches it to the hub
    /// with the patterns it holds at the cursor, for live entries.
    async fn attach(&mut self, session: Arc<str>) -> Result<(), BackendError> {
        let patterns = self.catch_up(&session).await.map_err(backend_error)?;
        let sink = Arc::new(StreamSink {
            session: session.clone(),
            pending: self.pending.clone(),
        });
        let key = self
            .feed()
            .and_then(|feed| feed.attach(session.clone(), sink, patterns))
            .ok_or_else(|| {
                BackendError::msg(
                    BackendErrorKind::Invalid,
                    "the Redis event log is not the event log of this server's hub",
                )
            })?;
        self.sessions.insert(session, Attached { key, count: 1 });
        Ok(())
    }

    /// Appends the session's events from its `last` up to this tailer's cursor; returns the
    /// patterns subscribed at the cursor.
    async fn catch_up(&mut self, session: &Arc<str>) -> RedisResult<HashSet<TopicPattern>> {
        let Some(inner) = self.inner.upgrade() else {
            return Ok(HashSet::new());
        };
        let mut conn = inner.conn();
        let (last, subs): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(inner.keys.session(session))
            .arg("last")
            .arg("subs")
            .query_async(&mut conn)
            .await?;
        let Some(mut from) = last else {
            // Not in the shared store (ended or expired): nothing to deliver.
            return Ok(HashSet::new());
        };
        let subs: Vec<(Sub, TopicPattern)> = parse_subs(subs.as_deref())
            .into_iter()
            .filter_map(|s| TopicPattern::new(&s.p).ok().map(|p| (s, p)))
            .collect();
        let until = self.cursor.clone();
        let end = parse_stream_id(&until);
        let mut pending = Vec::new();
        while parse_stream_id(&from) < end {
            let page: Value = redis::cmd("XRANGE")
                .arg(inner.keys.log())
                .arg(format!("({from}"))
                .arg(&until)
                .arg("COUNT")
                .arg(BATCH)
                .query_async(&mut conn)
                .await?;
            let entries = parse_entries(page);
            let full = entries.len() == BATCH;
            for entry in entries {
                let at = parse_stream_id(&entry.0);
                if field(&entry, "k").map(Bytes::as_ref) == Some(b"e")
                    && let (Some(topic), Some(params)) = (field(&entry, "t"), field(&entry, "p"))
                {
                    let topic = String::from_utf8_lossy(topic);
                    if subs
                        .iter()
                        .any(|(s, p)| s.active_at(at) && p.matches(&topic))
                    {
                        let frame = logged_event(&entry.0, &topic, params).emit_frame();
                        pending.push((session.clone(), entry.0.clone(), frame));
                    }
                }
                from = entry.0;
            }
            flush_appends(&inner, &mut pending).await?;
            if !full {
                break;
            }
        }
        let _: i64 = redis::Script::new(&scripts::ADVANCE)
            .key(inner.keys.session(session))
            .arg(&until)
            .invoke_async(&mut conn)
            .await?;
        Ok(subs
            .into_iter()
            .filter(|(s, _)| {
                parse_stream_id(&s.s) <= end
                    && s.u.as_deref().is_none_or(|u| parse_stream_id(u) > end)
            })
            .map(|(_, p)| p)
            .collect())
    }

    /// Applies a batch of log entries. On failure the cursor stays after the last entry whose
    /// effects are stored, so that a retry neither loses nor repeats anything.
    async fn process(&mut self, entries: Vec<Entry>) -> RedisResult<()> {
        let (Some(inner), Some(feed)) = (self.inner.upgrade(), self.feed()) else {
            return Ok(());
        };
        let mut committed = self.cursor.clone();
        let mut processed = self.cursor.clone();
        let result = async {
            for entry in &entries {
                let kind = field(entry, "k").map(Bytes::as_ref);
                let session = field(entry, "s").map(|s| String::from_utf8_lossy(s).into_owned());
                match (kind, session) {
                    (Some(b"e"), _) => {
                        if let (Some(topic), Some(params)) = (field(entry, "t"), field(entry, "p"))
                        {
                            let topic = String::from_utf8_lossy(topic);
                            feed.event(&logged_event(&entry.0, &topic, params));
                        }
                    }
                    (Some(b"s"), Some(session)) => {
                        // Events before a subscription change are decided with the old set:
                        // store them before applying it.
                        flush(&inner, &self.pending).await?;
                        committed = processed.clone();
                        apply_subscription(&feed, &session, entry);
                    }
                    (Some(b"x"), Some(session)) => {
                        tell_listener(&inner, |l| l.session_ended(&session))
                    }
                    (Some(b"r"), Some(session)) => {
                        if let Some(frame) = field(entry, "m") {
                            tell_listener(&inner, |l| l.response(&session, frame.clone()));
                        }
                    }
                    _ => {}
                }
                processed = entry.0.clone();
            }
            flush(&inner, &self.pending).await
        }
        .await;
        match result {
            Ok(()) => self.cursor = processed,
            Err(_) => {
                lock(&self.pending).clear();
                self.cursor = committed;
            }
        }
        result
    }
}

/// A log event entry as the hub takes it.
fn logged_event(id: &str, topic: &str, params: &Bytes) -> LoggedEvent {
    LoggedEvent {
        cursor: id.into(),
        topic: topic.into(),
        params: params.clone(),
        published_at: crate::history::published_at(id),
    }
}

/// Hands a subscription control entry to the hub (which ignores sessions not held here).
fn apply_subscription(feed: &LogFeed, session: &str, entry: &Entry) {
    let added = field(entry, "o").map(Bytes::as_ref) == Some(b"a");
    let patterns: Vec<TopicPattern> = field(entry, "p")
        .and_then(|p| serde_json::from_slice::<Vec<String>>(p).ok())
        .unwrap_or_default()
        .iter()
        .filter_map(|raw| TopicPattern::new(raw).ok())
        .collect();
    feed.subscription(session, &patterns, added);
}

/// Tells the session store's listener (the HTTP transport) what another replica did.
fn tell_listener(inner: &Inner, tell: impl FnOnce(&dyn mcpbus::cluster::ClusterListener)) {
    let listener = lock(&inner.listener).clone();
    if let Some(l) = listener {
        tell(&*l);
    }
}

/// Appends pending events to their sessions' standalone streams in one round trip (each at
/// most once), then wakes this replica's readers.
async fn flush(inner: &Inner, pending: &Pending) -> RedisResult<()> {
    let mut pending = std::mem::take(&mut *lock(pending));
    flush_appends(inner, &mut pending).await
}

/// Stores `pending` (see [`flush`]).
async fn flush_appends(inner: &Inner, pending: &mut Vec<Append>) -> RedisResult<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for (session, log_id, frame) in pending.iter() {
        pipe.add_command(inner.append_invocation(
            &scripts::GUARDED_APPEND,
            session,
            STANDALONE,
            Some(frame),
            Some(log_id),
        ));
    }
    let mut conn = inner.conn();
    let results: Vec<Value> = pipe.query_async(&mut conn).await?;
    for ((session, _, _), result) in pending.drain(..).zip(results) {
        match result {
            Value::Array(parts) => {
                if let Some(Value::BulkString(id)) = parts.get(1) {
                    inner.wake(&session, STANDALONE, &String::from_utf8_lossy(id));
                }
            }
            // Already appended by another replica: its reader here may still need waking.
            Value::Int(1) => inner.wake_all(&session, STANDALONE),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_are_active_between_their_start_and_end() {
        let sub = Sub {
            p: "a/+".into(),
            s: "10-0".into(),
            u: Some("20-0".into()),
        };
        assert!(!sub.active_at(parse_stream_id("10-0")));
        assert!(sub.active_at(parse_stream_id("10-1")));
        assert!(sub.active_at(parse_stream_id("19-9")));
        assert!(!sub.active_at(parse_stream_id("20-0")));
        assert!(parse_subs(Some("{}")).is_empty(), "an empty Lua table");
    }
}
