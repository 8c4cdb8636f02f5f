//! `mcpbus call` and `mcpbus ls` against `mcpbus serve`, spawned over stdio and over HTTP, in
//! each era (`--era auto`, which finds the 2026-07-28 era, and `--era legacy`); their output,
//! exit codes and errors; and `mcpbus sub --era modern` rejecting a pattern no event type covers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use mcpbus_testkit::{ServeProcess, fixture, run_bounded};
use serde_json::Value;

const MCPBUS: &str = env!("CARGO_BIN_EXE_mcpbus");
const LIMIT: Duration = Duration::from_secs(30);

fn mcpbus(args: &[&str]) -> Output {
    let mut cmd = Command::new(MCPBUS);
    cmd.args(args)
        .env("MCPBUS_LOG", "warn")
        .env_remove("MCPBUS_CONFIG")
        .stdin(Stdio::null());
    run_bounded(cmd, LIMIT, "mcpbus")
}

/// The command line of a stdio server with the publish tool.
fn stdio_server() -> String {
    let config = fixture("publish.toml");
    format!("{MCPBUS} serve --stdio --config {}", config.display())
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json_line(out: &Output) -> Value {
    serde_json::from_str(stdout(out).trim()).unwrap_or_else(|e| {
        panic!(
            "not one JSON line ({e}): {}\nstderr: {}",
            stdout(out),
            stderr(out)
        )
    })
}

/// Every target: the stdio command line and the URL of `server`.
fn targets(server: &ServeProcess) -> [String; 2] {
    [stdio_server(), server.mcp_url()]
}

/// The tool bridge's tools, on in every `mcpbus serve` unless `[tools]` switches them off.
const BRIDGE: [&str; 3] = ["list_topics", "read_retained", "wait_for_events"];

#[test]
fn ls_lists_tools_and_resources_in_each_era() {
    let server = ServeProcess::start(MCPBUS, &fixture("publish.toml"), "warn", &[]);
    for target in targets(&server) {
        for (era, version) in [("auto", "2026-07-28"), ("legacy", "2025-11-25")] {
            let out = mcpbus(&["ls", "--era", era, &target]);
            assert!(out.status.success(), "{target} {era}: {}", stderr(&out));
            let text = stdout(&out);
            let era_name = if era == "auto" { "modern" } else { "legacy" };
            assert!(
                text.starts_with(&format!(
                    "server mcpbus 0.1.0 (MCP {version}, {era_name} era)"
                )),
                "{text}"
            );
            assert!(text.contains("tools (5):\n  list_topics  "), "{text}");
            assert!(text.contains("\n  publish  "), "{text}");
            assert!(text.contains("\n  whoami  "), "{text}");
            assert!(text.contains("\n  mcpbus://topics  "), "{text}");

            let out = mcpbus(&["ls", "--json", "--era", era, &target]);
            let listing = json_line(&out);
            assert_eq!(listing["era"], era_name);
            assert_eq!(listing["protocolVersion"], version);
            let tools: Vec<&str> = listing["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap())
                .collect();
            assert_eq!(tools, [&BRIDGE[..], &["publish", "whoami"]].concat());
        }
    }
}

#[test]
fn call_prints_the_result_and_fails_on_a_tool_error() {
    let server = ServeProcess::start(MCPBUS, &fixture("publish.toml"), "warn", &[]);
    for target in targets(&server) {
        for era in ["auto", "modern", "legacy"] {
            let out = mcpbus(&["call", "--era", era, &target, "whoami"]);
            assert!(out.status.success(), "{target} {era}: {}", stderr(&out));
            let who = json_line(&out);
            assert!(who["agentId"].is_string(), "{who}");

            let out = mcpbus(&["call", "--json", "--era", era, &target, "whoami", "{}"]);
            let result = json_line(&out);
            assert!(
                result["structuredContent"]["agentId"].is_string(),
                "{result}"
            );
        }
        let args = r#"{"topic": "build/status", "payload": {"ok": true}}"#;
        let out = mcpbus(&["call", "--json", &target, "publish", args]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(json_line(&out)["isError"], Value::Null);

        // An undeclared topic: the tool answers isError, printed, and the exit code says so.
        let args = r#"{"topic": "nope/x", "payload": 1}"#;
        let out = mcpbus(&["call", &target, "publish", args]);
        assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
        assert!(!stdout(&out).is_empty());
        assert!(
            stderr(&out).contains("reported an error"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let target = stdio_server();
    let out = mcpbus(&["call", &target, "whoami", "[1]"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("must be a JSON object"),
        "{}",
        stderr(&out)
    );

    let out = mcpbus(&["call", &target, "no_such_tool"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("tools/call no_such_tool failed"),
        "{}",
        stderr(&out)
    );

    let out = mcpbus(&["ls", "--era", "newest", &target]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("unknown era"), "{}", stderr(&out));

    let out = mcpbus(&["ls", "/nonexistent/server --stdio"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot start"), "{}", stderr(&out));

    // `sub --era modern` subscribes with the events extension of 2026-07-28 (it was refused
    // before SEP-3415 was served): a pattern no event type covers is rejected as in the
    // handshake era (tests/sub_cli.rs covers the rest).
    let out = mcpbus(&[
        "sub", "--era", "modern", "nope/x", "--", MCPBUS, "serve", "--stdio",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("rejected \"nope/x\": unknown_topic"), "{err}");
    assert!(err.contains("no pattern was accepted"), "{err}");
}
