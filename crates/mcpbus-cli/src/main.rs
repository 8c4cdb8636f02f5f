//! `mcpbus`: an MCP server with topic events, and clients to subscribe to one.

mod access_config;
mod client_cmd;
mod config;
mod connect;
mod cursor_file;
mod dashboard;
mod dashboard_api;
mod events_cmd;
mod http;
mod http_sections;
mod login;
mod metrics_http;
mod modern_config;
mod oauth_config;
mod priority;
mod publish;
mod serve;
mod sub;
mod sub_modern;
mod sub_webhook;
mod trim;
mod webhooks_config;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mcpbus::client::Era;
use tracing_subscriber::EnvFilter;

use crate::client_cmd::ClientCmdError;
use crate::config::{Config, ConfigError, DEFAULT_CONFIG};
use crate::login::LoginArgs;
use crate::publish::PubError;
use crate::serve::ServeError;
use crate::sub::{SubArgs, SubError};

/// An MCP server and client with topic-based server-to-client events.
#[derive(Debug, Parser)]
#[command(name = "mcpbus", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: Streamable HTTP on 127.0.0.1:8080/mcp by default, or stdio.
    Serve(ServeOptions),
    #[command(flatten)]
    Client(ClientCommand),
    /// Print the embedded default configuration.
    Config,
}

/// The commands that talk to a server as its client.
#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Subscribe to topic patterns and print events as JSON lines: over HTTP
    /// (`mcpbus sub URL PATTERN...`) or by spawning a stdio server
    /// (`mcpbus sub PATTERN... -- COMMAND...`). A server of MCP 2026-07-28 is subscribed to
    /// with the events extension (SEP-3415): pushed, or polled with --poll, resuming from
    /// --cursor-file; a handshake-era one with events/subscribe.
    Sub {
        /// The server URL (http://…/mcp), then topic patterns (`+` one segment, `#` the rest)
        /// or event type names.
        #[arg(required = true)]
        args: Vec<String>,
        /// A stdio server command and its arguments, after `--`.
        #[arg(last = true)]
        command: Vec<String>,
        /// The era of MCP to speak: auto (probe with server/discover: the events extension of
        /// a 2026-07-28 server, else topic events after initialize), modern or legacy.
        #[arg(long, default_value = "auto", value_parser = parse_era)]
        era: Era,
        /// Poll (events/poll at the interval the server asks for) instead of a push stream.
        #[arg(long)]
        poll: bool,
        /// Long polls: the server holds a poll that finds nothing up to this many seconds
        /// (implies --poll).
        #[arg(long, value_name = "SECONDS")]
        long_poll: Option<u64>,
        /// Resume from the cursors kept in this file (JSON), and keep them there after each
        /// event: a `sub` started again gets what was published meanwhile, once.
        #[arg(long, value_name = "FILE")]
        cursor_file: Option<PathBuf>,
        /// The bearer token of the server's HTTP endpoint: subscribe as its principal (your
        /// own scoped topics; webhooks).
        #[arg(long, env = "MCPBUS_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Webhook delivery: run a receiver on this address (e.g. 127.0.0.1:9000) and have
        /// the server POST the events there (needs --token).
        #[arg(long, value_name = "ADDR")]
        webhook: Option<std::net::SocketAddr>,
        /// The callback URL given to the server (default http://ADDR/hook): e.g. the https
        /// address of a proxy in front of the receiver.
        #[arg(long, value_name = "URL", requires = "webhook")]
        webhook_url: Option<String>,
        #[command(flatten)]
        login: LoginArgs,
    },
    /// The server's event types.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Call a tool and print its result: its text, or with --json the whole result.
    Call {
        /// The server: an http:// URL, or a command line that runs a stdio server
        /// (e.g. "mcpbus serve --stdio", split on whitespace).
        target: String,
        /// The tool's name.
        tool: String,
        /// The arguments, as a JSON object (default {}).
        arguments: Option<String>,
        /// The era of MCP to speak: auto (probe with server/discover, fall back to
        /// initialize), modern or legacy.
        #[arg(long, default_value = "auto", value_parser = parse_era)]
        era: Era,
        /// Print the whole result as one JSON line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        login: LoginArgs,
    },
    /// List a server's tools, resources, resource templates and prompts.
    Ls(ListArgs),
    /// Publish an event through a running server's `POST /publish`.
    Pub(publish::PubArgs),
}

/// `mcpbus events ...`.
#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// List the event types (SEP-3415 events/list) of a 2026-07-28 server, or the topics of a
    /// handshake-era one.
    Ls(ListArgs),
}

/// What the listing commands take.
#[derive(Debug, clap::Args)]
struct ListArgs {
    /// The server: an http:// URL, or a command line that runs a stdio server.
    target: String,
    /// The era of MCP to speak: auto, modern or legacy.
    #[arg(long, default_value = "auto", value_parser = parse_era)]
    era: Era,
    /// Print one JSON object instead of a listing.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    login: LoginArgs,
}

/// Why a command failed; printed as one `mcpbus: …` line on stderr.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Sub(#[from] SubError),
    #[error(transparent)]
    Pub(#[from] PubError),
    #[error(transparent)]
    Client(#[from] ClientCmdError),
}

fn parse_era(text: &str) -> Result<Era, String> {
    text.parse()
}

fn init_logging() {
    // Logs go to stderr: stdout carries the protocol.
    let filter = EnvFilter::try_from_env("MCPBUS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcpbus: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Serve(options) => run_serve(options).await?,
        Command::Client(client) => run_client(client).await?,
        Command::Config => print!("{DEFAULT_CONFIG}"),
    }
    Ok(())
}

async fn run_client(command: ClientCommand) -> Result<(), CliError> {
    match command {
        ClientCommand::Sub {
            args,
            command,
            era,
            poll,
            long_poll,
            cursor_file,
            token,
            webhook,
            webhook_url,
            login,
        } => {
            connect::set_login(login);
            sub::run(SubArgs {
                args,
                command,
                era,
                poll,
                long_poll,
                cursor_file,
                token,
                webhook,
                webhook_url,
            })
            .await?
        }
        ClientCommand::Events {
            command:
                EventsCommand::Ls(ListArgs {
                    target,
                    era,
                    json,
                    login,
                }),
        } => {
            connect::set_login(login);
            events_cmd::ls(&target, era, json).await?
        }
        ClientCommand::Call {
            target,
            tool,
            arguments,
            era,
            json,
            login,
        } => {
            connect::set_login(login);
            client_cmd::call(&target, &tool, arguments.as_deref(), era, json).await?
        }
        ClientCommand::Ls(ListArgs {
            target,
            era,
            json,
            login,
        }) => {
            connect::set_login(login);
            client_cmd::ls(&target, era, json).await?
        }
        ClientCommand::Pub(args) => publish::run(args).await?,
    }
    Ok(())
}

/// What `mcpbus serve` was told on its command line.
#[derive(Debug, clap::Args)]
struct ServeOptions {
    /// Serve one client over stdin/stdout (newline-delimited JSON) instead of HTTP.
    #[arg(long, conflicts_with = "listen")]
    stdio: bool,
    /// Address to listen on (default: [http] listen of the config, 127.0.0.1:8080).
    #[arg(long)]
    listen: Option<String>,
    /// A TOML configuration file (see `mcpbus config` for the default).
    #[arg(long, env = "MCPBUS_CONFIG")]
    config: Option<PathBuf>,
    /// Share sessions, streams and events with other replicas through this Redis
    /// (`redis://127.0.0.1:6379`; overrides [redis] url of the config).
    #[arg(long, env = "MCPBUS_REDIS", conflicts_with = "stdio")]
    redis: Option<String>,
    /// The deployment's name in Redis: every key starts with `{NAME}:` (default `mcpbus`).
    #[arg(long)]
    redis_prefix: Option<String>,
    /// Listen beyond loopback even though neither [auth.oauth] nor [[auth.tokens]] is
    /// configured: anyone who reaches the address may use the server (also
    /// `[auth] allow_unauthenticated = true`).
    #[arg(long, conflicts_with = "stdio")]
    allow_unauthenticated: bool,
}

async fn run_serve(options: ServeOptions) -> Result<(), ServeError> {
    let ServeOptions {
        stdio,
        listen,
        config,
        redis,
        redis_prefix,
        allow_unauthenticated,
    } = options;
    let mut config = Config::load(config.as_deref())?;
    config.auth.allow_unauthenticated |= allow_unauthenticated;
    if redis.is_some() {
        config.redis.url = redis;
    }
    if redis_prefix.is_some() {
        config.redis.prefix = redis_prefix;
    }
    if config.redis.prefix.is_some() && config.redis.url.is_none() {
        return Err(ConfigError::PrefixWithoutRedis.into());
    }
    if stdio && config.redis.url.is_some() {
        return Err(ConfigError::RedisWithStdio.into());
    }
    let backend = match &config.redis.url {
        None => None,
        Some(url) => {
            let mut redis_config = mcpbus_redis::RedisConfig::new(url);
            if let Some(prefix) = &config.redis.prefix {
                redis_config = redis_config.prefix(prefix);
            }
            if let Some(n) = config.redis.log_max_len {
                redis_config.log_max_len = n.max(1);
            }
            redis_config.stream_ttl =
                std::time::Duration::from_secs(config.http.session_idle_timeout_secs.max(1) * 2);
            redis_config.max_events_per_stream = config.http.replay_events_per_stream.max(1);
            Some(mcpbus_redis::RedisBackend::connect(redis_config).await?)
        }
    };
    let shared = backend.as_ref().map(|b| serve::Shared {
        event_log: b.event_log(),
        task_store: b.task_store(),
        webhook_store: b.webhook_store(),
    });
    let server = serve::build_server(&config, shared)?;
    if backend.is_some() && config.modern.uses_random_key(|v| std::env::var(v).ok()) {
        tracing::warn!(
            "no shared requestState key (set {} or [modern] request_state_keys): an \
             input_required retry that reaches another replica will be refused",
            modern_config::STATE_KEY_ENV
        );
    }
    tracing::info!(
        name = %config.server.name,
        topics = config.events.topics.len(),
        publish_tool = config.publish.enabled,
        transport = if stdio { "stdio" } else { "http" },
        redis = backend.is_some(),
        "starting"
    );
    if stdio {
        server.serve(mcpbus::transport::stdio()).await;
        tracing::info!("end of input; exiting");
        return Ok(());
    }
    http::serve(&config, server, listen, backend.as_ref()).await
}
