//! `completion/complete`: suggestions for a prompt's or a resource template's arguments.

use mcpbus_proto::jsonrpc::ErrorObject;
use mcpbus_proto::mcp::{CompleteRequestParams, methods};
use serde_json::Value;

use crate::server::context::Context;
use crate::service::{parse_params, to_result};

/// `completion/complete`, answered by the server's completion handler when it has one.
pub(crate) async fn complete(params: Option<Value>, ctx: Context) -> Result<Value, ErrorObject> {
    let Some(complete) = ctx.server.inner.registry.completion.clone() else {
        return Err(ErrorObject::method_not_found(methods::COMPLETION_COMPLETE));
    };
    let p: CompleteRequestParams = parse_params(params)?;
    to_result(&complete(p, ctx).await?)
}
