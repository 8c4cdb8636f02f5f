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

use std::process::Command;
use std::time::Duration;

use mcpbus_testkit::interop::{assert_published_summary, python_with_mcp, summary_line};
use mcpbus_testkit::{ServeProcess, TOKEN, fixture, repo_root, run_bounded};

/// The whole interop run (the script bounds itself at 60 s; this catches anything else).
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn official_python_sdk_client_receives_published_events_over_http() {
    let (python, sdk_version) = python_with_mcp("mcp.client.streamable_http");

    let server = ServeProcess::start(
        env!("CARGO_BIN_EXE_mcpbus"),
        &fixture("http.toml"),
        "info",
        &[],
    );
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
    // Both published events came back on the GET stream (the script checked ids and payloads).
    let session = assert_published_summary(&summary);
    let session = session.as_str();

    // The server saw one session, initialized by the Python SDK, deleted by it at exit.
    server.wait_for_log("for the Python session", Duration::from_secs(10), |l| {
        l.contains("session initialized") && l.contains(session) && l.contains("client=mcp")
    });
    server.wait_for_log("ending the Python session", Duration::from_secs(10), |l| {
        l.contains("session ended") && l.contains(session) && l.contains("deleted by client")
    });
}
