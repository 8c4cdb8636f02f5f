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
    /// The request being answered cannot go on, and the client is to be answered with this
    /// JSON-RPC error (e.g. `-32021` when a 2026-07-28 client did not declare a capability
    /// the handler needs). A tool handler's `?` turns it into that error, not a tool error.
    #[error("{0}")]
    Refused(ErrorObject),
}

impl Error {
    /// The JSON-RPC error to answer a peer with when this error ends a request handler.
    pub fn to_error_object(&self) -> ErrorObject {
        match self {
            Error::Remote(e) | Error::Refused(e) => e.clone(),
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

/// What kind of failure a shared backend (event log, event store, session store) reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendErrorKind {
    /// The backend cannot be reached right now (connection lost, timeout): retry later.
    Unavailable,
    /// The backend answered with something this replica cannot use, or refused the operation.
    Invalid,
}

/// A failure of a shared backend, with its cause kept as the error's source.
///
/// One type for the event log, the event store and the session store, so a caller tells a
/// passing outage ([`BackendErrorKind::Unavailable`]) from a lasting fault the same way
/// whatever part failed.
///
/// Its message names the cause too (`Redis: connection refused`), so one `to_string()` says
/// everything; [`source`](std::error::Error::source) still gives the cause itself.
#[derive(Debug, thiserror::Error)]
#[error("{context}{}", cause_suffix(.source))]
pub struct BackendError {
    kind: BackendErrorKind,
    context: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl BackendError {
    /// An error of `kind` described by `context`, caused by `source`.
    pub fn new(
        kind: BackendErrorKind,
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        BackendError {
            kind,
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// An error of `kind` with no underlying cause (the backend refused the operation).
    pub fn msg(kind: BackendErrorKind, context: impl Into<String>) -> Self {
        BackendError {
            kind,
            context: context.into(),
            source: None,
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> BackendErrorKind {
        self.kind
    }

    /// Whether retrying later may succeed.
    pub fn is_unavailable(&self) -> bool {
        self.kind == BackendErrorKind::Unavailable
    }
}

fn cause_suffix(source: &Option<Box<dyn std::error::Error + Send + Sync + 'static>>) -> String {
    source
        .as_ref()
        .map(|e| format!(": {e}"))
        .unwrap_or_default()
}
