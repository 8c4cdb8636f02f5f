//! The fixtures of the suite's `tasks-*` scenarios (the extension `io.modelcontextprotocol/tasks`,
//! SEP-2663): tools that run as tasks for a request that declares the extension. They are
//! ordinary handlers: the SDK answers the call with the task, runs the handler in the
//! background, parks the task in `input_required` when the handler asks for input, and
//! records its result or error.

use std::time::Duration;

use mcpbus::server::{Context, NoArgs, ServerBuilder, ToolError, ToolSpec};
use mcpbus::tasks::{TaskStart, TaskSupport};
use mcpbus_proto::jsonrpc::ErrorObject;
use mcpbus_proto::mcp::{ElicitAction, ElicitRequestFormParams, ElicitRequestParams, ElicitResult};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

/// Arguments of `greet`.
#[derive(Deserialize, JsonSchema)]
struct Greet {
    /// Who to greet.
    name: String,
}

/// Arguments of `slow_compute`.
#[derive(Deserialize, JsonSchema)]
struct SlowCompute {
    /// How long the computation takes, in seconds (0: answered at once).
    seconds: f64,
    /// A label echoed in the result.
    #[serde(default)]
    label: Option<String>,
}

/// Arguments of `confirm_delete`.
#[derive(Deserialize, JsonSchema)]
struct ConfirmDelete {
    /// The file to delete once the user confirms.
    filename: String,
}

/// Adds the tasks fixtures to `builder`.
pub(crate) fn register(builder: ServerBuilder) -> ServerBuilder {
    let builder = builder
        .tool(
            "greet",
            "Greets someone (never a task)",
            |a: Greet, _ctx| async move { format!("Hello, {}!", a.name) },
        )
        .tool_with(
            ToolSpec::new(
                "slow_compute",
                "Computes for `seconds` seconds; a task for clients that accept tasks, \
                 answered at once when `seconds` is 0",
            )
            .task_support(TaskSupport::Optional)
            .task_start(TaskStart::Handler),
            slow_compute,
        )
        .tool_with(
            ToolSpec::new(
                "failing_job",
                "A task that ends with a tool error after a second",
            )
            .task_support(TaskSupport::Required),
            |_: NoArgs, ctx: Context| async move {
                pause(&ctx, 1.0).await;
                Err::<String, _>(ToolError::failed("the job failed: the input was invalid"))
            },
        )
        .tool_with(
            ToolSpec::new(
                "protocol_error_job",
                "A task that ends with a JSON-RPC error (status failed)",
            )
            .task_support(TaskSupport::Optional),
            |_: NoArgs, ctx: Context| async move {
                pause(&ctx, 0.2).await;
                let error = ErrorObject::internal("the job's backend is unreachable");
                Err::<String, _>(ToolError::protocol(error))
            },
        );
    input_tools(builder)
}

/// The fixtures that ask for input, inside the task or before it.
fn input_tools(builder: ServerBuilder) -> ServerBuilder {
    builder
        .tool_with(
            ToolSpec::new(
                "confirm_delete",
                "Deletes a file once the user confirms (asked inside the task)",
            )
            .task_support(TaskSupport::Optional),
            |a: ConfirmDelete, ctx: Context| async move {
                let message = format!("Delete {}?", a.filename);
                let answer = ctx
                    .input_key("confirm")
                    .elicit(confirm_form(&message))
                    .await?;
                Ok::<_, ToolError>(if confirmed(&answer) {
                    format!("Deleted {}.", a.filename)
                } else {
                    format!("Kept {}.", a.filename)
                })
            },
        )
        .tool_with(
            ToolSpec::new(
                "multi_input",
                "Asks for a name and a confirmation at once (inside the task)",
            )
            .task_support(TaskSupport::Optional),
            |_: NoArgs, ctx: Context| async move {
                let (namer, confirmer) = (ctx.input_key("name"), ctx.input_key("confirm"));
                let (name, confirm) = tokio::join!(
                    namer.elicit(name_form("What name should be used?")),
                    confirmer.elicit(confirm_form("Go ahead?")),
                );
                let (name, confirm) = (name?, confirm?);
                Ok::<_, ToolError>(format!(
                    "name {}, confirmed {}",
                    text_field(&name, "name"),
                    confirmed(&confirm)
                ))
            },
        )
        .tool_with(
            ToolSpec::new(
                "test_tool_with_task",
                "Asks for a name before starting its task, then greets in the background",
            )
            .task_support(TaskSupport::Required)
            .task_start(TaskStart::Handler),
            |_: NoArgs, ctx: Context| async move {
                let answer = ctx
                    .input_key("user_name")
                    .elicit(name_form("What is your name?"))
                    .await?;
                ctx.start_task().await?;
                pause(&ctx, 0.3).await;
                Ok::<_, ToolError>(format!("Hello, {}!", text_field(&answer, "name")))
            },
        )
}

async fn slow_compute(a: SlowCompute, ctx: Context) -> Result<String, ToolError> {
    let label = a.label.unwrap_or_else(|| "unlabelled".into());
    if a.seconds > 0.0 {
        ctx.start_task().await?;
    }
    if !pause(&ctx, a.seconds).await {
        return Ok(format!("{label}: cancelled"));
    }
    Ok(format!("{label}: computed for {} s", a.seconds))
}

/// Sleeps `seconds` unless cancelled first; whether the whole pause passed.
async fn pause(ctx: &Context, seconds: f64) -> bool {
    let duration = Duration::try_from_secs_f64(seconds).unwrap_or(Duration::ZERO);
    tokio::select! {
        () = tokio::time::sleep(duration) => true,
        () = ctx.cancellation().cancelled() => false,
    }
}

fn confirm_form(message: &str) -> ElicitRequestParams {
    form(message, "confirm", json!({"type": "boolean"}))
}

fn name_form(message: &str) -> ElicitRequestParams {
    form(message, "name", json!({"type": "string"}))
}

/// A form asking for one field.
fn form(message: &str, field: &str, schema: Value) -> ElicitRequestParams {
    let Value::Object(requested_schema) = json!({
        "type": "object",
        "properties": {field: schema},
        "required": [field]
    }) else {
        unreachable!("a JSON object literal")
    };
    ElicitRequestParams::Form(ElicitRequestFormParams {
        message: message.into(),
        requested_schema,
        meta: None,
    })
}

/// Whether the user accepted with `confirm: true`.
fn confirmed(answer: &ElicitResult) -> bool {
    answer.action == ElicitAction::Accept
        && answer
            .content
            .as_ref()
            .and_then(|c| c.get("confirm"))
            .is_some_and(|v| v == &json!(true))
}

fn text_field(answer: &ElicitResult, name: &str) -> String {
    match answer.content.as_ref().and_then(|c| c.get(name)) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "(none)".into(),
    }
}
