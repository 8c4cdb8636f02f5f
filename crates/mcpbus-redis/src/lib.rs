//! Redis backend for mcpbus: several replicas of one deployment share one Redis, so that any
//! request of any client can reach any replica.
//!
//! One [`RedisBackend`] gives the shared parts the core asks for:
//!
//! - [`RedisBackend::event_store`]: the [`EventStore`] of resumable SSE streams (docs/protocol.md 4).
//!   One Redis Stream per (session, stream), appended by one Lua call (exact trimming, TTL),
//!   ids `EPOCH.STREAM.MS-SEQ` where the epoch is random per session (another session's ids
//!   are refused) and `MS-SEQ` is Redis's stream id (it never goes back).
//! - [`RedisBackend::event_log`]: the [`EventLog`]: one log (`{NAME}:log`, a Redis Stream)
//!   that every replica tails with `XREAD BLOCK` and feeds to its hub; subscriptions as control
//!   entries of the same log (every replica applies them at the same point); retained values
//!   as keys with native expiry, indexed by first topic segment.
//! - [`RedisBackend::session_store`]: the [`SessionStore`]: initialized sessions, ended for
//!   every replica through the log, client answers routed through the log to the replica
//!   that waits for them.
//! - [`RedisBackend::task_store`]: the [`TaskStore`] of the 2026-07-28 tasks extension: one
//!   hash per task (`{NAME}:task:ID`: version and record), written by compare-and-swap, expiring
//!   with the task's time to live.
//! - [`RedisBackend::webhook_store`]: the [`WebhookStore`] of SEP-3415 webhook subscriptions:
//!   one hash per subscription (`{NAME}:wh:s:ID`: record, signing secrets included, and
//!   delivery state), an index of ids, and one lease per subscription (`{NAME}:wh:l:ID`)
//!   naming the replica that delivers it.
//!
//! Every key lives under the hash tag `{NAME}` (one deployment, one Redis Cluster slot).
//! See `docs/ARCHITECTURE.md` and `docs/deployment.md` of the repository.

mod history;
mod log;
mod scripts;
mod sessions;
mod store;
mod tailer;
mod tasks;
mod watchdog;
mod webhooks;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use mcpbus::cluster::{ClusterListener, SessionStore};
use mcpbus::events::{EventLog, LogFeed};
use mcpbus::store::{EventStore, StoreError};
use mcpbus::tasks::TaskStore;
use mcpbus::webhooks::WebhookStore;
use mcpbus::{BackendError, BackendErrorKind};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::mpsc;

/// Settings of a [`RedisBackend`].
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://host:port/db` (also `rediss://`, `redis+unix://`).
    pub url: String,
    /// Names the deployment: every key starts with `{prefix}:` (default `mcpbus`).
    pub prefix: String,
    /// Messages kept per SSE stream (default 4096).
    pub max_events_per_stream: usize,
    /// A stream without appends for this long is forgotten (default 1 hour).
    pub stream_ttl: Duration,
    /// Entries the shared event log keeps, approximately (default 1,000,000).
    pub log_max_len: usize,
    /// A reader waiting on a stream re-reads this often, for messages another replica
    /// appended (default 1 s; this replica's own appends wake it at once).
    pub poll_interval: Duration,
    /// A command that gets no answer for this long fails (default 2 s).
    pub response_timeout: Duration,
}

impl RedisConfig {
    /// Settings for `url` with every default.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            prefix: "mcpbus".to_string(),
            max_events_per_stream: 4096,
            stream_ttl: Duration::from_secs(3600),
            log_max_len: 1_000_000,
            poll_interval: Duration::from_secs(1),
            response_timeout: Duration::from_secs(2),
        }
    }

    /// Sets the deployment name.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

/// Why the backend could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not a Redis URL.
    #[error("invalid Redis URL {url:?}: {source}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        source: redis::RedisError,
    },
    /// The prefix may not contain `{`, `}` or whitespace, and may not be empty.
    #[error("invalid Redis key prefix {0:?}: use letters, digits, '-', '_', '.' or ':'")]
    InvalidPrefix(String),
    /// Redis could not be reached.
    #[error("could not connect to Redis at {url}: {source}")]
    Connect {
        /// The URL given.
        url: String,
        /// The connection error.
        source: redis::RedisError,
    },
}

/// Key names of one deployment.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    tag: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        Keys {
            tag: format!("{{{prefix}}}"),
        }
    }
    pub(crate) fn log(&self) -> String {
        format!("{}:log", self.tag)
    }
    pub(crate) fn session(&self, session: &str) -> String {
        format!("{}:sess:{session}", self.tag)
    }
    pub(crate) fn meta(&self, session: &str) -> String {
        format!("{}:m:{session}", self.tag)
    }
    pub(crate) fn streams_prefix(&self, session: &str) -> String {
        format!("{}:st:{session}:", self.tag)
    }
    pub(crate) fn stream(&self, session: &str, stream: &str) -> String {
        format!("{}:st:{session}:{stream}", self.tag)
    }
    pub(crate) fn retained(&self, topic: &str) -> String {
        format!("{}:ret:{topic}", self.tag)
    }
    pub(crate) fn retained_segments(&self) -> String {
        format!("{}:rix", self.tag)
    }
    pub(crate) fn retained_topics(&self, first_segment: &str) -> String {
        format!("{}:rix:{first_segment}", self.tag)
    }
    pub(crate) fn task(&self, task_id: &str) -> String {
        format!("{}:task:{task_id}", self.tag)
    }
    pub(crate) fn webhook(&self, id: &str) -> String {
        format!("{}:wh:s:{id}", self.tag)
    }
    pub(crate) fn webhook_lease(&self, id: &str) -> String {
        format!("{}:wh:l:{id}", self.tag)
    }
    pub(crate) fn webhook_ids(&self) -> String {
        format!("{}:wh:ids", self.tag)
    }
}

pub(crate) struct Inner {
    pub(crate) config: RedisConfig,
    pub(crate) keys: Keys,
    pub(crate) client: redis::Client,
    /// The shared connection; replaced by [`watchdog`] when it stops answering.
    pub(crate) conn: Mutex<ConnectionManager>,
    pub(crate) waiters: Mutex<HashMap<(String, String), Arc<store::Waiter>>>,
    pub(crate) listener: Mutex<Option<Arc<dyn ClusterListener>>>,
    pub(crate) tailer: mpsc::UnboundedSender<tailer::Command>,
    /// The hub this replica's log reader feeds (set when the hub is built over the log).
    pub(crate) feed: OnceLock<LogFeed>,
}

impl Inner {
    /// The shared connection (a cheap clone of the current one).
    pub(crate) fn conn(&self) -> ConnectionManager {
        lock(&self.conn).clone()
    }
}

/// The settings of the shared connection.
pub(crate) fn manager_config(config: &RedisConfig) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_response_timeout(Some(config.response_timeout))
        .set_connection_timeout(Some(config.response_timeout))
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_secs(2))
        .set_number_of_retries(2)
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A Redis connection shared by the store, the bus and the session store of one replica.
/// Clonable; every clone is the same backend. Its log tailer runs until the last clone is
/// dropped.
#[derive(Clone)]
pub struct RedisBackend {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("prefix", &self.inner.config.prefix)
            .finish()
    }
}

impl RedisBackend {
    /// Connects (the first connection must succeed; later losses are retried with backoff)
    /// and starts tailing the shared log. Must be called within a tokio runtime.
    pub async fn connect(config: RedisConfig) -> Result<Self, ConnectError> {
        let prefix_ok = !config.prefix.is_empty()
            && config
                .prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
        if !prefix_ok {
            return Err(ConnectError::InvalidPrefix(config.prefix));
        }
        let client = redis::Client::open(config.url.as_str()).map_err(|source| {
            ConnectError::InvalidUrl {
                url: config.url.clone(),
                source,
            }
        })?;
        let manager_config = manager_config(&config);
        let conn = client
            .get_connection_manager_with_config(manager_config)
            .await
            .map_err(|source| ConnectError::Connect {
                url: config.url.clone(),
                source,
            })?;
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            keys: Keys::new(&config.prefix),
            config,
            client,
            conn: Mutex::new(conn),
            waiters: Mutex::new(HashMap::new()),
            listener: Mutex::new(None),
            tailer: tx,
            feed: OnceLock::new(),
        });
        let start = tailer::log_top(&inner)
            .await
            .map_err(|e| ConnectError::Connect {
                url: inner.config.url.clone(),
                source: e,
            })?;
        tokio::spawn(tailer::run(Arc::downgrade(&inner), rx, start));
        tokio::spawn(watchdog::run(Arc::downgrade(&inner)));
        tracing::info!(prefix = %inner.config.prefix, "connected to Redis");
        Ok(RedisBackend { inner })
    }

    /// The shared event store of resumable streams.
    pub fn event_store(&self) -> Arc<dyn EventStore> {
        Arc::new(store::RedisEventStore(self.inner.clone()))
    }

    /// The shared event log (events, subscriptions, retained values), for
    /// `ServerBuilder::event_log`.
    pub fn event_log(&self) -> Arc<dyn EventLog> {
        Arc::new(log::RedisEventLog(self.inner.clone()))
    }

    /// The shared session store.
    pub fn session_store(&self) -> Arc<dyn SessionStore> {
        Arc::new(sessions::RedisSessionStore(self.inner.clone()))
    }

    /// The shared task store of the 2026-07-28 tasks extension, for
    /// `TaskConfig::store`: a task created on one replica is found, answered and cancelled on
    /// every other one. Each call gives a store of its own; give one to each server.
    pub fn task_store(&self) -> Arc<dyn TaskStore> {
        Arc::new(tasks::RedisTaskStore::new(self.inner.clone()))
    }

    /// The shared store of webhook subscriptions, for `WebhookConfig::store`: subscriptions
    /// survive restarts, and each is delivered by one replica at a time under a lease that
    /// another replica takes over when its holder dies. It holds the clients' signing secrets
    /// (every replica signs), so the Redis must be as private as they are.
    pub fn webhook_store(&self) -> Arc<dyn WebhookStore> {
        Arc::new(webhooks::RedisWebhookStore(self.inner.clone()))
    }
}

/// A Redis failure as the core's backend error: connection trouble is worth a retry.
pub(crate) fn backend_error(e: redis::RedisError) -> BackendError {
    let kind = if e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
    {
        BackendErrorKind::Unavailable
    } else {
        BackendErrorKind::Invalid
    };
    BackendError::new(kind, "Redis", e)
}

/// A Redis failure as the event store's error.
pub(crate) fn store_error(e: redis::RedisError) -> StoreError {
    StoreError::Backend(backend_error(e))
}

/// A random 8-hex-digit tag.
pub(crate) fn random_hex() -> String {
    let mut r = [0u8; 4];
    let v = getrandom::fill(&mut r).map_or_else(
        |_| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        },
        |()| u32::from_le_bytes(r),
    );
    format!("{v:08x}")
}

/// A Redis stream id `ms-seq`, for ordering.
pub(crate) fn parse_stream_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}
