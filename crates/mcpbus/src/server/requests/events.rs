//! The events extension: `events/subscribe`, `events/unsubscribe` and `events/list`, answered
//! by the server's [`EventHub`].

use mcpbus_proto::error_codes;
use mcpbus_proto::events::{EventListResult, EventSubscribeParams, EventUnsubscribeParams};
use mcpbus_proto::jsonrpc::ErrorObject;
use serde_json::Value;

use crate::events::EventHub;
use crate::server::context::{Context, lock};
use crate::service::{parse_params, to_result};

/// The hub, when the server declares topics (otherwise the events methods do not exist).
fn hub_with_topics(ctx: &Context) -> Result<&EventHub, ErrorObject> {
    let hub = ctx.server.events();
    if !hub.has_topics() {
        return Err(ErrorObject::new(
            error_codes::METHOD_NOT_FOUND,
            "Method not found: server has no events capability",
        ));
    }
    Ok(hub)
}

/// `events/subscribe`: the session gets the events of the topics it may see.
pub(crate) async fn subscribe(params: Option<Value>, ctx: &Context) -> Result<Value, ErrorObject> {
    let hub = hub_with_topics(ctx)?;
    let p: EventSubscribeParams = parse_params(params)?;
    let principal = lock(&ctx.session.principal).clone();
    to_result(&hub.subscribe(&principal, p.topics).await?)
}

/// `events/unsubscribe`: the session stops getting the events of those patterns.
pub(crate) async fn unsubscribe(
    params: Option<Value>,
    ctx: &Context,
) -> Result<Value, ErrorObject> {
    let hub = hub_with_topics(ctx)?;
    let p: EventUnsubscribeParams = parse_params(params)?;
    to_result(&hub.unsubscribe(&ctx.session.id, p.topics).await?)
}

/// `events/list`: the declared topics, and beside them the same topics as SEP-3415 event types
/// (docs/protocol.md 3.5).
pub(crate) fn list(ctx: &Context) -> Result<Value, ErrorObject> {
    let hub = hub_with_topics(ctx)?;
    let mut result = to_result(&EventListResult {
        topics: hub.descriptors(),
        meta: None,
    })?;
    if let Some(object) = result.as_object_mut() {
        object.insert("events".into(), to_result(&hub.declared().event_types())?);
    }
    Ok(result)
}
