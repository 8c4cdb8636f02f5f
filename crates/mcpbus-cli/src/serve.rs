//! `mcpbus serve`: the ready-to-run server built from a configuration.

use std::sync::Arc;

use mcpbus::events::{DeliveryConfig, Event};
use mcpbus::server::{Context, Json, NoArgs, Server, ServerBuilder, ToolError, ToolSpec};
use mcpbus::service::ServiceConfig;
use mcpbus::tasks::{TaskConfig, TaskSupport};
use mcpbus_proto::mcp::{ElicitAction, ElicitRequestFormParams, ElicitRequestParams};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::{Config, ConfigError};
pub(crate) use crate::priority::{InvalidPriority, parse_priority};

/// Why `mcpbus serve` could not start, or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServeError {
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The Redis of `--redis` or `[redis] url` cannot be used.
    #[error(transparent)]
    Redis(#[from] mcpbus_redis::ConnectError),
    /// The HTTP endpoint refuses its settings.
    #[error(transparent)]
    Http(#[from] mcpbus::transport::http::HttpConfigError),
    /// Listening beyond loopback without authentication, not allowed explicitly.
    #[error("{0}")]
    Unprotected(String),
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The address actually bound could not be read.
    #[error("cannot read the address listened on: {0}")]
    LocalAddr(#[source] std::io::Error),
    /// Serving HTTP failed.
    #[error("the HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// Arguments of the `publish` tool.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct PublishArgs {
    /// The concrete topic to publish on, e.g. `agents/<agent id>/inbox`.
    pub topic: String,
    /// The event payload (any JSON value).
    #[serde(default)]
    pub payload: Value,
    /// `urgent`, `high`, `normal` (default) or `low`.
    pub priority: Option<String>,
    /// Keep the event as the topic's retained value (default: the topic's setting).
    pub retained: Option<bool>,
    /// RFC 3339 time after which the event is neither delivered nor retained.
    pub expires_at: Option<String>,
}

/// What the replicas of a deployment share (with Redis): the event log, the task store and the
/// webhook subscriptions.
pub(crate) struct Shared {
    pub event_log: Arc<dyn mcpbus::events::EventLog>,
    pub task_store: Arc<dyn mcpbus::tasks::TaskStore>,
    pub webhook_store: Arc<dyn mcpbus::webhooks::WebhookStore>,
}

/// Builds the server a configuration describes; `shared` when replicas share Redis.
pub(crate) fn build_server(config: &Config, shared: Option<Shared>) -> Result<Server, ConfigError> {
    let mut builder = Server::builder(&config.server.name, env!("CARGO_PKG_VERSION"))
        .service_config(ServiceConfig {
            outbound_capacity: config.events.queue_capacity,
            ..ServiceConfig::default()
        });
    if let Some(text) = &config.server.instructions {
        builder = builder.instructions(text);
    }
    let mut modern = config.modern.to_config(|v| std::env::var(v).ok())?;
    builder = builder.bearer_tokens(config.auth.to_tokens(|v| std::env::var(v).ok())?);
    if let Some(oauth) = &config.auth.oauth {
        builder = builder.resource_server(oauth.to_resource_server(|v| std::env::var(v).ok())?);
    }
    builder = builder.access_rules(config.access.to_rules()?);
    if let Some(mut webhooks) = config.webhooks.to_config()? {
        if let Some(shared) = &shared {
            // Subscriptions survive restarts; each is delivered by one replica at a time.
            webhooks.store = shared.webhook_store.clone();
        }
        builder = builder.webhooks(webhooks);
    }
    if let Some(shared) = shared {
        // Any replica answers tasks/get, tasks/update and tasks/cancel of any task.
        modern = modern.tasks(TaskConfig::new().store(shared.task_store));
        builder = builder.event_log(shared.event_log);
    } else if let Some(history) = config.events.history {
        let log = mcpbus::events::MemoryEventLog::with_history(history.max(1));
        builder = builder.event_log(Arc::new(log));
    }
    builder = builder.modern(modern);
    if let Some(text) = &config.events.instructions {
        builder = builder.events_instructions(text);
    }
    if let Some(max_streams) = config.events.max_streams {
        builder = builder.event_delivery(DeliveryConfig {
            max_streams,
            ..DeliveryConfig::default()
        });
    }
    for spec in config.topic_specs()? {
        builder = builder.topic(spec);
    }
    builder = builder
        .event_resources()
        .event_tools(config.tools.to_config());
    if config.publish.enabled {
        builder = with_publish_tools(builder, &config.publish.confirm_priorities)?;
    }
    Ok(builder.build()?)
}

/// The `publish` and `whoami` tools (`[publish] enabled`); `confirm_priorities` are the
/// priorities whose events the user must confirm first.
fn with_publish_tools(
    builder: ServerBuilder,
    confirm_priorities: &[String],
) -> Result<ServerBuilder, ConfigError> {
    for p in confirm_priorities.iter() {
        parse_priority(p)?;
    }
    let confirm_priorities: Arc<[String]> = confirm_priorities.to_vec().into();
    Ok(builder
        .tool_with(
            // A publish may wait on the user's confirmation: a client that declares the
            // tasks extension (2026-07-28) gets a task instead of a long-held request.
            ToolSpec::new(
                "publish",
                "Publish an event on a declared topic to every subscribed session (e.g. a \
                 message to another agent's agents/<agent id>/inbox). The event's source is \
                 your agent id.",
            )
            .task_support(TaskSupport::Optional),
            move |args: PublishArgs, ctx: Context| publish(args, ctx, confirm_priorities.clone()),
        )
        .tool(
            "whoami",
            "Your session id and agent id on this server",
            |_: NoArgs, ctx: Context| async move {
                Json(json!({"sessionId": ctx.session_id(), "agentId": &*ctx.agent_id()}))
            },
        ))
}

/// Applies the optional fields a publisher may set on an event.
pub(crate) fn with_options(
    mut event: Event,
    priority: Option<&str>,
    retained: Option<bool>,
    expires_at: Option<String>,
) -> Result<Event, InvalidPriority> {
    if let Some(p) = priority {
        event = event.priority(parse_priority(p)?);
    }
    if let Some(r) = retained {
        event = event.retained(r);
    }
    if let Some(at) = expires_at {
        event = event.expires_at(at);
    }
    Ok(event)
}

/// Asks the user, through the client, to confirm publishing an event of a priority that
/// `[publish] confirm_priorities` lists.
async fn confirm(args: &PublishArgs, ctx: &Context) -> Result<(), ToolError> {
    let priority = args.priority.as_deref().unwrap_or("normal");
    let message = format!(
        "An agent wants to publish a {priority} event on {:?}: {}. Publish it?",
        args.topic, args.payload
    );
    let schema = json!({"type": "object", "properties": {
        "publish": {"type": "boolean", "title": "Publish", "description": "Publish the event"}
    }, "required": ["publish"]});
    let Value::Object(requested_schema) = schema else {
        return Err(ToolError::failed(
            "internal: the confirmation form is not an object",
        ));
    };
    let form = ElicitRequestParams::Form(ElicitRequestFormParams {
        message,
        requested_schema,
        meta: None,
    });
    let answer = ctx.input_key("confirm_publish").elicit(form).await?;
    let yes = answer.action == ElicitAction::Accept
        && answer.content.as_ref().and_then(|c| c.get("publish")) == Some(&Value::Bool(true));
    if yes {
        Ok(())
    } else {
        Err(ToolError::failed(
            "the user did not confirm: the event was not published",
        ))
    }
}

async fn publish(
    args: PublishArgs,
    ctx: Context,
    confirm_priorities: Arc<[String]>,
) -> Result<Json<Value>, ToolError> {
    // Refused before the user is asked to confirm something that could not be published.
    ctx.authorize_publish(&args.topic)?;
    let priority = args.priority.as_deref().unwrap_or("normal");
    if confirm_priorities.iter().any(|p| p == priority) {
        confirm(&args, &ctx).await?;
    }
    let event = with_options(
        Event::new(args.topic, args.payload).source(format!("agent:{}", ctx.agent_id())),
        args.priority.as_deref(),
        args.retained,
        args.expires_at,
    )
    .map_err(|e| ToolError::failed(e.to_string()))?;
    let report = ctx.events().publish(event).await?;
    Ok(Json(json!({
        "eventId": report.event_id,
        "delivered": report.delivered,
        "retained": report.retained,
        "cursor": report.cursor,
    })))
}
