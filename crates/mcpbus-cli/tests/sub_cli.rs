//! `mcpbus sub` and `mcpbus events ls` against a 2026-07-28 server (`mcpbus serve`, which
//! `--era auto` finds modern): `sub` pushes by default and polls with `--poll`, prints each
//! event as a JSON line once, keeps its cursor in `--cursor-file`, and a `sub` started again
//! (after SIGTERM or SIGKILL) prints what was published meanwhile exactly once, in order; a gap
//! is reported on stderr; and the errors of a server without the events extension, of options
//! that need 2026-07-28 with the handshake era, and of a bad cursor file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mcpbus_testkit::{ChildGuard, ServeProcess, fixture, line_channel, run_bounded};
use serde_json::{Value, json};

const MCPBUS: &str = env!("CARGO_BIN_EXE_mcpbus");
const LIMIT: Duration = Duration::from_secs(30);

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("mcpbus-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mcpbus(args: &[&str]) -> Command {
    let mut cmd = Command::new(MCPBUS);
    cmd.args(args)
        .env("MCPBUS_LOG", "warn")
        .env_remove("MCPBUS_CONFIG")
        .stdin(Stdio::null());
    cmd
}

fn run(args: &[&str]) -> Output {
    run_bounded(mcpbus(args), LIMIT, "mcpbus")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A running `mcpbus sub`: its JSON lines, and its stderr lines.
struct Sub {
    guard: ChildGuard,
    lines: mpsc::Receiver<String>,
    errors: mpsc::Receiver<String>,
}

impl Sub {
    fn spawn(args: &[&str]) -> Sub {
        let mut cmd = mcpbus(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut guard = ChildGuard::spawn(&mut cmd, "mcpbus sub");
        let lines = line_channel(guard.child.stdout.take().unwrap());
        let errors = line_channel(guard.child.stderr.take().unwrap());
        Sub {
            guard,
            lines,
            errors,
        }
    }

    fn next(&self, what: &str) -> Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(15))
            .unwrap_or_else(|e| panic!("mcpbus sub printed no line for {what}: {e}"));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
    }

    fn quiet(&self, wait: Duration) {
        if let Ok(line) = self.lines.recv_timeout(wait) {
            panic!("mcpbus sub printed more: {line}");
        }
    }

    /// The first stderr line containing each of `wanted`, in whatever order they come.
    fn stderr_lines(&self, wanted: &[&str]) -> Vec<String> {
        let mut found: Vec<Option<String>> = vec![None; wanted.len()];
        let deadline = Instant::now() + Duration::from_secs(15);
        while found.iter().any(Option::is_none) {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("no stderr lines with {wanted:?}: {found:?}"));
            let line = self
                .errors
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no stderr lines with {wanted:?} ({e}): {found:?}"));
            for (i, w) in wanted.iter().enumerate() {
                if found[i].is_none() && line.contains(w) {
                    found[i] = Some(line.clone());
                }
            }
        }
        found.into_iter().flatten().collect()
    }

    /// SIGTERM, and a clean exit.
    fn stop(mut self) {
        self.guard.terminate();
        let status = self
            .guard
            .wait_timeout(Duration::from_secs(15))
            .expect("mcpbus sub did not exit after SIGTERM");
        assert!(status.success(), "{status}");
    }
}

fn wait_for_file(path: &Path) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(v) = serde_json::from_str::<Value>(&text)
        {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "no cursor file {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the cursor file holds `expected`: `sub` writes it as each subscription is
/// answered, so a first read may hold only some of them.
fn wait_for_cursors(path: &Path, expected: &Value, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let saved = wait_for_file(path);
        if &saved == expected || Instant::now() >= deadline {
            assert_eq!(&saved, expected, "{what}");
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn publish(server: &ServeProcess, topic: &str, n: u64) -> String {
    let r = server.publish(&json!({"topic": topic, "payload": {"n": n}}));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["eventId"].as_str().unwrap().to_owned()
}

fn cursor_of(event: &Value) -> u64 {
    event["_meta"]["mcpbus/cursor"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn sub_pushes_or_polls_and_resumes_from_its_cursor_file_exactly_once() {
    for mode in [None, Some("--poll")] {
        let server = ServeProcess::start(MCPBUS, &fixture("http.toml"), "warn", &[]);
        let dir = TempDir::new("sub-cursor");
        let file = dir.path("cursors.json");
        let file_arg = file.to_str().unwrap();
        let url = server.mcp_url();
        let mut args = vec!["sub", "--cursor-file", file_arg];
        args.extend(mode);
        args.extend([url.as_str(), "alerts/+"]);
        let sub = Sub::spawn(&args);
        // The subscription starts from now, and says where that is.
        wait_for_cursors(&file, &json!({"alerts/+": "0"}), &format!("{mode:?}"));

        let mut last = 0;
        for n in 1..=3 {
            let id = publish(&server, "alerts/disk", n);
            let event = sub.next("a live event");
            assert_eq!(event["eventId"], id, "{mode:?}: {event}");
            assert_eq!(event["topic"], "alerts/disk", "{event}");
            assert_eq!(event["payload"], json!({"n": n}), "{event}");
            assert_eq!(event["_meta"]["mcpbus/eventType"], "alerts/+", "{event}");
            assert!(cursor_of(&event) > last, "{event}");
            last = cursor_of(&event);
        }
        sub.stop();
        let expected = json!({"alerts/+": last.to_string()});
        wait_for_cursors(&file, &expected, &format!("{mode:?}"));

        // Away: 500 events, and one of a topic not subscribed to.
        let ids: Vec<String> = (1..=500)
            .map(|n| publish(&server, "alerts/disk", n))
            .collect();
        publish(&server, "build/status", 1);
        let sub = Sub::spawn(&args);
        for (n, id) in ids.iter().enumerate() {
            let event = sub.next("a missed event");
            assert_eq!(&event["eventId"], id, "{mode:?}: event {}", n + 1);
        }
        sub.quiet(Duration::from_millis(500));

        // Killed outright while idle: the file still holds the last event printed.
        let mut sub = sub;
        sub.guard.child.kill().unwrap();
        sub.guard.child.wait().unwrap();
        let ids: Vec<String> = (1..=5)
            .map(|n| publish(&server, "alerts/disk", n))
            .collect();
        let sub = Sub::spawn(&args);
        for id in &ids {
            assert_eq!(
                &sub.next("an event after SIGKILL")["eventId"],
                id,
                "{mode:?}"
            );
        }
        sub.quiet(Duration::from_millis(300));
        sub.stop();
    }
}

#[test]
fn sub_prints_each_event_once_and_reports_a_gap_and_refusals_on_stderr() {
    let server = ServeProcess::start(MCPBUS, &fixture("http.toml"), "warn", &[]);
    let first = publish(&server, "alerts/disk", 1);
    let dir = TempDir::new("sub-gap");
    let file = dir.path("cursors.json");
    // A cursor from another deployment: the log cannot serve it.
    std::fs::write(&file, r#"{"alerts/+": "999999"}"#).unwrap();
    let url = server.mcp_url();
    let sub = Sub::spawn(&[
        "sub",
        "--cursor-file",
        file.to_str().unwrap(),
        &url,
        "alerts/+",
        "alerts/disk",
        "nope/x",
    ]);
    let lines = sub.stderr_lines(&["nope/x", "missed"]);
    assert!(
        lines[0].contains("rejected \"nope/x\": unknown_topic"),
        "{lines:?}"
    );
    assert!(
        lines[1].contains("alerts/+") && lines[1].contains("truncated"),
        "{lines:?}"
    );
    // Two overlapping subscriptions, each event printed once.
    assert_eq!(sub.next("the oldest event kept")["eventId"], first);
    let id = publish(&server, "alerts/disk", 2);
    assert_eq!(sub.next("a live event")["eventId"], id);
    sub.quiet(Duration::from_millis(300));
    sub.stop();
}

#[test]
fn sub_over_stdio_pushes_and_polls_from_a_modern_server() {
    let dir = TempDir::new("sub-stdio");
    let config = fixture("publish.toml");
    for mode in [None, Some("--poll")] {
        let file = dir.path(&format!("{mode:?}.json"));
        let mut args = vec!["sub", "--cursor-file", file.to_str().unwrap()];
        args.extend(mode);
        args.extend([
            "alerts/+",
            "deploy/status",
            "--",
            MCPBUS,
            "serve",
            "--stdio",
        ]);
        args.extend(["--config", config.to_str().unwrap()]);
        let sub = Sub::spawn(&args);
        let expected = json!({"alerts/+": "0", "deploy/status": "0"});
        wait_for_cursors(&file, &expected, &format!("{mode:?}"));
        sub.quiet(Duration::from_millis(200));
        sub.stop();
    }
}

#[test]
fn events_ls_lists_event_types_or_topics() {
    let server = ServeProcess::start(MCPBUS, &fixture("http.toml"), "warn", &[]);
    let stdio = format!(
        "{MCPBUS} serve --stdio --config {}",
        fixture("publish.toml").display()
    );
    for target in [server.mcp_url(), stdio] {
        let out = run(&["events", "ls", &target]);
        assert!(out.status.success(), "{target}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(text.starts_with("event types (5):\n"), "{text}");
        assert!(
            text.contains("\n  alerts/+  [poll, push]  Operational alerts"),
            "{text}"
        );
        assert!(
            text.contains("\n  agents/{agent_id}/inbox  [poll, push]"),
            "{text}"
        );

        let out = run(&["events", "ls", "--json", &target]);
        let listing: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        assert_eq!(listing["era"], "modern");
        assert_eq!(listing["events"][2]["name"], "alerts/+");
        assert_eq!(listing["events"][2]["delivery"], json!(["poll", "push"]));

        let out = run(&["events", "ls", "--era", "legacy", &target]);
        assert!(out.status.success(), "{target}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(text.starts_with("topics (5):\n"), "{text}");
        assert!(
            text.contains("\n  files/#  [signal]  File change"),
            "{text}"
        );
    }
}

#[test]
fn errors_say_what_is_missing() {
    let dir = TempDir::new("sub-errors");
    let bare = dir.path("bare.toml");
    std::fs::write(&bare, "[server]\nname = \"bare\"\n").unwrap();
    let bare_server = format!("{MCPBUS} serve --stdio --config {}", bare.display());

    // A 2026-07-28 server without topics does not offer the events extension.
    let out = run(&["events", "ls", &bare_server]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .contains("does not offer the MCP events extension (io.modelcontextprotocol/events)"),
        "{}",
        stderr(&out)
    );
    let mut args = vec!["sub", "--poll", "alerts/+", "--"];
    args.extend(bare_server.split(' '));
    let out = run(&args);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("cannot list the server's event types"),
        "{err}"
    );
    assert!(
        err.contains("does not offer the MCP events extension"),
        "{err}"
    );

    // A handshake-era server: `sub` falls back to events/subscribe, which cannot resume from a
    // cursor; `events ls` lists its topics.
    let legacy = dir.path("legacy.toml");
    let mut config = std::fs::read_to_string(fixture("publish.toml")).unwrap();
    config.push_str("\n[modern]\nenabled = false\n");
    std::fs::write(&legacy, config).unwrap();
    let legacy_server = format!("{MCPBUS} serve --stdio --config {}", legacy.display());
    let out = run(&["events", "ls", &legacy_server]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("topics (5):\n"),
        "{}",
        stdout(&out)
    );
    let cursors = dir.path("cursors.json");
    let mut args = vec![
        "sub",
        "--cursor-file",
        cursors.to_str().unwrap(),
        "alerts/+",
        "--",
    ];
    args.extend(legacy_server.split(' '));
    let out = run(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "--cursor-file needs the events extension of MCP 2026-07-28 (SEP-3415), and this \
             server speaks only the handshake era"
        ),
        "{}",
        stderr(&out)
    );

    // Polling and cursors need 2026-07-28.
    let out = run(&[
        "sub", "--era", "legacy", "--poll", "alerts/+", "--", MCPBUS, "serve", "--stdio",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--poll needs the events extension of MCP 2026-07-28"),
        "{}",
        stderr(&out)
    );

    // A cursor file that is not one.
    let bad = dir.path("bad.json");
    std::fs::write(&bad, "[1]").unwrap();
    let out = run(&[
        "sub",
        "--cursor-file",
        bad.to_str().unwrap(),
        "alerts/+",
        "--",
        MCPBUS,
        "serve",
        "--stdio",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not a JSON object of cursors"),
        "{}",
        stderr(&out)
    );
}

/// `mcpbus serve` on the HTTP fixture with webhooks to loopback and a bearer token for Alice.
fn webhook_server(dir: &TempDir) -> ServeProcess {
    let base = std::fs::read_to_string(fixture("http.toml")).unwrap();
    let config = dir.path("webhooks.toml");
    let extra = "\n[webhooks]\nenabled = true\nallow_private = [\"127.0.0.0/8\"]\n\
                 \n[auth]\ntokens = [{ principal = \"alice\", token_env = \"MCPBUS_TEST_ALICE\" }]\n";
    std::fs::write(&config, base + extra).unwrap();
    let mut cmd = ServeProcess::command(MCPBUS, &config, "warn", &[]);
    cmd.env("MCPBUS_TEST_ALICE", ALICE_TOKEN);
    ServeProcess::spawn(cmd)
}

const ALICE_TOKEN: &str = "alice-token-0123456789abcdef";

#[test]
fn sub_receives_webhooks_on_its_own_receiver_and_unsubscribes_on_sigterm() {
    let dir = TempDir::new("sub-webhook");
    let server = webhook_server(&dir);
    let url = server.mcp_url();
    let cursors = dir.path("cursors.json");
    let cursors_arg = cursors.to_str().unwrap();
    // Without a token: refused before anything happens.
    let out = run(&["sub", "--webhook", "127.0.0.1:0", &url, "alerts/+"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("--token"), "{}", stderr(&out));

    let sub = Sub::spawn(&[
        "sub",
        "--webhook",
        "127.0.0.1:0",
        "--token",
        ALICE_TOKEN,
        "--cursor-file",
        cursors_arg,
        &url,
        "alerts/+",
    ]);
    sub.stderr_lines(&[
        "receiving webhooks on 127.0.0.1:",
        "webhook subscription sub_",
    ]);
    let mut ids = Vec::new();
    for n in 0..3 {
        let body = json!({"topic": "alerts/disk", "payload": {"n": n}});
        let answer = server.publish(&body);
        assert_eq!(answer.status, 200, "{}", answer.text());
        ids.push(answer.json()["eventId"].as_str().unwrap().to_owned());
    }
    for (n, id) in ids.iter().enumerate() {
        let event = sub.next("a webhook delivery");
        assert_eq!(event["eventId"], id.as_str());
        assert_eq!(event["payload"], json!({"n": n}));
    }
    sub.quiet(Duration::from_millis(300));
    let saved = wait_for_file(&cursors);
    assert!(saved["alerts/+"].is_string(), "{saved}");
    sub.stop();
    // Unsubscribed on the way out: nothing more is held for it.
    assert_eq!(
        server.healthz()["webhookSubscriptions"],
        json!(0),
        "{}",
        server.healthz()
    );
}
