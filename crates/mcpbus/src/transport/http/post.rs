//! POST: one JSON-RPC message from the client. A request is answered as one JSON body when its
//! answer is the first thing the handler sends, as an SSE stream otherwise (or always one way,
//! per [`ResponseMode`]); notifications and the client's answers are accepted with 202.

// The error side of these steps is the HTTP response itself, built at most once per request.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use mcpbus_proto::error_codes;
use mcpbus_proto::headers::{PROTOCOL_VERSION, SESSION_ID};
use mcpbus_proto::jsonrpc::{self, ErrorObject, Message, RequestId, parse_message};
use mcpbus_proto::mcp::{Implementation, LATEST_PROTOCOL_VERSION, methods};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use super::session::{ActivityGuard, HttpSession, Routed};
use super::stream::Tail;
use super::{HttpInner, ResponseMode, wire};
use crate::server::ClientSession;
use crate::service::FrameKind;

/// Answers a POST. Once the body is read, every HTTP error answering a request carries that
/// request's id.
pub(super) async fn post(http: Arc<HttpInner>, request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let message = match read_message(&http, &parts.headers, body).await {
        Ok(message) => message,
        Err(response) => return response,
    };
    let id = match &message {
        Message::Request(r) => Some(r.id.clone()),
        _ => None,
    };
    let response = match serve_post(http, &parts.headers, message).await {
        Ok(response) | Err(response) => response,
    };
    match id {
        Some(id) => wire::addressed(response, &id),
        None => response,
    }
}

/// The POSTed message: 406 or 415 for the wrong headers, 413 for too large a body, 400 for a
/// body that is not one JSON-RPC message (addressed to its id when that could be read).
async fn read_message(
    http: &HttpInner,
    headers: &HeaderMap,
    body: Body,
) -> Result<Message, Response<Body>> {
    wire::check_post_headers(headers)?;
    let config = &http.config;
    let bytes = wire::read_body(
        body,
        headers,
        config.max_body_bytes,
        config.body_read_timeout,
    )
    .await?;
    parse_message(&bytes).map_err(|invalid| {
        let response = wire::error(
            StatusCode::BAD_REQUEST,
            invalid.error.code,
            invalid.error.message,
        );
        match &invalid.id {
            Some(id) => wire::addressed(response, id),
            None => response,
        }
    })
}

async fn serve_post(
    http: Arc<HttpInner>,
    headers: &HeaderMap,
    message: Message,
) -> Result<Response<Body>, Response<Body>> {
    if super::modern::is_modern(&http, headers, &message) {
        return Ok(super::modern::post(http.clone(), headers, message).await);
    }
    let is_initialize = matches!(&message, Message::Request(r) if r.method == methods::INITIALIZE);
    if !is_initialize {
        wire::check_protocol_version(headers)?;
    }
    let (session, opens_session) = choose_session(&http, headers, is_initialize).await?;
    let activity = session.activity();
    let request = match message {
        Message::Request(r) => r,
        other => return deliver_other(&http, &session, other).await,
    };
    let request_id = request.id.clone();
    let routed = submit(&session, request).await?;
    let exchange = Exchange {
        http,
        session,
        opens_session,
        request_id,
    };
    Ok(exchange.answer(routed, activity).await)
}

/// The session a message goes to, and whether this POST opens it (a new session's id goes back
/// in the answer's header).
async fn choose_session(
    http: &Arc<HttpInner>,
    headers: &HeaderMap,
    is_initialize: bool,
) -> Result<(Arc<HttpSession>, bool), Response<Body>> {
    // A session opened with a credential is bound to the identity it proved (docs/auth.md).
    let identity = super::principal(http, headers).ok().flatten();
    if http.config.stateless {
        // Every POST is served by a session of its own, which ends after its answer.
        let preinitialized = (!is_initialize).then(|| stateless_client(headers));
        let session = http.create_session(preinitialized).await;
        http.server.open_with_identity(&session.id, identity);
        return Ok((session, false));
    }
    if is_initialize && !headers.contains_key(SESSION_ID) {
        let limit = http.config.max_sessions;
        if http.sessions.local().len() >= limit {
            return Err(wire::too_many_sessions(limit));
        }
        let session = http.create_session(None).await;
        http.server.open_with_identity(&session.id, identity);
        return Ok((session, true));
    }
    Ok((http.find_session(headers).await?, false))
}

/// The client a stateless request stands for: it never initialized, so it counts as a client
/// of the revision it names in its header.
fn stateless_client(headers: &HeaderMap) -> ClientSession {
    ClientSession {
        protocol_version: wire::header_str(headers, PROTOCOL_VERSION)
            .unwrap_or(LATEST_PROTOCOL_VERSION)
            .to_string(),
        client_info: Implementation::new("stateless-client", ""),
        capabilities: Default::default(),
    }
}

/// A notification or a client's answer: accepted, answered with 202 and no body.
async fn deliver_other(
    http: &HttpInner,
    session: &HttpSession,
    message: Message,
) -> Result<Response<Body>, Response<Body>> {
    // An answer to a request another replica's copy of the session sent goes there.
    if http.sessions.forward_answer(session, &message).await? {
        return Ok(wire::status_only(StatusCode::ACCEPTED));
    }
    if session.inbound.send(Box::new(message)).await.is_err() {
        return Err(wire::not_found());
    }
    if http.config.stateless {
        http.end_session(session, STATELESS_DONE);
    }
    Ok(wire::status_only(StatusCode::ACCEPTED))
}

/// Hands a request to the session's service loop; what the handler sends for it comes back
/// on the returned channel.
async fn submit(
    session: &HttpSession,
    request: jsonrpc::Request,
) -> Result<UnboundedReceiver<Routed>, Response<Body>> {
    let id = request.id.clone();
    let Some(routed) = session.router.register(id.clone()) else {
        return Err(wire::bad_request(format!(
            "request id {id} is already in flight in this session"
        )));
    };
    if session
        .inbound
        .send(Box::new(Message::Request(request)))
        .await
        .is_err()
    {
        session.router.unregister(&id);
        return Err(wire::not_found());
    }
    Ok(routed)
}

/// How long the answer to a failed `initialize` may take to be read before its session ends.
const FAILED_INITIALIZE_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Why a stateless session ends.
const STATELESS_DONE: &str = "stateless request done";

/// One request being answered on the POST that carried it.
struct Exchange {
    http: Arc<HttpInner>,
    session: Arc<HttpSession>,
    /// The request is the `initialize` of a session this POST opens.
    opens_session: bool,
    /// The request's id, for the answer that ends a stream the handler left unanswered.
    request_id: RequestId,
}

/// How the wait for a JSON answer ended.
enum JsonWait {
    /// The HTTP answer is ready.
    Done(Response<Body>),
    /// The handler sent this before its answer: the answer becomes an SSE stream.
    Stream(Routed),
}

impl Exchange {
    /// JSON when the answer comes first (or always, in JSON mode); SSE otherwise.
    async fn answer(
        self,
        mut routed: UnboundedReceiver<Routed>,
        activity: ActivityGuard,
    ) -> Response<Body> {
        let mut pending = Vec::new();
        if self.http.config.response_mode != ResponseMode::Sse {
            match self.wait_for_json(&mut routed).await {
                JsonWait::Done(response) => return response,
                JsonWait::Stream(first) => pending.push(first),
            }
        }
        self.answer_sse(routed, pending, activity).await
    }

    /// Waits for the answer while it can still be one JSON body. In JSON mode, what the
    /// handler sends before its answer goes to the standalone stream instead.
    async fn wait_for_json(&self, routed: &mut UnboundedReceiver<Routed>) -> JsonWait {
        let json_only = self.http.config.response_mode == ResponseMode::Json;
        loop {
            let next = tokio::select! {
                next = routed.recv() => next,
                _ = self.session.ended.cancelled() => return JsonWait::Done(wire::not_found()),
            };
            match next {
                Some(Routed::Frame(frame, FrameKind::Response)) => {
                    return JsonWait::Done(self.json_answer(frame).await);
                }
                Some(Routed::Frame(frame, _)) if json_only => {
                    self.session.peer.send_frame(frame, false);
                }
                Some(Routed::CloseConnection) if json_only => {}
                None | Some(Routed::Abandoned) => {
                    self.end_if_stateless();
                    return JsonWait::Done(wire::status_only(StatusCode::ACCEPTED));
                }
                Some(other) => return JsonWait::Stream(other),
            }
        }
    }

    /// The answer as one JSON body. An `initialize` opens its session only if it succeeded and
    /// (with shared sessions) the session could be shared.
    async fn json_answer(&self, frame: Bytes) -> Response<Body> {
        self.end_if_stateless();
        if !self.opens_session {
            return wire::json_response(frame, None);
        }
        if is_error(&frame) {
            self.http.end_session(&self.session, "initialize failed");
            return wire::json_response(frame, None);
        }
        if let Err(response) = self.http.share_new_session(&self.session).await {
            return response;
        }
        wire::json_response(frame, Some(&self.session.id))
    }

    /// Answers as an SSE stream: a pump appends the request's messages to the event store and
    /// outlives the connection, and the connection reads them back (so a client can resume).
    async fn answer_sse(
        self,
        routed: UnboundedReceiver<Routed>,
        pending: Vec<Routed>,
        activity: ActivityGuard,
    ) -> Response<Body> {
        let stream = self.session.next_post_stream();
        let close = self.session.ended.child_token();
        let retry = Some(self.http.config.sse_retry.as_millis() as u64);
        let priming = self.store_priming_event(&stream).await;
        let done = CancellationToken::new();
        let tail = Tail {
            store: self.http.store.clone(),
            session: self.session.clone(),
            stream: stream.clone(),
            cursor: None,
            first_batch: Vec::new(),
            end_on_response: true,
            priming: priming.map(|id| (id, retry)),
            close: close.clone(),
            stop: self.http.shutdown.clone(),
            keep_alive: self.http.config.sse_keep_alive,
            _activity: activity,
            standalone: None,
            lost_after: None,
            _done: Some(done.clone().drop_guard()),
        };
        let session_header = self.opens_session.then(|| self.session.id.to_string());
        tokio::spawn(self.pump(routed, pending, stream, close, done));
        wire::sse_response(tail.into_body(), session_header.as_deref())
    }

    /// Stores the priming event that opens a stream, for clients that get one.
    async fn store_priming_event(&self, stream: &str) -> Option<String> {
        if !self.http.priming_enabled(&self.session.id) {
            return None;
        }
        match self.http.store.append(&self.session.id, stream, None).await {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::warn!(error = %e, "could not store a priming event");
                None
            }
        }
    }

    /// Appends the request's messages to `stream` until its answer. `close` is cancelled when
    /// the handler asks to close the connection (the stream goes on; SEP-1699).
    async fn pump(
        self,
        mut routed: UnboundedReceiver<Routed>,
        pending: Vec<Routed>,
        stream: String,
        close: CancellationToken,
        read: CancellationToken,
    ) {
        let mut pending = pending.into_iter();
        loop {
            let next = match pending.next() {
                Some(r) => Some(r),
                None => tokio::select! {
                    next = routed.recv() => next,
                    _ = self.session.ended.cancelled() => None,
                },
            };
            let (frame, last) = match next {
                Some(Routed::Frame(frame, kind)) => (frame, kind == FrameKind::Response),
                Some(Routed::CloseConnection) => {
                    close.cancel();
                    continue;
                }
                // Cancelled, or the session ended: close the stream with an error answer so
                // that the reader is not left waiting.
                None | Some(Routed::Abandoned) => (cancelled_answer(&self.request_id), true),
            };
            let failed_initialize = last && self.opens_session && is_error(&frame);
            if last && self.opens_session && !failed_initialize {
                // A new session, initialized: every replica may serve it from now on.
                let _ = self.http.share_new_session(&self.session).await;
            }
            let appended = self
                .http
                .store
                .append(&self.session.id, &stream, Some(frame))
                .await;
            if let Err(e) = appended {
                tracing::warn!(session = %self.session.id, error = %e, "could not store a message of a POST stream");
            }
            if failed_initialize {
                self.end_after_read(read).await;
                return;
            }
            if last {
                break;
            }
        }
        self.end_if_stateless();
    }

    /// Ends the session of a failed `initialize` once its answer was read (the session id went
    /// out with the stream's head, before the answer was known), or after a grace period.
    async fn end_after_read(&self, read: CancellationToken) {
        let _ = tokio::time::timeout(FAILED_INITIALIZE_GRACE, read.cancelled()).await;
        self.http.end_session(&self.session, "initialize failed");
    }

    /// A stateless session serves one request: it ends once that is answered.
    fn end_if_stateless(&self) {
        if self.http.config.stateless {
            self.http.end_session(&self.session, STATELESS_DONE);
        }
    }
}

/// Whether an answer is a JSON-RPC error.
fn is_error(frame: &[u8]) -> bool {
    matches!(parse_message(frame), Ok(Message::Error(_)))
}

/// The answer that ends the stream of a request that ended without one.
fn cancelled_answer(id: &RequestId) -> Bytes {
    let error = ErrorObject::new(error_codes::REQUEST_CANCELLED, "request cancelled");
    Bytes::from(Message::error(Some(id.clone()), error).to_vec())
}
