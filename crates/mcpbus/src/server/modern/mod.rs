//! The 2026-07-28 era on the server (docs/protocol.md 6): no handshake and no session; every
//! request carries its revision, client and capabilities in `_meta`, every result says what it
//! is (`resultType`), a handler that needs input answers `input_required` instead of sending
//! the client a request, and change notifications flow on `subscriptions/listen` streams.
//!
//! Tool calls may run as tasks (the extension `io.modelcontextprotocol/tasks`, docs/protocol.md
//! 6.9; see [`crate::tasks`]).
//!
//! The handlers are the legacy ones (`requests/`): a modern request runs them with a
//! [`Context`] whose `ModernScope` answers `client()`, `log()` and the requests to the client.

mod input;
pub(crate) mod listen;
pub(crate) mod state;
mod task_listen;
mod task_run;
pub(crate) mod tasks;

use std::sync::{Arc, OnceLock};

use mcpbus_proto::error_codes;
use mcpbus_proto::jsonrpc::{ErrorObject, Request};
use mcpbus_proto::mcp::{self, methods};
use mcpbus_proto::modern::{self, RequestMeta, meta::SERVER_INFO};
use serde_json::{Map, Value, json};

use super::context::Context;
use super::requests::{completion, events_ext, prompts, resources, tools};
use input::{Driven, InputRound};
use mcpbus_proto::events_ext::methods as events_methods;
use task_run::TaskRun;

pub use listen::{DEFAULT_MAX_LISTENS, ServerChange};
pub use state::{DEFAULT_STATE_TTL, RequestStateKeys, StateKeyError};

/// `server/discover`.
pub(crate) const SERVER_DISCOVER: &str = "server/discover";
/// `subscriptions/listen`.
pub(crate) const SUBSCRIPTIONS_LISTEN: &str = "subscriptions/listen";

/// What one modern request tells about its client, and its rounds of input.
#[derive(Debug)]
pub(crate) struct ModernScope {
    pub(crate) meta: RequestMeta,
    pub(crate) input: InputRound,
    /// Set when the request is a tool call that runs (or may come to run) as a task.
    task: OnceLock<Arc<TaskRun>>,
}

impl ModernScope {
    /// Reads the request's `_meta` (`-32602` when a required member is missing or malformed,
    /// `-32022` for a revision not served), unless the transport read it already (`read`),
    /// and the answers it carries back.
    pub(crate) fn of_request(
        request: &Request,
        read: Option<RequestMeta>,
        keys: &Arc<RequestStateKeys>,
    ) -> Result<Self, ErrorObject> {
        let params = request.params.as_ref();
        let meta = match read {
            Some(meta) => meta,
            None => RequestMeta::from_params(params).map_err(ErrorObject::from)?,
        };
        if !modern::is_supported_protocol_version(&meta.protocol_version) {
            return Err(unsupported_version(&meta.protocol_version));
        }
        let input = InputRound::of_request(&request.method, params, keys)?;
        Ok(ModernScope {
            meta,
            input,
            task: OnceLock::new(),
        })
    }

    /// Makes the request's handler run under `run` (see [`tasks`]).
    pub(crate) fn attach_task(&self, run: Arc<TaskRun>) {
        let _ = self.task.set(run);
    }

    /// The task the request runs as, or may come to run as.
    pub(crate) fn task(&self) -> Option<&Arc<TaskRun>> {
        self.task.get()
    }

    /// The client as the handlers know it (the handshake era's shape).
    pub(crate) fn client(&self) -> super::ClientSession {
        let capabilities = serde_json::to_value(&self.meta.client_capabilities)
            .and_then(serde_json::from_value)
            .unwrap_or_default();
        super::ClientSession {
            protocol_version: self.meta.protocol_version.clone(),
            client_info: self
                .meta
                .client_info
                .clone()
                .unwrap_or_else(|| mcp::Implementation::new("unnamed-client", "")),
            capabilities,
        }
    }
}

/// `-32022` naming the revisions served here.
pub(crate) fn unsupported_version(requested: &str) -> ErrorObject {
    ErrorObject::unsupported_protocol_version(
        modern::SUPPORTED_PROTOCOL_VERSIONS.iter().copied(),
        requested,
    )
}

/// Whether a request that reaches a session without a handshake is of the modern era: it is
/// `server/discover`, or its `_meta` names a revision.
pub(crate) fn is_modern_request(request: &Request) -> bool {
    request.method == SERVER_DISCOVER
        || modern::protocol_version_of(request.params.as_ref()).is_some()
}

/// Answers one modern request.
pub(crate) async fn serve(request: Request, ctx: Context) -> Result<Value, ErrorObject> {
    serve_read(request, None, ctx).await
}

/// Answers one modern request whose `_meta` may have been read already (`meta`).
async fn serve_read(
    request: Request,
    meta: Option<RequestMeta>,
    mut ctx: Context,
) -> Result<Value, ErrorObject> {
    let scope = ModernScope::of_request(&request, meta, &ctx.server.inner.modern.state_keys)?;
    let scope = Arc::new(scope);
    ctx.modern = Some(scope.clone());
    let method = request.method.as_str();
    let params = request.params;
    let server = ctx.server.clone();
    let answer = match method {
        SERVER_DISCOVER => Ok(discover(&ctx)),
        methods::TOOLS_LIST => tools::list(params, &ctx).map(cacheable(&ctx)),
        methods::RESOURCES_LIST => resources::list(params, &ctx).map(cacheable(&ctx)),
        methods::RESOURCES_TEMPLATES_LIST => {
            resources::list_templates(params, &ctx).map(cacheable(&ctx))
        }
        methods::PROMPTS_LIST => prompts::list(params, &ctx).map(cacheable(&ctx)),
        methods::COMPLETION_COMPLETE => completion::complete(params, ctx).await,
        SUBSCRIPTIONS_LISTEN => listen::listen(params, ctx).await,
        events_methods::EVENTS_LIST => events_ext::list(params, &ctx),
        events_methods::EVENTS_POLL => events_ext::poll::poll(params, ctx).await,
        events_methods::EVENTS_STREAM => events_ext::stream::stream(params, ctx).await,
        events_methods::EVENTS_SUBSCRIBE => events_ext::webhook::subscribe(params, ctx).await,
        events_methods::EVENTS_UNSUBSCRIBE => events_ext::webhook::unsubscribe(params, &ctx).await,
        methods::TOOLS_CALL => tasks::call(&scope, params, ctx).await,
        m if tasks::is_task_method(m) && tasks::offered(&server) => {
            tasks::serve(m, params, &ctx, &scope).await
        }
        methods::PROMPTS_GET => drive(&scope, prompts::get(params, ctx)).await,
        methods::RESOURCES_READ => {
            let cache = cacheable(&ctx);
            drive(&scope, resources::read(params, ctx))
                .await
                .map(|v| if is_complete(&v) { cache(v) } else { v })
                .map_err(resource_not_found_as_invalid_params)
        }
        // `initialize`, `ping`, `logging/setLevel`, `resources/(un)subscribe`, the topic
        // events of the handshake era and its `tasks/result` and `tasks/list` do not exist
        // in this revision.
        other => Err(ErrorObject::method_not_found(other)),
    };
    answer.map(|result| complete(result, &server))
}

/// Runs a handler that may ask for input.
async fn drive<F>(scope: &ModernScope, handler: F) -> Result<Value, ErrorObject>
where
    F: std::future::Future<Output = Result<Value, ErrorObject>>,
{
    match scope.input.drive(handler).await {
        Driven::Done(answer) => answer,
        Driven::InputRequired(result) => Ok(result),
    }
}

/// `server/discover`: the revisions served, the capabilities, who the server is.
fn discover(ctx: &Context) -> Value {
    let inner = &ctx.server.inner;
    let mut caps = capabilities(&inner.capabilities());
    tasks::advertise(&mut caps, &ctx.server);
    if let Some(object) = caps.as_object_mut() {
        events_ext::advertise(object, &inner.hub);
    }
    let mut result = json!({
        "supportedVersions": modern::SUPPORTED_PROTOCOL_VERSIONS,
        "capabilities": caps,
    });
    if let Some(instructions) = &inner.instructions {
        result["instructions"] = json!(instructions);
    }
    cacheable(ctx)(result)
}

/// The handshake era's capabilities as 2026-07-28 writes them: no `tasks` and no handshake-era
/// `events` (`discover` adds the extensions' own), while the topic descriptors stay under
/// `experimental["mcpbus/events"]` as in the handshake era: the official SDKs keep only the
/// keys they know, and `experimental` is one of them.
fn capabilities(legacy: &mcp::ServerCapabilities) -> Value {
    let mut caps = serde_json::to_value(legacy).unwrap_or_else(|_| json!({}));
    if let Some(object) = caps.as_object_mut() {
        object.remove("tasks");
        object.remove("events");
    }
    caps
}

/// Adds the caching hints to a list or read result (docs/protocol.md 6.7).
fn cacheable(ctx: &Context) -> impl Fn(Value) -> Value + use<> {
    let config = &ctx.server.inner.modern;
    let (ttl_ms, scope) = (config.cache_ttl_ms, config.cache_scope);
    move |mut result| {
        if let Some(object) = result.as_object_mut() {
            object.insert("ttlMs".into(), json!(ttl_ms));
            object.insert("cacheScope".into(), json!(scope.as_str()));
        }
        result
    }
}

fn is_complete(result: &Value) -> bool {
    result.get("resultType").is_none_or(|t| t == "complete")
}

/// Marks a result complete unless it says otherwise, and names the server in its `_meta`.
fn complete(mut result: Value, server: &super::Server) -> Value {
    let Some(object) = result.as_object_mut() else {
        return result;
    };
    object
        .entry("resultType")
        .or_insert_with(|| json!("complete"));
    let meta = object
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(meta) = meta.as_object_mut() {
        meta.insert(SERVER_INFO.into(), json!(server.inner.info));
    }
    result
}

/// 2026-07-28 reports an unknown resource as invalid params (`-32602`), not `-32002`.
fn resource_not_found_as_invalid_params(mut e: ErrorObject) -> ErrorObject {
    if e.code == error_codes::RESOURCE_NOT_FOUND {
        e.code = error_codes::INVALID_PARAMS;
    }
    e
}

/// How a server serves the 2026-07-28 era (docs/protocol.md 6); the default serves it beside
/// the handshake era, with a random `requestState` key and no caching of lists.
#[derive(Debug, Clone)]
pub struct ModernConfig {
    pub(crate) enabled: bool,
    pub(crate) state_keys: Arc<RequestStateKeys>,
    pub(crate) cache_ttl_ms: u64,
    pub(crate) cache_scope: modern::CacheScope,
    pub(crate) max_listens: usize,
    pub(crate) tasks: crate::tasks::TaskConfig,
}

impl Default for ModernConfig {
    fn default() -> Self {
        ModernConfig {
            enabled: true,
            state_keys: Arc::new(RequestStateKeys::random()),
            cache_ttl_ms: 0,
            cache_scope: modern::CacheScope::Private,
            max_listens: listen::DEFAULT_MAX_LISTENS,
            tasks: crate::tasks::TaskConfig::default(),
        }
    }
}

impl ModernConfig {
    /// Serves the handshake era only: modern requests are refused as a handshake-era server
    /// refuses them (no session).
    pub fn disabled() -> Self {
        ModernConfig {
            enabled: false,
            ..Default::default()
        }
    }

    /// The keys that seal `requestState`; replicas behind one load balancer share them.
    pub fn state_keys(mut self, keys: RequestStateKeys) -> Self {
        self.state_keys = Arc::new(keys);
        self
    }

    /// The caching hints of list results, `server/discover` and `resources/read` (`ttlMs`,
    /// `cacheScope`); by default `0` and `private`: clients refetch every time.
    pub fn cache(mut self, ttl: std::time::Duration, scope: modern::CacheScope) -> Self {
        self.cache_ttl_ms = ttl.as_millis().try_into().unwrap_or(u64::MAX);
        self.cache_scope = scope;
        self
    }

    /// How many `subscriptions/listen` streams the server holds open at once (default 1024).
    pub fn max_listens(mut self, max: usize) -> Self {
        self.max_listens = max;
        self
    }

    /// Where tasks live and how long (the extension `io.modelcontextprotocol/tasks`); by
    /// default in this process's memory. Replicas behind one load balancer share one
    /// [`TaskStore`](crate::tasks::TaskStore).
    pub fn tasks(mut self, config: crate::tasks::TaskConfig) -> Self {
        self.tasks = config;
        self
    }
}

/// Answers one modern request outside any session (Streamable HTTP): what relates to it
/// (progress, log messages, listen notifications) goes to `related`, `cancel` stops it, and
/// `principal` is who its credentials authenticated (docs/protocol.md 3.6.1).
pub(crate) async fn serve_alone(
    server: &super::Server,
    request: Request,
    meta: RequestMeta,
    related: Arc<dyn crate::service::RelatedSink>,
    cancel: tokio_util::sync::CancellationToken,
    principal: Option<Arc<crate::server::Identity>>,
) -> Result<Value, ErrorObject> {
    let service = &server.inner.service;
    let routing = crate::service::Routing {
        related: Some(related),
    };
    let peer = crate::service::Peer::new(16, service.request_timeout, routing);
    let scoped = peer.scoped(request.id.clone());
    let ctx = Context {
        request: crate::service::request_context(&request, scoped, cancel),
        session: Arc::new(super::context::SessionState::of_request(peer, principal)),
        server: server.clone(),
        modern: None,
        input_key: None,
    };
    serve_read(request, Some(meta), ctx).await
}
