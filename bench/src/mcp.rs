//! The few MCP messages the scenarios send, as raw Streamable HTTP requests: initialize a
//! session, call a tool, subscribe to a topic, open the session's GET stream.

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::Full;
use mcpbus_proto::sse::SseDecoder;
use serde_json::{Value, json};

use crate::conn::{Answer, Conn, Endpoint};

/// The protocol version the generator speaks.
pub(crate) const PROTOCOL_VERSION: &str = "2025-11-25";

/// What a POST accepts: servers may answer with JSON or with an SSE stream.
const ACCEPT_BOTH: &str = "application/json, text/event-stream";

/// A POST of one JSON-RPC message, with the session's headers once there is a session.
pub(crate) fn post(
    endpoint: &Endpoint,
    session: Option<&str>,
    body: Bytes,
) -> Request<Full<Bytes>> {
    let mut builder = endpoint
        .request(Method::POST)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, ACCEPT_BOTH);
    if let Some(id) = session {
        builder = builder
            .header("mcp-session-id", id)
            .header("mcp-protocol-version", PROTOCOL_VERSION);
    }
    // Only fails on an invalid header value, and the session id came from a header.
    builder
        .body(Full::new(body))
        .unwrap_or_else(|_| Request::new(Full::new(Bytes::new())))
}

/// The GET that opens a session's standalone SSE stream (where `events/emit` travels).
pub(crate) fn get_stream(endpoint: &Endpoint, session: &str) -> Request<Full<Bytes>> {
    endpoint
        .request(Method::GET)
        .header(header::ACCEPT, "text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", PROTOCOL_VERSION)
        .body(Full::new(Bytes::new()))
        .unwrap_or_else(|_| Request::new(Full::new(Bytes::new())))
}

/// The `DELETE` that ends a session.
pub(crate) fn delete_session(endpoint: &Endpoint, session: &str) -> Request<Full<Bytes>> {
    endpoint
        .request(Method::DELETE)
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", PROTOCOL_VERSION)
        .body(Full::new(Bytes::new()))
        .unwrap_or_else(|_| Request::new(Full::new(Bytes::new())))
}

/// The JSON-RPC message of an answer, whether it came as JSON or as an SSE stream (the first
/// event that carries data).
pub(crate) fn answer_message(answer: &Answer) -> Result<Value, String> {
    if answer.status != StatusCode::OK {
        return Err(format!(
            "HTTP {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)])
        ));
    }
    let is_sse = answer
        .header(header::CONTENT_TYPE)
        .is_some_and(|t| t.starts_with("text/event-stream"));
    let data = if is_sse {
        let mut decoder = SseDecoder::new();
        let mut events = decoder.push(&answer.body);
        events.extend(decoder.finish());
        let event = events
            .into_iter()
            .find(|e| !e.data.is_empty())
            .ok_or("an SSE answer without a message")?;
        Bytes::from(event.data)
    } else {
        answer.body.clone()
    };
    serde_json::from_slice(&data).map_err(|e| format!("answer is not JSON: {e}"))
}

/// The `result` of an answer, or the JSON-RPC error as text.
pub(crate) fn answer_result(answer: &Answer) -> Result<Value, String> {
    let mut message = answer_message(answer)?;
    if let Some(error) = message.get("error") {
        return Err(format!("JSON-RPC error: {error}"));
    }
    message
        .get_mut("result")
        .map(Value::take)
        .ok_or_else(|| "an answer without result".to_string())
}

/// Initializes a session on `conn` (initialize, then `notifications/initialized`); returns the
/// session id.
pub(crate) async fn initialize(conn: &mut Conn, endpoint: &Endpoint) -> Result<String, String> {
    initialize_any(conn, endpoint)
        .await?
        .ok_or_else(|| "initialize: no Mcp-Session-Id header".to_string())
}

/// Like [`initialize`], but also accepts a stateless server (one that answers `initialize`
/// without an `Mcp-Session-Id`, like rmcp in its JSON response mode): then `None`, and later
/// requests go with [`post_stateless`].
pub(crate) async fn initialize_any(
    conn: &mut Conn,
    endpoint: &Endpoint,
) -> Result<Option<String>, String> {
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": PROTOCOL_VERSION, "capabilities": {},
        "clientInfo": {"name": "mcpbus-bench", "version": env!("CARGO_PKG_VERSION")}}});
    let answer = conn
        .exchange(post(endpoint, None, Bytes::from(request.to_string())))
        .await?;
    answer_result(&answer).map_err(|e| format!("initialize: {e}"))?;
    let session = answer.header("mcp-session-id").map(str::to_string);
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let body = Bytes::from(initialized.to_string());
    let request = match &session {
        Some(id) => post(endpoint, Some(id), body),
        None => post_stateless(endpoint, body),
    };
    let answer = conn.exchange(request).await?;
    if !answer.status.is_success() {
        return Err(format!("notifications/initialized: HTTP {}", answer.status));
    }
    Ok(session)
}

/// A POST after `initialize` to a stateless server: no session header, but the negotiated
/// protocol version.
pub(crate) fn post_stateless(endpoint: &Endpoint, body: Bytes) -> Request<Full<Bytes>> {
    let mut request = post(endpoint, None, body);
    request.headers_mut().insert(
        "mcp-protocol-version",
        http::HeaderValue::from_static(PROTOCOL_VERSION),
    );
    request
}

/// The body of a `tools/call` request.
pub(crate) fn tool_call_body(id: u64, tool: &str, arguments: &Value) -> Bytes {
    Bytes::from(
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}})
        .to_string(),
    )
}

/// The revision of the stateless era, for `rps --era modern`.
pub(crate) const MODERN_VERSION: &str = "2026-07-28";

/// Which era a scenario speaks (`rps --era`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Era {
    /// `initialize`, then every request in that session.
    Legacy,
    /// 2026-07-28: no session; every request carries `_meta` and the standard headers.
    Modern,
}

impl Era {
    /// The name in result lines.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Era::Legacy => "legacy",
            Era::Modern => "modern",
        }
    }
}

/// A 2026-07-28 `tools/call`: its `_meta` in the body, its method and name in the headers.
pub(crate) fn modern_tool_call(
    endpoint: &Endpoint,
    id: u64,
    tool: &str,
    arguments: &Value,
) -> Request<Full<Bytes>> {
    let params = json!({"name": tool, "arguments": arguments});
    let mut request = modern_request(endpoint, id, "tools/call", params, None);
    if let Ok(name) = http::HeaderValue::from_str(tool) {
        request.headers_mut().insert("mcp-name", name);
    }
    request
}

/// A 2026-07-28 request of `method` with `params` (an object): the `_meta` every request of
/// that era carries is added to them, and the headers `MCP-Protocol-Version` and `Mcp-Method`
/// (and `Authorization` with a bearer token) to the POST. `Mcp-Name` is the caller's, for the
/// methods that need it.
pub(crate) fn modern_request(
    endpoint: &Endpoint,
    id: u64,
    method: &'static str,
    mut params: Value,
    bearer: Option<&str>,
) -> Request<Full<Bytes>> {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo":
            {"name": "mcpbus-bench", "version": env!("CARGO_PKG_VERSION")}});
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    let mut request = post(endpoint, None, Bytes::from(body.to_string()));
    let headers = request.headers_mut();
    headers.insert(
        "mcp-protocol-version",
        http::HeaderValue::from_static(MODERN_VERSION),
    );
    headers.insert("mcp-method", http::HeaderValue::from_static(method));
    if let Some(Ok(auth)) = bearer.map(|t| http::HeaderValue::from_str(&format!("Bearer {t}"))) {
        headers.insert(header::AUTHORIZATION, auth);
    }
    request
}

/// Whether a `tools/call` answer is a success, or what went wrong.
pub(crate) fn check_tool_answer(answer: &Answer) -> Result<(), String> {
    let result = answer_result(answer)?;
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        return Err(format!("tool error: {result}"));
    }
    Ok(())
}

/// The prefix of a "topic" that is a resource URI: `bench://topic/build/status`.
pub(crate) const RESOURCE_TOPIC_PREFIX: &str = "bench://topic/";

/// How a session subscribes to a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SubscribeMethod {
    /// mcpbus topic events: `events/subscribe` to the topic, `events/emit` on the GET stream.
    Events,
    /// MCP resource subscriptions, for servers without topic events (the rmcp peer):
    /// `resources/subscribe` to `bench://topic/<topic>`, `notifications/resources/updated` (the
    /// payload in `_meta.payload`) on the GET stream.
    Resources,
}

impl SubscribeMethod {
    /// The topic as this method subscribes to it: the topic itself, or its resource URI.
    pub(crate) fn topic(self, topic: &str) -> String {
        match self {
            SubscribeMethod::Events => topic.to_string(),
            SubscribeMethod::Resources if topic.starts_with(RESOURCE_TOPIC_PREFIX) => {
                topic.to_string()
            }
            SubscribeMethod::Resources => format!("{RESOURCE_TOPIC_PREFIX}{topic}"),
        }
    }
}

/// Subscribes the session to `topic` with `events/subscribe`, or, when `topic` is a resource
/// URI (`bench://topic/…`, see [`SubscribeMethod::Resources`]), with `resources/subscribe`;
/// fails if it was not accepted.
pub(crate) async fn subscribe(
    conn: &mut Conn,
    endpoint: &Endpoint,
    session: &str,
    topic: &str,
) -> Result<(), String> {
    let resource = topic.starts_with(RESOURCE_TOPIC_PREFIX);
    let request = if resource {
        json!({"jsonrpc": "2.0", "id": 2, "method": "resources/subscribe",
            "params": {"uri": topic}})
    } else {
        json!({"jsonrpc": "2.0", "id": 2, "method": "events/subscribe",
            "params": {"topics": [topic]}})
    };
    let answer = conn
        .exchange(post(
            endpoint,
            Some(session),
            Bytes::from(request.to_string()),
        ))
        .await?;
    if resource {
        // An empty result is the acceptance.
        answer_result(&answer).map_err(|e| format!("resources/subscribe: {e}"))?;
        return Ok(());
    }
    let result = answer_result(&answer).map_err(|e| format!("events/subscribe: {e}"))?;
    let accepted = result
        .get("subscribed")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    if accepted {
        Ok(())
    } else {
        Err(format!(
            "events/subscribe of {topic:?} not accepted: {result}"
        ))
    }
}

/// The payload of a bench event in an SSE `data` field: of an `events/emit` (mcpbus, at
/// `params.payload`), of a SEP-3415 push stream's `notifications/events/event` (at
/// `params.data.payload`) or of a `notifications/resources/updated` (the rmcp peer, at
/// `params._meta.payload`); `None` for anything else.
pub(crate) fn event_payload(message: &Value) -> Option<&Value> {
    match message.get("method").and_then(Value::as_str)? {
        "events/emit" => message.pointer("/params/payload"),
        "notifications/events/event" => message.pointer("/params/data/payload"),
        "notifications/resources/updated" => message.pointer("/params/_meta/payload"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(content_type: &str, body: &str) -> Answer {
        let mut headers = http::HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, content_type.parse().unwrap());
        Answer {
            status: StatusCode::OK,
            headers,
            body: Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn json_and_sse_answers_give_the_same_result() {
        let json = answer(
            "application/json",
            r#"{"jsonrpc":"2.0","id":3,"result":{"content":[]}}"#,
        );
        let sse = answer(
            "text/event-stream",
            "id: p\nretry: 1000\ndata: \n\nevent: message\nid: 1\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"content\":[]}}\n\n",
        );
        assert_eq!(answer_result(&json).unwrap(), json!({"content": []}));
        assert_eq!(answer_result(&sse).unwrap(), json!({"content": []}));
        assert!(check_tool_answer(&json).is_ok());
    }

    #[test]
    fn errors_are_reported() {
        let rpc = answer(
            "application/json",
            r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32602,"message":"no such tool"}}"#,
        );
        assert!(answer_result(&rpc).unwrap_err().contains("no such tool"));
        let tool = answer(
            "application/json",
            r#"{"jsonrpc":"2.0","id":3,"result":{"content":[],"isError":true}}"#,
        );
        assert!(check_tool_answer(&tool).is_err());
        let mut status = answer("application/json", "{}");
        status.status = StatusCode::NOT_FOUND;
        assert!(answer_result(&status).unwrap_err().contains("404"));
    }

    #[test]
    fn both_event_kinds_carry_a_payload() {
        let emit = json!({"jsonrpc": "2.0", "method": "events/emit",
            "params": {"topic": "build/status", "payload": {"seq": 1}}});
        let updated = json!({"jsonrpc": "2.0", "method": "notifications/resources/updated",
            "params": {"uri": "bench://topic/build/status", "_meta": {"payload": {"seq": 2}}}});
        let ping = json!({"jsonrpc": "2.0", "method": "ping", "id": 1});
        let pushed = json!({"jsonrpc": "2.0", "method": "notifications/events/event",
            "params": {"eventId": "e", "name": "build/status", "cursor": "4",
                "data": {"topic": "build/status", "payload": {"seq": 4}}}});
        assert_eq!(event_payload(&pushed), Some(&json!({"seq": 4})));
        assert_eq!(event_payload(&emit), Some(&json!({"seq": 1})));
        assert_eq!(event_payload(&updated), Some(&json!({"seq": 2})));
        assert_eq!(event_payload(&ping), None);
        assert_eq!(SubscribeMethod::Events.topic("a/b"), "a/b");
        assert_eq!(SubscribeMethod::Resources.topic("a/b"), "bench://topic/a/b");
        assert_eq!(
            SubscribeMethod::Resources.topic("bench://topic/a/b"),
            "bench://topic/a/b"
        );
    }
}
