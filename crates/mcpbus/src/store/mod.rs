//! Storage traits with in-memory implementations: the [`EventStore`] behind resumable streams.
//!
//! Every message a Streamable HTTP session sends on an SSE stream is appended to the store
//! first and read back by the connection that carries it, so a client that reconnects with
//! `Last-Event-ID` gets exactly the messages it missed, in order. Event ids are scoped by
//! session: one session can never replay another's messages, even when all replicas share one
//! backend (the Redis implementation lives in the `mcpbus-redis` crate).

mod memory;

use std::fmt;

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::error::BackendError;

pub use memory::{MemoryEventStore, MemoryEventStoreConfig};

/// One stored message of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its event id (the SSE `id:` field).
    pub id: String,
    /// The serialized JSON-RPC message, or `None` for a priming event.
    pub message: Option<Bytes>,
}

/// Where an event id points to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPosition {
    /// The stream the event belongs to.
    pub stream: String,
    /// The event id itself (a cursor for [`EventStore::read_after`]).
    pub event_id: String,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The event id is not one this store issues.
    #[error("malformed event id {0:?}")]
    Malformed(String),
    /// The id belongs to no stream of this session (another session's id, or never issued).
    #[error("event id {0:?} is unknown to this session")]
    Unknown(String),
    /// The id was issued but the events after it are no longer kept (trimmed or expired).
    #[error("the events after {0:?} are no longer kept")]
    Expired(String),
    /// The backend failed (e.g. connection lost); the operation can be retried.
    #[error("event store unavailable: {0}")]
    Backend(#[from] BackendError),
}

/// Stores the messages of every SSE stream of every session, for replay after a reconnect.
///
/// Implementations keep ids unique and strictly increasing per stream, keep the streams of one
/// session apart from every other session's, and bound what they keep (by count and by age).
pub trait EventStore: Send + Sync + 'static {
    /// Appends a message (`None`: a priming event) to `stream` of `session`; returns its id.
    fn append<'a>(
        &'a self,
        session: &'a str,
        stream: &'a str,
        message: Option<Bytes>,
    ) -> BoxFuture<'a, Result<String, StoreError>>;

    /// Appends without waiting, when the store can (in memory); `None` when it cannot, and
    /// the caller then uses [`append`](Self::append). Lets live events skip a task hop.
    fn append_now(
        &self,
        _session: &str,
        _stream: &str,
        _message: Option<Bytes>,
    ) -> Option<Result<String, StoreError>> {
        None
    }

    /// Whether [`append_now`](Self::append_now) always succeeds without waiting (in memory):
    /// live events can then go straight from the publisher into the stream.
    fn appends_without_waiting(&self) -> bool {
        false
    }

    /// How many events of one stream lay strictly between the ids `after` and `next`, when
    /// the store can tell (its ids number the events); used to count the events a reader
    /// that fell behind the store's bound lost.
    fn events_between(&self, _after: &str, _next: &str) -> Option<u64> {
        None
    }

    /// Finds the stream of `session` that `event_id` belongs to.
    fn locate<'a>(
        &'a self,
        session: &'a str,
        event_id: &'a str,
    ) -> BoxFuture<'a, Result<StreamPosition, StoreError>>;

    /// Up to `max` events of `stream` after `after` (from the start when `None`), in order.
    fn read_after<'a>(
        &'a self,
        session: &'a str,
        stream: &'a str,
        after: Option<&'a str>,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<StoredEvent>, StoreError>>;

    /// The id of the newest event of `stream`, if it has any.
    fn last_id<'a>(
        &'a self,
        session: &'a str,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>>;

    /// Completes when `stream` may have events after `after` (it may complete spuriously;
    /// callers read and wait again). Callers bound the wait with their own timeout.
    fn wait_for<'a>(
        &'a self,
        session: &'a str,
        stream: &'a str,
        after: Option<&'a str>,
    ) -> BoxFuture<'a, ()>;

    /// Forgets every stream of `session` (when it ends).
    fn remove_session<'a>(&'a self, session: &'a str) -> BoxFuture<'a, ()>;
}

impl fmt::Debug for dyn EventStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventStore")
    }
}
