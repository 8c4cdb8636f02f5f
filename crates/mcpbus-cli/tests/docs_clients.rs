//! The examples of `docs/clients.md` are real files under `docs/clients/`, run here against
//! `mcpbus serve` (`fixtures/http.toml`), so the page cannot show code that does not work:
//!
//! - every fenced block of the page is preceded by `<!-- example: docs/clients/FILE -->` and is
//!   byte-identical to that file, and every file of `docs/clients/` is shown;
//! - each client example (Python SDK 2.x, TypeScript client 2.x and the Rust client in both
//!   eras, TypeScript SDK 1.x in the handshake era) subscribes to `alerts/+`
//!   while the test publishes an alert every 250 ms through `POST /publish`; it must print (or
//!   return) exactly one of those alerts and end;
//! - the host configuration (`mcp_servers.json`) names a command that starts an `mcpbus serve`
//!   over stdio offering the tool and resource bridges, and the URL where `mcpbus serve` listens
//!   by default.
//!
//! The Python comes from `MCPBUS_PYTHON_MCP2`, Node and the TypeScript SDKs as for
//! `interop_ts.rs` and `interop_modern.rs`; `bash scripts/test.sh` installs them all. Without
//! them these tests fail (they never pass silently).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

// The example's functions are `pub`, as in an application's module.
#[allow(unreachable_pub)]
#[path = "../../../docs/clients/rust_events.rs"]
mod rust_events;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use mcpbus_testkit::interop::{node, node_version, pinned_npm_package, python_with_mcp2};
use mcpbus_testkit::{ChildGuard, ServeProcess, fixture, repo_root};
use serde_json::{Value, json};

const MCPBUS: &str = env!("CARGO_BIN_EXE_mcpbus");
/// How long one example may take to receive an alert and end.
const EXAMPLE_TIMEOUT: Duration = Duration::from_secs(60);
const MARKER: &str = "<!-- example: ";

fn examples_dir() -> PathBuf {
    repo_root().join("docs/clients")
}

/// (file named by the marker, fenced block) for every fenced block of docs/clients.md; panics
/// on a fence without a marker right above it.
fn fenced_examples(doc: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut lines = doc.split_inclusive('\n');
    let mut previous = "";
    while let Some(line) = lines.next() {
        if !line.starts_with("```") {
            if !line.trim().is_empty() {
                previous = line.trim();
            }
            continue;
        }
        let file = previous
            .strip_prefix(MARKER)
            .and_then(|rest| rest.strip_suffix(" -->"))
            .unwrap_or_else(|| {
                panic!("docs/clients.md: the fence {line:?} has no {MARKER}FILE --> line above it")
            });
        let mut block = String::new();
        for line in lines.by_ref() {
            if line.starts_with("```") {
                break;
            }
            block.push_str(line);
        }
        found.push((file.to_string(), block));
        previous = "";
    }
    found
}

#[test]
fn the_page_shows_exactly_the_example_files() {
    let doc =
        std::fs::read_to_string(repo_root().join("docs/clients.md")).expect("docs/clients.md");
    let shown = fenced_examples(&doc);
    for (file, block) in &shown {
        let path = repo_root().join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            text == *block,
            "docs/clients.md shows {file} differently from the file: copy the file into the \
             page (the file is what the tests run)"
        );
    }
    let mut files: Vec<String> = std::fs::read_dir(examples_dir())
        .expect("docs/clients")
        .map(|e| format!("docs/clients/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|f| !f.contains("__pycache__"))
        .collect();
    files.sort();
    let mut named: Vec<String> = shown.into_iter().map(|(file, _)| file).collect();
    named.sort();
    named.dedup();
    assert_eq!(
        named, files,
        "every file of docs/clients is shown once in docs/clients.md"
    );
}

/// Publishes `alerts/critical {"n": 1, 2...}` every 250 ms until `done`; the last n.
fn publish_alerts(server: &ServeProcess, done: &AtomicBool) -> u64 {
    let mut n = 0;
    while !done.load(Ordering::SeqCst) {
        n += 1;
        let answer = server.publish(&json!({"topic": "alerts/critical", "payload": {"n": n}}));
        assert_eq!(answer.status, 200, "POST /publish: {answer:?}");
        thread::sleep(Duration::from_millis(250));
    }
    n
}

/// Everything `pipe` yields, read on a thread.
fn read_all(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

/// Runs an example program while alerts are published; its output once it ends.
fn run_example(mut cmd: Command, server: &ServeProcess, what: &str) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = ChildGuard::spawn(&mut cmd, what);
    let stdout = read_all(child.child.stdout.take().expect("piped stdout"));
    let stderr = read_all(child.child.stderr.take().expect("piped stderr"));
    let done = AtomicBool::new(false);
    let status = thread::scope(|s| {
        let publisher = s.spawn(|| publish_alerts(server, &done));
        let status = child.wait_timeout(EXAMPLE_TIMEOUT);
        done.store(true, Ordering::SeqCst);
        publisher.join().expect("the publisher");
        status
    });
    let Some(status) = status else {
        let _ = child.child.kill();
        let _ = child.child.wait();
        panic!(
            "{what}: no end within {EXAMPLE_TIMEOUT:?}.\nstderr:\n{}\nserver log:\n{}",
            String::from_utf8_lossy(&stderr.join().unwrap_or_default()),
            server.log()
        );
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// The example printed exactly one line, `alerts/critical <payload JSON>`, of a published alert.
fn assert_printed_one_alert(out: &Output, what: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what} failed with {}:\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{what} printed {lines:?} (stderr: {stderr})"
    );
    let payload = lines[0]
        .strip_prefix("alerts/critical ")
        .unwrap_or_else(|| {
            panic!(
                "{what} printed {:?}, not an alerts/critical event",
                lines[0]
            )
        });
    let payload: Value = serde_json::from_str(payload).expect("the printed payload is JSON");
    assert!(
        payload["n"].as_u64().is_some_and(|n| n >= 1),
        "{what}: {payload}"
    );
}

fn start_server() -> ServeProcess {
    ServeProcess::start(MCPBUS, &fixture("http.toml"), "warn", &[])
}

#[test]
fn python_sdk_2_examples_receive_alerts_in_both_eras() {
    let (python, version) = python_with_mcp2("mcp.client.extension");
    for file in ["python_events_emit.py", "python_events_stream.py"] {
        let server = start_server();
        let mut cmd = Command::new(&python);
        cmd.arg(examples_dir().join(file)).arg(server.mcp_url());
        let what = format!("docs/clients/{file} (mcp {version})");
        assert_printed_one_alert(&run_example(cmd, &server, &what), &what);
    }
}

/// Runs a TypeScript example from a scratch directory whose `node_modules` is that of
/// `tests/interop/<sdk_dir>`, where `bash scripts/test.sh` installs the pinned SDK (Node
/// resolves imports from the file's own directory up).
fn node_example(file: &str, sdk_dir: &str, package: &str, server: &ServeProcess) -> Output {
    let sdk = repo_root().join("tests/interop").join(sdk_dir);
    let version = pinned_npm_package(&sdk, package);
    let node = node();
    let node_version = node_version(&node);
    let scratch = scratch_dir(file);
    std::os::unix::fs::symlink(sdk.join("node_modules"), scratch.join("node_modules"))
        .expect("link node_modules");
    std::fs::copy(examples_dir().join(file), scratch.join(file)).expect("copy the example");
    let mut cmd = Command::new(&node);
    cmd.arg(scratch.join(file)).arg(server.mcp_url());
    let what = format!("docs/clients/{file} ({package} {version}, node {node_version})");
    let out = run_example(cmd, server, &what);
    assert_printed_one_alert(&out, &what);
    let _ = std::fs::remove_dir_all(&scratch);
    out
}

/// A fresh directory under the target directory, for one example run.
fn scratch_dir(name: &str) -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = target.join(format!("docs-clients-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

#[test]
fn typescript_examples_receive_alerts_in_both_eras() {
    let server = start_server();
    node_example(
        "ts_sdk1_events_emit.mjs",
        "ts",
        "@modelcontextprotocol/sdk",
        &server,
    );
    for file in ["ts_client2_events_emit.mjs", "ts_client2_events_stream.mjs"] {
        let server = start_server();
        node_example(file, "ts-modern", "@modelcontextprotocol/client", &server);
    }
}

#[test]
fn rust_examples_receive_alerts_in_both_eras() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    for era in ["handshake", "2026-07-28"] {
        let server = start_server();
        let url = server.mcp_url();
        let done = AtomicBool::new(false);
        let first = thread::scope(|s| {
            let publisher = s.spawn(|| publish_alerts(&server, &done));
            let first = runtime.block_on(async {
                let run = async {
                    if era == "handshake" {
                        rust_events::first_alert_handshake_era(&url).await
                    } else {
                        rust_events::first_alert_2026_07_28(&url).await
                    }
                };
                tokio::time::timeout(EXAMPLE_TIMEOUT, run).await
            });
            done.store(true, Ordering::SeqCst);
            publisher.join().expect("the publisher");
            first
        });
        let first = first
            .unwrap_or_else(|_| panic!("{era}: no alert within {EXAMPLE_TIMEOUT:?}"))
            .unwrap_or_else(|e| panic!("{era}: {e}\nserver log:\n{}", server.log()))
            .unwrap_or_else(|| panic!("{era}: the event channel closed without an alert"));
        assert_eq!(first.topic, "alerts/critical", "{era}: {first:?}");
        assert!(first.payload["n"].as_u64().is_some(), "{era}: {first:?}");
    }
}

/// The answer with `id` among the lines of a stdio server, within 10 s.
fn answer(lines: &std::sync::mpsc::Receiver<String>, id: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("no answer {id} from mcpbus serve --stdio: {e}"));
        let message: Value = serde_json::from_str(&line).expect("a JSON-RPC line");
        if message["id"] == id {
            return message;
        }
    }
}

/// Where `mcpbus serve` listens without `--listen`: `[http] listen` and `path` of the default
/// configuration (`mcpbus config`).
fn default_url() -> String {
    let out = Command::new(MCPBUS)
        .arg("config")
        .output()
        .expect("mcpbus config");
    assert!(out.status.success(), "mcpbus config: {out:?}");
    let config: toml::Table = String::from_utf8_lossy(&out.stdout)
        .parse()
        .expect("mcpbus config prints TOML");
    let http = &config["http"];
    let listen = http["listen"].as_str().expect("[http] listen");
    let path = http["path"].as_str().expect("[http] path");
    format!("http://{listen}{path}")
}

#[test]
fn the_host_configuration_starts_mcpbus_with_the_bridges() {
    let path = examples_dir().join("mcp_servers.json");
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("mcp_servers.json"))
            .expect("mcp_servers.json is JSON");
    let stdio = &config["mcpServers"]["mcpbus"];
    assert_eq!(stdio["command"], "mcpbus", "{config}");
    let args: Vec<&str> = stdio["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("a string argument"))
        .collect();
    assert_eq!(
        config["mcpServers"]["mcpbus-shared"]["url"],
        default_url(),
        "{config}"
    );

    let mut cmd = Command::new(MCPBUS);
    cmd.args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut server = ChildGuard::spawn(&mut cmd, "mcpbus serve --stdio");
    let lines = mcpbus_testkit::line_channel(server.child.stdout.take().expect("stdout"));
    let mut stdin = server.child.stdin.take().expect("stdin");
    let send = |stdin: &mut std::process::ChildStdin, message: Value| {
        writeln!(stdin, "{message}").expect("write to mcpbus serve --stdio");
    };
    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "host", "version": "1"}}}),
    );
    answer(&lines, 1);
    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    );
    // One request at a time: answers may come in any order, and `answer` skips the others.
    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    );
    let tools = answer(&lines, 2);
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for tool in ["list_topics", "read_retained", "wait_for_events"] {
        assert!(names.contains(&tool), "{args:?}: tools {names:?}");
    }
    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "id": 3, "method": "resources/templates/list"}),
    );
    let templates = answer(&lines, 3);
    assert!(
        templates.to_string().contains("mcpbus://retained/{+topic}"),
        "{args:?}: {templates}"
    );
    drop(stdin);
}
