//! Transports: how JSON-RPC messages travel between two peers.
//!
//! A transport splits into a [`TransportReader`] that yields parsed messages (or the precise error
//! a malformed input deserves) and a [`TransportWriter`] that writes already serialized frames.
//! Frames are [`Bytes`] so that one serialized event can be handed to many sessions without a copy.
//!
//! [`LineTransport`] frames messages as newline-delimited JSON over any byte stream: stdio
//! ([`stdio`]), a child process ([`ChildProcess`]), or an in-memory pipe ([`duplex`]) for tests.

mod child;
mod http_client;
mod line;

use std::future::Future;
use std::io;

use bytes::Bytes;
use mcpbus_proto::{InvalidMessage, Message};

pub use child::ChildProcess;
pub use http_client::{HttpClientConfig, HttpClientTransport};
pub(crate) use http_client::{HttpHandle, Probe};
pub use line::{DEFAULT_MAX_LINE_BYTES, LineReader, LineTransport, LineWriter, duplex, stdio};

/// What a reader yields: a message, or input that is not one (to be answered with an error).
pub type Inbound = Result<Message, InvalidMessage>;

/// The receiving half of a transport.
pub trait TransportReader: Send + 'static {
    /// The next inbound message; `None` at end of stream.
    fn recv(&mut self) -> impl Future<Output = Option<Inbound>> + Send;
}

/// The sending half of a transport.
pub trait TransportWriter: Send + 'static {
    /// Writes one serialized JSON-RPC message (without framing). Frames are shared buffers:
    /// one serialized event goes to many sessions without a copy.
    fn send(&mut self, frame: Bytes) -> impl Future<Output = io::Result<()>> + Send;

    /// Flushes what was written; called after each batch of frames.
    fn flush(&mut self) -> impl Future<Output = io::Result<()>> + Send;

    /// Closes the sending direction (for a child process: closes its stdin).
    fn close(&mut self) -> impl Future<Output = io::Result<()>> + Send;
}

/// A bidirectional message transport.
pub trait Transport: Send + 'static {
    /// The receiving half.
    type Reader: TransportReader;
    /// The sending half.
    type Writer: TransportWriter;

    /// Splits the transport into its two halves, used by two tasks.
    fn split(self) -> (Self::Reader, Self::Writer);
}

pub mod http;
