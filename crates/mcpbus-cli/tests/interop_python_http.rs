//! Interop over Streamable HTTP with the official MCP Python SDK:
//! `tests/interop/python_http_client.py` connects to `mcpbus serve --listen 127.0.0.1:0` with
//! `mcp.client.streamable_http.streamable_http_client` + `ClientSession`, calls `whoami`,
//! subscribes with a raw `events/subscribe`, and must receive, on its GET stream, the
//! `events/emit` of two events published through `POST /publish`.
//!
//! The Python comes from `MCPBUS_PYTHON` (default `python3`) and must have the pinned `mcp`
//! package; `bash scripts/test.sh` creates `.tools/py` with it and sets `MCPBUS_PYTHON`. Without
//! it this test fails (it never passes silently).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

mod http_support;

use std::process::Command;
use std::time::Duration;

use http_support::{Server, TOKEN, fixture, repo_root, run_bounded, summary_line};
use serde_json::json;

/// The whole interop run (the script bounds itself at 60 s; this catches anything else).
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

fn python() -> String {
    std::env::var("MCPBUS_PYTHON").unwrap_or_else(|_| "python3".into())
}

#[test]
fn official_python_sdk_client_receives_published_events_over_http() {
    let python = python();
    let mut probe = Command::new(&python);
    probe.args([
        "-c",
        "import importlib.metadata as m, mcp, mcp.client.streamable_http; print(m.version('mcp'))",
    ]);
    let probe = run_bounded(probe, Duration::from_secs(60), "import mcp");
    assert!(
        probe.status.success(),
        "the MCP Python SDK is not importable with {python:?} (MCPBUS_PYTHON): run \
         `bash scripts/test.sh`, which installs the pinned `mcp` into .tools/py and runs the \
         tests with it.\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let sdk_version = String::from_utf8_lossy(&probe.stdout).trim().to_string();

    let server = Server::start(&fixture("http.toml"), "info");
    let mut cmd = Command::new(&python);
    cmd.arg(repo_root().join("tests/interop/python_http_client.py"))
        .arg(server.base_url())
        .arg(TOKEN);
    let out = run_bounded(cmd, RUN_TIMEOUT, "python HTTP interop");
    assert!(
        out.status.success(),
        "python HTTP interop (mcp {sdk_version}) failed with {}:\nstdout:\n{}\nstderr:\n{}\nserver log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );

    let summary = summary_line(&out);
    assert_eq!(summary["ok"], json!(true), "{summary}");
    let session = summary["sessionId"].as_str().expect("sessionId");
    assert_eq!(
        summary["subscribed"],
        json!([format!("agents/{session}/inbox"), "build/status"]),
        "{summary}"
    );
    // Both published events came back on the GET stream (the script checked ids and payloads).
    assert_eq!(
        summary["receivedOnGetStream"], summary["published"],
        "{summary}"
    );
    assert_eq!(
        summary["published"].as_array().map(Vec::len),
        Some(2),
        "{summary}"
    );

    // The server saw one session, initialized by the Python SDK, deleted by it at exit.
    server.wait_for_log("for the Python session", Duration::from_secs(10), |l| {
        l.contains("session initialized") && l.contains(session) && l.contains("client=mcp")
    });
    server.wait_for_log("ending the Python session", Duration::from_secs(10), |l| {
        l.contains("session ended") && l.contains(session) && l.contains("deleted by client")
    });
}
