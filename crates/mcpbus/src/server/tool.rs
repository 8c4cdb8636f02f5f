//! The tool API: how a tool is described ([`ToolSpec`]), what its handler may return
//! ([`IntoToolResult`], [`Json`]) and how it fails ([`ToolError`]).
//!
//! A typed tool's input schema is always derived from the handler's own argument type, so the
//! advertised schema and the arguments the handler parses cannot disagree.

use std::future::Future;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use mcpbus_proto::jsonrpc::ErrorObject;
use mcpbus_proto::mcp::{CallToolResult, Icon, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::context::Context;
use crate::events::EmitError;
use crate::tasks::{TaskStart, TaskSupport};

/// A registered tool's handler: raw arguments in, a result or a tool error out.
pub(crate) type ToolFn = Arc<
    dyn Fn(Map<String, Value>, Context) -> BoxFuture<'static, Result<CallToolResult, ToolError>>
        + Send
        + Sync,
>;

/// Why a tool call failed.
///
/// A [`ToolError::failed`] becomes a result with `isError: true`, so that the model sees the
/// message and can correct itself; a [`ToolError::protocol`] becomes a JSON-RPC error.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolError {
    /// The tool ran and failed: reported as a result with `isError: true`.
    Failed(String),
    /// The call itself is wrong: reported as a JSON-RPC error.
    Protocol(ErrorObject),
}

impl ToolError {
    /// A failure reported to the model as an error result.
    pub fn failed(message: impl Into<String>) -> Self {
        ToolError::Failed(message.into())
    }

    /// A protocol-level error.
    pub fn protocol(error: ErrorObject) -> Self {
        ToolError::Protocol(error)
    }
}

impl From<ErrorObject> for ToolError {
    fn from(e: ErrorObject) -> Self {
        ToolError::Protocol(e)
    }
}

impl From<String> for ToolError {
    fn from(s: String) -> Self {
        ToolError::Failed(s)
    }
}

impl From<&str> for ToolError {
    fn from(s: &str) -> Self {
        ToolError::Failed(s.to_string())
    }
}

impl From<crate::Error> for ToolError {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::Refused(e) => ToolError::Protocol(e),
            other => ToolError::Failed(other.to_string()),
        }
    }
}

impl From<serde_json::Error> for ToolError {
    fn from(e: serde_json::Error) -> Self {
        ToolError::Failed(e.to_string())
    }
}

/// An event the tool tried to publish was refused: the model sees why (e.g. an undeclared
/// topic) and can correct itself.
impl From<EmitError> for ToolError {
    fn from(e: EmitError) -> Self {
        ToolError::Failed(e.to_string())
    }
}

/// Arguments of a tool that takes none.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
pub struct NoArgs {}

/// What a tool handler may return: a [`CallToolResult`], text (`String`, `&'static str`),
/// [`Json`], or a `Result` of any of these with a [`ToolError`].
///
/// The error type of `Result` is [`ToolError`] itself rather than anything convertible into
/// it: then `Ok(..)` at the end of a closure needs no type annotation, and `?` still converts
/// every error that has a `From` impl for [`ToolError`].
pub trait IntoToolResult {
    /// The result to send, or the error to report (`isError: true` or a JSON-RPC error).
    fn into_tool_result(self) -> Result<CallToolResult, ToolError>;
}

impl IntoToolResult for CallToolResult {
    fn into_tool_result(self) -> Result<CallToolResult, ToolError> {
        Ok(self)
    }
}

/// One text block.
impl IntoToolResult for String {
    fn into_tool_result(self) -> Result<CallToolResult, ToolError> {
        Ok(CallToolResult::text(self))
    }
}

/// One text block.
impl IntoToolResult for &'static str {
    fn into_tool_result(self) -> Result<CallToolResult, ToolError> {
        Ok(CallToolResult::text(self))
    }
}

impl<T: IntoToolResult> IntoToolResult for Result<T, ToolError> {
    fn into_tool_result(self) -> Result<CallToolResult, ToolError> {
        self?.into_tool_result()
    }
}

/// A structured tool result: the value becomes `structuredContent`, and its JSON text a text
/// block for clients that only read `content`. MCP expects it to serialize to a JSON object
/// (matching the tool's output schema, if it declares one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoToolResult for Json<T> {
    fn into_tool_result(self) -> Result<CallToolResult, ToolError> {
        let value = serde_json::to_value(self.0)
            .map_err(|e| ToolError::failed(format!("the tool's result is not JSON: {e}")))?;
        Ok(CallToolResult::structured(value))
    }
}

/// How a typed tool is listed, apart from its input schema (which always comes from the
/// handler's argument type): name, description and optional metadata. Register it with
/// [`ServerBuilder::tool_with`](super::ServerBuilder::tool_with).
#[derive(Debug, Clone)]
pub struct ToolSpec {
    tool: Tool,
    tasks: TaskPolicy,
}

/// How a tool runs as a task (docs/protocol.md 6.9).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TaskPolicy {
    pub(crate) support: TaskSupport,
    pub(crate) start: TaskStart,
}

impl ToolSpec {
    /// A tool with a name (unique on the server) and a description for the model.
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        ToolSpec {
            tool: Tool::new(name, Value::Object(Map::new())).with_description(description),
            tasks: TaskPolicy::default(),
        }
    }

    /// Whether the tool runs as a task (the 2026-07-28 extension `io.modelcontextprotocol/tasks`)
    /// for a request that declares the extension; [`TaskSupport::None`] by default.
    ///
    /// ```no_run
    /// # use mcpbus::server::{Context, Server, ToolSpec};
    /// # use mcpbus::tasks::TaskSupport;
    /// # #[derive(serde::Deserialize, schemars::JsonSchema)]
    /// # struct Report { month: String }
    /// let builder = Server::builder("reports", "1.0.0").tool_with(
    ///     ToolSpec::new("build_report", "Builds a monthly report (minutes)")
    ///         .task_support(TaskSupport::Optional),
    ///     |args: Report, ctx: Context| async move {
    ///         // Runs in the background when the client accepts tasks; cancelled by tasks/cancel.
    ///         tokio::select! {
    ///             _ = tokio::time::sleep(std::time::Duration::from_secs(120)) => {}
    ///             _ = ctx.cancellation().cancelled() => return "cancelled".to_string(),
    ///         }
    ///         format!("report for {}", args.month)
    ///     },
    /// );
    /// ```
    pub fn task_support(mut self, support: TaskSupport) -> Self {
        self.tasks.support = support;
        self
    }

    /// When a call that runs as a task becomes one ([`TaskStart::AtCall`] by default); see
    /// [`Context::start_task`].
    pub fn task_start(mut self, start: TaskStart) -> Self {
        self.tasks.start = start;
        self
    }

    /// How the tool runs as a task.
    pub(crate) fn task_policy(&self) -> TaskPolicy {
        self.tasks
    }

    /// A display name.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.tool.title = Some(title.into());
        self
    }

    /// Hints about the tool's behaviour (read-only, destructive, idempotent, open world).
    pub fn annotations(mut self, annotations: ToolAnnotations) -> Self {
        self.tool.annotations = Some(annotations);
        self
    }

    /// Declares the schema of the tool's `structuredContent`, derived from `O` like input
    /// schemas are; the handler should then return [`Json<O>`](Json).
    pub fn output_schema<O: JsonSchema>(mut self) -> Self {
        self.tool.output_schema = Some(object_schema::<O>());
        self
    }

    /// Icons for display.
    pub fn icons(mut self, icons: Vec<Icon>) -> Self {
        self.tool.icons = Some(icons);
        self
    }

    /// The tool as listed, with the input schema derived from `A`.
    pub(crate) fn into_tool<A: JsonSchema>(mut self) -> Tool {
        self.tool.input_schema = object_schema::<A>();
        self.tool
    }
}

/// The JSON Schema (2020-12, via schemars) of `T` as an object schema, as MCP requires of input
/// and output schemas.
fn object_schema<T: JsonSchema>() -> Map<String, Value> {
    let schema = schemars::schema_for!(T);
    let mut map = match serde_json::to_value(&schema) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    // A bare title is noise in a tool listing.
    map.remove("title");
    map.entry("type")
        .or_insert_with(|| Value::String("object".into()));
    map
}

/// Wraps a typed tool handler: arguments that do not fit `A` give an error result naming the
/// problem (so the model can correct itself), never a crash.
pub(crate) fn typed_tool<A, F, Fut, R>(f: F) -> ToolFn
where
    A: DeserializeOwned + Send + 'static,
    F: Fn(A, Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoToolResult,
{
    let f = Arc::new(f);
    Arc::new(move |args: Map<String, Value>, ctx: Context| {
        let f = f.clone();
        async move {
            let args: A = serde_json::from_value(Value::Object(args))
                .map_err(|e| ToolError::Failed(format!("invalid arguments: {e}")))?;
            f(args, ctx).await.into_tool_result()
        }
        .boxed()
    })
}

/// Wraps a handler of raw JSON arguments.
pub(crate) fn raw_tool<F, Fut, R>(f: F) -> ToolFn
where
    F: Fn(Map<String, Value>, Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoToolResult,
{
    let f = Arc::new(f);
    Arc::new(move |args, ctx| {
        let f = f.clone();
        async move { f(args, ctx).await.into_tool_result() }.boxed()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpbus_proto::mcp::ContentBlock;
    use serde_json::json;

    #[test]
    fn derived_schemas_are_objects() {
        #[derive(Deserialize, JsonSchema)]
        #[allow(dead_code)]
        struct Args {
            /// A number.
            a: i64,
        }
        let tool = ToolSpec::new("add", "Adds").into_tool::<Args>();
        assert_eq!(tool.description.as_deref(), Some("Adds"));
        assert_eq!(tool.input_schema["type"], "object");
        assert!(tool.input_schema["properties"]["a"].is_object());
        assert!(!tool.input_schema.contains_key("title"));
        let none = ToolSpec::new("noop", "Nothing").into_tool::<NoArgs>();
        assert_eq!(none.input_schema["type"], "object");
    }

    #[test]
    fn metadata_reaches_the_listing() {
        #[derive(Serialize, JsonSchema)]
        struct Sum {
            total: i64,
        }
        let tool = ToolSpec::new("add", "Adds")
            .title("Add")
            .annotations(ToolAnnotations {
                read_only_hint: Some(true),
                ..Default::default()
            })
            .output_schema::<Sum>()
            .into_tool::<NoArgs>();
        assert_eq!(tool.title.as_deref(), Some("Add"));
        assert_eq!(tool.annotations.unwrap().read_only_hint, Some(true));
        let output = tool.output_schema.unwrap();
        assert_eq!(output["type"], "object");
        assert!(output["properties"]["total"].is_object());
    }

    #[test]
    fn plain_values_become_results() {
        let text = |r: CallToolResult| match &r.content[..] {
            [ContentBlock::Text(t)] => t.text.clone(),
            other => panic!("expected one text block, got {other:?}"),
        };
        assert_eq!(text("hi".into_tool_result().unwrap()), "hi");
        assert_eq!(text(String::from("hi").into_tool_result().unwrap()), "hi");
        let json = Json(json!({"a": 1})).into_tool_result().unwrap();
        assert_eq!(json.structured_content, Some(json!({"a": 1})));
        assert_eq!(text(json), r#"{"a":1}"#);
        let ok: Result<&'static str, ToolError> = Ok("fine");
        assert_eq!(text(ok.into_tool_result().unwrap()), "fine");
        let failed: Result<&'static str, ToolError> = Err(ToolError::failed("no"));
        assert_eq!(failed.into_tool_result(), Err(ToolError::failed("no")));
    }

    #[test]
    fn emit_errors_become_failures_the_model_sees() {
        let message = EmitError::UndeclaredTopic("x/y".into()).to_string();
        let e = EmitError::UndeclaredTopic("x/y".into());
        assert_eq!(ToolError::from(e), ToolError::Failed(message));
    }
}
