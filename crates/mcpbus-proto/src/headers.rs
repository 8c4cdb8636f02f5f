//! The HTTP header names of MCP's Streamable HTTP transport, shared by servers and clients.
//!
//! Lowercase, as HTTP/2 sends them and as `http::HeaderName::from_static` requires; header
//! names compare case-insensitively on the wire, so `Mcp-Session-Id` is the same header.

use crate::mcp::methods;
use crate::modern::tasks;

/// The session a request belongs to (`Mcp-Session-Id`), given by the server in its answer to
/// `initialize` and sent by the client on every later request.
pub const SESSION_ID: &str = "mcp-session-id";

/// The protocol revision the client negotiated (`MCP-Protocol-Version`), sent on every
/// request after `initialize`. In 2026-07-28 it is sent on every POST and must equal the
/// revision in the body's `_meta`.
pub const PROTOCOL_VERSION: &str = "mcp-protocol-version";

/// The last SSE event id a client received (`Last-Event-ID`): a `GET` with it resumes the
/// stream that event belongs to.
pub const LAST_EVENT_ID: &str = "last-event-id";

/// The JSON-RPC method of the request in the body (`Mcp-Method`; 2026-07-28, required on every
/// request POST).
pub const METHOD: &str = "mcp-method";

/// The name the request acts on (`Mcp-Name`; 2026-07-28): `params.name`, `params.uri` or
/// `params.taskId`, required for the methods in [`NAMED_METHODS`].
pub const NAME: &str = "mcp-name";

/// The prefix of the headers that mirror tool arguments (`Mcp-Param-{Name}`; 2026-07-28), for
/// the input-schema properties a tool marks with `x-mcp-header`. See [`param`].
pub const PARAM_PREFIX: &str = "mcp-param-";

/// The methods whose requests carry [`NAME`], with the member of `params` it mirrors.
pub const NAMED_METHODS: &[(&str, &str)] = &[
    (methods::TOOLS_CALL, "name"),
    (methods::PROMPTS_GET, "name"),
    (methods::RESOURCES_READ, "uri"),
    (tasks::TASKS_GET, "taskId"),
    (tasks::TASKS_UPDATE, "taskId"),
    (tasks::TASKS_CANCEL, "taskId"),
];

/// How a [`NAME`] or `Mcp-Param-*` value that is not plain visible ASCII (or that looks like
/// this sentinel itself) is sent: `=?base64?{base64 of the UTF-8 value}?=`. This is the start.
pub const BASE64_VALUE_PREFIX: &str = "=?base64?";

/// The end of a base64-encoded header value (see [`BASE64_VALUE_PREFIX`]).
pub const BASE64_VALUE_SUFFIX: &str = "?=";

/// The lowercase header name mirroring the tool argument an `x-mcp-header` annotation names, e.g.
/// `param("Region")` is `mcp-param-region`.
pub fn param(name: &str) -> String {
    format!("{PARAM_PREFIX}{}", name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercase() {
        // `http::HeaderName::from_static` panics on uppercase names.
        for name in [
            SESSION_ID,
            PROTOCOL_VERSION,
            LAST_EVENT_ID,
            METHOD,
            NAME,
            PARAM_PREFIX,
        ] {
            assert_eq!(name, name.to_ascii_lowercase());
        }
        assert_eq!(param("Region"), "mcp-param-region");
    }
}
