//! `redis-store`: the Redis event store of `mcpbus-redis` under append and replay load, measured
//! the way `bench/persist/bench_persist.py` measures the Python `mcp-persist` Redis store, so that
//! `bench/redis.sh` can put both side by side against one Redis server.
//!
//! Phases, each on the same Redis, in this order:
//!
//! 1. `append`: one writer appends N messages (a JSON-RPC notification of `--message-bytes`
//!    bytes, its sequence number inside) to one stream of one session, one at a time; appends
//!    per second and the latency of each append.
//! 2. `replay`: reads back the R events after the event N − R of that stream
//!    (`read_after(session, stream, Some(id), R)`, i.e. the newest R), `--replays` times after
//!    a few unmeasured ones; the latency of each read. Every read is checked: exactly those R
//!    events, in order, with the bytes appended.
//! 3. `append_concurrent` (with `--writers` above 0): W writers, each its own session and
//!    stream, append N messages in all at once; appends per second.
//!
//! After each append phase the stream is read back whole and compared with what was appended
//! (ids in the order returned, bytes). Per phase the CPU time of this process
//! (`/proc/self/task/*/schedstat`) and of the Redis server (`INFO cpu`) is reported per
//! operation, and after phase 1 the growth of Redis's `used_memory`.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use hdrhistogram::Histogram;
use mcpbus::store::EventStore;
use mcpbus_redis::{RedisBackend, RedisConfig};
use serde_json::{Value, json};

use crate::stats::{Latency, fmt_us, latency_histogram, median, record, round, round2};

/// The stream every session appends to (a GET stream's name does not matter to the store).
const STREAM: &str = "s";

/// Settings of the `redis-store` scenario.
#[derive(Debug, Clone)]
pub(crate) struct RedisStoreConfig {
    /// The Redis server, e.g. `redis://127.0.0.1:6379`.
    pub redis_url: String,
    /// The key prefix (deployment name) of the store.
    pub prefix: String,
    /// Messages appended in phase 1, and in all by the writers of phase 3.
    pub appends: usize,
    /// Concurrent writers of phase 3 (0: no phase 3).
    pub writers: usize,
    /// Events read back per replay.
    pub replay_events: usize,
    /// Measured replays.
    pub replays: usize,
    /// Unmeasured replays before them.
    pub warmup_replays: usize,
    /// Size of each message, bytes.
    pub message_bytes: usize,
}

/// The JSON-RPC notification appended as message `seq`, padded to `size` bytes when it is
/// shorter. `bench_persist.py` builds the very same bytes.
pub(crate) fn message(seq: usize, size: usize) -> String {
    let head = format!(
        r#"{{"jsonrpc":"2.0","method":"notifications/message","params":{{"level":"info","logger":"bench","data":{{"seq":{seq},"text":""#
    );
    let tail = r#""}}}"#;
    let pad = size.saturating_sub(head.len() + tail.len());
    format!("{head}{}{tail}", "x".repeat(pad))
}

/// What one phase measured.
#[derive(Debug, Clone)]
pub(crate) struct Phase {
    /// Operations done (appends, or replays).
    pub ops: usize,
    /// Concurrent callers.
    pub writers: usize,
    /// Wall time, seconds.
    pub secs: f64,
    /// Latency of each operation.
    pub latency: Latency,
    /// CPU time of this process during the phase, seconds.
    pub client_cpu_secs: Option<f64>,
    /// CPU time of the Redis server during the phase, seconds.
    pub redis_cpu_secs: Option<f64>,
}

impl Phase {
    /// Operations per second.
    pub(crate) fn per_sec(&self) -> f64 {
        self.ops as f64 / self.secs.max(1e-9)
    }

    fn cpu_us_per_op(&self, secs: Option<f64>) -> Option<f64> {
        secs.map(|s| round(s * 1e6 / self.ops.max(1) as f64))
    }

    fn to_json(&self) -> Value {
        json!({
            "ops": self.ops,
            "writers": self.writers,
            "secs": round2(self.secs),
            "per_s": round(self.per_sec()),
            "latency": self.latency.to_json(),
            "client_cpu_us_per_op": self.cpu_us_per_op(self.client_cpu_secs),
            "redis_cpu_us_per_op": self.cpu_us_per_op(self.redis_cpu_secs),
        })
    }
}

/// The outcome of a `redis-store` run.
#[derive(Debug, Clone)]
pub(crate) struct RedisStoreReport {
    /// The Redis server's version.
    pub redis_version: Option<String>,
    /// Phase 1.
    pub append: Phase,
    /// Phase 2.
    pub replay: Phase,
    /// Phase 3, when run.
    pub append_concurrent: Option<Phase>,
    /// Events of the phase-1 stream still kept (the store trims to its bound).
    pub kept_events: usize,
    /// Growth of Redis's `used_memory` over phase 1, bytes.
    pub redis_memory_bytes: Option<i64>,
    /// Reads whose result was not what was appended (wrong events, order or bytes) or failed.
    pub errors: usize,
    /// The first of them.
    pub first_error: Option<String>,
}

/// Samples CPU time: this process's and the Redis server's.
struct Probe {
    conn: redis::aio::MultiplexedConnection,
}

impl Probe {
    async fn connect(url: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("invalid Redis URL: {e}"))?;
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| format!("cannot connect to Redis at {url}: {e}"))?;
        Ok(Probe { conn })
    }

    /// One field of `INFO section`.
    async fn info(&mut self, section: &str, field: &str) -> Option<String> {
        let text: String = redis::cmd("INFO")
            .arg(section)
            .query_async(&mut self.conn)
            .await
            .ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .map(|v| v.trim().to_string())
    }

    async fn used_memory(&mut self) -> Option<i64> {
        self.info("memory", "used_memory").await?.parse().ok()
    }

    async fn redis_cpu(&mut self) -> Option<f64> {
        let sys: f64 = self.info("cpu", "used_cpu_sys").await?.parse().ok()?;
        let user: f64 = self.info("cpu", "used_cpu_user").await?.parse().ok()?;
        Some(sys + user)
    }

    /// (this process, Redis) CPU seconds so far.
    async fn cpu(&mut self) -> (Option<f64>, Option<f64>) {
        (process_cpu_secs(), self.redis_cpu().await)
    }
}

/// CPU time of every thread of this process, seconds (nanosecond resolution, unlike `stat`).
fn process_cpu_secs() -> Option<f64> {
    let mut ns: u64 = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path().join("schedstat");
        let text = std::fs::read_to_string(path).ok()?;
        ns += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 / 1e9)
}

fn delta(
    before: (Option<f64>, Option<f64>),
    after: (Option<f64>, Option<f64>),
) -> [Option<f64>; 2] {
    [
        before.0.zip(after.0).map(|(b, a)| a - b),
        before.1.zip(after.1).map(|(b, a)| a - b),
    ]
}

/// Counts and remembers mismatches.
#[derive(Default)]
struct Errors {
    count: usize,
    first: Option<String>,
}

impl Errors {
    fn add(&mut self, what: String) {
        self.count += 1;
        if self.first.is_none() {
            eprintln!("redis-store: {what}");
            self.first = Some(what);
        }
    }
}

/// Checks that `got` (from `read_after`) is exactly `ids` and `messages`, in order.
fn check_read(
    what: &str,
    got: &[mcpbus::store::StoredEvent],
    ids: &[String],
    messages: &[Bytes],
    errors: &mut Errors,
) {
    if got.len() != ids.len() {
        errors.add(format!(
            "{what}: {} events read, {} expected",
            got.len(),
            ids.len()
        ));
        return;
    }
    for (i, (event, (id, message))) in got.iter().zip(ids.iter().zip(messages)).enumerate() {
        if event.id != *id {
            errors.add(format!(
                "{what}: event {i} has id {:?}, expected {id:?} (as appended)",
                event.id
            ));
            return;
        }
        if event.message.as_ref() != Some(message) {
            errors.add(format!(
                "{what}: event {i} ({id}) carries other bytes than were appended"
            ));
            return;
        }
    }
}

/// Appends `messages` to `session` one at a time; their ids and the latency of each.
async fn append_all(
    store: &dyn EventStore,
    session: &str,
    messages: &[Bytes],
    histogram: &mut Histogram<u64>,
) -> Result<Vec<String>, String> {
    let mut ids = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let t = Instant::now();
        let id = store
            .append(session, STREAM, Some(m.clone()))
            .await
            .map_err(|e| {
                format!(
                    "append {i} of {} to stream {STREAM:?} of session {session:?} failed: {e}",
                    messages.len()
                )
            })?;
        record(histogram, t.elapsed().as_nanos() as u64);
        ids.push(id);
    }
    Ok(ids)
}

/// Reads a whole stream back and compares it with the newest `kept` of what was appended.
async fn check_stream(
    store: &dyn EventStore,
    session: &str,
    ids: &[String],
    messages: &[Bytes],
    kept: usize,
    errors: &mut Errors,
) {
    let what = format!("reading back stream {STREAM:?} of session {session:?}");
    match store.read_after(session, STREAM, None, ids.len()).await {
        Ok(got) => {
            let from = ids.len() - kept.min(ids.len());
            check_read(&what, &got, &ids[from..], &messages[from..], errors);
        }
        Err(e) => errors.add(format!("{what}: {e}")),
    }
}

/// Runs the scenario.
pub(crate) async fn run(config: &RedisStoreConfig) -> Result<RedisStoreReport, String> {
    let store_config = RedisConfig::new(config.redis_url.clone()).prefix(config.prefix.clone());
    let max_kept = store_config.max_events_per_stream;
    let (n, r) = (config.appends, config.replay_events);
    if r == 0 || r >= n || r >= max_kept {
        return Err(format!(
            "--replay-events must be at least 1 and below --appends ({n}) and the store's bound ({max_kept})"
        ));
    }
    let backend = RedisBackend::connect(store_config)
        .await
        .map_err(|e| e.to_string())?;
    let store = backend.event_store();
    let mut probe = Probe::connect(&config.redis_url).await?;
    let redis_version = probe.info("server", "redis_version").await;
    let mut errors = Errors::default();
    let tag = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    );

    // Phase 1: one writer, one stream.
    let session = format!("seq-{tag}");
    let messages: Vec<Bytes> = (0..n)
        .map(|i| Bytes::from(message(i, config.message_bytes)))
        .collect();
    let memory_before = probe.used_memory().await;
    let cpu_before = probe.cpu().await;
    let mut histogram = latency_histogram();
    let start = Instant::now();
    let ids = append_all(store.as_ref(), &session, &messages, &mut histogram).await?;
    let secs = start.elapsed().as_secs_f64();
    let [client_cpu_secs, redis_cpu_secs] = delta(cpu_before, probe.cpu().await);
    let memory_after = probe.used_memory().await;
    let append = Phase {
        ops: n,
        writers: 1,
        secs,
        latency: Latency::of(&histogram),
        client_cpu_secs,
        redis_cpu_secs,
    };
    let kept_events = n.min(max_kept);
    check_stream(
        store.as_ref(),
        &session,
        &ids,
        &messages,
        kept_events,
        &mut errors,
    )
    .await;

    // Phase 2: replay the newest r events after the one before them.
    let anchor = &ids[n - r - 1];
    let (want_ids, want_messages) = (&ids[n - r..], &messages[n - r..]);
    let what = format!("replay after {anchor:?}");
    for _ in 0..config.warmup_replays {
        if let Err(e) = store.read_after(&session, STREAM, Some(anchor), r).await {
            errors.add(format!("{what}: {e}"));
        }
    }
    let mut histogram = latency_histogram();
    let cpu_before = probe.cpu().await;
    let start = Instant::now();
    for _ in 0..config.replays {
        let t = Instant::now();
        let got = store.read_after(&session, STREAM, Some(anchor), r).await;
        record(&mut histogram, t.elapsed().as_nanos() as u64);
        match got {
            Ok(got) => check_read(&what, &got, want_ids, want_messages, &mut errors),
            Err(e) => errors.add(format!("{what}: {e}")),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let [client_cpu_secs, redis_cpu_secs] = delta(cpu_before, probe.cpu().await);
    let replay = Phase {
        ops: config.replays,
        writers: 1,
        secs,
        latency: Latency::of(&histogram),
        client_cpu_secs,
        redis_cpu_secs,
    };

    // Phase 3: W writers at once, each its own session.
    let append_concurrent = if config.writers > 0 {
        Some(concurrent(config, &store, &tag, max_kept, &mut probe, &mut errors).await?)
    } else {
        None
    };
    store.remove_session(&session).await;

    Ok(RedisStoreReport {
        redis_version,
        append,
        replay,
        append_concurrent,
        kept_events,
        redis_memory_bytes: memory_before.zip(memory_after).map(|(b, a)| a - b),
        errors: errors.count,
        first_error: errors.first,
    })
}

/// Phase 3.
async fn concurrent(
    config: &RedisStoreConfig,
    store: &Arc<dyn EventStore>,
    tag: &str,
    max_kept: usize,
    probe: &mut Probe,
    errors: &mut Errors,
) -> Result<Phase, String> {
    let writers = config.writers.clamp(1, config.appends);
    let barrier = Arc::new(tokio::sync::Barrier::new(writers + 1));
    let mut tasks = Vec::with_capacity(writers);
    for w in 0..writers {
        let count = config.appends / writers + usize::from(w < config.appends % writers);
        let messages: Vec<Bytes> = (0..count)
            .map(|i| Bytes::from(message(i, config.message_bytes)))
            .collect();
        let (store, barrier, session) = (store.clone(), barrier.clone(), format!("w{w}-{tag}"));
        tasks.push(tokio::spawn(async move {
            let mut histogram = latency_histogram();
            barrier.wait().await;
            let ids = append_all(store.as_ref(), &session, &messages, &mut histogram).await;
            (session, messages, ids, histogram)
        }));
    }
    let cpu_before = probe.cpu().await;
    barrier.wait().await;
    let start = Instant::now();
    let mut done = Vec::with_capacity(writers);
    for task in tasks {
        done.push(task.await.map_err(|e| format!("a writer panicked: {e}"))?);
    }
    let secs = start.elapsed().as_secs_f64();
    let [client_cpu_secs, redis_cpu_secs] = delta(cpu_before, probe.cpu().await);
    let mut histogram = latency_histogram();
    for (session, messages, ids, h) in done {
        let ids = ids?;
        let _ = histogram.add(&h);
        let kept = ids.len().min(max_kept);
        check_stream(store.as_ref(), &session, &ids, &messages, kept, errors).await;
        store.remove_session(&session).await;
    }
    Ok(Phase {
        ops: config.appends,
        writers,
        secs,
        latency: Latency::of(&histogram),
        client_cpu_secs,
        redis_cpu_secs,
    })
}

impl RedisStoreReport {
    /// The JSON line of this run (`bench_persist.py` prints the same shape).
    pub(crate) fn to_json(&self, label: &str, config: &RedisStoreConfig) -> Value {
        json!({
            "scenario": "redis-store",
            "label": label,
            "store": concat!("mcpbus-redis ", env!("CARGO_PKG_VERSION")),
            "redis_version": self.redis_version,
            "message_bytes": config.message_bytes,
            "appends": config.appends,
            "replay_events": config.replay_events,
            "append": self.append.to_json(),
            "replay": self.replay.to_json(),
            "append_concurrent": self.append_concurrent.as_ref().map(Phase::to_json),
            "kept_events": self.kept_events,
            "redis_memory_bytes": self.redis_memory_bytes,
            "errors": self.errors,
            "first_error": self.first_error,
        })
    }

    /// A human-readable summary.
    pub(crate) fn to_table(&self, label: &str, config: &RedisStoreConfig) -> String {
        let mut out = format!(
            "redis-store: {label} on Redis {}, {}-byte messages\n",
            self.redis_version.as_deref().unwrap_or("?"),
            config.message_bytes
        );
        let mut phase = |name: String, p: &Phase, unit: &str| {
            out += &format!(
                "  {name:<28} {:>9.0} {unit}/s   p50 {}  p99 {}  CPU/op: client {}, Redis {}\n",
                p.per_sec(),
                fmt_us(p.latency.p50_us),
                fmt_us(p.latency.p99_us),
                cpu_text(p.client_cpu_secs, p.ops),
                cpu_text(p.redis_cpu_secs, p.ops),
            );
        };
        phase(
            format!("append, 1 writer ({})", config.appends),
            &self.append,
            "appends",
        );
        phase(
            format!(
                "replay {} events ({}×)",
                config.replay_events, config.replays
            ),
            &self.replay,
            "replays",
        );
        if let Some(c) = &self.append_concurrent {
            phase(format!("append, {} writers", c.writers), c, "appends");
        }
        out += &format!(
            "  Redis memory after phase 1  {} ({} events kept)\n  errors                      {}\n",
            self.redis_memory_bytes
                .map_or("?".into(), |b| format!("{:.2} MiB", b as f64 / 1048576.0)),
            self.kept_events,
            self.errors
        );
        out
    }
}

fn cpu_text(secs: Option<f64>, ops: usize) -> String {
    secs.map_or("?".into(), |s| fmt_us(s * 1e6 / ops.max(1) as f64))
}

/// One compared figure: its name, where it is in a run's JSON line, and how it is shown.
struct Figure {
    name: &'static str,
    pointer: &'static str,
    show: fn(f64) -> String,
}

fn rate(v: f64) -> String {
    format!("{v:.0}")
}

fn mib(v: f64) -> String {
    format!("{:.2} MiB", v / 1048576.0)
}

const fn figure(name: &'static str, pointer: &'static str, show: fn(f64) -> String) -> Figure {
    Figure {
        name,
        pointer,
        show,
    }
}

const FIGURES: &[Figure] = &[
    figure("appends/s, 1 writer", "/append/per_s", rate),
    figure("append p50", "/append/latency/p50_us", fmt_us),
    figure("append p99", "/append/latency/p99_us", fmt_us),
    figure(
        "client CPU / append",
        "/append/client_cpu_us_per_op",
        fmt_us,
    ),
    figure("Redis CPU / append", "/append/redis_cpu_us_per_op", fmt_us),
    figure(
        "appends/s, concurrent writers",
        "/append_concurrent/per_s",
        rate,
    ),
    figure(
        "concurrent append p99",
        "/append_concurrent/latency/p99_us",
        fmt_us,
    ),
    figure("replay p50", "/replay/latency/p50_us", fmt_us),
    figure("replay p99", "/replay/latency/p99_us", fmt_us),
    figure(
        "client CPU / replay",
        "/replay/client_cpu_us_per_op",
        fmt_us,
    ),
    figure("Redis CPU / replay", "/replay/redis_cpu_us_per_op", fmt_us),
    figure("Redis memory after the appends", "/redis_memory_bytes", mib),
];

fn runs(lines: &str) -> Vec<Value> {
    lines
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter(|v| v["scenario"] == "redis-store")
        .collect()
}

/// One row per `redis-store` run found in `lines`; empty when there is none.
pub(crate) fn render(lines: &str) -> String {
    let runs = runs(lines);
    if runs.is_empty() {
        return String::new();
    }
    let mut out = String::from("Redis event store: appends and replays\n\n| store |");
    for f in FIGURES {
        out += &format!(" {} |", f.name);
    }
    out += " errors |\n|---|";
    out += &"--:|".repeat(FIGURES.len() + 1);
    out += "\n";
    for r in &runs {
        out += &format!("| {} |", r["label"].as_str().unwrap_or("?"));
        for f in FIGURES {
            out += &format!(" {} |", show(r, f));
        }
        out += &format!(" {} |\n", r["errors"]);
    }
    out + "\n"
}

fn show(run: &Value, f: &Figure) -> String {
    run.pointer(f.pointer)
        .and_then(Value::as_f64)
        .map_or("–".into(), f.show)
}

/// The `redis-store` runs labelled `a` and `b` side by side, one figure a row: the median of
/// each figure over the runs of each label, and the ratio `a / b` of the medians; empty unless
/// both labels ran.
pub(crate) fn render_ratio(lines: &str, a: &str, b: &str) -> String {
    let runs = runs(lines);
    let of = |label: &str| -> Vec<&Value> { runs.iter().filter(|r| r["label"] == label).collect() };
    let (runs_a, runs_b) = (of(a), of(b));
    let Some(first) = runs_a.first() else {
        return String::new();
    };
    if runs_b.is_empty() {
        return String::new();
    }
    let writers = first
        .pointer("/append_concurrent/writers")
        .map_or("–".into(), Value::to_string);
    let mut out = format!(
        "Redis event store, {a} / {b}: {} appends of {} bytes, replays of {} events, {writers} \
         concurrent writers; median of {} run(s) of {a}, {} of {b}\n\n",
        first["appends"],
        first["message_bytes"],
        first["replay_events"],
        runs_a.len(),
        runs_b.len()
    );
    out += &format!("| figure | {a} | {b} | {a} / {b} |\n|---|--:|--:|--:|\n");
    for f in FIGURES {
        let (x, y) = (median(&runs_a, f.pointer), median(&runs_b, f.pointer));
        let ratio = match (x, y) {
            (Some(x), Some(y)) if y != 0.0 => format!("{:.2}×", x / y),
            _ => "–".into(),
        };
        let show = |v: Option<f64>| v.map_or("–".into(), f.show);
        out += &format!("| {} | {} | {} | {ratio} |\n", f.name, show(x), show(y));
    }
    let errors = |runs: &[&Value]| {
        runs.iter()
            .filter_map(|r| r["errors"].as_u64())
            .sum::<u64>()
    };
    out += &format!(
        "| errors (all runs) | {} | {} | |\n\n",
        errors(&runs_a),
        errors(&runs_b)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_the_asked_size_and_are_json() {
        let m = message(4999, 200);
        assert_eq!(m.len(), 200);
        let v: Value = serde_json::from_str(&m).unwrap();
        assert_eq!(v["params"]["data"]["seq"], 4999);
        assert_eq!(
            message(7, 0),
            r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","logger":"bench","data":{"seq":7,"text":""}}}"#
        );
    }

    #[test]
    fn runs_are_compared_figure_by_figure() {
        let lines = r#"{"scenario":"redis-store","label":"mcpbus","appends":5000,"message_bytes":200,"replay_events":100,"append":{"per_s":20000.0,"latency":{"p50_us":45.0,"p99_us":120.0}},"append_concurrent":{"writers":8,"per_s":50000.0},"replay":{"latency":{"p50_us":300.0,"p99_us":900.0}},"redis_memory_bytes":1048576,"errors":0}
{"scenario":"redis-store","label":"mcp-persist","appends":5000,"message_bytes":200,"replay_events":100,"append":{"per_s":5000.0,"latency":{"p50_us":180.0,"p99_us":400.0}},"append_concurrent":null,"replay":{"latency":{"p50_us":1500.0,"p99_us":3000.0}},"redis_memory_bytes":2097152,"errors":0}
"#;
        let out = render_ratio(lines, "mcpbus", "mcp-persist");
        assert!(
            out.contains("| appends/s, 1 writer | 20000 | 5000 | 4.00× |"),
            "{out}"
        );
        assert!(
            out.contains("| replay p50 | 300 µs | 1.50 ms | 0.20× |"),
            "{out}"
        );
        assert!(
            out.contains("| appends/s, concurrent writers | 50000 | – | – |"),
            "{out}"
        );
        assert!(
            out.contains("| Redis memory after the appends | 1.00 MiB | 2.00 MiB | 0.50× |"),
            "{out}"
        );
        assert!(
            render(lines).contains("| mcp-persist | 5000 | 180 µs | 400 µs |"),
            "{out}"
        );
        assert_eq!(render_ratio(lines, "mcpbus", "other"), "");
        let three = format!(
            "{lines}{}\n{}\n",
            lines.lines().next().unwrap().replace("20000.0", "10000.0"),
            lines.lines().next().unwrap().replace("20000.0", "30000.0")
        );
        let out = render_ratio(&three, "mcpbus", "mcp-persist");
        assert!(
            out.contains("median of 3 run(s) of mcpbus, 1 of mcp-persist"),
            "{out}"
        );
        assert!(
            out.contains("| appends/s, 1 writer | 20000 | 5000 | 4.00× |"),
            "{out}"
        );
        assert_eq!(render("{\"scenario\":\"rps\"}"), "");
    }
}
