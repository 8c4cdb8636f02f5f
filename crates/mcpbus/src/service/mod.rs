//! The service loop: one task reads messages and dispatches them, one writes the outgoing queue.
//!
//! Requests run as tasks of their own so that a slow handler never stalls the connection; each
//! can be cancelled by `notifications/cancelled`. Notifications are handled in arrival order on
//! the reading task (handlers must be quick: the SDK's own push to channels). Answers complete
//! the [`Peer`]'s pending requests, and progress notifications reach the request that asked.

mod backlog;
mod peer;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use mcpbus_proto::jsonrpc::{ErrorObject, Message, Notification, Request, RequestId};
use mcpbus_proto::mcp::{ProgressNotificationParams, methods};
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::transport::{Inbound, Transport, TransportReader, TransportWriter};

pub use crate::outbound::DEFAULT_OUTBOUND_CAPACITY;
pub(crate) use backlog::Backlog;
pub use peer::{DEFAULT_REQUEST_TIMEOUT, Peer, ProgressCallback, RequestOptions};
pub(crate) use peer::{FrameKind, RelatedSink};

/// Answers the requests and notifications that arrive on a connection.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request; the result or error is sent back unless the request was cancelled.
    fn handle_request(
        &self,
        request: Request,
        ctx: RequestContext,
    ) -> BoxFuture<'static, Result<Value, ErrorObject>>;

    /// Handles one notification. Runs on the reading task, in arrival order: keep it quick.
    fn handle_notification(&self, notification: Notification, peer: &Peer);

    /// Called once when the connection has ended.
    fn on_close(&self) {}

    /// Whether a request must be answered before the next message is read (e.g. `initialize`,
    /// whose effects every later request depends on). Other requests run concurrently.
    fn is_sequential(&self, _method: &str) -> bool {
        false
    }

    /// Whether a request lives as long as a subscription (a SEP-3415 push stream) and so does
    /// not count against [`ServiceConfig::max_in_flight`].
    fn is_long_lived(&self, _method: &str) -> bool {
        false
    }
}

/// What a request handler knows about the request it answers.
#[derive(Clone, Debug)]
pub struct RequestContext {
    /// The request id.
    pub id: RequestId,
    /// The peer that sent the request (to send it notifications or requests of our own).
    pub peer: Peer,
    /// Cancelled when the peer cancels the request or the connection ends.
    pub cancel: CancellationToken,
    /// The `_meta.progressToken` of the request, if the peer asked for progress.
    pub progress_token: Option<RequestId>,
    /// The request's `_meta`, if any.
    pub meta: Option<Map<String, Value>>,
}

impl RequestContext {
    /// Sends `notifications/progress` for this request (nothing if no progress was asked for).
    pub fn progress(&self, progress: f64, total: Option<f64>, message: Option<String>) {
        let Some(token) = &self.progress_token else {
            return;
        };
        let params = ProgressNotificationParams {
            progress_token: token.clone(),
            progress,
            total,
            message,
        };
        if let Ok(p) = serde_json::to_value(params) {
            let _ = self.peer.notify(methods::PROGRESS, Some(p));
        }
    }

    /// Whether the request was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

/// Settings of a service loop.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// Undelivered events a peer may hold before the oldest are dropped (default
    /// [`DEFAULT_OUTBOUND_CAPACITY`]).
    pub outbound_capacity: usize,
    /// Default time our requests wait for an answer.
    pub request_timeout: Duration,
    /// Requests of the peer that may run at once; more are refused with `-32603`.
    pub max_in_flight: usize,
    /// After end of input, how long running requests may take to finish and be answered.
    pub drain_timeout: Duration,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            outbound_capacity: DEFAULT_OUTBOUND_CAPACITY,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_in_flight: 1024,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// A running service loop.
#[derive(Debug)]
pub struct ServiceHandle {
    peer: Peer,
    task: JoinHandle<()>,
}

impl ServiceHandle {
    /// The handle to the peer.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Waits until the connection has ended and the transport is closed.
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Starts a service loop over `transport`. `make_handler` receives the new connection's peer
/// (so that the handler can keep it) and returns the handler that answers it.
pub fn spawn_service<T, F>(transport: T, make_handler: F, config: ServiceConfig) -> ServiceHandle
where
    T: Transport,
    F: FnOnce(&Peer) -> Arc<dyn Handler>,
{
    spawn_routed_service(transport, make_handler, config, Routing::default())
}

/// Where a transport wants messages delivered other than through its writer.
#[derive(Clone, Default)]
pub(crate) struct Routing {
    /// Receives the messages related to each incoming request (HTTP answers each request on
    /// the POST that carried it).
    pub(crate) related: Option<Arc<dyn RelatedSink>>,
}

impl std::fmt::Debug for Routing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routing")
            .field("related", &self.related.is_some())
            .finish()
    }
}

/// Like [`spawn_service`], with [`Routing`] for the messages the writer does not carry.
pub(crate) fn spawn_routed_service<T, F>(
    transport: T,
    make_handler: F,
    config: ServiceConfig,
    routing: Routing,
) -> ServiceHandle
where
    T: Transport,
    F: FnOnce(&Peer) -> Arc<dyn Handler>,
{
    let peer = Peer::new(config.outbound_capacity, config.request_timeout, routing);
    let handler = make_handler(&peer);
    let task = tokio::spawn(run(transport, handler, peer.clone(), config));
    ServiceHandle { peer, task }
}

/// The requests in flight on a connection: their cancellation tokens, and those that do not
/// count against the limit ([`Handler::is_long_lived`]).
#[derive(Default)]
struct Flights {
    tokens: HashMap<RequestId, CancellationToken>,
    uncounted: HashSet<RequestId>,
}

impl Flights {
    fn remove(&mut self, id: &RequestId) -> Option<CancellationToken> {
        self.uncounted.remove(id);
        self.tokens.remove(id)
    }

    /// Requests that count against the limit.
    fn counted(&self) -> usize {
        self.tokens.len() - self.uncounted.len()
    }
}

type InFlight = Arc<Mutex<Flights>>;

use crate::util::lock;

async fn run<T: Transport>(
    transport: T,
    handler: Arc<dyn Handler>,
    peer: Peer,
    config: ServiceConfig,
) {
    let (mut reader, writer) = transport.split();
    let writer_task = tokio::spawn(write_loop(writer, peer.clone()));
    let tracker = TaskTracker::new();
    let in_flight: InFlight = Arc::default();

    let mut input_ended = false;
    loop {
        let next = tokio::select! {
            biased;
            _ = peer.closed() => break,
            next = reader.recv() => next,
        };
        let Some(next) = next else {
            input_ended = true;
            break;
        };
        handle_inbound(next, &handler, &peer, &tracker, &in_flight, &config).await;
    }

    // No more answers can arrive: fail our pending requests, let running handlers finish and
    // answer (bounded), then flush the queue and close the transport.
    peer.close_input();
    tracker.close();
    if input_ended
        && tokio::time::timeout(config.drain_timeout, tracker.wait())
            .await
            .is_err()
    {
        tracing::warn!("requests still running after end of input; cancelling them");
    }
    for (_, token) in lock(&in_flight).tokens.drain() {
        token.cancel();
    }
    handler.on_close();
    peer.shared.queue.close();
    let _ = writer_task.await;
    peer.shared.closed.cancel();
    if !input_ended {
        // We closed first: give the other side a moment to end its output (a child process
        // exits once its stdin is closed), so that it is reaped rather than killed.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while reader.recv().await.is_some() {}
        })
        .await;
    }
}

/// Acts on one inbound message; malformed input is answered with its error.
async fn handle_inbound(
    next: Inbound,
    handler: &Arc<dyn Handler>,
    peer: &Peer,
    tracker: &TaskTracker,
    in_flight: &InFlight,
    config: &ServiceConfig,
) {
    match next {
        Err(invalid) => {
            tracing::debug!(error = %invalid, "answering malformed input");
            peer.send_message(&invalid.to_response());
        }
        Ok(Message::Request(request)) => {
            dispatch_request(request, handler, peer, tracker, in_flight, config).await;
        }
        Ok(Message::Notification(n)) => handle_notification(n, handler, peer, in_flight),
        Ok(Message::Response(r)) => peer.complete(&r.id, Ok(r.result)),
        Ok(Message::Error(e)) => match e.id {
            Some(id) => peer.complete(&id, Err(e.error)),
            None => {
                tracing::warn!(error = %e.error, "the peer reported an error without an id")
            }
        },
    }
}

/// Starts answering a request: as a task of its own, or (for a sequential method) before the
/// next message is read.
async fn dispatch_request(
    request: Request,
    handler: &Arc<dyn Handler>,
    peer: &Peer,
    tracker: &TaskTracker,
    in_flight: &InFlight,
    config: &ServiceConfig,
) {
    // Everything about this request, its refusal included, travels with it.
    let peer = peer.scoped(request.id.clone());
    let counted = !handler.is_long_lived(&request.method);
    let Some(token) = admit(&request.id, &peer, in_flight, config.max_in_flight, counted) else {
        return;
    };
    let ctx = request_context(&request, peer.clone(), token.clone());
    let id = request.id.clone();
    let sequential = handler.is_sequential(&request.method);
    let answer = handler.handle_request(request, ctx);
    let task = send_answer(answer, id, peer, token, in_flight.clone());
    if sequential {
        task.await;
    } else {
        tracker.spawn(task);
    }
}

/// Records a request as in flight and returns its cancellation token, or answers it with an
/// error: its id is already in flight, or `limit` requests are.
fn admit(
    id: &RequestId,
    peer: &Peer,
    in_flight: &InFlight,
    limit: usize,
    counted: bool,
) -> Option<CancellationToken> {
    let refusal = {
        let mut flights = lock(in_flight);
        if flights.tokens.contains_key(id) {
            ErrorObject::invalid_request(format_args!("request id {id} is already in flight"))
        } else if counted && flights.counted() >= limit {
            ErrorObject::internal(format_args!("too many requests in flight (limit {limit})"))
        } else {
            let token = CancellationToken::new();
            flights.tokens.insert(id.clone(), token.clone());
            if !counted {
                flights.uncounted.insert(id.clone());
            }
            return Some(token);
        }
    };
    peer.send_message(&Message::error(Some(id.clone()), refusal));
    None
}

/// What the handler learns about a request besides its params: its `_meta`, its progress
/// token, and how to reach the peer for it.
pub(crate) fn request_context(
    request: &Request,
    peer: Peer,
    cancel: CancellationToken,
) -> RequestContext {
    let meta = request
        .params
        .as_ref()
        .and_then(|p| p.get("_meta"))
        .and_then(Value::as_object)
        .cloned();
    let progress_token = meta
        .as_ref()
        .and_then(|m| m.get("progressToken"))
        .and_then(RequestId::from_value);
    RequestContext {
        id: request.id.clone(),
        peer,
        cancel,
        progress_token,
        meta,
    }
}

/// Waits for the handler and sends its answer, unless the request was cancelled first: then
/// no answer goes out, and the transport stops waiting for one.
async fn send_answer(
    answer: BoxFuture<'static, Result<Value, ErrorObject>>,
    id: RequestId,
    peer: Peer,
    token: CancellationToken,
    in_flight: InFlight,
) {
    // Cancellation first: a handler that ends because it was cancelled (a push stream) is
    // ready in the same instant, and a cancelled request gets no answer.
    let outcome = tokio::select! {
        biased;
        _ = token.cancelled() => None,
        r = answer => Some(r),
    };
    lock(&in_flight).remove(&id);
    match outcome {
        Some(Ok(result)) => {
            peer.send_message(&Message::response(id, result));
        }
        Some(Err(error)) => {
            peer.send_message(&Message::error(Some(id), error));
        }
        None => {
            tracing::debug!(%id, "request cancelled; no answer sent");
            peer.abandon_related();
        }
    }
}

fn handle_notification(
    n: Notification,
    handler: &Arc<dyn Handler>,
    peer: &Peer,
    in_flight: &InFlight,
) {
    match n.method.as_str() {
        methods::CANCELLED => {
            let id = n
                .params
                .as_ref()
                .and_then(|p| p.get("requestId"))
                .and_then(RequestId::from_value);
            if let Some(id) = id
                && let Some(token) = lock(in_flight).remove(&id)
            {
                tracing::debug!(%id, reason = ?n.params.as_ref().and_then(|p| p.get("reason")), "peer cancelled a request");
                token.cancel();
            }
        }
        methods::PROGRESS => {
            match n
                .params
                .map(serde_json::from_value::<ProgressNotificationParams>)
            {
                Some(Ok(p)) => peer.progress(p),
                _ => tracing::debug!("ignoring malformed progress notification"),
            }
        }
        _ => handler.handle_notification(n, peer),
    }
}

async fn write_loop<W: TransportWriter>(mut writer: W, peer: Peer) {
    let mut batch = Vec::with_capacity(64);
    while peer.shared.queue.pop_batch(&mut batch).await {
        for frame in batch.drain(..) {
            if let Err(e) = writer.send(frame).await {
                tracing::debug!(error = %e, "transport write failed; closing the connection");
                peer.shared.queue.close();
                peer.shared.closed.cancel();
                return;
            }
        }
        if let Err(e) = writer.flush().await {
            tracing::debug!(error = %e, "transport flush failed; closing the connection");
            peer.shared.queue.close();
            peer.shared.closed.cancel();
            return;
        }
    }
    let _ = writer.close().await;
}

/// Parses typed params, mapping failures to `-32602`.
pub(crate) fn parse_params<P: serde::de::DeserializeOwned>(
    params: Option<Value>,
) -> Result<P, ErrorObject> {
    serde_json::from_value(params.unwrap_or_else(|| json!({}))).map_err(ErrorObject::invalid_params)
}

/// Serializes a typed result, mapping failures to `-32603`.
pub(crate) fn to_result<R: serde::Serialize>(result: &R) -> Result<Value, ErrorObject> {
    serde_json::to_value(result).map_err(ErrorObject::internal)
}
