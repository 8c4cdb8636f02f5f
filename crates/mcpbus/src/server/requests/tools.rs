//! `tools/list` and `tools/call`.

use mcpbus_proto::error_codes;
use mcpbus_proto::jsonrpc::ErrorObject;
use mcpbus_proto::mcp::{CallToolRequestParams, CallToolResult, ListToolsResult, methods};
use serde_json::Value;

use super::{requested_page, require};
use crate::server::ToolError;
use crate::server::context::Context;
use crate::service::{parse_params, to_result};
use crate::tasks::TaskSupport;

/// `tools/list`: one page of the declared tools.
pub(crate) fn list(params: Option<Value>, ctx: &Context) -> Result<Value, ErrorObject> {
    let inner = &ctx.server.inner;
    require(!inner.registry.tools.is_empty(), methods::TOOLS_LIST)?;
    let (tools, next_cursor) = requested_page(&inner.registry.tools, params, inner.page_size)?;
    to_result(&ListToolsResult {
        tools: tools.iter().map(|t| t.tool.clone()).collect(),
        next_cursor,
        meta: None,
    })
}

/// `tools/call`: runs the tool. A tool that fails answers with an error result the model can
/// read; only a protocol error becomes a JSON-RPC error.
pub(crate) async fn call(params: Option<Value>, ctx: Context) -> Result<Value, ErrorObject> {
    let server = ctx.server.clone();
    let registry = &server.inner.registry;
    require(!registry.tools.is_empty(), methods::TOOLS_CALL)?;
    let p: CallToolRequestParams = parse_params(params)?;
    let entry = registry
        .tool(&p.name)
        .ok_or_else(|| ErrorObject::invalid_params(format_args!("unknown tool {:?}", p.name)))?;
    if !ctx.is_modern() && entry.tasks.support == TaskSupport::Required {
        // The handshake era has no tasks extension: 2025-11-25 refuses a task-required tool
        // called without a task with -32601.
        return Err(ErrorObject::new(
            error_codes::METHOD_NOT_FOUND,
            format!(
                "tool {:?} runs only as a task: call it in the 2026-07-28 era with the \
                 io.modelcontextprotocol/tasks extension",
                p.name
            ),
        ));
    }
    let call = entry.call.clone();
    let result = match call(p.arguments.unwrap_or_default(), ctx).await {
        Ok(result) => result,
        Err(ToolError::Failed(message)) => CallToolResult::error_text(message),
        Err(ToolError::Protocol(e)) => return Err(e),
    };
    to_result(&result)
}
