//! The MCP client: connect to a server, call its tools, read its resources, get its prompts,
//! answer its requests (sampling, elicitation, roots), and subscribe to its topics.
//!
//! ```no_run
//! use mcpbus::client::Client;
//! use mcpbus::transport::ChildProcess;
//!
//! # async fn run() -> mcpbus::Result<()> {
//! let mut cmd = tokio::process::Command::new("mcpbus");
//! cmd.args(["serve", "--stdio"]);
//! let client = Client::builder("my-agent", "0.1.0")
//!     .on_event(|event| println!("{} {}", event.topic, event.payload))
//!     .connect(ChildProcess::spawn(cmd)?)
//!     .await?;
//! let result = client.subscribe(["build/+"]).await?;
//! println!("subscribed to {:?}, retained: {:?}", result.subscribed, result.retained);
//! # Ok(()) }
//! ```

mod event_queue;
mod handler;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, RwLock};

use futures::FutureExt;
use futures::future::BoxFuture;
use mcpbus_proto::events::{
    EventListResult, EventParams, EventSubscribeResult, EventTopicDescriptor,
    EventUnsubscribeResult,
};
use mcpbus_proto::jsonrpc::{ErrorObject, Notification};
use mcpbus_proto::mcp::{
    CallToolResult, ClientCapabilities, CompleteRequestParams, CompleteResult,
    CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams, ElicitResult,
    ElicitationCapability, GetPromptResult, Implementation, InitializeResult,
    LATEST_PROTOCOL_VERSION, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
    ListToolsResult, LoggingLevel, LoggingMessageNotificationParams, Prompt, ReadResourceResult,
    Resource, ResourceTemplate, Root, RootsCapability, ServerCapabilities, Tool, methods,
};
use mcpbus_proto::topic::TopicPattern;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::service::{Peer, RequestOptions, ServiceConfig, ServiceHandle, spawn_service};
use crate::transport::Transport;

pub use event_queue::{EventQueue, ProvenanceEnvelope};

/// Receives the events that pass the client-side drop rules (docs/protocol.md 2.4), in order.
pub type EventHandler = Arc<dyn Fn(EventParams) + Send + Sync>;
/// Answers `sampling/createMessage`.
pub type SamplingHandler = Arc<
    dyn Fn(
            CreateMessageRequestParams,
        ) -> BoxFuture<'static, Result<CreateMessageResult, ErrorObject>>
        + Send
        + Sync,
>;
/// Answers `elicitation/create`.
pub type ElicitationHandler = Arc<
    dyn Fn(ElicitRequestParams) -> BoxFuture<'static, Result<ElicitResult, ErrorObject>>
        + Send
        + Sync,
>;
/// Receives `notifications/message`.
pub type LogHandler = Arc<dyn Fn(LoggingMessageNotificationParams) + Send + Sync>;
/// Receives every other notification from the server.
pub type NotificationHandler = Arc<dyn Fn(Notification) + Send + Sync>;

/// Configures and connects a [`Client`].
pub struct ClientBuilder {
    info: Implementation,
    protocol_version: String,
    capabilities: ClientCapabilities,
    handlers: handler::Handlers,
    event_filter: Option<String>,
    service: ServiceConfig,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("info", &self.info)
            .field("capabilities", &self.capabilities)
            .finish()
    }
}

impl ClientBuilder {
    /// Answers the server's sampling requests (declares the `sampling` capability).
    pub fn on_sampling<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(CreateMessageRequestParams) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<CreateMessageResult, ErrorObject>> + Send + 'static,
    {
        self.capabilities.sampling = Some(Map::new());
        self.handlers.sampling = Some(Arc::new(move |p| f(p).boxed()));
        self
    }

    /// Answers the server's elicitation requests (declares form mode, and URL mode if `url`).
    pub fn on_elicitation<F, Fut>(mut self, url: bool, f: F) -> Self
    where
        F: Fn(ElicitRequestParams) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ElicitResult, ErrorObject>> + Send + 'static,
    {
        self.capabilities.elicitation = Some(ElicitationCapability {
            form: Some(Map::new()),
            url: url.then(Map::new),
        });
        self.handlers.elicitation = Some(Arc::new(move |p| f(p).boxed()));
        self
    }

    /// Offers these roots to the server (declares the `roots` capability).
    pub fn roots(mut self, roots: Vec<Root>) -> Self {
        self.capabilities.roots = Some(RootsCapability {
            list_changed: Some(true),
        });
        self.handlers.roots = Some(Arc::new(RwLock::new(roots)));
        self
    }

    /// Receives events; see [`ClientBuilder::event_filter`] for an extra topic filter.
    pub fn on_event<F>(mut self, f: F) -> Self
    where
        F: Fn(EventParams) + Send + Sync + 'static,
    {
        self.handlers.event = Some(Arc::new(f));
        self
    }

    /// Only events whose topic matches this pattern reach the event handler (same wildcards as
    /// subscriptions). An invalid pattern makes [`connect`](Self::connect) fail.
    pub fn event_filter(mut self, pattern: impl Into<String>) -> Self {
        self.event_filter = Some(pattern.into());
        self
    }

    /// Receives the server's log messages.
    pub fn on_log<F>(mut self, f: F) -> Self
    where
        F: Fn(LoggingMessageNotificationParams) + Send + Sync + 'static,
    {
        self.handlers.log = Some(Arc::new(f));
        self
    }

    /// Receives every other notification (list changes, resource updates…).
    pub fn on_notification<F>(mut self, f: F) -> Self
    where
        F: Fn(Notification) + Send + Sync + 'static,
    {
        self.handlers.notification = Some(Arc::new(f));
        self
    }

    /// The protocol revision to ask for (default: the newest).
    pub fn protocol_version(mut self, version: impl Into<String>) -> Self {
        self.protocol_version = version.into();
        self
    }

    /// Settings of the connection's service loop (timeouts, queue capacity).
    pub fn service_config(mut self, config: ServiceConfig) -> Self {
        self.service = config;
        self
    }

    /// Connects over `transport` and initializes the session.
    pub async fn connect<T: Transport>(mut self, transport: T) -> Result<Client> {
        if let Some(filter) = &self.event_filter {
            let pattern =
                TopicPattern::new(filter).map_err(|source| Error::InvalidEventFilter {
                    filter: filter.clone(),
                    source,
                })?;
            self.handlers.event_filter = Some(pattern);
        }
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(handler::ClientShared::new(self.handlers, event_tx));
        if let Some(handler) = shared.handlers.event.clone() {
            tokio::spawn(handler::deliver_events(event_rx, handler));
        }
        let handler_shared = shared.clone();
        let service = spawn_service(
            transport,
            move |_peer| {
                Arc::new(handler::ClientHandler {
                    shared: handler_shared,
                })
            },
            self.service,
        );
        let peer = service.peer().clone();
        let params = json!({
            "protocolVersion": self.protocol_version,
            "capabilities": self.capabilities,
            "clientInfo": self.info,
        });
        let init: InitializeResult = match typed(&peer, methods::INITIALIZE, Some(params)).await {
            Ok(init) => init,
            Err(e) => {
                peer.close();
                return Err(e);
            }
        };
        peer.notify(methods::INITIALIZED, None)?;
        Ok(Client {
            inner: Arc::new(ClientInner {
                peer,
                init,
                shared,
                service: std::sync::Mutex::new(Some(service)),
            }),
        })
    }
}

async fn typed<R: DeserializeOwned>(peer: &Peer, method: &str, params: Option<Value>) -> Result<R> {
    typed_with(peer, method, params, RequestOptions::default()).await
}

async fn typed_with<R: DeserializeOwned>(
    peer: &Peer,
    method: &str,
    params: Option<Value>,
    opts: RequestOptions,
) -> Result<R> {
    let value = peer.request_with(method, params, opts).await?;
    serde_json::from_value(value).map_err(|source| Error::InvalidResponse {
        method: method.to_owned(),
        source,
    })
}

struct ClientInner {
    peer: Peer,
    init: InitializeResult,
    shared: Arc<handler::ClientShared>,
    service: std::sync::Mutex<Option<ServiceHandle>>,
}

/// A connected MCP client. Clonable: every clone talks to the same server.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.inner.init.server_info.name)
            .field("session_id", &self.session_id())
            .finish()
    }
}

impl Client {
    /// Starts configuring a client with its name and version.
    pub fn builder(name: impl Into<String>, version: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            info: Implementation::new(name, version),
            protocol_version: LATEST_PROTOCOL_VERSION.to_string(),
            capabilities: ClientCapabilities::default(),
            handlers: handler::Handlers::default(),
            event_filter: None,
            service: ServiceConfig::default(),
        }
    }

    /// The server's answer to `initialize`.
    pub fn initialize_result(&self) -> &InitializeResult {
        &self.inner.init
    }

    /// Who the server is.
    pub fn server_info(&self) -> &Implementation {
        &self.inner.init.server_info
    }

    /// What the server can do.
    pub fn capabilities(&self) -> &ServerCapabilities {
        &self.inner.init.capabilities
    }

    /// The negotiated protocol revision.
    pub fn protocol_version(&self) -> &str {
        &self.inner.init.protocol_version
    }

    /// The server's instructions, if any.
    pub fn instructions(&self) -> Option<&str> {
        self.inner.init.instructions.as_deref()
    }

    /// The session id the server sent in `InitializeResult._meta.session_id`, if any.
    pub fn session_id(&self) -> Option<&str> {
        self.inner.init.session_id()
    }

    /// The raw peer, for requests and notifications this API does not cover.
    pub fn peer(&self) -> &Peer {
        &self.inner.peer
    }

    /// Sends any request and returns its raw result.
    pub async fn request(&self, method: &str, params: Option<Value>) -> Result<Value> {
        self.inner.peer.request(method, params).await
    }

    /// Follows a paginated listing to its end.
    async fn list_all<P, T>(
        &self,
        method: &str,
        split: impl Fn(P) -> (Vec<T>, Option<String>),
    ) -> Result<Vec<T>>
    where
        P: DeserializeOwned,
    {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let params = cursor.as_ref().map(|c| json!({"cursor": c}));
            let (items, next) = split(typed(&self.inner.peer, method, params).await?);
            all.extend(items);
            match next {
                Some(next) => cursor = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// Checks that the server is alive.
    pub async fn ping(&self) -> Result<()> {
        self.request(methods::PING, None).await.map(|_| ())
    }

    /// Lists every tool (following pagination).
    pub async fn list_tools(&self) -> Result<Vec<Tool>> {
        self.list_all(methods::TOOLS_LIST, |p: ListToolsResult| {
            (p.tools, p.next_cursor)
        })
        .await
    }

    /// Calls a tool with JSON arguments (an object, or null for none).
    pub async fn call_tool(&self, name: &str, arguments: Value) -> Result<CallToolResult> {
        self.call_tool_with(name, arguments, RequestOptions::default())
            .await
    }

    /// Calls a tool with request options (timeout, progress).
    pub async fn call_tool_with(
        &self,
        name: &str,
        arguments: Value,
        opts: RequestOptions,
    ) -> Result<CallToolResult> {
        let mut params = json!({"name": name});
        if !arguments.is_null() {
            params["arguments"] = arguments;
        }
        typed_with(&self.inner.peer, methods::TOOLS_CALL, Some(params), opts).await
    }

    /// Lists every resource (following pagination).
    pub async fn list_resources(&self) -> Result<Vec<Resource>> {
        self.list_all(methods::RESOURCES_LIST, |p: ListResourcesResult| {
            (p.resources, p.next_cursor)
        })
        .await
    }

    /// Lists every resource template (following pagination).
    pub async fn list_resource_templates(&self) -> Result<Vec<ResourceTemplate>> {
        self.list_all(
            methods::RESOURCES_TEMPLATES_LIST,
            |p: ListResourceTemplatesResult| (p.resource_templates, p.next_cursor),
        )
        .await
    }

    /// Reads a resource.
    pub async fn read_resource(&self, uri: &str) -> Result<ReadResourceResult> {
        typed(
            &self.inner.peer,
            methods::RESOURCES_READ,
            Some(json!({"uri": uri})),
        )
        .await
    }

    /// Asks for `notifications/resources/updated` about `uri`.
    pub async fn subscribe_resource(&self, uri: &str) -> Result<()> {
        self.request(methods::RESOURCES_SUBSCRIBE, Some(json!({"uri": uri})))
            .await
            .map(|_| ())
    }

    /// Stops `notifications/resources/updated` about `uri`.
    pub async fn unsubscribe_resource(&self, uri: &str) -> Result<()> {
        self.request(methods::RESOURCES_UNSUBSCRIBE, Some(json!({"uri": uri})))
            .await
            .map(|_| ())
    }

    /// Lists every prompt (following pagination).
    pub async fn list_prompts(&self) -> Result<Vec<Prompt>> {
        self.list_all(methods::PROMPTS_LIST, |p: ListPromptsResult| {
            (p.prompts, p.next_cursor)
        })
        .await
    }

    /// Gets a prompt with its arguments.
    pub async fn get_prompt(
        &self,
        name: &str,
        arguments: BTreeMap<String, String>,
    ) -> Result<GetPromptResult> {
        typed(
            &self.inner.peer,
            methods::PROMPTS_GET,
            Some(json!({"name": name, "arguments": arguments})),
        )
        .await
    }

    /// Asks for completions of an argument.
    pub async fn complete(&self, params: CompleteRequestParams) -> Result<CompleteResult> {
        let params = crate::error::encode_params(methods::COMPLETION_COMPLETE, params)?;
        typed(&self.inner.peer, methods::COMPLETION_COMPLETE, Some(params)).await
    }

    /// Sets the minimum level of the log messages the server sends.
    pub async fn set_log_level(&self, level: LoggingLevel) -> Result<()> {
        self.request(methods::LOGGING_SET_LEVEL, Some(json!({"level": level})))
            .await
            .map(|_| ())
    }

    /// Replaces the roots offered to the server and tells it they changed.
    pub fn set_roots(&self, roots: Vec<Root>) -> Result<()> {
        let Some(current) = &self.inner.shared.handlers.roots else {
            return Err(Error::Protocol("the client was built without roots".into()));
        };
        *current.write().unwrap_or_else(|p| p.into_inner()) = roots;
        self.inner.peer.notify(methods::ROOTS_LIST_CHANGED, None)
    }

    /// Subscribes to topic patterns. Accepted patterns are tracked: once one is held, events
    /// matching none of them are dropped before the handler (docs/protocol.md 2.4). Retained values
    /// come back in the result, not through the handler.
    pub async fn subscribe<I, S>(&self, topics: I) -> Result<EventSubscribeResult>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let topics: Vec<String> = topics.into_iter().map(Into::into).collect();
        let result: EventSubscribeResult = typed(
            &self.inner.peer,
            methods::EVENTS_SUBSCRIBE,
            Some(json!({"topics": topics})),
        )
        .await?;
        self.inner
            .shared
            .track(result.subscribed.iter().map(|s| s.pattern.as_str()));
        Ok(result)
    }

    /// Unsubscribes from topic patterns and stops tracking them.
    pub async fn unsubscribe<I, S>(&self, topics: I) -> Result<EventUnsubscribeResult>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let topics: Vec<String> = topics.into_iter().map(Into::into).collect();
        let result: EventUnsubscribeResult = typed(
            &self.inner.peer,
            methods::EVENTS_UNSUBSCRIBE,
            Some(json!({"topics": topics})),
        )
        .await?;
        self.inner.shared.untrack(&result.unsubscribed);
        Ok(result)
    }

    /// Lists the topics the server declares.
    pub async fn list_events(&self) -> Result<Vec<EventTopicDescriptor>> {
        let result: EventListResult = typed(&self.inner.peer, methods::EVENTS_LIST, None).await?;
        Ok(result.topics)
    }

    /// The patterns the server accepted and that are still subscribed.
    pub fn subscriptions(&self) -> Vec<String> {
        self.inner.shared.subscriptions()
    }

    /// Closes the connection (a spawned server sees end of input and exits) and waits for it.
    pub async fn close(&self) {
        self.inner.peer.close();
        let handle = self
            .inner
            .service
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(handle) = handle {
            handle.wait().await;
        }
    }

    /// Completes when the connection has ended (e.g. the server exited).
    pub async fn closed(&self) {
        self.inner.peer.closed().await
    }
}
