//! The shared event store: one Redis Stream per (session, stream).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use mcpbus::store::{EventStore, StoreError, StoredEvent, StreamPosition};
use redis::Value;
use tokio::sync::Notify;

use crate::{Inner, lock, parse_stream_id, random_hex, scripts, store_error};

/// Wakes this replica's readers of one stream.
pub(crate) struct Waiter {
    notify: Notify,
    /// The newest id appended by this replica, as `(ms, seq)`.
    last: Mutex<Option<(u64, u64)>>,
    /// When it was last appended to or waited on (unused waiters are swept).
    touched: Mutex<Instant>,
}

impl Default for Waiter {
    fn default() -> Self {
        Waiter {
            notify: Notify::new(),
            last: Mutex::new(None),
            touched: Mutex::new(Instant::now()),
        }
    }
}

/// Waiters nobody used for this long are dropped.
const WAITER_IDLE: Duration = Duration::from_secs(30);

/// One entry of a Redis Stream: its id and its field-value pairs.
pub(crate) type Entry = (String, Vec<(String, Bytes)>);

/// Reads the entries of an `XRANGE`-style reply.
pub(crate) fn parse_entries(value: Value) -> Vec<Entry> {
    let Value::Array(items) = value else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(mut parts) = item else {
            continue;
        };
        if parts.len() != 2 {
            continue;
        }
        let fields = parts.pop();
        let id = parts.pop();
        let (Some(Value::BulkString(id)), Some(Value::Array(fields))) = (id, fields) else {
            continue;
        };
        let mut pairs = Vec::with_capacity(fields.len() / 2);
        let mut it = fields.into_iter();
        while let (Some(Value::BulkString(k)), Some(Value::BulkString(v))) = (it.next(), it.next())
        {
            pairs.push((String::from_utf8_lossy(&k).into_owned(), Bytes::from(v)));
        }
        out.push((String::from_utf8_lossy(&id).into_owned(), pairs));
    }
    out
}

/// The value of `field` in an entry.
pub(crate) fn field<'a>(entry: &'a Entry, name: &str) -> Option<&'a Bytes> {
    entry.1.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// An event id: `EPOCH.STREAM.MS-SEQ`.
struct EventId<'a> {
    epoch: &'a str,
    stream: &'a str,
    entry: &'a str,
}

fn parse_id(id: &str) -> Result<EventId<'_>, StoreError> {
    let malformed = || StoreError::Malformed(id.to_string());
    let mut parts = id.splitn(3, '.');
    let (Some(epoch), Some(stream), Some(entry)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    if epoch.len() != 8 || stream.is_empty() || parse_stream_id(entry).is_none() {
        return Err(malformed());
    }
    Ok(EventId {
        epoch,
        stream,
        entry,
    })
}

fn format_id(epoch: &str, stream: &str, entry: &str) -> String {
    format!("{epoch}.{stream}.{entry}")
}

pub(crate) struct RedisEventStore(pub(crate) Arc<Inner>);

impl Inner {
    /// Wakes this replica's readers of `stream` of `session` after an append of `entry`.
    /// The waiter is kept even when nobody waits yet: a reader that read just before this
    /// append and waits just after sees it.
    pub(crate) fn wake(&self, session: &str, stream: &str, entry: &str) {
        let now = Instant::now();
        let w = {
            let mut waiters = lock(&self.waiters);
            if waiters.len() >= 1024 && waiters.len().is_power_of_two() {
                waiters.retain(|_, w| {
                    Arc::strong_count(w) > 1 || now.duration_since(*lock(&w.touched)) < WAITER_IDLE
                });
            }
            waiters
                .entry((session.to_string(), stream.to_string()))
                .or_default()
                .clone()
        };
        *lock(&w.touched) = now;
        let parsed = parse_stream_id(entry);
        {
            let mut last = lock(&w.last);
            if parsed > *last {
                *last = parsed;
            }
        }
        w.notify.notify_waiters();
    }

    /// Wakes this replica's readers of a stream another replica appended to.
    pub(crate) fn wake_all(&self, session: &str, stream: &str) {
        let waiter = lock(&self.waiters)
            .get(&(session.to_string(), stream.to_string()))
            .cloned();
        if let Some(w) = waiter {
            w.notify.notify_waiters();
        }
    }

    /// The arguments of an append of `message` (a priming event when `None`).
    pub(crate) fn append_invocation(
        &self,
        script: &str,
        session: &str,
        stream: &str,
        message: Option<&[u8]>,
        guard: Option<&str>,
    ) -> redis::Cmd {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(script);
        let stream_key = self.keys.stream(session, stream);
        let meta = self.keys.meta(session);
        match guard {
            Some(_) => cmd
                .arg(3)
                .arg(stream_key)
                .arg(meta)
                .arg(self.keys.session(session)),
            None => cmd.arg(2).arg(stream_key).arg(meta),
        };
        let (field, body): (&str, &[u8]) = match message {
            Some(m) => ("m", m),
            None => ("p", b""),
        };
        cmd.arg(random_hex())
            .arg(stream)
            .arg(field)
            .arg(body)
            .arg(self.config.max_events_per_stream)
            .arg(self.config.stream_ttl.as_millis() as u64);
        if let Some(log_id) = guard {
            cmd.arg(log_id);
        }
        cmd
    }

    async fn read(
        &self,
        session: &str,
        stream: &str,
        after: Option<&str>,
        max: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let parsed = after.map(parse_id).transpose()?;
        if let Some(p) = &parsed
            && p.stream != stream
        {
            return Err(StoreError::Unknown(after.unwrap_or_default().to_string()));
        }
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HMGET")
            .arg(self.keys.meta(session))
            .arg("epoch")
            .arg(format!("t:{stream}"));
        let start = match &parsed {
            Some(p) => format!("({}", p.entry),
            None => "-".to_string(),
        };
        pipe.cmd("XRANGE")
            .arg(self.keys.stream(session, stream))
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(max);
        let mut conn = self.conn();
        let (meta, entries): ((Option<String>, Option<String>), Value) =
            pipe.query_async(&mut conn).await.map_err(store_error)?;
        let (epoch, trimmed) = meta;
        let Some(epoch) = epoch else {
            return match after {
                Some(id) => Err(StoreError::Unknown(id.to_string())),
                None => Ok(Vec::new()),
            };
        };
        if let Some(p) = &parsed {
            if p.epoch != epoch {
                return Err(StoreError::Unknown(after.unwrap_or_default().to_string()));
            }
            if let Some(t) = trimmed
                && parse_stream_id(p.entry) < parse_stream_id(&t)
            {
                return Err(StoreError::Expired(after.unwrap_or_default().to_string()));
            }
        }
        Ok(parse_entries(entries)
            .into_iter()
            .map(|entry| {
                let message = field(&entry, "m").cloned();
                StoredEvent {
                    id: format_id(&epoch, stream, &entry.0),
                    message,
                }
            })
            .collect())
    }
}

impl EventStore for RedisEventStore {
    fn append<'a>(
        &'a self,
        session: &'a str,
        stream: &'a str,
        message: Option<Bytes>,
    ) -> BoxFuture<'a, Result<String, StoreError>> {
        async move {
            let cmd = self.0.append_invocation(
                &scripts::APPEND,
                session,
                stream,
                message.as_deref(),
                None,
            );
            let mut conn = self.0.conn();
            let (epoch, entry): (String, String) =
                cmd.query_async(&mut conn).await.map_err(store_error)?;
            self.0.wake(session, stream, &entry);
            Ok(format_id(&epoch, stream, &entry))
        }
        .boxed()
    }

    fn locate<'a>(
        &'a self,
        session: &'a str,
        event_id: &'a str,
    ) -> BoxFuture<'a, Result<StreamPosition, StoreError>> {
        async move {
            let id = parse_id(event_id)?;
            let mut conn = self.0.conn();
            let (epoch, known): (Option<String>, Option<String>) = redis::cmd("HMGET")
                .arg(self.0.keys.meta(session))
                .arg("epoch")
                .arg(format!("s:{}", id.stream))
                .query_async(&mut conn)
                .await
                .map_err(store_error)?;
            if epoch.as_deref() != Some(id.epoch) || known.is_none() {
                return Err(StoreError::Unknown(event_id.to_string()));
            }
            Ok(StreamPosition {
                stream: id.stream.to_string(),
                event_id: event_id.to_string(),
            })
        }
        .boxed()
    }

    fn read_after<'a>(
        &'a self,
        session: &'a str,
        stream: &'a str,
        after: Option<&'a str>,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<StoredEvent>, StoreError>> {
        self.0.read(session, stream, after, max).boxed()
    }

    fn last_id<'a>(
        &'a self,
        session: &'a str,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        async move {
            let mut pipe = redis::pipe();
            pipe.atomic()
                .cmd("HGET")
                .arg(self.0.keys.meta(session))
                .arg("epoch")
                .cmd("XREVRANGE")
                .arg(self.0.keys.stream(session, stream))
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1);
            let mut conn = self.0.conn();
            let (epoch, top): (Option<String>, Value) =
                pipe.query_async(&mut conn).await.map_err(store_error)?;
            Ok(match (epoch, parse_entries(top).pop()) {
                (Some(epoch), Some(entry)) => Some(format_id(&epoch, stream, &entry.0)),
                _ => None,
            })
        }
        .boxed()
    }

    fn wait_for<'a>(
        &'a self,
        session: &'a str,
        stream: &'a str,
        after: Option<&'a str>,
    ) -> BoxFuture<'a, ()> {
        async move {
            let key = (session.to_string(), stream.to_string());
            let waiter = lock(&self.0.waiters)
                .entry(key.clone())
                .or_default()
                .clone();
            {
                let notified = waiter.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let after = after
                    .and_then(|a| parse_id(a).ok())
                    .and_then(|p| parse_stream_id(p.entry));
                let newer = match (*lock(&waiter.last), after) {
                    (Some(last), Some(after)) => last > after,
                    (Some(_), None) => true,
                    (None, _) => false,
                };
                if !newer {
                    tokio::select! {
                        _ = &mut notified => {}
                        _ = tokio::time::sleep(self.0.config.poll_interval) => {}
                    }
                }
            }
            *lock(&waiter.touched) = Instant::now();
        }
        .boxed()
    }

    fn remove_session<'a>(&'a self, session: &'a str) -> BoxFuture<'a, ()> {
        async move {
            let mut conn = self.0.conn();
            let done: Result<i64, _> = redis::Script::new(scripts::REMOVE_SESSION)
                .key(self.0.keys.meta(session))
                .arg(self.0.keys.streams_prefix(session))
                .invoke_async(&mut conn)
                .await;
            if let Err(e) = done {
                tracing::warn!(session, error = %e, "could not remove the session's streams (they expire on their own)");
            }
            lock(&self.0.waiters).retain(|(s, _), _| s != session);
        }
        .boxed()
    }
}
