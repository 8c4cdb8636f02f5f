//! What several replicas of one deployment share: the traits a shared backend implements so
//! that any request of any client can reach any replica (the Redis backend lives in the
//! `mcpbus-redis` crate).
//!
//! - [`EventLog`](crate::events::EventLog) (in the events module): topic events go to one
//!   ordered log that every replica reads; subscriptions and retained values live in the
//!   backend ([`crate::server::ServerBuilder::event_log`]).
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
use mcpbus_proto::mcp::{ClientCapabilities, Implementation};
use serde::{Deserialize, Serialize};

use crate::error::BackendError;

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
    /// The identity the session belongs to (docs/auth.md): every replica holds its requests
    /// to the same subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<crate::server::Identity>,
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
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// The record of a session, if it exists (not ended, not expired).
    fn load<'a>(
        &'a self,
        session: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, BackendError>>;

    /// Keeps a session from expiring for another `ttl`.
    fn touch<'a>(
        &'a self,
        session: &'a str,
        ttl: std::time::Duration,
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Ends a session for every replica; `false` when it did not exist.
    fn end<'a>(&'a self, session: &'a str) -> BoxFuture<'a, Result<bool, BackendError>>;

    /// This replica now holds the session's standalone stream: it appends the session's
    /// matching events to it, first those it missed since the last one appended (by any
    /// replica), then live ones. Calls nest (each needs a [`detach_standalone`](Self::detach_standalone)).
    fn attach_standalone<'a>(&'a self, session: &'a str)
    -> BoxFuture<'a, Result<(), BackendError>>;

    /// This replica no longer holds the session's standalone stream.
    fn detach_standalone(&self, session: &str);

    /// Sends a client's answer to the replica whose request waits for it.
    fn forward_response<'a>(
        &'a self,
        session: &'a str,
        frame: Bytes,
    ) -> BoxFuture<'a, Result<(), BackendError>>;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_session_record_without_a_subject_still_reads() {
        let old = serde_json::json!({
            "protocolVersion": "2025-11-25",
            "clientInfo": {"name": "c", "version": "1"},
            "capabilities": {},
            "agentId": "a1"
        });
        let record: SessionRecord = serde_json::from_value(old.clone()).unwrap();
        assert_eq!(record.identity, None);
        assert_eq!(serde_json::to_value(&record).unwrap(), old);
        let bound = SessionRecord {
            identity: Some(crate::server::Identity::named("alice")),
            ..record
        };
        let json = serde_json::to_value(&bound).unwrap();
        assert_eq!(json["identity"]["subject"], "alice");
        assert_eq!(
            serde_json::from_value::<SessionRecord>(json).unwrap(),
            bound
        );
    }
}
