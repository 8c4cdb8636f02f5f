//! `tools/list` and `tools/call`.

use mcpbus_proto::jsonrpc::ErrorObject;
use mcpbus_proto::mcp::{CallToolRequestParams, CallToolResult, ListToolsResult, methods};
use serde_json::Value;

use super::{requested_page, require};
use crate::server::ToolError;
use crate::server::context::Context;
use crate::service::{parse_params, to_result};

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
    let call = entry.call.clone();
    let result = match call(p.arguments.unwrap_or_default(), ctx).await {
        Ok(result) => result,
        Err(ToolError::Failed(message)) => CallToolResult::error_text(message),
        Err(ToolError::Protocol(e)) => return Err(e),
    };
    to_result(&result)
}
