//! Interop at MCP 2026-07-28 with the official SDKs' current clients, programs nobody here
//! wrote:
//!
//! - the Python SDK `mcp` 2.x (`tests/interop/python_modern_client.py`, `Client` in its default
//!   mode) and the TypeScript client `@modelcontextprotocol/client` 2.x
//!   (`tests/interop/ts-modern/client.mjs`, pinned to the 2026-07-28 revision) must negotiate
//!   2026-07-28 with `mcpbus serve` (`fixtures/confirm.toml`), list and call its tools, find its
//!   events capability under `experimental["mcpbus/events"]`, answer through their elicitation
//!   handler the confirmation an urgent `publish` asks for (an `input_required` round), hear on
//!   a `subscriptions/listen` stream that `mcpbus://retained` changed, and read its resources;
//!   then receive `notifications/tools/list_changed` on a listen stream of the fixture server
//!   below;
//! - the Python SDK 2.x must read the JSON-RPC errors in mcpbus's HTTP error bodies
//!   (`tests/interop/python_error_bodies.py`: 413, 406, 404).
//!
//! The fixture server: nothing changes the tool list of `mcpbus serve`, and a test-only tool
//! does not belong in the product. So the test serves, in its own process, a server built with
//! the public mcpbus API (`Server::builder`, `Server::notify_tools_list_changed`, `serve_http`),
//! as an application would; its one tool announces a tool list change.
//!
//! The Python comes from `MCPBUS_PYTHON_MCP2` and must have the `mcp` of
//! `tests/interop/requirements-mcp2.txt` (`bash scripts/test.sh` creates `.tools/py-mcp2`); Node
//! and the TypeScript client as for `interop_ts.rs` (`npm ci` in `tests/interop/ts-modern`).
//! Without them these tests fail (they never pass silently).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::process::Command;
use std::time::Duration;

use mcpbus::server::{Context, NoArgs, Server};
use mcpbus::transport::http::{HttpConfig, serve_http};
use mcpbus_testkit::interop::{
    node, node_version, pinned_npm_package, python_with_mcp2, summary_line,
};
use mcpbus_testkit::{ServeProcess, TestServer, fixture, repo_root, run_bounded};
use serde_json::{Value, json};

/// One whole script run (the scripts bound themselves at 90 s; this catches anything else).
const RUN_TIMEOUT: Duration = Duration::from_secs(150);

/// The fixture server: one tool, which announces a tool list change to every listener.
fn fixture_server() -> Server {
    Server::builder("mcpbus-interop-fixture", "1")
        .tool(
            "announce_tools_changed",
            "Tells every subscriptions/listen stream that the tool list changed",
            |_: NoArgs, ctx: Context| async move {
                ctx.server().notify_tools_list_changed();
                "Announced a tool list change."
            },
        )
        .build()
        .expect("the fixture server")
}

/// The fixture server on a free loopback port, served by its own runtime for the whole test.
struct Fixture {
    server: Option<TestServer>,
    runtime: tokio::runtime::Runtime,
}

impl Fixture {
    fn start() -> Fixture {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for the fixture server");
        let server = runtime.block_on(TestServer::start(|listener, stop| {
            serve_http(
                listener,
                "/mcp",
                fixture_server(),
                HttpConfig::default(),
                stop,
            )
        }));
        Fixture {
            server: Some(server),
            runtime,
        }
    }

    fn url(&self) -> String {
        self.server.as_ref().expect("running").url()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.stop());
        }
    }
}

/// The exact `mcp` version pinned in `tests/interop/requirements-mcp2.txt`.
fn pinned_mcp2() -> String {
    let path = repo_root().join("tests/interop/requirements-mcp2.txt");
    let text = std::fs::read_to_string(&path).expect("tests/interop/requirements-mcp2.txt");
    let pin = text.lines().find_map(|l| l.trim().strip_prefix("mcp=="));
    pin.expect("an exact mcp== pin").to_string()
}

/// The Python with the pinned `mcp` 2.x, and that version.
fn python_mcp2() -> (String, String) {
    let (python, version) = python_with_mcp2("mcp.client.subscriptions");
    let want = pinned_mcp2();
    assert_eq!(
        version, want,
        "{python} has mcp {version}, not the pinned {want}: run `bash scripts/test.sh`, which \
         installs tests/interop/requirements-mcp2.txt into .tools/py-mcp2"
    );
    (python, version)
}

/// Runs an interop script; its summary line, or a panic with everything needed to see why.
fn run_script(mut cmd: Command, what: &str, server: &ServeProcess) -> Value {
    cmd.current_dir(repo_root());
    let out = run_bounded(cmd, RUN_TIMEOUT, what);
    assert!(
        out.status.success(),
        "{what} failed with {}:\nstdout:\n{}\nstderr:\n{}\nmcpbus serve log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    let summary = summary_line(&out);
    // Shown with --nocapture: what the SDK saw, for anyone comparing SDK versions.
    println!("{what}: {summary}");
    summary
}

/// What both SDKs must report: 2026-07-28 with `mcpbus serve` (tools, resources, the events
/// capability under experimental, the confirmed publish, the update of `mcpbus://retained` on a
/// listen stream) and with the fixture (the tool list change on a listen stream).
fn assert_modern_summary(summary: &Value, server: &ServeProcess) {
    assert_eq!(summary["ok"], json!(true), "{summary}");
    let serve = &summary["serve"];
    assert_eq!(serve["protocolVersion"], "2026-07-28", "{summary}");
    assert_eq!(serve["wireMethods"][0], "server/discover", "{summary}");
    for tool in ["publish", "whoami"] {
        assert!(
            serve["tools"].as_array().unwrap().contains(&json!(tool)),
            "{summary}"
        );
    }
    assert!(
        serve["experimentalEventsTopics"]
            .as_array()
            .unwrap()
            .contains(&json!("build/status")),
        "{summary}"
    );
    let asked = serve["elicitation"].as_str().unwrap_or_default();
    assert!(
        asked.contains("urgent") && asked.contains("build/status"),
        "{summary}"
    );
    // The retry carried the user's answer under the key the publish tool gives its question.
    assert_eq!(
        serve["inputResponseKeys"],
        json!(["confirm_publish"]),
        "{summary}"
    );
    assert_eq!(
        serve["listenYielded"], "ResourceUpdated(mcpbus://retained)",
        "{summary}"
    );
    assert_eq!(
        summary["fixture"]["listenYielded"], "ToolsListChanged",
        "{summary}"
    );
    // No handshake reached mcpbus serve: no session was ever opened.
    assert!(
        !server.log().contains("session initialized"),
        "a session was opened:\n{}",
        server.log()
    );
}

#[test]
fn official_python_sdk_2_client_speaks_2026_07_28() {
    let (python, version) = python_mcp2();
    let server = ServeProcess::start(
        env!("CARGO_BIN_EXE_mcpbus"),
        &fixture("confirm.toml"),
        "info",
        &[],
    );
    let fixture = Fixture::start();
    let mut cmd = Command::new(&python);
    cmd.arg("tests/interop/python_modern_client.py")
        .arg(server.mcp_url())
        .arg(fixture.url());
    let what = format!("python 2026-07-28 interop (mcp {version})");
    let summary = run_script(cmd, &what, &server);
    assert_eq!(summary["sdk"], "mcp", "{summary}");
    assert_modern_summary(&summary, &server);
}

#[test]
fn official_typescript_client_2_speaks_2026_07_28() {
    let dir = repo_root().join("tests/interop/ts-modern");
    let version = pinned_npm_package(&dir, "@modelcontextprotocol/client");
    let node = node();
    let node_version = node_version(&node);
    let server = ServeProcess::start(
        env!("CARGO_BIN_EXE_mcpbus"),
        &fixture("confirm.toml"),
        "info",
        &[],
    );
    let fixture = Fixture::start();
    let mut cmd = Command::new(&node);
    cmd.arg(dir.join("client.mjs"))
        .arg(server.mcp_url())
        .arg(fixture.url());
    let what = format!(
        "TypeScript 2026-07-28 interop (@modelcontextprotocol/client {version}, node {node_version})"
    );
    let summary = run_script(cmd, &what, &server);
    assert_eq!(summary["sdk"], "@modelcontextprotocol/client", "{summary}");
    assert_modern_summary(&summary, &server);
}

#[test]
fn official_python_sdk_2_reads_mcpbus_http_error_bodies() {
    let (python, version) = python_mcp2();
    let server = ServeProcess::start(
        env!("CARGO_BIN_EXE_mcpbus"),
        &fixture("http.toml"),
        "info",
        &[],
    );
    let mut cmd = Command::new(&python);
    cmd.arg("tests/interop/python_error_bodies.py")
        .arg(server.mcp_url());
    let what = format!("python error bodies (mcp {version})");
    let summary = run_script(cmd, &what, &server);
    let errors = &summary["errors"];
    // The server's own code and message reached the SDK's caller in each case.
    assert_eq!(errors["413"]["code"], -32600, "{summary}");
    assert_eq!(
        errors["413"]["message"], "body exceeds the limit of 4194304 bytes",
        "{summary}"
    );
    assert_eq!(errors["406"]["code"], -32600, "{summary}");
    assert_eq!(errors["404"]["message"], "Session not found", "{summary}");
}
