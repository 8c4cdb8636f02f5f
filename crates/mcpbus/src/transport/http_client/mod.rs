//! MCP Streamable HTTP, client side (revisions 2025-03-26 to 2025-11-25, and 2026-07-28 once
//! the client switches the transport to it).
//!
//! See [`HttpClientTransport`].

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use mcpbus_proto::headers;
use mcpbus_proto::jsonrpc::{Message, RequestId, parse_message};
use mcpbus_proto::mcp::methods;
use mcpbus_proto::sse::SseDecoder;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

mod auth;
mod error;
mod modern;
mod param_headers;
mod streams;

use error::HttpError;
use streams::{RequestExchange, run_get_stream};

pub(crate) use modern::{HttpHandle, Probe};

use super::{DEFAULT_MAX_LINE_BYTES, Inbound, Transport, TransportReader, TransportWriter};
use crate::client::oauth::OAuthConfig;
use crate::client::oauth::authorizer::Authorizer;

const SESSION_HEADER: HeaderName = HeaderName::from_static(headers::SESSION_ID);
const VERSION_HEADER: HeaderName = HeaderName::from_static(headers::PROTOCOL_VERSION);
const LAST_EVENT_ID: HeaderName = HeaderName::from_static(headers::LAST_EVENT_ID);
const ACCEPT_BOTH: HeaderValue = HeaderValue::from_static("application/json, text/event-stream");
const ACCEPT_SSE: HeaderValue = HeaderValue::from_static("text/event-stream");
const JSON: HeaderValue = HeaderValue::from_static("application/json");
/// The largest JSON body or single SSE event accepted from the server.
const MAX_MESSAGE_BYTES: usize = DEFAULT_MAX_LINE_BYTES;
/// How much of an error body is quoted in the error reported to the caller.
const ERROR_BODY_BYTES: usize = 1024;
/// Messages read from the server and not yet taken by the service loop.
const INBOUND_CAPACITY: usize = 256;
/// How long the messages after `notifications/initialized` wait for the server to answer the
/// standalone stream's `GET`.
const STANDALONE_OPEN_WAIT: Duration = Duration::from_secs(2);

/// Settings of an [`HttpClientTransport`].
#[derive(Clone, Debug)]
pub struct HttpClientConfig {
    /// Open the standalone `GET` stream after `notifications/initialized` (default `true`); the
    /// server sends its own requests and notifications (events) there.
    pub open_get_stream: bool,
    /// Extra headers sent on every HTTP request, e.g. `("Authorization", "Bearer …")`. The
    /// protocol's own headers (`Accept`, `Content-Type`, `Mcp-Session-Id`,
    /// `MCP-Protocol-Version`, `Last-Event-ID`) take precedence over these.
    pub headers: Vec<(String, String)>,
    /// How long to wait for the head of an HTTP answer, and for a whole `application/json`
    /// body (default 60 s). SSE bodies are not bounded: they last as long as the server keeps
    /// them open.
    pub request_timeout: Duration,
    /// How many resumptions in a row of a request's SSE stream may bring nothing new (no
    /// message, no new event id) before the request fails (default 10).
    pub max_resume_attempts: u32,
    /// The delay before reconnecting a stream until the server sends `retry` (default 1 s).
    pub initial_retry: Duration,
    /// The cap of the exponential backoff of the standalone stream after failures (default 10 s).
    pub max_backoff: Duration,
    /// OAuth 2.1 authorization (default none): with it, a `401` Bearer challenge makes the
    /// transport authorize and send the request again once, and a `403 insufficient_scope`
    /// triggers step-up authorization (see [`crate::client::oauth`]). The token it obtains
    /// replaces an `Authorization` header of [`headers`](Self::headers).
    pub oauth: Option<OAuthConfig>,
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        HttpClientConfig {
            open_get_stream: true,
            headers: Vec::new(),
            request_timeout: Duration::from_secs(60),
            max_resume_attempts: 10,
            initial_retry: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            oauth: None,
        }
    }
}

/// The client side of the MCP Streamable HTTP transport (revisions 2025-03-26 to 2025-11-25).
///
/// Every outgoing message is one `POST` to the endpoint. A request's answer comes back either as
/// one `application/json` body or as a `text/event-stream` that is read by a task of its own; a
/// stream that ends before the response is resumed with `GET` and `Last-Event-ID` after the
/// server's `retry` delay (SEP-1699 polling). After `notifications/initialized`, a standalone
/// `GET` stream carries the server's own requests and notifications (events); it is reconnected
/// with `Last-Event-ID` whenever it ends. Messages after `notifications/initialized` are posted
/// once the server has answered that first `GET` (or after 2 s), so the stream is open before
/// anything the client asks for can make the server send on it. Closing sends `DELETE` to end
/// the session.
///
/// The session id is read from the `Mcp-Session-Id` header of the answer to `initialize`. The
/// negotiated protocol version is read from that answer's body: the writer remembers the id of
/// the `initialize` request it sends, and the task reading that request's answer records
/// `result.protocolVersion`. Both are then sent as headers on every later HTTP request.
///
/// A `404` for a request that carried a session id means the server ended the session: the
/// transport re-initializes transparently (replays the remembered `initialize`, swallows its
/// answer, sends `notifications/initialized`) and retries the failed `POST` once. Server-side
/// state of the old session (subscriptions) is gone; [`crate::client::Client`] still reports the
/// first `initialize` result.
///
/// Requests are posted concurrently (a slow answer never stalls the connection), while
/// notifications and responses are posted in order, each awaited until accepted; so a
/// notification may reach the server before a request queued just before it. An HTTP failure of
/// a request's `POST` (4xx/5xx, unreachable server, unexpected content type, stream lost) is
/// turned into a JSON-RPC error answer (`-32603`, quoting the status and body) so that the caller
/// fails at once. Sending `notifications/cancelled` stops the work on that request's stream.
///
/// [`crate::client::Client`] probes the server's era first and, for a 2026-07-28 server,
/// switches the transport to that era: every request is then a sessionless POST with the
/// `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` and `Mcp-Param-*` headers, answered by JSON or
/// by an SSE stream that cannot be resumed; there is no `GET` stream and no `DELETE`, and
/// cancelling a request closes its stream instead of posting `notifications/cancelled`
/// (docs/client.md).
///
/// With [`HttpClientConfig::oauth`], every request carries the OAuth access token, and a `401`
/// or `403 insufficient_scope` answer runs the authorization flow (see
/// [`crate::client::oauth`]) before the request is sent again; a failed flow fails the request
/// with its reason.
///
/// Only `http://` MCP endpoints are supported (authorization servers may be `https://`).
///
/// ```no_run
/// # async fn run() -> mcpbus::Result<()> {
/// use mcpbus::client::Client;
/// use mcpbus::transport::HttpClientTransport;
///
/// let transport = HttpClientTransport::new("http://127.0.0.1:8080/mcp", Default::default())?;
/// let client = Client::builder("my-agent", "0.1.0").connect(transport).await?;
/// # Ok(()) }
/// ```
pub struct HttpClientTransport {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for HttpClientTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClientTransport")
            .field("url", &self.shared.uri)
            .finish()
    }
}

impl HttpClientTransport {
    /// A transport to the MCP endpoint at `url` (e.g. `http://127.0.0.1:8080/mcp`). Nothing is
    /// sent before the first message. Fails for a URL that is not absolute `http://`, and for
    /// an invalid extra header.
    pub fn new(url: &str, config: HttpClientConfig) -> crate::Result<Self> {
        let uri: Uri = url.parse().map_err(|source| HttpError::InvalidUrl {
            url: url.to_owned(),
            source,
        })?;
        match uri.scheme_str() {
            Some("http") if uri.authority().is_some() => {}
            Some("https") => return Err(HttpError::Tls.into()),
            _ => return Err(HttpError::NotHttp(url.to_owned()).into()),
        }
        let mut headers = Vec::with_capacity(config.headers.len());
        for (name, value) in &config.headers {
            let name =
                HeaderName::try_from(name.as_str()).map_err(|source| HttpError::HeaderName {
                    name: name.clone(),
                    source,
                })?;
            let value =
                HeaderValue::try_from(value.as_str()).map_err(|source| HttpError::HeaderValue {
                    name: name.clone(),
                    source,
                })?;
            headers.push((name, value));
        }
        let oauth = match &config.oauth {
            Some(oauth) => Some(Arc::new(
                Authorizer::new(oauth.clone(), &uri).map_err(HttpError::OAuthSetup)?,
            )),
            None => None,
        };
        // Requests are small writes: do not let them wait for a delayed ACK (Nagle).
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        Ok(HttpClientTransport {
            shared: Arc::new(Shared {
                http,
                uri,
                config,
                headers,
                state: Mutex::default(),
                reinit: tokio::sync::Mutex::new(()),
                shutdown: CancellationToken::new(),
                in_flight: Mutex::default(),
                tool_headers: param_headers::ToolHeaders::default(),
                oauth,
            }),
        })
    }

    /// The handle through which the client probes the server's era and switches the
    /// transport to 2026-07-28; it stays valid after the transport is split.
    pub(crate) fn handle(&self) -> HttpHandle {
        HttpHandle {
            shared: self.shared.clone(),
        }
    }
}

impl Transport for HttpClientTransport {
    type Reader = HttpClientReader;
    type Writer = HttpClientWriter;

    fn split(self) -> (HttpClientReader, HttpClientWriter) {
        let (tx, rx) = mpsc::channel(INBOUND_CAPACITY);
        (
            HttpClientReader { rx },
            HttpClientWriter {
                shared: self.shared,
                tx: Some(tx),
                get_started: false,
            },
        )
    }
}

/// The receiving half of an [`HttpClientTransport`]: messages from every HTTP stream, merged.
/// Ends once the writer is closed and every stream task has stopped.
#[derive(Debug)]
pub struct HttpClientReader {
    rx: mpsc::Receiver<Inbound>,
}

impl TransportReader for HttpClientReader {
    async fn recv(&mut self) -> Option<Inbound> {
        self.rx.recv().await
    }
}

/// The sending half of an [`HttpClientTransport`]: one `POST` per message.
///
/// Requests are posted by tasks of their own, so a long answer never stalls the connection;
/// notifications and responses are posted in order, each awaited until the server accepts it.
pub struct HttpClientWriter {
    shared: Arc<Shared>,
    /// Dropped on close so that the reader ends once the stream tasks have stopped too.
    tx: Option<Tx>,
    get_started: bool,
}

impl std::fmt::Debug for HttpClientWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClientWriter")
            .field("url", &self.shared.uri)
            .field("closed", &self.tx.is_none())
            .field("get_started", &self.get_started)
            .finish()
    }
}

impl TransportWriter for HttpClientWriter {
    async fn send(&mut self, frame: Bytes) -> io::Result<()> {
        let Some(tx) = &self.tx else {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the HTTP transport is closed",
            ));
        };
        let message = parse_message(&frame).ok();
        let body = frame;
        if let Some(version) = self.shared.modern_version() {
            let tx = tx.clone();
            self.send_modern(message, body, version, tx).await;
            return Ok(());
        }
        if let Some(Message::Request(request)) = message {
            let initialize = request.method == methods::INITIALIZE;
            if initialize {
                self.shared.state().init = Some((request.id.clone(), body.clone()));
            }
            let tx = tx.clone();
            self.spawn_exchange(request.id, initialize, None, body, tx);
            return Ok(());
        }

        let shared = &self.shared;
        let method = message.as_ref().and_then(Message::method);
        let initialized = method == Some(methods::INITIALIZED);
        let outcome = tokio::select! {
            r = shared.post_other(body, initialized) => r,
            _ = shared.shutdown.cancelled() => Err(HttpError::Closing),
        };
        match outcome {
            Ok(()) => {
                if initialized && shared.config.open_get_stream && !self.get_started {
                    self.get_started = true;
                    // Hold the next messages until the server has answered the GET (bounded):
                    // servers that send their own requests only on an open standalone stream
                    // (the TypeScript SDK's drops them otherwise) would lose those triggered by
                    // the client's first requests.
                    let (opened, answered) = tokio::sync::oneshot::channel();
                    tokio::spawn(run_get_stream(shared.clone(), tx.clone(), opened));
                    let _ = tokio::time::timeout(STANDALONE_OPEN_WAIT, answered).await;
                }
            }
            Err(e) => tracing::warn!(method, error = %e, "POST of a message failed"),
        }
        if let Some(Message::Notification(n)) = &message
            && n.method == methods::CANCELLED
        {
            self.cancel_in_flight(n.params.as_ref());
        }
        Ok(())
    }

    async fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    async fn close(&mut self) -> io::Result<()> {
        if self.tx.take().is_none() {
            return Ok(());
        }
        self.shared.shutdown.cancel();
        let session = self.shared.state().session_id.clone();
        if session.is_none() {
            return Ok(());
        }
        match self.shared.build(Method::DELETE, None, None) {
            // Ending the session is not worth an authorization flow: the current token or none.
            Ok((request, _)) => match self.shared.execute_once(request).await {
                Ok(resp) if resp.status().is_success() => {
                    tracing::debug!("session ended with DELETE")
                }
                Ok(resp) if resp.status() == StatusCode::METHOD_NOT_ALLOWED => {
                    tracing::debug!("the server does not let clients end sessions (405)")
                }
                Ok(resp) => {
                    tracing::debug!(status = %resp.status(), "DELETE of the session refused")
                }
                Err(e) => tracing::debug!(error = %e, "DELETE of the session failed"),
            },
            Err(e) => tracing::debug!(error = %e, "cannot build the DELETE request"),
        }
        Ok(())
    }
}

impl HttpClientWriter {
    /// Posts a request and reads its answer in a task of its own; `modern` holds the headers of
    /// a 2026-07-28 request.
    fn spawn_exchange(
        &mut self,
        id: RequestId,
        initialize: bool,
        modern: Option<modern::ExtraHeaders>,
        body: Bytes,
        tx: Tx,
    ) {
        let cancel = self.shared.shutdown.child_token();
        lock(&self.shared.in_flight).insert(id.clone(), cancel.clone());
        let exchange = RequestExchange {
            shared: self.shared.clone(),
            id,
            initialize,
            modern,
            tx,
        };
        tokio::spawn(exchange.run(body, cancel));
    }

    /// The caller gave up on the request `notifications/cancelled` names: stop reading or
    /// resuming its stream.
    fn cancel_in_flight(&self, params: Option<&serde_json::Value>) {
        if let Some(id) = params
            .and_then(|p| p.get("requestId"))
            .and_then(RequestId::from_value)
            && let Some(token) = lock(&self.shared.in_flight).remove(&id)
        {
            token.cancel();
        }
    }
}

impl Drop for HttpClientWriter {
    fn drop(&mut self) {
        // Dropped without close: stop the stream tasks so that the reader ends.
        if self.tx.is_some() {
            self.shared.shutdown.cancel();
        }
    }
}

type Tx = mpsc::Sender<Inbound>;

use crate::util::lock;

/// What the transport learned about the session.
#[derive(Default)]
struct State {
    session_id: Option<HeaderValue>,
    protocol_version: Option<HeaderValue>,
    /// The `initialize` request sent, replayed to re-initialize after a `404`.
    init: Option<(RequestId, Bytes)>,
    /// The 2026-07-28 revision, once the client switched the transport to that era.
    modern: Option<HeaderValue>,
}

/// State shared by the writer and the stream tasks.
struct Shared {
    http: HyperClient<HttpConnector, Full<Bytes>>,
    uri: Uri,
    config: HttpClientConfig,
    headers: Vec<(HeaderName, HeaderValue)>,
    state: Mutex<State>,
    /// Held while re-initializing, so that concurrent `404`s re-initialize once.
    reinit: tokio::sync::Mutex<()>,
    /// Cancelled on close: every task stops.
    shutdown: CancellationToken,
    /// Requests whose answer is awaited, to stop their task when the caller cancels them.
    in_flight: Mutex<HashMap<RequestId, CancellationToken>>,
    /// The `x-mcp-header` annotations of the listed tools (2026-07-28).
    tool_headers: param_headers::ToolHeaders,
    /// The OAuth client, when the configuration has one.
    oauth: Option<Arc<Authorizer>>,
}

/// How the body of a successful answer is framed.
enum BodyKind {
    Json,
    Sse,
    Other(String),
}

fn body_kind(headers: &HeaderMap) -> BodyKind {
    let ct = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if mime.eq_ignore_ascii_case("application/json") {
        BodyKind::Json
    } else if mime.eq_ignore_ascii_case("text/event-stream") {
        BodyKind::Sse
    } else {
        BodyKind::Other(ct.to_owned())
    }
}

/// Whether `inbound` answers the request `id`.
fn answers(inbound: &Inbound, id: &RequestId) -> bool {
    match inbound {
        Ok(Message::Response(r)) => r.id == *id,
        Ok(Message::Error(e)) => e.id.as_ref() == Some(id),
        _ => false,
    }
}

/// Where the messages of a stream go: to the reader, or nowhere (a replayed `initialize`).
#[derive(Clone, Copy)]
enum Sink<'a> {
    Reader(&'a Tx),
    Discard,
}

/// What a stream reader remembers across resumptions.
#[derive(Default)]
struct StreamProgress {
    /// The last event id seen; what `Last-Event-ID` carries on a resume.
    last_id: Option<String>,
    /// The server's last `retry`.
    retry: Option<Duration>,
    /// Messages and new ids seen, to tell a resumption that brought something.
    seen: u64,
}

/// How reading an SSE body ended.
enum SseEnd {
    /// The answer to the awaited request arrived.
    Answered,
    /// The server ended the body (or the connection broke; the reason is logged).
    Ended,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Builds a request with the protocol headers. Returns the session id it carries.
    fn build(
        &self,
        method: Method,
        body: Option<Bytes>,
        last_event_id: Option<&str>,
    ) -> Result<(Request<Full<Bytes>>, Option<HeaderValue>), HttpError> {
        let mut request = Request::new(Full::new(body.clone().unwrap_or_default()));
        *request.method_mut() = method.clone();
        *request.uri_mut() = self.uri.clone();
        let headers = request.headers_mut();
        for (name, value) in &self.headers {
            headers.append(name.clone(), value.clone());
        }
        if method == Method::POST {
            headers.insert(ACCEPT, ACCEPT_BOTH);
            headers.insert(CONTENT_TYPE, JSON);
        } else if method == Method::GET {
            headers.insert(ACCEPT, ACCEPT_SSE);
        }
        let (session, version) = {
            let state = self.state();
            (state.session_id.clone(), state.protocol_version.clone())
        };
        if let Some(s) = &session {
            headers.insert(SESSION_HEADER, s.clone());
        }
        if let Some(v) = version {
            headers.insert(VERSION_HEADER, v);
        }
        if let Some(id) = last_event_id {
            let value = HeaderValue::try_from(id).map_err(|source| HttpError::LastEventId {
                id: id.to_owned(),
                source,
            })?;
            headers.insert(LAST_EVENT_ID, value);
        }
        Ok((request, session))
    }

    /// POSTs `body`; after a `404` for our session, re-initializes and POSTs once more.
    async fn post(&self, body: &Bytes) -> Result<Response<Incoming>, HttpError> {
        let (request, session) = self.build(Method::POST, Some(body.clone()), None)?;
        let resp = self.execute(request).await?;
        if resp.status() == StatusCode::NOT_FOUND
            && let Some(session) = session
        {
            self.reinitialize(&session).await?;
            let (request, _) = self.build(Method::POST, Some(body.clone()), None)?;
            return self.execute(request).await;
        }
        Ok(resp)
    }

    /// POSTs a notification or a response: the server accepts it with `202` (or any 2xx).
    /// A `notifications/initialized` that finds the session ended is not retried: the
    /// re-initialization sends its own.
    async fn post_other(&self, body: Bytes, initialized: bool) -> Result<(), HttpError> {
        let resp = if initialized {
            let (request, session) = self.build(Method::POST, Some(body), None)?;
            let resp = self.execute(request).await?;
            if resp.status() == StatusCode::NOT_FOUND
                && let Some(session) = session
            {
                return self.reinitialize(&session).await;
            }
            resp
        } else {
            self.post(&body).await?
        };
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(self.http_error(resp).await)
        }
    }

    /// Describes a failed answer: its status and the start of its body.
    async fn http_error(&self, resp: Response<Incoming>) -> HttpError {
        let status = resp.status();
        let mut body = resp.into_body();
        let mut text = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while text.len() < ERROR_BODY_BYTES
                && let Some(Ok(frame)) = body.frame().await
            {
                if let Ok(data) = frame.into_data() {
                    text.extend_from_slice(&data);
                }
            }
        })
        .await;
        text.truncate(ERROR_BODY_BYTES);
        HttpError::Status {
            status,
            uri: self.uri.to_string(),
            body: String::from_utf8_lossy(&text).trim().to_owned(),
        }
    }

    /// Reads a whole `application/json` body as one message.
    async fn read_json(&self, resp: Response<Incoming>) -> Result<Inbound, HttpError> {
        let body = Limited::new(resp.into_body(), MAX_MESSAGE_BYTES);
        match tokio::time::timeout(self.config.request_timeout, body.collect()).await {
            Ok(Ok(collected)) => Ok(parse_message(&collected.to_bytes())),
            Ok(Err(source)) => Err(HttpError::ReadJson { source }),
            Err(_) => Err(HttpError::JsonTimeout),
        }
    }

    /// Records the session id of the answer to `initialize`.
    fn record_session(&self, headers: &HeaderMap) {
        let session = headers.get(SESSION_HEADER).filter(|v| {
            let ok = !v.is_empty() && v.as_bytes().iter().all(|b| (0x21..=0x7E).contains(b));
            if !ok {
                tracing::warn!("ignoring a session id with characters outside visible ASCII");
            }
            ok
        });
        self.state().session_id = session.cloned();
    }

    /// Records the negotiated protocol version from the answer to `initialize`.
    fn record_version(&self, inbound: &Inbound, init_id: &RequestId) {
        if let Ok(Message::Response(r)) = inbound
            && r.id == *init_id
            && let Some(version) = r.result.get("protocolVersion").and_then(|v| v.as_str())
        {
            match HeaderValue::try_from(version) {
                Ok(v) => self.state().protocol_version = Some(v),
                Err(_) => tracing::warn!(version, "the negotiated version is not a header value"),
            }
        }
    }

    /// Reads an SSE body, delivering its messages to `sink`, until it ends or the answer to
    /// `target` arrives (the rest of that chunk is still delivered).
    async fn read_sse(
        &self,
        body: Incoming,
        progress: &mut StreamProgress,
        target: Option<(&RequestId, bool)>,
        sink: Sink<'_>,
    ) -> SseEnd {
        let mut body = body;
        let mut decoder = SseDecoder::new();
        loop {
            let data = match body.frame().await {
                None => return SseEnd::Ended,
                Some(Err(e)) => {
                    tracing::debug!(error = %error::describe(&e), "SSE stream broke");
                    return SseEnd::Ended;
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => data,
                    Err(_) => continue, // trailers
                },
            };
            let mut answered = false;
            for mut event in decoder.push(&data) {
                if let Some(id) = event.id.take().filter(|id| !id.is_empty()) {
                    if progress.last_id.as_ref() != Some(&id) {
                        progress.seen += 1;
                    }
                    progress.last_id = Some(id);
                }
                if let Some(ms) = event.retry {
                    progress.retry = Some(Duration::from_millis(ms));
                }
                if !event.is_message() || event.data.trim().is_empty() {
                    continue; // priming event, or a type MCP does not use
                }
                progress.seen += 1;
                let inbound = parse_message(event.data.as_bytes());
                if let Some((id, initialize)) = target
                    && answers(&inbound, id)
                {
                    answered = true;
                    if initialize {
                        self.record_version(&inbound, id);
                    }
                }
                if let Sink::Reader(tx) = sink
                    && tx.send(inbound).await.is_err()
                {
                    return SseEnd::Ended; // nobody reads any more
                }
            }
            if answered {
                return SseEnd::Answered;
            }
            if decoder.pending_bytes() > MAX_MESSAGE_BYTES {
                tracing::warn!(
                    "an SSE event exceeds {MAX_MESSAGE_BYTES} bytes; dropping the stream"
                );
                return SseEnd::Ended;
            }
        }
    }

    /// The server ended the session `stale`: replays `initialize` without a session id, swallows
    /// its answer, and sends `notifications/initialized`. Does nothing if another task already
    /// replaced `stale`.
    async fn reinitialize(&self, stale: &HeaderValue) -> Result<(), HttpError> {
        let _guard = self.reinit.lock().await;
        let init = {
            let mut state = self.state();
            if state.session_id.as_ref() != Some(stale) {
                return Ok(());
            }
            let Some(init) = state.init.clone() else {
                return Err(HttpError::NothingToReplay);
            };
            state.session_id = None;
            (init, state.protocol_version.take())
        };
        let ((init_id, frame), old_version) = init;
        tracing::warn!(
            session = ?stale,
            "the server no longer knows the session (404): re-initializing; state held by the \
             server for the old session (subscriptions) is lost"
        );
        let outcome = self
            .replay_initialize(init_id, frame)
            .await
            .map_err(|e| HttpError::Reinitialize(Box::new(e)));
        if outcome.is_err() {
            // Keep the stale session so that the next 404 tries again.
            let mut state = self.state();
            if state.session_id.is_none() {
                state.session_id = Some(stale.clone());
                state.protocol_version = old_version;
            }
        }
        outcome
    }

    async fn replay_initialize(&self, init_id: RequestId, frame: Bytes) -> Result<(), HttpError> {
        let (request, _) = self.build(Method::POST, Some(frame), None)?;
        let resp = self.execute(request).await?;
        if !resp.status().is_success() {
            return Err(self.http_error(resp).await);
        }
        self.record_session(resp.headers());
        let answered = match body_kind(resp.headers()) {
            BodyKind::Json => {
                let inbound = self.read_json(resp).await?;
                self.record_version(&inbound, &init_id);
                answers(&inbound, &init_id)
            }
            BodyKind::Sse => {
                let mut progress = StreamProgress::default();
                let target = Some((&init_id, true));
                let end = self.read_sse(resp.into_body(), &mut progress, target, Sink::Discard);
                matches!(end.await, SseEnd::Answered)
            }
            BodyKind::Other(ct) => return Err(HttpError::ContentType(ct)),
        };
        if !answered {
            return Err(HttpError::InitializeUnanswered);
        }
        let note = Message::notification(methods::INITIALIZED, None).to_vec();
        let (request, _) = self.build(Method::POST, Some(Bytes::from(note)), None)?;
        let resp = self.execute(request).await?;
        if !resp.status().is_success() {
            return Err(self.http_error(resp).await);
        }
        tracing::info!("re-initialized with a new session");
        Ok(())
    }

    /// Opens a `GET` stream, resuming after `last_event_id` if given.
    async fn get(
        &self,
        last_event_id: Option<&str>,
    ) -> Result<(Response<Incoming>, Option<HeaderValue>), HttpError> {
        let (request, session) = self.build(Method::GET, None, last_event_id)?;
        Ok((self.execute(request).await?, session))
    }
}
