//! `resources/list`, `resources/templates/list`, `resources/read`, `resources/subscribe` and
//! `resources/unsubscribe`.

use mcpbus_proto::error_codes;
use mcpbus_proto::jsonrpc::ErrorObject;
use mcpbus_proto::mcp::{
    EmptyResult, ListResourceTemplatesResult, ListResourcesResult, ReadResourceRequestParams,
    SubscribeRequestParams, UnsubscribeRequestParams, methods,
};
use serde_json::{Value, json};

use super::{requested_page, require};
use crate::server::context::{Context, lock};
use crate::service::{parse_params, to_result};

/// `resources/list`: one page of the resources with a fixed URI.
pub(crate) fn list(params: Option<Value>, ctx: &Context) -> Result<Value, ErrorObject> {
    let inner = &ctx.server.inner;
    require(inner.offers_resources(), methods::RESOURCES_LIST)?;
    let (items, next_cursor) = requested_page(&inner.registry.resources, params, inner.page_size)?;
    to_result(&ListResourcesResult {
        resources: items.iter().map(|r| r.resource.clone()).collect(),
        next_cursor,
        meta: None,
    })
}

/// `resources/templates/list`: one page of the resource templates.
pub(crate) fn list_templates(params: Option<Value>, ctx: &Context) -> Result<Value, ErrorObject> {
    let inner = &ctx.server.inner;
    require(inner.offers_resources(), methods::RESOURCES_TEMPLATES_LIST)?;
    let (items, next_cursor) = requested_page(&inner.registry.templates, params, inner.page_size)?;
    to_result(&ListResourceTemplatesResult {
        resource_templates: items.iter().map(|t| t.template.clone()).collect(),
        next_cursor,
        meta: None,
    })
}

/// `resources/read`: a resource with that exact URI first, else the first template that
/// matches it.
pub(crate) async fn read(params: Option<Value>, ctx: Context) -> Result<Value, ErrorObject> {
    let server = ctx.server.clone();
    let inner = &server.inner;
    require(inner.offers_resources(), methods::RESOURCES_READ)?;
    let p: ReadResourceRequestParams = parse_params(params)?;
    if let Some(entry) = inner.registry.resource(&p.uri) {
        let read = entry.read.clone();
        return to_result(&read(p.uri, ctx).await?);
    }
    if let Some((entry, vars)) = inner.registry.template_for(&p.uri) {
        let read = entry.read.clone();
        return to_result(&read(p.uri, vars, ctx).await?);
    }
    Err(
        ErrorObject::new(error_codes::RESOURCE_NOT_FOUND, "Resource not found")
            .with_data(json!({"uri": p.uri})),
    )
}

/// `resources/subscribe`: the session gets `notifications/resources/updated` for the URI.
pub(crate) fn subscribe(params: Option<Value>, ctx: &Context) -> Result<Value, ErrorObject> {
    require(
        ctx.server.inner.offers_resources(),
        methods::RESOURCES_SUBSCRIBE,
    )?;
    let p: SubscribeRequestParams = parse_params(params)?;
    crate::server::topic_resources::check_resource_subscription(ctx, &p.uri)?;
    lock(&ctx.session.resource_subscriptions).insert(p.uri);
    to_result(&EmptyResult::default())
}

/// `resources/unsubscribe`: the session no longer hears about the URI.
pub(crate) fn unsubscribe(params: Option<Value>, ctx: &Context) -> Result<Value, ErrorObject> {
    require(
        ctx.server.inner.offers_resources(),
        methods::RESOURCES_UNSUBSCRIBE,
    )?;
    let p: UnsubscribeRequestParams = parse_params(params)?;
    lock(&ctx.session.resource_subscriptions).remove(&p.uri);
    to_result(&EmptyResult::default())
}
