//! POST, GET and DELETE on the MCP endpoint (PROTOCOL.md section 5).

// The error side of these checks is the HTTP response itself, built at most once per request.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use mcpbus_proto::error_codes;
use mcpbus_proto::headers::{LAST_EVENT_ID, PROTOCOL_VERSION, SESSION_ID};
use mcpbus_proto::jsonrpc::{ErrorObject, Message, parse_message};
use mcpbus_proto::mcp::{
    Implementation, LATEST_PROTOCOL_VERSION, is_supported_protocol_version, methods,
};
use tokio::sync::mpsc;

use super::session::{HttpSession, Routed, STANDALONE_STREAM, lock};
use super::stream::Tail;
use super::{HttpInner, ResponseMode};
use crate::server::ClientSession;
use crate::service::FrameKind;
use crate::store::StoreError;

/// An HTTP error with an id-less JSON-RPC error body.
pub(crate) fn error(status: StatusCode, code: i64, message: impl Into<String>) -> Response<Body> {
    let body = Message::error(None, ErrorObject::new(code, message)).to_vec();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn bad_request(message: impl Into<String>) -> Response<Body> {
    error(
        StatusCode::BAD_REQUEST,
        error_codes::INVALID_REQUEST,
        message,
    )
}

pub(crate) fn status_only(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

fn json_response(frame: Bytes, session_id: Option<&str>) -> Response<Body> {
    let mut response = Response::new(Body::from(frame));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    add_session_header(&mut response, session_id);
    response
}

fn sse_response(body: Body, session_id: Option<&str>) -> Response<Body> {
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    add_session_header(&mut response, session_id);
    response
}

fn add_session_header(response: &mut Response<Body>, session_id: Option<&str>) {
    if let Some(v) = session_id.and_then(|id| HeaderValue::from_str(id).ok()) {
        response.headers_mut().insert(SESSION_ID, v);
    }
}

fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether an `Accept` header admits `mime` (`type/subtype`), honouring `*/*` and `type/*`.
fn accepts(headers: &HeaderMap, mime: &str) -> bool {
    let (ty, _) = mime.split_once('/').unwrap_or((mime, ""));
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',').any(|item| {
                let range = item
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                range == mime || range == "*/*" || range == format!("{ty}/*")
            })
        })
}

/// The host part of a `Host` header or an origin's authority, lowercased, without the port.
fn host_name(authority: &str) -> String {
    let a = authority.trim().to_ascii_lowercase();
    if let Some(rest) = a.strip_prefix('[') {
        return format!("[{}]", rest.split(']').next().unwrap_or(""));
    }
    match a.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host.to_string(),
        _ => a,
    }
}

impl HttpInner {
    fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host);
        match &self.config.allowed_hosts {
            None => matches!(name.as_str(), "localhost" | "127.0.0.1" | "[::1]"),
            Some(list) => list.iter().any(|allowed| {
                let allowed = allowed.to_ascii_lowercase();
                allowed == host.to_ascii_lowercase()
                    || (!allowed.contains(':') || allowed.starts_with('['))
                        && host_name(&allowed) == name
            }),
        }
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        if self
            .config
            .allowed_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin))
        {
            return true;
        }
        if !self.config.dns_rebinding_protection {
            return self.config.allowed_origins.is_empty();
        }
        match origin.split_once("://") {
            Some((scheme, authority)) if scheme == "http" || scheme == "https" => {
                self.host_allowed(authority)
            }
            _ => false,
        }
    }

    /// DNS-rebinding protection: 421 for a foreign `Host`, 403 for a foreign `Origin`.
    fn check_host_and_origin(&self, headers: &HeaderMap) -> Result<(), Response<Body>> {
        if self.config.dns_rebinding_protection {
            let host = header_str(headers, header::HOST).unwrap_or("");
            if !self.host_allowed(host) {
                return Err(error(
                    StatusCode::MISDIRECTED_REQUEST,
                    error_codes::INVALID_REQUEST,
                    format!("Host {host:?} is not allowed"),
                ));
            }
        }
        if let Some(origin) = header_str(headers, header::ORIGIN)
            && !self.origin_allowed(origin)
        {
            return Err(error(
                StatusCode::FORBIDDEN,
                error_codes::INVALID_REQUEST,
                format!("Origin {origin:?} is not allowed"),
            ));
        }
        Ok(())
    }

    fn check_protocol_version(headers: &HeaderMap) -> Result<(), Response<Body>> {
        match headers.get(PROTOCOL_VERSION) {
            None => Ok(()),
            Some(v) => match v.to_str() {
                Ok(v) if is_supported_protocol_version(v) => Ok(()),
                _ => Err(bad_request(format!(
                    "unsupported MCP-Protocol-Version {:?}",
                    String::from_utf8_lossy(v.as_bytes())
                ))),
            },
        }
    }

    /// The session a request names: 400 without the header, 404 if unknown or ended.
    async fn find_session(
        self: &Arc<Self>,
        headers: &HeaderMap,
    ) -> Result<Arc<HttpSession>, Response<Body>> {
        let Some(id) = header_str(headers, SESSION_ID) else {
            return Err(bad_request("missing Mcp-Session-Id header"));
        };
        self.session_by_id(id).await
    }

    pub(crate) async fn handle(self: Arc<Self>, request: Request<Body>) -> Response<Body> {
        if let Err(r) = self.check_host_and_origin(request.headers()) {
            return r;
        }
        if self.shutdown.is_cancelled() {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                error_codes::INTERNAL_ERROR,
                "server is shutting down",
            );
        }
        match *request.method() {
            Method::POST => self.post(request).await,
            Method::GET if !self.config.stateless => self.get(request).await,
            Method::DELETE if !self.config.stateless => self.delete(request).await,
            _ => {
                let mut r = status_only(StatusCode::METHOD_NOT_ALLOWED);
                let allow = if self.config.stateless {
                    "POST"
                } else {
                    "GET, POST, DELETE"
                };
                r.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(allow));
                r
            }
        }
    }

    async fn post(self: Arc<Self>, request: Request<Body>) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let headers = &parts.headers;
        if !accepts(headers, "application/json") || !accepts(headers, "text/event-stream") {
            return error(
                StatusCode::NOT_ACCEPTABLE,
                error_codes::INVALID_REQUEST,
                "Accept must list both application/json and text/event-stream",
            );
        }
        let content_type = header_str(headers, header::CONTENT_TYPE).unwrap_or("");
        if !content_type
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                error_codes::INVALID_REQUEST,
                "Content-Type must be application/json",
            );
        }
        let limit = self.config.max_body_bytes;
        let too_large = || {
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                error_codes::INVALID_REQUEST,
                format!("body exceeds the limit of {limit} bytes"),
            )
        };
        if header_str(headers, header::CONTENT_LENGTH)
            .and_then(|l| l.parse::<u64>().ok())
            .is_some_and(|l| l > limit as u64)
        {
            return too_large();
        }
        let bytes = match Limited::new(body, limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
            Err(e) => return bad_request(format!("could not read the body: {e}")),
        };
        let message = match parse_message(&bytes) {
            Ok(m) => m,
            Err(invalid) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    invalid.error.code,
                    invalid.error.message,
                );
            }
        };
        let is_initialize =
            matches!(&message, Message::Request(r) if r.method == methods::INITIALIZE);
        if !is_initialize && let Err(r) = Self::check_protocol_version(headers) {
            return r;
        }

        let (session, new_session) = if self.config.stateless {
            let pre = (!is_initialize).then(|| ClientSession {
                protocol_version: header_str(headers, PROTOCOL_VERSION)
                    .unwrap_or(LATEST_PROTOCOL_VERSION)
                    .to_string(),
                client_info: Implementation::new("stateless-client", ""),
                capabilities: Default::default(),
            });
            (self.create_session(pre).await, false)
        } else if is_initialize && !headers.contains_key(SESSION_ID) {
            if lock(&self.sessions).len() >= self.config.max_sessions {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    error_codes::INTERNAL_ERROR,
                    format!("too many sessions (limit {})", self.config.max_sessions),
                );
            }
            (self.create_session(None).await, true)
        } else {
            match self.find_session(headers).await {
                Ok(s) => (s, false),
                Err(r) => return r,
            }
        };
        let activity = session.activity();

        let request = match message {
            Message::Request(r) => r,
            other => {
                // A client's answer to a request another replica's copy of the session sent.
                if let Some(r) = self.forward_answer(&session, &other).await {
                    return r;
                }
                // Notifications and responses: accepted, answered with 202 and no body.
                if session.inbound.send(Box::new(other)).await.is_err() {
                    return error(
                        StatusCode::NOT_FOUND,
                        error_codes::INVALID_REQUEST,
                        "Session not found",
                    );
                }
                if self.config.stateless {
                    self.end_session(&session, "stateless request done");
                }
                return status_only(StatusCode::ACCEPTED);
            }
        };
        let id = request.id.clone();
        let Some(mut routed) = session.router.register(id.clone()) else {
            return bad_request(format!(
                "request id {id} is already in flight in this session"
            ));
        };
        if session
            .inbound
            .send(Box::new(Message::Request(request)))
            .await
            .is_err()
        {
            session.router.unregister(&id);
            return error(
                StatusCode::NOT_FOUND,
                error_codes::INVALID_REQUEST,
                "Session not found",
            );
        }
        let header_id = new_session.then(|| session.id.to_string());

        // JSON when the answer comes first (or always, in JSON mode); SSE otherwise.
        let mut pending = Vec::new();
        if self.config.response_mode != ResponseMode::Sse {
            loop {
                let next = tokio::select! {
                    next = routed.recv() => next,
                    _ = session.ended.cancelled() => {
                        return error(StatusCode::NOT_FOUND, error_codes::INVALID_REQUEST, "Session not found");
                    }
                };
                match next {
                    Some(Routed::Frame(frame, FrameKind::Response)) => {
                        if self.config.stateless {
                            self.end_session(&session, "stateless request done");
                        }
                        if new_session && matches!(parse_message(&frame), Ok(Message::Error(_))) {
                            // A failed initialize opens no session.
                            self.end_session(&session, "initialize failed");
                            return json_response(frame, None);
                        }
                        if new_session && let Err(r) = self.share_session(&session).await {
                            return r;
                        }
                        return json_response(frame, header_id.as_deref());
                    }
                    Some(Routed::Frame(frame, _))
                        if self.config.response_mode == ResponseMode::Json =>
                    {
                        session.peer.send_frame(frame, false);
                    }
                    Some(Routed::CloseConnection)
                        if self.config.response_mode == ResponseMode::Json => {}
                    None | Some(Routed::Abandoned) => {
                        if self.config.stateless {
                            self.end_session(&session, "stateless request done");
                        }
                        return status_only(StatusCode::ACCEPTED);
                    }
                    Some(other) => {
                        pending.push(other);
                        break;
                    }
                }
            }
        }
        self.post_sse(session, routed, pending, header_id, activity)
            .await
    }

    /// Answers a request as an SSE stream: its messages are appended to the event store by a
    /// pump that outlives the connection, and the connection reads them back.
    async fn post_sse(
        self: Arc<Self>,
        session: Arc<HttpSession>,
        mut routed: mpsc::UnboundedReceiver<Routed>,
        pending: Vec<Routed>,
        header_id: Option<String>,
        activity: super::session::ActivityGuard,
    ) -> Response<Body> {
        let stream = session.next_post_stream();
        let close = session.ended.child_token();
        let priming = self.priming_enabled(&session.id);
        let mut priming_id = None;
        if priming {
            match self.store.append(&session.id, &stream, None).await {
                Ok(id) => priming_id = Some(id),
                Err(e) => tracing::warn!(error = %e, "could not store a priming event"),
            }
        }
        let store = self.store.clone();
        let pump_session = session.clone();
        let pump_close = close.clone();
        let pump_stream = stream.clone();
        let this = self.clone();
        let share = header_id.is_some();
        tokio::spawn(async move {
            let mut pending = pending.into_iter();
            loop {
                let next = match pending.next() {
                    Some(r) => Some(r),
                    None => tokio::select! {
                        next = routed.recv() => next,
                        _ = pump_session.ended.cancelled() => None,
                    },
                };
                let (frame, last) = match next {
                    Some(Routed::Frame(frame, kind)) => (frame, kind == FrameKind::Response),
                    Some(Routed::CloseConnection) => {
                        pump_close.cancel();
                        continue;
                    }
                    // Cancelled, or the session ended: close the stream with an error answer
                    // so that the reader is not left waiting.
                    None | Some(Routed::Abandoned) => (
                        Bytes::from(
                            Message::error(
                                None,
                                ErrorObject::new(
                                    error_codes::REQUEST_CANCELLED,
                                    "request cancelled",
                                ),
                            )
                            .to_vec(),
                        ),
                        true,
                    ),
                };
                if last && share && !matches!(parse_message(&frame), Ok(Message::Error(_))) {
                    // A new session, initialized: every replica may serve it from now on.
                    let _ = this.share_session(&pump_session).await;
                }
                if let Err(e) = store
                    .append(&pump_session.id, &pump_stream, Some(frame))
                    .await
                {
                    tracing::warn!(session = %pump_session.id, error = %e, "could not store a message of a POST stream");
                }
                if last {
                    break;
                }
            }
            if this.config.stateless {
                this.end_session(&pump_session, "stateless request done");
            }
        });
        let tail = Tail {
            store: self.store.clone(),
            session: session.clone(),
            stream,
            cursor: None,
            first_batch: Vec::new(),
            end_on_response: true,
            priming: priming_id.map(|id| (id, Some(self.config.sse_retry.as_millis() as u64))),
            close,
            stop: self.shutdown.clone(),
            keep_alive: self.config.sse_keep_alive,
            _activity: activity,
            standalone: None,
        };
        sse_response(tail.into_body(), header_id.as_deref())
    }

    /// Priming events go to clients of 2025-11-25 or later, only with a configured store.
    fn priming_enabled(&self, session_id: &str) -> bool {
        self.resumable
            && self
                .server
                .session_protocol_version(session_id)
                .is_some_and(|v| v.as_str() >= "2025-11-25")
    }

    async fn get(self: Arc<Self>, request: Request<Body>) -> Response<Body> {
        let headers = request.headers();
        if !accepts(headers, "text/event-stream") {
            return error(
                StatusCode::NOT_ACCEPTABLE,
                error_codes::INVALID_REQUEST,
                "Accept must list text/event-stream",
            );
        }
        let session = match self.find_session(headers).await {
            Ok(s) => s,
            Err(r) => return r,
        };
        if let Err(r) = Self::check_protocol_version(headers) {
            return r;
        }
        let activity = session.activity();
        let last_event_id = header_str(headers, LAST_EVENT_ID).map(str::to_string);

        // Which stream, from where.
        let (stream, cursor, resumed) = match &last_event_id {
            Some(id) => match self.store.locate(&session.id, id).await {
                Ok(pos) => (pos.stream, Some(pos.event_id), true),
                Err(e) => return resume_error(e),
            },
            None => (
                STANDALONE_STREAM.to_string(),
                lock(&session.standalone_cursor).clone(),
                false,
            ),
        };
        let standalone = stream == STANDALONE_STREAM;
        let guard = if standalone {
            match session.attach_standalone(resumed, &self.shutdown) {
                Some(mut g) => {
                    // With shared sessions, this replica now appends the session's events.
                    if let Some(cluster) = &self.config.session_store {
                        if let Err(e) = cluster.attach_standalone(&session.id).await {
                            return super::cluster::unavailable(&e);
                        }
                        g.cluster = Some(cluster.clone());
                    }
                    Some(g)
                }
                None => {
                    return error(
                        StatusCode::CONFLICT,
                        error_codes::INVALID_REQUEST,
                        "this session already has a standalone SSE stream open",
                    );
                }
            }
        } else {
            None
        };
        // Read the first batch now, so that a resume that cannot be served is an HTTP error
        // rather than an empty stream that invites a reconnect loop.
        let (cursor, first_batch) = match self
            .store
            .read_after(&session.id, &stream, cursor.as_deref(), 256)
            .await
        {
            Ok(b) => (cursor, b),
            Err(StoreError::Expired(_)) if !resumed => {
                // A fresh standalone GET after the store trimmed events never delivered.
                tracing::warn!(session = %session.id, "undelivered standalone events were dropped");
                let kept = self
                    .store
                    .read_after(&session.id, &stream, None, 256)
                    .await
                    .unwrap_or_default();
                (None, kept)
            }
            Err(e) => return resume_error(e),
        };
        // A fresh stream advises its resume point (what was delivered so far) and `retry`.
        let priming = match &cursor {
            Some(c) if !resumed && self.priming_enabled(&session.id) => {
                Some((c.clone(), Some(self.config.sse_retry.as_millis() as u64)))
            }
            _ => None,
        };
        let tail = Tail {
            store: self.store.clone(),
            session: session.clone(),
            stream,
            cursor,
            first_batch,
            end_on_response: !standalone,
            priming,
            close: session.ended.child_token(),
            stop: match &guard {
                Some(g) => g.abort.clone(),
                None => self.shutdown.clone(),
            },
            keep_alive: self.config.sse_keep_alive,
            _activity: activity,
            standalone: guard,
        };
        sse_response(tail.into_body(), None)
    }

    async fn delete(self: Arc<Self>, request: Request<Body>) -> Response<Body> {
        let session = match self.find_session(request.headers()).await {
            Ok(s) => s,
            Err(r) => return r,
        };
        match self.delete_session(&session).await {
            Ok(()) => status_only(StatusCode::OK),
            Err(r) => r,
        }
    }
}

/// The HTTP answer to a `Last-Event-ID` that cannot be served.
fn resume_error(e: StoreError) -> Response<Body> {
    match e {
        StoreError::Malformed(_) | StoreError::Unknown(_) => {
            bad_request(format!("cannot resume: {e}"))
        }
        StoreError::Expired(_) => error(
            StatusCode::GONE,
            error_codes::INVALID_REQUEST,
            format!("cannot resume: {e}"),
        ),
        StoreError::Backend(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            error_codes::INTERNAL_ERROR,
            format!("cannot resume now: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_ranges() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        assert!(accepts(&h, "application/json") && accepts(&h, "text/event-stream"));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!accepts(&h, "text/event-stream"));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*;q=0.8"));
        assert!(accepts(&h, "text/event-stream"));
        h.insert(header::ACCEPT, HeaderValue::from_static("text/*"));
        assert!(accepts(&h, "text/event-stream") && !accepts(&h, "application/json"));
    }

    #[test]
    fn host_names_drop_ports() {
        assert_eq!(host_name("LocalHost:8080"), "localhost");
        assert_eq!(host_name("127.0.0.1"), "127.0.0.1");
        assert_eq!(host_name("[::1]:3000"), "[::1]");
        assert_eq!(host_name("evil.example"), "evil.example");
    }
}
