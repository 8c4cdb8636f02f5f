//! What the interop tests with the official MCP SDKs share: the SDK's interpreter and the
//! summary their scripts print.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};

use crate::process::{repo_root, run_bounded};

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
    python_with_mcp_in("MCPBUS_PYTHON", ".tools/py", module)
}

/// The Python from `MCPBUS_PYTHON_MCP2` (default `python3`), which must have `mcp` 2.x, and the
/// version of its `mcp` package; fails with the way to fix it when `module` cannot be imported.
pub fn python_with_mcp2(module: &str) -> (String, String) {
    python_with_mcp_in("MCPBUS_PYTHON_MCP2", ".tools/py-mcp2", module)
}

/// The Python named by the environment variable `var` (default `python3`) and the version of
/// its `mcp` package; `venv` is where `bash scripts/test.sh` installs it.
fn python_with_mcp_in(var: &str, venv: &str, module: &str) -> (String, String) {
    let python = std::env::var(var).unwrap_or_else(|_| "python3".into());
    let mut probe = Command::new(&python);
    probe.args([
        "-c",
        &format!("import importlib.metadata as m, mcp, {module}; print(m.version('mcp'))"),
    ]);
    let probe = run_bounded(probe, Duration::from_secs(60), "import mcp");
    assert!(
        probe.status.success(),
        "the MCP Python SDK is not importable with {python:?} ({var}): run \
         `bash scripts/test.sh`, which installs the pinned `mcp` into {venv} and runs the \
         tests with it.\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let version = String::from_utf8_lossy(&probe.stdout).trim().to_string();
    (python, version)
}

/// Node for the TypeScript interop tests: `MCPBUS_NODE`, else `conformance/.node/bin/node`
/// (installed by `scripts/install-node.sh`), else `node` on PATH.
pub fn node() -> PathBuf {
    if let Some(node) = std::env::var_os("MCPBUS_NODE").filter(|n| !n.is_empty()) {
        return PathBuf::from(node);
    }
    let pinned = repo_root().join("conformance/.node/bin/node");
    if pinned.is_file() {
        return pinned;
    }
    PathBuf::from("node")
}

/// The output of `node --version`; fails with the way to install Node 22 when it does not run.
pub fn node_version(node: &Path) -> String {
    let mut probe = Command::new(node);
    probe.arg("--version");
    let probe = run_bounded(
        probe,
        Duration::from_secs(30),
        "node --version (set MCPBUS_NODE, or run `bash scripts/test.sh` to install Node 22)",
    );
    assert!(
        probe.status.success(),
        "{node:?} --version failed: set MCPBUS_NODE or run `bash scripts/test.sh` (installs Node \
         22 into conformance/.node)\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    String::from_utf8_lossy(&probe.stdout).trim().to_string()
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// The version of npm package `package` pinned in `dir/package.json`; fails with the way to
/// install it unless `dir/node_modules` holds exactly that version (`npm ci` in `dir`).
pub fn pinned_npm_package(dir: &Path, package: &str) -> String {
    let manifest = dir.join("package.json");
    let pinned = read_json(&manifest).unwrap_or_else(|| panic!("cannot read {manifest:?}"));
    let want = pinned["dependencies"][package]
        .as_str()
        .unwrap_or_else(|| panic!("{manifest:?} does not pin {package}"))
        .to_string();
    let installed = read_json(&dir.join("node_modules").join(package).join("package.json"));
    let have = installed
        .as_ref()
        .and_then(|p| p["version"].as_str())
        .map(str::to_string);
    assert_eq!(
        have.as_deref(),
        Some(want.as_str()),
        "{package} {want} is not installed in {dir:?}/node_modules (found {have:?}): run \
         `bash scripts/test.sh`, or `npm ci` in {dir:?}"
    );
    want
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
