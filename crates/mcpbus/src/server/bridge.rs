//! The tool bridge (docs/events.md, "Events through tools"): tools through which a model in a
//! host that speaks no events extension lists the topics, reads retained values and waits for
//! events, in either era and on any replica. A wait is a long poll over the one event log: it
//! returns the events after a cursor and the cursor to wait from next, so nothing is lost
//! between two calls and no state is kept between them.
//!
//! Results carry the events twice: as structured content (the handshake era's `EventParams`,
//! cursor in `_meta["mcpbus/cursor"]`) and as text, each event in the provenance envelope of
//! docs/protocol.md 2.6, so that a model can tell where it came from. The server cannot judge
//! its publishers for the host, so `trust` is `unverified`.

use std::time::Duration;

use mcpbus_proto::events::EventParams;
use mcpbus_proto::jsonrpc::ErrorObject;
use mcpbus_proto::mcp::{CallToolResult, ContentBlock};
use mcpbus_proto::topic::TopicPattern;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ServerBuilder;
use super::context::Context;
use super::requests::events_ext::{caller_principal, poll::long_poll};
use super::tool::{Json, NoArgs, ToolError, ToolSpec};
use super::topic_resources::{check_read, visible_retained, visible_topics};
use crate::client::ProvenanceEnvelope;
use crate::events::event_types::EventSubscription;
use crate::events::{EventHub, LoggedEvent, ReadFrom};

/// The `trust` of the bridge's envelopes: the server vouches for none of its publishers.
const TRUST: &str = "unverified";

/// Which bridge tools a server offers, and their bounds (`ServerBuilder::event_tools`).
#[derive(Debug, Clone)]
pub struct EventTools {
    /// `list_topics`: the declared topics (default on).
    pub list_topics: bool,
    /// `read_retained`: the retained values of a pattern's topics (default on).
    pub read_retained: bool,
    /// `wait_for_events`: a long poll on a pattern after a cursor (default on).
    pub wait_for_events: bool,
    /// The longest a wait may hold (default 60 s); a longer `timeout_ms` is clamped.
    pub max_wait: Duration,
    /// The wait when the call gives none (default 30 s).
    pub default_wait: Duration,
    /// The most events one wait returns (default 100).
    pub max_events: usize,
}

impl Default for EventTools {
    fn default() -> Self {
        EventTools {
            list_topics: true,
            read_retained: true,
            wait_for_events: true,
            max_wait: Duration::from_secs(60),
            default_wait: Duration::from_secs(30),
            max_events: 100,
        }
    }
}

impl ServerBuilder {
    /// Adds the tool bridge (docs/events.md): `list_topics`, `read_retained` and
    /// `wait_for_events`, as `tools` enables them, for hosts that know tools and nothing of the
    /// events extensions. A tool of the same name registered later replaces the bridge's.
    pub fn event_tools(self, tools: EventTools) -> Self {
        let mut builder = self;
        if tools.list_topics {
            builder = builder.tool_with(list_spec(), list_topics);
        }
        if tools.read_retained {
            builder = builder.tool_with(retained_spec(), read_retained);
        }
        if tools.wait_for_events {
            builder = builder.tool_with(wait_spec(), move |args, ctx| {
                wait_for_events(args, ctx, tools.clone())
            });
        }
        builder
    }
}

fn list_spec() -> ToolSpec {
    ToolSpec::new(
        "list_topics",
        "Lists the event topics this server publishes on: each pattern ('+' one segment, '#' \
         the rest, {name} a segment), what it carries, and whether it keeps a retained (latest) \
         value. Use a pattern with read_retained or wait_for_events. Only topics you may \
         subscribe to are listed; \"access\": \"partial\" marks one you may use only in part.",
    )
    .title("List event topics")
}

fn retained_spec() -> ToolSpec {
    ToolSpec::new(
        "read_retained",
        "Reads the latest retained value of every topic matching a pattern (default: all), \
         e.g. the current build status. Returns at once.",
    )
    .title("Read retained values")
}

fn wait_spec() -> ToolSpec {
    ToolSpec::new(
        "wait_for_events",
        "Waits for events on topics matching a pattern and returns them with a cursor. Pass \
         the cursor to the next call to get only newer events, and nothing published in \
         between is missed. Without a cursor it waits for events published from now on. \
         Returns as soon as there are events, or empty when timeout_ms passes.",
    )
    .title("Wait for events")
}

async fn list_topics(_: NoArgs, ctx: Context) -> Result<Json<Value>, ToolError> {
    hub(&ctx)?;
    Ok(Json(json!({ "topics": visible_topics(&ctx) })))
}

/// `read_retained`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RetainedArgs {
    /// A topic or pattern, e.g. `build/+` (default `#`: every topic).
    topic: Option<String>,
}

async fn read_retained(args: RetainedArgs, ctx: Context) -> Result<CallToolResult, ToolError> {
    hub(&ctx)?;
    let pattern = parse_pattern(args.topic.as_deref().unwrap_or("#"))?;
    check_read(&ctx, &pattern)?;
    let events: Vec<EventParams> = visible_retained(&ctx, &pattern)
        .await?
        .into_iter()
        .filter_map(|v| serde_json::to_value(v).ok())
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    let server = ctx.server().info().name.clone();
    let mut content = envelopes(&server, &events);
    if content.is_empty() {
        content.push(ContentBlock::text("No retained value matches."));
    }
    Ok(result(content, json!({ "retained": events })))
}

/// `wait_for_events`' arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct WaitArgs {
    /// A topic or pattern within the server's topics, e.g. `build/+` or `alerts/#`.
    topic: String,
    /// The cursor the previous wait returned; omit it to wait for events from now on.
    cursor: Option<String>,
    /// How long to wait for a first event, in milliseconds (default 30000; the server caps
    /// it).
    timeout_ms: Option<u64>,
    /// At most this many events (default and cap: the server's, 100 unless configured).
    max_events: Option<u64>,
}

async fn wait_for_events(
    args: WaitArgs,
    ctx: Context,
    tools: EventTools,
) -> Result<CallToolResult, ToolError> {
    let hub = hub(&ctx)?.clone();
    let sub = subscription(&ctx, &hub, &args.topic)?;
    let start: std::sync::Arc<str> = match args.cursor {
        Some(cursor) => cursor.into(),
        None => hub
            .log()
            .head()
            .await
            .map_err(|e| ErrorObject::internal(format_args!("the event log: {e}")))?,
    };
    let wait = args
        .timeout_ms
        .map_or(tools.default_wait, Duration::from_millis)
        .min(tools.max_wait);
    let max = args.max_events.map_or(tools.max_events, |n| {
        usize::try_from(n).unwrap_or(usize::MAX)
    });
    let from = ReadFrom {
        cursor: &start,
        not_before: None,
    };
    let max = max.clamp(1, tools.max_events.max(1));
    // A cursor of another server or a malformed one is the model's to correct: a tool error.
    let found = long_poll(&hub, &sub, from, max, wait, &ctx)
        .await
        .map_err(|e| ToolError::failed(e.message))?;
    let events: Vec<EventParams> = found
        .events
        .iter()
        .filter_map(|e| {
            let params = event_params(e)?;
            // Handed to the agent, like the events a poll returns.
            hub.count_delivered(&e.topic, 1);
            Some(params)
        })
        .collect();
    let server = ctx.server().info().name.clone();
    let mut content = envelopes(&server, &events);
    let mut note = format!(
        "{} event(s). Next cursor: {} (pass it as cursor to wait for newer events).",
        events.len(),
        found.next
    );
    if found.truncated {
        note.push_str(" Some events were lost before this cursor (the log no longer held them).");
    }
    content.push(ContentBlock::text(note));
    let structured = json!({
        "events": events,
        "cursor": &*found.next,
        "truncated": found.truncated,
        "hasMore": found.more,
    });
    Ok(result(content, structured))
}

/// The hub, or a tool error when the server declares no topics.
fn hub(ctx: &Context) -> Result<&EventHub, ToolError> {
    let hub = ctx.events();
    if !hub.has_topics() {
        return Err(ToolError::failed("This server declares no event topics."));
    }
    Ok(hub)
}

fn parse_pattern(topic: &str) -> Result<TopicPattern, ToolError> {
    TopicPattern::new(topic)
        .map_err(|e| ToolError::failed(format!("topic {topic:?} is not a topic pattern: {e}")))
}

/// The subscription a wait reads: a pattern within one declared topic, allowed to the caller
/// (the rules of docs/protocol.md 2.5 and 3.2). Refusals are tool errors the model can read.
fn subscription(
    ctx: &Context,
    hub: &EventHub,
    topic: &str,
) -> Result<EventSubscription, ToolError> {
    let pattern = parse_pattern(topic)?;
    let principal = caller_principal(ctx);
    hub.declared()
        .subscribe_pattern(pattern, principal.as_ref())
        .map_err(|e| ToolError::failed(e.message))
}

/// A logged event as the handshake era carries it, its cursor in `_meta`.
fn event_params(event: &LoggedEvent) -> Option<EventParams> {
    let mut params: EventParams = serde_json::from_slice(&event.params).ok()?;
    let meta = params.meta.get_or_insert_with(Default::default);
    meta.insert(
        crate::client::CURSOR_KEY.into(),
        Value::String(event.cursor.to_string()),
    );
    Some(params)
}

fn envelopes(server: &str, events: &[EventParams]) -> Vec<ContentBlock> {
    events
        .iter()
        .map(|e| ContentBlock::text(ProvenanceEnvelope::for_event(server, e, TRUST).wrap(e)))
        .collect()
}

fn result(content: Vec<ContentBlock>, structured: Value) -> CallToolResult {
    CallToolResult {
        content,
        structured_content: Some(structured),
        ..CallToolResult::default()
    }
}
