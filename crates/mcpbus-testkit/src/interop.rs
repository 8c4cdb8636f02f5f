//! What the interop tests with the official MCP SDKs share: the SDK's interpreter and the
//! summary their scripts print.

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};

use crate::process::run_bounded;

/// The JSON summary on the last stdout line of an interop script.
pub fn summary_line(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("the summary line is not JSON ({e}): {stdout}"))
}

/// The Python from `MCPBUS_PYTHON` (default `python3`) and the version of its `mcp` package;
/// fails with the way to fix it when `module` cannot be imported.
pub fn python_with_mcp(module: &str) -> (String, String) {
    let python = std::env::var("MCPBUS_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut probe = Command::new(&python);
    probe.args([
        "-c",
        &format!("import importlib.metadata as m, mcp, {module}; print(m.version('mcp'))"),
    ]);
    let probe = run_bounded(probe, Duration::from_secs(60), "import mcp");
    assert!(
        probe.status.success(),
        "the MCP Python SDK is not importable with {python:?} (MCPBUS_PYTHON): run \
         `bash scripts/test.sh`, which installs the pinned `mcp` into .tools/py and runs the \
         tests with it.\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let version = String::from_utf8_lossy(&probe.stdout).trim().to_string();
    (python, version)
}

/// Checks the summary of an HTTP interop script: it subscribed to its own inbox and
/// `build/status`, and received on its GET stream exactly the two events it published.
/// Returns its session id.
pub fn assert_published_summary(summary: &Value) -> String {
    assert_eq!(summary["ok"], json!(true), "{summary}");
    let session = summary["sessionId"]
        .as_str()
        .expect("sessionId")
        .to_string();
    assert_eq!(
        summary["subscribed"],
        json!([format!("agents/{session}/inbox"), "build/status"]),
        "{summary}"
    );
    assert_eq!(
        summary["receivedOnGetStream"], summary["published"],
        "{summary}"
    );
    assert_eq!(
        summary["published"].as_array().map(Vec::len),
        Some(2),
        "{summary}"
    );
    session
}
