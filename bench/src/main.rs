//! `mcpbus-bench`: the load generator of the mcpbus benchmarks (see `docs/BENCHMARKS.md`).
//!
//! Each scenario is a subcommand that talks raw Streamable HTTP to an MCP server on loopback
//! and prints a human summary, or with `--json` one JSON line on stdout (the summary then goes
//! to stderr); `report` renders collected JSON lines as Markdown tables. `bench/run.sh` starts
//! the server and runs the scenarios. `redis-store` measures the Redis event store of
//! `mcpbus-redis` directly (no server), against a Redis that `bench/redis.sh` starts; `soak`
//! runs for a long while against replicas that `bench/soak.sh` starts, and judges growth.

mod conn;
mod events;
mod fanout;
mod mcp;
mod memory;
mod mqtt;
mod polls;
mod publish;
mod redis_store;
mod report;
mod rps;
mod soak;
mod stalled;
mod stats;
mod storm;
mod webhooks;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::Value;

/// Load generator for MCP servers over Streamable HTTP (loopback only).
#[derive(Debug, Parser)]
#[command(name = "mcpbus-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options every scenario has.
#[derive(Debug, Args)]
pub(crate) struct Common {
    /// The server's MCP endpoint, e.g. http://127.0.0.1:8080/mcp.
    #[arg(long)]
    pub url: String,
    /// Print one JSON line on stdout (the human summary goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Name of the server under test, in the output.
    #[arg(long, default_value = "mcpbus")]
    pub label: String,
    /// The server's process id: its CPU time and memory are read from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Exit with status 1 if any request failed or any event was not delivered.
    #[arg(long)]
    pub strict: bool,
}

/// Options of the fan-out scenarios (`fanout`, `push-fanout`, `webhooks`).
#[derive(Debug, Args)]
struct FanoutArgs {
    #[command(flatten)]
    common: Common,
    /// The publish endpoint, e.g. http://127.0.0.1:8080/publish.
    #[arg(long)]
    publish_url: String,
    /// Its bearer token.
    #[arg(long, env = "MCPBUS_PUBLISH_TOKEN", hide_env_values = true)]
    token: String,
    /// Subscribers: sessions (one stream connection each), push streams (one connection
    /// each) or webhook subscriptions.
    #[arg(long, alias = "subscribers", default_value_t = 1000)]
    sessions: usize,
    /// Events to publish.
    #[arg(long, default_value_t = 200)]
    events: usize,
    /// Publish rate, e.g. 50/s.
    #[arg(long, default_value = "50/s", value_parser = stats::parse_rate)]
    rate: f64,
    /// The topic subscribed to and published on (for push streams and webhooks, the event
    /// type of that name).
    #[arg(long, default_value = "build/status")]
    topic: String,
    /// Subscribers set up at once.
    #[arg(long, default_value_t = 32)]
    setup_concurrency: usize,
    /// How long to wait for outstanding deliveries after the last publish.
    #[arg(long, default_value = "10s", value_parser = stats::parse_duration)]
    drain_timeout: std::time::Duration,
    /// How sessions subscribe: mcpbus topic events, or MCP resource subscriptions (to
    /// `bench://topic/<topic>`, for the rmcp peer). `fanout` only.
    #[arg(long, value_enum, default_value = "events")]
    subscribe_method: mcp::SubscribeMethod,
    /// Stalled subscribers besides the measured ones: subscribed like them, but they stop
    /// reading once their stream has started (`fanout` and `push-fanout`).
    #[arg(long, default_value_t = 0)]
    stalled: usize,
    /// Bytes of padding in each event's payload (stalled subscribers stall sooner with bigger
    /// events).
    #[arg(long, default_value_t = 0)]
    payload_bytes: usize,
}

impl FanoutArgs {
    /// The scenario's settings, for subscribers that receive events by `delivery`.
    fn config(&self, delivery: fanout::Delivery) -> fanout::FanoutConfig {
        fanout::FanoutConfig {
            url: self.common.url.clone(),
            publish_url: self.publish_url.clone(),
            token: self.token.clone(),
            sessions: self.sessions,
            delivery,
            events: self.events,
            rate: self.rate,
            topic: self.subscribe_method.topic(&self.topic),
            setup_concurrency: self.setup_concurrency,
            drain_timeout: self.drain_timeout,
            server_pid: self.common.server_pid,
            stalled: self.stalled,
            payload_bytes: self.payload_bytes,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// tools/call requests per second: each client has its own session and connection and
    /// keeps one request in flight.
    Rps {
        #[command(flatten)]
        common: Common,
        /// Concurrent clients.
        #[arg(long, default_value_t = 50)]
        clients: usize,
        /// How long to measure (e.g. 10s, 500ms).
        #[arg(long, default_value = "10s", value_parser = stats::parse_duration)]
        duration: std::time::Duration,
        /// How long to run before measuring.
        #[arg(long, default_value = "2s", value_parser = stats::parse_duration)]
        warmup: std::time::Duration,
        /// The tool to call.
        #[arg(long, default_value = "whoami")]
        tool: String,
        /// The tool's arguments, as JSON.
        #[arg(long, default_value = "{}")]
        arguments: String,
        /// The era spoken: `legacy` (a session per client) or `modern` (2026-07-28, no
        /// session: every request carries its `_meta` and headers).
        #[arg(long, value_enum, default_value = "legacy")]
        era: mcp::Era,
    },
    /// publish → deliver latency: N sessions subscribe and hold their GET stream open while
    /// events are published at a fixed rate through the server's POST /publish.
    Fanout(FanoutArgs),
    /// The `fanout` scenario with SEP-3415 push streams: N `events/stream` requests of the
    /// 2026-07-28 era (no session), each answered with an SSE stream held open.
    PushFanout(FanoutArgs),
    /// The `fanout` scenario with SEP-3415 webhooks: N `events/subscribe` subscriptions, each
    /// to its own URL of a receiver in this process (on loopback addresses only).
    Webhooks {
        #[command(flatten)]
        fanout: FanoutArgs,
        /// A bearer token of the server's `[[auth.tokens]]`: webhooks need a principal.
        #[arg(long, env = "MCPBUS_BENCH_AUTH_TOKEN", hide_env_values = true)]
        auth_token: String,
    },
    /// SEP-3415 `events/poll` answers per second: M pollers, one poll in flight each, follow
    /// their cursors while events are published at a fixed rate.
    Polls(polls::PollsArgs),
    /// Server memory with many idle subscribers: N sessions each subscribe to one topic and
    /// hold their GET stream open, or N push streams are held open; the server's RSS is read
    /// before and after.
    Memory(memory::MemoryArgs),
    /// Connects and disconnects at a high rate for a bounded time (bare connects, sessions
    /// initialized and abandoned or deleted, requests cut off, push streams dropped), then
    /// waits for the server to have no session and no connection left, and compares its RSS
    /// with the one before.
    Storm(storm::StormArgs),
    /// The `fanout` scenario against an MQTT broker (the Mosquitto peer): N subscriber clients
    /// (one connection each) subscribe at QoS 0, one client publishes at a fixed rate, each
    /// payload being the `events/emit` notification mcpbus would send.
    FanoutMqtt {
        /// The broker, e.g. 127.0.0.1:1883.
        #[arg(long)]
        broker: String,
        /// Print one JSON line on stdout (the human summary goes to stderr).
        #[arg(long)]
        json: bool,
        /// Name of the broker under test, in the output.
        #[arg(long, default_value = "mosquitto")]
        label: String,
        /// The broker's process id: its CPU time and memory are read from /proc.
        #[arg(long)]
        broker_pid: Option<u32>,
        /// Exit with status 1 if any event was not delivered.
        #[arg(long)]
        strict: bool,
        /// Subscriber clients (one connection each).
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        /// Events to publish.
        #[arg(long, default_value_t = 200)]
        events: usize,
        /// Publish rate, e.g. 50/s.
        #[arg(long, default_value = "50/s", value_parser = stats::parse_rate)]
        rate: f64,
        /// The topic subscribed to and published on.
        #[arg(long, default_value = "build/status")]
        topic: String,
        /// Clients set up at once.
        #[arg(long, default_value_t = 32)]
        setup_concurrency: usize,
        /// How long to wait for outstanding deliveries after the last publish.
        #[arg(long, default_value = "10s", value_parser = stats::parse_duration)]
        drain_timeout: std::time::Duration,
    },
    /// A bounded soak of replicas sharing a Redis (`bench/soak.sh` starts them): steady
    /// publishes through every replica, long-lived subscribers of both eras on each, churn of
    /// sessions and push streams; samples RSS, open fds, Redis memory and latency, and fails
    /// on growth beyond the bounds after the warm-up or on any lost event.
    Soak(Box<soak::SoakArgs>),
    /// The Redis event store of mcpbus-redis: appends per second (one writer, then several)
    /// and the latency of replaying the newest events after an event id; every read is
    /// checked against what was appended.
    RedisStore {
        /// The Redis server, e.g. redis://127.0.0.1:6379.
        #[arg(long)]
        redis_url: String,
        /// Print one JSON line on stdout (the human summary goes to stderr).
        #[arg(long)]
        json: bool,
        /// Name of the store under test, in the output.
        #[arg(long, default_value = "mcpbus")]
        label: String,
        /// Exit with status 1 if any read back was not what was appended.
        #[arg(long)]
        strict: bool,
        /// The store's key prefix (deployment name).
        #[arg(long, default_value = "mcpbus-bench")]
        prefix: String,
        /// Messages appended one at a time to one stream (and in all by the writers).
        #[arg(long, default_value_t = 5000)]
        appends: usize,
        /// Concurrent writers, each its own session and stream (0: skip that phase).
        #[arg(long, default_value_t = 8)]
        writers: usize,
        /// Events each replay reads back (the newest ones of the stream).
        #[arg(long, default_value_t = 100)]
        replay_events: usize,
        /// Measured replays.
        #[arg(long, default_value_t = 200)]
        replays: usize,
        /// Unmeasured replays before them.
        #[arg(long, default_value_t = 20)]
        warmup_replays: usize,
        /// Size of each message (a JSON-RPC notification), bytes.
        #[arg(long, default_value_t = 200)]
        message_bytes: usize,
    },
    /// Render JSON lines of earlier runs (files, or stdin) as Markdown tables.
    Report {
        /// Files of JSON lines; stdin when none.
        files: Vec<PathBuf>,
        /// Also compare two servers by label, e.g. `mcpbus/rmcp`: one table of A, B and A / B
        /// per scenario, with the runs matched by their parameters. May be repeated.
        #[arg(long)]
        ratio: Vec<String>,
        /// Also compare two builds of one server by label, e.g. `A..B` (as `bench/ab.sh`
        /// labels them): per scenario and parameters, the median of each figure over the runs
        /// of each label, B / A, and each label's range.
        #[arg(long)]
        change: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mcpbus-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("mcpbus-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a run's summary and JSON line; decides the exit status.
pub(crate) fn emit(common: &Common, table: String, line: Value, clean: bool) -> ExitCode {
    if common.json {
        eprint!("{table}");
        println!("{line}");
    } else {
        print!("{table}");
    }
    if common.strict && !clean {
        eprintln!("mcpbus-bench: --strict: the run had failures");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn run(command: Command) -> Result<ExitCode, String> {
    match command {
        Command::Rps {
            common,
            clients,
            duration,
            warmup,
            tool,
            arguments,
            era,
        } => {
            let arguments: Value = serde_json::from_str(&arguments)
                .map_err(|e| format!("--arguments is not JSON: {e}"))?;
            let config = rps::RpsConfig {
                url: common.url.clone(),
                clients,
                duration,
                warmup,
                tool,
                arguments,
                server_pid: common.server_pid,
                era,
            };
            let r = rps::run(&config).await?;
            let clean = r.errors == 0 && r.ok > 0;
            Ok(emit(
                &common,
                r.to_table(&common.label, &config),
                r.to_json(&common.label, &config),
                clean,
            ))
        }
        Command::Fanout(args) => {
            let config = args.config(fanout::Delivery::GetStream);
            let r = fanout::run(&config).await?;
            Ok(emit_fanout(&args.common, &r, &config))
        }
        Command::PushFanout(args) => {
            let config = args.config(fanout::Delivery::PushStream);
            let r = fanout::run(&config).await?;
            Ok(emit_fanout(&args.common, &r, &config))
        }
        Command::Webhooks { fanout, auth_token } => {
            let config = webhooks::WebhooksConfig {
                fanout: fanout.config(fanout::Delivery::Webhook),
                auth_token,
            };
            let r = webhooks::run(&config).await?;
            Ok(emit_fanout(&fanout.common, &r, &config.fanout))
        }
        Command::Polls(args) => polls::command(args).await,
        Command::FanoutMqtt {
            broker,
            json,
            label,
            broker_pid,
            strict,
            subscribers,
            events,
            rate,
            topic,
            setup_concurrency,
            drain_timeout,
        } => {
            let config = mqtt::MqttFanoutConfig {
                broker: broker.clone(),
                subscribers,
                events,
                rate,
                topic,
                setup_concurrency,
                drain_timeout,
                broker_pid,
            };
            let r = mqtt::run(&config).await?;
            let clean = r.publish_errors == 0
                && r.published == events
                && r.deliveries == r.expected
                && r.duplicates == 0;
            let common = Common {
                url: format!("mqtt://{broker}"),
                json,
                label,
                server_pid: broker_pid,
                strict,
            };
            Ok(emit(
                &common,
                mqtt::to_table(&r, &common.label, &config),
                mqtt::to_json(&r, &common.label, &config),
                clean,
            ))
        }
        Command::Memory(args) => memory::command(args).await,
        Command::Soak(args) => soak::command(*args).await,
        Command::Storm(args) => storm::command(args).await,
        Command::RedisStore {
            redis_url,
            json,
            label,
            strict,
            prefix,
            appends,
            writers,
            replay_events,
            replays,
            warmup_replays,
            message_bytes,
        } => {
            let config = redis_store::RedisStoreConfig {
                redis_url: redis_url.clone(),
                prefix,
                appends,
                writers,
                replay_events,
                replays,
                warmup_replays,
                message_bytes,
            };
            let r = redis_store::run(&config).await?;
            let common = Common {
                url: redis_url,
                json,
                label,
                server_pid: None,
                strict,
            };
            Ok(emit(
                &common,
                r.to_table(&common.label, &config),
                r.to_json(&common.label, &config),
                r.errors == 0,
            ))
        }
        Command::Report {
            files,
            ratio,
            change,
        } => report(&files, &ratio, change.as_deref()),
    }
}

/// Prints a fan-out run (streams or webhooks); clean when every event was published and
/// delivered once to every subscriber.
fn emit_fanout(
    common: &Common,
    r: &fanout::FanoutReport,
    config: &fanout::FanoutConfig,
) -> ExitCode {
    let clean = r.publish_errors == 0
        && r.published == config.events
        && r.deliveries == r.expected
        && r.duplicates == 0;
    emit(
        common,
        r.to_table(&common.label, config),
        r.to_json(&common.label, config),
        clean,
    )
}

/// The `report` subcommand: the tables of the runs in `files` (stdin when none), and the
/// comparisons `--ratio` and `--change` ask for.
fn report(files: &[PathBuf], ratios: &[String], change: Option<&str>) -> Result<ExitCode, String> {
    let change = change
        .map(|c| {
            c.split_once("..")
                .filter(|(a, b)| !a.is_empty() && !b.is_empty())
                .ok_or("--change expects two labels as A..B, e.g. A..B")
        })
        .transpose()?;
    let mut text = String::new();
    if files.is_empty() {
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("reading stdin: {e}"))?;
    }
    for f in files {
        text += &std::fs::read_to_string(f).map_err(|e| format!("reading {}: {e}", f.display()))?;
        text.push('\n');
    }
    let redis = redis_store::render(&text);
    let others = report::render(&text);
    // Lines of redis-store runs alone are not "no results".
    if redis.is_empty() || others != report::render("") {
        print!("{others}");
    }
    print!("{redis}");
    for ratio in ratios {
        let (a, b) = ratio
            .split_once('/')
            .ok_or("--ratio expects two labels as A/B, e.g. mcpbus/rmcp")?;
        print!("{}", report::render_ratio(&text, a, b));
        print!("{}", redis_store::render_ratio(&text, a, b));
    }
    if let Some((a, b)) = change {
        print!("{}", report::render_change(&text, a, b));
    }
    Ok(ExitCode::SUCCESS)
}
