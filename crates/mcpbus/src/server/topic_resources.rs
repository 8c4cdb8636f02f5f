//! The resource bridge (docs/events.md, "Events through resources"): the topics and their
//! retained values as resources, so that a host that supports resource subscriptions gets live
//! state with no events extension at all.
//!
//! - `mcpbus://topics`: the declared topics.
//! - `mcpbus://retained`: every unexpired retained value, by topic.
//! - `mcpbus://retained/{+topic}` (a template): one topic's retained value, e.g.
//!   `mcpbus://retained/build/status`.
//!
//! When a retained value changes, the subscribers of both retained URIs are told
//! (`notifications/resources/updated`: sessions that called `resources/subscribe`, listen
//! streams that asked for the URI). Every replica reads every event from the one log, so each
//! tells its own subscribers, whichever replica published.

use std::sync::{Arc, Weak};

use mcpbus_proto::error_codes;
use mcpbus_proto::events::RetainedEvent;
use mcpbus_proto::jsonrpc::ErrorObject;
use mcpbus_proto::mcp::{ReadResourceResult, Resource, ResourceContents, ResourceTemplate};
use mcpbus_proto::topic::TopicPattern;
use serde_json::{Value, json};

use super::context::Context;
use super::modern::ServerChange;
use super::requests::events_ext::caller_principal;
use super::{ServerBuilder, ServerInner};
use crate::events::LoggedEvent;

/// The declared topics.
pub const TOPICS_URI: &str = "mcpbus://topics";
/// Every retained value.
pub const RETAINED_URI: &str = "mcpbus://retained";
/// One topic's retained value: this prefix, then the topic.
pub const RETAINED_TOPIC_PREFIX: &str = "mcpbus://retained/";

impl ServerBuilder {
    /// Adds the resource bridge (docs/events.md): `mcpbus://topics`, `mcpbus://retained` and
    /// the template `mcpbus://retained/{+topic}`, whose subscribers hear of every change of a
    /// retained value, published on this replica or another.
    pub fn event_resources(mut self) -> Self {
        self.retained_updates = true;
        self.resource(
            Resource::new(TOPICS_URI, "topics")
                .with_description("The event topics this server declares")
                .with_mime_type("application/json"),
            |uri, ctx: Context| async move {
                json_contents(&uri, &json!({ "topics": visible_topics(&ctx) }))
            },
        )
        .resource(
            Resource::new(RETAINED_URI, "retained")
                .with_description("Every unexpired retained value, by topic")
                .with_mime_type("application/json"),
            |uri, ctx: Context| async move {
                let values = visible_retained(&ctx, &pattern_of("#")?).await?;
                json_contents(&uri, &json!({ "retained": values }))
            },
        )
        .resource_template(retained_template(), |uri, vars, ctx: Context| async move {
            let topic = vars.get("topic").cloned().unwrap_or_default();
            if topic.contains(['+', '#']) {
                return Err(ErrorObject::invalid_params(format_args!(
                    "{uri} names a pattern; a retained-topic resource names one topic"
                )));
            }
            let pattern = pattern_of(&topic)?;
            check_read(&ctx, &pattern).map_err(|e| ErrorObject::forbidden(e.to_string()))?;
            let value = visible_retained(&ctx, &pattern).await?;
            let value = value.into_iter().next();
            let value = value.ok_or_else(|| {
                let message = format!("Resource not found: topic {topic:?} has no retained value");
                ErrorObject::new(error_codes::RESOURCE_NOT_FOUND, message)
                    .with_data(json!({"uri": uri}))
            })?;
            json_contents(&uri, &serde_json::to_value(value).unwrap_or_default())
        })
    }
}

fn retained_template() -> ResourceTemplate {
    let mut template = ResourceTemplate::new(
        format!("{RETAINED_TOPIC_PREFIX}{{+topic}}"),
        "retained-topic",
    );
    template.description = Some(
        "One topic's retained value (its latest event), e.g. mcpbus://retained/build/status; \
         subscribe to hear when it changes"
            .into(),
    );
    template.mime_type = Some("application/json".into());
    template
}

/// The declared topics as the caller may reach them (`mcpbus://topics`, the tool bridge's
/// `list_topics`): with topic permissions (docs/auth.md), those it may subscribe to none of
/// are left out, and those it may subscribe to only in part say `"access": "partial"`.
pub(super) fn visible_topics(ctx: &Context) -> Vec<Value> {
    ctx.events()
        .declared()
        .listing(caller_principal(ctx).as_ref())
}

/// Refuses reading the retained value of one topic the topic permissions do not let the caller
/// subscribe to (docs/auth.md): a wildcard read is narrowed instead ([`visible_retained`]).
pub(super) fn check_read(
    ctx: &Context,
    pattern: &TopicPattern,
) -> Result<(), crate::events::access::AccessDenied> {
    if !pattern.is_literal() {
        return Ok(());
    }
    ctx.server
        .access_rules()
        .check_subscribe(&ctx.caller(), pattern)
}

/// Refuses `resources/subscribe` (and leaves out of a listen stream) a retained-topic URI whose
/// topic the caller may not subscribe to; other URIs pass.
pub(crate) fn check_resource_subscription(ctx: &Context, uri: &str) -> Result<(), ErrorObject> {
    let Some(topic) = uri.strip_prefix(RETAINED_TOPIC_PREFIX) else {
        return Ok(());
    };
    match TopicPattern::new(topic) {
        Ok(pattern) => check_read(ctx, &pattern).map_err(|e| ErrorObject::forbidden(e.to_string())),
        // Not a topic: reading it fails on its own.
        Err(_) => Ok(()),
    }
}

/// The retained values of the topics matching `pattern` that the caller may see (the rules of
/// docs/protocol.md 2.5: another agent's scoped topic is left out; and the topic permissions of
/// docs/auth.md: a topic the caller may not subscribe to is left out). The tool bridge's
/// `read_retained` reads them the same way.
pub(super) async fn visible_retained(
    ctx: &Context,
    pattern: &TopicPattern,
) -> Result<Vec<RetainedEvent>, ErrorObject> {
    let hub = ctx.events();
    let values = hub
        .retained_values(pattern)
        .await
        .map_err(|e| ErrorObject::internal(format_args!("the event log: {e}")))?;
    let principal = caller_principal(ctx);
    let caller = ctx.caller();
    let declared = hub.declared();
    Ok(values
        .into_iter()
        .map(|v| v.event)
        .filter(|e| {
            TopicPattern::new(&e.topic)
                .is_ok_and(|t| declared.authorize(&t, principal.as_ref()).is_ok())
                && declared.access().may_read(&caller, &e.topic)
        })
        .collect())
}

/// A resource URI's topic or pattern, read.
fn pattern_of(text: &str) -> Result<TopicPattern, ErrorObject> {
    TopicPattern::new(text)
        .map_err(|e| ErrorObject::invalid_params(format_args!("topic {text:?}: {e}")))
}

fn json_contents(uri: &str, value: &Value) -> Result<ReadResourceResult, ErrorObject> {
    let text = serde_json::to_string_pretty(value).map_err(ErrorObject::internal)?;
    Ok(ReadResourceResult {
        contents: vec![ResourceContents::text(
            uri,
            Some("application/json".into()),
            text,
        )],
        meta: None,
    })
}

/// Tells this replica's subscribers of the retained URIs about every retained event the hub
/// delivers here (from any replica's publish).
pub(crate) fn watch_retained(inner: &Arc<ServerInner>) {
    let server: Weak<ServerInner> = Arc::downgrade(inner);
    inner.hub.on_delivered(Arc::new(move |event: &LoggedEvent| {
        if !is_retained(&event.params) {
            return;
        }
        let Some(inner) = server.upgrade() else {
            return;
        };
        let topic_uri = format!("{RETAINED_TOPIC_PREFIX}{}", event.topic);
        // Telling sessions walks them all: not on the hub's delivery path.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                super::changes::deliver_here(&inner, &ServerChange::ResourceUpdated(topic_uri));
                let all = ServerChange::ResourceUpdated(RETAINED_URI.to_owned());
                super::changes::deliver_here(&inner, &all);
            });
        }
    }));
}

/// Whether serialized event params say `"retained": true`, without parsing the payload when
/// they cannot.
fn is_retained(params: &[u8]) -> bool {
    const KEY: &[u8] = b"\"retained\":true";
    if !params.windows(KEY.len()).any(|w| w == KEY) {
        return false;
    }
    #[derive(serde::Deserialize)]
    struct Flag {
        #[serde(default)]
        retained: bool,
    }
    serde_json::from_slice::<Flag>(params).is_ok_and(|f| f.retained)
}

#[cfg(test)]
mod tests {
    use super::is_retained;

    #[test]
    fn only_a_top_level_retained_flag_counts() {
        assert!(is_retained(br#"{"topic":"a","payload":1,"retained":true}"#));
        assert!(!is_retained(
            br#"{"topic":"a","payload":1,"retained":false}"#
        ));
        assert!(!is_retained(
            br#"{"topic":"a","payload":{"retained":true}}"#
        ));
        assert!(!is_retained(b"not json \"retained\":true"));
    }
}
