//! The 2026-07-28 era on the HTTP client transport.
//!
//! A transport starts in the handshake era; [`crate::client::Client`] probes the server with
//! [`HttpHandle::probe`] and, when the server is modern, switches the transport with
//! [`HttpHandle::use_modern`]. From then on every request is a POST of its own with the request
//! headers of [`super::headers`], and no session, standalone `GET` stream or `DELETE` exists. A
//! request's answer is one JSON body or an SSE stream of the notifications related to it and then
//! the answer; a stream that ends first fails the request (2026-07-28 streams cannot be resumed).
//! Errors come as JSON-RPC error bodies under `4xx` statuses, and are delivered as they are so that
//! the client sees their codes (`-32022`, `-32020`, ...). Cancelling a request closes its stream,
//! which is how 2026-07-28 cancels over HTTP: `notifications/cancelled` is never posted.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use mcpbus_proto::headers::{METHOD, PROTOCOL_VERSION};
use mcpbus_proto::jsonrpc::{ErrorObject, Message, Request, RequestId, parse_message};
use mcpbus_proto::mcp::{Tool, methods};
use tokio::sync::mpsc;

use super::param_headers::{header_params, request_headers};
use super::streams::RequestExchange;
use super::{
    BodyKind, HttpError, MAX_MESSAGE_BYTES, Shared, Sink, SseEnd, StreamProgress, Tx, answers,
    body_kind,
};

/// Extra headers of one modern request POST.
pub(super) type ExtraHeaders = Vec<(HeaderName, HeaderValue)>;

/// The client's handle on an [`super::HttpClientTransport`], kept after the transport went to
/// the service loop: it probes the server's era and switches the transport to 2026-07-28.
#[derive(Clone)]
pub(crate) struct HttpHandle {
    pub(super) shared: Arc<Shared>,
}

impl std::fmt::Debug for HttpHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpHandle")
            .field("url", &self.shared.uri)
            .finish()
    }
}

/// What a probe POST brought back.
#[derive(Debug)]
pub(crate) enum Probe {
    /// The server answered with this status and, if the body held one, this message.
    Answered {
        /// The HTTP status.
        status: StatusCode,
        /// The JSON-RPC message of the body (the answer to the probe, or an error without id).
        message: Option<Message>,
    },
    /// No answer within the probe's time.
    TimedOut,
}

impl HttpHandle {
    /// From now on the transport speaks 2026-07-28 at `version` (for the messages that do not
    /// name their revision in `_meta`).
    pub(crate) fn use_modern(&self, version: &str) -> crate::Result<()> {
        let value = HeaderValue::from_str(version).map_err(|source| HttpError::HeaderValue {
            name: HeaderName::from_static(PROTOCOL_VERSION),
            source,
        })?;
        self.shared.state().modern = Some(value);
        Ok(())
    }

    /// Keeps the tools whose `x-mcp-header` annotations are valid, remembering them for the
    /// `Mcp-Param-*` headers of later calls; drops the others with a warning, as 2026-07-28
    /// requires of HTTP clients.
    pub(crate) fn admit_tools(&self, tools: &mut Vec<Tool>) {
        let mut admitted = std::collections::HashMap::new();
        tools.retain(|tool| match header_params(&tool.input_schema) {
            Ok(params) => {
                if !params.is_empty() {
                    admitted.insert(tool.name.clone(), params);
                }
                true
            }
            Err(reason) => {
                tracing::warn!(tool = %tool.name, %reason, "dropping a tool with an invalid x-mcp-header annotation");
                false
            }
        });
        *self
            .shared
            .tool_headers
            .write()
            .unwrap_or_else(|p| p.into_inner()) = admitted;
    }

    /// POSTs `request` as a 2026-07-28 request and reads its answer, whatever the status,
    /// within `timeout`: how the client learns the server's era.
    pub(crate) async fn probe(&self, request: Request, timeout: Duration) -> crate::Result<Probe> {
        let shared = &self.shared;
        let frame = Bytes::from(Message::Request(request.clone()).to_vec());
        let version = HeaderValue::from_static(mcpbus_proto::modern::LATEST_PROTOCOL_VERSION);
        let headers = request_headers(&request, &version, &shared.tool_headers)?;
        let outcome: Result<Probe, HttpError> = if shared.oauth.is_some() {
            // The authorization flow may run in between (a user logging in): only the exchanges
            // with the server count against the probe's time.
            match shared.post_with_within(frame, &headers, timeout).await {
                Err(HttpError::NoAnswer { .. }) => Ok(Probe::TimedOut),
                Err(e) => Err(e),
                Ok(resp) => tokio::time::timeout(timeout, shared.probe_answer(resp, &request.id))
                    .await
                    .unwrap_or(Ok(Probe::TimedOut)),
            }
        } else {
            let exchange = async {
                let resp = shared.post_with(frame, &headers).await?;
                shared.probe_answer(resp, &request.id).await
            };
            tokio::time::timeout(timeout, exchange)
                .await
                .unwrap_or(Ok(Probe::TimedOut))
        };
        // As for any request over this transport, an HTTP failure reads as an error answer.
        outcome.map_err(|e| crate::Error::Remote(ErrorObject::internal(e)))
    }
}

impl Shared {
    /// The revision of the 2026-07-28 era, once the transport speaks it.
    pub(super) fn modern_version(&self) -> Option<HeaderValue> {
        self.state().modern.clone()
    }

    /// POSTs `body` with `headers` besides the transport's own (no session: none exists in
    /// 2026-07-28, and a `404` is an answer, not a lost session).
    pub(super) async fn post_with(
        &self,
        body: Bytes,
        headers: &ExtraHeaders,
    ) -> Result<Response<Incoming>, HttpError> {
        self.post_with_within(body, headers, self.config.request_timeout)
            .await
    }

    /// As [`post_with`](Self::post_with), waiting up to `timeout` for the answer's head.
    async fn post_with_within(
        &self,
        body: Bytes,
        headers: &ExtraHeaders,
        timeout: Duration,
    ) -> Result<Response<Incoming>, HttpError> {
        let (mut request, _) = self.build(Method::POST, Some(body), None)?;
        for (name, value) in headers {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        self.execute_within(request, timeout).await
    }

    /// What the answer to a probe says: its status and the message of its body.
    async fn probe_answer(
        &self,
        resp: Response<Incoming>,
        id: &RequestId,
    ) -> Result<Probe, HttpError> {
        let status = resp.status();
        let message = if status == StatusCode::OK {
            self.read_answer(resp, id).await
        } else {
            self.read_error_body(resp).await.1
        };
        Ok(Probe::Answered { status, message })
    }

    /// The answer to `id` in a `200` body (JSON, or SSE read until the answer); `None` when the
    /// body holds no such answer.
    async fn read_answer(&self, resp: Response<Incoming>, id: &RequestId) -> Option<Message> {
        match body_kind(resp.headers()) {
            BodyKind::Json => self.read_json(resp).await.ok()?.ok(),
            BodyKind::Sse => {
                let (tx, mut rx) = mpsc::channel(16);
                let reading = async move {
                    let mut progress = StreamProgress::default();
                    let target = Some((id, false));
                    self.read_sse(resp.into_body(), &mut progress, target, Sink::Reader(&tx))
                        .await;
                };
                let collecting = async {
                    let mut answer = None;
                    while let Some(inbound) = rx.recv().await {
                        if answers(&inbound, id) {
                            answer = inbound.ok();
                        }
                    }
                    answer
                };
                tokio::join!(reading, collecting).1
            }
            BodyKind::Other(_) => None,
        }
    }

    /// Reads (the start of) an error answer's body: its status, and the JSON-RPC message it
    /// holds, if it is one; otherwise the [`HttpError::Status`] quoting it.
    pub(super) async fn read_error_body(
        &self,
        resp: Response<Incoming>,
    ) -> (HttpError, Option<Message>) {
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_MESSAGE_BYTES);
        let bytes = match tokio::time::timeout(Duration::from_secs(2), body.collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            _ => Bytes::new(),
        };
        let message = parse_error_body(&bytes);
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(super::ERROR_BODY_BYTES)]);
        let error = HttpError::Status {
            status,
            uri: self.uri.to_string(),
            body: text.trim().to_owned(),
        };
        (error, message)
    }
}

/// The JSON-RPC message of an error answer's body. JSON-RPC writes `"id": null` on an error
/// whose request id the server could not tell, which the strict parser refuses: such an error
/// is read without an id.
fn parse_error_body(bytes: &[u8]) -> Option<Message> {
    if let Ok(message) = parse_message(bytes) {
        return Some(message);
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if !value.get("id").is_none_or(serde_json::Value::is_null) {
        return None;
    }
    let error: ErrorObject = serde_json::from_value(value.get("error")?.clone()).ok()?;
    Some(Message::error(None, error))
}

impl super::HttpClientWriter {
    /// Sends one message in the 2026-07-28 era.
    pub(super) async fn send_modern(
        &mut self,
        message: Option<Message>,
        frame: Bytes,
        version: HeaderValue,
        tx: Tx,
    ) {
        match message {
            Some(Message::Request(request)) => {
                self.spawn_modern_request(request, frame, &version, tx)
            }
            Some(Message::Notification(n)) if n.method == methods::CANCELLED => {
                // Closing the request's stream is the cancellation; nothing is posted.
                self.cancel_in_flight(n.params.as_ref());
            }
            Some(Message::Notification(n)) => {
                let headers = vec![
                    (HeaderName::from_static(PROTOCOL_VERSION), version),
                    match HeaderValue::from_str(&n.method) {
                        Ok(m) => (HeaderName::from_static(METHOD), m),
                        Err(_) => {
                            return tracing::warn!(method = %n.method, "cannot post a notification whose method is no header value");
                        }
                    },
                ];
                let shared = &self.shared;
                let outcome = tokio::select! {
                    r = shared.post_with(frame, &headers) => r,
                    _ = shared.shutdown.cancelled() => Err(HttpError::Closing),
                };
                match outcome {
                    Ok(resp) if resp.status().is_success() => {}
                    Ok(resp) => {
                        let (error, _) = shared.read_error_body(resp).await;
                        tracing::warn!(method = %n.method, %error, "the server refused a notification");
                    }
                    Err(e) => {
                        tracing::warn!(method = %n.method, error = %e, "POST of a notification failed")
                    }
                }
            }
            Some(Message::Response(_) | Message::Error(_)) => {
                // Only an answer to a server request could be one, and a 2026-07-28 server sends
                // none (input comes through `input_required`): there is nowhere to post it.
                tracing::debug!("dropping a response: 2026-07-28 clients never send responses");
            }
            None => tracing::warn!("dropping an outgoing frame that is no JSON-RPC message"),
        }
    }

    fn spawn_modern_request(
        &mut self,
        request: Request,
        frame: Bytes,
        version: &HeaderValue,
        tx: Tx,
    ) {
        match request_headers(&request, version, &self.shared.tool_headers) {
            Ok(headers) => self.spawn_exchange(request.id, false, Some(headers), frame, tx),
            Err(e) => {
                let error = Message::error(Some(request.id), ErrorObject::internal(e));
                tokio::spawn(async move {
                    let _ = tx.send(Ok(error)).await;
                });
            }
        }
    }
}

impl RequestExchange {
    /// One 2026-07-28 request: its POST and its answer; no resumption, no re-initialization.
    pub(super) async fn exchange_modern(
        &self,
        body: Bytes,
        headers: &ExtraHeaders,
    ) -> Result<(), HttpError> {
        let shared = &self.shared;
        let resp = shared.post_with(body, headers).await?;
        if resp.status() != StatusCode::OK {
            // 2026-07-28 servers answer errors under 400 and 404 with the JSON-RPC error in the
            // body: pass it on as it is, its code says more than the status.
            let (error, message) = shared.read_error_body(resp).await;
            // One request per POST: the error in its answer answers this request, whatever id
            // it carries (none or null when the server could not tell it; mcpbus's own server
            // writes "unknown" then, which every SDK and the MCP schema accept).
            return match message {
                Some(Message::Error(e)) => {
                    let answer = Message::error(Some(self.id.clone()), e.error);
                    let _ = self.tx.send(Ok(answer)).await;
                    Ok(())
                }
                _ => Err(error),
            };
        }
        match body_kind(resp.headers()) {
            BodyKind::Json => {
                let inbound = shared.read_json(resp).await?;
                let answered = answers(&inbound, &self.id);
                let _ = self.tx.send(inbound).await;
                if answered {
                    Ok(())
                } else {
                    Err(HttpError::NotTheAnswer)
                }
            }
            BodyKind::Sse => {
                let mut progress = StreamProgress::default();
                let target = Some((&self.id, false));
                let sink = Sink::Reader(&self.tx);
                match shared
                    .read_sse(resp.into_body(), &mut progress, target, sink)
                    .await
                {
                    SseEnd::Answered => Ok(()),
                    SseEnd::Ended => Err(HttpError::StreamEnded),
                }
            }
            BodyKind::Other(ct) => Err(HttpError::ContentType(ct)),
        }
    }
}
