//! Interop with the official MCP Python SDK: `tests/interop/python_stdio_client.py` drives
//! `mcpbus serve --stdio` through `mcp.ClientSession` (initialize, tools/list, tools/call,
//! resources/read, and a raw events/subscribe request).
//!
//! The Python comes from `MCPBUS_PYTHON` (default `python3`) and must have the pinned `mcp`
//! package; `bash scripts/test.sh` creates `.tools/py` with it and sets `MCPBUS_PYTHON`. Without
//! it this test fails (it never passes silently).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::process::Command;
use std::time::Duration;

use mcpbus_testkit::interop::{python_with_mcp, summary_line};
use mcpbus_testkit::{fixture, repo_root, run_bounded};

/// The whole interop run (the script bounds itself at 60 s; this catches anything else).
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn official_python_sdk_client_drives_the_stdio_server() {
    let (python, sdk_version) = python_with_mcp("mcp.client.stdio");

    let script = repo_root().join("tests/interop/python_stdio_client.py");
    let config = fixture("publish.toml");
    let mut cmd = Command::new(&python);
    cmd.arg(&script)
        .arg(env!("CARGO_BIN_EXE_mcpbus"))
        .arg(&config);
    let out = run_bounded(cmd, RUN_TIMEOUT, "python interop");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python interop (mcp {sdk_version}) failed with {}:\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );

    let summary = summary_line(&out);
    assert_eq!(summary["ok"], serde_json::json!(true), "{summary}");
    assert_eq!(
        summary["tools"],
        serde_json::json!([
            "list_topics",
            "publish",
            "read_retained",
            "wait_for_events",
            "whoami"
        ]),
        "{summary}"
    );
    let session = summary["sessionId"].as_str().expect("sessionId");
    assert_eq!(
        summary["subscribed"],
        serde_json::json!(["build/status", format!("agents/{session}/inbox")]),
        "{summary}"
    );
    assert_eq!(
        summary["retained"],
        serde_json::json!(["build/status"]),
        "{summary}"
    );
}
