//! The in-memory event store: bounded per stream, idle sessions expire.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::Notify;

use super::{EventStore, StoreError, StoredEvent, StreamPosition};

/// Settings of a [`MemoryEventStore`].
#[derive(Debug, Clone)]
pub struct MemoryEventStoreConfig {
    /// Events kept per stream; older ones are dropped (a resume before them gets "expired").
    pub max_events_per_stream: usize,
    /// A session whose streams saw no append or read for this long is forgotten.
    pub ttl: Duration,
}

impl Default for MemoryEventStoreConfig {
    fn default() -> Self {
        MemoryEventStoreConfig {
            max_events_per_stream: 4096,
            ttl: Duration::from_secs(3600),
        }
    }
}

struct StreamLog {
    name: String,
    /// Sequence numbers are per stream and contiguous: the position of an id is computed.
    events: VecDeque<(u64, Option<Bytes>)>,
    next_seq: u64,
    /// The highest sequence number dropped from the front, if any.
    trimmed_through: Option<u64>,
    /// What waiters need without taking the store's lock.
    shared: Arc<StreamShared>,
}

#[derive(Default)]
struct StreamShared {
    notify: Notify,
    /// The newest sequence number appended (0: none).
    last_seq: AtomicU64,
}

struct SessionLog {
    /// Random per session: ids of another session (or of a forgotten one) never match.
    epoch: u32,
    streams: Vec<StreamLog>,
    by_name: HashMap<String, usize>,
    last_used: Instant,
}

impl Inner {
    /// The log of `session`, created if missing (allocating its key only then).
    fn session_log(&mut self, session: &str, now: Instant) -> &mut SessionLog {
        if !self.sessions.contains_key(session) {
            self.sessions.insert(
                session.to_string(),
                SessionLog {
                    epoch: random_epoch(),
                    streams: Vec::new(),
                    by_name: HashMap::new(),
                    last_used: now,
                },
            );
        }
        match self.sessions.get_mut(session) {
            Some(log) => log,
            None => unreachable!("inserted above"),
        }
    }
}

impl StreamLog {
    /// Whether `seq` numbers an event this stream issued (they start at 1: an id ending in
    /// `-0` was never issued and is unknown, not a cursor before the first event).
    fn issued(&self, seq: u64) -> bool {
        (1..self.next_seq).contains(&seq)
    }
}

impl SessionLog {
    fn stream_index(&mut self, name: &str) -> usize {
        if let Some(&i) = self.by_name.get(name) {
            return i;
        }
        self.streams.push(StreamLog {
            name: name.to_string(),
            events: VecDeque::new(),
            trimmed_through: None,
            next_seq: 1,
            shared: Arc::default(),
        });
        self.by_name
            .insert(name.to_string(), self.streams.len() - 1);
        self.streams.len() - 1
    }
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, SessionLog>,
    last_sweep: Option<Instant>,
}

/// An [`EventStore`] in process memory: the default, for single-process deployments.
///
/// Event ids have the form `EPOCH-STREAM-SEQ` (hex epoch random per session, stream index,
/// sequence number counted per stream from 1).
#[derive(Clone)]
pub struct MemoryEventStore {
    inner: Arc<Mutex<Inner>>,
    config: MemoryEventStoreConfig,
}

impl std::fmt::Debug for MemoryEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryEventStore")
            .field("config", &self.config)
            .field("sessions", &self.lock().sessions.len())
            .finish()
    }
}

impl Default for MemoryEventStore {
    fn default() -> Self {
        Self::new(MemoryEventStoreConfig::default())
    }
}

struct ParsedId {
    epoch: u32,
    stream: usize,
    seq: u64,
}

fn parse_id(id: &str) -> Result<ParsedId, StoreError> {
    let malformed = || StoreError::Malformed(id.to_string());
    let mut parts = id.splitn(3, '-');
    let epoch = parts
        .next()
        .and_then(|p| u32::from_str_radix(p, 16).ok())
        .ok_or_else(malformed)?;
    let stream = parts
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(malformed)?;
    let seq = parts
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(malformed)?;
    Ok(ParsedId { epoch, stream, seq })
}

fn format_id(epoch: u32, stream: usize, seq: u64) -> String {
    format!("{epoch:08x}-{stream}-{seq}")
}

fn random_epoch() -> u32 {
    crate::util::random_u32()
}

impl MemoryEventStore {
    /// A store with the given bounds.
    pub fn new(config: MemoryEventStoreConfig) -> Self {
        MemoryEventStore {
            inner: Arc::default(),
            config,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        crate::util::lock(&self.inner)
    }

    /// Forgets sessions idle for longer than the TTL (at most once a second, on use).
    fn sweep(&self, inner: &mut Inner, now: Instant) {
        if inner
            .last_sweep
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return;
        }
        inner.last_sweep = Some(now);
        let ttl = self.config.ttl;
        inner
            .sessions
            .retain(|_, s| now.duration_since(s.last_used) < ttl);
    }

    /// Sessions with streams right now.
    pub fn session_count(&self) -> usize {
        self.lock().sessions.len()
    }

    fn append_sync(&self, session: &str, stream: &str, message: Option<Bytes>) -> String {
        let now = Instant::now();
        let mut inner = self.lock();
        self.sweep(&mut inner, now);
        let log = inner.session_log(session, now);
        log.last_used = now;
        let index = log.stream_index(stream);
        let epoch = log.epoch;
        let s = &mut log.streams[index];
        let seq = s.next_seq;
        s.next_seq += 1;
        s.events.push_back((seq, message));
        while s.events.len() > self.config.max_events_per_stream.max(1) {
            if let Some((dropped, _)) = s.events.pop_front() {
                s.trimmed_through = Some(dropped);
            }
        }
        s.shared.last_seq.store(seq, Ordering::Release);
        s.shared.notify.notify_waiters();
        format_id(epoch, index, seq)
    }

    fn locate_now(&self, session: &str, event_id: &str) -> Result<StreamPosition, StoreError> {
        let parsed = parse_id(event_id)?;
        let inner = self.lock();
        let unknown = || StoreError::Unknown(event_id.to_string());
        let log = inner.sessions.get(session).ok_or_else(unknown)?;
        if log.epoch != parsed.epoch {
            return Err(unknown());
        }
        let stream = log.streams.get(parsed.stream).ok_or_else(unknown)?;
        if !stream.issued(parsed.seq) {
            return Err(unknown());
        }
        Ok(StreamPosition {
            stream: stream.name.clone(),
            event_id: event_id.to_string(),
        })
    }

    fn read_now(
        &self,
        session: &str,
        stream: &str,
        after: Option<&str>,
        max: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let parsed = after.map(parse_id).transpose()?;
        let mut inner = self.lock();
        let Some(log) = inner.sessions.get_mut(session) else {
            return match after {
                None => Ok(Vec::new()),
                Some(id) => Err(StoreError::Unknown(id.to_string())),
            };
        };
        log.last_used = Instant::now();
        let epoch = log.epoch;
        let Some(&index) = log.by_name.get(stream) else {
            return match after {
                None => Ok(Vec::new()),
                Some(id) => Err(StoreError::Unknown(id.to_string())),
            };
        };
        let s = &log.streams[index];
        let after_seq = match (&parsed, after) {
            (Some(p), Some(id)) => {
                if p.epoch != epoch || p.stream != index || !s.issued(p.seq) {
                    return Err(StoreError::Unknown(id.to_string()));
                }
                if s.trimmed_through.is_some_and(|t| t > p.seq) {
                    return Err(StoreError::Expired(id.to_string()));
                }
                p.seq
            }
            _ => 0,
        };
        // Sequence numbers are contiguous along the deque: the start is computed.
        let first = s.events.front().map_or(s.next_seq, |(seq, _)| *seq);
        let start = usize::try_from((after_seq + 1).saturating_sub(first)).unwrap_or(usize::MAX);
        Ok(s.events
            .iter()
            .skip(start)
            .take(max)
            .map(|(seq, message)| StoredEvent {
                id: format_id(epoch, index, *seq),
                message: message.clone(),
            })
            .collect())
    }

    fn last_now(&self, session: &str, stream: &str) -> Option<String> {
        let inner = self.lock();
        let log = inner.sessions.get(session)?;
        let &index = log.by_name.get(stream)?;
        let (seq, _) = log.streams[index].events.back()?;
        Some(format_id(log.epoch, index, *seq))
    }

    /// What a waiter on `stream` needs (created if missing).
    fn watch(&self, session: &str, stream: &str) -> Arc<StreamShared> {
        let mut inner = self.lock();
        let log = inner.session_log(session, Instant::now());
        let index = log.stream_index(stream);
        log.streams[index].shared.clone()
    }
}

impl EventStore for MemoryEventStore {
    fn append<'a>(
        &'a self,
        session: &'a str,
        stream: &'a str,
        message: Option<Bytes>,
    ) -> BoxFuture<'a, Result<String, StoreError>> {
        let id = self.append_sync(session, stream, message);
        async move { Ok(id) }.boxed()
    }

    fn append_now(
        &self,
        session: &str,
        stream: &str,
        message: Option<Bytes>,
    ) -> Option<Result<String, StoreError>> {
        Some(Ok(self.append_sync(session, stream, message)))
    }

    fn appends_without_waiting(&self) -> bool {
        true
    }

    fn events_between(&self, after: &str, next: &str) -> Option<u64> {
        let (a, b) = (parse_id(after).ok()?, parse_id(next).ok()?);
        let same_stream = a.epoch == b.epoch && a.stream == b.stream;
        (same_stream && b.seq > a.seq).then(|| b.seq - a.seq - 1)
    }

    fn locate<'a>(
        &'a self,
        session: &'a str,
        event_id: &'a str,
    ) -> BoxFuture<'a, Result<StreamPosition, StoreError>> {
        let r = self.locate_now(session, event_id);
        async move { r }.boxed()
    }

    fn read_after<'a>(
        &'a self,
        session: &'a str,
        stream: &'a str,
        after: Option<&'a str>,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<StoredEvent>, StoreError>> {
        let r = self.read_now(session, stream, after, max);
        async move { r }.boxed()
    }

    fn last_id<'a>(
        &'a self,
        session: &'a str,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        let r = self.last_now(session, stream);
        async move { Ok(r) }.boxed()
    }

    fn wait_for<'a>(
        &'a self,
        session: &'a str,
        stream: &'a str,
        after: Option<&'a str>,
    ) -> BoxFuture<'a, ()> {
        async move {
            let after_seq = after.and_then(|a| parse_id(a).ok()).map_or(0, |p| p.seq);
            let shared = self.watch(session, stream);
            let notified = shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Check after registering, so that an append in between is not missed.
            if shared.last_seq.load(Ordering::Acquire) <= after_seq {
                notified.await;
            }
        }
        .boxed()
    }

    fn remove_session<'a>(&'a self, session: &'a str) -> BoxFuture<'a, ()> {
        let mut state = self.lock();
        let removed = state.sessions.remove(session);
        crate::util::shrink_sparse(&mut state.sessions);
        drop(state);
        if let Some(log) = removed {
            for s in log.streams {
                s.shared.notify.notify_waiters();
            }
        }
        async {}.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(s: &'static str) -> Option<Bytes> {
        Some(Bytes::from_static(s.as_bytes()))
    }

    #[tokio::test]
    async fn replays_in_order_after_an_id_and_locates_streams() {
        let store = MemoryEventStore::default();
        let p = store.append("s1", "get", None).await.unwrap();
        let a = store.append("s1", "get", msg("a")).await.unwrap();
        let x = store.append("s1", "post-1", msg("x")).await.unwrap();
        let b = store.append("s1", "get", msg("b")).await.unwrap();
        let after_p = store.read_after("s1", "get", Some(&p), 10).await.unwrap();
        assert_eq!(
            after_p.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
            [a.clone(), b.clone()]
        );
        assert_eq!(store.locate("s1", &x).await.unwrap().stream, "post-1");
        assert_eq!(store.locate("s1", &a).await.unwrap().stream, "get");
        assert_eq!(store.last_id("s1", "get").await.unwrap(), Some(b));
        assert!(
            store.read_after("s1", "get", None, 10).await.unwrap()[0]
                .message
                .is_none()
        );
    }

    #[tokio::test]
    async fn ids_of_other_sessions_and_garbage_are_refused() {
        let store = MemoryEventStore::default();
        let mine = store.append("s1", "get", msg("a")).await.unwrap();
        store.append("s2", "get", msg("b")).await.unwrap();
        assert!(matches!(
            store.locate("s2", &mine).await,
            Err(StoreError::Unknown(_))
        ));
        assert!(matches!(
            store.read_after("s2", "get", Some(&mine), 10).await,
            Err(StoreError::Unknown(_))
        ));
        assert!(matches!(
            store.locate("s1", "nope").await,
            Err(StoreError::Malformed(_))
        ));
        assert!(matches!(
            store.locate("s1", "00000000-0-999").await,
            Err(StoreError::Unknown(_))
        ));
    }

    #[tokio::test]
    async fn sequence_zero_was_never_issued() {
        // Found by fuzz/fuzz_targets/event_store_ids.rs: `EPOCH-STREAM-0` was accepted as a
        // resume point although no event has that id.
        let store = MemoryEventStore::default();
        let first = store.append("s1", "get", msg("a")).await.unwrap();
        let zero = format!("{}0", first.strip_suffix('1').unwrap());
        assert!(matches!(
            store.locate("s1", &zero).await,
            Err(StoreError::Unknown(_))
        ));
        assert!(matches!(
            store.read_after("s1", "get", Some(&zero), 10).await,
            Err(StoreError::Unknown(_))
        ));
        assert_eq!(
            store
                .read_after("s1", "get", Some(&first), 10)
                .await
                .unwrap(),
            []
        );
    }

    #[tokio::test]
    async fn trimmed_history_is_reported_as_expired() {
        let store = MemoryEventStore::new(MemoryEventStoreConfig {
            max_events_per_stream: 2,
            ..Default::default()
        });
        let first = store.append("s", "get", msg("1")).await.unwrap();
        let second = store.append("s", "get", msg("2")).await.unwrap();
        store.append("s", "get", msg("3")).await.unwrap();
        store.append("s", "get", msg("4")).await.unwrap();
        assert!(matches!(
            store.read_after("s", "get", Some(&first), 10).await,
            Err(StoreError::Expired(_))
        ));
        // The cursor right before the oldest kept event still works.
        assert_eq!(
            store
                .read_after("s", "get", Some(&second), 10)
                .await
                .unwrap()
                .len(),
            2
        );
    }

    #[tokio::test]
    async fn waiters_wake_on_append_and_sessions_can_be_removed() {
        let store = MemoryEventStore::default();
        let last = store.append("s", "get", msg("a")).await.unwrap();
        let s2 = store.clone();
        let waiter = tokio::spawn(async move { s2.wait_for("s", "get", Some(&last)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        store.append("s", "get", msg("b")).await.unwrap();
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
        store.remove_session("s").await;
        assert_eq!(store.session_count(), 0);
    }
}
