//! The dispatcher: which function answers each request a client may send, one line per
//! method. The answers live in `requests/`, one file per family of methods.

use mcpbus_proto::jsonrpc::{ErrorObject, Request};
use mcpbus_proto::mcp::methods;
use serde_json::Value;

use super::context::Context;
use mcpbus_proto::events_ext::methods as events_ext_methods;

use super::requests::{completion, events, events_ext, lifecycle, prompts, resources, tools};

/// Answers one request of a session.
pub(crate) async fn dispatch(request: Request, ctx: Context) -> Result<Value, ErrorObject> {
    if ctx.server.inner.modern.enabled
        && ctx.session.client().is_none()
        && super::modern::is_modern_request(&request)
    {
        // No handshake, and the request names its revision: the 2026-07-28 era.
        return super::modern::serve(request, ctx).await;
    }
    let method = request.method.as_str();
    let params = request.params;
    if !answered_before_initialize(method) && ctx.session.client().is_none() {
        return Err(ErrorObject::invalid_request(
            "the session is not initialized: send initialize first",
        ));
    }
    match method {
        methods::INITIALIZE => lifecycle::initialize(params, &ctx),
        methods::PING => lifecycle::ping(),
        methods::LOGGING_SET_LEVEL => lifecycle::set_log_level(params, &ctx),
        methods::TOOLS_LIST => tools::list(params, &ctx),
        methods::TOOLS_CALL => tools::call(params, ctx).await,
        methods::RESOURCES_LIST => resources::list(params, &ctx),
        methods::RESOURCES_TEMPLATES_LIST => resources::list_templates(params, &ctx),
        methods::RESOURCES_READ => resources::read(params, ctx).await,
        methods::RESOURCES_SUBSCRIBE => resources::subscribe(params, &ctx),
        methods::RESOURCES_UNSUBSCRIBE => resources::unsubscribe(params, &ctx),
        methods::PROMPTS_LIST => prompts::list(params, &ctx),
        methods::PROMPTS_GET => prompts::get(params, ctx).await,
        methods::COMPLETION_COMPLETE => completion::complete(params, ctx).await,
        methods::EVENTS_SUBSCRIBE => events::subscribe(params, &ctx).await,
        methods::EVENTS_UNSUBSCRIBE => events::unsubscribe(params, &ctx).await,
        methods::EVENTS_LIST => events::list(&ctx),
        // SEP-3415's poll and push beside the topic events (docs/protocol.md 3.5).
        events_ext_methods::EVENTS_POLL => events_ext::poll::poll(params, ctx).await,
        events_ext_methods::EVENTS_STREAM => events_ext::stream::stream(params, ctx).await,
        other => Err(ErrorObject::method_not_found(other)),
    }
}

/// MCP lets a client ping, and of course initialize, before the session is initialized.
fn answered_before_initialize(method: &str) -> bool {
    method == methods::INITIALIZE || method == methods::PING
}
