//! The MCP client: connect to a server, call its tools, read its resources, get its prompts,
//! answer its requests (sampling, elicitation, roots), and subscribe to its topics: as topic
//! events in the handshake era ([`ClientBuilder::on_event`], [`Client::subscribe`]), as the
//! event types of the MCP Events extension (SEP-3415) in the 2026-07-28 era
//! ([`Client::subscribe_events`], one handler for poll and push, resuming from a cursor).
//!
//! One client speaks both eras of MCP: the handshake era (2025-11-25 and earlier, `initialize`
//! and a session) and the 2026-07-28 era (no handshake, `_meta` on every request, input through
//! `input_required`, change notifications on `subscriptions/listen`). [`Era`] says how the era is
//! chosen when connecting, and docs/client.md what the client does by default in each.
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

mod builder;
mod era;
mod event_queue;
mod handler;
mod input;
mod listen;
mod modern;
pub mod oauth;
mod subscribe;
mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use mcpbus_proto::error_codes;
use mcpbus_proto::events::{
    EventListResult, EventParams, EventSubscribeResult, EventTopicDescriptor,
    EventUnsubscribeResult,
};
use mcpbus_proto::jsonrpc::{ErrorObject, Notification};
use mcpbus_proto::mcp::{
    CallToolResult, CompleteRequestParams, CompleteResult, CreateMessageRequestParams,
    CreateMessageResult, ElicitRequestParams, ElicitResult, GetPromptResult, Implementation,
    InitializeResult, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
    ListToolsResult, LoggingLevel, LoggingMessageNotificationParams, Prompt, ReadResourceResult,
    Resource, ResourceTemplate, Root, ServerCapabilities, Tool, methods,
};
use mcpbus_proto::modern::{DiscoverResult, SubscriptionFilter};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::service::{Peer, RequestOptions, ServiceHandle};

pub use builder::{ClientBuilder, DEFAULT_PROBE_TIMEOUT};
pub use era::Era;
pub use event_queue::{EventQueue, ProvenanceEnvelope};
pub use modern::MAX_INPUT_ROUNDS;
pub use subscribe::{
    CURSOR_KEY, DEFAULT_HEARTBEAT, DEFAULT_POLL_FLOOR, Delivery, EVENT_TYPE_KEY, SubscribeEvents,
    Subscription, SubscriptionEvent, SubscriptionHandler, TIMESTAMP_KEY, event_params,
};
pub use webhook::{TIMESTAMP_TOLERANCE, WebhookHandler, WebhookReceiver};

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

/// What the topic-event methods answer in the 2026-07-28 era.
const EVENTS_NEED_LEGACY: &str = "topic events (events/subscribe, events/list) exist only in the \
     handshake era of MCP, and this client speaks 2026-07-28 with the server: subscribe to its \
     event types with Client::subscribe_events (SEP-3415), or build the client with \
     .era(Era::Legacy) (or with an event handler, which makes Era::Auto open with initialize)";

struct ClientInner {
    peer: Peer,
    /// The answer to `initialize`, or in the 2026-07-28 era the same facts from `server/discover`.
    init: InitializeResult,
    /// What 2026-07-28 requests carry; `None` in the handshake era.
    modern: Option<Arc<modern::ModernLink>>,
    shared: Arc<handler::ClientShared>,
    service: std::sync::Mutex<Option<ServiceHandle>>,
    listener: listen::Listener,
    /// The service loop's request timeout, also the wait for a listen acknowledgement.
    request_timeout: Duration,
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        // The listen task holds no handle on the client: tell it that nobody listens any more.
        self.listener.stop();
    }
}

/// A connected MCP client. Clonable: every clone talks to the same server.
///
/// The same methods work in both eras; where the 2026-07-28 era has no such request, the
/// method says what it does instead.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.inner.init.server_info.name)
            .field("era", &self.era())
            .field("session_id", &self.session_id())
            .finish()
    }
}

impl Client {
    /// Starts configuring a client with its name and version.
    pub fn builder(name: impl Into<String>, version: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(Implementation::new(name, version))
    }

    /// The era the client speaks with the server: [`Era::Modern`] or [`Era::Legacy`].
    pub fn era(&self) -> Era {
        if self.inner.modern.is_some() {
            Era::Modern
        } else {
            Era::Legacy
        }
    }

    /// The server's `server/discover` result (2026-07-28 era only).
    pub fn discover_result(&self) -> Option<&DiscoverResult> {
        self.inner.modern.as_deref().map(|m| &m.discover)
    }

    /// The server's answer to `initialize`. In the 2026-07-28 era, the same facts from
    /// `server/discover`: the revision spoken, the capabilities, the server's identity (its
    /// result `_meta`) and instructions.
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

    /// The protocol revision negotiated when connecting.
    pub fn protocol_version(&self) -> &str {
        &self.inner.init.protocol_version
    }

    /// The server's instructions, if any.
    pub fn instructions(&self) -> Option<&str> {
        self.inner.init.instructions.as_deref()
    }

    /// The session id the server sent in `InitializeResult._meta.session_id`, if any (never in
    /// the 2026-07-28 era, which has no sessions).
    pub fn session_id(&self) -> Option<&str> {
        self.inner.init.session_id()
    }

    /// The raw peer, for requests and notifications this API does not cover. In the 2026-07-28
    /// era its requests carry no `_meta` of their own: prefer [`Client::request`].
    pub fn peer(&self) -> &Peer {
        &self.inner.peer
    }

    /// Sends any request and returns its raw result. In the 2026-07-28 era the request gets the
    /// client's `_meta` and is retried once at another revision after `-32022`; its result is
    /// returned as it is (even `input_required`).
    pub async fn request(&self, method: &str, params: Option<Value>) -> Result<Value> {
        match &self.inner.modern {
            Some(link) => {
                link.send(&self.inner.peer, method, params, RequestOptions::default())
                    .await
            }
            None => self.inner.peer.request(method, params).await,
        }
    }

    /// A request of this API: in the 2026-07-28 era with `_meta`, a complete result required,
    /// and `input_required` answered through the callbacks.
    async fn call(
        &self,
        method: &str,
        params: Option<Value>,
        opts: RequestOptions,
    ) -> Result<Value> {
        let inner = &self.inner;
        match &inner.modern {
            None => inner.peer.request_with(method, params, opts).await,
            Some(link) if modern::takes_input(method) => {
                let params = params.unwrap_or_else(|| json!({}));
                link.request_with_input(&inner.peer, &inner.shared, method, params, opts)
                    .await
            }
            Some(link) => link.request(&inner.peer, method, params, opts).await,
        }
    }

    async fn typed_call<R: DeserializeOwned>(
        &self,
        method: &str,
        params: Option<Value>,
        opts: RequestOptions,
    ) -> Result<R> {
        let value = self.call(method, params, opts).await?;
        serde_json::from_value(value).map_err(|source| Error::InvalidResponse {
            method: method.to_owned(),
            source,
        })
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
            let page = self
                .typed_call(method, params, RequestOptions::default())
                .await?;
            let (items, next) = split(page);
            all.extend(items);
            match next {
                Some(next) => cursor = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// Checks that the server is alive: `ping`, or in the 2026-07-28 era (which has no `ping`)
    /// `server/discover`.
    pub async fn ping(&self) -> Result<()> {
        let method = match self.era() {
            Era::Modern => methods::SERVER_DISCOVER,
            _ => methods::PING,
        };
        self.call(method, None, RequestOptions::default())
            .await
            .map(|_| ())
    }

    /// Lists every tool (following pagination). Over HTTP in the 2026-07-28 era, tools whose
    /// `x-mcp-header` annotations are invalid are left out (with a warning), and the others'
    /// annotations decide the `Mcp-Param-*` headers of later calls.
    pub async fn list_tools(&self) -> Result<Vec<Tool>> {
        let mut tools = self
            .list_all(methods::TOOLS_LIST, |p: ListToolsResult| {
                (p.tools, p.next_cursor)
            })
            .await?;
        if let Some(http) = self.inner.modern.as_deref().and_then(|m| m.http.as_ref()) {
            http.admit_tools(&mut tools);
        }
        Ok(tools)
    }

    /// Calls a tool with JSON arguments (an object, or null for none).
    pub async fn call_tool(&self, name: &str, arguments: Value) -> Result<CallToolResult> {
        self.call_tool_with(name, arguments, RequestOptions::default())
            .await
    }

    /// Calls a tool with request options (timeout, progress). Over HTTP in the 2026-07-28 era,
    /// a `-32020` (header mismatch) answer makes the client list the tools again, to learn
    /// their current `x-mcp-header` annotations, and call once more.
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
        let first = self
            .typed_call(methods::TOOLS_CALL, Some(params.clone()), opts.clone())
            .await;
        let over_http = self
            .inner
            .modern
            .as_deref()
            .is_some_and(|m| m.http.is_some());
        match first {
            Err(Error::Remote(e)) if over_http && e.code == error_codes::HEADER_MISMATCH => {
                tracing::info!(tool = name, error = %e.message, "header mismatch: listing the tools again");
                self.list_tools().await?;
                self.typed_call(methods::TOOLS_CALL, Some(params), opts)
                    .await
            }
            other => other,
        }
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
        let params = json!({"uri": uri});
        self.typed_call(
            methods::RESOURCES_READ,
            Some(params),
            RequestOptions::default(),
        )
        .await
    }

    /// Asks for `notifications/resources/updated` about `uri`: `resources/subscribe`, or in the
    /// 2026-07-28 era the URI added to the client's listen stream (see [`Client::listen`]).
    pub async fn subscribe_resource(&self, uri: &str) -> Result<()> {
        if self.era() == Era::Legacy {
            return self
                .request(methods::RESOURCES_SUBSCRIBE, Some(json!({"uri": uri})))
                .await
                .map(|_| ());
        }
        let mut filter = self.current_filter();
        let uris = filter.resource_subscriptions.get_or_insert_with(Vec::new);
        if !uris.iter().any(|u| u == uri) {
            uris.push(uri.to_owned());
        }
        let acknowledged = self.listen(filter).await?;
        let accepted = acknowledged.resource_subscriptions.unwrap_or_default();
        if accepted.iter().any(|u| u == uri) {
            Ok(())
        } else {
            Err(Error::Protocol(format!(
                "the server did not accept updates of {uri} on its listen stream"
            )))
        }
    }

    /// Stops `notifications/resources/updated` about `uri`: `resources/unsubscribe`, or in the
    /// 2026-07-28 era the URI removed from the listen stream.
    pub async fn unsubscribe_resource(&self, uri: &str) -> Result<()> {
        if self.era() == Era::Legacy {
            return self
                .request(methods::RESOURCES_UNSUBSCRIBE, Some(json!({"uri": uri})))
                .await
                .map(|_| ());
        }
        let mut filter = self.current_filter();
        if let Some(uris) = &mut filter.resource_subscriptions {
            uris.retain(|u| u != uri);
        }
        if filter.is_empty() {
            self.stop_listening();
            return Ok(());
        }
        self.listen(filter).await.map(|_| ())
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
        let params = json!({"name": name, "arguments": arguments});
        self.typed_call(
            methods::PROMPTS_GET,
            Some(params),
            RequestOptions::default(),
        )
        .await
    }

    /// Asks for completions of an argument.
    pub async fn complete(&self, params: CompleteRequestParams) -> Result<CompleteResult> {
        let params = crate::error::encode_params(methods::COMPLETION_COMPLETE, params)?;
        self.typed_call(
            methods::COMPLETION_COMPLETE,
            Some(params),
            RequestOptions::default(),
        )
        .await
    }

    /// Sets the minimum level of the log messages the server sends: `logging/setLevel`, or in
    /// the 2026-07-28 era the level every later request carries in its `_meta`.
    pub async fn set_log_level(&self, level: LoggingLevel) -> Result<()> {
        if let Some(link) = &self.inner.modern {
            link.set_log_level(level);
            return Ok(());
        }
        self.request(methods::LOGGING_SET_LEVEL, Some(json!({"level": level})))
            .await
            .map(|_| ())
    }

    /// Replaces the roots offered to the server and tells it they changed (in the 2026-07-28
    /// era, which has no such notification, the server gets them when it next asks).
    pub fn set_roots(&self, roots: Vec<Root>) -> Result<()> {
        let Some(current) = &self.inner.shared.handlers.roots else {
            return Err(Error::Protocol("the client was built without roots".into()));
        };
        *current.write().unwrap_or_else(|p| p.into_inner()) = roots;
        if self.era() == Era::Modern {
            return Ok(());
        }
        self.inner.peer.notify(methods::ROOTS_LIST_CHANGED, None)
    }

    /// Subscribes to topic patterns. Accepted patterns are tracked: once one is held, events
    /// matching none of them are dropped before the handler (docs/protocol.md 2.4). Retained values
    /// come back in the result, not through the handler. Handshake era only.
    pub async fn subscribe<I, S>(&self, topics: I) -> Result<EventSubscribeResult>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.legacy_only()?;
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

    /// Unsubscribes from topic patterns and stops tracking them. Handshake era only.
    pub async fn unsubscribe<I, S>(&self, topics: I) -> Result<EventUnsubscribeResult>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.legacy_only()?;
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

    /// Lists the topics the server declares. Handshake era only.
    pub async fn list_events(&self) -> Result<Vec<EventTopicDescriptor>> {
        self.legacy_only()?;
        let result: EventListResult = typed(&self.inner.peer, methods::EVENTS_LIST, None).await?;
        Ok(result.topics)
    }

    fn legacy_only(&self) -> Result<()> {
        match self.era() {
            Era::Modern => Err(Error::Protocol(EVENTS_NEED_LEGACY.to_owned())),
            _ => Ok(()),
        }
    }

    /// The patterns the server accepted and that are still subscribed.
    pub fn subscriptions(&self) -> Vec<String> {
        self.inner.shared.subscriptions()
    }

    /// Asks for the change notifications of `filter`; they reach the
    /// [`on_notification`](ClientBuilder::on_notification) callback. Returns what the server
    /// will send.
    ///
    /// In the 2026-07-28 era this opens the client's `subscriptions/listen` stream (or replaces
    /// its filter) and waits for the server's acknowledgement; the stream is reopened with a
    /// backoff whenever it ends or breaks, until [`stop_listening`](Client::stop_listening) or
    /// [`close`](Client::close). In the handshake era the list changes the server declares
    /// arrive by themselves, and each URI of `resource_subscriptions` is subscribed to with
    /// `resources/subscribe`.
    pub async fn listen(&self, filter: SubscriptionFilter) -> Result<SubscriptionFilter> {
        let inner = &self.inner;
        let Some(link) = &inner.modern else {
            for uri in filter.resource_subscriptions.iter().flatten() {
                self.request(methods::RESOURCES_SUBSCRIBE, Some(json!({"uri": uri})))
                    .await?;
            }
            let declared = builder::declared_list_changes(self.capabilities());
            return Ok(SubscriptionFilter {
                tools_list_changed: filter.tools_list_changed.and(declared.tools_list_changed),
                prompts_list_changed: filter
                    .prompts_list_changed
                    .and(declared.prompts_list_changed),
                resources_list_changed: filter
                    .resources_list_changed
                    .and(declared.resources_list_changed),
                resource_subscriptions: filter.resource_subscriptions,
            });
        };
        let acks = || inner.shared.listen_acks();
        inner
            .listener
            .listen(&inner.peer, link, acks, filter, inner.request_timeout)
            .await
    }

    /// Closes the listen stream and stops reopening it (2026-07-28 era; nothing in the
    /// handshake era).
    pub fn stop_listening(&self) {
        self.inner.listener.stop();
    }

    /// The filter of the running listen stream, else the list changes asked for by default.
    fn current_filter(&self) -> SubscriptionFilter {
        self.inner.listener.filter().unwrap_or_else(|| {
            if self.inner.shared.handlers.notification.is_some() {
                builder::declared_list_changes(self.capabilities())
            } else {
                SubscriptionFilter::default()
            }
        })
    }

    /// In the 2026-07-28 era, a client with a notification callback listens to the list
    /// changes the server declares, as it would hear them in the handshake era.
    async fn listen_by_default(&self) {
        if self.era() != Era::Modern || self.inner.shared.handlers.notification.is_none() {
            return;
        }
        let filter = builder::declared_list_changes(self.capabilities());
        if filter.is_empty() {
            return;
        }
        if let Err(e) = self.listen(filter).await {
            tracing::warn!(error = %e, "cannot listen to the server's list changes");
        }
    }

    /// Closes the connection (a spawned server sees end of input and exits) and waits for it.
    pub async fn close(&self) {
        self.inner.listener.stop_and_wait().await;
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
