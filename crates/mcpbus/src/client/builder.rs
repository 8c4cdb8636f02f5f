//! [`ClientBuilder`]: the client's identity, callbacks and era, and how it connects.

use std::any::Any;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::FutureExt;
use mcpbus_proto::events::EventParams;
use mcpbus_proto::jsonrpc::ErrorObject;
use mcpbus_proto::jsonrpc::Notification;
use mcpbus_proto::mcp::{
    self, ClientCapabilities, CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams,
    ElicitResult, ElicitationCapability, Implementation, InitializeResult,
    LoggingMessageNotificationParams, Root, RootsCapability, methods,
};
use mcpbus_proto::modern::{self, RequestMeta, SubscriptionFilter};
use mcpbus_proto::topic::TopicPattern;
use serde_json::{Map, json};
use tokio::sync::mpsc;

use super::era::{Discovered, Era, Prober, Verdict};
use super::modern::{ModernLink, modern_capabilities};
use super::{Client, ClientInner, handler, listen, typed};
use crate::error::{Error, Result};
use crate::service::{Peer, ServiceConfig, spawn_service};
use crate::transport::{HttpClientTransport, HttpHandle, Transport};

/// How long `server/discover` may take to answer before the server counts as one of the
/// handshake era (default of [`ClientBuilder::probe_timeout`]).
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Configures and connects a [`Client`].
pub struct ClientBuilder {
    pub(super) info: Implementation,
    /// The handshake-era revision `initialize` asks for.
    protocol_version: String,
    /// The 2026-07-28-era revision asked for first.
    modern_version: String,
    capabilities: ClientCapabilities,
    pub(super) handlers: handler::Handlers,
    event_filter: Option<String>,
    service: ServiceConfig,
    era: Era,
    probe_timeout: Duration,
    /// Probe with `server/discover` first even with an event handler.
    discover_first: bool,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("info", &self.info)
            .field("capabilities", &self.capabilities)
            .field("era", &self.era)
            .finish()
    }
}

impl ClientBuilder {
    pub(super) fn new(info: Implementation) -> Self {
        ClientBuilder {
            info,
            protocol_version: mcp::LATEST_PROTOCOL_VERSION.to_string(),
            modern_version: modern::LATEST_PROTOCOL_VERSION.to_string(),
            capabilities: ClientCapabilities::default(),
            handlers: handler::Handlers::default(),
            event_filter: None,
            service: ServiceConfig::default(),
            era: Era::Auto,
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            discover_first: false,
        }
    }

    /// Answers the server's sampling requests (declares the `sampling` capability). In the
    /// 2026-07-28 era the same callback answers the `sampling/createMessage` inputs of
    /// `input_required` results.
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
    /// In the 2026-07-28 era the same callback answers the `elicitation/create` inputs of
    /// `input_required` results (a URL-mode input gets its input key as `elicitationId`).
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

    /// Offers these roots to the server (declares the `roots` capability), in both eras.
    pub fn roots(mut self, roots: Vec<Root>) -> Self {
        self.capabilities.roots = Some(RootsCapability {
            list_changed: Some(true),
        });
        self.handlers.roots = Some(Arc::new(RwLock::new(roots)));
        self
    }

    /// Receives events; see [`ClientBuilder::event_filter`] for an extra topic filter. Topic
    /// events exist only in the handshake era: with [`Era::Auto`], a client with an event
    /// handler opens with `initialize`.
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

    /// Receives the server's log messages (in the 2026-07-28 era only after
    /// [`Client::set_log_level`]: the level travels in each request's `_meta`).
    pub fn on_log<F>(mut self, f: F) -> Self
    where
        F: Fn(LoggingMessageNotificationParams) + Send + Sync + 'static,
    {
        self.handlers.log = Some(Arc::new(f));
        self
    }

    /// Receives every other notification (list changes, resource updates…). In the
    /// 2026-07-28 era these come on a `subscriptions/listen` stream: connecting opens one for
    /// the list changes the server declares, kept open by [`Client::listen`]'s rules.
    pub fn on_notification<F>(mut self, f: F) -> Self
    where
        F: Fn(Notification) + Send + Sync + 'static,
    {
        self.handlers.notification = Some(Arc::new(f));
        self
    }

    /// The protocol revision to ask for (default: the newest of each era). A 2026-07-28-era
    /// revision is the one modern requests ask for first; any other is the one `initialize`
    /// asks for.
    pub fn protocol_version(mut self, version: impl Into<String>) -> Self {
        let version = version.into();
        if modern::is_supported_protocol_version(&version) {
            self.modern_version = version;
        } else {
            self.protocol_version = version;
        }
        self
    }

    /// The era to speak (default [`Era::Auto`]: find out when connecting; see [`Era`]).
    pub fn era(mut self, era: Era) -> Self {
        self.era = era;
        self
    }

    /// With [`Era::Auto`], probes with `server/discover` first even when an event handler is
    /// set (which otherwise makes the client open with `initialize`): a client that takes
    /// events in either era, SEP-3415 subscriptions ([`Client::subscribe_events`]) from a
    /// 2026-07-28 server and topic events through [`on_event`](Self::on_event) from a
    /// handshake-era one. `mcpbus sub` connects so.
    pub fn discover_first(mut self) -> Self {
        self.discover_first = true;
        self
    }

    /// How long the `server/discover` probe waits before taking the server for one of the
    /// handshake era (default [`DEFAULT_PROBE_TIMEOUT`]).
    pub fn probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = timeout;
        self
    }

    /// Settings of the connection's service loop (timeouts, queue capacity).
    pub fn service_config(mut self, config: ServiceConfig) -> Self {
        self.service = config;
        self
    }

    /// Connects over `transport` in the era set by [`era`](Self::era): with `Auto`, probes the
    /// server (see [`Era::Auto`]); in the handshake era, initializes the session. Over an
    /// [`HttpClientTransport`] the probe is a POST of its own, whose HTTP status counts too.
    pub async fn connect<T: Transport>(mut self, transport: T) -> Result<Client> {
        if let Some(filter) = &self.event_filter {
            let pattern =
                TopicPattern::new(filter).map_err(|source| Error::InvalidEventFilter {
                    filter: filter.clone(),
                    source,
                })?;
            self.handlers.event_filter = Some(pattern);
        }
        // The HTTP transport is the one whose answers carry a status the probe must read: keep a
        // handle on it before it goes to the service loop.
        let http = (&transport as &dyn Any)
            .downcast_ref::<HttpClientTransport>()
            .map(HttpClientTransport::handle);
        let wants_events = self.handlers.event.is_some();
        let handlers = std::mem::take(&mut self.handlers);
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(handler::ClientShared::new(handlers, event_tx));
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
            self.service.clone(),
        );
        let peer = service.peer().clone();
        let connected = match self.handshake(&peer, http.as_ref(), wants_events).await {
            Ok(connected) => connected,
            Err(e) => {
                peer.close();
                return Err(e);
            }
        };
        let (init, modern) = match connected {
            Connected::Legacy(init) => (init, None),
            Connected::Modern(init, link) => (init, Some(link)),
        };
        let client = Client {
            inner: Arc::new(ClientInner {
                peer,
                init,
                modern,
                shared,
                service: std::sync::Mutex::new(Some(service)),
                listener: listen::Listener::default(),
                request_timeout: self.service.request_timeout,
            }),
        };
        client.listen_by_default().await;
        Ok(client)
    }

    /// Finds the era (as [`Era`] says) and opens the connection in it.
    async fn handshake(
        &self,
        peer: &Peer,
        http: Option<&HttpHandle>,
        wants_events: bool,
    ) -> Result<Connected> {
        match self.era {
            Era::Legacy => self.initialize(peer).await.map(Connected::Legacy),
            Era::Modern => self.modern(self.probe(peer, http).await?, http),
            // Topic events need the handshake era: try it first, and fall forward only when
            // the server refuses `initialize` and turns out modern.
            Era::Auto if wants_events && !self.discover_first => {
                match self.initialize(peer).await {
                    Ok(init) => Ok(Connected::Legacy(init)),
                    Err(e @ (Error::Remote(_) | Error::Timeout(_))) => {
                        match self.probe(peer, http).await? {
                            Verdict::Legacy(_) => Err(e),
                            verdict => self.modern(verdict, http),
                        }
                    }
                    Err(e) => Err(e),
                }
            }
            Era::Auto => match self.probe(peer, http).await? {
                Verdict::Legacy(reason) => {
                    tracing::debug!(%reason, "the server is of the handshake era; initializing");
                    self.initialize(peer).await.map(Connected::Legacy)
                }
                verdict => self.modern(verdict, http),
            },
        }
    }

    async fn probe(&self, peer: &Peer, http: Option<&HttpHandle>) -> Result<Verdict> {
        let meta = RequestMeta::new(
            self.modern_version.clone(),
            modern_capabilities(&self.capabilities),
        )
        .with_client_info(self.info.clone());
        Prober {
            peer,
            http,
            meta,
            timeout: self.probe_timeout,
        }
        .probe()
        .await
    }

    /// Sets the connection up in the 2026-07-28 era, if the probe found the server modern.
    fn modern(&self, verdict: Verdict, http: Option<&HttpHandle>) -> Result<Connected> {
        let Discovered {
            version,
            discover,
            description,
        } = match verdict {
            Verdict::Modern(discovered) => *discovered,
            Verdict::Refused(e) => return Err(Error::Remote(e)),
            Verdict::Legacy(reason) => {
                return Err(Error::Protocol(format!(
                    "the server does not speak MCP 2026-07-28 ({reason}); connect with \
                     Era::Legacy or Era::Auto"
                )));
            }
        };
        if let Some(http) = http {
            http.use_modern(&version)?;
        }
        tracing::debug!(version, server = %description.server_info.name, "speaking MCP 2026-07-28");
        let link = ModernLink::new(
            version,
            self.info.clone(),
            modern_capabilities(&self.capabilities),
            http.cloned(),
            discover,
        );
        Ok(Connected::Modern(description, Arc::new(link)))
    }

    /// The handshake: `initialize`, then `notifications/initialized`.
    async fn initialize(&self, peer: &Peer) -> Result<InitializeResult> {
        let params = json!({
            "protocolVersion": self.protocol_version,
            "capabilities": self.capabilities,
            "clientInfo": self.info,
        });
        let init: InitializeResult = typed(peer, methods::INITIALIZE, Some(params)).await?;
        peer.notify(methods::INITIALIZED, None)?;
        Ok(init)
    }
}

/// How a connection opened.
enum Connected {
    /// With `initialize`: the server's answer.
    Legacy(InitializeResult),
    /// In the 2026-07-28 era: the server described in the handshake era's shape, and what
    /// every request carries.
    Modern(InitializeResult, Arc<ModernLink>),
}

/// The list changes a server declares, as a listen filter.
pub(super) fn declared_list_changes(capabilities: &mcp::ServerCapabilities) -> SubscriptionFilter {
    let on = |declared: Option<bool>| (declared == Some(true)).then_some(true);
    SubscriptionFilter {
        tools_list_changed: on(capabilities.tools.as_ref().and_then(|c| c.list_changed)),
        prompts_list_changed: on(capabilities.prompts.as_ref().and_then(|c| c.list_changed)),
        resources_list_changed: on(capabilities.resources.as_ref().and_then(|c| c.list_changed)),
        resource_subscriptions: None,
    }
}
