//! `fanout`: publish → deliver latency to many subscribed sessions.
//!
//! N sessions each subscribe to one topic and hold their GET stream open (one connection each).
//! The generator then publishes events at a fixed rate through `POST /publish`, each carrying
//! its sequence number and its send time in nanoseconds since the run started. Publisher and
//! subscribers live in this one process, so they share one clock: a delivery's latency is its
//! arrival time (taken when the bytes arrive, before decoding) minus the send time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use mcpbus_proto::sse::SseDecoder;
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use crate::conn::{Conn, Endpoint};
use crate::publish::Publisher;
use crate::stats::{self, Latency, ProcSample, fmt_us, round, round2};
use crate::{events, mcp, webhooks};

/// Settings of the `fanout` scenario.
#[derive(Debug, Clone)]
pub(crate) struct FanoutConfig {
    /// The MCP endpoint.
    pub url: String,
    /// The publish endpoint (`POST` with a bearer token).
    pub publish_url: String,
    /// The bearer token of the publish endpoint.
    pub token: String,
    /// Subscribers: sessions, push streams or webhook subscriptions.
    pub sessions: usize,
    /// How they receive events.
    pub delivery: Delivery,
    /// Events published.
    pub events: usize,
    /// Events per second.
    pub rate: f64,
    /// The topic subscribed to and published on.
    pub topic: String,
    /// Subscribers set up at once.
    pub setup_concurrency: usize,
    /// How long to wait for outstanding deliveries after the last publish.
    pub drain_timeout: Duration,
    /// The server process, to sample its CPU time and memory.
    pub server_pid: Option<u32>,
    /// Stalled subscribers besides the measured ones (not measured; see `stalled.rs`).
    pub stalled: usize,
    /// Bytes of padding in each event's payload.
    pub payload_bytes: usize,
}

/// The outcome of a `fanout` run.
#[derive(Debug, Clone, Default)]
pub(crate) struct FanoutReport {
    /// Seconds to set up every session (initialize, subscribe, open the stream).
    pub setup_secs: f64,
    /// Events published successfully.
    pub published: usize,
    /// Failed publishes.
    pub publish_errors: usize,
    /// The first error seen, if any.
    pub first_error: Option<String>,
    /// The smallest `delivered` count a publish answer reported (sessions matched).
    pub min_matched: Option<u64>,
    /// Deliveries received.
    pub deliveries: u64,
    /// Deliveries expected: sessions × published events.
    pub expected: u64,
    /// Events received twice by one session.
    pub duplicates: u64,
    /// Streams that ended before the run did.
    pub streams_ended: usize,
    /// Deliveries per second, from the first publish to the last delivery.
    pub deliveries_per_sec: f64,
    /// Latency of each delivery.
    pub per_delivery: Latency,
    /// Per event: publish → delivery to the last session that received it.
    pub to_last: Latency,
    /// Round trip of the `POST /publish` requests.
    pub publish_rtt: Latency,
    /// The server before any session was set up.
    pub server_base: Option<ProcSample>,
    /// The server after setup, before publishing.
    pub server_idle: Option<ProcSample>,
    /// The server at the end.
    pub server_end: Option<ProcSample>,
    /// Server CPU seconds from the first publish to the end.
    pub server_cpu_secs: Option<f64>,
    /// This generator's CPU seconds over the same span.
    pub generator_cpu_secs: Option<f64>,
    /// The server's own count of events dropped from full session queues (`/healthz`).
    pub server_dropped: Option<u64>,
}

impl FanoutReport {
    /// Deliveries received over deliveries expected.
    pub(crate) fn fraction_delivered(&self) -> f64 {
        if self.expected == 0 {
            0.0
        } else {
            self.deliveries as f64 / self.expected as f64
        }
    }

    /// Server CPU microseconds per delivery while publishing.
    pub(crate) fn server_cpu_us_per_delivery(&self) -> Option<f64> {
        let cpu = self.server_cpu_secs?;
        (self.deliveries > 0).then(|| cpu * 1e6 / self.deliveries as f64)
    }

    /// Growth of the server's RSS from before setup to all sessions idle, per session (KiB).
    pub(crate) fn server_rss_kib_per_idle_session(&self, sessions: usize) -> Option<f64> {
        let (base, idle) = (self.server_base?, self.server_idle?);
        (sessions > 0).then(|| (idle.rss_kib as f64 - base.rss_kib as f64) / sessions as f64)
    }
}

/// What one subscriber saw: arrival time (ns since start, 0 = never) per sequence number.
pub(crate) struct StreamResult {
    /// Arrival time per sequence number.
    pub arrivals: Vec<u64>,
    /// Events received more than once.
    pub duplicates: u64,
    /// Whether the stream ended before the run did.
    pub ended: bool,
}

impl StreamResult {
    /// Nothing received yet, out of `events`.
    pub(crate) fn new(events: usize) -> Self {
        StreamResult {
            arrivals: vec![0; events],
            duplicates: 0,
            ended: false,
        }
    }
}

/// Counts sessions that received every event, and wakes the waiter when all have.
#[derive(Default)]
pub(crate) struct Completion {
    complete: AtomicUsize,
    notify: Notify,
}

impl Completion {
    /// Records that one more subscriber has received every event.
    pub(crate) fn one_done(&self) {
        self.complete.fetch_add(1, Ordering::AcqRel);
        self.notify.notify_one();
    }

    /// Waits until `everyone` subscribers have received every event, or `timeout`.
    pub(crate) async fn wait(&self, everyone: usize, timeout: Duration) {
        let drain = tokio::time::sleep(timeout);
        tokio::pin!(drain);
        loop {
            let notified = self.notify.notified();
            if self.complete.load(Ordering::Acquire) >= everyone {
                break;
            }
            tokio::select! {
                _ = notified => {}
                _ = &mut drain => break,
            }
        }
    }
}

/// How the subscribers of a fan-out receive events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Delivery {
    /// A handshake-era session each, subscribed with `events/subscribe`, events on its GET
    /// stream (`events/emit`).
    GetStream,
    /// A 2026-07-28 push stream each (`events/stream`, SEP-3415): the POST's SSE answer.
    PushStream,
    /// A SEP-3415 webhook subscription each, delivered to a receiver in this process (the
    /// `webhooks` scenario).
    #[value(skip)]
    Webhook,
    /// An MQTT client each (the Mosquitto peer, `fanout-mqtt`).
    #[value(skip)]
    Mqtt,
}

impl Delivery {
    /// The name in result lines.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Delivery::GetStream => "get-stream",
            Delivery::PushStream => "push-stream",
            Delivery::Webhook => "webhook",
            Delivery::Mqtt => "mqtt",
        }
    }
}

/// What a run measures against, set up before publishing: the clock, the server's memory
/// before setup, the stop signal of the readers and the count of subscribers done.
pub(crate) struct Run {
    /// When the run started: arrival and send times are nanoseconds since.
    pub start: Instant,
    /// The server before any subscriber was set up.
    pub server_base: Option<ProcSample>,
    /// Tells the readers to stop.
    pub stop: watch::Sender<bool>,
    /// Subscribers that received every event.
    pub completion: Arc<Completion>,
}

impl Run {
    /// Starts the clock; samples the server.
    pub(crate) fn start(server_pid: Option<u32>) -> (Run, watch::Receiver<bool>) {
        let server_base = server_pid.and_then(|p| ProcSample::read(Some(p)));
        let (stop, stop_rx) = watch::channel(false);
        let run = Run {
            start: Instant::now(),
            server_base,
            stop,
            completion: Arc::new(Completion::default()),
        };
        (run, stop_rx)
    }
}

/// Where what the subscribers saw is collected.
pub(crate) enum Subscribers {
    /// One reader task per stream.
    Streams(Vec<tokio::task::JoinHandle<StreamResult>>),
    /// The webhook receiver, one result per subscription.
    Webhooks(webhooks::Receiver),
}

impl Subscribers {
    /// What every subscriber saw, once the readers were told to stop.
    async fn results(self) -> Result<Vec<StreamResult>, String> {
        match self {
            Subscribers::Streams(readers) => {
                let mut results = Vec::with_capacity(readers.len());
                for reader in readers {
                    results.push(reader.await.map_err(|e| e.to_string())?);
                }
                Ok(results)
            }
            Subscribers::Webhooks(receiver) => Ok(receiver.results()),
        }
    }
}

/// Runs the scenario with streams (a GET stream or a push stream per subscriber).
pub(crate) async fn run(config: &FanoutConfig) -> Result<FanoutReport, String> {
    if config.sessions == 0 || config.events == 0 {
        return Err("--sessions and --events must be at least 1".into());
    }
    let push = match config.delivery {
        Delivery::GetStream => false,
        Delivery::PushStream => true,
        Delivery::Webhook | Delivery::Mqtt => {
            return Err("webhook and MQTT fan-outs are scenarios of their own".into());
        }
    };
    check_open_files(config.sessions + config.setup_concurrency)?;
    let endpoint = Endpoint::parse(&config.url)?;
    let (run, stop_rx) = Run::start(config.server_pid);
    let (events, start, completion) = (config.events, run.start, run.completion.clone());
    let reader = move |conn, body| {
        tokio::spawn(read_stream(
            conn,
            body,
            events,
            start,
            stop_rx.clone(),
            completion.clone(),
        ))
    };
    let (readers, setup_error) = open_streams(
        &endpoint,
        &config.topic,
        push,
        config.sessions,
        config.setup_concurrency,
        reader,
    )
    .await;
    if let Some(e) = setup_error {
        let _ = run.stop.send(true);
        return Err(format!("subscriber setup failed: {e}"));
    }
    // Held, unread, until the run is measured.
    let _stalled = match crate::stalled::open(&endpoint, &config.topic, push, config.stalled).await
    {
        Ok(stalled) => stalled,
        Err(e) => {
            let _ = run.stop.send(true);
            return Err(format!("stalled subscriber setup failed: {e}"));
        }
    };
    measure(config, run, Subscribers::Streams(readers)).await
}

/// Once every subscriber is set up: publishes the events, waits for their delivery (or the
/// drain timeout), samples the server and this process, and merges what the subscribers saw.
pub(crate) async fn measure(
    config: &FanoutConfig,
    run: Run,
    subscribers: Subscribers,
) -> Result<FanoutReport, String> {
    let mut report = FanoutReport {
        setup_secs: run.start.elapsed().as_secs_f64(),
        server_base: run.server_base,
        ..FanoutReport::default()
    };
    // Let the last streams settle before the clock that matters starts.
    tokio::time::sleep(Duration::from_millis(200)).await;
    report.server_idle = config.server_pid.and_then(|p| ProcSample::read(Some(p)));
    let me_before = ProcSample::read(None);
    let publish = Endpoint::parse(&config.publish_url)?;
    let p = Publisher {
        endpoint: publish.clone(),
        token: config.token.clone(),
        topic: config.topic.clone(),
        pad: config.payload_bytes,
    };
    let published = p
        .publish_at(config.events, config.rate, run.start, None)
        .await?;

    // Wait until every subscriber has everything, or the drain timeout.
    run.completion
        .wait(config.sessions, config.drain_timeout)
        .await;
    let _ = run.stop.send(true);
    let me_after = ProcSample::read(None);
    report.server_end = config.server_pid.and_then(|p| ProcSample::read(Some(p)));
    if let (Some(b), Some(a)) = (report.server_idle, report.server_end) {
        report.server_cpu_secs = Some(a.cpu_secs - b.cpu_secs);
    }
    if let (Some(b), Some(a)) = (me_before, me_after) {
        report.generator_cpu_secs = Some(a.cpu_secs - b.cpu_secs);
    }
    report.server_dropped = server_dropped(&publish).await;
    let results = subscribers.results().await?;
    report.published = published.count;
    report.publish_errors = published.errors;
    report.first_error = published.first_error;
    report.min_matched = published.min_matched;
    report.publish_rtt = published.rtt;
    merge(
        &mut report,
        results,
        &published.sent_at,
        &published.ok,
        config.sessions,
        published.first_ns,
    );
    Ok(report)
}

/// Merges what every subscriber saw into `report`: deliveries, duplicates, latencies and the
/// delivery rate. `sent_at` and `ok` are per sequence number (send time in ns since the start,
/// whether the publish succeeded); `first_ns` is when the first publish was sent.
pub(crate) fn merge(
    report: &mut FanoutReport,
    results: Vec<StreamResult>,
    sent_at: &[u64],
    ok: &[bool],
    sessions: usize,
    first_ns: u64,
) {
    let events = sent_at.len();
    let mut per_delivery = stats::latency_histogram();
    let mut last_arrival = vec![0u64; events];
    let mut latest = 0u64;
    for r in results {
        report.duplicates += r.duplicates;
        report.streams_ended += usize::from(r.ended);
        for (seq, &arrived) in r.arrivals.iter().enumerate() {
            if arrived == 0 || !ok[seq] {
                continue;
            }
            report.deliveries += 1;
            stats::record(&mut per_delivery, arrived.saturating_sub(sent_at[seq]));
            last_arrival[seq] = last_arrival[seq].max(arrived);
            latest = latest.max(arrived);
        }
    }
    let mut to_last = stats::latency_histogram();
    for seq in 0..events {
        if ok[seq] && last_arrival[seq] > 0 {
            stats::record(&mut to_last, last_arrival[seq] - sent_at[seq]);
        }
    }
    report.expected = (report.published * sessions) as u64;
    if latest > first_ns {
        report.deliveries_per_sec = report.deliveries as f64 / ((latest - first_ns) as f64 / 1e9);
    }
    report.per_delivery = Latency::of(&per_delivery);
    report.to_last = Latency::of(&to_last);
}

/// Opens one session that subscribes to `topic` (on `conn`) and holds its GET stream on a
/// connection of its own; returns that connection and the stream's body.
pub(crate) async fn open_subscribed_stream(
    conn: &mut Conn,
    endpoint: &Endpoint,
    topic: &str,
) -> Result<(Conn, Incoming), String> {
    let (_, stream_conn, body) = open_session_stream(conn, endpoint, topic).await?;
    Ok((stream_conn, body))
}

/// [`open_subscribed_stream`], also returning the session's id (to end it with `DELETE`).
pub(crate) async fn open_session_stream(
    conn: &mut Conn,
    endpoint: &Endpoint,
    topic: &str,
) -> Result<(String, Conn, Incoming), String> {
    let session = mcp::initialize(conn, endpoint).await?;
    mcp::subscribe(conn, endpoint, &session, topic).await?;
    let mut stream_conn = Conn::connect(endpoint).await?;
    let response = stream_conn
        .send(mcp::get_stream(endpoint, &session))
        .await?;
    let is_sse = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/event-stream"));
    if response.status() != StatusCode::OK || !is_sse {
        return Err(format!(
            "GET stream of session {session}: HTTP {}, not an SSE stream",
            response.status()
        ));
    }
    Ok((session, stream_conn, response.into_body()))
}

/// Waits for the setup workers: every reader they started, and the first error if any.
pub(crate) async fn join_setup<T>(
    setup: Vec<tokio::task::JoinHandle<Result<Vec<T>, String>>>,
) -> (Vec<T>, Option<String>) {
    let mut readers = Vec::new();
    let mut error = None;
    for task in setup {
        match task.await.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(r) => readers.extend(r),
            Err(e) => {
                error.get_or_insert(e);
            }
        }
    }
    (readers, error)
}

/// Opens `count` streams subscribed to `topic`, `concurrency` at a time, each on a connection
/// of its own: GET streams of handshake-era sessions (set up on a few shared connections), or
/// push streams (`push`). Hands each to `reader`; returns the readers and the first error.
pub(crate) async fn open_streams<T: Send + 'static>(
    endpoint: &Endpoint,
    topic: &str,
    push: bool,
    count: usize,
    concurrency: usize,
    reader: impl Fn(Conn, Incoming) -> tokio::task::JoinHandle<T> + Clone + Send + 'static,
) -> (Vec<tokio::task::JoinHandle<T>>, Option<String>) {
    let workers = concurrency.clamp(1, count.max(1));
    let mut setup = Vec::with_capacity(workers);
    for w in 0..workers {
        let n = count / workers + usize::from(w < count % workers);
        let (endpoint, topic, reader) = (endpoint.clone(), topic.to_string(), reader.clone());
        setup.push(tokio::spawn(async move {
            let mut conn = match push {
                false => Some(Conn::connect(&endpoint).await?),
                true => None,
            };
            let mut readers = Vec::with_capacity(n);
            for _ in 0..n {
                let (stream_conn, body) = match conn.as_mut() {
                    Some(c) => open_subscribed_stream(c, &endpoint, &topic).await?,
                    None => events::open_push_stream(&endpoint, &topic).await?,
                };
                readers.push(reader(stream_conn, body));
            }
            Ok::<_, String>(readers)
        }));
    }
    join_setup(setup).await
}

/// Reads one stream until told to stop; records when each bench event arrived.
async fn read_stream(
    conn: Conn,
    mut body: Incoming,
    events: usize,
    start: Instant,
    mut stop: watch::Receiver<bool>,
    completion: Arc<Completion>,
) -> StreamResult {
    // The connection stays open as long as its sender lives.
    let _conn = conn;
    let mut decoder = SseDecoder::new();
    let mut r = StreamResult::new(events);
    let mut received = 0usize;
    loop {
        let frame = tokio::select! {
            biased;
            _ = stop.changed() => break,
            frame = body.frame() => frame,
        };
        let now = (start.elapsed().as_nanos() as u64).max(1);
        let Some(Ok(frame)) = frame else {
            r.ended = !*stop.borrow();
            break;
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        for event in decoder.push(&data) {
            let Some(seq) = event_seq(&event.data) else {
                continue;
            };
            match r.arrivals.get_mut(seq) {
                Some(slot) if *slot == 0 => {
                    *slot = now;
                    received += 1;
                    if received == events {
                        completion.one_done();
                    }
                }
                Some(_) => r.duplicates += 1,
                None => {}
            }
        }
    }
    r
}

/// The sequence number of an `events/emit` message (or of the rmcp peer's
/// `notifications/resources/updated`, see [`mcp::event_payload`]), if `data` is one from this
/// bench.
pub(crate) fn event_seq(data: &str) -> Option<usize> {
    if data.is_empty() {
        return None;
    }
    let message: Value = serde_json::from_str(data).ok()?;
    let seq = mcp::event_payload(&message)?.get("seq")?.as_u64()?;
    usize::try_from(seq).ok()
}

/// Fails clearly when the open-files limit is too low for one connection per session.
pub(crate) fn check_open_files(connections: usize) -> Result<(), String> {
    let needed = connections as u64 + 64;
    match stats::open_files_limit() {
        Some(limit) if limit < needed => Err(format!(
            "the open-files limit (RLIMIT_NOFILE) is {limit}, but {connections} connections need \
             about {needed}: raise it with `ulimit -n {}` (the server needs as many)",
            needed.checked_next_power_of_two().unwrap_or(needed)
        )),
        _ => Ok(()),
    }
}

/// The `dropped` count of the server's `/healthz`, if it has one.
async fn server_dropped(publish: &Endpoint) -> Option<u64> {
    let health = publish.with_path("/healthz");
    let mut conn = Conn::connect(&health).await.ok()?;
    let request = health
        .request(Method::GET)
        .body(Full::new(Bytes::new()))
        .ok()?;
    let answer = conn.exchange(request).await.ok()?;
    let value: Value = serde_json::from_slice(&answer.body).ok()?;
    value.get("dropped")?.as_u64()
}

impl FanoutReport {
    /// The JSON line of this run.
    pub(crate) fn to_json(&self, label: &str, config: &FanoutConfig) -> Value {
        let sample =
            |s: &Option<ProcSample>| s.map(|s| json!({"rss_kib": s.rss_kib, "hwm_kib": s.hwm_kib}));
        json!({
            "scenario": "fanout",
            "label": label,
            "delivery": config.delivery.name(),
            "url": config.url,
            "sessions": config.sessions,
            "stalled": config.stalled,
            "payload_bytes": config.payload_bytes,
            "events": config.events,
            "rate_per_s": config.rate,
            "topic": config.topic,
            "setup_s": round2(self.setup_secs),
            "published": self.published,
            "publish_errors": self.publish_errors,
            "first_error": self.first_error,
            "min_matched": self.min_matched,
            "deliveries": self.deliveries,
            "expected": self.expected,
            "fraction_delivered": self.fraction_delivered(),
            "duplicates": self.duplicates,
            "streams_ended": self.streams_ended,
            "deliveries_per_s": round(self.deliveries_per_sec),
            "per_delivery": self.per_delivery.to_json(),
            "publish_to_last": self.to_last.to_json(),
            // MQTT publishes at QoS 0 have no answer, so no round trip.
            "publish_rtt": (self.publish_rtt.count > 0).then(|| self.publish_rtt.to_json()),
            "server_base": sample(&self.server_base),
            "server_idle": sample(&self.server_idle),
            "server_end": sample(&self.server_end),
            "server_cpu_s": self.server_cpu_secs.map(round2),
            "server_cpu_us_per_delivery": self.server_cpu_us_per_delivery().map(round2),
            "server_rss_kib_per_idle_session": self
                .server_rss_kib_per_idle_session(config.sessions)
                .map(round2),
            "generator_cpu_s": self.generator_cpu_secs.map(round2),
            "server_dropped": self.server_dropped,
        })
    }

    /// A human-readable summary.
    pub(crate) fn to_table(&self, label: &str, config: &FanoutConfig) -> String {
        let (d, l, p) = (&self.per_delivery, &self.to_last, &self.publish_rtt);
        let mut out = format!(
            "fanout: {label}, {} subscribers ({}) on {:?}, {} events at {}/s\n",
            config.sessions,
            config.delivery.name(),
            config.topic,
            config.events,
            config.rate
        );
        if config.stalled > 0 {
            out += &format!(
                "  stalled              {} more subscriber(s) that stop reading (not measured)\n",
                config.stalled
            );
        }
        out += &format!("  setup                {:.2} s\n", self.setup_secs);
        out += &format!(
            "  published / errors   {} / {}\n",
            self.published, self.publish_errors
        );
        out += &format!(
            "  delivered            {} of {} ({:.4}), {} duplicate(s), {} stream(s) ended early\n",
            self.deliveries,
            self.expected,
            self.fraction_delivered(),
            self.duplicates,
            self.streams_ended
        );
        out += &format!("  deliveries/s         {:.0}\n", self.deliveries_per_sec);
        out += &format!(
            "  per delivery         p50 {}  p90 {}  p99 {}  max {}\n",
            fmt_us(d.p50_us),
            fmt_us(d.p90_us),
            fmt_us(d.p99_us),
            fmt_us(d.max_us)
        );
        out += &format!(
            "  publish→last         p50 {}  p90 {}  p99 {}  max {}\n",
            fmt_us(l.p50_us),
            fmt_us(l.p90_us),
            fmt_us(l.p99_us),
            fmt_us(l.max_us)
        );
        if p.count > 0 {
            out += &format!(
                "  POST /publish RTT    p50 {}  p99 {}\n",
                fmt_us(p.p50_us),
                fmt_us(p.p99_us)
            );
        }
        if let (Some(idle), Some(end)) = (self.server_idle, self.server_end) {
            out += &format!(
                "  server RSS           {:.1} MiB with sessions idle, {:.1} MiB at end (peak {:.1} MiB)\n",
                idle.rss_kib as f64 / 1024.0,
                end.rss_kib as f64 / 1024.0,
                end.hwm_kib as f64 / 1024.0
            );
        }
        if let Some(per) = self.server_rss_kib_per_idle_session(config.sessions) {
            out +=
                &format!("  server RSS / session {per:.1} KiB (idle, over the RSS before setup)\n");
        }
        if let Some(cpu) = self.server_cpu_secs {
            out += &format!("  server CPU           {cpu:.2} s while publishing\n");
        }
        if let Some(per) = self.server_cpu_us_per_delivery() {
            out += &format!("  server CPU/delivery  {per:.2} µs\n");
        }
        if let Some(cpu) = self.generator_cpu_secs {
            out += &format!("  bench CPU            {cpu:.2} s while publishing\n");
        }
        if let Some(dropped) = self.server_dropped {
            out += &format!("  server dropped       {dropped}\n");
        }
        if let Some(e) = &self.first_error {
            out += &format!("  first error          {e}\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bench_events_have_a_sequence_number() {
        let emit = r#"{"jsonrpc":"2.0","method":"events/emit","params":{"topic":"build/status","eventId":"x","payload":{"seq":7,"t":123}}}"#;
        assert_eq!(event_seq(emit), Some(7));
        assert_eq!(event_seq(""), None);
        assert_eq!(
            event_seq(r#"{"jsonrpc":"2.0","method":"ping","id":1}"#),
            None
        );
        assert_eq!(event_seq("not json"), None);
        let updated = r#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"bench://topic/build/status","_meta":{"payload":{"seq":3,"t":1}}}}"#;
        assert_eq!(event_seq(updated), Some(3));
    }

    #[test]
    fn a_low_open_files_limit_is_reported() {
        let err = check_open_files(1 << 40).unwrap_err();
        assert!(err.contains("ulimit -n"), "{err}");
    }
}
