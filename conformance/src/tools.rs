//! The tools the conformance suite calls, by the names it expects.

use std::time::Duration;

use mcpbus::server::{Context, NoArgs, ServerBuilder, ToolError};
use mcpbus_proto::mcp::{
    CallToolResult, ContentBlock, CreateMessageRequestParams, ElicitRequestFormParams,
    ElicitRequestParams, ElicitResult, LoggingLevel, ResourceContents, SamplingMessage, Tool,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::media::{TEST_PNG_BASE64, TEST_WAV_BASE64};

/// The pause between the steps of the logging and progress tools (the suite expects ~50 ms).
const STEP: Duration = Duration::from_millis(50);

/// The logger name of the log messages this server sends.
const LOGGER: &str = "mcpbus-everything";

/// Arguments of `test_sampling`.
#[derive(Debug, Deserialize, JsonSchema)]
struct SamplingArgs {
    /// The prompt to send to the client's model.
    prompt: String,
}

/// Arguments of `test_elicitation`.
#[derive(Debug, Deserialize, JsonSchema)]
struct ElicitationArgs {
    /// The message to show the user.
    message: String,
}

/// Adds every conformance tool to `builder`, family by family (the listing keeps this order).
pub(crate) fn register(builder: ServerBuilder) -> ServerBuilder {
    let builder = content_tools(builder);
    let builder = runtime_tools(builder);
    let builder = client_request_tools(builder);
    schema_and_stream_tools(builder)
}

/// Tools that answer with each kind of content block.
fn content_tools(builder: ServerBuilder) -> ServerBuilder {
    builder
        .tool(
            "test_simple_text",
            "Returns one text block",
            |_: NoArgs, _ctx| async { "This is a simple text response for testing." },
        )
        .tool(
            "test_image_content",
            "Returns a 1x1 PNG image",
            |_: NoArgs, _ctx| async {
                CallToolResult::content(vec![ContentBlock::image(TEST_PNG_BASE64, "image/png")])
            },
        )
        .tool(
            "test_audio_content",
            "Returns a short WAV clip",
            |_: NoArgs, _ctx| async {
                CallToolResult::content(vec![ContentBlock::audio(TEST_WAV_BASE64, "audio/wav")])
            },
        )
        .tool(
            "test_embedded_resource",
            "Returns an embedded text resource",
            |_: NoArgs, _ctx| async {
                CallToolResult::content(vec![ContentBlock::embedded(ResourceContents::text(
                    "test://embedded-resource",
                    Some("text/plain".into()),
                    "This is an embedded resource content.",
                ))])
            },
        )
        .tool(
            "test_multiple_content_types",
            "Returns text, an image and an embedded JSON resource",
            |_: NoArgs, _ctx| async {
                CallToolResult::content(vec![
                    ContentBlock::text("Multiple content types test:"),
                    ContentBlock::image(TEST_PNG_BASE64, "image/png"),
                    ContentBlock::embedded(ResourceContents::text(
                        "test://mixed-content-resource",
                        Some("application/json".into()),
                        json!({"test": "data", "value": 123}).to_string(),
                    )),
                ])
            },
        )
}

/// Tools that log, report progress or fail while they run.
fn runtime_tools(builder: ServerBuilder) -> ServerBuilder {
    builder
        .tool(
            "test_tool_with_logging",
            "Sends three info log messages 50 ms apart while it runs",
            |_: NoArgs, ctx| with_logging(ctx),
        )
        .tool(
            "test_tool_with_progress",
            "Reports progress 0, 50 and 100 of 100, 50 ms apart",
            |_: NoArgs, ctx| with_progress(ctx),
        )
        .tool(
            "test_error_handling",
            "Always fails with isError: true",
            always_fails,
        )
}

/// Tools that ask the client something (sampling, elicitation) and report its answer.
fn client_request_tools(builder: ServerBuilder) -> ServerBuilder {
    builder
        .tool(
            "test_sampling",
            "Asks the client's model to answer the prompt (sampling/createMessage)",
            sampling,
        )
        .tool(
            "test_elicitation",
            "Asks the user for a username and an email (elicitation/create)",
            |args: ElicitationArgs, ctx| {
                let schema = json!({
                    "type": "object",
                    "properties": {
                        "username": {"type": "string", "description": "User's response"},
                        "email": {"type": "string", "description": "User's email address"}
                    },
                    "required": ["username", "email"]
                });
                elicit(ctx, args.message, schema, "User response")
            },
        )
        .tool(
            "test_elicitation_sep1034_defaults",
            "Elicits a form whose fields of every primitive type have defaults (SEP-1034)",
            |_: NoArgs, ctx| {
                elicit(
                    ctx,
                    "Please review and update the form fields with defaults".into(),
                    sep1034_schema(),
                    "Elicitation completed",
                )
            },
        )
        .tool(
            "test_elicitation_sep1330_enums",
            "Elicits a form with the five enum shapes of SEP-1330",
            |_: NoArgs, ctx| {
                elicit(
                    ctx,
                    "Please select options from the enum fields".into(),
                    sep1330_schema(),
                    "Elicitation completed",
                )
            },
        )
}

/// A tool with a hand-written schema (untyped, so it is listed verbatim) and one that closes
/// its SSE stream before it answers.
fn schema_and_stream_tools(builder: ServerBuilder) -> ServerBuilder {
    builder
        .tool_raw(json_schema_2020_12_tool(), |args, _ctx| async move {
            format!(
                "json_schema_2020_12_tool called with: {}",
                Value::Object(args)
            )
        })
        .tool(
            "test_reconnection",
            "Closes the SSE stream of this call and answers after the client resumes (SEP-1699)",
            |_: NoArgs, ctx: Context| async move {
                ctx.close_sse_stream();
                // Give the client time to reconnect; the answer is stored for replay either way.
                tokio::time::sleep(Duration::from_millis(100)).await;
                "Reconnection test completed: the answer arrived after the stream was closed."
            },
        )
}

async fn with_logging(ctx: Context) -> &'static str {
    let steps = [
        "Tool execution started",
        "Tool processing data",
        "Tool execution completed",
    ];
    for (i, step) in steps.into_iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(STEP).await;
        }
        ctx.log(LoggingLevel::Info, Some(LOGGER), Value::from(step));
    }
    "Logging test completed: three messages were sent."
}

async fn with_progress(ctx: Context) -> &'static str {
    for (i, done) in [0.0, 50.0, 100.0].into_iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(STEP).await;
        }
        ctx.progress(done, Some(100.0), Some(format!("{done} of 100")));
    }
    "Progress test completed: reported 0, 50 and 100 of 100."
}

async fn always_fails(_: NoArgs, _ctx: Context) -> Result<&'static str, ToolError> {
    Err(ToolError::failed(
        "This tool intentionally returns an error for testing",
    ))
}

async fn sampling(args: SamplingArgs, ctx: Context) -> Result<String, ToolError> {
    let params =
        CreateMessageRequestParams::new(vec![SamplingMessage::user_text(args.prompt)], 100);
    let result = ctx
        .create_message(params)
        .await
        .map_err(|e| ToolError::failed(format!("sampling failed: {e}")))?;
    Ok(format!("LLM response: {}", result.content.text()))
}

/// Sends a form-mode `elicitation/create` and reports the user's answer as text.
async fn elicit(
    ctx: Context,
    message: String,
    schema: Value,
    label: &'static str,
) -> Result<String, ToolError> {
    let requested_schema = match schema {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let params = ElicitRequestParams::Form(ElicitRequestFormParams {
        message,
        requested_schema,
        meta: None,
    });
    let ElicitResult {
        action, content, ..
    } = ctx
        .elicit(params)
        .await
        .map_err(|e| ToolError::failed(format!("elicitation failed: {e}")))?;
    let action = serde_json::to_value(action)?;
    let content = Value::Object(content.unwrap_or_default());
    Ok(format!(
        "{label}: action={}, content={content}",
        action.as_str().unwrap_or("unknown")
    ))
}

/// One field of every primitive type, each with a default (SEP-1034).
fn sep1034_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "User name", "default": "John Doe"},
            "age": {"type": "integer", "description": "User age", "default": 30},
            "score": {"type": "number", "description": "User score", "default": 95.5},
            "status": {
                "type": "string",
                "description": "User status",
                "enum": ["active", "inactive", "pending"],
                "default": "active"
            },
            "verified": {"type": "boolean", "description": "Verification status", "default": true}
        },
        "required": []
    })
}

/// The five enum shapes of SEP-1330: untitled and titled single-select, the legacy
/// `enumNames` form, untitled and titled multi-select.
fn sep1330_schema() -> Value {
    let titled = |prefix: &str| {
        ["First", "Second", "Third"]
            .iter()
            .enumerate()
            .map(|(i, word)| json!({"const": format!("value{}", i + 1), "title": format!("{word} {prefix}")}))
            .collect::<Vec<_>>()
    };
    json!({
        "type": "object",
        "properties": {
            "untitledSingle": {
                "type": "string",
                "description": "Select one option",
                "enum": ["option1", "option2", "option3"]
            },
            "titledSingle": {
                "type": "string",
                "description": "Select one option with titles",
                "oneOf": titled("Option")
            },
            "legacyEnum": {
                "type": "string",
                "description": "Select one option (legacy)",
                "enum": ["opt1", "opt2", "opt3"],
                "enumNames": ["Option One", "Option Two", "Option Three"]
            },
            "untitledMulti": {
                "type": "array",
                "description": "Select multiple options",
                "minItems": 1,
                "maxItems": 3,
                "items": {"type": "string", "enum": ["option1", "option2", "option3"]}
            },
            "titledMulti": {
                "type": "array",
                "description": "Select multiple options with titles",
                "minItems": 1,
                "maxItems": 3,
                "items": {"anyOf": titled("Choice")}
            }
        },
        "required": []
    })
}

/// A tool whose hand-written input schema uses JSON Schema 2020-12 keywords that must reach
/// the client verbatim (`$schema`, `$defs` with `$anchor`, `$ref`, composition, conditionals,
/// `additionalProperties`).
fn json_schema_2020_12_tool() -> Tool {
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "address": {
                "$anchor": "addressDef",
                "type": "object",
                "properties": {
                    "street": {"type": "string"},
                    "city": {"type": "string"}
                }
            }
        },
        "properties": {
            "name": {"type": "string"},
            "address": {"$ref": "#/$defs/address"},
            "contactMethod": {"type": "string", "enum": ["phone", "email"]},
            "phone": {"type": "string"},
            "email": {"type": "string"}
        },
        "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
        "if": {
            "properties": {"contactMethod": {"const": "phone"}},
            "required": ["contactMethod"]
        },
        "then": {"required": ["phone"]},
        "else": {"required": ["email"]},
        "additionalProperties": false
    });
    Tool::new("json_schema_2020_12_tool", schema).with_description(
        "Takes arguments described with JSON Schema 2020-12 keywords (SEP-1613, SEP-2106)",
    )
}
