//! What the client does in each conformance scenario it supports.
//!
//! Each scenario's mock server records what the client sends and scores that; the client's own
//! checks here only make a broken exchange fail loudly (non-zero exit with a message) instead of
//! passing silently.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mcpbus::client::{Client, ClientBuilder, Era};
use mcpbus::proto::jsonrpc::ErrorObject;
use mcpbus::proto::mcp::{
    CallToolResult, ElicitAction, ElicitRequestParams, ElicitResult, Tool,
    is_supported_protocol_version,
};
use mcpbus::proto::modern;
use mcpbus::transport::{HttpClientConfig, HttpClientTransport};
use serde_json::{Map, Value, json};

/// The 2025-11-25 scenarios this client supports, in the order `run-client.sh` runs them.
pub(crate) const SUPPORTED: &[&str] = &[
    "initialize",
    "tools_call",
    "elicitation-sep1034-client-defaults",
    "sse-retry",
    "json-schema-2020-12-preservation",
];

/// What a scenario run yields: a one-line summary, or why it failed.
pub(crate) type Outcome = Result<String, String>;

/// A scenario: given the mock server's URL, runs the client against it.
pub(crate) type Runner = fn(String) -> Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// The scenarios this client supports at spec revision `version` (2026-07-28's, or else
/// 2025-11-25's), the OAuth ones ([`super::auth`]) last.
pub(crate) fn supported(version: &str) -> Vec<&'static str> {
    let (core, auth) = if modern::is_supported_protocol_version(version) {
        (super::modern::SUPPORTED, super::auth::SUPPORTED_2026)
    } else {
        (SUPPORTED, super::auth::SUPPORTED_2025)
    };
    core.iter()
        .chain(auth)
        .chain(super::auth::EXTENSIONS)
        .copied()
        .collect()
}

/// The runner of a supported scenario (of either revision).
pub(crate) fn find(name: &str) -> Option<Runner> {
    use super::modern as m;
    let run: Runner = match name {
        "initialize" => |url| Box::pin(initialize(url)),
        "tools_call" => |url| Box::pin(tools_call(url)),
        "elicitation-sep1034-client-defaults" => |url| Box::pin(elicitation_defaults(url)),
        "sse-retry" => |url| Box::pin(sse_retry(url)),
        "json-schema-2020-12-preservation" => |url| Box::pin(json_schema_preservation(url)),
        "request-metadata" => |url| Box::pin(m::request_metadata(url)),
        "sep-2322-client-request-state" => |url| Box::pin(m::request_state(url)),
        "http-standard-headers" => |url| Box::pin(m::standard_headers(url)),
        "http-custom-headers" => |url| Box::pin(m::custom_headers(url)),
        "http-invalid-tool-headers" => |url| Box::pin(m::invalid_tool_headers(url)),
        "json-schema-ref-no-deref" => |url| Box::pin(m::ref_no_deref(url)),
        auth if super::auth::is_supported(auth) => |url| Box::pin(super::auth::run(url)),
        _ => return None,
    };
    Some(run)
}

/// A client builder with this binary's identity and no capabilities yet, pinned to the era of
/// the revision the harness names in `MCP_CONFORMANCE_PROTOCOL_VERSION` (the run's revision,
/// 2025-11-25 by default) and asking for that revision when mcpbus speaks it. Pinning keeps a
/// 2025-11-25 run free of the `server/discover` probe, which that revision's schema does not
/// know.
pub(crate) fn builder() -> ClientBuilder {
    let builder = Client::builder("mcpbus-conformance-client", env!("CARGO_PKG_VERSION"));
    match std::env::var("MCP_CONFORMANCE_PROTOCOL_VERSION") {
        Ok(v) if modern::is_supported_protocol_version(&v) => {
            builder.era(Era::Modern).protocol_version(v)
        }
        Ok(v) if is_supported_protocol_version(&v) => builder.era(Era::Legacy).protocol_version(v),
        _ => builder,
    }
}

/// Connects `builder` to `url` over Streamable HTTP with the transport settings `config`.
async fn connect(
    url: &str,
    builder: ClientBuilder,
    config: HttpClientConfig,
) -> Result<Client, String> {
    let transport =
        HttpClientTransport::new(url, config).map_err(|e| format!("cannot use {url:?}: {e}"))?;
    builder
        .connect(transport)
        .await
        .map_err(|e| format!("connecting failed: {e}"))
}

/// Runs `body` with a connected client (the transport's default settings), then closes the
/// session whatever the outcome.
pub(crate) async fn with_client<F, Fut>(url: &str, builder: ClientBuilder, body: F) -> Outcome
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = Outcome>,
{
    with_client_config(url, builder, HttpClientConfig::default(), body).await
}

/// As [`with_client`], with the transport settings `config`.
pub(crate) async fn with_client_config<F, Fut>(
    url: &str,
    builder: ClientBuilder,
    config: HttpClientConfig,
    body: F,
) -> Outcome
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let client = connect(url, builder, config).await?;
    let outcome = body(client.clone()).await;
    client.close().await;
    outcome
}

/// Lists the server's tools.
pub(crate) async fn list_tools(client: &Client) -> Result<Vec<Tool>, String> {
    client
        .list_tools()
        .await
        .map_err(|e| format!("tools/list failed: {e}"))
}

/// Finds the tool `name` among `tools`.
pub(crate) fn tool<'a>(tools: &'a [Tool], name: &str) -> Result<&'a Tool, String> {
    tools.iter().find(|t| t.name == name).ok_or_else(|| {
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
        format!("the server lists no tool {name:?} (it lists {names:?})")
    })
}

/// Calls `name`; a JSON-RPC error or an `isError` result is a failure. Returns the result's
/// text blocks, joined.
pub(crate) async fn call(client: &Client, name: &str, arguments: Value) -> Result<String, String> {
    let result: CallToolResult = client
        .call_tool(name, arguments)
        .await
        .map_err(|e| format!("tools/call {name} failed: {e}"))?;
    let text: Vec<&str> = result.content.iter().filter_map(|b| b.as_text()).collect();
    let text = text.join(" ");
    if result.is_error == Some(true) {
        return Err(format!("tools/call {name} returned isError: {text}"));
    }
    Ok(text)
}

/// `initialize`: the mock scores the `initialize` request (protocol version, client name and
/// version). Initialize, list the tools, close.
async fn initialize(url: String) -> Outcome {
    with_client(&url, builder(), |client| async move {
        let tools = list_tools(&client).await?;
        Ok(format!(
            "negotiated {} with {} {}; {} tool(s)",
            client.protocol_version(),
            client.server_info().name,
            client.server_info().version,
            tools.len()
        ))
    })
    .await
}

/// `tools_call`: call `add_numbers` with two numbers (the mock checks that `a` and `b` arrive
/// as numbers) and expect their sum back.
async fn tools_call(url: String) -> Outcome {
    with_client(&url, builder(), |client| async move {
        let tools = list_tools(&client).await?;
        tool(&tools, "add_numbers")?;
        let text = call(&client, "add_numbers", json!({"a": 2, "b": 3})).await?;
        if !text.contains('5') {
            return Err(format!("add_numbers(2, 3) answered {text:?}, not 5"));
        }
        Ok(format!("add_numbers(2, 3): {text}"))
    })
    .await
}

/// `elicitation-sep1034-client-defaults` (SEP-1034): the tool sends `elicitation/create` with a
/// form whose optional fields all carry a `default`; the mock checks that the accepted content
/// has every field with the right type. The handler plays a user who submits the form as
/// pre-filled with the schema's defaults.
async fn elicitation_defaults(url: String) -> Outcome {
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let builder = builder().on_elicitation(false, move |params| {
        counter.fetch_add(1, Ordering::SeqCst);
        let answer = accept_with_defaults(params);
        async move { answer }
    });
    with_client(&url, builder, |client| async move {
        let tools = list_tools(&client).await?;
        let name = "test_client_elicitation_defaults";
        tool(&tools, name)?;
        let text = call(&client, name, json!({})).await?;
        let asked = asked.load(Ordering::SeqCst);
        if asked == 0 {
            return Err(format!(
                "{name} never sent elicitation/create (it answered {text:?})"
            ));
        }
        if !text.starts_with("Elicitation completed") {
            return Err(format!("{name} answered {text:?}"));
        }
        Ok(format!("{asked} elicitation(s) answered; {text}"))
    })
    .await
}

/// Accepts a form elicitation with the schema's defaults; a required field without a default
/// gets a neutral value of its type. URL-mode elicitations are declined (not declared anyway).
pub(crate) fn accept_with_defaults(
    params: ElicitRequestParams,
) -> Result<ElicitResult, ErrorObject> {
    let ElicitRequestParams::Form(form) = params else {
        return Ok(ElicitResult {
            action: ElicitAction::Decline,
            content: None,
            meta: None,
        });
    };
    let schema = &form.requested_schema;
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut content = Map::new();
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            if let Some(default) = property.get("default") {
                content.insert(name.clone(), default.clone());
            } else if required.contains(&name.as_str()) {
                content.insert(name.clone(), neutral_value(property));
            }
        }
    }
    Ok(ElicitResult {
        action: ElicitAction::Accept,
        content: Some(content),
        meta: None,
    })
}

/// A value of the property's type for a required field without a default: the first enum
/// option, the minimum, `false`, an empty string or list.
pub(crate) fn neutral_value(property: &Value) -> Value {
    if let Some(first) = property
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    if let Some(first) = property
        .get("oneOf")
        .and_then(Value::as_array)
        .and_then(|o| o.first())
        .and_then(|o| o.get("const"))
    {
        return first.clone();
    }
    match property.get("type").and_then(Value::as_str) {
        Some("integer" | "number") => property.get("minimum").cloned().unwrap_or(json!(0)),
        Some("boolean") => json!(false),
        Some("array") => json!([]),
        _ => json!(""),
    }
}

/// `sse-retry` (SEP-1699): the mock answers `tools/call test_reconnection` with an SSE stream
/// that carries only a priming event (`id`, `retry: 500`) and closes after 50 ms; the result is
/// only sent on a `GET` that comes back. The transport must wait `retry` ms and resume with
/// `GET` + `Last-Event-ID`; the mock checks the delay (450–700 ms) and the header. (The mock
/// would also answer the call on a standalone `GET` arriving while the call is pending; the
/// transport opens that stream before posting anything after `notifications/initialized`.)
async fn sse_retry(url: String) -> Outcome {
    with_client(&url, builder(), |client| async move {
        let started = std::time::Instant::now();
        let text = call(&client, "test_reconnection", json!({})).await?;
        Ok(format!(
            "test_reconnection answered after {:?}: {text}",
            started.elapsed()
        ))
    })
    .await
}

/// `json-schema-2020-12-preservation` (SEP-1613): list the tools and send the focal tool's
/// `inputSchema`, as the client holds it, back through the echo tool; the mock diffs it against
/// what it sent (`$schema`, `$defs`, `additionalProperties`, composition, conditionals).
async fn json_schema_preservation(url: String) -> Outcome {
    with_client(&url, builder(), |client| async move {
        let tools = list_tools(&client).await?;
        let focal = tool(&tools, "json_schema_2020_12_tool")?;
        tool(&tools, "json_schema_echo")?;
        let schema = Value::Object(focal.input_schema.clone());
        let keys: Vec<&String> = focal.input_schema.keys().collect();
        call(&client, "json_schema_echo", json!({"schema": schema})).await?;
        Ok(format!("echoed an inputSchema with keys {keys:?}"))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(schema: Value) -> ElicitRequestParams {
        serde_json::from_value(json!({"message": "m", "requestedSchema": schema}))
            .expect("a form elicitation")
    }

    #[test]
    fn defaults_fill_optional_fields_and_required_ones_get_a_value() {
        let params = form(json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "default": "John Doe"},
                "age": {"type": "integer", "default": 30},
                "score": {"type": "number", "default": 95.5},
                "status": {"type": "string", "enum": ["active", "inactive"], "default": "active"},
                "verified": {"type": "boolean", "default": true},
                "note": {"type": "string"},
                "level": {"type": "string", "enum": ["low", "high"]},
                "count": {"type": "integer", "minimum": 3}
            },
            "required": ["level", "count"]
        }));
        let result = accept_with_defaults(params).expect("an answer");
        assert_eq!(result.action, ElicitAction::Accept);
        assert_eq!(
            Value::Object(result.content.expect("content")),
            json!({
                "name": "John Doe", "age": 30, "score": 95.5, "status": "active",
                "verified": true, "level": "low", "count": 3
            })
        );
    }

    #[test]
    fn url_mode_is_declined() {
        let params: ElicitRequestParams = serde_json::from_value(json!({
            "mode": "url", "message": "m", "elicitationId": "e", "url": "http://x"
        }))
        .expect("a URL elicitation");
        let result = accept_with_defaults(params).expect("an answer");
        assert_eq!(result.action, ElicitAction::Decline);
        assert!(result.content.is_none());
    }

    #[test]
    fn every_supported_scenario_has_a_runner() {
        let all = supported("2025-11-25")
            .into_iter()
            .chain(supported("2026-07-28"));
        for name in all {
            assert!(find(name).is_some(), "{name}");
        }
        assert!(supported("2026-07-28").starts_with(super::super::modern::SUPPORTED));
        assert!(supported("2025-11-25").starts_with(SUPPORTED));
        assert!(find("auth/metadata-default").is_some());
        assert!(find("auth/unknown").is_none());
    }
}
