//! The MCP server: a builder to declare tools, resources, prompts and topics, and sessions that
//! serve clients over any [`Transport`].
//!
//! ```no_run
//! use mcpbus::server::{Server, tool_def};
//! use mcpbus::events::{Event, TopicSpec};
//! use mcpbus_proto::mcp::CallToolResult;
//! use schemars::JsonSchema;
//! use serde::Deserialize;
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
//!     .tool(tool_def::<Build>("build", "Starts a build"), |args: Build, ctx| async move {
//!         ctx.events()
//!             .emit(Event::new(format!("build/{}", args.project), serde_json::json!({"state": "queued"})))
//!             .map_err(|e| e.to_string())?;
//!         Ok(CallToolResult::text("queued"))
//!     })
//!     .build()?;
//! server.serve(mcpbus::transport::stdio()).await;
//! # Ok(()) }
//! ```

mod context;
mod dispatch;
mod requests;
mod router;
mod session;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use mcpbus_proto::jsonrpc::ErrorObject;
use mcpbus_proto::mcp::{
    CallToolResult, CompleteRequestParams, CompleteResult, GetPromptResult, Implementation,
    InitializeRequestParams, Prompt, PromptsCapability, ReadResourceResult, Resource,
    ResourceTemplate, ResourcesCapability, ServerCapabilities, Tool, ToolsCapability, methods,
};
use mcpbus_proto::topic::TopicError;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::events::{EventHub, Principal, TopicSpec};
use crate::service::{Routing, ServiceConfig, ServiceHandle, spawn_routed_service};
use crate::transport::Transport;

pub use context::{ClientSession, Context};
pub use router::{NoArgs, ToolError, tool_def};

use context::{SessionState, lock};
use router::{
    PromptEntry, Registry, ResourceEntry, TemplateEntry, ToolEntry, UriTemplate, typed_tool,
};

/// Maps a session to its agent id (PROTOCOL.md 2.5); by default the agent id is the session id.
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
    Template(String),
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
}

impl ServerInner {
    pub(crate) fn offers_resources(&self) -> bool {
        !self.registry.resources.is_empty() || !self.registry.templates.is_empty()
    }

    pub(crate) fn capabilities(&self) -> ServerCapabilities {
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
            events: self.hub.capability(),
            ..Default::default()
        }
    }
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
pub fn new_session_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // The OS random source is unavailable (it never is on supported platforms); fall back to
        // a ULID, still unique though partly time-based.
        return ulid::Ulid::new().to_string().to_lowercase();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
            bus: None,
        }
    }

    /// The event hub, to publish events to subscribed sessions.
    pub fn events(&self) -> &EventHub {
        &self.inner.hub
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
        self.start_with(transport, Routing::default(), None, new_session_id().into())
    }

    /// Starts a session with the given id, the transport's [`Routing`] and, for stateless use,
    /// a client that counts as already initialized.
    pub(crate) fn start_with<T: Transport>(
        &self,
        transport: T,
        routing: Routing,
        preinitialized: Option<ClientSession>,
        id: Arc<str>,
    ) -> RunningSession {
        let handle = spawn_routed_service(
            transport,
            |peer| {
                let hub_key = self.inner.hub.register(peer.clone());
                let session = Arc::new(SessionState {
                    id: id.clone(),
                    hub_key,
                    peer: peer.clone(),
                    principal: Mutex::new(Principal {
                        session_id: id.clone(),
                        agent_id: id.clone(),
                    }),
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
        self.inner.hub.unregister(session.hub_key);
        {
            // A newer copy of the same session (HTTP replicas) may have replaced this one.
            let mut sessions = lock(&self.inner.sessions);
            if sessions
                .get(&session.id)
                .is_some_and(|s| std::ptr::eq(Arc::as_ptr(s), session))
            {
                sessions.remove(&session.id);
            }
        }
        let reason = *lock(&session.end_reason);
        tracing::info!(session = %session.id, reason, "session ended");
    }

    fn sessions(&self) -> Vec<Arc<SessionState>> {
        lock(&self.inner.sessions).values().cloned().collect()
    }

    /// Sends `notifications/resources/updated` to every session subscribed to `uri`.
    pub fn notify_resource_updated(&self, uri: &str) -> usize {
        let mut sent = 0;
        for s in self.sessions() {
            if lock(&s.resource_subscriptions).contains(uri)
                && s.peer
                    .notify(methods::RESOURCES_UPDATED, Some(json!({"uri": uri})))
                    .is_ok()
            {
                sent += 1;
            }
        }
        sent
    }

    fn broadcast(&self, method: &str) {
        for s in self.sessions() {
            if s.is_initialized() {
                let _ = s.peer.notify(method, None);
            }
        }
    }

    /// Tells every initialized session that the tool list changed.
    pub fn notify_tools_list_changed(&self) {
        self.broadcast(methods::TOOLS_LIST_CHANGED);
    }

    /// Tells every initialized session that the resource list changed.
    pub fn notify_resources_list_changed(&self) {
        self.broadcast(methods::RESOURCES_LIST_CHANGED);
    }

    /// Tells every initialized session that the prompt list changed.
    pub fn notify_prompts_list_changed(&self) {
        self.broadcast(methods::PROMPTS_LIST_CHANGED);
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
    template_errors: Vec<String>,
    bus: Option<Arc<dyn crate::cluster::EventBus>>,
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

    /// Adds a tool whose arguments are parsed into `A` (see [`tool_def`] for the schema).
    /// Arguments that do not fit `A` give an error result, never a crash.
    pub fn tool<A, F, Fut>(mut self, tool: Tool, handler: F) -> Self
    where
        A: DeserializeOwned + Send + 'static,
        F: Fn(A, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<CallToolResult, ToolError>> + Send + 'static,
    {
        self.registry.add_tool(ToolEntry {
            tool,
            call: typed_tool(handler),
        });
        self
    }

    /// Adds a tool that receives its raw JSON arguments.
    pub fn tool_raw<F, Fut>(mut self, tool: Tool, handler: F) -> Self
    where
        F: Fn(Map<String, Value>, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<CallToolResult, ToolError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.registry.add_tool(ToolEntry {
            tool,
            call: Arc::new(move |args, ctx| handler(args, ctx).boxed()),
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

    /// Publishes events, and keeps subscriptions and retained values, in a shared event bus
    /// (several replicas of one deployment; e.g. `mcpbus-redis`). Publish with
    /// [`EventHub::publish`] then.
    pub fn event_bus(mut self, bus: Arc<dyn crate::cluster::EventBus>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// Items per page of `tools/list`, `resources/list` and the like (default 100).
    pub fn page_size(mut self, size: usize) -> Self {
        self.page_size = size.max(1);
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
            return Err(BuildError::Template(e));
        }
        for spec in &self.topics {
            if let Err(source) =
                mcpbus_proto::topic::DeclaredPattern::new(&spec.descriptor().pattern)
            {
                return Err(BuildError::Topic {
                    pattern: spec.descriptor().pattern.clone(),
                    source,
                });
            }
        }
        let hub = EventHub::with_bus(self.topics, self.events_instructions, self.bus).map_err(
            |source| BuildError::Topic {
                pattern: String::new(),
                source,
            },
        )?;
        Ok(Server {
            inner: Arc::new(ServerInner {
                info: self.info,
                instructions: self.instructions,
                registry: self.registry,
                hub,
                page_size: self.page_size,
                agent_identity: self.agent_identity,
                service: self.service,
                sessions: Mutex::new(HashMap::new()),
            }),
        })
    }
}
