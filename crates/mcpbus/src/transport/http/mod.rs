//! The Streamable HTTP server transport (MCP 2025-03-26 to 2025-11-25) as a tower `Service`.
//!
//! One endpoint takes `POST` (a message), `GET` (the session's standalone SSE stream, or the
//! resumption of any stream with `Last-Event-ID`) and `DELETE` (end the session). Requests are
//! answered as one JSON body, or as an SSE stream when the handler sends something before its
//! answer (progress, logs, requests to the client). Every SSE message carries an id and is kept
//! in the [`EventStore`], so a client that reconnects gets what it missed. `events/emit`
//! notifications travel on the standalone stream.
//!
//! Mount it in axum with [`StreamableHttpService::into_router`] or as a service, or run it with
//! [`serve_http`].
//!
//! Inside: this file holds the configuration and `HttpInner`, which starts and ends sessions;
//! `post.rs` and `get.rs` answer those methods; `wire.rs` checks headers and shapes responses;
//! `directory.rs` is where sessions are found (`LocalSessions` in memory, `SharedSessions` in
//! `shared_sessions.rs` with other replicas); `session.rs` is one session and the routing of
//! its messages; `stream.rs` writes every SSE body from the event store.

mod accept;
mod auth;
mod directory;
mod get;
mod modern;
mod modern_headers;
mod post;
mod session;
mod shared_sessions;
mod stalled;
mod stream;
mod wire;

pub use accept::{ConnectionLimits, ConnectionStats, serve_router};

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use mcpbus_proto::error_codes;
use mcpbus_proto::headers::SESSION_ID;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cluster::SessionStore;
use crate::server::{
    ClientSession, EventDelivery, Identity, RunningSession, Server, new_session_id,
};
use crate::service::{RelatedSink, Routing};
use crate::store::{EventStore, MemoryEventStore, MemoryEventStoreConfig};

use directory::{LocalSessions, SessionDirectory};
use session::{HttpSession, HttpTransport, RequestRouter, lock};
use shared_sessions::SharedSessions;

/// How a request's answer is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseMode {
    /// JSON when the answer is the first thing the handler sends, SSE otherwise.
    #[default]
    Auto,
    /// Always one JSON body; what the handler sends before its answer goes to the GET stream.
    Json,
    /// Always an SSE stream.
    Sse,
}

/// Settings of the Streamable HTTP server.
#[derive(Clone)]
pub struct HttpConfig {
    /// How answers are sent (default: [`ResponseMode::Auto`]).
    pub response_mode: ResponseMode,
    /// No sessions: every POST is served on its own; GET and DELETE answer 405.
    pub stateless: bool,
    /// A session without requests or open streams for this long ends (default 30 minutes;
    /// must be positive; not allowed in stateless mode).
    pub session_idle_timeout: Option<Duration>,
    /// The largest accepted POST body (default 4 MiB; larger: 413).
    pub max_body_bytes: usize,
    /// How long a POST body may take to arrive whole once its headers are in (default 30 s;
    /// slower: 408 and the connection closed).
    pub body_read_timeout: Duration,
    /// How long a request's headers may take to arrive ([`serve_http`]; default 10 s; slower:
    /// the connection is closed).
    pub header_read_timeout: Duration,
    /// How long a client may take no byte of what the server has to write, a stream it
    /// stopped reading in practice ([`serve_http`]; default 30 s; longer: the connection is
    /// reset and counted; `None`: no bound). What it fell behind on was bounded meanwhile (a
    /// GET stream drops its oldest events, counted; a push stream reads the log again); a
    /// resumable stream can be resumed.
    pub stalled_stream_timeout: Option<Duration>,
    /// The most sessions at once (default 10,000; more: 503).
    pub max_sessions: usize,
    /// The most 2026-07-28 requests in flight at once, listen streams included (default
    /// 10,000; more: 503).
    pub max_modern_requests: usize,
    /// Check `Host` (421) and `Origin` (403) against the allow-lists (default on).
    pub dns_rebinding_protection: bool,
    /// Allowed `Host` names, with or without a port (default: `localhost`, `127.0.0.1`, `[::1]`).
    pub allowed_hosts: Option<Vec<String>>,
    /// Allowed `Origin`s (e.g. `http://localhost:5173`), besides those on allowed hosts.
    pub allowed_origins: Vec<String>,
    /// The event store of resumable streams. When set, SSE streams open with a priming event
    /// for clients of 2025-11-25 or later. When not set, a small internal store still gives
    /// every message an id and lets a client resume after brief disconnects.
    pub event_store: Option<Arc<dyn EventStore>>,
    /// The `retry` advised in priming events (default 1 s).
    pub sse_retry: Duration,
    /// A comment is sent on idle SSE streams this often (default 15 s).
    pub sse_keep_alive: Option<Duration>,
    /// Sessions shared with the other replicas of a deployment (e.g. `mcpbus-redis`): any
    /// replica serves any session. Needs a shared `event_store` too; not with `stateless`.
    pub session_store: Option<Arc<dyn SessionStore>>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            response_mode: ResponseMode::Auto,
            stateless: false,
            session_idle_timeout: Some(Duration::from_secs(30 * 60)),
            max_body_bytes: 4 * 1024 * 1024,
            body_read_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            stalled_stream_timeout: Some(accept::DEFAULT_STALLED_STREAM_TIMEOUT),
            max_sessions: 10_000,
            max_modern_requests: 10_000,
            dns_rebinding_protection: true,
            allowed_hosts: None,
            allowed_origins: Vec::new(),
            event_store: None,
            sse_retry: Duration::from_secs(1),
            sse_keep_alive: Some(Duration::from_secs(15)),
            session_store: None,
        }
    }
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("response_mode", &self.response_mode)
            .field("stateless", &self.stateless)
            .field("session_idle_timeout", &self.session_idle_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("body_read_timeout", &self.body_read_timeout)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("stalled_stream_timeout", &self.stalled_stream_timeout)
            .field("max_sessions", &self.max_sessions)
            .field("max_modern_requests", &self.max_modern_requests)
            .field("dns_rebinding_protection", &self.dns_rebinding_protection)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("allowed_origins", &self.allowed_origins)
            .field("event_store", &self.event_store.is_some())
            .field("session_store", &self.session_store.is_some())
            .finish()
    }
}

/// A configuration the server refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpConfigError {
    /// `session_idle_timeout` must be positive.
    #[error("session_idle_timeout must be a positive duration")]
    IdleTimeoutNotPositive,
    /// Stateless mode has no sessions to time out.
    #[error("session_idle_timeout is not supported in stateless mode")]
    IdleTimeoutInStatelessMode,
    /// Shared sessions need a shared event store to carry their streams.
    #[error("a session_store needs an event_store shared by the same replicas")]
    SessionStoreWithoutEventStore,
    /// Stateless mode has no sessions to share.
    #[error("a session_store is not supported in stateless mode")]
    SessionStoreInStatelessMode,
    /// `stalled_stream_timeout` must be positive (`None` turns the bound off).
    #[error("stalled_stream_timeout must be a positive duration")]
    StalledStreamTimeoutNotPositive,
}

/// The endpoint's state, shared by every request and session task: the one place sessions
/// are started and ended.
pub(crate) struct HttpInner {
    pub(crate) server: Server,
    pub(crate) config: HttpConfig,
    pub(crate) store: Arc<dyn EventStore>,
    /// Whether the user configured the store (priming events are sent only then).
    pub(crate) resumable: bool,
    /// The sessions served here, and what other replicas learn about them.
    pub(crate) sessions: Box<dyn SessionDirectory>,
    pub(crate) shutdown: CancellationToken,
    /// 2026-07-28 requests being answered (they have no session to count them).
    pub(crate) modern_in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

/// The Streamable HTTP endpoint as a tower `Service` (clonable; clones share sessions).
#[derive(Clone)]
pub struct StreamableHttpService {
    inner: Arc<HttpInner>,
}

impl std::fmt::Debug for StreamableHttpService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamableHttpService")
            .field("config", &self.inner.config)
            .field("sessions", &self.session_count())
            .finish()
    }
}

impl HttpConfig {
    /// Refuses settings that contradict each other.
    fn validate(&self) -> Result<(), HttpConfigError> {
        if let Some(t) = self.session_idle_timeout {
            if self.stateless {
                return Err(HttpConfigError::IdleTimeoutInStatelessMode);
            }
            if t.is_zero() {
                return Err(HttpConfigError::IdleTimeoutNotPositive);
            }
        }
        if self.stalled_stream_timeout.is_some_and(|t| t.is_zero()) {
            return Err(HttpConfigError::StalledStreamTimeoutNotPositive);
        }
        if self.session_store.is_some() {
            if self.stateless {
                return Err(HttpConfigError::SessionStoreInStatelessMode);
            }
            if self.event_store.is_none() {
                return Err(HttpConfigError::SessionStoreWithoutEventStore);
            }
        }
        Ok(())
    }

    /// The store of every SSE stream, and whether the user configured it.
    fn event_store_or_internal(&self) -> (Arc<dyn EventStore>, bool) {
        match &self.event_store {
            Some(store) => (store.clone(), true),
            None => {
                let internal = MemoryEventStore::new(MemoryEventStoreConfig {
                    max_events_per_stream: 1024,
                    ttl: self
                        .session_idle_timeout
                        .unwrap_or(Duration::from_secs(1800))
                        * 2,
                });
                (Arc::new(internal), false)
            }
        }
    }
}

impl StreamableHttpService {
    /// A service for `server`. Must be called within a tokio runtime (it starts the idle
    /// reaper).
    pub fn new(server: Server, config: HttpConfig) -> Result<Self, HttpConfigError> {
        config.validate()?;
        let (store, resumable) = config.event_store_or_internal();
        let inner = Arc::new_cyclic(|http| {
            let sessions: Box<dyn SessionDirectory> = match &config.session_store {
                Some(shared) => {
                    Box::new(SharedSessions::new(shared.clone(), &config, http.clone()))
                }
                None => Box::new(LocalSessions::default()),
            };
            HttpInner {
                server,
                config,
                store,
                resumable,
                sessions,
                shutdown: CancellationToken::new(),
                modern_in_flight: Default::default(),
            }
        });
        if let Some(timeout) = inner.config.session_idle_timeout {
            tokio::spawn(reap_idle(
                Arc::downgrade(&inner),
                timeout,
                inner.shutdown.clone(),
            ));
        }
        Ok(StreamableHttpService { inner })
    }

    /// Sessions open right now.
    pub fn session_count(&self) -> usize {
        self.inner.sessions.local().len()
    }

    /// Ends every session and closes every stream; later requests get 503.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
        for s in self.inner.sessions.local().all() {
            self.inner.end_session(&s, "server shutdown");
        }
    }

    /// An axum router serving the endpoint at `path` (e.g. `/mcp`), and, when the server is
    /// an OAuth resource server, its metadata (docs/auth.md).
    pub fn into_router(self, path: &str) -> axum::Router {
        let metadata = self
            .inner
            .server
            .resource_server()
            .map(|rs| rs.metadata_router());
        let router = axum::Router::new().route_service(path, self);
        match metadata {
            Some(metadata) => router.merge(metadata),
            None => router,
        }
    }

    /// Handles one HTTP request.
    pub async fn handle(&self, request: http::Request<Body>) -> http::Response<Body> {
        self.inner.clone().handle(request).await
    }
}

impl<B> tower::Service<http::Request<B>> for StreamableHttpService
where
    B: axum::body::HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move { Ok(inner.handle(request.map(Body::new)).await) })
    }
}

impl HttpInner {
    /// Answers one request: the checks every method shares, then POST, GET or DELETE.
    pub(crate) async fn handle(self: Arc<Self>, request: Request<Body>) -> Response<Body> {
        if let Err(r) = wire::check_host_and_origin(&self.config, request.headers()) {
            return r;
        }
        if self.shutdown.is_cancelled() {
            return wire::error(
                StatusCode::SERVICE_UNAVAILABLE,
                error_codes::INTERNAL_ERROR,
                "server is shutting down",
            );
        }
        let identity = match auth::authenticate(&self, request.headers()).await {
            Ok(identity) => identity,
            Err(refused) => return refused,
        };
        match *request.method() {
            Method::POST => post::post(self, request, identity).await,
            // Without a session, GET and DELETE belong to no era: 2026-07-28 has neither.
            // `Allow` still lists GET and DELETE when the server has sessions: they are
            // allowed, with one.
            Method::GET | Method::DELETE if self.without_session(&request) => {
                wire::method_not_allowed(self.config.stateless)
            }
            Method::GET if !self.config.stateless => get::get(self, request, identity).await,
            Method::DELETE if !self.config.stateless => self.delete(request, identity).await,
            _ => wire::method_not_allowed(self.config.stateless),
        }
    }

    /// A GET or DELETE that names no session, on a server that serves 2026-07-28.
    fn without_session(&self, request: &Request<Body>) -> bool {
        self.server.serves_modern() && !request.headers().contains_key(SESSION_ID)
    }

    /// DELETE: ends the session for every replica, then here.
    async fn delete(
        &self,
        request: Request<Body>,
        caller: Option<Arc<Identity>>,
    ) -> Response<Body> {
        let session = match self
            .find_session(request.headers(), caller.as_deref())
            .await
        {
            Ok(s) => s,
            Err(r) => return r,
        };
        if let Err(e) = self.sessions.end_everywhere(&session).await {
            return e.into();
        }
        self.end_session(&session, "deleted by client");
        wire::status_only(StatusCode::OK)
    }

    /// The session a request of `caller` names: 400 without the header, 404 if unknown or
    /// ended, 401 or 403 if it belongs to another subject (docs/auth.md).
    pub(crate) async fn find_session(
        &self,
        headers: &HeaderMap,
        caller: Option<&Identity>,
    ) -> Result<Arc<HttpSession>, Response<Body>> {
        let Some(id) = wire::header_str(headers, SESSION_ID) else {
            return Err(wire::bad_request("missing Mcp-Session-Id header"));
        };
        let session = self.sessions.find(id).await?;
        auth::check_owner(self, &session, caller)?;
        Ok(session)
    }

    /// Starts a session belonging to `identity`; for stateless use, one that counts as
    /// initialized.
    pub(crate) async fn create_session(
        self: &Arc<Self>,
        preinitialized: Option<ClientSession>,
        identity: Option<Arc<Identity>>,
    ) -> Arc<HttpSession> {
        let id = new_session_id().into();
        self.start_session(id, preinitialized, true, identity).await
    }

    /// Starts serving session `id` of `identity` here: a new one (`fresh`), or one another
    /// replica created.
    pub(crate) async fn start_session(
        self: &Arc<Self>,
        id: Arc<str>,
        preinitialized: Option<ClientSession>,
        fresh: bool,
        identity: Option<Arc<Identity>>,
    ) -> Arc<HttpSession> {
        let (session, running) = self.spawn_service(id, preinitialized, identity);
        self.sessions.started(&session);
        self.place_standalone_cursor(&session, fresh).await;
        if fresh && !self.config.stateless {
            self.sessions.local().insert(session.clone());
        }
        let this = Arc::downgrade(self);
        let watched = session.clone();
        tokio::spawn(async move {
            running.wait().await;
            if let Some(this) = this.upgrade() {
                this.forget(&watched).await;
            }
        });
        session
    }

    /// Starts the session's service loop: its input is fed by POST bodies, what it sends is
    /// routed to the POST of the request it relates to, or to the standalone stream.
    fn spawn_service(
        &self,
        id: Arc<str>,
        preinitialized: Option<ClientSession>,
        identity: Option<Arc<Identity>>,
    ) -> (Arc<HttpSession>, RunningSession) {
        let (tx, rx) = mpsc::channel(64);
        let router = Arc::new(RequestRouter::default());
        let sink: Arc<dyn RelatedSink> = router.clone();
        let ended = CancellationToken::new();
        let transport = HttpTransport {
            inbound: rx,
            ended: ended.clone(),
            session_id: id.clone(),
            store: self.store.clone(),
        };
        let standalone = session::StandaloneSink {
            session_id: id.clone(),
            store: self.store.clone(),
            ended: ended.clone(),
        };
        let routing = Routing {
            related: Some(sink),
        };
        let running = self.server.start_with(
            transport,
            routing,
            self.event_delivery(standalone),
            preinitialized,
            id.clone(),
            identity.clone(),
        );
        let peer = running.peer().clone();
        let events = self.server.events().clone();
        let mut session = HttpSession::new(id, tx, ended, router, peer, events);
        session.identity = identity;
        let session = Arc::new(session);
        (session, running)
    }

    /// Where a new session's events go: straight into its standalone stream when the store
    /// appends without waiting; through the session's queue and writer otherwise; with shared
    /// sessions, to whichever replica holds the stream (it attaches the session then); nowhere
    /// in stateless mode, which has no standalone stream.
    fn event_delivery(&self, standalone: session::StandaloneSink) -> EventDelivery {
        if self.config.stateless || self.config.session_store.is_some() {
            EventDelivery::Elsewhere
        } else if self.store.appends_without_waiting() {
            EventDelivery::Sink(Arc::new(standalone))
        } else {
            EventDelivery::Queue
        }
    }

    /// Sets where a first GET of the session starts reading its standalone stream.
    async fn place_standalone_cursor(&self, session: &HttpSession, fresh: bool) {
        let id = &session.id;
        if !fresh {
            // Another replica created it: a first GET here continues after what is stored.
            match self.store.last_id(id, session::STANDALONE_STREAM).await {
                Ok(last) => *lock(&session.standalone_cursor) = last,
                Err(e) => {
                    tracing::warn!(session = %id, error = %e, "could not find the standalone stream")
                }
            }
        } else if !self.config.stateless {
            // Anchor the standalone stream: a first GET reads everything after this point,
            // including events emitted before it connected.
            match self
                .store
                .append(id, session::STANDALONE_STREAM, None)
                .await
            {
                Ok(anchor) => *lock(&session.standalone_cursor) = Some(anchor),
                Err(e) => {
                    tracing::warn!(session = %id, error = %e, "could not anchor the standalone stream")
                }
            }
        }
    }

    /// Makes a session that just initialized reachable from every replica; one that cannot be
    /// shared ends (the client gets 503 and may retry).
    pub(crate) async fn share_new_session(
        &self,
        session: &HttpSession,
    ) -> Result<(), Response<Body>> {
        if let Err(e) = self.sessions.share(session).await {
            self.end_session(session, "could not be shared");
            return Err(e.into());
        }
        Ok(())
    }

    /// Ends a session: its service loop stops, and [`forget`](Self::forget) removes it.
    pub(crate) fn end_session(&self, session: &HttpSession, reason: &'static str) {
        // Gone for new requests at once; waiting requests and open streams see `ended`.
        self.sessions.local().remove(&session.id);
        self.server.set_end_reason(&session.id, reason);
        session.ended.cancel();
        session.peer.close();
    }

    /// Removes an ended session from every map, closes its streams, drops its stored events
    /// (with shared sessions, only when it ended for every replica).
    async fn forget(&self, session: &HttpSession) {
        self.sessions.local().remove_copy(session);
        session.ended.cancel();
        if !self.sessions.may_drop_streams(session) {
            return;
        }
        // Let open streams write what is already stored before it goes.
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.store.remove_session(&session.id).await;
    }

    /// Priming events go to clients of 2025-11-25 or later, only with a configured store.
    pub(crate) fn priming_enabled(&self, session_id: &str) -> bool {
        self.resumable
            && self
                .server
                .session_protocol_version(session_id)
                .is_some_and(|v| v.as_str() >= "2025-11-25")
    }
}

async fn reap_idle(
    inner: std::sync::Weak<HttpInner>,
    timeout: Duration,
    shutdown: CancellationToken,
) {
    let period = (timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = shutdown.cancelled() => return,
        }
        let Some(inner) = inner.upgrade() else { return };
        inner.sessions.touch_active().await;
        let now = Instant::now();
        let idle: Vec<_> = inner
            .sessions
            .local()
            .all()
            .into_iter()
            .filter(|s| s.idle_for(now) >= timeout)
            .collect();
        for s in idle {
            inner.end_session(&s, "idle timeout");
        }
    }
}

/// Serves `server` at `path` on `listener` until `shutdown` completes, then ends every session
/// and closes every stream. DNS-rebinding protection stays on only when the listener is bound
/// to a loopback address or allowed hosts are configured.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    path: &str,
    server: Server,
    mut config: HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    if config.dns_rebinding_protection && config.allowed_hosts.is_none() && !addr.ip().is_loopback()
    {
        tracing::warn!(%addr, "not bound to loopback: Host checking is off; set allowed hosts to turn it on");
        config.dns_rebinding_protection = false;
    }
    let limits = ConnectionLimits {
        header_read_timeout: config.header_read_timeout,
        stalled_stream_timeout: config.stalled_stream_timeout,
        stats: server.metrics().connections().clone(),
    };
    let service = StreamableHttpService::new(server, config).map_err(std::io::Error::other)?;
    let app = service.clone().into_router(path);
    let stopper = service.clone();
    let shutdown = async move {
        shutdown.await;
        stopper.shutdown();
    };
    serve_router(listener, app, limits, shutdown).await
}
