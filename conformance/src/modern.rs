//! The fixtures the suite calls at the 2026-07-28 wire: the diagnostic tools of
//! `server-stateless`, the input-required (MRTR) tools and prompt, and a tool whose argument is
//! mirrored in an `Mcp-Param-*` header. They use the same handler API as every other tool:
//! `ctx.elicit` and the like become `input_required` rounds in this era.

use mcpbus::server::{Context, NoArgs, ServerBuilder, ToolError};
use mcpbus_proto::jsonrpc::ErrorObject;
use mcpbus_proto::mcp::{
    CallToolResult, CreateMessageRequestParams, ElicitRequestFormParams, ElicitRequestParams,
    ElicitResult, GetPromptResult, LoggingLevel, Prompt, PromptMessage, SamplingMessage, Tool,
};
use serde_json::{Map, Value, json};

/// Adds the 2026-07-28 fixtures to `builder`.
pub(crate) fn register(builder: ServerBuilder) -> ServerBuilder {
    let builder = diagnostic_tools(builder);
    let builder = combined_input_tools(input_required_tools(builder));
    header_param_tool(input_required_prompt(builder))
}

/// The tools `server-stateless` probes the server with.
fn diagnostic_tools(builder: ServerBuilder) -> ServerBuilder {
    builder
        .tool(
            "test_missing_capability",
            "Needs the client's sampling capability (answers -32021 without it)",
            |_: NoArgs, ctx: Context| async move {
                let params = CreateMessageRequestParams::new(
                    vec![SamplingMessage::user_text("Say hello")],
                    50,
                );
                let answer = ctx.create_message(params).await?;
                Ok::<_, ToolError>(format!("Sampled: {}", answer.content.text()))
            },
        )
        .tool(
            "test_streaming_elicitation",
            "Reports progress, then asks the user for a value",
            |_: NoArgs, ctx: Context| async move {
                ctx.progress(0.0, Some(1.0), Some("asking the user".into()));
                let answer = ctx
                    .input_key("value")
                    .elicit(form("Enter a value", "value"))
                    .await?;
                Ok::<_, ToolError>(accepted(&answer, "value"))
            },
        )
        .tool(
            "test_logging_tool",
            "Logs three messages (sent only when the request sets a log level)",
            |_: NoArgs, ctx: Context| async move {
                for step in ["started", "working", "done"] {
                    ctx.log(LoggingLevel::Info, Some("mcpbus-everything"), json!(step));
                }
                "Logged three messages."
            },
        )
        .tool(
            "test_trigger_tool_change",
            "Announces that the tool list changed",
            |_: NoArgs, ctx: Context| async move {
                ctx.server().notify_tools_list_changed();
                "Announced a tool list change."
            },
        )
        .tool(
            "test_trigger_prompt_change",
            "Announces that the prompt list changed",
            |_: NoArgs, ctx: Context| async move {
                ctx.server().notify_prompts_list_changed();
                "Announced a prompt list change."
            },
        )
}

/// The tools of the `input-required-result-*` scenarios that ask for one input.
fn input_required_tools(builder: ServerBuilder) -> ServerBuilder {
    builder
        .tool(
            "test_input_required_result_elicitation",
            "Asks the user for a name, then greets them",
            |_: NoArgs, ctx: Context| async move {
                let answer = ctx
                    .input_key("user_name")
                    .elicit(form("What is your name?", "name"))
                    .await?;
                Ok::<_, ToolError>(format!("Hello, {}!", field(&answer, "name")))
            },
        )
        .tool(
            "test_input_required_result_sampling",
            "Asks the client's model a question",
            |_: NoArgs, ctx: Context| async move {
                let answer = ctx
                    .input_key("capital_question")
                    .create_message(question())
                    .await?;
                Ok::<_, ToolError>(format!("The model said: {}", answer.content.text()))
            },
        )
        .tool(
            "test_input_required_result_list_roots",
            "Lists the client's roots",
            |_: NoArgs, ctx: Context| async move {
                let roots = ctx.input_key("client_roots").list_roots().await?;
                let uris: Vec<String> = roots.roots.into_iter().map(|r| r.uri).collect();
                Ok::<_, ToolError>(format!("Roots: {}", uris.join(", ")))
            },
        )
        .tool(
            "test_input_required_result_request_state",
            "Asks for a confirmation; the state of the round travels in requestState",
            confirm,
        )
        .tool(
            "test_input_required_result_tampered_state",
            "Asks for a confirmation; a tampered requestState is refused",
            confirm,
        )
}

/// The input-required tools that ask for several inputs, over one round or several, or choose
/// by the client's capabilities.
fn combined_input_tools(builder: ServerBuilder) -> ServerBuilder {
    builder
        .tool(
            "test_input_required_result_multiple_inputs",
            "Asks for a name, a model's greeting and the roots in one round",
            |_: NoArgs, ctx: Context| async move {
                let (asker, sampler, lister) = (
                    ctx.input_key("user_name"),
                    ctx.input_key("greeting"),
                    ctx.input_key("client_roots"),
                );
                // Asked together: all three go out in one input_required round.
                let (name, greeting, roots) = tokio::join!(
                    asker.elicit(form("What is your name?", "name")),
                    sampler.create_message(question()),
                    lister.list_roots(),
                );
                let (name, greeting, roots) = (name?, greeting?, roots?);
                Ok::<_, ToolError>(format!(
                    "{} got {:?} and {} root(s)",
                    field(&name, "name"),
                    greeting.content.text(),
                    roots.roots.len()
                ))
            },
        )
        .tool(
            "test_input_required_result_multi_round",
            "Asks for a name, then (next round) for a colour",
            |_: NoArgs, ctx: Context| async move {
                let name = ctx
                    .input_key("step1")
                    .elicit(form("Step 1: What is your name?", "name"))
                    .await?;
                let color = ctx
                    .input_key("step2")
                    .elicit(form("Step 2: Your favourite colour?", "color"))
                    .await?;
                Ok::<_, ToolError>(format!(
                    "{} likes {}",
                    field(&name, "name"),
                    field(&color, "color")
                ))
            },
        )
        .tool(
            "test_input_required_result_capabilities",
            "Asks through whatever the client can answer: elicitation, else sampling",
            |_: NoArgs, ctx: Context| async move {
                let can_elicit = ctx
                    .client()
                    .is_some_and(|c| c.capabilities.elicitation.is_some());
                if can_elicit {
                    let answer = ctx
                        .input_key("user_name")
                        .elicit(form("What is your name?", "name"))
                        .await?;
                    return Ok::<_, ToolError>(format!("Hello, {}!", field(&answer, "name")));
                }
                let answer = ctx
                    .input_key("capital_question")
                    .create_message(question())
                    .await?;
                Ok(format!("The model said: {}", answer.content.text()))
            },
        )
}

/// The prompt of `input-required-result-non-tool-request`.
fn input_required_prompt(builder: ServerBuilder) -> ServerBuilder {
    let mut prompt = Prompt::new("test_input_required_result_prompt");
    prompt.description = Some("Asks the user for context, then builds the prompt".into());
    builder.prompt(prompt, |_args, ctx: Context| async move {
        let answer = ctx
            .input_key("user_context")
            .elicit(form("What context should the prompt use?", "context"))
            .await
            .map_err(|e| e.to_error_object())?;
        Ok::<_, ErrorObject>(GetPromptResult {
            description: Some("A prompt built from the user's context".into()),
            messages: vec![PromptMessage::user_text(format!(
                "Context: {}",
                field(&answer, "context")
            ))],
            meta: None,
        })
    })
}

/// A tool whose `region` argument is mirrored in the `Mcp-Param-Region` header.
fn header_param_tool(builder: ServerBuilder) -> ServerBuilder {
    let mut tool = Tool::new(
        "test_header_param",
        json!({
            "type": "object",
            "properties": {"region": {
                "type": "string",
                "description": "Where to run",
                "x-mcp-header": "Region"
            }},
            "required": ["region"]
        }),
    );
    tool.description = Some("Echoes its region, which travels in a header too".into());
    builder.tool_raw(tool, |args: Map<String, Value>, _ctx| async move {
        let region = args.get("region").and_then(Value::as_str).unwrap_or("none");
        CallToolResult::text(format!("Region: {region}"))
    })
}

async fn confirm(_: NoArgs, ctx: Context) -> Result<String, ToolError> {
    let answer = ctx
        .input_key("confirmation")
        .elicit(form("Please confirm", "ok"))
        .await?;
    Ok(format!("state-ok: {}", accepted(&answer, "ok")))
}

/// A form asking for one string field.
fn form(message: &str, name: &str) -> ElicitRequestParams {
    let schema = json!({
        "type": "object",
        "properties": {name: {"type": "string"}},
        "required": [name]
    });
    let Value::Object(requested_schema) = schema else {
        unreachable!("a JSON object literal")
    };
    ElicitRequestParams::Form(ElicitRequestFormParams {
        message: message.into(),
        requested_schema,
        meta: None,
    })
}

fn question() -> CreateMessageRequestParams {
    CreateMessageRequestParams::new(
        vec![SamplingMessage::user_text("What is the capital of France?")],
        100,
    )
}

/// A field of an elicitation answer, as text.
fn field(answer: &ElicitResult, name: &str) -> String {
    match answer.content.as_ref().and_then(|c| c.get(name)) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "(none)".into(),
    }
}

/// How the user answered, with the field asked for.
fn accepted(answer: &ElicitResult, name: &str) -> String {
    let action = serde_json::to_value(answer.action).unwrap_or_default();
    format!("{} {}", action.as_str().unwrap_or("?"), field(answer, name))
}
