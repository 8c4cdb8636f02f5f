//! The configuration of `mcpbus serve`: TOML, with an embedded default.

use std::path::Path;

use mcpbus::events::TopicSpec;
use mcpbus::server::BuildError;
use mcpbus_proto::events::{EventKind, EventTopicDescriptor, SuggestedHandle};
use serde::Deserialize;

/// The embedded default configuration.
pub(crate) const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// Who the server is.
    #[serde(default)]
    pub server: ServerSection,
    /// The declared topics.
    #[serde(default)]
    pub events: EventsSection,
    /// Publishing: the `publish` tool and `POST /publish`.
    #[serde(default)]
    pub publish: PublishSection,
    /// The tool bridge: events through tool calls.
    #[serde(default)]
    pub tools: ToolsSection,
    /// The Streamable HTTP endpoint.
    #[serde(default)]
    pub http: HttpSection,
    /// A shared Redis: several replicas serve one deployment (in memory when absent).
    #[serde(default)]
    pub redis: RedisSection,
    /// The 2026-07-28 era.
    #[serde(default)]
    pub modern: crate::modern_config::ModernSection,
    /// SEP-3415 webhook delivery.
    #[serde(default)]
    pub webhooks: crate::webhooks_config::WebhooksSection,
    /// Bearer tokens and OAuth of the HTTP endpoint.
    #[serde(default)]
    pub auth: crate::webhooks_config::AuthSection,
    /// Topic permissions: who may subscribe, publish and register webhooks on which topics.
    #[serde(default)]
    pub access: crate::access_config::AccessSection,
    /// `GET /metrics` (Prometheus).
    #[serde(default)]
    pub metrics: crate::http_sections::MetricsSection,
    /// The live dashboard.
    #[serde(default)]
    pub dashboard: crate::http_sections::DashboardSection,
}

/// `[tools]`: the tool bridge (docs/events.md), each tool on unless switched off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ToolsSection {
    /// `list_topics`.
    #[serde(default = "on")]
    pub list_topics: bool,
    /// `read_retained`.
    #[serde(default = "on")]
    pub read_retained: bool,
    /// `wait_for_events`.
    #[serde(default = "on")]
    pub wait_for_events: bool,
    /// The longest a wait may hold, in milliseconds (default 60,000).
    pub max_wait_ms: Option<u64>,
    /// The most events one wait returns (default 100).
    pub max_events: Option<usize>,
}

fn on() -> bool {
    true
}

impl Default for ToolsSection {
    fn default() -> Self {
        toml::from_str("").unwrap_or_else(|_| unreachable!("every field has a default"))
    }
}

impl ToolsSection {
    /// The library's settings.
    pub(crate) fn to_config(&self) -> mcpbus::server::EventTools {
        let d = mcpbus::server::EventTools::default();
        let max_wait = self
            .max_wait_ms
            .map_or(d.max_wait, std::time::Duration::from_millis);
        mcpbus::server::EventTools {
            list_topics: self.list_topics,
            read_retained: self.read_retained,
            wait_for_events: self.wait_for_events,
            default_wait: d.default_wait.min(max_wait),
            max_wait,
            max_events: self.max_events.unwrap_or(d.max_events).max(1),
        }
    }
}

/// `[redis]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RedisSection {
    /// `redis://host:port/db`; unset: everything stays in this process.
    pub url: Option<String>,
    /// Names the deployment: every key starts with `{prefix}:` (default `mcpbus`).
    pub prefix: Option<String>,
    /// Entries the shared event log keeps, approximately (default 1,000,000).
    pub log_max_len: Option<usize>,
}

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpSection {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Path of the MCP endpoint.
    #[serde(default = "default_path")]
    pub path: String,
    /// Seconds without requests or open streams after which a session ends.
    #[serde(default = "default_idle")]
    pub session_idle_timeout_secs: u64,
    /// `auto` (JSON unless the handler streams), `json` or `sse`.
    #[serde(default = "default_response_mode")]
    pub response_mode: String,
    /// Allowed `Host` names (default: the loopback names when bound to loopback).
    pub allowed_hosts: Option<Vec<String>>,
    /// Allowed browser `Origin`s.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Events kept per stream for clients that reconnect with `Last-Event-ID`.
    #[serde(default = "default_replay")]
    pub replay_events_per_stream: usize,
    /// Milliseconds a request's headers may take to arrive (default 10,000).
    pub header_read_timeout_ms: Option<u64>,
    /// Milliseconds a POST body may take to arrive whole (default 30,000).
    pub body_read_timeout_ms: Option<u64>,
    /// Milliseconds a client may take no byte of what the server has to write (a stream it
    /// stopped reading) before its connection is reset (default 30,000).
    pub stalled_stream_timeout_ms: Option<u64>,
}

fn default_listen() -> String {
    "127.0.0.1:8080".to_string()
}

fn default_path() -> String {
    "/mcp".to_string()
}

fn default_idle() -> u64 {
    1800
}

fn default_response_mode() -> String {
    "auto".to_string()
}

fn default_replay() -> usize {
    4096
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            listen: default_listen(),
            path: default_path(),
            session_idle_timeout_secs: default_idle(),
            response_mode: default_response_mode(),
            allowed_hosts: None,
            allowed_origins: Vec::new(),
            replay_events_per_stream: default_replay(),
            header_read_timeout_ms: None,
            body_read_timeout_ms: None,
            stalled_stream_timeout_ms: None,
        }
    }
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerSection {
    /// The name in `serverInfo`.
    #[serde(default = "default_name")]
    pub name: String,
    /// Instructions for the model.
    pub instructions: Option<String>,
}

fn default_name() -> String {
    "mcpbus".to_string()
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            name: default_name(),
            instructions: None,
        }
    }
}

/// `[events]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsSection {
    /// Instructions sent with the events capability.
    pub instructions: Option<String>,
    /// Undelivered events a session may hold before the oldest are dropped.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// Events the in-memory log keeps for cursors to resume from (without Redis; default
    /// 100,000). With Redis, `[redis] log_max_len` bounds the shared log instead.
    pub history: Option<usize>,
    /// SEP-3415 push streams (`events/stream`) held open at once (default 1024).
    pub max_streams: Option<usize>,
    /// The declared topics.
    #[serde(default)]
    pub topics: Vec<TopicConfig>,
}

fn default_queue_capacity() -> usize {
    mcpbus::service::DEFAULT_OUTBOUND_CAPACITY
}

impl Default for EventsSection {
    fn default() -> Self {
        EventsSection {
            instructions: None,
            queue_capacity: default_queue_capacity(),
            history: None,
            max_streams: None,
            topics: Vec::new(),
        }
    }
}

/// One `[[events.topics]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TopicConfig {
    /// The topic pattern, possibly with `{name}` placeholders.
    pub pattern: String,
    /// `content` or `signal`.
    pub kind: EventKind,
    /// What the topic carries.
    pub description: Option<String>,
    /// Whether events are retained by default.
    #[serde(default)]
    pub retained: bool,
    /// How clients should handle events.
    pub suggested_handle: Option<SuggestedHandle>,
    /// JSON Schema of the payload (written as TOML).
    pub schema: Option<toml::Value>,
}

/// `[publish]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PublishSection {
    /// Whether the `publish` tool is offered.
    #[serde(default)]
    pub enabled: bool,
    /// Bearer token of `POST /publish` (also `MCPBUS_PUBLISH_TOKEN`); without one, the
    /// endpoint refuses every request.
    pub token: Option<String>,
    /// Priorities (`urgent`, `high`, ...) whose events the `publish` tool publishes only once
    /// the user confirmed, through the client (elicitation); none by default.
    #[serde(default)]
    pub confirm_priorities: Vec<String>,
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is invalid or has unknown keys.
    #[error("invalid configuration{origin}: {source}")]
    Parse {
        /// " in FILE" or nothing for the default.
        origin: String,
        /// What is wrong.
        source: toml::de::Error,
    },
    /// A schema could not be converted to JSON.
    #[error("topic {pattern:?}: schema is not valid JSON: {source}")]
    Schema {
        /// The topic.
        pattern: String,
        /// What is wrong.
        source: serde_json::Error,
    },
    /// The server the configuration describes cannot be built (a declared topic pattern is
    /// invalid, say).
    #[error("invalid configuration: {0}")]
    Server(#[from] BuildError),
    /// `[http] response_mode` names no mode.
    #[error("[http] response_mode {0:?}: expected auto, json or sse")]
    ResponseMode(String),
    /// `[http] session_idle_timeout_secs` is zero.
    #[error("[http] session_idle_timeout_secs must be positive")]
    ZeroIdleTimeout,
    /// `[http] stalled_stream_timeout_ms` is zero.
    #[error("[http] stalled_stream_timeout_ms must be positive")]
    ZeroStalledStreamTimeout,
    /// A Redis prefix is set but no Redis.
    #[error("a Redis prefix needs a Redis: add --redis URL or [redis] url")]
    PrefixWithoutRedis,
    /// `[publish] confirm_priorities` names no priority.
    #[error("[publish] confirm_priorities: {0}")]
    ConfirmPriority(#[from] crate::priority::InvalidPriority),
    /// `[modern]` is unusable.
    #[error(transparent)]
    Modern(#[from] crate::modern_config::ModernConfigError),
    /// `[auth]` is unusable.
    #[error(transparent)]
    Auth(#[from] crate::webhooks_config::AuthConfigError),
    /// `[auth.oauth]` is unusable.
    #[error(transparent)]
    OAuth(#[from] crate::oauth_config::OAuthSectionError),
    /// `[[access.rules]]` is unusable.
    #[error(transparent)]
    Access(#[from] crate::access_config::AccessConfigError),
    /// `[webhooks]` is unusable.
    #[error(transparent)]
    Webhooks(#[from] crate::webhooks_config::WebhooksConfigError),
    /// `[metrics] path` is unusable.
    #[error(transparent)]
    Metrics(#[from] crate::http_sections::MetricsConfigError),
    /// `[dashboard]` is unusable.
    #[error(transparent)]
    Dashboard(#[from] crate::http_sections::DashboardConfigError),
    /// A shared Redis is set for a stdio server, which has one client and no replicas.
    #[error("a shared Redis serves HTTP replicas: drop --stdio or [redis] url")]
    RedisWithStdio,
}

impl Config {
    /// Parses a configuration text; `origin` names it in errors.
    pub(crate) fn parse(text: &str, origin: Option<&Path>) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|source| ConfigError::Parse {
            origin: origin
                .map(|p| format!(" in {}", p.display()))
                .unwrap_or_default(),
            source,
        })
    }

    /// Loads `path`, or the embedded default when `None`.
    pub(crate) fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            None => Self::parse(DEFAULT_CONFIG, None),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.display().to_string(),
                    source,
                })?;
                Self::parse(&text, Some(p))
            }
        }
    }

    /// The declared topics as server topic specs.
    pub(crate) fn topic_specs(&self) -> Result<Vec<TopicSpec>, ConfigError> {
        self.events
            .topics
            .iter()
            .map(|t| {
                let schema = t
                    .schema
                    .as_ref()
                    .map(serde_json::to_value)
                    .transpose()
                    .map_err(|source| ConfigError::Schema {
                        pattern: t.pattern.clone(),
                        source,
                    })?;
                Ok(TopicSpec::from_descriptor(EventTopicDescriptor {
                    pattern: t.pattern.clone(),
                    kind: t.kind,
                    description: t.description.clone(),
                    suggested_handle: t.suggested_handle,
                    retained: t.retained,
                    schema,
                }))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_is_valid() {
        let config = Config::load(None).unwrap();
        assert!(!config.publish.enabled);
        assert!(
            config
                .events
                .topics
                .iter()
                .any(|t| t.pattern == "agents/{agent_id}/inbox")
        );
        assert_eq!(
            config.topic_specs().unwrap().len(),
            config.events.topics.len()
        );
        // The default file states the library's default push-stream cap.
        assert_eq!(
            config.events.max_streams,
            Some(mcpbus::events::DeliveryConfig::default().max_streams)
        );
        assert_eq!(Config::parse("", None).unwrap().events.max_streams, None);
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = Config::parse("[server]\nnmae = \"x\"\n", None).unwrap_err();
        assert!(err.to_string().contains("nmae"), "{err}");
    }

    #[test]
    fn schemas_become_json() {
        let config = Config::parse(
            "[[events.topics]]\npattern = \"a\"\nkind = \"signal\"\nschema = { type = \"object\" }\n",
            None,
        )
        .unwrap();
        let specs = config.topic_specs().unwrap();
        assert_eq!(
            specs[0].descriptor().schema,
            Some(serde_json::json!({"type": "object"}))
        );
    }
}
