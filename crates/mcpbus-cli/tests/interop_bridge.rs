//! Interop: the official MCP Python SDK, 1.x (the handshake era) and 2.x (MCP 2026-07-28),
//! drives the tool bridge of `mcpbus serve` with tool calls only
//! (`tests/interop/python_bridge_client.py`): a wait on `alerts/+` returns the event another
//! client published and a cursor, and a wait from that cursor only newer events; on one server
//! and across two replicas sharing Redis (the wait on one, the publish on the other).
//!
//! The Pythons come from `MCPBUS_PYTHON` and `MCPBUS_PYTHON_MCP2`, as `bash scripts/test.sh`
//! sets them; without them this test fails (it never passes silently).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::process::Command;
use std::time::Duration;

use mcpbus_testkit::interop::{python_with_mcp, python_with_mcp2, summary_line};
use mcpbus_testkit::{RedisServer, ServeProcess, fixture, repo_root, run_bounded};

const MCPBUS: &str = env!("CARGO_BIN_EXE_mcpbus");

fn drive(python: &str, wait_url: &str, publish_url: &str) -> serde_json::Value {
    let script = repo_root().join("tests/interop/python_bridge_client.py");
    let mut cmd = Command::new(python);
    cmd.arg(&script).arg(wait_url).arg(publish_url);
    let out = run_bounded(cmd, Duration::from_secs(120), "python bridge interop");
    assert!(
        out.status.success(),
        "{python} {}: {}\nstdout: {}\nstderr: {}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    summary_line(&out)
}

fn pythons() -> [(String, String); 2] {
    [
        python_with_mcp("mcp.client.streamable_http"),
        python_with_mcp2("mcp.client.streamable_http"),
    ]
}

#[test]
fn official_python_sdks_wait_for_events_through_tools_on_one_server() {
    let server = ServeProcess::start(MCPBUS, &fixture("http.toml"), "warn", &[]);
    for (python, version) in pythons() {
        let summary = drive(&python, &server.mcp_url(), &server.mcp_url());
        assert_eq!(summary["ok"], true, "{summary}");
        assert_eq!(summary["sdk"], version.as_str());
    }
}

#[test]
fn official_python_sdks_wait_on_one_replica_for_events_published_on_another() {
    let redis = RedisServer::start(false);
    let args = ["--redis", &redis.url(), "--redis-prefix", "bridge"];
    let a = ServeProcess::start(MCPBUS, &fixture("http.toml"), "warn", &args);
    let b = ServeProcess::start(MCPBUS, &fixture("http.toml"), "warn", &args);
    for (python, _) in pythons() {
        let summary = drive(&python, &a.mcp_url(), &b.mcp_url());
        assert_eq!(summary["ok"], true, "{summary}");
    }
}
