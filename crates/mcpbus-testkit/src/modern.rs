//! Requests of the 2026-07-28 era as a client writes them on the wire: the request `_meta`
//! and the standard headers (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`: the `name`, `uri`
//! or `taskId` the request acts on).

use http::Method;
use hyper::Response;
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::http::{Answer, HttpClient};
use crate::jsonrpc::ACCEPT_BOTH;

/// The revision these helpers speak.
pub const VERSION: &str = "2026-07-28";

/// A modern request: `params` (an object, or `{}`) with the request `_meta` declaring
/// `capabilities`; an existing `_meta` in `params` keeps its members.
pub fn request(id: i64, method: &str, params: Value, capabilities: Value) -> Value {
    let mut params = if params.is_object() {
        params
    } else {
        json!({})
    };
    let meta = params["_meta"].as_object().cloned().unwrap_or_default();
    let mut full = json!({
        "io.modelcontextprotocol/protocolVersion": VERSION,
        "io.modelcontextprotocol/clientInfo": {"name": "mcpbus-tests", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    });
    for (k, v) in meta {
        full[k] = v;
    }
    params["_meta"] = full;
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// The headers a modern client sends with `message`.
pub fn headers(message: &Value) -> Vec<(String, String)> {
    let method = message["method"].as_str().unwrap_or_default().to_string();
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("accept".to_string(), ACCEPT_BOTH.to_string()),
        ("mcp-protocol-version".to_string(), VERSION.to_string()),
        ("mcp-method".to_string(), method),
    ];
    let params = &message["params"];
    let name = params["name"].as_str().or(params["uri"].as_str());
    if let Some(name) = name.or(params["taskId"].as_str()) {
        headers.push(("mcp-name".to_string(), name.to_string()));
    }
    headers
}

impl HttpClient {
    /// POSTs a modern request with its headers and reads the whole answer.
    pub async fn post_modern(&self, message: &Value) -> Answer {
        let headers = headers(message);
        let borrowed: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.call(Method::POST, &borrowed, message.to_string().as_bytes())
            .await
    }

    /// POSTs a modern request and returns the answer once its head arrived (to read an SSE
    /// answer, e.g. a `subscriptions/listen` stream, with [`SseReader`](crate::SseReader)).
    pub async fn post_modern_stream(&self, message: &Value) -> Response<Incoming> {
        let headers = headers(message);
        let borrowed: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.send(Method::POST, &borrowed, message.to_string().as_bytes())
            .await
    }
}

/// The JSON-RPC message of an answer: the body itself, or the last message of an SSE body.
pub fn answer_message(answer: &Answer) -> Value {
    let text = answer.text();
    if answer
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/event-stream"))
    {
        let data = text
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .rfind(|d| !d.is_empty())
            .unwrap_or("null");
        return serde_json::from_str(data).unwrap_or(Value::Null);
    }
    answer.json()
}
