//! Interop: the official MCP TypeScript SDKs subscribe to a topic resource of the resource
//! bridge (`mcpbus://retained/build/status`) of `mcpbus serve` (`fixtures/http.toml`) and hear
//! every change of the topic's retained value, in both eras:
//!
//! - the handshake era: `@modelcontextprotocol/sdk` 1.x (`tests/interop/ts/resources.mjs`:
//!   `client.subscribeResource`, a handler for `ResourceUpdatedNotificationSchema`);
//! - 2026-07-28: `@modelcontextprotocol/client` 2.x pinned to that revision
//!   (`tests/interop/ts-modern/resources.mjs`: `client.listen({ resourceSubscriptions })`, a
//!   handler for `notifications/resources/updated`).
//!
//! Each script publishes through `POST /publish` a retained event on `deploy/status`, then two on
//! `build/status`; it must get `notifications/resources/updated` for the URI once per
//! `build/status` publish and none for the `deploy/status` one, and read the new value (eventId,
//! payload) from the resource after each. A fresh server per era, so the resource starts empty.
//!
//! Node and the SDKs as for `interop_ts.rs` and `interop_modern.rs` (`bash scripts/test.sh`
//! installs them); without them these tests fail (they never pass silently).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::process::Command;
use std::time::Duration;

use mcpbus_testkit::interop::{node, node_version, pinned_npm_package, summary_line};
use mcpbus_testkit::{ServeProcess, TOKEN, fixture, repo_root, run_bounded};
use serde_json::{Value, json};

/// The whole run of one script (it bounds itself at 60 s; this catches anything else).
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

const URI: &str = "mcpbus://retained/build/status";

/// Runs `tests/interop/<dir>/resources.mjs` against a fresh `mcpbus serve`; its summary.
fn run_resources_script(dir: &str, package: &str) -> Value {
    let dir = repo_root().join("tests/interop").join(dir);
    let want = pinned_npm_package(&dir, package);
    let node = node();
    let node_version = node_version(&node);
    let server = ServeProcess::start(
        env!("CARGO_BIN_EXE_mcpbus"),
        &fixture("http.toml"),
        "info",
        &[],
    );
    let mut cmd = Command::new(&node);
    cmd.arg(dir.join("resources.mjs"))
        .arg(server.base_url())
        .arg(TOKEN)
        .current_dir(&dir);
    let out = run_bounded(cmd, RUN_TIMEOUT, "TypeScript resource bridge interop");
    assert!(
        out.status.success(),
        "{package} {want} (node {node_version}) on the resource bridge failed with {}:\n\
         stdout:\n{}\nstderr:\n{}\nserver log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    let summary = summary_line(&out);
    println!("{package} {want}: {summary}");
    summary
}

/// One update per `build/status` publish, none for `deploy/status`, and the read values were
/// those two publishes (the scripts check each read against its publish's report).
fn assert_resource_summary(summary: &Value, protocol_version: &str, not_found: i64) {
    assert_eq!(summary["ok"], json!(true), "{summary}");
    assert_eq!(summary["protocolVersion"], protocol_version, "{summary}");
    assert_eq!(summary["uri"], URI, "{summary}");
    assert_eq!(summary["updates"], json!([URI, URI]), "{summary}");
    let read = summary["readEventIds"].as_array().expect("readEventIds");
    assert_eq!(read.len(), 2, "{summary}");
    assert_ne!(read[0], read[1], "{summary}");
    assert_eq!(summary["readBeforePublish"], not_found, "{summary}");
}

#[test]
fn typescript_sdk_1_hears_retained_topic_changes_through_resources_subscribe() {
    let summary = run_resources_script("ts", "@modelcontextprotocol/sdk");
    assert_eq!(summary["sdk"], "@modelcontextprotocol/sdk", "{summary}");
    assert_resource_summary(&summary, "2025-11-25", -32002);
}

#[test]
fn typescript_client_2_hears_retained_topic_changes_on_a_listen_stream_at_2026_07_28() {
    let summary = run_resources_script("ts-modern", "@modelcontextprotocol/client");
    assert_eq!(summary["sdk"], "@modelcontextprotocol/client", "{summary}");
    // 2026-07-28 reports an unknown resource as invalid params.
    assert_resource_summary(&summary, "2026-07-28", -32602);
}
