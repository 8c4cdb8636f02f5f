//! SDK and transport errors.
//!
//! Two layers, as in the rest of the field: a handler answers a peer with an
//! [`mcpbus_proto::ErrorObject`] (code, message, data); the SDK reports its own
//! failures, and a peer's error answers, with [`Error`].

use std::io;
use std::time::Duration;

use mcpbus_proto::ErrorObject;
use mcpbus_proto::topic::TopicError;

/// A failure of an SDK operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer answered the request with a JSON-RPC error.
    #[error("the peer answered with an error: {0}")]
    Remote(ErrorObject),
    /// No answer arrived in time; the request was cancelled on the peer.
    #[error("no answer within {0:?}; the request was cancelled")]
    Timeout(Duration),
    /// The request was cancelled before its answer arrived.
    #[error("the request was cancelled")]
    Cancelled,
    /// The connection is closed (end of input, transport failure, or shutdown).
    #[error("the connection is closed")]
    Closed,
    /// Reading or writing the transport failed.
    #[error("transport failure: {0}")]
    Transport(#[from] io::Error),
    /// The peer's answer does not have the expected shape.
    #[error("unexpected answer from the peer: {method}: {source}")]
    InvalidResponse {
        /// The method of the request answered.
        method: String,
        /// Why the answer does not read as that method's result.
        source: serde_json::Error,
    },
    /// The params of a request could not be turned into JSON (a map with non-string keys, a
    /// failing `Serialize` impl).
    #[error("cannot encode the params of {method}: {source}")]
    InvalidParams {
        /// The method of the request.
        method: String,
        /// Why serialization failed.
        source: serde_json::Error,
    },
    /// The client's event filter is not a valid topic pattern.
    #[error("invalid event filter {filter:?}: {source}")]
    InvalidEventFilter {
        /// The filter given.
        filter: String,
        /// What is wrong with it.
        source: TopicError,
    },
    /// The operation breaks the protocol (e.g. the peer did not declare a needed capability).
    #[error("{0}")]
    Protocol(String),
}

impl Error {
    /// The JSON-RPC error to answer a peer with when this error ends a request handler.
    pub fn to_error_object(&self) -> ErrorObject {
        match self {
            Error::Remote(e) => e.clone(),
            other => ErrorObject::internal(other),
        }
    }
}

/// Turns the params of a `method` request into JSON, keeping the serializer's error.
pub(crate) fn encode_params(
    method: &str,
    params: impl serde::Serialize,
) -> Result<serde_json::Value> {
    serde_json::to_value(params).map_err(|source| Error::InvalidParams {
        method: method.to_owned(),
        source,
    })
}

/// Result with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
