//! Capabilities of the 2026-07-28 revision: what a client declares in every request's `_meta`,
//! and what a server advertises in `server/discover`.
//!
//! They differ from the handshake era's ([`crate::mcp::ClientCapabilities`],
//! [`crate::mcp::ServerCapabilities`]) in three ways: `extensions` is a member of its own, `tasks`
//! left the core (it is the extension `io.modelcontextprotocol/tasks` now), and the client's
//! `roots` is an empty object (there is no roots list-changed notification any more).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::mcp::{ElicitationCapability, PromptsCapability, ResourcesCapability, ToolsCapability};

/// Extensions a peer supports: extension id (a `_meta`-style key with a mandatory prefix, e.g.
/// `io.modelcontextprotocol/tasks`) to its settings object; an empty object means support
/// without settings.
pub type Extensions = BTreeMap<String, Map<String, Value>>;

/// What a client can do for one request (`_meta["io.modelcontextprotocol/clientCapabilities"]`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientCapabilities {
    /// Non-standard capabilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experimental: Option<Map<String, Value>>,
    /// The client can list its roots (deprecated in 2026-07-28); `{}` on the wire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roots: Option<Map<String, Value>>,
    /// The client can sample an LLM (`{context?, tools?}`; deprecated in 2026-07-28).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<Map<String, Value>>,
    /// The client can ask its user for input (form and/or URL mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elicitation: Option<ElicitationCapability>,
    /// Extensions the client supports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Extensions>,
    /// Members this crate does not know, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ClientCapabilities {
    /// The settings of extension `id`, when the client declares it.
    pub fn extension(&self, id: &str) -> Option<&Map<String, Value>> {
        self.extensions.as_ref()?.get(id)
    }

    /// Declares extension `id` with the given settings.
    pub fn with_extension(mut self, id: impl Into<String>, settings: Map<String, Value>) -> Self {
        self.extensions
            .get_or_insert_with(Extensions::new)
            .insert(id.into(), settings);
        self
    }
}

/// What a server can do (`capabilities` of the `server/discover` result).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerCapabilities {
    /// Non-standard capabilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experimental: Option<Map<String, Value>>,
    /// The server sends log messages to requests that ask for them (deprecated in 2026-07-28).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<Map<String, Value>>,
    /// The server answers `completion/complete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completions: Option<Map<String, Value>>,
    /// The server offers prompts; `listChanged` means a listen stream can ask for
    /// `notifications/prompts/list_changed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompts: Option<PromptsCapability>,
    /// The server offers resources; `subscribe` means a listen stream can ask for resource
    /// updates, `listChanged` for `notifications/resources/list_changed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesCapability>,
    /// The server offers tools; `listChanged` means a listen stream can ask for
    /// `notifications/tools/list_changed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<ToolsCapability>,
    /// Extensions the server supports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Extensions>,
    /// Members this crate does not know, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ServerCapabilities {
    /// The settings of extension `id`, when the server supports it.
    pub fn extension(&self, id: &str) -> Option<&Map<String, Value>> {
        self.extensions.as_ref()?.get(id)
    }

    /// Declares extension `id` with the given settings.
    pub fn with_extension(mut self, id: impl Into<String>, settings: Map<String, Value>) -> Self {
        self.extensions
            .get_or_insert_with(Extensions::new)
            .insert(id.into(), settings);
        self
    }
}
