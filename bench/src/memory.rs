//! `memory`: the server's resident memory with many idle subscribers.
//!
//! With `--delivery get-stream`, N sessions are initialized, each subscribes to one topic
//! (`events/subscribe`, or `resources/subscribe` to the topic's resource URI for a server
//! without topic events) and opens its GET stream; with `--delivery push-stream`, N SEP-3415
//! push streams (`events/stream`, no session) are opened. One connection each, read and
//! discarded, so keep-alive comments and heartbeats do not back up. The server's RSS (`VmRSS` of `/proc/<pid>/status`) is sampled before the first
//! session, once every session is set up and a settle time has passed, and again after the
//! generator closed every stream (the sessions themselves stay until the server expires them).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::conn::{Conn, Endpoint};
use crate::fanout::{self, Delivery};
use crate::mcp::SubscribeMethod;
use crate::stats::{self, ProcSample, round2};
use crate::{Common, emit};

/// The options of `memory`.
#[derive(Debug, Args)]
pub(crate) struct MemoryArgs {
    #[command(flatten)]
    common: Common,
    /// Idle subscribers (one stream connection each).
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// The topic each subscriber subscribes to.
    #[arg(long, default_value = "build/status")]
    topic: String,
    /// How sessions subscribe (see `fanout --subscribe-method`).
    #[arg(long, value_enum, default_value = "events")]
    subscribe_method: SubscribeMethod,
    /// What each subscriber holds open: a session's GET stream, or a SEP-3415 push stream
    /// (`events/stream`, no session).
    #[arg(long, value_enum, default_value = "get-stream")]
    delivery: Delivery,
    /// Subscribers set up at once.
    #[arg(long, default_value_t = 32)]
    setup_concurrency: usize,
    /// How long to wait after setup before reading the server's RSS.
    #[arg(long, default_value = "2s", value_parser = stats::parse_duration)]
    settle: Duration,
}

/// The `memory` subcommand: runs the scenario and prints it; clean when no stream ended early.
pub(crate) async fn command(args: MemoryArgs) -> Result<ExitCode, String> {
    let config = MemoryConfig {
        url: args.common.url.clone(),
        sessions: args.sessions,
        topic: args.topic,
        subscribe: args.subscribe_method,
        delivery: args.delivery,
        setup_concurrency: args.setup_concurrency,
        settle: args.settle,
        server_pid: args
            .common
            .server_pid
            .ok_or("memory needs --server-pid: the server's RSS is what it measures")?,
    };
    let r = run(&config).await?;
    let label = &args.common.label;
    Ok(emit(
        &args.common,
        r.to_table(label, &config),
        r.to_json(label, &config),
        r.streams_ended == 0,
    ))
}

/// Settings of the `memory` scenario.
#[derive(Debug, Clone)]
pub(crate) struct MemoryConfig {
    /// The MCP endpoint.
    pub url: String,
    /// Idle sessions to hold.
    pub sessions: usize,
    /// The topic each session subscribes to.
    pub topic: String,
    /// How sessions subscribe (GET streams).
    pub subscribe: SubscribeMethod,
    /// What each subscriber holds open: a session's GET stream or a push stream.
    pub delivery: Delivery,
    /// Sessions set up at once.
    pub setup_concurrency: usize,
    /// How long to wait after setup before sampling.
    pub settle: Duration,
    /// The server process (required: its memory is what is measured).
    pub server_pid: u32,
}

/// The outcome of a `memory` run.
#[derive(Debug, Clone)]
pub(crate) struct MemoryReport {
    /// Seconds to set up every session.
    pub setup_secs: f64,
    /// The server before the first session.
    pub before: ProcSample,
    /// The server with every session idle.
    pub idle: ProcSample,
    /// The server after the generator closed every stream.
    pub after_close: Option<ProcSample>,
    /// Streams the server ended while they should have stayed open.
    pub streams_ended: usize,
    /// This generator with every session idle.
    pub generator: Option<ProcSample>,
}

impl MemoryReport {
    /// RSS growth per idle session, KiB.
    pub(crate) fn kib_per_session(&self, sessions: usize) -> f64 {
        (self.idle.rss_kib as f64 - self.before.rss_kib as f64) / sessions.max(1) as f64
    }
}

/// Runs the scenario.
pub(crate) async fn run(config: &MemoryConfig) -> Result<MemoryReport, String> {
    if config.sessions == 0 {
        return Err("--sessions must be at least 1".into());
    }
    fanout::check_open_files(config.sessions + config.setup_concurrency)?;
    let endpoint = Endpoint::parse(&config.url)?;
    let topic = config.subscribe.topic(&config.topic);
    let before = ProcSample::read(Some(config.server_pid))
        .ok_or_else(|| format!("cannot read /proc/{}", config.server_pid))?;
    let push = match config.delivery {
        Delivery::GetStream => false,
        Delivery::PushStream => true,
        Delivery::Webhook | Delivery::Mqtt => {
            return Err("memory holds streams: get-stream or push-stream".into());
        }
    };
    let start = Instant::now();
    let (stop_tx, stop_rx) = watch::channel(false);
    let reader = move |conn, body| tokio::spawn(drain_stream(conn, body, stop_rx.clone()));
    let (readers, setup_error) = fanout::open_streams(
        &endpoint,
        &topic,
        push,
        config.sessions,
        config.setup_concurrency,
        reader,
    )
    .await;
    if let Some(e) = setup_error {
        let _ = stop_tx.send(true);
        return Err(format!(
            "session setup failed after {} streams: {e}",
            readers.len()
        ));
    }
    let setup_secs = start.elapsed().as_secs_f64();
    tokio::time::sleep(config.settle).await;
    let idle = ProcSample::read(Some(config.server_pid))
        .ok_or_else(|| format!("the server (pid {}) is gone", config.server_pid))?;
    let generator = ProcSample::read(None);
    let _ = stop_tx.send(true);
    let mut streams_ended = 0;
    for reader in readers {
        streams_ended += usize::from(reader.await.map_err(|e| e.to_string())?);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after_close = ProcSample::read(Some(config.server_pid));
    Ok(MemoryReport {
        setup_secs,
        before,
        idle,
        after_close,
        streams_ended,
        generator,
    })
}

/// Holds one GET stream open, discarding what comes, until told to stop; `true` if the server
/// ended it first.
async fn drain_stream(conn: Conn, mut body: Incoming, mut stop: watch::Receiver<bool>) -> bool {
    let _conn = conn;
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return false,
            frame = body.frame() => {
                if !matches!(frame, Some(Ok(_))) {
                    return !*stop.borrow();
                }
            }
        }
    }
}

impl MemoryReport {
    /// The JSON line of this run.
    pub(crate) fn to_json(&self, label: &str, config: &MemoryConfig) -> Value {
        let sample = |s: &ProcSample| json!({"rss_kib": s.rss_kib, "hwm_kib": s.hwm_kib});
        json!({
            "scenario": "memory",
            "label": label,
            "delivery": config.delivery.name(),
            "url": config.url,
            "sessions": config.sessions,
            "topic": config.subscribe.topic(&config.topic),
            "setup_s": round2(self.setup_secs),
            "server_before": sample(&self.before),
            "server_idle": sample(&self.idle),
            "server_after_close": self.after_close.as_ref().map(sample),
            "rss_kib_per_session": round2(self.kib_per_session(config.sessions)),
            "streams_ended": self.streams_ended,
            "generator_rss_kib": self.generator.map(|g| g.rss_kib),
        })
    }

    /// A human-readable summary.
    pub(crate) fn to_table(&self, label: &str, config: &MemoryConfig) -> String {
        let mib = |k: u64| k as f64 / 1024.0;
        let mut out = format!(
            "memory: {label}, {} idle subscribers ({}) on {:?}\n",
            config.sessions,
            config.delivery.name(),
            config.subscribe.topic(&config.topic)
        );
        out += &format!("  setup                {:.2} s\n", self.setup_secs);
        out += &format!(
            "  server RSS           {:.1} MiB before, {:.1} MiB with the sessions idle (peak {:.1} MiB)\n",
            mib(self.before.rss_kib),
            mib(self.idle.rss_kib),
            mib(self.idle.hwm_kib)
        );
        out += &format!(
            "  per session          {:.1} KiB\n",
            self.kib_per_session(config.sessions)
        );
        if let Some(after) = self.after_close {
            out += &format!(
                "  after closing        {:.1} MiB (streams closed; sessions, if any, not deleted)\n",
                mib(after.rss_kib)
            );
        }
        out += &format!("  streams ended early  {}\n", self.streams_ended);
        out
    }
}
