//! The tools the conformance suite calls, by the names it expects.

use std::time::Duration;

use mcpbus::server::{Context, NoArgs, ServerBuilder, ToolError, tool_def};
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

/// Adds every conformance tool to `builder`.
pub(crate) fn register(builder: ServerBuilder) -> ServerBuilder {
    builder
        .tool(
            tool_def::<NoArgs>("test_simple_text", "Returns one text block"),
            |_: NoArgs, _ctx| async {
                Ok(CallToolResult::text(
                    "This is a simple text response for testing.",
                ))
            },
        )
        .tool(
            tool_def::<NoArgs>("test_image_content", "Returns a 1x1 PNG image"),
            |_: NoArgs, _ctx| async {
                Ok(CallToolResult::content(vec![ContentBlock::image(
                    TEST_PNG_BASE64,
                    "image/png",
                )]))
            },
        )
        .tool(
            tool_def::<NoArgs>("test_audio_content", "Returns a short WAV clip"),
            |_: NoArgs, _ctx| async {
                Ok(CallToolResult::content(vec![ContentBlock::audio(
                    TEST_WAV_BASE64,
                    "audio/wav",
                )]))
            },
        )
        .tool(
            tool_def::<NoArgs>(
                "test_embedded_resource",
                "Returns an embedded text resource",
            ),
            |_: NoArgs, _ctx| async {
                Ok(CallToolResult::content(vec![ContentBlock::embedded(
                    ResourceContents::text(
                        "test://embedded-resource",
                        Some("text/plain".into()),
                        "This is an embedded resource content.",
                    ),
                )]))
            },
        )
        .tool(
            tool_def::<NoArgs>(
                "test_multiple_content_types",
                "Returns text, an image and an embedded JSON resource",
            ),
            |_: NoArgs, _ctx| async {
                Ok(CallToolResult::content(vec![
                    ContentBlock::text("Multiple content types test:"),
                    ContentBlock::image(TEST_PNG_BASE64, "image/png"),
                    ContentBlock::embedded(ResourceContents::text(
                        "test://mixed-content-resource",
                        Some("application/json".into()),
                        json!({"test": "data", "value": 123}).to_string(),
                    )),
                ]))
            },
        )
        .tool(
            tool_def::<NoArgs>(
                "test_tool_with_logging",
                "Sends three info log messages 50 ms apart while it runs",
            ),
            |_: NoArgs, ctx| with_logging(ctx),
        )
        .tool(
            tool_def::<NoArgs>(
                "test_tool_with_progress",
                "Reports progress 0, 50 and 100 of 100, 50 ms apart",
            ),
            |_: NoArgs, ctx| with_progress(ctx),
        )
        .tool(
            tool_def::<NoArgs>("test_error_handling", "Always fails with isError: true"),
            |_: NoArgs, _ctx| async {
                Err(ToolError::failed(
                    "This tool intentionally returns an error for testing",
                ))
            },
        )
        .tool(
            tool_def::<SamplingArgs>(
                "test_sampling",
                "Asks the client's model to answer the prompt (sampling/createMessage)",
            ),
            sampling,
        )
        .tool(
            tool_def::<ElicitationArgs>(
                "test_elicitation",
                "Asks the user for a username and an email (elicitation/create)",
            ),
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
            tool_def::<NoArgs>(
                "test_elicitation_sep1034_defaults",
                "Elicits a form whose fields of every primitive type have defaults (SEP-1034)",
            ),
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
            tool_def::<NoArgs>(
                "test_elicitation_sep1330_enums",
                "Elicits a form with the five enum shapes of SEP-1330",
            ),
            |_: NoArgs, ctx| {
                elicit(
                    ctx,
                    "Please select options from the enum fields".into(),
                    sep1330_schema(),
                    "Elicitation completed",
                )
            },
        )
        .tool_raw(json_schema_2020_12_tool(), |args, _ctx| async move {
            Ok(CallToolResult::text(format!(
                "json_schema_2020_12_tool called with: {}",
                Value::Object(args)
            )))
        })
        .tool(
            tool_def::<NoArgs>(
                "test_reconnection",
                "Closes the SSE stream of this call and answers after the client resumes (SEP-1699)",
            ),
            |_: NoArgs, ctx: Context| async move {
                ctx.close_sse_stream();
                // Give the client time to reconnect; the answer is stored for replay either way.
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok(CallToolResult::text(
                    "Reconnection test completed: the answer arrived after the stream was closed.",
                ))
            },
        )
}

async fn with_logging(ctx: Context) -> Result<CallToolResult, ToolError> {
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
    Ok(CallToolResult::text(
        "Logging test completed: three messages were sent.",
    ))
}

async fn with_progress(ctx: Context) -> Result<CallToolResult, ToolError> {
    for (i, done) in [0.0, 50.0, 100.0].into_iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(STEP).await;
        }
        ctx.progress(done, Some(100.0), Some(format!("{done} of 100")));
    }
    Ok(CallToolResult::text(
        "Progress test completed: reported 0, 50 and 100 of 100.",
    ))
}

async fn sampling(args: SamplingArgs, ctx: Context) -> Result<CallToolResult, ToolError> {
    let params =
        CreateMessageRequestParams::new(vec![SamplingMessage::user_text(args.prompt)], 100);
    let result = ctx
        .create_message(params)
        .await
        .map_err(|e| ToolError::failed(format!("sampling failed: {e}")))?;
    Ok(CallToolResult::text(format!(
        "LLM response: {}",
        result.content.text()
    )))
}

/// Sends a form-mode `elicitation/create` and reports the user's answer as text.
async fn elicit(
    ctx: Context,
    message: String,
    schema: Value,
    label: &'static str,
) -> Result<CallToolResult, ToolError> {
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
    Ok(CallToolResult::text(format!(
        "{label}: action={}, content={content}",
        action.as_str().unwrap_or("unknown")
    )))
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
