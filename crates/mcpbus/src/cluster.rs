//! What several replicas of one deployment share: the traits a shared backend implements so
//! that any request of any client can reach any replica (the Redis backend lives in the
//! `mcpbus-redis` crate).
//!
//! - [`EventBus`]: topic events go to one ordered log that every replica reads; subscriptions
//!   and retained values live in the backend. A hub with a bus ([`crate::server::ServerBuilder::event_bus`])
//!   publishes with [`EventHub::publish`](crate::events::EventHub::publish).
//! - [`SessionStore`]: sessions of the Streamable HTTP transport outlive the replica that
//!   created them: any replica serves them, ends them for every replica, and routes a
//!   client's answer to the replica whose request waits for it
//!   ([`HttpConfig::session_store`](crate::transport::http::HttpConfig::session_store)).
//!
//! Events reach a session through its standalone stream in the shared
//! [`EventStore`](crate::store::EventStore): the replica that holds the session's GET stream
//! (see [`SessionStore::attach_standalone`]) appends every matching event of the log to it.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use mcpbus_proto::events::RetainedEvent;
use mcpbus_proto::mcp::{ClientCapabilities, Implementation};
use mcpbus_proto::topic::TopicPattern;
use serde::{Deserialize, Serialize};

/// Why a shared backend could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The backend cannot be reached right now (connection lost, timeout); retry later.
    #[error("shared backend unavailable: {0}")]
    Unavailable(String),
    /// The backend answered with something this replica cannot use.
    #[error("shared backend error: {0}")]
    Backend(String),
}

/// An event on its way to the log: validated and serialized once by the hub.
#[derive(Debug, Clone)]
pub struct BusEvent {
    /// The concrete topic.
    pub topic: String,
    /// The `events/emit` params as JSON (without `_meta`: the log adds its cursor).
    pub params: Bytes,
    /// Keep it as the topic's retained value.
    pub retained: bool,
    /// When it expires, in milliseconds since the Unix epoch.
    pub expires_at_ms: Option<i64>,
}

/// Topic events shared by every replica: publish into one ordered log, subscriptions and
/// retained values kept in the backend.
pub trait EventBus: Send + Sync + 'static {
    /// Appends an event to the log (and the retained store); returns its cursor (log position).
    /// An `Ok` means the event is stored: every matching subscriber will get it.
    fn publish<'a>(&'a self, event: &'a BusEvent) -> BoxFuture<'a, Result<String, ClusterError>>;

    /// Records that `session` subscribed to `patterns` (from this point of the log on).
    fn subscribe<'a>(
        &'a self,
        session: &'a str,
        patterns: &'a [TopicPattern],
    ) -> BoxFuture<'a, Result<(), ClusterError>>;

    /// Records that `session` no longer subscribes to `patterns`.
    fn unsubscribe<'a>(
        &'a self,
        session: &'a str,
        patterns: &'a [TopicPattern],
    ) -> BoxFuture<'a, Result<(), ClusterError>>;

    /// Every unexpired retained value whose topic matches `pattern`.
    fn retained<'a>(
        &'a self,
        pattern: &'a TopicPattern,
    ) -> BoxFuture<'a, Result<Vec<RetainedEvent>, ClusterError>>;
}

/// What a replica needs to serve a session another replica initialized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRecord {
    /// The negotiated protocol revision.
    pub protocol_version: String,
    /// The client's name and version.
    pub client_info: Implementation,
    /// What the client can do.
    pub capabilities: ClientCapabilities,
    /// The agent id the server gave the session.
    pub agent_id: String,
}

/// Told by the [`SessionStore`] what other replicas did to this replica's sessions.
pub trait ClusterListener: Send + Sync + 'static {
    /// `session` ended on another replica (DELETE): end this replica's copy.
    fn session_ended(&self, session: &str);

    /// A client's answer (a JSON-RPC response or error) to a request of `session` arrived at
    /// another replica: deliver it if this replica's copy waits for it.
    fn response(&self, session: &str, frame: Bytes);
}

/// Sessions shared by every replica.
pub trait SessionStore: Send + Sync + 'static {
    /// Starts telling `listener` about other replicas' actions (called once, by the transport).
    fn listen(&self, listener: Arc<dyn ClusterListener>);

    /// Records an initialized session; its events are kept from this point of the log on.
    fn create<'a>(
        &'a self,
        session: &'a str,
        record: &'a SessionRecord,
        ttl: std::time::Duration,
    ) -> BoxFuture<'a, Result<(), ClusterError>>;

    /// The record of a session, if it exists (not ended, not expired).
    fn load<'a>(
        &'a self,
        session: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, ClusterError>>;

    /// Keeps a session from expiring for another `ttl`.
    fn touch<'a>(
        &'a self,
        session: &'a str,
        ttl: std::time::Duration,
    ) -> BoxFuture<'a, Result<(), ClusterError>>;

    /// Ends a session for every replica; `false` when it did not exist.
    fn end<'a>(&'a self, session: &'a str) -> BoxFuture<'a, Result<bool, ClusterError>>;

    /// This replica now holds the session's standalone stream: it appends the session's
    /// matching events to it, first those it missed since the last one appended (by any
    /// replica), then live ones. Calls nest (each needs a [`detach_standalone`](Self::detach_standalone)).
    fn attach_standalone<'a>(&'a self, session: &'a str)
    -> BoxFuture<'a, Result<(), ClusterError>>;

    /// This replica no longer holds the session's standalone stream.
    fn detach_standalone(&self, session: &str);

    /// Sends a client's answer to the replica whose request waits for it.
    fn forward_response<'a>(
        &'a self,
        session: &'a str,
        frame: Bytes,
    ) -> BoxFuture<'a, Result<(), ClusterError>>;
}
