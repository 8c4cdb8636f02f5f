//! What a server-side handler can do while it answers a request.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use mcpbus_proto::jsonrpc::ErrorObject;
use mcpbus_proto::mcp::{
    ClientCapabilities, CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams,
    ElicitResult, Implementation, ListRootsResult, LoggingLevel, LoggingMessageNotificationParams,
    methods,
};
use mcpbus_proto::modern::ClientCapabilities as ModernClientCapabilities;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::Server;
use super::modern::ModernScope;
use crate::error::{Error, Result, encode_params};
use crate::events::{EventHub, Principal};
use crate::service::{Peer, RequestContext, RequestOptions};

/// What the client said when it initialized.
#[derive(Debug, Clone)]
pub struct ClientSession {
    /// The negotiated protocol revision.
    pub protocol_version: String,
    /// The client's name and version.
    pub client_info: Implementation,
    /// What the client can do.
    pub capabilities: ClientCapabilities,
}

/// The state of one client's session on the server.
pub(crate) struct SessionState {
    pub(crate) id: Arc<str>,
    /// The session as a subscriber of the hub, while its events are delivered here.
    pub(crate) subscriber: Option<crate::events::SubscriberKey>,
    pub(crate) peer: Peer,
    pub(crate) principal: Mutex<Principal>,
    /// The identity a 2026-07-28 request authenticated as (a bearer token on HTTP,
    /// docs/protocol.md 3.6.1); never set for a handshake-era session.
    pub(crate) authenticated: Option<Arc<super::Identity>>,
    pub(crate) client: Mutex<Option<ClientSession>>,
    pub(crate) initialized: AtomicBool,
    pub(crate) log_level: Mutex<Option<LoggingLevel>>,
    pub(crate) resource_subscriptions: Mutex<HashSet<String>>,
    /// Why the session ends, for the log line; set by whoever ends it.
    pub(crate) end_reason: Mutex<&'static str>,
}

pub(crate) use crate::util::lock;

impl SessionState {
    /// The state behind one request of the 2026-07-28 era, which has no session: nothing in
    /// it outlives the request. `authenticated` is the principal its credentials named.
    pub(crate) fn of_request(peer: Peer, authenticated: Option<Arc<super::Identity>>) -> Self {
        // Not a session id: it names the request's scope in logs, and never leaves the server.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id: Arc<str> = format!("request-{n}").into();
        SessionState {
            id: id.clone(),
            subscriber: None,
            peer,
            principal: Mutex::new(Principal {
                session_id: id.clone(),
                // An authenticated principal is its own agent (docs/protocol.md 3.6.1).
                agent_id: authenticated.as_ref().map_or(id, |i| i.agent_id.clone()),
                identity: authenticated.clone(),
            }),
            authenticated,
            client: Mutex::new(None),
            initialized: AtomicBool::new(false),
            log_level: Mutex::new(None),
            resource_subscriptions: Mutex::new(HashSet::new()),
            end_reason: Mutex::new("request answered"),
        }
    }

    pub(crate) fn client(&self) -> Option<ClientSession> {
        lock(&self.client).clone()
    }

    /// Sends `notifications/message` through `peer` if `level` passes the level the client set.
    pub(crate) fn log(&self, peer: &Peer, level: LoggingLevel, logger: Option<&str>, data: Value) {
        if let Some(min) = *lock(&self.log_level)
            && level < min
        {
            return;
        }
        send_log(peer, level, logger, data);
    }
}

fn send_log(peer: &Peer, level: LoggingLevel, logger: Option<&str>, data: Value) {
    let params = LoggingMessageNotificationParams {
        level,
        logger: logger.map(str::to_string),
        data,
    };
    if let Ok(p) = serde_json::to_value(params) {
        let _ = peer.notify(methods::LOGGING_MESSAGE, Some(p));
    }
}

/// The context of one request to a server: the session it came from, progress, logging,
/// cancellation, requests to the client (sampling, elicitation, roots), and the event hub.
#[derive(Clone)]
pub struct Context {
    pub(crate) request: RequestContext,
    pub(crate) session: Arc<SessionState>,
    pub(crate) server: Server,
    /// Set for a request of the 2026-07-28 era: the client, log level and input rounds come
    /// from the request itself, not from a session.
    pub(crate) modern: Option<Arc<ModernScope>>,
    /// The key the next input is asked under in the 2026-07-28 era ([`Context::input_key`]).
    pub(crate) input_key: Option<Arc<str>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("session_id", &self.session.id)
            .field("request_id", &self.request.id)
            .finish()
    }
}

impl Context {
    /// The id of the caller's session.
    pub fn session_id(&self) -> &str {
        &self.session.id
    }

    /// The principal the request authenticated as (a bearer token on the HTTP endpoint, in the
    /// 2026-07-28 era; docs/protocol.md 3.6.1), if any.
    pub fn principal(&self) -> Option<&str> {
        self.session.authenticated.as_deref().map(|i| &*i.subject)
    }

    /// Everything the request's credential proved (subject, client, scopes, claims), if it
    /// authenticated (docs/auth.md): in the handshake era, the credential that opened the
    /// session (every request of the session presents it again).
    pub fn identity(&self) -> Option<Arc<super::Identity>> {
        lock(&self.session.principal).identity.clone()
    }

    /// The caller's agent id (by default its session id).
    pub fn agent_id(&self) -> Arc<str> {
        lock(&self.session.principal).agent_id.clone()
    }

    /// What the client said when it initialized or, in the 2026-07-28 era, what this request
    /// says of it in its `_meta`.
    pub fn client(&self) -> Option<ClientSession> {
        match &self.modern {
            Some(scope) => Some(scope.client()),
            None => self.session.client(),
        }
    }

    /// This context, asking for its next input (elicitation, sampling, roots) under `key`.
    ///
    /// In the 2026-07-28 era a server asks for input by answering `input_required` with its
    /// requests by key, and the client answers under the same keys; without a key the
    /// requests are numbered in the order the handler asks them (`elicitation-1`, ...). In
    /// the handshake era keys mean nothing and are ignored.
    ///
    /// ```no_run
    /// # use mcpbus::server::Context;
    /// # use mcpbus_proto::mcp::{ElicitRequestParams, ElicitRequestFormParams};
    /// # async fn f(ctx: Context, form: ElicitRequestParams) -> mcpbus::Result<()> {
    /// let answer = ctx.input_key("user_name").elicit(form).await?;
    /// # Ok(()) }
    /// ```
    pub fn input_key(&self, key: impl Into<String>) -> Context {
        let mut keyed = self.clone();
        keyed.input_key = Some(key.into().into());
        keyed
    }

    /// Makes this tool call a task now, for a tool declared with
    /// [`TaskStart::Handler`](crate::tasks::TaskStart::Handler): the client is answered with
    /// the task as soon as it is stored, and the handler runs on in the background; input it
    /// asked for before this came through `input_required` rounds of the call itself, input
    /// it asks for afterwards parks the task until `tasks/update` answers it.
    ///
    /// Does nothing when the call does not run as a task (the tool does not support tasks,
    /// the request did not declare the extension, the handshake era) or already is one; an
    /// error when the task could not be stored.
    ///
    /// ```no_run
    /// # use mcpbus::server::{Context, ToolError};
    /// # use mcpbus_proto::mcp::ElicitRequestParams;
    /// # async fn handler(ctx: Context, form: ElicitRequestParams) -> Result<String, ToolError> {
    /// // Asked before the task exists: answered in the call's own rounds of input.
    /// let answer = ctx.input_key("confirm").elicit(form).await?;
    /// ctx.start_task().await?;
    /// // From here on the client polls tasks/get.
    /// # Ok(format!("{:?}", answer.action)) }
    /// ```
    pub async fn start_task(&self) -> Result<()> {
        match self.modern.as_ref().and_then(|scope| scope.task()) {
            Some(run) => run.start().await,
            None => Ok(()),
        }
    }

    /// The id of the task this tool call runs as, once it is one.
    pub fn task_id(&self) -> Option<String> {
        let run = self.modern.as_ref()?.task()?;
        run.id().map(str::to_owned)
    }

    /// Whether the request is of the 2026-07-28 era (no session; see docs/protocol.md 6).
    pub fn is_modern(&self) -> bool {
        self.modern.is_some()
    }

    /// The server answering this request.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The server's event hub, to publish events.
    pub fn events(&self) -> &EventHub {
        self.server.events()
    }

    /// The `_meta` of the request.
    pub fn meta(&self) -> Option<&serde_json::Map<String, Value>> {
        self.request.meta.as_ref()
    }

    /// Reports progress, if the client asked for it with a progress token.
    pub fn progress(&self, progress: f64, total: Option<f64>, message: Option<String>) {
        self.request.progress(progress, total, message);
    }

    /// Sends a log message to the client, subject to the level it set with
    /// `logging/setLevel` or, in the 2026-07-28 era, to the request's `logLevel` (none set:
    /// no log messages at all).
    pub fn log(&self, level: LoggingLevel, logger: Option<&str>, data: Value) {
        // Through the request's own peer: on HTTP the message rides the request's stream.
        match &self.modern {
            Some(scope) => match scope.meta.log_level {
                Some(min) if level >= min => send_log(&self.request.peer, level, logger, data),
                _ => {}
            },
            None => self.session.log(&self.request.peer, level, logger, data),
        }
    }

    /// Cancelled when the client cancels this request or disconnects.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.request.cancel
    }

    /// Whether the client cancelled this request.
    pub fn is_cancelled(&self) -> bool {
        self.request.is_cancelled()
    }

    /// Closes the connection carrying this request's SSE stream without ending the request
    /// (SEP-1699 polling): the client resumes with `Last-Event-ID` and gets the rest, including
    /// the answer. Does nothing on transports without such streams (stdio).
    pub fn close_sse_stream(&self) {
        self.request.peer.close_related_stream();
    }

    /// The raw peer, to send any request or notification to the client.
    pub fn peer(&self) -> &Peer {
        &self.request.peer
    }

    fn capabilities(&self) -> ClientCapabilities {
        self.client().map(|c| c.capabilities).unwrap_or_default()
    }

    /// A request to the client: sent to it in the handshake era, asked for through
    /// `input_required` in the 2026-07-28 era.
    async fn typed_request<R: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
    ) -> Result<R> {
        let value = match &self.modern {
            Some(scope) => {
                let key = self.input_key.as_deref();
                // Once the call is a task, input goes through the task (tasks/update).
                let answer = match scope.task().filter(|run| run.id().is_some()) {
                    Some(run) => run.ask(key, method, params).await?,
                    None => scope.input.ask(key, method, params).await?,
                };
                return serde_json::from_value(answer).map_err(|e| {
                    Error::Refused(ErrorObject::invalid_params(format_args!(
                        "inputResponses: the answer to {method} is malformed: {e}"
                    )))
                });
            }
            None => {
                self.request
                    .peer
                    .request_with(method, Some(params), RequestOptions::default())
                    .await?
            }
        };
        serde_json::from_value(value).map_err(|source| Error::InvalidResponse {
            method: method.to_owned(),
            source,
        })
    }

    /// Asks the client's model for a completion (`sampling/createMessage`).
    pub async fn create_message(
        &self,
        params: CreateMessageRequestParams,
    ) -> Result<CreateMessageResult> {
        if self.capabilities().sampling.is_none() {
            return Err(self.missing_capability("sampling"));
        }
        let params = encode_params(methods::SAMPLING_CREATE_MESSAGE, params)?;
        self.typed_request(methods::SAMPLING_CREATE_MESSAGE, params)
            .await
    }

    /// Asks the user for input through the client (`elicitation/create`, form or URL mode).
    pub async fn elicit(&self, params: ElicitRequestParams) -> Result<ElicitResult> {
        let caps = self.capabilities();
        let Some(elicitation) = caps.elicitation else {
            return Err(self.missing_capability("elicitation"));
        };
        if params.mode() == "url" && !elicitation.supports_url() {
            return Err(Error::Protocol(
                "the client does not support URL-mode elicitation".into(),
            ));
        }
        let mut params = encode_params(methods::ELICITATION_CREATE, params)?;
        if let (Some(object), true) = (params.as_object_mut(), self.is_modern()) {
            // 2026-07-28 has no elicitation ids: the retry itself tells the outcome.
            object.remove("elicitationId");
        }
        self.typed_request(methods::ELICITATION_CREATE, params)
            .await
    }

    /// Asks the client for its roots (`roots/list`).
    pub async fn list_roots(&self) -> Result<ListRootsResult> {
        if self.capabilities().roots.is_none() {
            return Err(self.missing_capability("roots"));
        }
        self.typed_request(methods::ROOTS_LIST, serde_json::json!({}))
            .await
    }
}

impl Context {
    /// The error for a capability the client did not declare: `-32021` naming it in the
    /// 2026-07-28 era (the client is answered with it), a protocol error otherwise.
    fn missing_capability(&self, capability: &str) -> Error {
        if self.is_modern() {
            let mut required = ModernClientCapabilities::default();
            required
                .extra
                .insert(capability.to_owned(), Value::Object(Default::default()));
            return Error::Refused(ErrorObject::missing_required_client_capability(required));
        }
        Error::Protocol(format!(
            "the client did not declare the {capability} capability"
        ))
    }
}

impl SessionState {
    pub(crate) fn mark_initialized(&self) {
        self.initialized.store(true, Ordering::Release);
    }
}
