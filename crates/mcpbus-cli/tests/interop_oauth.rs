//! OAuth interop with the official MCP SDKs: each SDK's own OAuth client completes the
//! authorization code flow with PKCE against `mcpbus serve` (`[auth.oauth]`, docs/auth.md) and a
//! real authorization server (`oidc-provider` on loopback, `mcpbus_testkit::oidc::AuthServer`),
//! then calls `whoami` as the account the provider logged in:
//!
//! - the Python SDK 2.x (`tests/interop/python_oauth_client.py`, `OAuthClientProvider` as the
//!   httpx2 auth of `streamable_http_client`; the 2026-07-28 era);
//! - the TypeScript SDK 1.x (`tests/interop/ts/oauth_client.mjs`, an `OAuthClientProvider` given
//!   to `StreamableHTTPClientTransport`; the handshake era).
//!
//! Both discover the metadata from the `401` challenge, register themselves (RFC 7591), and ask
//! for a token for mcpbus's URL (RFC 8707). Python comes from `MCPBUS_PYTHON_MCP2`, Node from
//! `MCPBUS_NODE`; `bash scripts/test.sh` installs them, the SDKs and `oidc-provider`. Without
//! them these tests fail saying how to install them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

#[path = "auth_oidc/support.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

use mcpbus_testkit::interop::{
    node, node_version, pinned_npm_package, python_with_mcp2, summary_line,
};
use mcpbus_testkit::oidc::AuthServer;
use mcpbus_testkit::{ServeProcess, repo_root, run_bounded};
use serde_json::Value;
use support::single;

/// The whole run of a script (each bounds itself at 60 s; this catches anything else).
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `cmd`; its summary, or a panic with everything needed to see why.
fn summary_of(cmd: Command, what: &str, server: &ServeProcess, auth: &AuthServer) -> Value {
    let out = run_bounded(cmd, RUN_TIMEOUT, what);
    assert!(
        out.status.success(),
        "{what} failed with {}:\nstdout:\n{}\nstderr:\n{}\nserver log:\n{}\nprovider log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log(),
        auth.log()
    );
    summary_line(&out)
}

fn assert_authorized(summary: &Value, server: &ServeProcess) {
    assert_eq!(summary["ok"], true, "{summary}");
    assert_eq!(summary["agentId"], "agent-a", "{summary}");
    assert_eq!(summary["resource"], server.mcp_url().as_str(), "{summary}");
    let scope = summary["scope"].as_str().unwrap_or_default();
    assert!(scope.split(' ').any(|s| s == "mcp"), "{summary}");
}

#[test]
fn the_python_sdk_2_completes_the_oauth_flow_and_calls_a_tool() {
    let (python, version) = python_with_mcp2("mcp.client.auth");
    let auth = AuthServer::start();
    let (server, _config) = single("python-sdk", &auth);
    let mut cmd = Command::new(python);
    cmd.arg(repo_root().join("tests/interop/python_oauth_client.py"))
        .arg(server.mcp_url());
    let what = format!("the Python SDK {version} OAuth flow");
    let summary = summary_of(cmd, &what, &server, &auth);
    assert_authorized(&summary, &server);
    assert_eq!(summary["protocolVersion"], "2026-07-28", "{summary}");
}

#[test]
fn the_typescript_sdk_completes_the_oauth_flow_and_calls_a_tool() {
    let dir = repo_root().join("tests/interop/ts");
    let want = pinned_npm_package(&dir, "@modelcontextprotocol/sdk");
    let node = node();
    let node_version = node_version(&node);
    let auth = AuthServer::start();
    let (server, _config) = single("ts-sdk", &auth);
    let mut cmd = Command::new(&node);
    cmd.arg(dir.join("oauth_client.mjs"))
        .arg(server.mcp_url())
        .current_dir(&dir);
    let what = format!("the TypeScript SDK {want} (node {node_version}) OAuth flow");
    let summary = summary_of(cmd, &what, &server, &auth);
    assert_authorized(&summary, &server);
    assert!(summary["sessionId"].is_string(), "a session: {summary}");
}
