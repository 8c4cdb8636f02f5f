//! The log tailer of one replica: reads the shared log in order and appends each event to the
//! standalone stream of every matching session whose GET stream this replica holds.
//!
//! Exactly once: a session's record keeps `last`, the newest log id appended to its stream by
//! any replica, and the append script refuses ids at or before it. Every replica reads the log
//! in the same order and applies subscription changes (control entries of the same log) at the
//! same point, so two replicas holding one session (a takeover) make the same decisions, and a
//! replica that starts holding a session first appends what it missed since `last`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use mcpbus::cluster::ClusterError;
use mcpbus::events::TopicTrie;
use mcpbus_proto::topic::TopicPattern;
use redis::{AsyncConnectionConfig, RedisResult, Value};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use crate::store::{Entry, field, parse_entries};
use crate::{Inner, cluster_error, lock, parse_stream_id, scripts};

/// The standalone stream's name (as the HTTP transport names it).
const STANDALONE: &str = "get";
/// Log entries read at once.
const BATCH: usize = 512;
/// How long one `XREAD` blocks.
const BLOCK_MS: u64 = 5000;

/// What the session store asks of the tailer.
pub(crate) enum Command {
    /// Start appending this session's events (first those missed); answered when caught up.
    Attach(Arc<str>, oneshot::Sender<Result<(), ClusterError>>),
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

struct Attached {
    key: u64,
    count: usize,
    patterns: HashSet<TopicPattern>,
}

/// One pending append: a session, the event's log id, the frame.
type Append = (Arc<str>, String, Bytes);

struct Tailer {
    inner: Weak<Inner>,
    /// The newest log id processed.
    cursor: String,
    sessions: HashMap<Arc<str>, Attached>,
    by_key: HashMap<u64, Arc<str>>,
    trie: TopicTrie<u64>,
    next_key: u64,
}

/// The id of the newest log entry (`0-0` when the log is empty).
pub(crate) async fn log_top(inner: &Inner) -> RedisResult<String> {
    let mut conn = inner.conn.clone();
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

/// The `events/emit` frame of a log event: its params with the log position in `_meta`.
pub(crate) fn emit_frame(params: &[u8], cursor: &str) -> Bytes {
    let body = params.trim_ascii_end();
    let mut out = Vec::with_capacity(body.len() + 96);
    out.extend_from_slice(br#"{"jsonrpc":"2.0","method":"events/emit","params":"#);
    match body.strip_suffix(b"}") {
        Some(open) if open.len() > 1 => {
            out.extend_from_slice(open);
            out.extend_from_slice(br#","_meta":{"mcpbus/cursor":""#);
            out.extend_from_slice(cursor.as_bytes());
            out.extend_from_slice(br#""}}}"#);
        }
        _ => {
            out.extend_from_slice(body);
            out.push(b'}');
        }
    }
    Bytes::from(out)
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
        by_key: HashMap::new(),
        trie: TopicTrie::new(),
        next_key: 1,
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
        let conn = match connected {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "cannot reach Redis to read the event log");
                if !t.pause(&mut rx, &mut backoff).await {
                    return;
                }
                continue;
            }
        };
        loop {
            let Some(inner) = t.inner.upgrade() else {
                return;
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
                .arg(&t.cursor);
            drop(inner);
            let read = async move { xread.query_async::<Value>(&mut c).await };
            tokio::pin!(read);
            let result = loop {
                tokio::select! {
                    r = &mut read => break r,
                    cmd = rx.recv() => match cmd {
                        Some(cmd) => t.command(cmd).await,
                        None => return,
                    },
                }
            };
            match result {
                Ok(reply) => {
                    if let Err(e) = t.process(xread_entries(reply)).await {
                        tracing::warn!(error = %e, retry_in = ?backoff, "could not deliver events from the log; retrying");
                        if !t.pause(&mut rx, &mut backoff).await {
                            return;
                        }
                    } else {
                        backoff = Duration::from_millis(100);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "lost the Redis event log; reconnecting");
                    if !t.pause(&mut rx, &mut backoff).await {
                        return;
                    }
                    break;
                }
            }
        }
    }
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
                let result = self.catch_up(&session).await;
                let _ = reply.send(match result {
                    Ok(patterns) => {
                        let key = self.next_key;
                        self.next_key += 1;
                        for p in &patterns {
                            self.trie.insert(p, key);
                        }
                        self.by_key.insert(key, session.clone());
                        self.sessions.insert(
                            session,
                            Attached {
                                key,
                                count: 1,
                                patterns,
                            },
                        );
                        Ok(())
                    }
                    Err(e) => Err(cluster_error(e)),
                });
            }
            Command::Detach(session) => {
                let Some(a) = self.sessions.get_mut(&session) else {
                    return;
                };
                a.count -= 1;
                if a.count == 0
                    && let Some(a) = self.sessions.remove(&session)
                {
                    for p in &a.patterns {
                        self.trie.remove(p, a.key);
                    }
                    self.by_key.remove(&a.key);
                }
            }
        }
    }

    /// Appends the session's events from its `last` up to this tailer's cursor; returns the
    /// patterns subscribed at the cursor.
    async fn catch_up(&mut self, session: &Arc<str>) -> RedisResult<HashSet<TopicPattern>> {
        let Some(inner) = self.inner.upgrade() else {
            return Ok(HashSet::new());
        };
        let mut conn = inner.conn.clone();
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
                        pending.push((
                            session.clone(),
                            entry.0.clone(),
                            emit_frame(params, &entry.0),
                        ));
                    }
                }
                from = entry.0;
            }
            flush(&inner, &mut pending).await?;
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
        let Some(inner) = self.inner.upgrade() else {
            return Ok(());
        };
        let mut pending: Vec<Append> = Vec::new();
        let mut keys = Vec::new();
        let mut committed = self.cursor.clone();
        let mut processed = self.cursor.clone();
        for entry in entries {
            let kind = field(&entry, "k").map(Bytes::as_ref);
            let session = field(&entry, "s").map(|s| String::from_utf8_lossy(s).into_owned());
            match (kind, session) {
                (Some(b"e"), _) if !self.trie.is_empty() => {
                    if let (Some(topic), Some(params)) = (field(&entry, "t"), field(&entry, "p")) {
                        keys.clear();
                        self.trie
                            .matches(&String::from_utf8_lossy(topic), &mut keys);
                        if !keys.is_empty() {
                            let frame = emit_frame(params, &entry.0);
                            for key in &keys {
                                if let Some(s) = self.by_key.get(key) {
                                    pending.push((s.clone(), entry.0.clone(), frame.clone()));
                                }
                            }
                        }
                    }
                }
                (Some(b"s"), Some(session)) => {
                    // Events before a subscription change are decided with the old set: store
                    // them before applying it.
                    if let Err(e) = flush(&inner, &mut pending).await {
                        self.cursor = committed;
                        return Err(e);
                    }
                    committed = processed.clone();
                    self.apply_subscription(&session, &entry);
                }
                (Some(b"x"), Some(session)) => {
                    let listener = lock(&inner.listener).clone();
                    if let Some(l) = listener {
                        l.session_ended(&session);
                    }
                }
                (Some(b"r"), Some(session)) => {
                    let listener = lock(&inner.listener).clone();
                    if let (Some(l), Some(frame)) = (listener, field(&entry, "m")) {
                        l.response(&session, frame.clone());
                    }
                }
                _ => {}
            }
            processed = entry.0;
        }
        if let Err(e) = flush(&inner, &mut pending).await {
            self.cursor = committed;
            return Err(e);
        }
        self.cursor = processed;
        Ok(())
    }

    fn apply_subscription(&mut self, session: &str, entry: &Entry) {
        let Some(a) = self.sessions.get_mut(session) else {
            return;
        };
        let add = field(entry, "o").map(Bytes::as_ref) == Some(b"a");
        let patterns: Vec<String> = field(entry, "p")
            .and_then(|p| serde_json::from_slice(p).ok())
            .unwrap_or_default();
        for raw in patterns {
            let Ok(p) = TopicPattern::new(&raw) else {
                continue;
            };
            if add {
                if a.patterns.insert(p.clone()) {
                    self.trie.insert(&p, a.key);
                }
            } else if a.patterns.remove(&p) {
                self.trie.remove(&p, a.key);
            }
        }
    }
}

/// Appends pending events to their sessions' standalone streams in one round trip (each at
/// most once), then wakes this replica's readers.
async fn flush(inner: &Inner, pending: &mut Vec<Append>) -> RedisResult<()> {
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
    let mut conn = inner.conn.clone();
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
    fn emit_frames_carry_the_log_cursor_in_meta() {
        let frame = emit_frame(
            br#"{"topic":"a/b","eventId":"1","payload":{"x":1}}"#,
            "17-3",
        );
        let v: serde_json::Value = serde_json::from_slice(&frame).unwrap_or_default();
        assert_eq!(v["method"], "events/emit");
        assert_eq!(v["params"]["topic"], "a/b");
        assert_eq!(v["params"]["payload"]["x"], 1);
        assert_eq!(v["params"]["_meta"]["mcpbus/cursor"], "17-3");
    }

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
