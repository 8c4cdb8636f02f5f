//! The MCP server: a builder to declare tools, resources, prompts and topics, and sessions that
//! serve clients over any [`Transport`].
//!
//! A tool's input schema is derived from its handler's argument type, and its handler returns
//! anything [`IntoToolResult`]: text, [`Json`], a full
//! [`CallToolResult`](mcpbus_proto::mcp::CallToolResult), or a `Result` of these with a
//! [`ToolError`] (`?` converts the SDK's errors, including a refused event).
//!
//! ```no_run
//! use mcpbus::events::{Event, TopicSpec};
//! use mcpbus::server::{Context, Json, Server};
//! use schemars::JsonSchema;
//! use serde::Deserialize;
//! use serde_json::json;
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct Build {
//!     /// The project to build.
//!     project: String,
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::builder("ci", "1.0.0")
//!     .topic(TopicSpec::content("build/+").description("Build status per project").retained(true))
//!     .tool("build", "Starts a build", |args: Build, ctx: Context| async move {
//!         let topic = format!("build/{}", args.project);
//!         let report = ctx.events().publish(Event::new(topic, json!({"state": "queued"}))).await?;
//!         Ok(Json(json!({"eventId": report.event_id})))
//!     })
//!     .build()?;
//! server.serve(mcpbus::transport::stdio()).await;
//! # Ok(()) }
//! ```

pub mod auth;
mod identity;
pub use identity::Identity;
mod bridge;
mod changes;
mod context;
mod dispatch;
pub mod modern;
pub mod oauth;
pub(crate) mod permissions;
pub(crate) mod requests;
mod router;
mod session;
mod tool;
pub mod topic_resources;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use mcpbus_proto::events::{EXPERIMENTAL_EVENTS, EventsCapability};
use mcpbus_proto::jsonrpc::ErrorObject;
use mcpbus_proto::mcp::{
    CompleteRequestParams, CompleteResult, GetPromptResult, Implementation,
    InitializeRequestParams, Prompt, PromptsCapability, ReadResourceResult, Resource,
    ResourceTemplate, ResourcesCapability, ServerCapabilities, Tool, ToolsCapability,
};
use mcpbus_proto::topic::TopicError;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::events::{
    DeliveryConfig, EventHub, EventLog, EventSink, MemoryEventLog, Principal, QueueSink, TopicSpec,
};
use crate::service::{Routing, ServiceConfig, ServiceHandle, spawn_routed_service};
use crate::transport::Transport;

pub use bridge::EventTools;
pub use context::{ClientSession, Context};
pub use tool::{IntoToolResult, Json, NoArgs, ToolError, ToolSpec};

use context::{SessionState, lock};
use router::{PromptEntry, Registry, ResourceEntry, TemplateEntry, ToolEntry, UriTemplate};
use tool::{raw_tool, typed_tool};

/// Maps a session to its agent id (docs/protocol.md 2.5); by default the agent id is the session id.
pub type AgentIdentity = Arc<dyn Fn(&str, &InitializeRequestParams) -> String + Send + Sync>;

/// Why a server could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A declared topic pattern is invalid.
    #[error("declared topic {pattern:?}: {source}")]
    Topic {
        /// The offending pattern.
        pattern: String,
        /// What is wrong with it.
        source: TopicError,
    },
    /// A resource template is not a supported URI template.
    #[error("{0}")]
    Template(#[from] TemplateError),
    /// The webhook configuration is unusable (an allow-list entry, an extra root certificate).
    #[error("{0}")]
    Webhooks(#[from] crate::webhooks::WebhookSetupError),
}

/// Why a resource template's URI is not a supported URI template (RFC 6570 level 1, literal
/// text and `{name}` variables, and level 2's `{+name}`, whose value may span `/`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// A `{` has no matching `}`.
    #[error("unclosed '{{' in URI template {template:?}")]
    Unclosed {
        /// The URI template.
        template: String,
    },
    /// A `{...}` is not a variable name (ASCII letters, digits, `_`), with `+` before it or not.
    #[error("unsupported expression {{{expression}}} in URI template {template:?}")]
    UnsupportedExpression {
        /// The URI template.
        template: String,
        /// What stands between the braces.
        expression: String,
    },
    /// Two variables follow each other with no literal text to tell where one ends.
    #[error("adjacent variables in URI template {template:?}")]
    AdjacentVariables {
        /// The URI template.
        template: String,
    },
}

/// Where a session's events go.
pub(crate) enum EventDelivery {
    /// Through the connection's bounded outgoing queue (stdio, child processes).
    Queue,
    /// To a sink of the transport's (HTTP: the session's standalone stream).
    Sink(Arc<dyn EventSink>),
    /// Nowhere from this session's start: a replica attaches the session when it holds its
    /// stream (shared sessions).
    Elsewhere,
}

pub(crate) struct ServerInner {
    pub(crate) info: Implementation,
    pub(crate) instructions: Option<String>,
    pub(crate) registry: Registry,
    pub(crate) hub: EventHub,
    pub(crate) page_size: usize,
    pub(crate) agent_identity: Option<AgentIdentity>,
    service: ServiceConfig,
    sessions: Mutex<HashMap<Arc<str>, Arc<SessionState>>>,
    pub(crate) modern: modern::ModernConfig,
    pub(crate) changes: modern::listen::ChangeBus,
    /// Webhook delivery, when configured (docs/protocol.md 3.6).
    pub(crate) webhooks: Option<crate::webhooks::Webhooks>,
    /// The bearer tokens of the HTTP endpoint (docs/protocol.md 3.6.1).
    pub(crate) bearer_tokens: auth::BearerTokens,
    /// The OAuth resource server of the HTTP endpoint (docs/auth.md).
    pub(crate) resource_server: Option<oauth::ResourceServer>,
}

impl ServerInner {
    pub(crate) fn offers_resources(&self) -> bool {
        !self.registry.resources.is_empty() || !self.registry.templates.is_empty()
    }

    pub(crate) fn capabilities(&self) -> ServerCapabilities {
        let events = self.hub.capability();
        ServerCapabilities {
            logging: Some(Map::new()),
            completions: self.registry.completion.as_ref().map(|_| Map::new()),
            prompts: (!self.registry.prompts.is_empty()).then_some(PromptsCapability {
                list_changed: Some(true),
            }),
            resources: self.offers_resources().then_some(ResourcesCapability {
                subscribe: Some(true),
                list_changed: Some(true),
            }),
            tools: (!self.registry.tools.is_empty()).then_some(ToolsCapability {
                list_changed: Some(true),
            }),
            experimental: events.as_ref().and_then(experimental_events),
            events,
            ..Default::default()
        }
    }
}

/// `capabilities.experimental` with the events capability under [`EXPERIMENTAL_EVENTS`]: the
/// official SDKs drop the top-level `events` member, which they do not know, but keep this one.
fn experimental_events(events: &EventsCapability) -> Option<Map<String, Value>> {
    let value = serde_json::to_value(events).ok()?;
    Some(Map::from_iter([(EXPERIMENTAL_EVENTS.to_owned(), value)]))
}

/// An MCP server. Clonable: every clone serves with the same tools, resources and event hub.
#[derive(Clone)]
pub struct Server {
    pub(crate) inner: Arc<ServerInner>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("name", &self.inner.info.name)
            .field("tools", &self.inner.registry.tools.len())
            .field("sessions", &self.session_count())
            .finish()
    }
}

/// A session being served.
#[derive(Debug)]
pub struct RunningSession {
    /// The session id (128 random bits, hex).
    pub session_id: Arc<str>,
    handle: ServiceHandle,
}

impl RunningSession {
    /// The handle to the client of this session.
    pub fn peer(&self) -> &crate::service::Peer {
        self.handle.peer()
    }

    /// Ends the session: queued messages are flushed, then the transport is closed.
    pub fn close(&self) {
        self.handle.peer().close();
    }

    /// Waits until the session has ended.
    pub async fn wait(self) {
        self.handle.wait().await
    }
}

/// A new session id: 128 random bits as 32 lowercase hex characters.
pub(crate) fn new_session_id() -> String {
    crate::util::random_hex(16)
}

impl Server {
    /// Starts building a server with its name and version.
    pub fn builder(name: impl Into<String>, version: impl Into<String>) -> ServerBuilder {
        ServerBuilder {
            info: Implementation::new(name, version),
            instructions: None,
            registry: Registry::default(),
            topics: Vec::new(),
            events_instructions: None,
            page_size: 100,
            agent_identity: None,
            service: ServiceConfig::default(),
            template_errors: Vec::new(),
            event_log: None,
            event_delivery: DeliveryConfig::default(),
            modern: modern::ModernConfig::default(),
            webhooks: None,
            bearer_tokens: auth::BearerTokens::default(),
            resource_server: None,
            retained_updates: false,
            access: Default::default(),
        }
    }

    /// The event hub, to publish events to subscribed sessions.
    pub fn events(&self) -> &EventHub {
        &self.inner.hub
    }

    /// How many webhook subscriptions are held (docs/protocol.md 3.6); 0 without webhooks.
    pub fn webhook_subscriptions(&self) -> usize {
        self.inner.webhooks.as_ref().map_or(0, |w| w.len())
    }

    /// Allows webhook callback URLs under `origin` (`http(s)://host[:port]`) for the rest of the
    /// process, past the `https` and public-address rules and nothing else (docs/protocol.md
    /// 3.6.5): e.g. a test harness's receiver on loopback, while every other private
    /// destination stays refused. Returns the origin as matched.
    pub fn allow_webhook_origin(
        &self,
        origin: &str,
    ) -> Result<String, crate::webhooks::InvalidOrigin> {
        let webhooks = self.inner.webhooks.as_ref();
        webhooks
            .ok_or(crate::webhooks::InvalidOrigin::NoWebhooks)?
            .allow_origin(origin)
    }

    /// Stops every webhook delivery of this server (they also end with their lifetime). For a
    /// process that shuts down, or a test that ends.
    pub fn stop_webhooks(&self) {
        if let Some(webhooks) = &self.inner.webhooks {
            webhooks.close();
        }
    }

    /// The bearer tokens of the HTTP endpoint.
    pub(crate) fn bearer_tokens(&self) -> &auth::BearerTokens {
        &self.inner.bearer_tokens
    }

    /// Who the server says it is.
    pub fn info(&self) -> &Implementation {
        &self.inner.info
    }

    /// Sessions being served right now.
    pub fn session_count(&self) -> usize {
        lock(&self.inner.sessions).len()
    }

    /// Serves one client over `transport` until the connection ends.
    pub async fn serve<T: Transport>(&self, transport: T) {
        self.start(transport).wait().await
    }

    /// Starts serving one client over `transport`; the session runs in the background.
    pub fn start<T: Transport>(&self, transport: T) -> RunningSession {
        let id = new_session_id().into();
        self.start_with(
            transport,
            Routing::default(),
            EventDelivery::Queue,
            None,
            id,
            None,
        )
    }

    /// Starts a session with the given id, the transport's [`Routing`], where its events go,
    /// for stateless use a client that counts as already initialized, and the identity the
    /// session belongs to (HTTP, docs/auth.md).
    pub(crate) fn start_with<T: Transport>(
        &self,
        transport: T,
        routing: Routing,
        events: EventDelivery,
        preinitialized: Option<ClientSession>,
        id: Arc<str>,
        authenticated: Option<Arc<Identity>>,
    ) -> RunningSession {
        let handle = spawn_routed_service(
            transport,
            |peer| {
                let sink: Option<Arc<dyn EventSink>> = match events {
                    EventDelivery::Queue => Some(Arc::new(QueueSink(peer.clone()))),
                    EventDelivery::Sink(sink) => Some(sink),
                    EventDelivery::Elsewhere => None,
                };
                let subscriber = sink.map(|sink| self.inner.hub.attach(id.clone(), sink));
                let session = Arc::new(SessionState {
                    id: id.clone(),
                    subscriber,
                    peer: peer.clone(),
                    principal: Mutex::new(Principal {
                        session_id: id.clone(),
                        // An authenticated session is its identity's agent (docs/auth.md).
                        agent_id: authenticated
                            .as_ref()
                            .map_or(id.clone(), |i| i.agent_id.clone()),
                        identity: authenticated.clone(),
                    }),
                    authenticated,
                    initialized: AtomicBool::new(preinitialized.is_some()),
                    client: Mutex::new(preinitialized),
                    log_level: Mutex::new(None),
                    resource_subscriptions: Mutex::new(HashSet::new()),
                    end_reason: Mutex::new("connection closed"),
                });
                lock(&self.inner.sessions).insert(id.clone(), session.clone());
                tracing::debug!(session = %id, "session started");
                Arc::new(session::SessionHandler {
                    server: self.clone(),
                    session,
                })
            },
            self.inner.service.clone(),
            routing,
        );
        RunningSession {
            session_id: id,
            handle,
        }
    }

    /// Records why a session is about to end (for its log line).
    pub(crate) fn set_end_reason(&self, session_id: &str, reason: &'static str) {
        if let Some(s) = lock(&self.inner.sessions).get(session_id) {
            *lock(&s.end_reason) = reason;
        }
    }

    /// What another replica needs to serve an initialized session.
    pub(crate) fn session_record(&self, session_id: &str) -> Option<crate::cluster::SessionRecord> {
        let session = lock(&self.inner.sessions).get(session_id).cloned()?;
        let client = session.client()?;
        let agent_id = lock(&session.principal).agent_id.to_string();
        Some(crate::cluster::SessionRecord {
            protocol_version: client.protocol_version,
            client_info: client.client_info,
            capabilities: client.capabilities,
            agent_id,
            identity: session.authenticated.as_deref().cloned(),
        })
    }

    /// Gives a session (served here, initialized elsewhere) its agent id.
    pub(crate) fn set_agent_id(&self, session_id: &str, agent_id: &str) {
        if let Some(s) = lock(&self.inner.sessions).get(session_id) {
            lock(&s.principal).agent_id = agent_id.into();
        }
    }

    /// The protocol revision a session negotiated, once initialized.
    pub(crate) fn session_protocol_version(&self, session_id: &str) -> Option<String> {
        let session = lock(&self.inner.sessions).get(session_id).cloned()?;
        session.client().map(|c| c.protocol_version)
    }

    /// Removes a session from every map (called once when its connection ends).
    pub(crate) fn end_session(&self, session: &SessionState) {
        if let Some(key) = session.subscriber {
            self.inner.hub.detach(key);
        }
        {
            // A newer copy of the same session (HTTP replicas) may have replaced this one.
            let mut sessions = lock(&self.inner.sessions);
            if sessions
                .get(&session.id)
                .is_some_and(|s| std::ptr::eq(Arc::as_ptr(s), session))
            {
                sessions.remove(&session.id);
                crate::util::shrink_sparse(&mut sessions);
            }
        }
        let reason = *lock(&session.end_reason);
        tracing::info!(session = %session.id, reason, "session ended");
    }

    /// How many `subscriptions/listen` streams are open.
    pub fn listen_streams(&self) -> usize {
        self.inner.changes.open_listens()
    }

    /// Whether the server serves the 2026-07-28 era beside the handshake era.
    pub fn serves_modern(&self) -> bool {
        self.inner.modern.enabled
    }

    /// The input schema of tool `name`, if there is such a tool.
    pub(crate) fn tool_input_schema(&self, name: &str) -> Option<&Map<String, Value>> {
        let entry = self.inner.registry.tool(name)?;
        Some(&entry.tool.input_schema)
    }
}

/// Declares what a [`Server`] offers.
pub struct ServerBuilder {
    info: Implementation,
    instructions: Option<String>,
    registry: Registry,
    topics: Vec<TopicSpec>,
    events_instructions: Option<String>,
    page_size: usize,
    agent_identity: Option<AgentIdentity>,
    service: ServiceConfig,
    template_errors: Vec<TemplateError>,
    event_log: Option<Arc<dyn EventLog>>,
    event_delivery: DeliveryConfig,
    modern: modern::ModernConfig,
    webhooks: Option<crate::webhooks::WebhookConfig>,
    bearer_tokens: auth::BearerTokens,
    resource_server: Option<oauth::ResourceServer>,
    /// Whether retained values are resources whose subscribers hear of changes.
    retained_updates: bool,
    /// The topic permissions (docs/auth.md).
    access: crate::events::access::AccessRules,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("info", &self.info)
            .finish()
    }
}

impl ServerBuilder {
    /// Instructions for the model on how to use the server.
    pub fn instructions(mut self, text: impl Into<String>) -> Self {
        self.instructions = Some(text.into());
        self
    }

    /// Sets a display title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.info.title = Some(title.into());
        self
    }

    /// Adds a tool whose arguments are parsed into `A`, the handler's own argument type; the
    /// advertised input schema is derived from `A` too (JSON Schema 2020-12, via schemars), so
    /// the two cannot disagree. Arguments that do not fit `A` give an error result naming the
    /// problem, never a crash. See [`tool_with`](Self::tool_with) for a title, annotations or
    /// an output schema.
    ///
    /// There is no separate schema to declare, so none can disagree with the handler: naming
    /// one type and taking another does not compile.
    ///
    /// ```compile_fail,E0631
    /// # use mcpbus::server::{Context, Server};
    /// # #[derive(serde::Deserialize, schemars::JsonSchema)]
    /// # struct Build { project: String }
    /// # #[derive(serde::Deserialize, schemars::JsonSchema)]
    /// # struct Deploy { target: String }
    /// let builder = Server::builder("ci", "1.0.0").tool::<Build, _, _, _>(
    ///     "build",
    ///     "Starts a build",
    ///     |args: Deploy, _ctx: Context| async move { args.target },
    /// );
    /// ```
    ///
    /// Nor does handing over a tool definition made elsewhere (only untyped tools, see
    /// [`tool_raw`](Self::tool_raw), take a hand-written schema):
    ///
    /// ```compile_fail,E0061
    /// # use mcpbus::server::{Context, Server};
    /// # use mcpbus::proto::mcp::Tool;
    /// # #[derive(serde::Deserialize, schemars::JsonSchema)]
    /// # struct Deploy { target: String }
    /// let build_schema = serde_json::json!({"type": "object", "properties": {"project": {}}});
    /// let builder = Server::builder("ci", "1.0.0").tool(
    ///     Tool::new("build", build_schema),
    ///     |args: Deploy, _ctx: Context| async move { args.target },
    /// );
    /// ```
    pub fn tool<A, F, Fut, R>(
        self,
        name: impl Into<String>,
        description: impl Into<String>,
        handler: F,
    ) -> Self
    where
        A: DeserializeOwned + JsonSchema + Send + 'static,
        F: Fn(A, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoToolResult,
    {
        self.tool_with(ToolSpec::new(name, description), handler)
    }

    /// Adds a tool like [`tool`](Self::tool), listed with the metadata of `spec` (title,
    /// annotations, output schema, icons) and run as a task as `spec` says
    /// ([`ToolSpec::task_support`]).
    pub fn tool_with<A, F, Fut, R>(mut self, spec: ToolSpec, handler: F) -> Self
    where
        A: DeserializeOwned + JsonSchema + Send + 'static,
        F: Fn(A, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoToolResult,
    {
        let tasks = spec.task_policy();
        self.registry.add_tool(ToolEntry {
            tool: spec.into_tool::<A>(),
            call: typed_tool(handler),
            tasks,
        });
        self
    }

    /// Adds an untyped tool: it is listed exactly as `tool` says (a hand-written input schema,
    /// kept verbatim) and its handler receives the raw JSON arguments.
    pub fn tool_raw<F, Fut, R>(mut self, tool: Tool, handler: F) -> Self
    where
        F: Fn(Map<String, Value>, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoToolResult,
    {
        self.registry.add_tool(ToolEntry {
            tool,
            call: raw_tool(handler),
            tasks: Default::default(),
        });
        self
    }

    /// Adds a resource with a fixed URI.
    pub fn resource<F, Fut>(mut self, resource: Resource, read: F) -> Self
    where
        F: Fn(String, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ReadResourceResult, ErrorObject>> + Send + 'static,
    {
        let read = Arc::new(read);
        self.registry.add_resource(ResourceEntry {
            resource,
            read: Arc::new(move |uri, ctx| read(uri, ctx).boxed()),
        });
        self
    }

    /// Adds a resource template (`{name}` variables, one URI segment each); the handler gets the
    /// URI and the values of the variables.
    pub fn resource_template<F, Fut>(mut self, template: ResourceTemplate, read: F) -> Self
    where
        F: Fn(String, BTreeMap<String, String>, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ReadResourceResult, ErrorObject>> + Send + 'static,
    {
        match UriTemplate::parse(&template.uri_template) {
            Ok(matcher) => {
                let read = Arc::new(read);
                self.registry.templates.push(TemplateEntry {
                    template,
                    matcher,
                    read: Arc::new(move |uri, vars, ctx| read(uri, vars, ctx).boxed()),
                });
            }
            Err(e) => self.template_errors.push(e),
        }
        self
    }

    /// Adds a prompt; required arguments are checked before the handler runs.
    pub fn prompt<F, Fut>(mut self, prompt: Prompt, get: F) -> Self
    where
        F: Fn(BTreeMap<String, String>, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<GetPromptResult, ErrorObject>> + Send + 'static,
    {
        let get = Arc::new(get);
        self.registry.add_prompt(PromptEntry {
            prompt,
            get: Arc::new(move |args, ctx| get(args, ctx).boxed()),
        });
        self
    }

    /// Answers `completion/complete` (and advertises the `completions` capability).
    pub fn completion<F, Fut>(mut self, complete: F) -> Self
    where
        F: Fn(CompleteRequestParams, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<CompleteResult, ErrorObject>> + Send + 'static,
    {
        let complete = Arc::new(complete);
        self.registry.completion = Some(Arc::new(move |p, ctx| complete(p, ctx).boxed()));
        self
    }

    /// Declares a topic clients may subscribe to.
    pub fn topic(mut self, topic: TopicSpec) -> Self {
        self.topics.push(topic);
        self
    }

    /// Instructions sent with the events capability.
    pub fn events_instructions(mut self, text: impl Into<String>) -> Self {
        self.events_instructions = Some(text.into());
        self
    }

    /// How a session's agent id is found (default: its session id).
    pub fn agent_identity<F>(mut self, f: F) -> Self
    where
        F: Fn(&str, &InitializeRequestParams) -> String + Send + Sync + 'static,
    {
        self.agent_identity = Some(Arc::new(f));
        self
    }

    /// Records events, subscriptions and retained values in `log` instead of this process's
    /// memory: one log shared by several replicas of a deployment (e.g. `mcpbus-redis`).
    /// Handlers publish the same way with either ([`EventHub::publish`]).
    pub fn event_log(mut self, log: Arc<dyn EventLog>) -> Self {
        self.event_log = Some(log);
        self
    }

    /// How SEP-3415 polls and push streams are served (docs/protocol.md 3.4): `nextPollMs`,
    /// batch sizes, the longest long poll, the heartbeat, the cap on push streams.
    pub fn event_delivery(mut self, config: DeliveryConfig) -> Self {
        self.event_delivery = config;
        self
    }

    /// Items per page of `tools/list`, `resources/list` and the like (default 100).
    pub fn page_size(mut self, size: usize) -> Self {
        self.page_size = size.max(1);
        self
    }

    /// How the 2026-07-28 era is served (on by default, beside the handshake era).
    pub fn modern(mut self, config: modern::ModernConfig) -> Self {
        self.modern = config;
        self
    }

    /// Serves SEP-3415 webhook delivery (`events/subscribe`, docs/protocol.md 3.6): event
    /// types then list `webhook` among their modes (unless a topic's
    /// [`TopicSpec::delivery`] leaves it out). Webhook subscriptions need an authenticated
    /// principal ([`bearer_tokens`](Self::bearer_tokens)).
    pub fn webhooks(mut self, config: crate::webhooks::WebhookConfig) -> Self {
        self.webhooks = Some(config);
        self
    }

    /// The bearer tokens of the HTTP endpoint, each naming a principal (docs/protocol.md
    /// 3.6.1). A 2026-07-28 request with a known token acts as that principal; a request
    /// without `Authorization` is served as before; an unknown token is `401`.
    pub fn bearer_tokens(mut self, tokens: auth::BearerTokens) -> Self {
        self.bearer_tokens = tokens;
        self
    }

    /// Settings of each session's service loop (queue capacity, timeouts, in-flight limit).
    pub fn service_config(mut self, config: ServiceConfig) -> Self {
        self.service = config;
        self
    }

    /// Builds the server.
    pub fn build(self) -> Result<Server, BuildError> {
        if let Some(e) = self.template_errors.into_iter().next() {
            return Err(e.into());
        }
        let log = self
            .event_log
            .unwrap_or_else(|| Arc::new(MemoryEventLog::new()));
        let topics = with_webhook_mode(self.topics, self.webhooks.is_some());
        let config = (self.event_delivery, self.access);
        let hub =
            EventHub::with_access(topics, self.events_instructions, log, config).map_err(|e| {
                BuildError::Topic {
                    pattern: e.pattern,
                    source: e.source,
                }
            })?;
        let webhooks = self
            .webhooks
            .map(|config| crate::webhooks::Webhooks::new(config, hub.clone()))
            .transpose()?;
        let server = Server {
            inner: Arc::new(ServerInner {
                info: self.info,
                instructions: self.instructions,
                registry: self.registry,
                hub,
                page_size: self.page_size,
                agent_identity: self.agent_identity,
                service: self.service,
                sessions: Mutex::new(HashMap::new()),
                changes: modern::listen::ChangeBus::new(self.modern.max_listens),
                modern: self.modern,
                webhooks,
                bearer_tokens: self.bearer_tokens,
                resource_server: self.resource_server,
            }),
        };
        changes::listen_for_notices(&server.inner);
        if self.retained_updates {
            topic_resources::watch_retained(&server.inner);
        }
        Ok(server)
    }
}

/// The delivery modes each topic offers: webhook by default when the server delivers
/// webhooks, and never when it does not (whatever a topic asked for).
fn with_webhook_mode(topics: Vec<TopicSpec>, webhooks: bool) -> Vec<TopicSpec> {
    use mcpbus_proto::events_ext::DeliveryMode;
    topics
        .into_iter()
        .map(|mut topic| {
            topic.delivery = match topic.delivery.take() {
                None if webhooks => Some(vec![
                    DeliveryMode::Poll,
                    DeliveryMode::Push,
                    DeliveryMode::Webhook,
                ]),
                None => None,
                Some(modes) => Some(
                    modes
                        .into_iter()
                        .filter(|m| webhooks || *m != DeliveryMode::Webhook)
                        .collect(),
                ),
            };
            topic
        })
        .collect()
}
