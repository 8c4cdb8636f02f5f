//! A connection storm against `mcpbus serve` (docs/reliability.md, "Connection storms and
//! abandoned sessions"): for two seconds, clients connect and leave as fast as they can, in
//! turn: connect and close at once, `initialize` and go away (the session is left to the idle
//! timeout), `initialize` then `DELETE`, half a POST body then close, a push stream opened and
//! dropped. Afterwards `/healthz` must show no session and no connection but its own, and the
//! server's memory must come back near where it was (a generous bound: this is a debug build on
//! a shared machine; `bench/hostile.sh` has the figures). Nothing about timing is asserted.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use mcpbus_testkit::{ServeProcess, fixture};
use serde_json::json;

const MCPBUS: &str = env!("CARGO_BIN_EXE_mcpbus");
/// How long the storm lasts.
const STORM: Duration = Duration::from_secs(2);
/// Clients at once.
const CLIENTS: usize = 6;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Writes `request` on a new connection and reads until the server closes it (or only the
/// head, with `head_only`); the answer as text.
fn exchange(port: u16, request: &str, head_only: bool) -> String {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tcp.read(&mut buf).unwrap_or(0);
        answer.extend_from_slice(&buf[..n]);
        if n == 0 || (head_only && answer.windows(4).any(|w| w == b"\r\n\r\n")) {
            return String::from_utf8_lossy(&answer).into_owned();
        }
    }
}

fn post(body: &str, extra: &str) -> String {
    format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\n{extra}Connection: close\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// One visit of kind `turn % 5`.
fn visit(port: u16, turn: usize) {
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "storm", "version": "1"}}})
    .to_string();
    match turn % 5 {
        0 => drop(TcpStream::connect(("127.0.0.1", port)).unwrap()),
        1 | 2 => {
            let answer = exchange(port, &post(&initialize, ""), false);
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer:.300}");
            if turn % 5 == 2 {
                let session = answer
                    .lines()
                    .find_map(|l| l.strip_prefix("mcp-session-id: "))
                    .expect("a session id");
                let delete = format!(
                    "DELETE /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nMcp-Session-Id: {session}\r\n\
                     MCP-Protocol-Version: 2025-11-25\r\nConnection: close\r\n\r\n"
                );
                let answer = exchange(port, &delete, false);
                assert!(answer.starts_with("HTTP/1.1 200"), "{answer:.300}");
            }
        }
        3 => {
            let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let cut = post(&initialize, "").replace("Content-Length: ", "Content-Length: 9");
            tcp.write_all(&cut.as_bytes()[..cut.len() - 40]).unwrap();
        }
        _ => {
            let stream = json!({"jsonrpc": "2.0", "id": 1, "method": "events/stream",
                "params": {"name": "alerts/+", "cursor": null, "_meta": {
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": {},
                    "io.modelcontextprotocol/clientInfo": {"name": "storm", "version": "1"}}}})
            .to_string();
            let headers = "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: events/stream\r\n";
            let answer = exchange(port, &post(&stream, headers), true);
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer:.300}");
        }
    }
}

#[test]
fn after_a_connection_storm_nothing_is_left_and_memory_comes_back() {
    let text = std::fs::read_to_string(fixture("http.toml")).unwrap()
        + "\n[http]\nsession_idle_timeout_secs = 1\n";
    let config = std::env::temp_dir().join(format!("mcpbus-storm-{}.toml", std::process::id()));
    std::fs::write(&config, text).unwrap();
    let server = ServeProcess::start(MCPBUS, &config, "warn", &[]);
    let _ = std::fs::remove_file(&config);
    let pid = server.guard.child.id();
    let port = server.port;

    // One round of each kind first, so that what the server allocates once is there before
    // the baseline.
    for turn in 0..5 {
        visit(port, turn);
    }
    let base = rss_kib(pid);
    let until = Instant::now() + STORM;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            std::thread::spawn(move || {
                let mut visits = 0;
                while Instant::now() < until {
                    visit(port, c + visits);
                    visits += 1;
                }
                visits
            })
        })
        .collect();
    let visits: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    let peak = rss_kib(pid);

    // The abandoned sessions idle out within a few seconds, the dropped streams at once.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut health = server.healthz();
    while (health["sessions"] != 0 || health["connections"] != 1) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        health = server.healthz();
    }
    assert_eq!(
        health["sessions"], 0,
        "sessions left after the storm: {health}"
    );
    assert_eq!(
        health["connections"], 1,
        "connections left (besides /healthz): {health}"
    );
    // The server gives freed memory back within a few seconds of a sharp drop.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut end = rss_kib(pid);
    while end > base * 2 + 16 * 1024 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        end = rss_kib(pid);
    }
    eprintln!("storm: {visits} visits; RSS {base} KiB before, {peak} KiB after, {end} KiB settled");
    assert!(
        end <= base * 2 + 16 * 1024,
        "RSS {end} KiB after the storm, {base} KiB before ({peak} KiB at its end)"
    );
}
