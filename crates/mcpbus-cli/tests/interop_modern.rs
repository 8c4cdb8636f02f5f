//! Interop at MCP 2026-07-28 with the official SDKs' current clients, programs nobody here
//! wrote:
//!
//! - the Python SDK `mcp` 2.x (`tests/interop/python_modern_client.py`, `Client` in its default
//!   mode) and the TypeScript client `@modelcontextprotocol/client` 2.x
//!   (`tests/interop/ts-modern/client.mjs`, pinned to the 2026-07-28 revision) must negotiate
//!   2026-07-28 with `mcpbus serve`, list and call its tools, read its resources and find its
//!   events capability under `experimental["mcpbus/events"]`; then, on the fixture server
//!   below, answer an elicitation through `input_required` with their elicitation handler and
//!   receive `notifications/tools/list_changed` on a `subscriptions/listen` stream;
//! - the Python SDK 2.x must read the JSON-RPC errors in mcpbus's HTTP error bodies
//!   (`tests/interop/python_error_bodies.py`: 413, 406, 404).
//!
//! The fixture server: `mcpbus serve` has no tool that asks the user and nothing that changes
//! its tool list, and test-only tools do not belong in the product. So the test serves, in its
//! own process, a server built with the public mcpbus API (`Server::builder`, `Context::elicit`,
//! `Server::notify_tools_list_changed`, `serve_http`), as an application would.
//!
//! The Python comes from `MCPBUS_PYTHON_MCP2` and must have the `mcp` of
//! `tests/interop/requirements-mcp2.txt` (`bash scripts/test.sh` creates `.tools/py-mcp2`); Node
//! and the TypeScript client as for `interop_ts.rs` (`npm ci` in `tests/interop/ts-modern`).
//! Without them these tests fail (they never pass silently).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::process::Command;
use std::time::Duration;

use mcpbus::server::{Context, Json, NoArgs, Server, ToolError};
use mcpbus::transport::http::{HttpConfig, serve_http};
use mcpbus_proto::mcp::{ElicitRequestFormParams, ElicitRequestParams};
use mcpbus_testkit::interop::{
    node, node_version, pinned_npm_package, python_with_mcp2, summary_line,
};
use mcpbus_testkit::{ServeProcess, TestServer, fixture, repo_root, run_bounded};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

/// One whole script run (the scripts bound themselves at 90 s; this catches anything else).
const RUN_TIMEOUT: Duration = Duration::from_secs(150);

/// Arguments of the fixture's `confirm_deploy` tool.
#[derive(Debug, Deserialize, JsonSchema)]
struct Deploy {
    /// Where to deploy.
    target: String,
}

/// What the fixture asks the user for: a confirmation and an optional note.
fn confirmation_form(target: &str) -> ElicitRequestParams {
    let schema = json!({
        "type": "object",
        "properties": {
            "confirm": {"type": "boolean", "description": "Go ahead with the deployment"},
            "note": {"type": "string", "description": "Anything to add"}
        },
        "required": ["confirm"]
    });
    let Value::Object(requested_schema) = schema else {
        unreachable!("a JSON object literal")
    };
    ElicitRequestParams::Form(ElicitRequestFormParams {
        message: format!("Deploy to {target}?"),
        requested_schema,
        meta: None,
    })
}

/// The fixture server: a tool that asks the user to confirm (answered through `input_required`
/// in this revision) and one that announces a tool list change to every listener.
fn fixture_server() -> Server {
    Server::builder("mcpbus-interop-fixture", "1")
        .tool(
            "confirm_deploy",
            "Asks the user to confirm a deployment and reports the answer",
            |args: Deploy, ctx: Context| async move {
                let answer = ctx.elicit(confirmation_form(&args.target)).await?;
                Ok::<_, ToolError>(Json(json!({
                    "target": args.target,
                    "action": answer.action,
                    "content": answer.content,
                })))
            },
        )
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
/// capability under experimental) and with the fixture (the elicitation's answer, the change).
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
    let fixture = &summary["fixture"];
    assert_eq!(fixture["elicitation"], "Deploy to production?", "{summary}");
    assert_eq!(fixture["deploy"]["action"], "accept", "{summary}");
    assert_eq!(fixture["deploy"]["content"]["confirm"], true, "{summary}");
    assert_eq!(fixture["listenYielded"], "ToolsListChanged", "{summary}");
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
        &fixture("http.toml"),
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
    // The MRTR retry carried the answer under the key of the server's input request.
    assert_eq!(
        summary["fixture"]["inputResponseKeys"],
        json!(["elicitation-1"]),
        "{summary}"
    );
}

#[test]
fn official_typescript_client_2_speaks_2026_07_28() {
    let dir = repo_root().join("tests/interop/ts-modern");
    let version = pinned_npm_package(&dir, "@modelcontextprotocol/client");
    let node = node();
    let node_version = node_version(&node);
    let server = ServeProcess::start(
        env!("CARGO_BIN_EXE_mcpbus"),
        &fixture("http.toml"),
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
