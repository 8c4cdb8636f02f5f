//! The clonable handle to the other side of a connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use mcpbus_proto::jsonrpc::{ErrorObject, Message, RequestId};
use mcpbus_proto::mcp::{ProgressNotificationParams, methods};
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::outbound::OutboundQueue;

/// Called with every progress notification of a request made with
/// [`RequestOptions::on_progress`].
pub type ProgressCallback = Arc<dyn Fn(ProgressNotificationParams) + Send + Sync>;

/// Default time a request waits for its answer.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Options of one outgoing request.
#[derive(Clone, Default)]
pub struct RequestOptions {
    /// How long to wait for the answer (default: the peer's default timeout).
    pub timeout: Option<Duration>,
    /// Receives the peer's progress notifications; asks for them with a `progressToken`.
    pub on_progress: Option<ProgressCallback>,
    /// Restart the timeout whenever progress arrives (bounded by `max_total_timeout`).
    pub reset_timeout_on_progress: bool,
    /// Hard limit on the whole wait when progress resets the timeout.
    pub max_total_timeout: Option<Duration>,
}

impl std::fmt::Debug for RequestOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestOptions")
            .field("timeout", &self.timeout)
            .field("on_progress", &self.on_progress.is_some())
            .field("reset_timeout_on_progress", &self.reset_timeout_on_progress)
            .field("max_total_timeout", &self.max_total_timeout)
            .finish()
    }
}

pub(crate) struct Pending {
    tx: oneshot::Sender<std::result::Result<Value, ErrorObject>>,
    progress: Option<ProgressCallback>,
    progress_seen: Option<Arc<Notify>>,
}

/// What kind of message a routed frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameKind {
    /// A notification (progress, log, …).
    Notification,
    /// A request of ours (sampling, elicitation, …).
    Request,
    /// The final answer to the request the frame relates to.
    Response,
}

/// Routes the messages that relate to one incoming request (its progress, its server-to-client
/// requests, its answer) to where that request came from, e.g. the HTTP POST that carried it.
pub(crate) trait RelatedSink: Send + Sync + 'static {
    /// Offers a frame related to request `id`; gives it back to fall back to the main queue.
    fn route(&self, id: &RequestId, frame: Bytes, kind: FrameKind) -> Result<(), Bytes>;

    /// Asks the transport to close the connection carrying `id`'s stream (the stream itself
    /// goes on and can be resumed). Does nothing by default.
    fn close_stream(&self, _id: &RequestId) {}

    /// Request `id` ended without an answer (it was cancelled): release its stream.
    fn abandon(&self, _id: &RequestId) {}

    /// How far the connection of `id`'s stream is behind, when the transport can tell (a
    /// 2026-07-28 SSE answer); `None` where what is routed is bounded elsewhere.
    fn backlog(&self, _id: &RequestId) -> Option<Arc<super::Backlog>> {
        None
    }
}

pub(crate) struct PeerShared {
    pub(crate) queue: OutboundQueue,
    pending: Mutex<HashMap<RequestId, Pending>>,
    next_id: AtomicI64,
    /// Cancelled when the connection must end (closed by us, or the transport failed).
    pub(crate) closed: CancellationToken,
    /// Set once no more input will arrive: requests can no longer be answered.
    input_closed: AtomicBool,
    /// Cancelled with `input_closed`, for whoever waits on it.
    input_done: CancellationToken,
    default_timeout: Duration,
    router: Option<Arc<dyn RelatedSink>>,
}

/// A clonable handle to the peer at the other end of a connection: send requests and
/// notifications, and close the connection.
#[derive(Clone)]
pub struct Peer {
    pub(crate) shared: Arc<PeerShared>,
    /// The incoming request this handle acts for, if any: its messages are routed with it.
    related: Option<RequestId>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("closed", &self.is_closed())
            .field("queued", &self.shared.queue.len())
            .finish()
    }
}

impl Peer {
    pub(crate) fn new(
        outbound_capacity: usize,
        default_timeout: Duration,
        routing: super::Routing,
    ) -> Self {
        Peer {
            related: None,
            shared: Arc::new(PeerShared {
                queue: OutboundQueue::new(outbound_capacity),
                pending: Mutex::new(HashMap::new()),
                next_id: AtomicI64::new(1),
                closed: CancellationToken::new(),
                input_closed: AtomicBool::new(false),
                input_done: CancellationToken::new(),
                default_timeout,
                router: routing.related,
            }),
        }
    }

    /// A handle whose messages relate to the incoming request `id` (routed with it).
    pub(crate) fn scoped(&self, id: RequestId) -> Peer {
        Peer {
            shared: self.shared.clone(),
            related: Some(id),
        }
    }

    /// Tells the router that this request ends without an answer.
    pub(crate) fn abandon_related(&self) {
        if let (Some(id), Some(router)) = (&self.related, &self.shared.router) {
            router.abandon(id);
        }
    }

    /// How far the connection of this request's stream is behind, when the transport can tell.
    pub(crate) fn backlog(&self) -> Option<Arc<super::Backlog>> {
        match (&self.related, &self.shared.router) {
            (Some(id), Some(router)) => router.backlog(id),
            _ => None,
        }
    }

    /// Closes the connection that carries this request's stream, if the transport has one
    /// (HTTP with SSE); the client resumes the stream later. Does nothing otherwise.
    pub fn close_related_stream(&self) {
        if let (Some(id), Some(router)) = (&self.related, &self.shared.router) {
            router.close_stream(id);
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<RequestId, Pending>> {
        crate::util::lock(&self.shared.pending)
    }

    /// Sends a request and waits for its result, with the default timeout.
    pub async fn request(&self, method: &str, params: Option<Value>) -> Result<Value> {
        self.request_with(method, params, RequestOptions::default())
            .await
    }

    /// Sends a request and waits for its result. If the returned future is dropped before the
    /// answer arrives, or the timeout passes, the peer is sent `notifications/cancelled`.
    pub async fn request_with(
        &self,
        method: &str,
        params: Option<Value>,
        opts: RequestOptions,
    ) -> Result<Value> {
        self.request_tracked(method, params, opts, &|_| {}).await
    }

    /// Like [`request_with`](Self::request_with), and tells `on_id` the request's id before
    /// the request goes out: whoever routes the notifications that name it (an `events/stream`
    /// subscription, whose id is its subscription id) is ready before the first one arrives.
    pub(crate) async fn request_tracked(
        &self,
        method: &str,
        params: Option<Value>,
        opts: RequestOptions,
        on_id: &(dyn Fn(&RequestId) + Sync),
    ) -> Result<Value> {
        if self.is_closed() || self.shared.input_closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let id = RequestId::Number(self.shared.next_id.fetch_add(1, Ordering::Relaxed));
        let mut params = params;
        if opts.on_progress.is_some() {
            with_progress_token(&mut params, &id)?;
        }
        let (tx, mut rx) = oneshot::channel();
        let progress_seen = opts
            .reset_timeout_on_progress
            .then(|| Arc::new(Notify::new()));
        self.pending().insert(
            id.clone(),
            Pending {
                tx,
                progress: opts.on_progress.clone(),
                progress_seen: progress_seen.clone(),
            },
        );
        let mut guard = PendingGuard {
            peer: self,
            id: id.clone(),
            reason: "the request was abandoned",
            armed: true,
        };
        on_id(&id);
        self.send_message(&Message::request(id, method, params));

        let timeout = opts.timeout.unwrap_or(self.shared.default_timeout);
        let start = tokio::time::Instant::now();
        let hard_deadline = opts.max_total_timeout.map(|m| start + m);
        let mut deadline = start + timeout;
        loop {
            if let Some(hard) = hard_deadline {
                deadline = deadline.min(hard);
            }
            let progressed = async {
                match &progress_seen {
                    Some(n) => n.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                answer = &mut rx => {
                    guard.armed = false;
                    return match answer {
                        Ok(Ok(v)) => Ok(v),
                        Ok(Err(e)) => Err(Error::Remote(e)),
                        Err(_) => Err(Error::Closed),
                    };
                }
                _ = tokio::time::sleep_until(deadline) => {
                    guard.reason = "timeout";
                    return Err(Error::Timeout(start.elapsed()));
                }
                _ = progressed => {
                    deadline = tokio::time::Instant::now() + timeout;
                }
                _ = self.shared.closed.cancelled() => {
                    guard.armed = false;
                    return Err(Error::Closed);
                }
            }
        }
    }

    /// Sends a notification.
    pub fn notify(&self, method: &str, params: Option<Value>) -> Result<()> {
        if self.send_message(&Message::notification(method, params)) {
            Ok(())
        } else {
            Err(Error::Closed)
        }
    }

    /// Queues a message (never dropped), routed with the related request if there is one.
    /// Returns `false` if the connection is closed.
    pub(crate) fn send_message(&self, msg: &Message) -> bool {
        let frame = Bytes::from(msg.to_vec());
        let frame = match (&self.related, &self.shared.router) {
            (Some(id), Some(router)) => {
                let kind = match msg {
                    Message::Request(_) => FrameKind::Request,
                    Message::Notification(_) => FrameKind::Notification,
                    Message::Response(_) | Message::Error(_) => FrameKind::Response,
                };
                match router.route(id, frame, kind) {
                    Ok(()) => return true,
                    Err(frame) => frame,
                }
            }
            _ => frame,
        };
        self.shared.queue.push(frame, false)
    }

    /// Queues an already serialized frame; `droppable` frames (events) may be dropped, oldest
    /// first, when this peer falls behind. Returns `false` if the connection is closed.
    pub(crate) fn send_frame(&self, frame: Bytes, droppable: bool) -> bool {
        self.shared.queue.push(frame, droppable)
    }

    /// Events dropped because this peer was too slow to read them.
    pub fn dropped_events(&self) -> u64 {
        self.shared.queue.dropped()
    }

    /// Ends the connection: pending requests fail with [`Error::Closed`], queued messages are
    /// still written, then the transport is closed.
    pub fn close(&self) {
        self.shared.closed.cancel();
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.is_cancelled()
    }

    /// Completes when the connection ends.
    pub async fn closed(&self) {
        self.shared.closed.cancelled().await
    }

    /// Completes when no more input will arrive from the peer (e.g. end of stdin): requests
    /// that only wait for the peer, such as a listen stream, end then.
    pub(crate) async fn input_closed(&self) {
        self.shared.input_done.cancelled().await
    }

    /// Whether a request this peer sent with `id` still waits for its answer.
    pub(crate) fn has_pending(&self, id: &RequestId) -> bool {
        self.pending().contains_key(id)
    }

    /// Numbers this peer's requests from `first` on (replicas serving one session pick far
    /// apart ranges, so that the client never sees one id twice).
    pub(crate) fn start_request_ids_at(&self, first: i64) {
        self.shared.next_id.store(first, Ordering::Relaxed);
    }

    /// Delivers an answer to a pending request. Unknown ids are ignored (late or cancelled).
    pub(crate) fn complete(&self, id: &RequestId, answer: std::result::Result<Value, ErrorObject>) {
        let entry = self.pending().remove(id);
        match entry {
            Some(p) => {
                let _ = p.tx.send(answer);
            }
            None => tracing::debug!(%id, "answer for an unknown or abandoned request"),
        }
    }

    /// Routes a progress notification to the request that asked for it.
    pub(crate) fn progress(&self, params: ProgressNotificationParams) {
        let (callback, seen) = {
            let pending = self.pending();
            match pending.get(&params.progress_token) {
                Some(p) => (p.progress.clone(), p.progress_seen.clone()),
                None => return,
            }
        };
        if let Some(seen) = seen {
            seen.notify_one();
        }
        if let Some(cb) = callback {
            cb(params);
        }
    }

    /// No more input will arrive: fail every pending request now and refuse new ones.
    pub(crate) fn close_input(&self) {
        self.shared.input_closed.store(true, Ordering::Release);
        self.shared.input_done.cancel();
        self.pending().clear();
    }
}

/// Puts the request's own id in its `_meta.progressToken` (params must be an object).
fn with_progress_token(params: &mut Option<Value>, id: &RequestId) -> Result<()> {
    let Value::Object(obj) = params.get_or_insert_with(|| Value::Object(Map::new())) else {
        return Err(Error::Protocol("progress needs object params".into()));
    };
    let meta = obj
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        meta.insert("progressToken".into(), id.to_value());
    }
    Ok(())
}

/// Cancels a request on the peer if the wait for it ends without an answer.
struct PendingGuard<'a> {
    peer: &'a Peer,
    id: RequestId,
    reason: &'static str,
    armed: bool,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if self.peer.pending().remove(&self.id).is_some() && !self.peer.is_closed() {
            let _ = self.peer.notify(
                methods::CANCELLED,
                Some(json!({"requestId": self.id.to_value(), "reason": self.reason})),
            );
        }
    }
}
