//! `rmcp-peer`: the peer server of the mcpbus benchmarks, built on `rmcp` (the official Rust MCP
//! SDK) with its recommended Streamable HTTP setup (`StreamableHttpService` with a
//! `LocalSessionManager`, default keep-alive, tools from the `#[tool_router]` macros).
//!
//! It offers what `mcpbus-bench` drives:
//!
//! - `POST/GET/DELETE /mcp`: MCP over Streamable HTTP with one tool, `whoami` (no arguments; a
//!   small structured result `{"sessionId", "agentId"}` plus its text, like `mcpbus serve`);
//!   `resources/subscribe` to any URI registers the session for fan-out.
//! - `POST /publish` (`Authorization: Bearer TOKEN`, body `{"topic", "payload"}`): sends one
//!   `notifications/resources/updated` to every session subscribed to `bench://topic/<topic>`
//!   (or to `topic` itself when it is such a URI),
//!   the payload travelling in the notification's `_meta.payload`; answers `{"delivered": n}`.
//! - `GET /healthz`: 200 with the counts of sessions with a subscription.
//!
//! rmcp has no event bus, so the server keeps a registry of the peer handles of subscribed
//! sessions and drops a session's entries when its handler is dropped (session closed) or a
//! send to it fails.
//!
//! Modes: by default rmcp answers every POST with an SSE stream (sessions on). `--json` turns on
//! rmcp's `json_response`, which rmcp 3.x applies only with `legacy_session_mode` off (its
//! stateless mode: no `Mcp-Session-Id`, no GET stream), so `--json` serves statelessly.
//!
//! `--nodelay` sets `TCP_NODELAY` on accepted connections. It is off by default, as in rmcp's
//! examples and in `mcpbus serve`: an SSE answer goes out in several writes, and without it the
//! later ones wait for the client's delayed ACK (about 40 ms on Linux).
//!
//! Usage: `rmcp-peer [--listen ADDR] [--json] [--nodelay] [--token TOKEN]`; the address also comes from
//! `RMCP_PEER_LISTEN` (default `127.0.0.1:0`), the token from `RMCP_PEER_TOKEN` or
//! `MCPBUS_PUBLISH_TOKEN`. Prints `rmcp-peer: listening on http://ADDR/mcp` on stderr.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use rmcp::handler::server::common::Extension;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    CallToolResult, Implementation, NotificationMetaObject, ResourceUpdatedNotification,
    ResourceUpdatedNotificationParam, ServerCapabilities, ServerConfig, ServerNotification,
    SubscribeRequestParams, UnsubscribeRequestParams,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde_json::{Value, json};

/// The rmcp release this peer was written against (Cargo.toml pins its minor version).
const RMCP_VERSION: &str = "3.9";

/// The URI prefix of the resources a topic maps to: `bench://topic/build/status`.
const TOPIC_URI_PREFIX: &str = "bench://topic/";

/// The peer handles of subscribed sessions: resource URI → handler id → peer.
#[derive(Default)]
struct Registry {
    by_uri: Mutex<HashMap<String, HashMap<u64, Peer<RoleServer>>>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<u64, Peer<RoleServer>>>> {
        // A panic while holding the lock leaves a map that is still consistent.
        self.by_uri.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, uri: String, id: u64, peer: Peer<RoleServer>) {
        self.lock().entry(uri).or_default().insert(id, peer);
    }

    fn remove(&self, uri: &str, id: u64) {
        let mut map = self.lock();
        if let Some(peers) = map.get_mut(uri) {
            peers.remove(&id);
            if peers.is_empty() {
                map.remove(uri);
            }
        }
    }

    fn remove_everywhere(&self, id: u64) {
        self.lock().retain(|_, peers| {
            peers.remove(&id);
            !peers.is_empty()
        });
    }

    fn peers_of(&self, uri: &str) -> Vec<(u64, Peer<RoleServer>)> {
        self.lock()
            .get(uri)
            .map(|peers| peers.iter().map(|(id, p)| (*id, p.clone())).collect())
            .unwrap_or_default()
    }

    fn subscriptions(&self) -> usize {
        self.lock().values().map(HashMap::len).sum()
    }
}

/// Removes a session's registrations when the last clone of its handler goes (the session
/// closed and rmcp dropped its service).
struct Unregister {
    id: u64,
    registry: Arc<Registry>,
}

impl Drop for Unregister {
    fn drop(&mut self) {
        self.registry.remove_everywhere(self.id);
    }
}

/// One session's handler (rmcp builds one per session through the service factory).
#[derive(Clone)]
struct PeerServer {
    id: u64,
    registry: Arc<Registry>,
    tool_router: ToolRouter<PeerServer>,
    _unregister: Arc<Unregister>,
}

#[tool_router]
impl PeerServer {
    /// A new session's handler.
    fn new(id: u64, registry: Arc<Registry>, tool_router: ToolRouter<PeerServer>) -> Self {
        PeerServer {
            id,
            registry: registry.clone(),
            tool_router,
            _unregister: Arc::new(Unregister { id, registry }),
        }
    }

    #[tool(description = "Your session id and agent id on this server")]
    async fn whoami(
        &self,
        Extension(parts): Extension<axum::http::request::Parts>,
    ) -> Result<CallToolResult, ErrorData> {
        let session = parts
            .headers
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok());
        Ok(CallToolResult::structured(
            json!({"sessionId": session, "agentId": "anonymous"}),
        ))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for PeerServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_resources_subscribe()
                .build(),
        )
        .with_server_info(Implementation::new("rmcp-peer", env!("CARGO_PKG_VERSION")))
    }

    #[allow(deprecated)] // resources/subscribe is the pre-2026-07-28 way the bench speaks.
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.registry
            .add(request.uri, self.id, context.peer.clone());
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.registry.remove(&request.uri, self.id);
        Ok(())
    }
}

/// What the HTTP routes besides `/mcp` share.
#[derive(Clone)]
struct AppState {
    registry: Arc<Registry>,
    token: Option<Arc<str>>,
}

/// The body of `POST /publish`.
#[derive(Deserialize)]
struct PublishBody {
    topic: String,
    #[serde(default)]
    payload: Value,
}

fn problem(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

/// Compares without an early exit.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn publish(State(state): State<AppState>, headers: HeaderMap, body: Json<Value>) -> Response {
    let Some(token) = &state.token else {
        return problem(StatusCode::FORBIDDEN, "no publish token configured");
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t);
    if !presented.is_some_and(|p| same_secret(p.as_bytes(), token.as_bytes())) {
        return problem(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    }
    let body: PublishBody = match serde_json::from_value(body.0) {
        Ok(b) => b,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("invalid body: {e}")),
    };
    // The topic names its resource, or is the resource URI itself.
    let uri = if body.topic.starts_with(TOPIC_URI_PREFIX) {
        body.topic.clone()
    } else {
        format!("{TOPIC_URI_PREFIX}{}", body.topic)
    };
    let mut meta = serde_json::Map::new();
    meta.insert("topic".into(), Value::String(body.topic));
    meta.insert("payload".into(), body.payload);
    let mut param = ResourceUpdatedNotificationParam::new(uri.clone());
    param.meta = Some(NotificationMetaObject(rmcp::model::MetaObject(meta)));
    let notification =
        ServerNotification::ResourceUpdatedNotification(ResourceUpdatedNotification::new(param));
    // Every send waits until the session's transport took the message: run them together.
    let peers = state.registry.peers_of(&uri);
    let sends = peers.iter().map(|(id, peer)| {
        let notification = notification.clone();
        async move { (*id, peer.send_notification(notification).await.is_ok()) }
    });
    let mut delivered = 0usize;
    for (id, ok) in futures::future::join_all(sends).await {
        if ok {
            delivered += 1;
        } else {
            state.registry.remove(&uri, id);
        }
    }
    Json(json!({"delivered": delivered})).into_response()
}

async fn healthz(State(state): State<AppState>) -> Response {
    Json(json!({"status": "ok", "subscriptions": state.registry.subscriptions()})).into_response()
}

/// The command line.
struct Options {
    listen: String,
    json: bool,
    nodelay: bool,
    token: Option<String>,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        listen: std::env::var("RMCP_PEER_LISTEN").unwrap_or_else(|_| "127.0.0.1:0".into()),
        json: false,
        nodelay: false,
        token: std::env::var("RMCP_PEER_TOKEN")
            .or_else(|_| std::env::var("MCPBUS_PUBLISH_TOKEN"))
            .ok(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => options.listen = args.next().ok_or("--listen needs ADDR")?,
            "--token" => options.token = Some(args.next().ok_or("--token needs TOKEN")?),
            "--json" => options.json = true,
            "--nodelay" => options.nodelay = true,
            "-h" | "--help" => {
                return Err(
                    "usage: rmcp-peer [--listen ADDR] [--json] [--nodelay] [--token TOKEN]".into(),
                );
            }
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rmcp-peer: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let options = parse_options()?;
    let registry = Arc::new(Registry::default());
    let next_id = Arc::new(AtomicU64::new(1));
    let tool_router = PeerServer::tool_router();
    let factory_registry = registry.clone();
    let mut config = StreamableHttpServerConfig::default();
    if options.json {
        // rmcp answers with a JSON body only in its stateless mode.
        config = config
            .with_legacy_session_mode(false)
            .with_json_response(true);
    }
    let cancel = config.cancellation_token.clone();
    let mcp = StreamableHttpService::new(
        move || {
            let id = next_id.fetch_add(1, Ordering::Relaxed);
            Ok(PeerServer::new(
                id,
                factory_registry.clone(),
                tool_router.clone(),
            ))
        },
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let state = AppState {
        registry,
        token: options.token.map(Arc::from),
    };
    let app = axum::Router::new()
        .route("/publish", post(publish))
        .route("/healthz", get(healthz))
        .with_state(state)
        .nest_service("/mcp", mcp);
    let addr: SocketAddr = options
        .listen
        .parse()
        .map_err(|e| format!("invalid --listen {:?}: {e}", options.listen))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("bind {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let mode = if options.json {
        "json (stateless)"
    } else {
        "sse (sessions)"
    };
    eprintln!("rmcp-peer: rmcp {RMCP_VERSION}, {mode} mode");
    eprintln!("rmcp-peer: listening on http://{local}/mcp");
    let shutdown = async move {
        shutdown_signal().await;
        cancel.cancel();
    };
    if options.nodelay {
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    } else {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    }
    .map_err(|e| e.to_string())
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
