//! MCP messages of the stateless era (protocol revision 2026-07-28): wire types only.
//!
//! The 2026-07-28 revision drops the `initialize` handshake. Every request carries its revision,
//! the client's capabilities and identity in `params._meta` ([`RequestMeta`]); `server/discover`
//! tells a client what the server speaks ([`DiscoverResult`]); change notifications flow on a
//! `subscriptions/listen` stream ([`SubscriptionFilter`] and the types around it); a server that
//! needs input answers `input_required` instead of sending a request of its own
//! ([`InputRequiredResult`]); every result names its `resultType` ([`Complete`], [`MrtrResult`]);
//! list, read and discover results carry caching hints ([`Cacheable`]); capabilities gain
//! `extensions` ([`ClientCapabilities`], [`ServerCapabilities`]); three error codes are new
//! ([`crate::error_codes::HEADER_MISMATCH`] and the two after it, with constructors on
//! [`ErrorObject`](crate::ErrorObject), see [`UnsupportedProtocolVersionData`]). The method names
//! are in [`crate::mcp::methods`], the HTTP header names in [`crate::headers`].
//!
//! Payloads the revision did not change are not repeated here: a modern `tools/call` carries a
//! [`crate::mcp::CallToolRequestParams`] (wrapped in [`InputResponseRequestParams`] for the
//! retry members) and answers an [`MrtrResult`]`<`[`crate::mcp::CallToolResult`]`>`; the payload's
//! `_meta` map is read with [`RequestMeta::from_map`]. The table of what goes with each method:
//!
//! | method | params | result |
//! |---|---|---|
//! | `server/discover` | [`DiscoverRequestParams`] | `Complete<Cacheable<DiscoverResult>>` |
//! | `tools/list`, `prompts/list`, `resources/list`, `resources/templates/list` | [`crate::mcp::PaginatedRequestParams`] | `Complete<Cacheable<ListToolsResult>>` (and so on) |
//! | `tools/call` | `InputResponseRequestParams<CallToolRequestParams>` | `MrtrResult<CallToolResult>` |
//! | `prompts/get` | `InputResponseRequestParams<GetPromptRequestParams>` | `MrtrResult<GetPromptResult>` |
//! | `resources/read` | `InputResponseRequestParams<ReadResourceRequestParams>` | `MrtrResult<Cacheable<ReadResourceResult>>` |
//! | `completion/complete` | [`crate::mcp::CompleteRequestParams`] | `Complete<CompleteResult>` |
//! | `subscriptions/listen` | [`SubscriptionsListenRequestParams`] | `Complete<SubscriptionsListenResult>` |
//! | `notifications/subscriptions/acknowledged` | [`SubscriptionsAcknowledgedNotificationParams`] | |
//! | `notifications/{tools,prompts,resources}/list_changed` | [`NotificationParams`] | |
//! | `notifications/resources/updated` | [`ResourceUpdatedNotificationParams`] | |
//!
//! The Tasks extension (`io.modelcontextprotocol/tasks`: `tasks/get`, `tasks/update`,
//! `tasks/cancel`, `resultType: "task"`) has a module of its own, [`tasks`].
//!
//! As in [`crate::mcp`], members this crate does not know are ignored on input, and `_meta`
//! objects keep every key. Nothing here decides anything: which era a request belongs to, and
//! what a server does with it, is up to the caller.

mod capabilities;
mod discover;
mod elicitation;
mod errors;
pub mod meta;
mod mrtr;
mod results;
mod subscriptions;
pub mod tasks;

pub use capabilities::*;
pub use discover::*;
pub use elicitation::*;
pub use errors::*;
pub use meta::{MetaError, NotificationMeta, RequestMeta, ResultMeta, protocol_version_of};
pub use mrtr::*;
pub use results::*;
pub use subscriptions::*;

/// The stateless revision this module describes.
pub const LATEST_PROTOCOL_VERSION: &str = "2026-07-28";

/// Every stateless-era revision, newest first.
pub const SUPPORTED_PROTOCOL_VERSIONS: &[&str] = &["2026-07-28"];

/// Whether `version` is one of [`SUPPORTED_PROTOCOL_VERSIONS`].
pub fn is_supported_protocol_version(version: &str) -> bool {
    SUPPORTED_PROTOCOL_VERSIONS.contains(&version)
}
