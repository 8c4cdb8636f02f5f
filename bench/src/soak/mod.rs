//! `soak`: a bounded run of steady publish, subscribe and churn on replicas that share one
//! Redis (`bench/soak.sh` starts them), judged on growth.
//!
//! - **Publish**: one publisher sends events at a fixed rate, in turn through each replica's
//!   `POST /publish` and over `--topics` topics `soak/t0`, `soak/t1`, ..., each carrying a
//!   sequence number and its send time; each publish is acknowledged before the next is sent.
//! - **Long-lived subscribers** ([`subscribers`]) on every replica, in both eras, from before
//!   the first publish to the end, on the pattern `soak/+`: each must get every event.
//! - **Churn** ([`churn`]): on every replica, sessions and push streams that come, receive a
//!   few events and go (`DELETE`, abandoned, dropped).
//! - **Samples** every `--sample-every`: each replica's RSS and open fds (`/proc/PID`), Redis
//!   `used_memory` and key count, the long-lived streams' publish → deliver p50 / p99 in that
//!   window and deliveries against what was published.
//!
//! After the warm-up (shown, not judged) the run fails when a figure grows beyond its bound
//! ([`verdict`]), or when any publish, long-lived subscriber or churned subscriber failed, or
//! any long-lived subscriber missed or repeated an event.

mod churn;
mod report;
mod subscribers;
mod verdict;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use tokio::sync::watch;

use crate::conn::{Conn, Endpoint};
use crate::publish::Publisher;
use crate::stats::{self, ProcSample};
use subscribers::{Errors, Plan, Subscriber, Tally};
use verdict::{Bounds, ReplicaSample, Sample};

/// The pattern every subscriber follows; the server must declare it (`bench/soak.sh` does).
const PATTERN: &str = "soak/+";

/// Pause between the last subscriber set up and the first publish.
const SETTLE: Duration = Duration::from_millis(500);

/// The options of `soak`.
#[derive(Debug, Args)]
pub(crate) struct SoakArgs {
    /// A replica's MCP endpoint, e.g. http://127.0.0.1:8080/mcp; once per replica. Its
    /// `/publish` is published to.
    #[arg(long = "replica", required = true)]
    replicas: Vec<String>,
    /// Each replica's process id, in the order of --replica (RSS and fds from /proc).
    #[arg(long = "replica-pid", required = true)]
    pids: Vec<u32>,
    /// The Redis the replicas share, for INFO memory and DBSIZE (e.g. redis://127.0.0.1:6379).
    #[arg(long)]
    redis_url: Option<String>,
    /// The bearer token of POST /publish.
    #[arg(long, env = "MCPBUS_PUBLISH_TOKEN", hide_env_values = true)]
    token: String,
    /// How long to publish (e.g. 60m, 150s).
    #[arg(long, default_value = "60m", value_parser = stats::parse_duration)]
    duration: Duration,
    /// The start of the run that is shown but not judged (default: 15 % of --duration, at
    /// least 45 s).
    #[arg(long, value_parser = stats::parse_duration)]
    warmup: Option<Duration>,
    /// How often to sample.
    #[arg(long, default_value = "10s", value_parser = stats::parse_duration)]
    sample_every: Duration,
    /// Events published per second, over every topic and replica.
    #[arg(long, default_value = "200/s", value_parser = stats::parse_rate)]
    rate: f64,
    /// Topics published on: soak/t0, soak/t1, ...
    #[arg(long, default_value_t = 4)]
    topics: usize,
    /// Long-lived handshake-era sessions (with their GET stream) per replica.
    #[arg(long, default_value_t = 2)]
    sessions: usize,
    /// Long-lived push streams per replica.
    #[arg(long, default_value_t = 2)]
    push_streams: usize,
    /// Long-lived pollers per replica.
    #[arg(long, default_value_t = 1)]
    pollers: usize,
    /// One churned subscriber starts this often on each replica.
    #[arg(long, default_value = "1s", value_parser = stats::parse_duration)]
    churn_every: Duration,
    /// Events each churned subscriber receives before it goes.
    #[arg(long, default_value_t = 3)]
    churn_events: usize,
    /// How long the long-lived subscribers may take to catch up after the last publish.
    #[arg(long, default_value = "15s", value_parser = stats::parse_duration)]
    drain_timeout: Duration,
    #[command(flatten)]
    bounds: BoundArgs,
    /// Write the samples to this CSV file.
    #[arg(long)]
    csv: Option<std::path::PathBuf>,
    /// Write a Markdown summary (settings, samples, checks, verdict) to this file.
    #[arg(long)]
    summary: Option<std::path::PathBuf>,
    /// A line on the conditions of the run (machine, load) for the summary.
    #[arg(long)]
    conditions: Option<String>,
}

/// The bounds of the growth checks (see docs/BENCHMARKS.md for why these defaults).
#[derive(Debug, Clone, Copy, Args)]
struct BoundArgs {
    /// RSS of a replica may grow by this many percent after the warm-up...
    #[arg(long, default_value_t = 10.0)]
    max_rss_growth_pct: f64,
    /// ...plus this many MiB.
    #[arg(long, default_value_t = 8.0)]
    max_rss_growth_mib: f64,
    /// Open fds of a replica may grow by this many after the warm-up.
    #[arg(long, default_value_t = 8)]
    max_fd_growth: u64,
    /// Redis used_memory may grow by this many percent after the warm-up...
    #[arg(long, default_value_t = 10.0)]
    max_redis_growth_pct: f64,
    /// ...plus this many MiB.
    #[arg(long, default_value_t = 4.0)]
    max_redis_growth_mib: f64,
    /// Redis keys may grow by this many percent after the warm-up...
    #[arg(long, default_value_t = 25.0)]
    max_keys_growth_pct: f64,
    /// ...plus this many.
    #[arg(long, default_value_t = 20)]
    max_keys_growth: u64,
    /// The long-lived streams' p99 may become this many times its value after the warm-up...
    #[arg(long, default_value_t = 3.0)]
    max_p99_factor: f64,
    /// ...or its value plus this much, whichever is larger (e.g. 20ms).
    #[arg(long, default_value = "20ms", value_parser = stats::parse_duration)]
    p99_floor: Duration,
}

impl BoundArgs {
    fn bounds(&self) -> Bounds {
        Bounds {
            rss_pct: self.max_rss_growth_pct,
            rss_mib: self.max_rss_growth_mib,
            fds: self.max_fd_growth,
            redis_pct: self.max_redis_growth_pct,
            redis_mib: self.max_redis_growth_mib,
            keys_pct: self.max_keys_growth_pct,
            keys: self.max_keys_growth,
            p99_factor: self.max_p99_factor,
            p99_floor_us: self.p99_floor.as_secs_f64() * 1e6,
        }
    }
}

/// What the publisher did.
#[derive(Debug, Default)]
struct PublishTally {
    /// Sequence numbers used (each publish attempted takes one).
    attempted: AtomicU64,
    /// Publishes acknowledged.
    acked: AtomicU64,
    /// Failed publishes.
    errors: Errors,
}

/// Everything the run's tasks report to.
struct Tallies {
    publish: Arc<PublishTally>,
    subscribers: Arc<Tally>,
    churn: Arc<churn::ChurnTally>,
}

impl Tallies {
    fn errors(&self) -> u64 {
        self.publish.errors.count() + self.subscribers.errors.count() + self.churn.errors.count()
    }
}

/// The `soak` subcommand: runs the soak, prints its samples, checks and verdict, writes the
/// files asked for; fails when the verdict does.
pub(crate) async fn command(args: SoakArgs) -> Result<ExitCode, String> {
    if args.pids.len() != args.replicas.len() {
        return Err(format!(
            "{} --replica but {} --replica-pid: give one process id per replica, in order",
            args.replicas.len(),
            args.pids.len()
        ));
    }
    if args.topics == 0 || args.sample_every.is_zero() || args.churn_every.is_zero() {
        return Err("--topics, --sample-every and --churn-every must be positive".into());
    }
    let plan = Plan {
        sessions: args.sessions,
        push_streams: args.push_streams,
        pollers: args.pollers,
    };
    if plan.per_replica() == 0 {
        return Err(
            "no long-lived subscriber: give --sessions, --push-streams or --pollers".into(),
        );
    }
    let warmup = args
        .warmup
        .unwrap_or_else(|| args.duration.mul_f64(0.15).max(Duration::from_secs(45)));
    if warmup >= args.duration {
        return Err(format!(
            "the warm-up ({warmup:?}) leaves nothing of --duration {:?} to judge",
            args.duration
        ));
    }
    let endpoints = args
        .replicas
        .iter()
        .map(|u| Endpoint::parse(u))
        .collect::<Result<Vec<_>, _>>()?;
    let outcome = run(&args, &endpoints, plan, warmup).await?;
    report::finish(&args, plan, warmup, &outcome)
}

/// What a run leaves to judge.
struct Outcome {
    samples: Vec<Sample>,
    tallies: Tallies,
    subscribers: Vec<(subscribers::Kind, usize, u64)>,
    attempted: u64,
}

/// Sets up the long-lived subscribers, then publishes, churns and samples for the duration;
/// then lets the subscribers catch up and stops everything.
async fn run(
    args: &SoakArgs,
    endpoints: &[Endpoint],
    plan: Plan,
    warmup: Duration,
) -> Result<Outcome, String> {
    let start = Instant::now();
    let tallies = Tallies {
        publish: Arc::new(PublishTally::default()),
        subscribers: Arc::new(Tally::new()),
        churn: Arc::new(churn::ChurnTally::default()),
    };
    let (stop_subscribers, subscribers_stop) = watch::channel(false);
    let (stop_load, load_stop) = watch::channel(false);
    let subs = subscribers::start(
        endpoints,
        plan,
        PATTERN,
        start,
        &tallies.subscribers,
        &subscribers_stop,
    )
    .await?;
    tokio::time::sleep(SETTLE).await;
    let mut load = Vec::new();
    for endpoint in endpoints {
        let churn = churn::Churn {
            endpoint: endpoint.clone(),
            pattern: PATTERN.to_string(),
            every: args.churn_every,
            events: args.churn_events,
        };
        load.push(churn::spawn(
            churn,
            tallies.churn.clone(),
            load_stop.clone(),
        ));
    }
    let publishers = publishers(endpoints, &args.token, args.topics);
    let tally = tallies.publish.clone();
    load.push(tokio::spawn(publish(
        publishers, args.rate, start, load_stop, tally,
    )));

    let mut sampler = Sampler::new(args, subs.len() as u64).await;
    let samples = sampler.run(args.duration, warmup, &tallies).await;

    let _ = stop_load.send(true);
    for task in load {
        let _ = task.await;
    }
    let attempted = tallies.publish.attempted.load(Ordering::Relaxed);
    catch_up(&subs, attempted, args.drain_timeout).await;
    let _ = stop_subscribers.send(true);
    let mut seen = Vec::with_capacity(subs.len());
    for s in subs {
        seen.push((s.kind, s.replica, s.received.load(Ordering::Relaxed)));
        s.join().await;
    }
    Ok(Outcome {
        samples,
        tallies,
        subscribers: seen,
        attempted,
    })
}

/// Waits until every long-lived subscriber received `attempted` events, or `timeout`.
async fn catch_up(subs: &[Subscriber], attempted: u64, timeout: Duration) {
    let until = Instant::now() + timeout;
    while Instant::now() < until
        && subs
            .iter()
            .any(|s| s.received.load(Ordering::Relaxed) < attempted)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A publisher per replica and topic, `[replica][topic]`.
fn publishers(endpoints: &[Endpoint], token: &str, topics: usize) -> Vec<Vec<Publisher>> {
    endpoints
        .iter()
        .map(|e| {
            (0..topics)
                .map(|t| Publisher {
                    endpoint: e.with_path("/publish"),
                    token: token.to_string(),
                    topic: format!("soak/t{t}"),
                    pad: 0,
                })
                .collect()
        })
        .collect()
}

/// Publishes at `rate` until told to stop: event `seq` through replica `seq % replicas`, on
/// topic `(seq / replicas) % topics` (so that every topic goes through every replica), one
/// keep-alive connection per replica, each publish answered before the next is sent.
async fn publish(
    publishers: Vec<Vec<Publisher>>,
    rate: f64,
    start: Instant,
    mut stop: watch::Receiver<bool>,
    tally: Arc<PublishTally>,
) {
    let replicas = publishers.len() as u64;
    let topics = publishers.first().map_or(1, Vec::len) as u64;
    let mut conns: Vec<Option<Conn>> = publishers.iter().map(|_| None).collect();
    let interval = Duration::from_secs_f64(1.0 / rate);
    let first = Instant::now();
    for seq in 0u64.. {
        let due = first + interval.mul_f64(seq as f64);
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            _ = tokio::time::sleep_until(due.into()) => {}
        }
        let (r, t) = (
            (seq % replicas) as usize,
            ((seq / replicas) % topics) as usize,
        );
        let p = &publishers[r][t];
        tally.attempted.store(seq + 1, Ordering::Relaxed);
        let mut conn = match conns[r].take() {
            Some(c) => c,
            None => match Conn::connect(&p.endpoint).await {
                Ok(c) => c,
                Err(e) => {
                    tally.errors.fail(e);
                    continue;
                }
            },
        };
        let sent = start.elapsed().as_nanos() as u64;
        match p.publish_one(&mut conn, seq as usize, sent).await {
            Ok(_) => {
                tally.acked.fetch_add(1, Ordering::Relaxed);
                conns[r] = Some(conn);
            }
            // The connection may be broken: the next publish through this replica opens one.
            Err(e) => tally.errors.fail(e),
        }
    }
}

/// Samples the replicas, Redis and the tallies.
struct Sampler {
    pids: Vec<u32>,
    redis: Option<redis::aio::MultiplexedConnection>,
    long_lived: u64,
    every: Duration,
    last: (u64, u64, u64),
}

impl Sampler {
    async fn new(args: &SoakArgs, long_lived: u64) -> Self {
        let redis = match &args.redis_url {
            Some(url) => match redis::Client::open(url.as_str()) {
                Ok(client) => client.get_multiplexed_async_connection().await.ok(),
                Err(_) => None,
            },
            None => None,
        };
        if args.redis_url.is_some() && redis.is_none() {
            eprintln!("soak: cannot reach Redis at the --redis-url given: no Redis figures");
        }
        Sampler {
            pids: args.pids.clone(),
            redis,
            long_lived,
            every: args.sample_every,
            last: (0, 0, 0),
        }
    }

    /// Samples every `every` until `duration` has passed since the first publish, printing
    /// each row to stderr as it comes.
    async fn run(&mut self, duration: Duration, warmup: Duration, t: &Tallies) -> Vec<Sample> {
        let first = Instant::now();
        let mut samples = Vec::new();
        eprint!("{}", verdict::header(self.pids.len()));
        for n in 1u32.. {
            let due = (self.every * n).min(duration);
            tokio::time::sleep_until((first + due).into()).await;
            let sample = self.sample(due.as_secs_f64(), due <= warmup, t).await;
            eprintln!("{}", verdict::row(&sample));
            samples.push(sample);
            if due >= duration {
                break;
            }
        }
        samples
    }

    async fn sample(&mut self, t_secs: f64, warmup: bool, t: &Tallies) -> Sample {
        let replicas = self.pids.iter().map(|&pid| replica_sample(pid)).collect();
        let (used, keys) = self.redis().await;
        let published = t.publish.acked.load(Ordering::Relaxed);
        let delivered = t.subscribers.delivered.load(Ordering::Relaxed);
        let churned = t.churn.total();
        let (p0, d0, c0) = std::mem::replace(&mut self.last, (published, delivered, churned));
        Sample {
            t_secs,
            warmup,
            replicas,
            redis_used: used,
            redis_keys: keys,
            published: published - p0,
            delivered: delivered - d0,
            expected: (published - p0) * self.long_lived,
            latency: t.subscribers.take_window(),
            churn: churned - c0,
            errors: t.errors(),
        }
    }

    /// Redis's `used_memory` and `DBSIZE`.
    async fn redis(&mut self) -> (Option<u64>, Option<u64>) {
        let Some(conn) = self.redis.as_mut() else {
            return (None, None);
        };
        let info: Option<String> = redis::cmd("INFO")
            .arg("memory")
            .query_async(conn)
            .await
            .ok();
        let used = info.and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("used_memory:"))
                .and_then(|v| v.trim().parse().ok())
        });
        let keys = redis::cmd("DBSIZE").query_async(conn).await.ok();
        (used, keys)
    }
}

/// A replica's RSS, open fds and CPU time, from `/proc/PID`.
fn replica_sample(pid: u32) -> ReplicaSample {
    let proc = ProcSample::read(Some(pid));
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|d| d.count() as u64);
    ReplicaSample {
        rss_kib: proc.map(|p| p.rss_kib),
        fds,
        cpu_secs: proc.map(|p| p.cpu_secs),
    }
}
