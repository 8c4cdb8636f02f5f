//! POST in the 2026-07-28 era (docs/protocol.md 6.3): one request, no session. Its headers are
//! checked against its body, it is answered as one JSON body when the answer comes first and
//! as an SSE stream of its notifications and answer otherwise, and closing that stream cancels
//! it (there is no resumption). Errors carry the request's id and the HTTP status the
//! revision gives them (400, 404).

// The error side of these steps is the HTTP response itself.
#![allow(clippy::result_large_err)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use mcpbus_proto::error_codes;
use mcpbus_proto::events_ext::methods::EVENTS_STREAM;
use mcpbus_proto::headers::{PROTOCOL_VERSION, SESSION_ID};
use mcpbus_proto::jsonrpc::{ErrorObject, Message, Request, RequestId};
use mcpbus_proto::mcp::{self, methods};
use mcpbus_proto::modern::{self, RequestMeta};
use mcpbus_proto::sse;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{HttpInner, modern_headers, wire};
use crate::server::modern as era;
use crate::service::{Backlog, FrameKind, RelatedSink};

/// Whether a POSTed message is of the 2026-07-28 era: no session, not `initialize`, and its
/// `_meta` or its `MCP-Protocol-Version` header names a revision the handshake era lacks.
pub(super) fn is_modern(http: &HttpInner, headers: &HeaderMap, message: &Message) -> bool {
    if !http.server.serves_modern() || headers.contains_key(SESSION_ID) {
        return false;
    }
    let header_is_modern = wire::header_str(headers, PROTOCOL_VERSION)
        .is_some_and(|v| !mcp::is_supported_protocol_version(v));
    match message {
        // `initialize` opens a legacy session, unless it names a modern revision (a modern
        // client gets 404 for this removed method).
        Message::Request(r) if r.method == methods::INITIALIZE => {
            modern::protocol_version_of(r.params.as_ref()).is_some() && header_is_modern
        }
        Message::Request(r) => era::is_modern_request(r) || header_is_modern,
        _ => header_is_modern,
    }
}

/// Answers a modern POST of `principal` (the identity its credential proved, docs/auth.md).
pub(super) async fn post(
    http: Arc<HttpInner>,
    headers: &HeaderMap,
    message: Message,
    principal: Option<Arc<crate::server::Identity>>,
) -> Response<Body> {
    let request = match message {
        Message::Request(r) => r,
        // No client notification means anything over HTTP in this revision.
        Message::Notification(_) => return wire::status_only(StatusCode::ACCEPTED),
        Message::Response(_) | Message::Error(_) => {
            return wire::bad_request("a 2026-07-28 client never sends responses");
        }
    };
    let meta = match check(&http, headers, &request) {
        Ok(meta) => meta,
        // Every refusal of the request's frame is a 400, whatever its code.
        Err(e) => return error_with_status(&request.id, e, StatusCode::BAD_REQUEST),
    };
    // SEP-3415: push streams last as long as their subscription and are exempt from the cap
    // on requests in flight; they have a cap of their own (docs/protocol.md 3.4).
    let slot = if request.method == EVENTS_STREAM {
        None
    } else {
        let Some(slot) = InFlight::take(&http) else {
            return wire::error(
                StatusCode::SERVICE_UNAVAILABLE,
                error_codes::INTERNAL_ERROR,
                format!(
                    "too many requests in flight (limit {}); retry later",
                    http.config.max_modern_requests
                ),
            );
        };
        Some(slot)
    };
    answer(http, Checked { request, meta }, slot, principal).await
}

/// A request whose frame passed [`check`], with the `_meta` read on the way (the handlers do
/// not read it again).
struct Checked {
    request: Request,
    meta: RequestMeta,
}

/// The `_meta` and the headers, in the order the revision gives their errors: a missing
/// member (`-32602`), a header that disagrees with the body (`-32020`), a revision not served
/// (`-32022`). The `_meta` read.
fn check(
    http: &HttpInner,
    headers: &HeaderMap,
    request: &Request,
) -> Result<RequestMeta, ErrorObject> {
    let meta = RequestMeta::from_params(request.params.as_ref()).map_err(ErrorObject::from)?;
    modern_headers::check(headers, request, &meta.protocol_version, &http.server)?;
    if !modern::is_supported_protocol_version(&meta.protocol_version) {
        return Err(era::unsupported_version(&meta.protocol_version));
    }
    Ok(meta)
}

/// Runs the request: JSON if the answer comes before anything else, SSE otherwise.
async fn answer(
    http: Arc<HttpInner>,
    checked: Checked,
    slot: Option<InFlight>,
    principal: Option<Arc<crate::server::Identity>>,
) -> Response<Body> {
    let Checked { request, meta } = checked;
    let id = request.id.clone();
    let (tx, mut related) = mpsc::unbounded_channel();
    let backlog = Arc::new(Backlog::default());
    // Shutting down ends every request, listen streams included.
    let cancel = http.shutdown.child_token();
    // Whatever ends this POST early (the client leaving) cancels the request.
    let guard = CancelOnDrop(cancel.clone());
    let server = http.server.clone();
    let sink = Arc::new(RelatedFrames(tx, backlog.clone()));
    let mut task = tokio::spawn({
        let cancel = cancel.clone();
        async move { era::serve_alone(&server, request, meta, sink, cancel, principal).await }
    });
    let first = tokio::select! {
        biased;
        done = &mut task => return finished(&id, done),
        frame = related.recv() => match frame {
            Some(frame) => {
                backlog.taken();
                frame
            }
            // The handler is done and dropped its side without sending anything.
            None => return finished(&id, (&mut task).await),
        },
    };
    let stream = Streamed {
        id,
        pending: VecDeque::from([event(&first)]),
        related,
        backlog,
        task,
        keep_alive: http.config.sse_keep_alive,
        _guard: guard,
        _slot: slot,
        answered: false,
    };
    wire::sse_response(stream.into_body(), None)
}

/// The HTTP answer of a request that finished before sending anything else.
fn finished(
    id: &RequestId,
    done: Result<Result<Value, ErrorObject>, tokio::task::JoinError>,
) -> Response<Body> {
    match done {
        Ok(Ok(result)) => wire::json_response(
            Bytes::from(Message::response(id.clone(), result).to_vec()),
            None,
        ),
        Ok(Err(e)) => error_answer(id, e),
        Err(e) => error_answer(
            id,
            ErrorObject::internal(format_args!("the handler failed: {e}")),
        ),
    }
}

/// A handler's JSON-RPC error with the request's id, under the HTTP status its code calls
/// for: `404` for an unknown method, `400` for the codes of this revision's framing errors
/// (`-32020` to `-32022`), `200` for the others (an unknown tool, a refused state...).
fn error_answer(id: &RequestId, error: ErrorObject) -> Response<Body> {
    let status = match error.code {
        error_codes::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        error_codes::HEADER_MISMATCH
        | error_codes::MISSING_REQUIRED_CLIENT_CAPABILITY
        | error_codes::UNSUPPORTED_PROTOCOL_VERSION => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    error_with_status(id, error, status)
}

fn error_with_status(id: &RequestId, error: ErrorObject, status: StatusCode) -> Response<Body> {
    let frame = Bytes::from(Message::error(Some(id.clone()), error).to_vec());
    let mut response = wire::json_response(frame, None);
    *response.status_mut() = status;
    response
}

/// Routes what a request sends besides its answer into the POST's stream, counting what its
/// connection has not taken yet (a push stream waits on that count; other requests send
/// little).
struct RelatedFrames(mpsc::UnboundedSender<Bytes>, Arc<Backlog>);

impl RelatedSink for RelatedFrames {
    fn route(&self, _id: &RequestId, frame: Bytes, kind: FrameKind) -> Result<(), Bytes> {
        if kind == FrameKind::Request {
            // A server never sends a request in this revision (input goes through
            // `input_required`): nothing may put one on the stream.
            tracing::warn!("dropped a server-to-client request on a 2026-07-28 stream");
            return Ok(());
        }
        // Counted before it can be taken, so that the count never runs below zero.
        self.1.added();
        if self.0.send(frame).is_err() {
            self.1.taken();
        }
        Ok(())
    }

    fn backlog(&self, _id: &RequestId) -> Option<Arc<Backlog>> {
        Some(self.1.clone())
    }
}

/// One modern request counted in [`HttpInner::modern_in_flight`] until dropped.
struct InFlight(Arc<std::sync::atomic::AtomicUsize>);

impl InFlight {
    fn take(http: &HttpInner) -> Option<InFlight> {
        use std::sync::atomic::Ordering;
        let limit = http.config.max_modern_requests;
        http.modern_in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| InFlight(http.modern_in_flight.clone()))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

struct CancelOnDrop(CancellationToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// An SSE answer in progress.
struct Streamed {
    id: RequestId,
    /// Events ready to write, in order.
    pending: VecDeque<Bytes>,
    related: mpsc::UnboundedReceiver<Bytes>,
    /// What `related` holds, counted.
    backlog: Arc<Backlog>,
    task: tokio::task::JoinHandle<Result<Value, ErrorObject>>,
    /// How often a quiet stream gets a comment (none when `None`).
    keep_alive: Option<Duration>,
    /// Dropped with the body: the client closed the stream, which cancels the request.
    _guard: CancelOnDrop,
    /// Counts the request as in flight while its stream is open (push streams are not).
    _slot: Option<InFlight>,
    /// The answer is in `pending`: nothing follows it.
    answered: bool,
}

impl Streamed {
    fn into_body(self) -> Body {
        let stream = futures::stream::unfold(self, |mut s| async move {
            let chunk = s.next_chunk().await?;
            Some((Ok::<_, Infallible>(chunk), s))
        });
        Body::from_stream(stream)
    }

    /// The next event: a related message, a keep-alive comment, or the answer (the last).
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some(chunk) = self.pending.pop_front() {
            return Some(chunk);
        }
        if self.answered {
            return None;
        }
        tokio::select! {
            biased;
            Some(frame) = self.related.recv() => {
                self.backlog.taken();
                Some(event(&frame))
            }
            done = &mut self.task => {
                // Messages sent just before the answer go first.
                while let Ok(frame) = self.related.try_recv() {
                    self.backlog.taken();
                    self.pending.push_back(event(&frame));
                }
                self.pending.push_back(event(&answer_frame(&self.id, done)));
                self.answered = true;
                self.pending.pop_front()
            }
            _ = quiet_for(self.keep_alive) => {
                let mut out = Vec::new();
                sse::encode_comment(&mut out, "");
                Some(Bytes::from(out))
            }
        }
    }
}

fn answer_frame(
    id: &RequestId,
    done: Result<Result<Value, ErrorObject>, tokio::task::JoinError>,
) -> Bytes {
    let message = match done {
        Ok(Ok(result)) => Message::response(id.clone(), result),
        Ok(Err(e)) => Message::error(Some(id.clone()), e),
        Err(e) => Message::error(
            Some(id.clone()),
            ErrorObject::internal(format_args!("the handler failed: {e}")),
        ),
    };
    Bytes::from(message.to_vec())
}

/// Completes after `interval`, or never.
async fn quiet_for(interval: Option<Duration>) {
    match interval {
        Some(interval) => tokio::time::sleep(interval).await,
        None => std::future::pending().await,
    }
}

fn event(frame: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(frame.len() + 16);
    sse::encode_event(&mut out, None, None, frame);
    Bytes::from(out)
}
