//! What the client does in the client scenarios of the 2026-07-28 revision it supports (run at
//! that revision's wire: no handshake, `_meta` and the request headers on every POST).
//!
//! The mock servers score what they see; as in [`super::scenarios`], the client's own checks
//! only turn a broken exchange into a failure with a message.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mcpbus::client::ClientBuilder;
use mcpbus::proto::mcp::{
    CreateMessageResult, ElicitAction, ElicitResult, Role, Root, SamplingContent, Tool,
};
use serde_json::{Map, Value, json};

use super::scenarios::{Outcome, builder, call, list_tools, neutral_value, tool, with_client};

/// The 2026-07-28 client scenarios this client supports, in the order `run-client.sh` runs
/// them (`tools_call` and `json-schema-2020-12-preservation` run with [`super::scenarios`]'s
/// runners, at this revision's wire).
pub(crate) const SUPPORTED: &[&str] = &[
    "tools_call",
    "request-metadata",
    "sep-2322-client-request-state",
    "http-standard-headers",
    "http-custom-headers",
    "http-invalid-tool-headers",
    "json-schema-ref-no-deref",
    "json-schema-2020-12-preservation",
];

/// A client that declares (and answers) every input a server may ask for: sampling, form
/// elicitation (accepted with the schema's defaults) and one root.
fn capable() -> ClientBuilder {
    builder()
        .on_sampling(|_params| async move {
            Ok(CreateMessageResult {
                role: Role::Assistant,
                content: SamplingContent::Single(mcpbus::proto::mcp::ContentBlock::text(
                    "sampled by mcpbus-conformance-client",
                )),
                model: "none".into(),
                stop_reason: None,
                meta: None,
            })
        })
        .on_elicitation(false, |params| async move {
            super::scenarios::accept_with_defaults(params)
        })
        .roots(vec![Root {
            uri: "file:///tmp".into(),
            name: Some("tmp".into()),
            meta: None,
        }])
}

/// `request-metadata` (SEP-2575): the mock refuses the first POST with `-32022` and scores the
/// `_meta` and `MCP-Protocol-Version` of every POST; the client probes again at the offered
/// revision, declares every optional capability, and lists the tools.
pub(crate) async fn request_metadata(url: String) -> Outcome {
    with_client(&url, capable(), |client| async move {
        let tools = list_tools(&client).await?;
        Ok(format!(
            "probed twice, spoke {}; {} tool(s)",
            client.protocol_version(),
            tools.len()
        ))
    })
    .await
}

/// `sep-2322-client-request-state` (MRTR): two tools answer `input_required` (one with a
/// `requestState`, one without); the client answers the elicitation and retries, while an
/// unrelated call runs beside the first; a fourth tool's result has no `resultType`.
pub(crate) async fn request_state(url: String) -> Outcome {
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let builder = builder().on_elicitation(false, move |_params| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move {
            Ok(ElicitResult {
                action: ElicitAction::Accept,
                content: Some(object(json!({"confirmed": true}))),
                meta: None,
            })
        }
    });
    with_client(&url, builder, |client| async move {
        list_tools(&client).await?;
        let (echo, unrelated) = tokio::join!(
            call(&client, "test_mrtr_echo_state", json!({})),
            call(&client, "test_mrtr_unrelated", json!({})),
        );
        let texts = [
            echo?,
            unrelated?,
            call(&client, "test_mrtr_no_state", json!({})).await?,
            call(&client, "test_mrtr_no_result_type", json!({})).await?,
        ];
        let asked = asked.load(Ordering::SeqCst);
        if asked != 2 {
            return Err(format!("expected 2 elicitations, answered {asked}"));
        }
        Ok(format!("{asked} elicitation(s) answered; {texts:?}"))
    })
    .await
}

/// `http-standard-headers` (SEP-2243): every request kind that carries `Mcp-Method` and
/// `Mcp-Name`: list and call every tool, list and read every resource, list and get every prompt.
pub(crate) async fn standard_headers(url: String) -> Outcome {
    with_client(&url, builder(), |client| async move {
        let tools = list_tools(&client).await?;
        for t in &tools {
            call(&client, &t.name, json!({})).await?;
        }
        let resources = client
            .list_resources()
            .await
            .map_err(|e| format!("resources/list failed: {e}"))?;
        for r in &resources {
            client
                .read_resource(&r.uri)
                .await
                .map_err(|e| format!("resources/read {} failed: {e}", r.uri))?;
        }
        let prompts = client
            .list_prompts()
            .await
            .map_err(|e| format!("prompts/list failed: {e}"))?;
        for p in &prompts {
            client
                .get_prompt(&p.name, BTreeMap::new())
                .await
                .map_err(|e| format!("prompts/get {} failed: {e}", p.name))?;
        }
        Ok(format!(
            "{} tool(s), {} resource(s), {} prompt(s)",
            tools.len(),
            resources.len(),
            prompts.len()
        ))
    })
    .await
}

/// `http-custom-headers` (SEP-2243): list the tools (learning their `x-mcp-header`
/// annotations), then make the calls the harness passes in `MCP_CONFORMANCE_CONTEXT`
/// (`toolCalls`), whose arguments exercise every encoding rule.
pub(crate) async fn custom_headers(url: String) -> Outcome {
    let calls = context_tool_calls()?;
    with_client(&url, builder(), |client| async move {
        list_tools(&client).await?;
        for (name, arguments) in &calls {
            call(&client, name, arguments.clone()).await?;
        }
        Ok(format!("{} annotated call(s)", calls.len()))
    })
    .await
}

/// `http-invalid-tool-headers` (SEP-2243): the client drops the tools whose `x-mcp-header`
/// annotations are invalid when listing; it calls every tool it kept, with neutral values for
/// their required arguments (the mock checks that only the valid one is called).
pub(crate) async fn invalid_tool_headers(url: String) -> Outcome {
    with_client(&url, builder(), |client| async move {
        let tools = list_tools(&client).await?;
        for t in &tools {
            call(&client, &t.name, required_arguments(t)).await?;
        }
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
        Ok(format!("kept and called {names:?}"))
    })
    .await
}

/// `json-schema-ref-no-deref` (SEP-2106): list the tools, one of whose schemas `$ref`s a
/// network URL; the client keeps schemas verbatim and never fetches anything they name.
pub(crate) async fn ref_no_deref(url: String) -> Outcome {
    with_client(&url, builder(), |client| async move {
        let tools = list_tools(&client).await?;
        let focal = tool(&tools, "lookup_user")?;
        let keys: Vec<&String> = focal.input_schema.keys().collect();
        Ok(format!("listed lookup_user with schema keys {keys:?}"))
    })
    .await
}

/// The `toolCalls` of the harness's context: `(name, arguments)` pairs.
fn context_tool_calls() -> Result<Vec<(String, Value)>, String> {
    let text = std::env::var("MCP_CONFORMANCE_CONTEXT")
        .map_err(|_| "MCP_CONFORMANCE_CONTEXT is not set".to_owned())?;
    let context: Value = serde_json::from_str(&text)
        .map_err(|e| format!("MCP_CONFORMANCE_CONTEXT is not JSON: {e}"))?;
    let calls = context["toolCalls"]
        .as_array()
        .ok_or("MCP_CONFORMANCE_CONTEXT has no toolCalls")?;
    calls
        .iter()
        .map(|c| match (c["name"].as_str(), c.get("arguments")) {
            (Some(name), Some(arguments)) => Ok((name.to_owned(), arguments.clone())),
            _ => Err(format!("a toolCall without name or arguments: {c}")),
        })
        .collect()
}

/// Arguments for a tool's required properties, each a neutral value of its type.
fn required_arguments(tool: &Tool) -> Value {
    let schema = &tool.input_schema;
    let mut arguments = Map::new();
    let properties = schema.get("properties").and_then(Value::as_object);
    for name in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let property = properties.and_then(|p| p.get(name)).unwrap_or(&Value::Null);
        arguments.insert(name.to_owned(), neutral_value(property));
    }
    Value::Object(arguments)
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_arguments_get_neutral_values() {
        let tool = Tool::new(
            "t",
            json!({"type": "object", "properties": {
                "region": {"type": "string"}, "n": {"type": "integer"}, "opt": {"type": "string"}},
                "required": ["region", "n"]}),
        );
        assert_eq!(required_arguments(&tool), json!({"region": "", "n": 0}));
    }
}
