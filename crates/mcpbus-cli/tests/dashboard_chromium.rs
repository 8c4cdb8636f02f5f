//! The live dashboard end to end in headless Chromium: `mcpbus serve` on loopback (where the
//! dashboard is on by default), a few subscribed `mcpbus sub` clients (handshake-era sessions
//! and 2026-07-28 push streams), and `tests/dashboard/dashboard.mjs` driving Debian's
//! `chromium` through `playwright-core` (pinned in `tests/dashboard/package.json`; no browser
//! download). The script checks that an event published through `POST /publish` is in the
//! page's tail within a second (timed by the page's own clock), that the rates chart moves,
//! and that the topic filter filters; then, under a steady load, it takes a screenshot, kept
//! as a test artefact in `target/tmp/dashboard-screenshot.png`.
//!
//! Chromium comes from `MCPBUS_CHROMIUM`, else `chromium` on PATH; Node from `MCPBUS_NODE`,
//! else `conformance/.node/bin/node`; playwright-core from `npm ci` in `tests/dashboard`.
//! `bash scripts/test.sh` installs all three. Without them this test fails, saying how to fix
//! it (it never passes silently).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mcpbus_testkit::interop::{node, node_version, pinned_npm_package, summary_line};
use mcpbus_testkit::{ChildGuard, ServeProcess, TOKEN, fixture, repo_root, run_bounded};
use serde_json::Value;

/// The whole browser run (about 15 s; slow machines get room).
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// Debian's Chromium: `MCPBUS_CHROMIUM`, else `chromium` on PATH; fails with the fix when it
/// does not run.
fn chromium() -> (PathBuf, String) {
    // Playwright wants a path, not a name to look up.
    let on_path = || {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join("chromium"))
            .find(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("chromium"))
    };
    let path = std::env::var_os("MCPBUS_CHROMIUM")
        .filter(|p| !p.is_empty())
        .map_or_else(on_path, PathBuf::from);
    let mut probe = Command::new(&path);
    probe.arg("--version");
    probe.stdin(Stdio::null());
    let found = probe.output();
    let Ok(out) = found.as_ref().map_err(ToString::to_string) else {
        panic!(
            "Chromium ({path:?}) does not run: {}. Run `bash scripts/test.sh` (installs Debian's \
             chromium with apt-get), or `apt-get install chromium`, or set MCPBUS_CHROMIUM.",
            found.err().map(|e| e.to_string()).unwrap_or_default()
        );
    };
    assert!(
        out.status.success(),
        "{path:?} --version failed: run `bash scripts/test.sh` or set MCPBUS_CHROMIUM\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (path, version)
}

/// `mcpbus sub URL alerts/+ build/status` in `era`, its output discarded.
fn subscriber(server: &ServeProcess, era: &str) -> ChildGuard {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcpbus"));
    cmd.args([
        "sub",
        &server.mcp_url(),
        "alerts/+",
        "build/status",
        "--era",
        era,
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    ChildGuard::spawn(&mut cmd, "mcpbus sub")
}

/// Waits until the server has `sessions` MCP sessions and `streams` push streams.
fn wait_for_subscribers(server: &ServeProcess, sessions: u64, streams: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let snap: Value = match server.request("GET", "/dashboard/api/snapshot", &[], b"") {
            a if a.status == 200 => a.json(),
            _ => Value::Null,
        };
        let s = &snap["sessions"];
        if s["sessions"].as_u64() >= Some(sessions) && s["pushStreams"].as_u64() >= Some(streams) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the subscribers did not connect: {snap}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_dashboard_shows_published_events_live_in_headless_chromium() {
    let dir = repo_root().join("tests/dashboard");
    let playwright = pinned_npm_package(&dir, "playwright-core");
    let node = node();
    let node_version = node_version(&node);
    let (chromium, chromium_version) = chromium();

    let server = ServeProcess::start(
        env!("CARGO_BIN_EXE_mcpbus"),
        &fixture("http.toml"),
        "info",
        &[],
    );
    let _subscribers = [
        subscriber(&server, "legacy"),
        subscriber(&server, "legacy"),
        subscriber(&server, "modern"),
        subscriber(&server, "modern"),
    ];
    wait_for_subscribers(&server, 2, 2);

    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshot.png");
    let _ = std::fs::remove_file(&screenshot);
    let mut cmd = Command::new(&node);
    cmd.arg(dir.join("dashboard.mjs"))
        .arg(server.base_url())
        .arg(TOKEN)
        .arg(&screenshot)
        .env("MCPBUS_CHROMIUM", &chromium);
    let started = Instant::now();
    let out = run_bounded(cmd, RUN_TIMEOUT, "node tests/dashboard/dashboard.mjs");
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dashboard.mjs failed:\n{stderr}");
    let summary = summary_line(&out);
    eprintln!(
        "dashboard in {chromium_version} via playwright-core {playwright}, node {node_version}, \
         {took:?}: {summary}"
    );
    assert_eq!(summary["ok"], true, "{summary}\n{stderr}\n{}", server.log());
    let latencies = summary["latenciesMs"].as_array().expect("latencies");
    assert_eq!(latencies.len(), 5, "{summary}");
    for latency in latencies {
        let ms = latency.as_f64().expect("every probe reached the tail");
        assert!(
            ms < 1000.0,
            "an event took {ms} ms to reach the tail: {summary}"
        );
    }
    assert!(
        summary["publishStatuses"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s == 200),
        "{summary}"
    );
    assert_eq!(summary["chartPathChanged"], true, "{summary}");
    assert!(
        summary["chartMaxPublished"].as_f64() > Some(0.0),
        "{summary}"
    );
    assert_eq!(summary["filteredOut"], true, "{summary}");
    assert_eq!(summary["filter"], serde_json::json!(["alerts/warning"]));
    assert!(summary["sessions"].as_u64() >= Some(2), "{summary}");
    assert_eq!(summary["pageErrors"], serde_json::json!([]), "{summary}");
    let size = std::fs::metadata(&screenshot).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 10_000,
        "no screenshot at {screenshot:?} ({size} bytes)"
    );
    eprintln!("screenshot: {}", screenshot.display());
}
