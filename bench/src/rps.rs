//! `rps`: closed-loop `tools/call` throughput. Each client has its own session (none with a
//! stateless server) and its own keep-alive connection, and keeps exactly one request in flight.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::conn::{Conn, Endpoint};
use crate::mcp;
use crate::stats::{self, Latency, ProcSample, fmt_us, round, round2};

/// Settings of the `rps` scenario.
#[derive(Debug, Clone)]
pub(crate) struct RpsConfig {
    /// The MCP endpoint.
    pub url: String,
    /// Concurrent clients (sessions, connections).
    pub clients: usize,
    /// How long requests are measured.
    pub duration: Duration,
    /// How long requests run before measuring starts.
    pub warmup: Duration,
    /// The tool called.
    pub tool: String,
    /// Its arguments.
    pub arguments: Value,
    /// The server process, to sample its CPU time and memory.
    pub server_pid: Option<u32>,
    /// The era spoken: sessions (`initialize` first) or stateless 2026-07-28 requests.
    pub era: mcp::Era,
}

/// What one client measured.
struct ClientResult {
    histogram: Histogram<u64>,
    ok: u64,
    errors: u64,
    reconnects: u64,
    first_error: Option<String>,
    /// Successful answers that came as an SSE stream (the others were JSON bodies).
    sse_answers: u64,
    /// When the last measured request completed.
    last_done: Option<Instant>,
}

/// The outcome of an `rps` run.
#[derive(Debug, Clone)]
pub(crate) struct RpsReport {
    /// Successful calls per second in the measured window.
    pub rps: f64,
    /// Successful calls in the window.
    pub ok: u64,
    /// Failed calls in the window (HTTP, JSON-RPC or tool errors, timeouts).
    pub errors: u64,
    /// Connections re-opened after a transport failure.
    pub reconnects: u64,
    /// The first error seen, if any.
    pub first_error: Option<String>,
    /// Latency of successful calls.
    pub latency: Latency,
    /// The measured window, seconds.
    pub window_secs: f64,
    /// Server CPU seconds spent in the measured window.
    pub server_cpu_secs: Option<f64>,
    /// Server resident memory at the end, KiB.
    pub server_rss_kib: Option<u64>,
    /// Server peak resident memory (`VmHWM`) at the end, KiB.
    pub server_hwm_kib: Option<u64>,
    /// This generator's CPU seconds in the measured window.
    pub generator_cpu_secs: Option<f64>,
    /// Successful answers that came as an SSE stream (the others were JSON bodies).
    pub sse_answers: u64,
    /// Whether the server gave each client a session (`false`: a stateless server).
    pub sessions: bool,
}

impl RpsReport {
    /// How the server answered: `json`, `sse`, `mixed`, or `none` without a success.
    pub(crate) fn answer_mode(&self) -> &'static str {
        match self.sse_answers {
            _ if self.ok == 0 => "none",
            0 => "json",
            n if n == self.ok => "sse",
            _ => "mixed",
        }
    }

    /// Server CPU milliseconds per 1,000 successful requests (= µs per request).
    pub(crate) fn server_cpu_ms_per_1k(&self) -> Option<f64> {
        let cpu = self.server_cpu_secs?;
        (self.ok > 0).then(|| cpu * 1e6 / self.ok as f64)
    }
}

/// Runs the scenario: sets up every client, then warms up and measures.
pub(crate) async fn run(config: &RpsConfig) -> Result<RpsReport, String> {
    if config.clients == 0 {
        return Err("--clients must be at least 1".into());
    }
    let endpoint = Endpoint::parse(&config.url)?;
    // Phase 1: every client connects and initializes its session before any load starts.
    let mut setups = Vec::with_capacity(config.clients);
    for _ in 0..config.clients {
        let endpoint = endpoint.clone();
        let era = config.era;
        setups.push(tokio::spawn(async move {
            let mut conn = Conn::connect(&endpoint).await?;
            let session = match era {
                mcp::Era::Legacy => mcp::initialize_any(&mut conn, &endpoint).await?,
                mcp::Era::Modern => None,
            };
            Ok::<_, String>((conn, session))
        }));
    }
    let mut clients = Vec::with_capacity(config.clients);
    for setup in setups {
        clients.push(setup.await.map_err(|e| e.to_string())??);
    }
    let sessions = clients.iter().all(|(_, session)| session.is_some());
    // Phase 2: load, with one schedule shared by every client.
    let start = Instant::now();
    let measure_from = start + config.warmup;
    let end = measure_from + config.duration;
    let mut tasks = Vec::with_capacity(clients.len());
    for (conn, session) in clients {
        let endpoint = endpoint.clone();
        let call = Call {
            tool: config.tool.clone(),
            arguments: config.arguments.clone(),
            era: config.era,
        };
        tasks.push(tokio::spawn(async move {
            client_loop(conn, endpoint, session, call, measure_from, end).await
        }));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let server_before = ProcSample::read(config.server_pid).filter(|_| config.server_pid.is_some());
    let me_before = ProcSample::read(None);
    tokio::time::sleep_until(end.into()).await;
    let server_after = ProcSample::read(config.server_pid).filter(|_| config.server_pid.is_some());
    let me_after = ProcSample::read(None);
    let mut histogram = stats::latency_histogram();
    let mut report = RpsReport {
        rps: 0.0,
        ok: 0,
        errors: 0,
        reconnects: 0,
        first_error: None,
        latency: Latency::default(),
        window_secs: 0.0,
        server_cpu_secs: None,
        server_rss_kib: server_after.map(|s| s.rss_kib),
        server_hwm_kib: server_after.map(|s| s.hwm_kib),
        generator_cpu_secs: None,
        sse_answers: 0,
        sessions,
    };
    let mut last_done = measure_from;
    for task in tasks {
        let r = task.await.map_err(|e| e.to_string())?;
        histogram
            .add(&r.histogram)
            .map_err(|e| format!("merging histograms: {e}"))?;
        report.ok += r.ok;
        report.errors += r.errors;
        report.reconnects += r.reconnects;
        report.sse_answers += r.sse_answers;
        if report.first_error.is_none() {
            report.first_error = r.first_error;
        }
        last_done = last_done.max(r.last_done.unwrap_or(measure_from));
    }
    // Every request started in the window has completed by `last_done`.
    report.window_secs = last_done.duration_since(measure_from).as_secs_f64();
    if report.window_secs > 0.0 {
        report.rps = report.ok as f64 / report.window_secs;
    }
    report.latency = Latency::of(&histogram);
    if let (Some(b), Some(a)) = (server_before, server_after) {
        report.server_cpu_secs = Some(a.cpu_secs - b.cpu_secs);
    }
    if let (Some(b), Some(a)) = (me_before, me_after) {
        report.generator_cpu_secs = Some(a.cpu_secs - b.cpu_secs);
    }
    Ok(report)
}

/// The request each client repeats.
struct Call {
    tool: String,
    arguments: Value,
    era: mcp::Era,
}

impl Call {
    fn request(
        &self,
        endpoint: &Endpoint,
        session: Option<&str>,
        id: u64,
    ) -> http::Request<http_body_util::Full<bytes::Bytes>> {
        if self.era == mcp::Era::Modern {
            return mcp::modern_tool_call(endpoint, id, &self.tool, &self.arguments);
        }
        let body = mcp::tool_call_body(id, &self.tool, &self.arguments);
        match session {
            Some(session) => mcp::post(endpoint, Some(session), body),
            None => mcp::post_stateless(endpoint, body),
        }
    }
}

async fn client_loop(
    mut conn: Conn,
    endpoint: Endpoint,
    session: Option<String>,
    call: Call,
    measure_from: Instant,
    end: Instant,
) -> ClientResult {
    let mut r = ClientResult {
        histogram: stats::latency_histogram(),
        ok: 0,
        errors: 0,
        reconnects: 0,
        first_error: None,
        sse_answers: 0,
        last_done: None,
    };
    let mut id: u64 = 10;
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        id += 1;
        let request = call.request(&endpoint, session.as_deref(), id);
        let mut sse = false;
        let outcome = match conn.exchange(request).await {
            Ok(answer) => {
                sse = answer
                    .header(http::header::CONTENT_TYPE)
                    .is_some_and(|t| t.starts_with("text/event-stream"));
                mcp::check_tool_answer(&answer)
            }
            Err(e) => {
                // A transport failure: the connection may be unusable, so open a new one.
                match Conn::connect(&endpoint).await {
                    Ok(c) => {
                        conn = c;
                        r.reconnects += 1;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
                Err(e)
            }
        };
        let done = Instant::now();
        if sent < measure_from {
            continue;
        }
        r.last_done = Some(done);
        match outcome {
            Ok(()) => {
                r.ok += 1;
                r.sse_answers += u64::from(sse);
                stats::record(&mut r.histogram, (done - sent).as_nanos() as u64);
            }
            Err(e) => {
                r.errors += 1;
                r.first_error.get_or_insert(e);
            }
        }
    }
    r
}

impl RpsReport {
    /// The JSON line of this run.
    pub(crate) fn to_json(&self, label: &str, config: &RpsConfig) -> Value {
        json!({
            "scenario": "rps",
            "label": label,
            "url": config.url,
            "clients": config.clients,
            "duration_s": config.duration.as_secs_f64(),
            "warmup_s": config.warmup.as_secs_f64(),
            "tool": config.tool,
            "era": config.era.name(),
            "rps": round(self.rps),
            "ok": self.ok,
            "errors": self.errors,
            "reconnects": self.reconnects,
            "first_error": self.first_error,
            "window_s": round2(self.window_secs),
            "latency": self.latency.to_json(),
            "server_cpu_s": self.server_cpu_secs.map(round2),
            "server_cpu_ms_per_1k": self.server_cpu_ms_per_1k().map(round2),
            "server_rss_kib": self.server_rss_kib,
            "server_hwm_kib": self.server_hwm_kib,
            "answer_mode": self.answer_mode(),
            "sessions": self.sessions,
            "generator_cpu_s": self.generator_cpu_secs.map(round2),
        })
    }

    /// A human-readable summary.
    pub(crate) fn to_table(&self, label: &str, config: &RpsConfig) -> String {
        let l = &self.latency;
        let mut out = format!(
            "rps: {label}, {} client(s), tools/call {:?}, {:.1} s measured after {:.1} s warm-up\n",
            config.clients,
            config.tool,
            self.window_secs,
            config.warmup.as_secs_f64()
        );
        out += &format!("  requests/s   {:>12.0}\n", self.rps);
        out += &format!(
            "  answers      {:>12} ({})\n",
            self.answer_mode(),
            match (config.era, self.sessions) {
                (mcp::Era::Modern, _) => "2026-07-28, no sessions",
                (_, true) => "a session per client",
                (_, false) => "stateless server",
            }
        );
        out += &format!("  ok / errors  {:>12} / {}\n", self.ok, self.errors);
        out += &format!(
            "  latency      p50 {}  p90 {}  p99 {}  max {}\n",
            fmt_us(l.p50_us),
            fmt_us(l.p90_us),
            fmt_us(l.p99_us),
            fmt_us(l.max_us)
        );
        if let Some(cpu) = self.server_cpu_secs {
            out += &format!("  server CPU   {cpu:>12.2} s\n");
        }
        if let Some(per) = self.server_cpu_ms_per_1k() {
            out += &format!("  CPU / 1k req {per:>12.1} ms\n");
        }
        if let Some(rss) = self.server_rss_kib {
            out += &format!("  server RSS   {:>12.1} MiB", rss as f64 / 1024.0);
            if let Some(hwm) = self.server_hwm_kib {
                out += &format!(" (peak {:.1} MiB)", hwm as f64 / 1024.0);
            }
            out.push('\n');
        }
        if let Some(cpu) = self.generator_cpu_secs {
            out += &format!("  bench CPU    {cpu:>12.2} s\n");
        }
        if let Some(e) = &self.first_error {
            out += &format!("  first error  {e}\n");
        }
        out
    }
}
