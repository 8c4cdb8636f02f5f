//! One Streamable HTTP session: its inbound queue, its request router, its activity.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use mcpbus_proto::jsonrpc::{Message, RequestId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::events::{EventHub, EventSink};
use crate::service::{FrameKind, Peer, RelatedSink};
use crate::store::EventStore;
use crate::transport::{Inbound, Transport, TransportReader, TransportWriter};

/// The name of every session's standalone (GET) stream in the event store.
pub(crate) const STANDALONE_STREAM: &str = "get";

pub(crate) use crate::util::lock;

/// What the router hands to the POST that carried a request.
#[derive(Debug)]
pub(crate) enum Routed {
    /// A message related to the request; `Response` is the last one.
    Frame(Bytes, FrameKind),
    /// The handler asked to close the connection (the stream goes on; SEP-1699).
    CloseConnection,
    /// The request ended without an answer (cancelled).
    Abandoned,
}

/// Delivers each request's messages to the POST that carried it.
#[derive(Default)]
pub(crate) struct RequestRouter {
    routes: Mutex<HashMap<RequestId, mpsc::UnboundedSender<Routed>>>,
}

impl RequestRouter {
    /// Registers the POST of request `id`; `false` if that id is already in flight.
    pub(crate) fn register(&self, id: RequestId) -> Option<mpsc::UnboundedReceiver<Routed>> {
        let mut routes = lock(&self.routes);
        if routes.contains_key(&id) {
            return None;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        routes.insert(id, tx);
        Some(rx)
    }

    pub(crate) fn unregister(&self, id: &RequestId) {
        lock(&self.routes).remove(id);
    }
}

impl RelatedSink for RequestRouter {
    fn route(&self, id: &RequestId, frame: Bytes, kind: FrameKind) -> Result<(), Bytes> {
        let mut routes = lock(&self.routes);
        let Some(tx) = routes.get(id) else {
            return Err(frame);
        };
        if let Err(mpsc::error::SendError(Routed::Frame(frame, _))) =
            tx.send(Routed::Frame(frame, kind))
        {
            // The POST is gone (its client disconnected before a stream existed). Its answer
            // has nowhere to go: the standalone stream must not carry responses. Requests and
            // notifications still reach the client there.
            routes.remove(id);
            return if kind == FrameKind::Response {
                Ok(())
            } else {
                Err(frame)
            };
        }
        if kind == FrameKind::Response {
            routes.remove(id);
        }
        Ok(())
    }

    fn close_stream(&self, id: &RequestId) {
        if let Some(tx) = lock(&self.routes).get(id) {
            let _ = tx.send(Routed::CloseConnection);
        }
    }

    fn abandon(&self, id: &RequestId) {
        if let Some(tx) = lock(&self.routes).remove(id) {
            let _ = tx.send(Routed::Abandoned);
        }
    }
}

/// A live HTTP session.
pub(crate) struct HttpSession {
    pub(crate) id: Arc<str>,
    /// Messages are boxed: the channel allocates its slots in blocks, per session.
    pub(crate) inbound: mpsc::Sender<Box<Message>>,
    pub(crate) router: Arc<RequestRouter>,
    pub(crate) peer: Peer,
    /// The standalone GET stream attached now, if any (at most one).
    standalone: Mutex<StandaloneSlot>,
    /// The last standalone event written to a connection: a fresh GET continues after it.
    pub(crate) standalone_cursor: Mutex<Option<String>>,
    /// POSTs in flight and streams open: a session with any is not idle.
    active: AtomicUsize,
    last_activity: Mutex<Instant>,
    /// Cancelled when the session has ended: its streams close.
    pub(crate) ended: CancellationToken,
    stream_seq: AtomicU64,
    /// Set when the session ended for every replica (not only this replica's copy).
    ended_everywhere: std::sync::atomic::AtomicBool,
    /// When the shared session store last heard the session was in use.
    pub(crate) last_touch: Mutex<Option<Instant>>,
    /// The server's hub, told of events this session's stream lost to a slow reader.
    pub(crate) events: EventHub,
    /// The identity that initialized the session: its later requests must prove the same
    /// subject (docs/auth.md).
    pub(crate) identity: Option<Arc<crate::server::Identity>>,
}

impl HttpSession {
    pub(crate) fn new(
        id: Arc<str>,
        inbound: mpsc::Sender<Box<Message>>,
        ended: CancellationToken,
        router: Arc<RequestRouter>,
        peer: Peer,
        events: EventHub,
    ) -> Self {
        HttpSession {
            id,
            inbound,
            router,
            peer,
            standalone: Mutex::new(StandaloneSlot::default()),
            standalone_cursor: Mutex::new(None),
            active: AtomicUsize::new(0),
            last_activity: Mutex::new(Instant::now()),
            ended,
            stream_seq: AtomicU64::new(1),
            ended_everywhere: std::sync::atomic::AtomicBool::new(false),
            last_touch: Mutex::new(None),
            events,
            identity: None,
        }
    }

    /// Marks the session as ended for every replica: its stored streams may go.
    pub(crate) fn set_ended_everywhere(&self) {
        self.ended_everywhere.store(true, Ordering::Release);
    }

    /// Whether the session ended for every replica.
    pub(crate) fn ended_everywhere(&self) -> bool {
        self.ended_everywhere.load(Ordering::Acquire)
    }

    /// Marks the session busy until the guard is dropped.
    pub(crate) fn activity(self: &Arc<Self>) -> ActivityGuard {
        self.active.fetch_add(1, Ordering::AcqRel);
        *lock(&self.last_activity) = Instant::now();
        ActivityGuard {
            session: self.clone(),
        }
    }

    /// How long the session has been idle (zero while anything is in flight or open).
    pub(crate) fn idle_for(&self, now: Instant) -> std::time::Duration {
        if self.active.load(Ordering::Acquire) > 0 {
            return std::time::Duration::ZERO;
        }
        now.saturating_duration_since(*lock(&self.last_activity))
    }

    /// Attaches a standalone stream. A second one is refused (`None`: 409) unless `take_over`
    /// (a resume: the client lost the old connection, which the server may not know yet), in
    /// which case the old connection is closed.
    pub(crate) fn attach_standalone(
        self: &Arc<Self>,
        take_over: bool,
        shutdown: &CancellationToken,
    ) -> Option<StandaloneGuard> {
        let mut slot = lock(&self.standalone);
        if slot.abort.is_some() && !take_over {
            return None;
        }
        if let Some(old) = slot.abort.take() {
            old.cancel();
        }
        slot.generation += 1;
        let abort = shutdown.child_token();
        slot.abort = Some(abort.clone());
        Some(StandaloneGuard {
            session: self.clone(),
            generation: slot.generation,
            abort,
            cluster: None,
        })
    }

    /// A fresh name for the stream of one POST, unique among the replicas serving the session.
    pub(crate) fn next_post_stream(&self) -> String {
        format!(
            "post-{}{}",
            process_tag(),
            self.stream_seq.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// A random tag of this process, so that replicas name their POST streams apart.
fn process_tag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| crate::util::random_hex(3) + "-")
}

/// Keeps a session from counting as idle.
pub(crate) struct ActivityGuard {
    session: Arc<HttpSession>,
}

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        *lock(&self.session.last_activity) = Instant::now();
        self.session.active.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Default)]
struct StandaloneSlot {
    generation: u64,
    abort: Option<CancellationToken>,
}

/// Holds the standalone slot while a GET stream is attached; frees it when dropped.
pub(crate) struct StandaloneGuard {
    session: Arc<HttpSession>,
    generation: u64,
    /// Cancelled when another connection takes the stream over, or at shutdown.
    pub(crate) abort: CancellationToken,
    /// The shared session store told that this replica holds the stream (told again on drop).
    pub(crate) cluster: Option<Arc<dyn crate::cluster::SessionStore>>,
}

impl StandaloneGuard {
    /// Records what this connection delivered, unless another one has taken over.
    pub(crate) fn delivered(&self, cursor: Option<String>) {
        let slot = lock(&self.session.standalone);
        if slot.generation == self.generation {
            *lock(&self.session.standalone_cursor) = cursor;
        }
    }
}

impl Drop for StandaloneGuard {
    fn drop(&mut self) {
        if let Some(cluster) = &self.cluster {
            cluster.detach_standalone(&self.session.id);
        }
        let mut slot = lock(&self.session.standalone);
        if slot.generation == self.generation {
            slot.abort = None;
        }
    }
}

/// A session's events, appended straight from the publisher to its standalone stream: chosen
/// only for stores that append without waiting (in memory). The stream's bound
/// (`replay_events_per_stream`) is what drops events for a slow reader, and the reader counts
/// them when it finds its position gone (see `stream.rs`).
pub(crate) struct StandaloneSink {
    pub(crate) session_id: Arc<str>,
    pub(crate) store: Arc<dyn EventStore>,
    /// The session's `ended` token: an ended session takes nothing more.
    pub(crate) ended: CancellationToken,
}

impl EventSink for StandaloneSink {
    fn deliver(&self, frame: &Bytes, _cursor: &str) -> bool {
        if self.ended.is_cancelled() {
            return false;
        }
        let stored =
            self.store
                .append_now(&self.session_id, STANDALONE_STREAM, Some(frame.clone()));
        if let Some(Err(e)) = &stored {
            tracing::warn!(session = %self.session_id, error = %e, "could not store an event; dropped");
        }
        matches!(stored, Some(Ok(_)))
    }
}

/// The transport a session's service loop runs over: messages come from POST bodies; messages
/// unrelated to a request are appended to the standalone stream of the event store.
pub(crate) struct HttpTransport {
    pub(crate) inbound: mpsc::Receiver<Box<Message>>,
    /// The session's `ended` token: input ends with the session (the POST handlers that
    /// hold the channel's sender may outlive it).
    pub(crate) ended: CancellationToken,
    pub(crate) session_id: Arc<str>,
    pub(crate) store: Arc<dyn EventStore>,
}

pub(crate) struct HttpReader {
    inbound: mpsc::Receiver<Box<Message>>,
    ended: CancellationToken,
}

pub(crate) struct HttpWriter {
    session_id: Arc<str>,
    store: Arc<dyn EventStore>,
}

impl Transport for HttpTransport {
    type Reader = HttpReader;
    type Writer = HttpWriter;

    fn split(self) -> (HttpReader, HttpWriter) {
        (
            HttpReader {
                inbound: self.inbound,
                ended: self.ended,
            },
            HttpWriter {
                session_id: self.session_id,
                store: self.store,
            },
        )
    }
}

impl TransportReader for HttpReader {
    async fn recv(&mut self) -> Option<Inbound> {
        // Bodies are parsed (and refused) by the POST handler: only valid messages come here.
        tokio::select! {
            m = self.inbound.recv() => m.map(|m| Ok(*m)),
            _ = self.ended.cancelled() => None,
        }
    }
}

impl TransportWriter for HttpWriter {
    async fn send(&mut self, frame: Bytes) -> io::Result<()> {
        if let Err(e) = self
            .store
            .append(&self.session_id, STANDALONE_STREAM, Some(frame))
            .await
        {
            // Losing one unsolicited message beats ending the session; the error is visible.
            tracing::warn!(session = %self.session_id, error = %e, "could not store a standalone message; dropped");
        }
        Ok(())
    }

    async fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    async fn close(&mut self) -> io::Result<()> {
        Ok(())
    }
}
