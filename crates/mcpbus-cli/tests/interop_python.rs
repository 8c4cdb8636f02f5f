//! Interop with the official MCP Python SDK: `tests/interop/python_stdio_client.py` drives
//! `mcpbus serve --stdio` through `mcp.ClientSession` (initialize, tools/list, tools/call,
//! resources/read, and a raw events/subscribe request).
//!
//! The Python comes from `MCPBUS_PYTHON` (default `python3`) and must have the pinned `mcp`
//! package; `bash scripts/test.sh` creates `.tools/py` with it and sets `MCPBUS_PYTHON`. Without
//! it this test fails (it never passes silently).

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The whole interop run (the script bounds itself at 60 s; this catches anything else).
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

fn python() -> String {
    std::env::var("MCPBUS_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs a command to completion or kills it after `timeout`.
fn run_bounded(mut cmd: Command, timeout: Duration, what: &str) -> Output {
    let mut child: Child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{what}: cannot start {cmd:?}: {e}. Set MCPBUS_PYTHON or run `bash scripts/test.sh`"
            )
        });
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_thread = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_thread = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().expect("wait for child") {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let err = err_thread.join().unwrap_or_default();
                panic!(
                    "{what}: no result within {timeout:?}; killed. stderr:\n{}",
                    String::from_utf8_lossy(&err)
                );
            }
            None => thread::sleep(Duration::from_millis(50)),
        }
    };
    Output {
        status,
        stdout: out_thread.join().unwrap_or_default(),
        stderr: err_thread.join().unwrap_or_default(),
    }
}

#[test]
fn official_python_sdk_client_drives_the_stdio_server() {
    let python = python();

    // The SDK must be importable; if not, fail loudly with the way to fix it.
    let mut probe = Command::new(&python);
    probe.args([
        "-c",
        "import importlib.metadata as m, mcp, mcp.client.stdio; print(m.version('mcp'))",
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

    let script = repo_root().join("tests/interop/python_stdio_client.py");
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/publish.toml");
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

    // The script's summary is its last stdout line.
    let last = stdout.lines().last().unwrap_or_default();
    let summary: serde_json::Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("the summary line is not JSON ({e}): {stdout}"));
    assert_eq!(summary["ok"], serde_json::json!(true), "{summary}");
    assert_eq!(
        summary["tools"],
        serde_json::json!(["publish", "whoami"]),
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
