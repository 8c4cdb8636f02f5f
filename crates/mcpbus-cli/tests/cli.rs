//! The `mcpbus` command line: subcommands, their errors and exit codes.

#![allow(clippy::unwrap_used)] // tests unwrap to fail loudly

use std::process::{Command, Output, Stdio};

fn mcpbus(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mcpbus"))
        .args(args)
        .env("MCPBUS_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn config_prints_the_embedded_default() {
    let out = mcpbus(&["config"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("agents/{agent_id}/inbox"));
    assert!(text.contains("[publish]"));
}

#[test]
fn a_bad_config_is_a_clear_error() {
    let path = std::env::temp_dir().join(format!("mcpbus-bad-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        "[[events.topics]]\npattern = \"a/#/b\"\nkind = \"content\"\n",
    )
    .unwrap();
    let out = mcpbus(&["serve", "--stdio", "--config", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("a/#/b"), "{err}");

    let out = mcpbus(&["serve", "--stdio", "--config", "/nonexistent/mcpbus.toml"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("cannot read")
    );
}

#[test]
fn serve_on_stdio_exits_on_end_of_input() {
    // stdin is /dev/null: immediate end of input, clean exit.
    let out = mcpbus(&["serve", "--stdio"]);
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty());
}

#[test]
fn sub_reports_rejected_patterns_and_fails_when_none_is_accepted() {
    let bin = env!("CARGO_BIN_EXE_mcpbus");
    let out = mcpbus(&[
        "sub",
        "nope/x",
        "agents/someone/inbox",
        "--",
        bin,
        "serve",
        "--stdio",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("rejected \"nope/x\": unknown_topic"), "{err}");
    assert!(
        err.contains("rejected \"agents/someone/inbox\": permission_denied"),
        "{err}"
    );
    assert!(err.contains("no pattern was accepted"), "{err}");
}

#[test]
fn requests_pipelined_behind_initialize_see_its_effects() {
    use std::io::Write;
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"events/list"}"#;
    // Without sequential handling of initialize this races on the multi-threaded runtime, so
    // repeat it to make a regression visible.
    for _ in 0..10 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mcpbus"))
            .args(["serve", "--stdio"])
            .env("MCPBUS_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(format!("{init}\n{list}\n").as_bytes())
            .unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let answers: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(answers.len(), 2, "{text}");
        assert!(answers.iter().all(|a| a.get("result").is_some()), "{text}");
    }
}
