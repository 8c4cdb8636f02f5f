//! `mcpbus serve` over HTTP: the MCP endpoint, `POST /publish`, `GET /healthz`,
//! `GET /metrics` and the dashboard.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode, header};
use mcpbus::events::access::Caller;
use mcpbus::events::{EmitError, Event};
use mcpbus::server::auth::BearerTokens;
use mcpbus::server::oauth::require_scopes;
use mcpbus::server::{Identity, Server};
use mcpbus::store::{MemoryEventStore, MemoryEventStoreConfig};
use mcpbus::transport::http::{
    ConnectionLimits, HttpConfig, ResponseMode, StreamableHttpService, serve_router,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::{Config, ConfigError};
use crate::serve::ServeError;

/// The body of `POST /publish`: the fields of `events/emit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct PublishBody {
    /// The concrete topic.
    pub topic: String,
    /// The payload (any JSON; null when absent).
    #[serde(default)]
    pub payload: Value,
    /// `urgent`, `high`, `normal` or `low`. A name, not [`EventPriority`] directly: that type
    /// reads unknown names as normal (right for receivers), which would silently downgrade a
    /// publisher's typo.
    pub priority: Option<String>,
    /// Keep as the topic's retained value (default: the topic's setting).
    pub retained: Option<bool>,
    /// Who produced the event.
    pub source: Option<String>,
    /// RFC 3339 expiry.
    pub expires_at: Option<String>,
    /// The event id (default: a new ULID).
    pub event_id: Option<String>,
}

#[derive(Clone)]
struct AppState {
    server: Server,
    token: Option<Arc<str>>,
    /// The `[auth]` bearer tokens: with topic permissions, their holders publish what the
    /// rules grant them.
    tokens: BearerTokens,
    mcp: StreamableHttpService,
    /// The scope an OAuth access token needs for `POST /publish` (with `[auth.oauth]`).
    publish_scope: Option<Arc<str>>,
}

/// The subject the shared publish token publishes as (docs/auth.md): deny rules may name it.
pub(crate) const PUBLISH_TOKEN_SUBJECT: &str = "publish-token";

/// Builds the HTTP configuration of the MCP endpoint from the file's `[http]` section.
pub(crate) fn http_config(
    config: &Config,
    backend: Option<&mcpbus_redis::RedisBackend>,
) -> Result<HttpConfig, ConfigError> {
    let h = &config.http;
    let response_mode = match h.response_mode.as_str() {
        "auto" => ResponseMode::Auto,
        "json" => ResponseMode::Json,
        "sse" => ResponseMode::Sse,
        other => return Err(ConfigError::ResponseMode(other.to_owned())),
    };
    if h.session_idle_timeout_secs == 0 {
        return Err(ConfigError::ZeroIdleTimeout);
    }
    if h.stalled_stream_timeout_ms == Some(0) {
        return Err(ConfigError::ZeroStalledStreamTimeout);
    }
    let (event_store, session_store) = match backend {
        Some(b) => (b.event_store(), Some(b.session_store())),
        None => {
            let store: Arc<dyn mcpbus::store::EventStore> =
                Arc::new(MemoryEventStore::new(MemoryEventStoreConfig {
                    max_events_per_stream: h.replay_events_per_stream.max(1),
                    ttl: Duration::from_secs(h.session_idle_timeout_secs.saturating_mul(2)),
                }));
            (store, None)
        }
    };
    let d = HttpConfig::default();
    let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
    Ok(HttpConfig {
        response_mode,
        header_read_timeout: ms(h.header_read_timeout_ms, d.header_read_timeout),
        body_read_timeout: ms(h.body_read_timeout_ms, d.body_read_timeout),
        stalled_stream_timeout: h
            .stalled_stream_timeout_ms
            .map(Duration::from_millis)
            .or(d.stalled_stream_timeout),
        session_idle_timeout: Some(Duration::from_secs(h.session_idle_timeout_secs)),
        allowed_hosts: h.allowed_hosts.clone(),
        allowed_origins: h.allowed_origins.clone(),
        event_store: Some(event_store),
        session_store,
        ..HttpConfig::default()
    })
}

/// Serves until SIGINT or SIGTERM, then closes every stream and session.
pub(crate) async fn serve(
    config: &Config,
    server: Server,
    listen: Option<String>,
    backend: Option<&mcpbus_redis::RedisBackend>,
) -> Result<(), ServeError> {
    let addr = listen.unwrap_or_else(|| config.http.listen.clone());
    let authenticated = config.auth.oauth.is_some() || !config.auth.tokens.is_empty();
    crate::oauth_config::check_exposure(&addr, authenticated, config.auth.allow_unauthenticated)
        .await
        .map_err(ServeError::Unprotected)?;
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(source) => return Err(ServeError::Listen { addr, source }),
    };
    let local = listener.local_addr().map_err(ServeError::LocalAddr)?;
    let mut http = http_config(config, backend)?;
    if http.allowed_hosts.is_none() && !local.ip().is_loopback() {
        tracing::warn!(%local, "not bound to loopback and no [http] allowed_hosts: Host checking is off");
        http.dns_rebinding_protection = false;
    }
    let limits = ConnectionLimits {
        header_read_timeout: http.header_read_timeout,
        stalled_stream_timeout: http.stalled_stream_timeout,
        stats: server.metrics().connections().clone(),
    };
    let mcp = StreamableHttpService::new(server.clone(), http)?;
    crate::trim::spawn(server.clone(), limits.stats.clone());
    let token = config
        .publish
        .token
        .clone()
        .or_else(|| std::env::var("MCPBUS_PUBLISH_TOKEN").ok())
        .filter(|t| !t.is_empty())
        .map(Arc::from);
    let tokens = config
        .auth
        .to_tokens(|v| std::env::var(v).ok())
        .map_err(ConfigError::from)?;
    if token.is_none() && server.access_rules().is_empty() {
        tracing::info!("no publish token configured: POST /publish refuses every request");
    }
    let state = AppState {
        server: server.clone(),
        token: token.clone(),
        tokens,
        mcp: mcp.clone(),
        publish_scope: config.auth.oauth.as_ref().map(|o| o.publish_scope().into()),
    };
    let app = axum::Router::new()
        .route("/publish", post(publish))
        .route("/healthz", get(healthz))
        .with_state(state)
        .route_service(&config.http.path, mcp.clone());
    let app = with_resource_metadata(app, &server, &config.http.path);
    let (app, dashboard) =
        crate::dashboard::with_dashboard(app, config, &server, &mcp, local, token)?;
    let app = with_metrics(app, config, &server, dashboard)?;
    // The line scripts and tests wait for: the address actually bound.
    tracing::info!(url = %format!("http://{local}{}", config.http.path), "listening");
    eprintln!("mcpbus: listening on http://{local}{}", config.http.path);
    let shutdown = async move {
        shutdown_signal().await;
        tracing::info!("shutting down: closing streams and sessions");
        mcp.shutdown();
    };
    serve_router(listener, app, limits, shutdown)
        .await
        .map_err(ServeError::Serve)?;
    wait_for_sessions_to_end(&server).await;
    Ok(())
}

/// Adds the OAuth resource server's metadata documents (docs/auth.md), when there is one.
fn with_resource_metadata(app: axum::Router, server: &Server, path: &str) -> axum::Router {
    let Some(oauth) = server.resource_server() else {
        return app;
    };
    let suffix =
        oauth.metadata_paths()[0].trim_start_matches("/.well-known/oauth-protected-resource");
    if suffix != path.trim_end_matches('/') {
        // Clients derive the metadata's address from the URL they were given: a resource URL
        // whose path is not the endpoint's works only behind a proxy that maps one to the other.
        tracing::warn!(
            resource = %oauth.config().resource,
            path,
            "[auth.oauth] resource names another path than [http] path"
        );
    }
    app.merge(oauth.metadata_router())
}

/// Adds `GET /metrics` (unless `[metrics] enabled = false`) and counts every answer;
/// `dashboard` is the dashboard's path when it is served.
fn with_metrics(
    app: axum::Router,
    config: &Config,
    server: &Server,
    dashboard: Option<String>,
) -> Result<axum::Router, ConfigError> {
    let path = config.metrics.route(&config.http.path)?.map(str::to_owned);
    let routes = crate::metrics_http::Routes {
        server: server.clone(),
        mcp_path: config.http.path.clone(),
        metrics_path: path.clone(),
        dashboard_path: dashboard,
    };
    let app = match &path {
        Some(path) => app.route(
            path,
            get(crate::metrics_http::metrics).with_state(routes.clone()),
        ),
        None => app,
    };
    Ok(app.layer(axum::middleware::from_fn_with_state(
        routes,
        crate::metrics_http::count,
    )))
}

/// How long the ended sessions get to finish (and log their end) once the listener is closed.
const SESSION_END_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Sessions end in tasks of their own: without a connection left open, the listener closes at
/// once, and returning then would cut their last steps (and their "session ended" lines) off.
async fn wait_for_sessions_to_end(server: &Server) {
    let deadline = tokio::time::Instant::now() + SESSION_END_GRACE;
    while server.session_count() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
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
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// Compares without an early exit, so that timing does not reveal how much of a guess matched.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `POST /publish`: from the holder of the shared publish token, of an `[auth]` bearer token
/// (with topic permissions configured), or of an OAuth access token granting the publish scope
/// (docs/auth.md). What each may publish on is the topic permissions' call.
async fn publish(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    // Checked before anything else: a bad body without a credential is still 401.
    match publisher(&state, &headers).await {
        Ok(caller) => publish_event(&state, caller, &headers, &body).await,
        Err(refused) => refused,
    }
}

/// Who calls `POST /publish`, as the topic permissions see it, or the answer of a refused
/// request.
///
/// The shared publish token publishes as [`PUBLISH_TOKEN_SUBJECT`] with every right the deny
/// rules leave it. With topic permissions configured, an `[auth]` bearer token also publishes,
/// as its identity, what the rules grant it. With `[auth.oauth]`, an access token granting the
/// publish scope publishes as its identity. Without any of these the endpoint is off.
async fn publisher(state: &AppState, headers: &HeaderMap) -> Result<Caller, Response> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        // The auth scheme is case-insensitive (RFC 9110 11.1): `bearer` is `Bearer`.
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token);
    let rules = state.server.access_rules();
    if let (Some(token), Some(p)) = (&state.token, presented)
        && same_secret(p.as_bytes(), token.as_bytes())
    {
        let identity = Identity::named(PUBLISH_TOKEN_SUBJECT);
        return Ok(Caller::authenticated(Arc::new(identity)).privileged());
    }
    if !rules.is_empty()
        && let Some(identity) = presented.and_then(|p| state.tokens.identity(p))
    {
        return Ok(Caller::authenticated(identity));
    }
    let (Some(oauth), Some(scope)) = (state.server.resource_server(), &state.publish_scope) else {
        return Err(match (&state.token, rules.is_empty()) {
            (None, true) => problem(
                StatusCode::FORBIDDEN,
                "publishing over HTTP is disabled: set [publish] token or MCPBUS_PUBLISH_TOKEN \
                 (or [auth.oauth], for access tokens)",
            ),
            _ => challenged(
                problem(StatusCode::UNAUTHORIZED, "missing or wrong bearer token"),
                "Bearer",
            ),
        });
    };
    let required = [scope.to_string()];
    let Some(token) = presented else {
        let r = problem(
            StatusCode::UNAUTHORIZED,
            "missing bearer token: send the publish token or an OAuth access token",
        );
        return Err(challenged(r, &oauth.challenge_with_scopes(None, &required)));
    };
    let verified = match oauth.verify_token(token).await {
        Ok(identity) => require_scopes(&identity, &required).map(|()| identity),
        Err(e) => Err(e),
    };
    match verified {
        Ok(identity) => Ok(Caller::authenticated(Arc::new(identity))),
        Err(e) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
            if status == StatusCode::SERVICE_UNAVAILABLE {
                let message = format!("cannot verify the access token now: {e}");
                return Err(problem(status, message));
            }
            let challenge = oauth.challenge_with_scopes(Some(&e), &required);
            Err(challenged(problem(status, e.to_string()), &challenge))
        }
    }
}

/// `response` with a `WWW-Authenticate` challenge.
fn challenged(mut response: Response, challenge: &str) -> Response {
    if let Ok(value) = http::HeaderValue::from_str(challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// Publishes the event of an authenticated request, if the topic permissions let `caller`
/// publish on its topic.
async fn publish_event(
    state: &AppState,
    caller: Caller,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        );
    }
    let body: PublishBody = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => return problem(StatusCode::BAD_REQUEST, format!("invalid body: {e}")),
    };
    let access = state.server.access_rules();
    if let Err(denied) = access.check_publish(&caller, &body.topic) {
        return problem(StatusCode::FORBIDDEN, denied.to_string());
    }
    let mut event = match crate::serve::with_options(
        Event::new(body.topic, body.payload),
        body.priority.as_deref(),
        body.retained,
        body.expires_at,
    ) {
        Ok(e) => e,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if let Some(s) = body.source {
        event = event.source(s);
    }
    if let Some(id) = body.event_id {
        event = event.event_id(id);
    }
    match state.server.events().publish(event).await {
        Ok(report) => {
            let answer = json!({
                "eventId": report.event_id,
                "delivered": report.delivered,
                "retained": report.retained,
                "cursor": report.cursor,
            });
            Json(answer).into_response()
        }
        // Not stored: the publisher must know, and may retry.
        Err(e @ EmitError::Log(_)) => problem(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(
            e @ (EmitError::InvalidTopic(_)
            | EmitError::InvalidExpiresAt(_)
            | EmitError::AlreadyExpired(_)),
        ) => problem(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e @ EmitError::UndeclaredTopic(_)) => {
            problem(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
        }
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn healthz(State(state): State<AppState>) -> Response {
    let stats = state.server.events().stats();
    let connections = state.server.metrics().connections();
    Json(json!({
        "status": "ok",
        "sessions": state.mcp.session_count(),
        "subscriptions": stats.subscriptions,
        "eventsEmitted": stats.emitted,
        "deliveries": stats.deliveries,
        "dropped": stats.dropped,
        "webhookSubscriptions": state.server.webhook_subscriptions(),
        // This request's own connection is one of them.
        "connections": connections.open(),
        "stalledClosed": connections.stalled_closed(),
    }))
    .into_response()
}
