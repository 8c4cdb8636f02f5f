//! SDK and transport errors.
//!
//! Two layers, as in the rest of the field: a handler answers a peer with an
//! [`mcpbus_proto::ErrorObject`] (code, message, data); the SDK reports its own
//! failures, and a peer's error answers, with [`Error`].

use std::io;
use std::time::Duration;

use mcpbus_proto::ErrorObject;

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
    #[error("unexpected answer from the peer: {0}")]
    InvalidResponse(String),
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

/// Result with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
