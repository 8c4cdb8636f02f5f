//! Why an HTTP exchange of the client transport failed.
//!
//! The transport's tasks pass a [`HttpError`] around; it leaves the transport in two ways: as
//! the text of the JSON-RPC error that answers the caller's request (see
//! [`super::HttpClientTransport`]), or as a [`crate::Error::Transport`] from
//! [`super::HttpClientTransport::new`], where the `io::Error` wraps it whole so that its
//! sources stay reachable.

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use http::header::{HeaderName, InvalidHeaderName, InvalidHeaderValue};
use http::uri::InvalidUri;
use http::{Method, StatusCode};

use crate::client::oauth::OAuthError;

/// A failure of the HTTP client transport. The endpoint is kept as text, not as a `Uri`, to
/// keep the error small.
#[derive(Debug, thiserror::Error)]
pub(super) enum HttpError {
    /// The endpoint URL does not parse.
    #[error("invalid URL {url:?}: {source}")]
    InvalidUrl { url: String, source: InvalidUri },
    /// The endpoint URL asks for TLS.
    #[error(
        "TLS is not supported by this transport; put a TLS-terminating proxy in front or use \
         http://"
    )]
    Tls,
    /// The endpoint URL is not an absolute `http://` URL.
    #[error("expected an absolute http:// URL, got {0:?}")]
    NotHttp(String),
    /// An extra header has an invalid name.
    #[error("invalid header name {name:?}: {source}")]
    HeaderName {
        name: String,
        source: InvalidHeaderName,
    },
    /// An extra header has an invalid value.
    #[error("invalid value for header {name}: {source}")]
    HeaderValue {
        name: HeaderName,
        source: InvalidHeaderValue,
    },
    /// An event id from the server cannot be sent back as a header.
    #[error("event id {id:?} cannot be sent as Last-Event-ID")]
    LastEventId {
        id: String,
        source: InvalidHeaderValue,
    },
    /// The request did not reach the server, or its answer broke off. hyper's own messages are
    /// terse, so the text quotes the whole chain of causes.
    #[error("{method} {uri} failed: {}", describe(.source))]
    Send {
        method: Method,
        uri: String,
        source: hyper_util::client::legacy::Error,
    },
    /// No answer head within the request timeout.
    #[error("{method} {uri}: no answer within {timeout:?}")]
    NoAnswer {
        method: Method,
        uri: String,
        timeout: Duration,
    },
    /// The server answered with a status this exchange cannot use.
    #[error("HTTP {status} from {uri}{}", quote(.body))]
    Status {
        status: StatusCode,
        uri: String,
        /// The start of the answer's body, trimmed (empty when there was none).
        body: String,
    },
    /// Reading a JSON answer's body failed (or it exceeded the size limit).
    #[error("reading the JSON answer failed: {}", describe(&**.source))]
    ReadJson {
        source: Box<dyn StdError + Send + Sync>,
    },
    /// A JSON answer's body did not arrive within the request timeout.
    #[error("the JSON answer did not arrive in time")]
    JsonTimeout,
    /// The server answered with a body that is neither JSON nor SSE.
    #[error(
        "the server answered with content type {0:?}; expected application/json or \
         text/event-stream"
    )]
    ContentType(String),
    /// The JSON answer to a request is not that request's response.
    #[error("the server's JSON answer does not answer this request")]
    NotTheAnswer,
    /// A 2026-07-28 request's SSE stream ended before the response (such streams cannot be
    /// resumed).
    #[error("the SSE stream ended before the response (2026-07-28 streams cannot be resumed)")]
    StreamEnded,
    /// A request's SSE stream ended before the response, with nothing to resume from.
    #[error("the SSE stream ended before the response, without an event id to resume from")]
    NothingToResume,
    /// Resumptions of a request's SSE stream kept bringing nothing.
    #[error("no response after {0} attempts to resume the SSE stream")]
    ResumeExhausted(u32),
    /// The server refused to resume a request's SSE stream.
    #[error("resuming the SSE stream failed: {0}")]
    Resume(#[source] Box<HttpError>),
    /// The session ended while a request's stream was being resumed.
    #[error(
        "the server ended the session before answering; the transport re-initialized, but \
         this request is lost"
    )]
    SessionLost,
    /// The server ended the session, and no `initialize` was sent to replay.
    #[error("the server ended the session and no initialize can be replayed")]
    NothingToReplay,
    /// Replaying `initialize` after the server ended the session failed.
    #[error("re-initialize: {0}")]
    Reinitialize(#[source] Box<HttpError>),
    /// The replayed `initialize` got no answer.
    #[error("the server did not answer initialize")]
    InitializeUnanswered,
    /// The transport is closing.
    #[error("the transport is closing")]
    Closing,
    /// The OAuth configuration is unusable.
    #[error("{0}")]
    OAuthSetup(#[source] OAuthError),
    /// The server asked for authorization and the OAuth flow failed.
    #[error("authorization failed: {0}")]
    Authorization(#[source] OAuthError),
}

impl HttpError {
    /// Whether the caller's settings are at fault rather than the server or the network.
    fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            HttpError::InvalidUrl { .. }
                | HttpError::Tls
                | HttpError::NotHttp(_)
                | HttpError::HeaderName { .. }
                | HttpError::HeaderValue { .. }
                | HttpError::OAuthSetup(_)
        )
    }
}

impl From<HttpError> for crate::Error {
    fn from(e: HttpError) -> Self {
        let kind = if e.is_invalid_input() {
            io::ErrorKind::InvalidInput
        } else {
            io::ErrorKind::Other
        };
        crate::Error::Transport(io::Error::new(kind, e))
    }
}

/// An error with its chain of causes, on one line.
pub(super) fn describe(e: &(dyn StdError + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// `": body"`, or nothing for an empty body.
fn quote(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_sources() {
        let status = HttpError::Status {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            uri: "http://127.0.0.1:1/mcp".into(),
            body: "boom".into(),
        };
        assert_eq!(
            status.to_string(),
            "HTTP 500 Internal Server Error from http://127.0.0.1:1/mcp: boom"
        );
        let wrapped = HttpError::Reinitialize(Box::new(status));
        assert!(wrapped.to_string().starts_with("re-initialize: HTTP 500"));
        assert!(wrapped.source().is_some());

        let bad = HeaderName::try_from("bad header").unwrap_err();
        let e: crate::Error = HttpError::HeaderName {
            name: "bad header".into(),
            source: bad,
        }
        .into();
        let crate::Error::Transport(io) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(io.kind(), io::ErrorKind::InvalidInput);
        assert!(io.get_ref().is_some_and(|inner| inner.is::<HttpError>()));
    }
}
