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

use std::process::Command;
use std::time::Duration;

use mcpbus_testkit::interop::{
    assert_published_summary, node, node_version, pinned_npm_package, summary_line,
};
use mcpbus_testkit::{ServeProcess, TOKEN, fixture, repo_root, run_bounded};

/// The whole interop run (the script bounds itself at 60 s; this catches anything else).
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn official_typescript_sdk_client_receives_published_events_over_http() {
    let dir = repo_root().join("tests/interop/ts");
    let want = pinned_npm_package(&dir, "@modelcontextprotocol/sdk");
    let node = node();
    let node_version = node_version(&node);

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
