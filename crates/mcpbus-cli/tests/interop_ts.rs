//! Interop over Streamable HTTP with the official MCP TypeScript SDK:
//! `tests/interop/ts/client.mjs` connects to `mcpbus serve --listen 127.0.0.1:0` with `Client` +
//! `StreamableHTTPClientTransport` (`@modelcontextprotocol/sdk`, pinned in
//! `tests/interop/ts/package.json`), calls `whoami`, subscribes with a raw `events/subscribe`
//! (`client.request` with a zod schema), and must receive, in a notification handler registered
//! for `events/emit`, the two events published through `POST /publish`, on its GET stream.
//!
//! Node comes from `MCPBUS_NODE`, else `conformance/.node/bin/node` (installed by
//! `scripts/install-node.sh`), else `node` on PATH; the SDK from `npm ci` in `tests/interop/ts`.
//! `bash scripts/test.sh` installs both. Without them this test fails (never passes silently).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use mcpbus_testkit::interop::{assert_published_summary, summary_line};
use mcpbus_testkit::{ServeProcess, TOKEN, fixture, repo_root, run_bounded};
use serde_json::Value;

/// The whole interop run (the script bounds itself at 60 s; this catches anything else).
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

fn node() -> PathBuf {
    if let Some(node) = std::env::var_os("MCPBUS_NODE").filter(|n| !n.is_empty()) {
        return PathBuf::from(node);
    }
    let pinned = repo_root().join("conformance/.node/bin/node");
    if pinned.is_file() {
        return pinned;
    }
    PathBuf::from("node")
}

fn read_json(path: &std::path::Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

#[test]
fn official_typescript_sdk_client_receives_published_events_over_http() {
    let dir = repo_root().join("tests/interop/ts");
    let pinned = read_json(&dir.join("package.json")).expect("tests/interop/ts/package.json");
    let want = pinned["dependencies"]["@modelcontextprotocol/sdk"]
        .as_str()
        .expect("the SDK pin")
        .to_string();
    let installed = read_json(&dir.join("node_modules/@modelcontextprotocol/sdk/package.json"));
    let have = installed
        .as_ref()
        .and_then(|p| p["version"].as_str())
        .map(str::to_string);
    assert_eq!(
        have.as_deref(),
        Some(want.as_str()),
        "@modelcontextprotocol/sdk {want} is not installed in tests/interop/ts/node_modules \
         (found {have:?}): run `bash scripts/test.sh`, or `npm ci` in tests/interop/ts"
    );

    let node = node();
    let mut probe = Command::new(&node);
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
    let node_version = String::from_utf8_lossy(&probe.stdout).trim().to_string();

    let server = ServeProcess::start(
        env!("CARGO_BIN_EXE_mcpbus"),
        &fixture("http.toml"),
        "info",
        &[],
    );
    let mut cmd = Command::new(&node);
    cmd.arg(dir.join("client.mjs"))
        .arg(server.base_url())
        .arg(TOKEN)
        .current_dir(&dir);
    let out = run_bounded(cmd, RUN_TIMEOUT, "TypeScript HTTP interop");
    assert!(
        out.status.success(),
        "TypeScript HTTP interop (@modelcontextprotocol/sdk {want}, node {node_version}) failed \
         with {}:\nstdout:\n{}\nstderr:\n{}\nserver log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );

    let summary = summary_line(&out);
    let session = assert_published_summary(&summary);
    let session = session.as_str();

    server.wait_for_log("for the TypeScript session", Duration::from_secs(10), |l| {
        l.contains("session initialized")
            && l.contains(session)
            && l.contains("client=mcpbus-interop-ts")
    });
    server.wait_for_log(
        "ending the TypeScript session",
        Duration::from_secs(10),
        |l| l.contains("session ended") && l.contains(session) && l.contains("deleted by client"),
    );
}
