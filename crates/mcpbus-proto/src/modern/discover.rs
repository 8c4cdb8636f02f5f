//! `server/discover`: the server's revisions, capabilities and identity, asked for without any
//! handshake. Every 2026-07-28 server implements it; clients may call it first, or use it on
//! stdio to learn whether a server is of the modern era at all.

use serde::{Deserialize, Serialize};

use super::capabilities::ServerCapabilities;
use super::meta::{RequestMeta, ResultMeta};

/// Params of `server/discover`: only the request metadata every modern request carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscoverRequestParams {
    /// Request metadata (revision, client capabilities, ...).
    #[serde(rename = "_meta")]
    pub meta: RequestMeta,
}

impl DiscoverRequestParams {
    /// Params with the given metadata.
    pub fn new(meta: RequestMeta) -> Self {
        DiscoverRequestParams { meta }
    }
}

/// Result of `server/discover` (the payload; on the wire it is cacheable and complete:
/// `Complete<Cacheable<DiscoverResult>>`).
///
/// ```
/// use mcpbus_proto::mcp::Implementation;
/// use mcpbus_proto::modern::{
///     CacheScope, Cacheable, Complete, DiscoverResult, ResultMeta, ServerCapabilities,
/// };
///
/// let mut result = DiscoverResult::new(vec!["2026-07-28".into()], ServerCapabilities::default());
/// result.meta = Some(ResultMeta::with_server_info(Implementation::new("s", "1")));
/// let wire = Complete(Cacheable::new(result, 3_600_000, CacheScope::Public));
/// let json = serde_json::to_value(&wire).unwrap();
/// assert_eq!(json["resultType"], "complete");
/// assert_eq!(json["ttlMs"], 3_600_000);
/// assert_eq!(json["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "s");
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoverResult {
    /// The revisions the server speaks; the client picks one of them for its requests.
    pub supported_versions: Vec<String>,
    /// What the server can do.
    pub capabilities: ServerCapabilities,
    /// How to use the server, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Result metadata; servers should name themselves there (`serverInfo`).
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<ResultMeta>,
}

impl DiscoverResult {
    /// A result without instructions or metadata.
    pub fn new(supported_versions: Vec<String>, capabilities: ServerCapabilities) -> Self {
        DiscoverResult {
            supported_versions,
            capabilities,
            instructions: None,
            meta: None,
        }
    }
}
