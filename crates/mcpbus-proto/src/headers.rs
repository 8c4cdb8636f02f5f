//! The HTTP header names of MCP's Streamable HTTP transport, shared by servers and clients.
//!
//! Lowercase, as HTTP/2 sends them and as `http::HeaderName::from_static` requires; header
//! names compare case-insensitively on the wire, so `Mcp-Session-Id` is the same header.

/// The session a request belongs to (`Mcp-Session-Id`), given by the server in its answer to
/// `initialize` and sent by the client on every later request.
pub const SESSION_ID: &str = "mcp-session-id";

/// The protocol revision the client negotiated (`MCP-Protocol-Version`), sent on every
/// request after `initialize`.
pub const PROTOCOL_VERSION: &str = "mcp-protocol-version";

/// The last SSE event id a client received (`Last-Event-ID`): a `GET` with it resumes the
/// stream that event belongs to.
pub const LAST_EVENT_ID: &str = "last-event-id";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercase() {
        // `http::HeaderName::from_static` panics on uppercase names.
        for name in [SESSION_ID, PROTOCOL_VERSION, LAST_EVENT_ID] {
            assert_eq!(name, name.to_ascii_lowercase());
        }
    }
}
