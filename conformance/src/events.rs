//! The fixtures of the MCP Events extension (SEP-3415; docs/protocol.md 3) for conformance
//! harnesses: one event type per combination of delivery modes, one with a typed argument, a
//! test event on each every second so a harness can watch delivery without triggering
//! anything, and a control tool that lets a harness's own loopback webhook receiver through
//! the server's SSRF rules (everything else stays refused). Webhooks need a principal: the
//! bearer token of [`HARNESS_TOKEN_ENV`] (default [`DEFAULT_HARNESS_TOKEN`]) authenticates as
//! `conformance-harness`.

use std::time::Duration;

use mcpbus::events::{Event, TopicSpec};
use mcpbus::server::auth::BearerTokens;
use mcpbus::server::{Context, Server, ServerBuilder, ToolError};
use mcpbus::webhooks::{RetryPolicy, WebhookConfig};
use mcpbus_proto::events_ext::DeliveryMode;
use serde::Deserialize;
use serde_json::json;

/// How often each event type gets a test event.
const TICK: Duration = Duration::from_secs(1);

/// The environment variable holding the harness's bearer token.
pub(crate) const HARNESS_TOKEN_ENV: &str = "MCPBUS_EVERYTHING_TOKEN";

/// The harness's token when [`HARNESS_TOKEN_ENV`] is not set (the fixture listens on
/// loopback only).
pub(crate) const DEFAULT_HARNESS_TOKEN: &str = "mcpbus-everything-harness-token";

/// The principal the harness's token authenticates.
const HARNESS_PRINCIPAL: &str = "conformance-harness";

/// The control tool's name, as the events scenarios of the conformance suite call it.
const ALLOW_ORIGIN_TOOL: &str = "events_conformance_allow_callback_origin";

/// Each event type by delivery modes: (event name, topic, modes).
const MODE_TYPES: [(&str, &str, &[DeliveryMode]); 7] = {
    use DeliveryMode::{Poll, Push, Webhook};
    [
        ("test.poll", "conformance/events/poll", &[Poll]),
        ("test.push", "conformance/events/push", &[Push]),
        ("test.webhook", "conformance/events/webhook", &[Webhook]),
        (
            "test.poll_push",
            "conformance/events/poll-push",
            &[Poll, Push],
        ),
        (
            "test.poll_webhook",
            "conformance/events/poll-webhook",
            &[Poll, Webhook],
        ),
        (
            "test.push_webhook",
            "conformance/events/push-webhook",
            &[Push, Webhook],
        ),
        ("test.all", "conformance/events/all", &[Poll, Push, Webhook]),
    ]
};

/// The event type with a typed argument: `repo`, the `{repo}` segment of its topics.
const BUILD_TYPE: (&str, &str) = ("test.build", "conformance/builds/{repo}");

/// The repositories the build type's test events name.
const BUILD_REPOS: [&str; 2] = ["mcpbus", "other"];

/// Adds the event types and the control tool to `builder`.
pub(crate) fn register(builder: ServerBuilder) -> ServerBuilder {
    let mut builder = builder;
    for (name, topic, modes) in MODE_TYPES {
        let description = format!(
            "A test event every second, delivered by {}",
            modes
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        builder = builder.topic(
            TopicSpec::content(topic)
                .event_name(name)
                .delivery(modes.iter().cloned())
                .description(description)
                .schema(tick_schema()),
        );
    }
    let (name, topic) = BUILD_TYPE;
    builder
        .topic(
            TopicSpec::content(topic)
                .event_name(name)
                .delivery([
                    DeliveryMode::Poll,
                    DeliveryMode::Push,
                    DeliveryMode::Webhook,
                ])
                .description(
                    "A test build result every second for each of two repositories; the repo \
                     argument picks one",
                )
                .schema(tick_schema()),
        )
        .webhooks(webhook_config())
        .bearer_tokens(harness_tokens())
        .tool(
            ALLOW_ORIGIN_TOOL,
            "Conformance control: lets webhook callbacks under one origin \
             (http(s)://host[:port]) past the https and public-address rules for the rest of \
             the process, and answers the origin allowed. Every other destination stays \
             refused.",
            allow_origin,
        )
}

/// The control tool's arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct AllowOrigin {
    /// The origin to allow, e.g. `http://127.0.0.1:53211` (no path).
    origin: String,
}

async fn allow_origin(args: AllowOrigin, ctx: Context) -> Result<String, ToolError> {
    ctx.server()
        .allow_webhook_origin(&args.origin)
        .map_err(|e| ToolError::failed(e.to_string()))
}

fn tick_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": {
            "seq": {"type": "integer", "description": "Counts the fixture's ticks from 1"},
            "at": {"type": "string", "format": "date-time"}
        },
        "required": ["seq", "at"]
    })
}

/// Webhook delivery as SEP-3415 advises, retries shortened so a harness sees them in a run.
fn webhook_config() -> WebhookConfig {
    WebhookConfig {
        retry: RetryPolicy {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(4),
            ..RetryPolicy::default()
        },
        ..WebhookConfig::default()
    }
}

fn harness_tokens() -> BearerTokens {
    let token = std::env::var(HARNESS_TOKEN_ENV).unwrap_or_else(|_| DEFAULT_HARNESS_TOKEN.into());
    BearerTokens::new()
        .with(&token, HARNESS_PRINCIPAL)
        .unwrap_or_else(|e| {
            tracing::warn!("{HARNESS_TOKEN_ENV}: {e}; webhooks have no principal to serve");
            BearerTokens::new()
        })
}

/// Publishes a test event on every event type each second, until the process ends.
pub(crate) fn spawn_ticks(server: Server) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(TICK);
        for seq in 1u64.. {
            ticks.tick().await;
            let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let topics = MODE_TYPES.iter().map(|(_, topic, _)| (*topic).to_owned());
            let builds = BUILD_REPOS
                .iter()
                .map(|r| format!("conformance/builds/{r}"));
            for topic in topics.chain(builds) {
                let event = Event::new(topic, json!({"seq": seq, "at": at}));
                if let Err(e) = server.events().publish(event).await {
                    tracing::warn!(error = %e, "could not publish a test event");
                }
            }
        }
    });
}
