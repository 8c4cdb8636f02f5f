//! The MCP Events extension (SEP-3415) over the server's topics (docs/protocol.md 3):
//! `events/list` here, `events/poll` in [`poll`], `events/stream` in [`stream`]. Every mode
//! reads the one event log ([`scan`]), so an event has the same id and cursor in all of them
//! and in the handshake era's `events/emit`.
//!
//! Webhook delivery (`events/subscribe` and `events/unsubscribe`, in [`webhook`]) is served
//! when the server is built with webhooks (docs/protocol.md 3.6), in the 2026-07-28 era.

pub(crate) mod poll;
pub(crate) mod scan;
pub(crate) mod stream;
pub(crate) mod webhook;

pub(crate) use scan::read_error;

use mcpbus_proto::error_codes;
use mcpbus_proto::events_ext::{
    DeliveryMode, EventsExtensionSettings, ListEventsRequestParams, ListEventsResult,
    SubscriptionParams,
};
use mcpbus_proto::jsonrpc::ErrorObject;
use serde_json::{Map, Value};

use super::page;
use crate::events::EventHub;
use crate::events::event_types::EventSubscription;
use crate::server::context::{Context, lock};
use crate::service::{parse_params, to_result};

pub(crate) use mcpbus_proto::events_ext::EXTENSION_ID;

/// The hub, when the server declares topics (otherwise the extension is not offered and its
/// methods do not exist: `-32601`).
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

/// docs/protocol.md 3.1: the extension's settings under `capabilities.extensions` in
/// `server/discover`, and the same object at top level `capabilities.events` for clients of
/// the working group's earlier design sketch; nothing when the server has no topics.
pub(crate) fn advertise(capabilities: &mut Map<String, Value>, hub: &EventHub) {
    if !hub.has_topics() {
        return;
    }
    let settings = EventsExtensionSettings {
        list_changed: Some(true),
    };
    let settings = serde_json::to_value(settings).unwrap_or_default();
    capabilities.insert("events".into(), settings.clone());
    let extensions = capabilities
        .entry("extensions")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(extensions) = extensions.as_object_mut() {
        extensions.insert(EXTENSION_ID.into(), settings);
    }
}

/// `events/list`: the declared topics as event types (docs/protocol.md 3.2), paginated like
/// `tools/list`.
pub(crate) fn list(params: Option<Value>, ctx: &Context) -> Result<Value, ErrorObject> {
    let hub = hub_with_topics(ctx)?;
    let p: ListEventsRequestParams = parse_params(params)?;
    let types = hub.declared().event_types();
    let (events, next_cursor) = page(&types, p.cursor.as_deref(), ctx.server.inner.page_size)?;
    to_result(&ListEventsResult {
        events: events.to_vec(),
        next_cursor,
        meta: None,
    })
}

/// Resolves the subscription a poll, a push stream or a webhook names (docs/protocol.md 3.2).
/// A request of the 2026-07-28 era subscribes as its authenticated principal (a bearer token,
/// 3.6.1), or without one, and then scoped topics are Forbidden to it; a handshake-era session
/// subscribes as itself (2.5).
fn subscription(
    ctx: &Context,
    params: &SubscriptionParams,
    mode: DeliveryMode,
) -> Result<EventSubscription, ErrorObject> {
    let hub = hub_with_topics(ctx)?;
    let principal = caller_principal(ctx);
    hub.declared().subscribe_event(
        &params.name,
        params.arguments.as_ref(),
        mode,
        principal.as_ref(),
    )
}

/// Who a request subscribes as: in the 2026-07-28 era its authenticated principal (a bearer
/// token, 3.6.1) or nobody, in the handshake era its session (2.5).
pub(crate) fn caller_principal(ctx: &Context) -> Option<crate::events::Principal> {
    if ctx.is_modern() {
        ctx.session
            .authenticated
            .as_ref()
            .map(crate::server::auth::topic_principal)
    } else {
        Some(lock(&ctx.session.principal).clone())
    }
}

/// The replay floor of `maxAgeMs`, ignored from "now" (SEP-3415: `null` already means now).
fn age_floor(params: &SubscriptionParams) -> Option<chrono::DateTime<chrono::Utc>> {
    let ms = i64::try_from(params.max_age_ms?).unwrap_or(i64::MAX);
    params.cursor()?;
    chrono::Utc::now().checked_sub_signed(chrono::Duration::milliseconds(ms))
}
