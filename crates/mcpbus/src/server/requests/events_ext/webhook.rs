//! `events/subscribe` and `events/unsubscribe` (docs/protocol.md 3.6): webhook subscriptions,
//! served in the 2026-07-28 era to an authenticated principal. The handshake era keeps its own
//! `events/subscribe {topics}` (section 2), so these exist only in the modern era.

use std::sync::Arc;

use mcpbus_proto::events_ext::DeliveryMode;
use mcpbus_proto::events_ext::webhook::{
    SubscribeEventsRequestParams, UnsubscribeEventsRequestParams,
};
use mcpbus_proto::jsonrpc::ErrorObject;
use serde_json::{Value, json};

use super::{age_floor, hub_with_topics, subscription};
use crate::server::context::Context;
use crate::service::{parse_params, to_result};
use crate::webhooks::{SubscribeRequest, WebhookSecret, Webhooks};

/// `events/subscribe`.
pub(crate) async fn subscribe(params: Option<Value>, ctx: Context) -> Result<Value, ErrorObject> {
    let webhooks = served(&ctx)?;
    let principal = principal(&ctx)?;
    let p: SubscribeEventsRequestParams = parse_params(params)?;
    if p.delivery.mode != "webhook" {
        return Err(ErrorObject::invalid_params(format_args!(
            "delivery.mode must be \"webhook\", not {:?}",
            p.delivery.mode
        )));
    }
    let secret = WebhookSecret::parse(&p.delivery.secret).map_err(ErrorObject::invalid_params)?;
    let events = subscription(&ctx, &p.subscription, DeliveryMode::Webhook)?;
    let request = SubscribeRequest {
        principal,
        name: p.subscription.name.clone(),
        arguments: p.subscription.arguments.clone(),
        events,
        url: p.delivery.url,
        secret,
        cursor: p.subscription.cursor().map(str::to_owned),
        not_before: age_floor(&p.subscription),
        ttl_ms: p.ttl_ms,
    };
    to_result(&webhooks.subscribe(request).await?)
}

/// `events/unsubscribe`: an empty result, or NotFound (`data.kind: "subscription"`).
pub(crate) async fn unsubscribe(
    params: Option<Value>,
    ctx: &Context,
) -> Result<Value, ErrorObject> {
    let webhooks = served(ctx)?;
    let principal = principal(ctx)?;
    let p: UnsubscribeEventsRequestParams = parse_params(params)?;
    webhooks
        .unsubscribe(
            &principal.subject,
            &p.delivery.url,
            &p.name,
            p.arguments.as_ref(),
        )
        .await?;
    Ok(json!({}))
}

/// The server's webhooks: without topics the methods do not exist (`-32601`); without
/// webhooks the mode is Unsupported.
fn served(ctx: &Context) -> Result<&Webhooks, ErrorObject> {
    hub_with_topics(ctx)?;
    ctx.server
        .inner
        .webhooks
        .as_ref()
        .ok_or_else(|| ErrorObject::unsupported("deliveryMode", DeliveryMode::Webhook.as_str()))
}

/// SEP-3415: webhook calls without an authenticated principal are Forbidden.
fn principal(ctx: &Context) -> Result<Arc<crate::server::Identity>, ErrorObject> {
    ctx.session.authenticated.clone().ok_or_else(|| {
        ErrorObject::forbidden(
            "webhook subscriptions need an authenticated principal (a bearer token; \
             docs/protocol.md 3.6.1)",
        )
    })
}
