//! `storm`: connects and disconnects as fast as `--concurrency` clients can, for a bounded time,
//! then waits for the server to be back where it started.
//!
//! Each client takes the next of five kinds of visit, in turn, each on a new TCP connection:
//! connect and close at once (`bare`); `initialize` and leave without `DELETE`, as clients that
//! just go away do (`abandon`, the session stays until the idle timeout); `initialize` then
//! `DELETE` on a second connection (`polite`); the head of a POST and half its body, then close
//! (`cut`, mid-request); open a 2026-07-28 push stream (`events/stream`), read its head and
//! close (`stream`). Raw sockets, one request per connection (`Connection: close`).
//!
//! Before the storm the server's RSS is sampled after a short warm-up storm (`--warmup`) whose
//! sessions are reaped, so that the runtime's threads and the allocator's arenas exist; after it,
//! once `/healthz` shows no session and no connection but its own (at most `--settle-timeout`)
//! and `--settle` more (time for the server to give memory back), it is sampled again.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::conn::{Conn, Endpoint};
use crate::stats::{self, ProcSample, round, round2};
use crate::{Common, emit};

/// The options of `storm`.
#[derive(Debug, Args)]
pub(crate) struct StormArgs {
    #[command(flatten)]
    common: Common,
    /// How long the storm lasts.
    #[arg(long, default_value = "10s", value_parser = stats::parse_duration)]
    duration: Duration,
    /// A storm this long first, reaped before the baseline is sampled (0s: none).
    #[arg(long, default_value = "1s", value_parser = stats::parse_duration)]
    warmup: Duration,
    /// Clients connecting at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// The event type the `stream` visits subscribe to.
    #[arg(long, default_value = "build/status")]
    topic: String,
    /// How long to wait for `/healthz` to show no session and no connection but its own.
    #[arg(long, default_value = "60s", value_parser = stats::parse_duration)]
    settle_timeout: Duration,
    /// How long to wait after that before sampling the server's RSS.
    #[arg(long, default_value = "4s", value_parser = stats::parse_duration)]
    settle: Duration,
}

/// The kinds of visit, taken in turn.
const KINDS: [&str; 5] = ["bare", "abandon", "polite", "cut", "stream"];

/// What a storm did.
#[derive(Debug, Default)]
struct Counts {
    /// Visits completed, per kind.
    done: [AtomicU64; 5],
    /// TCP connections opened.
    connects: AtomicU64,
    /// Visits that failed (a refused connect, an unexpected answer).
    errors: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

/// The `storm` subcommand: clean when no visit failed and the server ended with no session and
/// no connection but the one asking.
pub(crate) async fn command(args: StormArgs) -> Result<ExitCode, String> {
    let endpoint = Endpoint::parse(&args.common.url)?;
    let pid = args.common.server_pid;
    let start = ProcSample::read(pid);
    if !args.warmup.is_zero() {
        storm(&endpoint, &args, args.warmup).await;
        settle(&endpoint, &args).await?;
    }
    let base = ProcSample::read(pid);
    let started = Instant::now();
    let counts = storm(&endpoint, &args, args.duration).await;
    let secs = started.elapsed().as_secs_f64();
    let during = ProcSample::read(pid);
    let left = settle(&endpoint, &args).await?;
    let end = ProcSample::read(pid);
    let connects = counts.connects.load(Ordering::Relaxed);
    let errors = counts.errors.load(Ordering::Relaxed);
    let kib = |s: &Option<ProcSample>| s.map(|s| s.rss_kib);
    let ratio = match (base, end) {
        (Some(b), Some(e)) if b.rss_kib > 0 => Some(round2(e.rss_kib as f64 / b.rss_kib as f64)),
        _ => None,
    };
    let done: Value = KINDS
        .iter()
        .zip(&counts.done)
        .map(|(k, n)| ((*k).to_string(), json!(n.load(Ordering::Relaxed))))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let first_error = counts.first_error.lock().ok().and_then(|e| e.clone());
    let line = json!({
        "scenario": "storm",
        "label": args.common.label,
        "url": args.common.url,
        "duration_s": round2(secs),
        "concurrency": args.concurrency,
        "connects": connects,
        "connects_per_s": round(connects as f64 / secs),
        "visits": done,
        "errors": errors,
        "first_error": first_error,
        "rss_start_kib": kib(&start),
        "rss_base_kib": kib(&base),
        "rss_storm_kib": kib(&during),
        "rss_peak_kib": end.map(|s| s.hwm_kib),
        "rss_end_kib": kib(&end),
        "rss_end_over_base": ratio,
        "server_cpu_s": match (base, during) {
            (Some(b), Some(d)) => Some(round2(d.cpu_secs - b.cpu_secs)),
            _ => None,
        },
        "left": left,
    });
    let clean = errors == 0 && left["sessions"] == 0 && left["connections"].as_u64() <= Some(1);
    Ok(emit(&args.common, table(&line), line, clean))
}

/// Runs `concurrency` clients for `duration`; returns what they did.
async fn storm(endpoint: &Endpoint, args: &StormArgs, duration: Duration) -> Arc<Counts> {
    let counts = Arc::new(Counts::default());
    let deadline = Instant::now() + duration;
    let mut clients = Vec::with_capacity(args.concurrency);
    for c in 0..args.concurrency.max(1) {
        let (endpoint, counts, topic) = (endpoint.clone(), counts.clone(), args.topic.clone());
        clients.push(tokio::spawn(async move {
            let mut turn = c;
            while Instant::now() < deadline {
                let kind = turn % KINDS.len();
                turn += 1;
                match visit(&endpoint, kind, &topic, &counts).await {
                    Ok(()) => {
                        counts.done[kind].fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        counts.errors.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut first) = counts.first_error.lock() {
                            first.get_or_insert(format!("{}: {e}", KINDS[kind]));
                        }
                    }
                }
            }
        }));
    }
    for client in clients {
        let _ = client.await;
    }
    counts
}

/// One visit of kind `kind` (an index into [`KINDS`]).
async fn visit(
    endpoint: &Endpoint,
    kind: usize,
    topic: &str,
    counts: &Counts,
) -> Result<(), String> {
    let connect = || async {
        counts.connects.fetch_add(1, Ordering::Relaxed);
        TcpStream::connect(&endpoint.addr)
            .await
            .map_err(|e| format!("connect: {e}"))
    };
    let host = &endpoint.host;
    let path = &endpoint.path;
    match KINDS[kind] {
        "bare" => drop(connect().await?),
        "cut" => {
            let mut tcp = connect().await?;
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
                 Accept: application/json, text/event-stream\r\nContent-Length: 400\r\n\r\n\
                 {{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initia"
            );
            tcp.write_all(head.as_bytes())
                .await
                .map_err(|e| format!("write: {e}"))?;
        }
        "stream" => {
            let body = stream_body(topic);
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
                 Accept: application/json, text/event-stream\r\n\
                 MCP-Protocol-Version: {MODERN}\r\nMcp-Method: events/stream\r\n\
                 Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let answer = exchange(connect().await?, &head, true).await?;
            expect_status(&answer, "200")?;
        }
        _ => {
            let init = initialize_request(host, path);
            let answer = exchange(connect().await?, &init, false).await?;
            expect_status(&answer, "200")?;
            let session = header(&answer, "mcp-session-id").ok_or("no Mcp-Session-Id")?;
            if KINDS[kind] == "polite" {
                let delete = format!(
                    "DELETE {path} HTTP/1.1\r\nHost: {host}\r\nMcp-Session-Id: {session}\r\n\
                     MCP-Protocol-Version: 2025-11-25\r\nConnection: close\r\n\r\n"
                );
                let answer = exchange(connect().await?, &delete, false).await?;
                expect_status(&answer, "200")?;
            }
        }
    }
    Ok(())
}

/// The 2026-07-28 revision the `stream` visits speak.
const MODERN: &str = "2026-07-28";

fn stream_body(topic: &str) -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "events/stream", "params": {
        "name": topic, "arguments": {"retained": false}, "cursor": null,
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "mcpbus-bench-storm", "version": "1"}}}})
    .to_string()
}

fn initialize_request(host: &str, path: &str) -> String {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "mcpbus-bench-storm", "version": "1"}}})
    .to_string();
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Writes `request` and reads the answer to its end (`Connection: close`), or only its head
/// (`head_only`: a stream, closed then); within the exchange timeout.
async fn exchange(mut tcp: TcpStream, request: &str, head_only: bool) -> Result<String, String> {
    let read = async {
        tcp.write_all(request.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = tcp.read(&mut buf).await.map_err(|e| format!("read: {e}"))?;
            answer.extend_from_slice(&buf[..n]);
            let head_done = answer.windows(4).any(|w| w == b"\r\n\r\n");
            if n == 0 || (head_only && head_done) {
                return Ok(String::from_utf8_lossy(&answer).into_owned());
            }
        }
    };
    tokio::time::timeout(crate::conn::EXCHANGE_TIMEOUT, read)
        .await
        .map_err(|_| "no answer in time".to_string())?
}

fn expect_status(answer: &str, status: &str) -> Result<(), String> {
    let line = answer.lines().next().unwrap_or_default();
    match line.split_whitespace().nth(1) {
        Some(s) if s == status => Ok(()),
        _ => Err(format!("answered {line:?}")),
    }
}

/// A header of an answer's head, by lowercase name.
fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    answer
        .split("\r\n\r\n")
        .next()?
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// Waits until `/healthz` shows no session and at most its own connection (or the timeout),
/// then `--settle`; returns what it showed last.
async fn settle(endpoint: &Endpoint, args: &StormArgs) -> Result<Value, String> {
    let health = endpoint.with_path("/healthz");
    let deadline = Instant::now() + args.settle_timeout;
    let mut last;
    loop {
        last = healthz(&health).await?;
        let quiet = last["sessions"] == 0 && last["connections"].as_u64() <= Some(1);
        if quiet || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(args.settle).await;
    Ok(json!({"sessions": last["sessions"], "connections": last["connections"]}))
}

/// `/healthz` as JSON; a refused connection is tried again a few times (right after a storm
/// the loopback ports can be short for a moment).
async fn healthz(health: &Endpoint) -> Result<Value, String> {
    let mut attempt = 0;
    let mut conn = loop {
        match Conn::connect(health).await {
            Ok(conn) => break conn,
            Err(e) if attempt >= 10 => return Err(e),
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    let request = health
        .request(http::Method::GET)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .map_err(|e| e.to_string())?;
    let answer = conn.exchange(request).await?;
    serde_json::from_slice(&answer.body).map_err(|e| format!("/healthz: {e}"))
}

/// The human summary.
fn table(r: &Value) -> String {
    let mib = |v: &Value| {
        v.as_u64()
            .map_or("–".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
    };
    let mut out = format!(
        "storm: {}, {} clients for {} s\n",
        r["label"].as_str().unwrap_or_default(),
        r["concurrency"],
        r["duration_s"]
    );
    out += &format!(
        "  connects             {} ({}/s), errors {}\n",
        r["connects"], r["connects_per_s"], r["errors"]
    );
    out += &format!("  visits               {}\n", r["visits"]);
    out += &format!(
        "  server RSS           start {}, base {}, storm {}, peak {}, end {} ({}× base)\n",
        mib(&r["rss_start_kib"]),
        mib(&r["rss_base_kib"]),
        mib(&r["rss_storm_kib"]),
        mib(&r["rss_peak_kib"]),
        mib(&r["rss_end_kib"]),
        r["rss_end_over_base"]
    );
    out += &format!(
        "  server CPU           {} s during the storm\n",
        r["server_cpu_s"]
    );
    out += &format!("  left after           {}\n", r["left"]);
    if let Some(e) = r["first_error"].as_str() {
        out += &format!("  first error          {e}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_for_their_status_and_headers() {
        let answer = "HTTP/1.1 200 OK\r\nMcp-Session-Id: abc\r\ncontent-length: 2\r\n\r\n{}";
        assert!(expect_status(answer, "200").is_ok());
        assert!(expect_status(answer, "404").is_err());
        assert_eq!(header(answer, "mcp-session-id"), Some("abc"));
        assert_eq!(header(answer, "x-missing"), None);
        assert!(initialize_request("h:1", "/mcp").contains("Content-Length: "));
    }
}
