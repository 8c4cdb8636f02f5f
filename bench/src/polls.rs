//! `polls`: SEP-3415 `events/poll` answers per second (docs/protocol.md 3.4).
//!
//! M pollers, each on its own keep-alive connection, first poll from now (`cursor: null`), then
//! poll again at once with the cursor of each answer, one poll in flight each: the rate a
//! server sustains, not the pace `nextPollMs` asks of well-behaved clients. Meanwhile events
//! are published on the polled topic at a fixed rate (`POST /publish`), so answers carry events
//! and the cursor moves. Every poller checks that the events it gets follow each other: after
//! the first, each sequence number is the previous one plus one (a jump is a gap, a step back
//! an event seen twice or out of order). Only the polls answered inside the measured window
//! (after the warmup) count.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::conn::{Conn, Endpoint};
use crate::events;
use crate::publish::Publisher;
use crate::stats::{self, Latency, ProcSample, fmt_us, round, round2};
use crate::{Common, emit};

/// The options of `polls`.
#[derive(Debug, Args)]
pub(crate) struct PollsArgs {
    #[command(flatten)]
    common: Common,
    /// The publish endpoint, e.g. http://127.0.0.1:8080/publish.
    #[arg(long)]
    publish_url: String,
    /// Its bearer token.
    #[arg(long, env = "MCPBUS_PUBLISH_TOKEN", hide_env_values = true)]
    token: String,
    /// Concurrent pollers (one connection each).
    #[arg(long, default_value_t = 50)]
    pollers: usize,
    /// How long to measure (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = stats::parse_duration)]
    duration: Duration,
    /// How long to poll before measuring.
    #[arg(long, default_value = "2s", value_parser = stats::parse_duration)]
    warmup: Duration,
    /// Events published per second meanwhile, e.g. 50/s.
    #[arg(long, default_value = "50/s", value_parser = stats::parse_rate)]
    publish_rate: f64,
    /// The topic published on, polled as the event type of the same name.
    #[arg(long, default_value = "build/status")]
    topic: String,
}

/// The `polls` subcommand: runs the scenario and prints it; clean when no poll failed, some
/// were answered and no poller missed an event or saw one twice.
pub(crate) async fn command(args: PollsArgs) -> Result<ExitCode, String> {
    let config = PollsConfig {
        url: args.common.url.clone(),
        publisher: Publisher {
            endpoint: Endpoint::parse(&args.publish_url)?,
            token: args.token,
            topic: args.topic,
            pad: 0,
        },
        pollers: args.pollers,
        duration: args.duration,
        warmup: args.warmup,
        publish_rate: args.publish_rate,
        server_pid: args.common.server_pid,
    };
    let r = run(&config).await?;
    let clean = r.errors == 0 && r.answers > 0 && r.gaps == 0 && r.out_of_order == 0;
    let label = &args.common.label;
    Ok(emit(
        &args.common,
        r.to_table(label, &config),
        r.to_json(label, &config),
        clean,
    ))
}

/// Settings of the `polls` scenario.
#[derive(Debug, Clone)]
pub(crate) struct PollsConfig {
    /// The MCP endpoint.
    pub url: String,
    /// The publish endpoint and its token, for the background events.
    pub publisher: Publisher,
    /// Concurrent pollers.
    pub pollers: usize,
    /// How long to measure.
    pub duration: Duration,
    /// How long to poll before measuring.
    pub warmup: Duration,
    /// Events published per second meanwhile.
    pub publish_rate: f64,
    /// The server process, to sample its CPU time and memory.
    pub server_pid: Option<u32>,
}

/// The outcome of a `polls` run.
#[derive(Debug, Clone, Default)]
pub(crate) struct PollsReport {
    /// Polls answered in the measured window.
    pub answers: u64,
    /// Failed polls (in the whole run).
    pub errors: u64,
    /// The first error seen.
    pub first_error: Option<String>,
    /// Answers per second.
    pub answers_per_sec: f64,
    /// Latency of the measured polls.
    pub latency: Latency,
    /// Events the measured polls carried, over every poller.
    pub events_received: u64,
    /// Jumps in a poller's sequence numbers (events it never got).
    pub gaps: u64,
    /// Steps back (events seen twice or out of order).
    pub out_of_order: u64,
    /// Events published.
    pub published: usize,
    /// Server CPU seconds in the measured window.
    pub server_cpu_secs: Option<f64>,
    /// The server at the end.
    pub server_end: Option<ProcSample>,
    /// This generator's CPU seconds in the measured window.
    pub generator_cpu_secs: Option<f64>,
}

/// What one poller saw.
#[derive(Default)]
struct PollerResult {
    answers: u64,
    errors: u64,
    first_error: Option<String>,
    events: u64,
    gaps: u64,
    out_of_order: u64,
    latency: Option<Histogram<u64>>,
}

/// Runs the scenario.
pub(crate) async fn run(config: &PollsConfig) -> Result<PollsReport, String> {
    if config.pollers == 0 {
        return Err("--pollers must be at least 1".into());
    }
    let endpoint = Endpoint::parse(&config.url)?;
    let start = Instant::now();
    let measure_from = start + config.warmup;
    let end = measure_from + config.duration;
    let (stop_tx, stop_rx) = watch::channel(false);
    let publisher = (config.publish_rate > 0.0).then(|| {
        let total = config.warmup + config.duration + Duration::from_secs(1);
        let events = (config.publish_rate * total.as_secs_f64()).ceil() as usize;
        let (p, rate, stop) = (config.publisher.clone(), config.publish_rate, stop_rx);
        tokio::spawn(async move { p.publish_at(events, rate, start, Some(stop)).await })
    });
    let mut pollers = Vec::with_capacity(config.pollers);
    for _ in 0..config.pollers {
        let (endpoint, name) = (endpoint.clone(), config.publisher.topic.clone());
        pollers.push(tokio::spawn(async move {
            poller(endpoint, name, measure_from, end).await
        }));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let server_before = config.server_pid.and_then(|p| ProcSample::read(Some(p)));
    let me_before = ProcSample::read(None);
    tokio::time::sleep_until(end.into()).await;
    let mut report = PollsReport {
        server_end: config.server_pid.and_then(|p| ProcSample::read(Some(p))),
        ..PollsReport::default()
    };
    let me_after = ProcSample::read(None);
    if let (Some(b), Some(a)) = (server_before, report.server_end) {
        report.server_cpu_secs = Some(a.cpu_secs - b.cpu_secs);
    }
    if let (Some(b), Some(a)) = (me_before, me_after) {
        report.generator_cpu_secs = Some(a.cpu_secs - b.cpu_secs);
    }
    let _ = stop_tx.send(true);
    let mut latency = stats::latency_histogram();
    for p in pollers {
        let r = p.await.map_err(|e| e.to_string())?;
        report.answers += r.answers;
        report.errors += r.errors;
        report.events_received += r.events;
        report.gaps += r.gaps;
        report.out_of_order += r.out_of_order;
        if report.first_error.is_none() {
            report.first_error = r.first_error;
        }
        if let Some(h) = r.latency {
            latency.add(h).map_err(|e| e.to_string())?;
        }
    }
    if let Some(p) = publisher {
        let published = p.await.map_err(|e| e.to_string())??;
        report.published = published.count;
        report.errors += published.errors as u64;
        if report.first_error.is_none() {
            report.first_error = published.first_error;
        }
    }
    report.latency = Latency::of(&latency);
    report.answers_per_sec = report.answers as f64 / config.duration.as_secs_f64();
    Ok(report)
}

/// One poller: polls from now, then with each answer's cursor, until `end`.
async fn poller(
    endpoint: Endpoint,
    name: String,
    measure_from: Instant,
    end: Instant,
) -> PollerResult {
    let mut r = PollerResult::default();
    let mut latency = stats::latency_histogram();
    let mut conn = None;
    let mut cursor = Value::Null;
    let mut last_seq: Option<usize> = None;
    let mut id = 0u64;
    while Instant::now() < end {
        id += 1;
        let c = match conn.take() {
            Some(c) => c,
            None => match Conn::connect(&endpoint).await {
                Ok(c) => c,
                Err(e) => {
                    r.fail(e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let mut c: Conn = c;
        let sent = Instant::now();
        match events::poll(&mut c, &endpoint, id, &name, &cursor).await {
            Ok(answer) => {
                let measured = sent >= measure_from && Instant::now() <= end;
                if measured {
                    r.answers += 1;
                    r.events += answer.seqs.len() as u64;
                    stats::record(&mut latency, sent.elapsed().as_nanos() as u64);
                }
                for seq in answer.seqs {
                    match last_seq {
                        Some(last) if seq == last + 1 => {}
                        Some(last) if seq > last => r.gaps += 1,
                        Some(_) => r.out_of_order += 1,
                        None => {}
                    }
                    last_seq = Some(last_seq.map_or(seq, |l| l.max(seq)));
                }
                cursor = answer.cursor;
                conn = Some(c);
            }
            // The connection may be broken: the next poll opens another.
            Err(e) => r.fail(e),
        }
    }
    r.latency = Some(latency);
    r
}

impl PollerResult {
    fn fail(&mut self, e: String) {
        self.errors += 1;
        self.first_error.get_or_insert(e);
    }
}

impl PollsReport {
    /// Server CPU microseconds per answer in the measured window.
    pub(crate) fn server_cpu_us_per_answer(&self) -> Option<f64> {
        let cpu = self.server_cpu_secs?;
        (self.answers > 0).then(|| cpu * 1e6 / self.answers as f64)
    }

    /// The JSON line of this run.
    pub(crate) fn to_json(&self, label: &str, config: &PollsConfig) -> Value {
        json!({
            "scenario": "polls",
            "label": label,
            "url": config.url,
            "pollers": config.pollers,
            "duration_s": config.duration.as_secs_f64(),
            "publish_rate_per_s": config.publish_rate,
            "topic": config.publisher.topic,
            "answers": self.answers,
            "answers_per_s": round(self.answers_per_sec),
            "errors": self.errors,
            "first_error": self.first_error,
            "latency": self.latency.to_json(),
            "events_received": self.events_received,
            "events_per_answer": (self.answers > 0)
                .then(|| round2(self.events_received as f64 / self.answers as f64)),
            "gaps": self.gaps,
            "out_of_order": self.out_of_order,
            "published": self.published,
            "server_cpu_s": self.server_cpu_secs.map(round2),
            "server_cpu_us_per_answer": self.server_cpu_us_per_answer().map(round2),
            "server_hwm_kib": self.server_end.map(|s| s.hwm_kib),
            "generator_cpu_s": self.generator_cpu_secs.map(round2),
        })
    }

    /// A human-readable summary.
    pub(crate) fn to_table(&self, label: &str, config: &PollsConfig) -> String {
        let l = &self.latency;
        let mut out = format!(
            "polls: {label}, {} pollers of {:?} for {:?}, {}/s published\n",
            config.pollers, config.publisher.topic, config.duration, config.publish_rate
        );
        out += &format!(
            "  answers              {} ({:.0}/s), {} error(s)\n",
            self.answers, self.answers_per_sec, self.errors
        );
        out += &format!(
            "  latency              p50 {}  p90 {}  p99 {}  max {}\n",
            fmt_us(l.p50_us),
            fmt_us(l.p90_us),
            fmt_us(l.p99_us),
            fmt_us(l.max_us)
        );
        out += &format!(
            "  events received      {} ({} published), {} gap(s), {} out of order\n",
            self.events_received, self.published, self.gaps, self.out_of_order
        );
        if let Some(cpu) = self.server_cpu_secs {
            out += &format!("  server CPU           {cpu:.2} s measured\n");
        }
        if let Some(per) = self.server_cpu_us_per_answer() {
            out += &format!("  server CPU/answer    {per:.1} µs\n");
        }
        if let Some(e) = &self.first_error {
            out += &format!("  first error          {e}\n");
        }
        out
    }
}
