//! JSON-RPC messages and MCP header values several tests send.

use serde_json::{Value, json};

/// The `Accept` value of a POST: an answer may come as JSON or as an SSE stream.
pub const ACCEPT_BOTH: &str = "application/json, text/event-stream";

/// The MCP protocol version the tests speak.
pub const PROTOCOL_VERSION: &str = "2025-11-25";

/// An `initialize` request with id 1, no capabilities, and `client_name` as the client's name.
pub fn initialize_request(client_name: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": PROTOCOL_VERSION, "capabilities": {},
        "clientInfo": {"name": client_name, "version": "1"}}})
}

/// The `notifications/initialized` notification.
pub fn initialized() -> Value {
    json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
}

/// A `tools/call` request of `tool` without arguments.
pub fn tool_call(id: i64, tool: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": tool, "arguments": {}}})
}

/// An `events/subscribe` request for `topics`.
pub fn subscribe_request(id: i64, topics: &[&str]) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "events/subscribe",
           "params": {"topics": topics}})
}
