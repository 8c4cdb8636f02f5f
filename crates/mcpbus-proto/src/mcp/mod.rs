//! MCP messages of the handshake era (protocol revisions 2024-11-05 to 2025-11-25).
//!
//! These are the `params` and `result` payloads of the MCP methods; the JSON-RPC envelope around
//! them lives in [`crate::jsonrpc`], and the topic events extension in [`crate::events`]. Field
//! names are camelCase on the wire, optional members are omitted when absent, and members this
//! crate does not know are ignored on input (capability objects and [`Implementation`] keep them,
//! so that `experimental`, `extensions` or `tasks` survive a round trip).

mod annotations;
mod completion;
mod content;
mod elicitation;
mod lifecycle;
mod logging;
mod prompts;
mod resources;
mod roots;
mod sampling;
mod tools;
mod utilities;

pub use annotations::*;
pub use completion::*;
pub use content::*;
pub use elicitation::*;
pub use lifecycle::*;
pub use logging::*;
pub use prompts::*;
pub use resources::*;
pub use roots::*;
pub use sampling::*;
pub use tools::*;
pub use utilities::*;

/// The newest handshake-era protocol revision; what a server answers when it cannot echo the
/// client's revision.
pub const LATEST_PROTOCOL_VERSION: &str = "2025-11-25";

/// Every handshake-era revision served, newest first.
pub const SUPPORTED_PROTOCOL_VERSIONS: &[&str] =
    &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// Whether `version` is one of [`SUPPORTED_PROTOCOL_VERSIONS`].
pub fn is_supported_protocol_version(version: &str) -> bool {
    SUPPORTED_PROTOCOL_VERSIONS.contains(&version)
}

/// Method names of MCP requests and notifications, and of the events extension.
///
/// The 2026-07-28 revision adds [`SERVER_DISCOVER`](methods::SERVER_DISCOVER),
/// [`SUBSCRIPTIONS_LISTEN`](methods::SUBSCRIPTIONS_LISTEN) and
/// [`SUBSCRIPTIONS_ACKNOWLEDGED`](methods::SUBSCRIPTIONS_ACKNOWLEDGED), and drops `initialize`, `notifications/initialized`, `ping`,
/// `logging/setLevel`, `resources/subscribe`, `resources/unsubscribe`,
/// `notifications/elicitation/complete` and `notifications/roots/list_changed`; in that revision
/// `elicitation/create`, `sampling/createMessage` and `roots/list` only appear inside an
/// `input_required` result (see [`crate::modern`]).
pub mod methods {
    /// Request: client opens the session.
    pub const INITIALIZE: &str = "initialize";
    /// Notification: client finished initialization.
    pub const INITIALIZED: &str = "notifications/initialized";
    /// Request: liveness check, either direction.
    pub const PING: &str = "ping";
    /// Notification: the sender gave up on a request it issued.
    pub const CANCELLED: &str = "notifications/cancelled";
    /// Notification: progress of a long-running request.
    pub const PROGRESS: &str = "notifications/progress";
    /// Request: client sets the minimum log level the server sends.
    pub const LOGGING_SET_LEVEL: &str = "logging/setLevel";
    /// Notification: server sends a log message.
    pub const LOGGING_MESSAGE: &str = "notifications/message";
    /// Request: list the server's tools.
    pub const TOOLS_LIST: &str = "tools/list";
    /// Request: call a tool.
    pub const TOOLS_CALL: &str = "tools/call";
    /// Notification: the tool list changed.
    pub const TOOLS_LIST_CHANGED: &str = "notifications/tools/list_changed";
    /// Request: list the server's resources.
    pub const RESOURCES_LIST: &str = "resources/list";
    /// Request: read a resource.
    pub const RESOURCES_READ: &str = "resources/read";
    /// Request: list the server's resource templates.
    pub const RESOURCES_TEMPLATES_LIST: &str = "resources/templates/list";
    /// Request: subscribe to updates of one resource.
    pub const RESOURCES_SUBSCRIBE: &str = "resources/subscribe";
    /// Request: cancel a resource subscription.
    pub const RESOURCES_UNSUBSCRIBE: &str = "resources/unsubscribe";
    /// Notification: a subscribed resource changed.
    pub const RESOURCES_UPDATED: &str = "notifications/resources/updated";
    /// Notification: the resource list changed.
    pub const RESOURCES_LIST_CHANGED: &str = "notifications/resources/list_changed";
    /// Request: list the server's prompts.
    pub const PROMPTS_LIST: &str = "prompts/list";
    /// Request: get one prompt, with its arguments filled in.
    pub const PROMPTS_GET: &str = "prompts/get";
    /// Notification: the prompt list changed.
    pub const PROMPTS_LIST_CHANGED: &str = "notifications/prompts/list_changed";
    /// Request: argument completion.
    pub const COMPLETION_COMPLETE: &str = "completion/complete";
    /// Request (server to client): sample an LLM.
    pub const SAMPLING_CREATE_MESSAGE: &str = "sampling/createMessage";
    /// Request (server to client): ask the user for input.
    pub const ELICITATION_CREATE: &str = "elicitation/create";
    /// Notification (server to client): an URL-mode elicitation finished.
    pub const ELICITATION_COMPLETE: &str = "notifications/elicitation/complete";
    /// Request (server to client): list the client's roots.
    pub const ROOTS_LIST: &str = "roots/list";
    /// Notification (client to server): the root list changed.
    pub const ROOTS_LIST_CHANGED: &str = "notifications/roots/list_changed";
    /// Request (2026-07-28): the server's revisions, capabilities and identity.
    pub const SERVER_DISCOVER: &str = "server/discover";
    /// Request (2026-07-28): open a long-lived stream of the change notifications the client
    /// asks for.
    pub const SUBSCRIPTIONS_LISTEN: &str = "subscriptions/listen";
    /// Notification (2026-07-28, server to client): the first message of a listen stream, with
    /// the notifications the server will send on it.
    pub const SUBSCRIPTIONS_ACKNOWLEDGED: &str = "notifications/subscriptions/acknowledged";
    /// Request (events extension): subscribe to topic patterns.
    pub const EVENTS_SUBSCRIBE: &str = "events/subscribe";
    /// Request (events extension): drop topic subscriptions.
    pub const EVENTS_UNSUBSCRIBE: &str = "events/unsubscribe";
    /// Request (events extension): list the server's declared topics.
    pub const EVENTS_LIST: &str = "events/list";
    /// Notification (events extension, server to client): one delivered event.
    pub const EVENTS_EMIT: &str = "events/emit";
}
