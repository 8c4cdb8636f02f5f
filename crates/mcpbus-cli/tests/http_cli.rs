//! `mcpbus serve` over HTTP, driven from outside: `GET /healthz`, every answer of
//! `POST /publish`, the `mcpbus pub` and `mcpbus sub URL ...` binaries against it, and the
//! session log lines (start, and end with a reason).
//!
//! Every server and client is a spawned `mcpbus` process on 127.0.0.1 with a free port, killed
//! on every path out of a test (`mcpbus_testkit::ChildGuard`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use mcpbus_testkit::jsonrpc::initialize_request;
use mcpbus_testkit::{Answer, ChildGuard, ServeProcess, TOKEN, fixture, line_channel, run_bounded};
use serde_json::{Value, json};

const MCPBUS: &str = env!("CARGO_BIN_EXE_mcpbus");
const BEARER: &str = "Bearer test-publish-token";

fn publish_raw(server: &ServeProcess, headers: &[(&str, &str)], body: &str) -> Answer {
    server.request("POST", "/publish", headers, body.as_bytes())
}

fn assert_problem(r: &Answer, status: u16, needle: &str) {
    assert_eq!(r.status, status, "{r:?} {}", r.text());
    let body = r.json();
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains(needle), "expected {needle:?} in {body}");
}

/// A configuration file in the temp directory, removed when dropped.
struct TempConfig(PathBuf);

impl TempConfig {
    fn new(name: &str, text: &str) -> TempConfig {
        let path = std::env::temp_dir().join(format!("mcpbus-{name}-{}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        TempConfig(path)
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The fixture without its publish token (and with other `[http]`/`[publish]` lines appended).
fn fixture_without_token(extra: &str) -> String {
    let text = std::fs::read_to_string(fixture("http.toml")).unwrap();
    let mut out: String = text
        .lines()
        .filter(|l| !l.starts_with("token"))
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str(extra);
    out
}

#[test]
fn healthz_reports_status_and_counters() {
    let server = ServeProcess::start(MCPBUS, &fixture("http.toml"), "warn", &[]);
    let r = server.request("GET", "/healthz", &[], b"");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{r:?}"
    );
    let h = r.json();
    assert_eq!(h["status"], "ok", "{h}");
    for key in [
        "sessions",
        "subscriptions",
        "eventsEmitted",
        "deliveries",
        "dropped",
    ] {
        assert_eq!(h[key], json!(0), "{key} in {h}");
    }
    let r = server.publish(&json!({"topic": "alerts/warning", "payload": "disk 91%"}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(server.healthz()["eventsEmitted"], json!(1));
}

#[test]
fn publish_refuses_missing_or_wrong_tokens() {
    let server = ServeProcess::start(MCPBUS, &fixture("http.toml"), "warn", &[]);
    let body = r#"{"topic":"build/status","payload":1}"#;
    let json_type = ("Content-Type", "application/json");

    let r = publish_raw(&server, &[json_type], body);
    assert_problem(&r, 401, "bearer token");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{r:?}");

    for wrong in [
        "Bearer wrong-token",
        "Bearer test-publish-toke",
        "Bearer test-publish-token-and-more",
        "Bearer ",
        "test-publish-token",
        "Basic dGVzdDp0ZXN0",
    ] {
        let r = publish_raw(&server, &[json_type, ("Authorization", wrong)], body);
        assert_problem(&r, 401, "bearer token");
    }
    // The scheme is case-insensitive (RFC 9110 11.1); the token is not.
    let r = publish_raw(
        &server,
        &[json_type, ("Authorization", "bearer test-publish-token")],
        body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = publish_raw(
        &server,
        &[json_type, ("Authorization", "Bearer TEST-PUBLISH-TOKEN")],
        body,
    );
    assert_problem(&r, 401, "bearer token");
    // The token is checked before anything else: a bad body without a token is still 401.
    let r = publish_raw(&server, &[("Content-Type", "text/plain")], "nonsense");
    assert_eq!(r.status, 401, "{}", r.text());
    // Only the lowercase-scheme request was published.
    assert_eq!(server.healthz()["eventsEmitted"], json!(1));
}

#[test]
fn publish_rejects_bad_requests_with_the_right_status() {
    let server = ServeProcess::start(MCPBUS, &fixture("http.toml"), "warn", &[]);
    let auth = ("Authorization", BEARER);
    let json_type = ("Content-Type", "application/json");
    let good = r#"{"topic":"build/status","payload":1}"#;

    // 415: not JSON by Content-Type (absent, or another type).
    assert_problem(
        &publish_raw(&server, &[auth], good),
        415,
        "application/json",
    );
    assert_problem(
        &publish_raw(&server, &[auth, ("Content-Type", "text/plain")], good),
        415,
        "application/json",
    );
    // A charset parameter is fine.
    let r = publish_raw(
        &server,
        &[auth, ("Content-Type", "application/json; charset=utf-8")],
        good,
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // 400: not JSON, not an object of the right shape, unknown fields, bad values.
    for (body, needle) in [
        ("{not json", "invalid body"),
        ("", "invalid body"),
        ("[1,2]", "invalid body"),
        (r#"{"payload":1}"#, "topic"),
        (r#"{"topic":"build/status","colour":"red"}"#, "colour"),
        // An unknown priority is refused, as by the publish tool and `mcpbus pub`, not read
        // as normal.
        (
            r#"{"topic":"build/status","priority":"whenever"}"#,
            "invalid priority",
        ),
        (
            r#"{"topic":"build/status","priority":"URGENT"}"#,
            "invalid priority",
        ),
        (
            r#"{"topic":"build/status","retained":"yes"}"#,
            "invalid body",
        ),
        (
            r#"{"topic":"build/status","expiresAt":"tomorrow"}"#,
            "expiresAt",
        ),
        (
            r#"{"topic":"build/status","expiresAt":"2001-01-01T00:00:00Z"}"#,
            "",
        ),
        (r#"{"topic":"build/+"}"#, ""),
        (r#"{"topic":""}"#, ""),
    ] {
        let r = publish_raw(&server, &[auth, json_type], body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_problem(&r, 400, needle);
    }

    // 422: a valid topic that no declared pattern covers.
    for topic in ["nope/x", "build/status/extra", "agents/a/outbox"] {
        let r = server.publish(&json!({"topic": topic, "payload": 1}));
        assert_problem(&r, 422, "matches no declared topic");
    }

    // Only the one good request was published.
    assert_eq!(server.healthz()["eventsEmitted"], json!(1));
}

#[test]
fn publish_reports_the_event_id_deliveries_and_retention() {
    let server = ServeProcess::start(MCPBUS, &fixture("http.toml"), "warn", &[]);
    // A retained topic, nobody subscribed.
    let r = server.publish(&json!({
        "topic": "build/status",
        "payload": {"status": "green"},
        "priority": "high",
        "source": "ci",
        "expiresAt": "2999-01-01T00:00:00Z",
    }));
    assert_eq!(r.status, 200, "{}", r.text());
    let report = r.json();
    let id = report["eventId"].as_str().expect("eventId");
    assert_eq!(id.len(), 26, "a ULID by default: {report}");
    assert_eq!(report["delivered"], json!(0), "{report}");
    assert_eq!(report["retained"], json!(true), "{report}");
    // Every event has a cursor in the log, in memory too: the first one is 1.
    assert_eq!(report["cursor"], json!("1"), "{report}");
    assert_eq!(report.as_object().unwrap().len(), 4, "{report}");

    // A caller-chosen id, retention turned off on a retained topic, and a non-retained topic.
    let r = server
        .publish(&json!({"topic": "deploy/status", "eventId": "deploy-1", "retained": false}));
    assert_eq!(
        r.json(),
        json!({"eventId": "deploy-1", "delivered": 0, "retained": false, "cursor": "2"})
    );
    let r = server.publish(&json!({"topic": "files/src/main.rs", "payload": null}));
    assert_eq!(r.json()["retained"], json!(false));
}

#[test]
fn publish_without_a_configured_token_is_forbidden() {
    let config = TempConfig::new("no-token", &fixture_without_token(""));
    // ServeProcess::start removes MCPBUS_PUBLISH_TOKEN from the server's environment.
    let server = ServeProcess::start(MCPBUS, &config.0, "warn", &[]);
    for headers in [
        vec![("Content-Type", "application/json")],
        vec![
            ("Content-Type", "application/json"),
            ("Authorization", BEARER),
        ],
        vec![
            ("Content-Type", "application/json"),
            ("Authorization", "Bearer "),
        ],
    ] {
        let r = publish_raw(&server, &headers, r#"{"topic":"build/status"}"#);
        assert_problem(&r, 403, "disabled");
    }
    assert_eq!(server.healthz()["eventsEmitted"], json!(0));
}

#[test]
fn the_token_can_come_from_the_environment() {
    let config = TempConfig::new("env-token", &fixture_without_token(""));
    let mut cmd = ServeProcess::command(MCPBUS, &config.0, "warn", &[]);
    cmd.env("MCPBUS_PUBLISH_TOKEN", "from-the-env");
    let server = ServeProcess::spawn(cmd);
    let body = br#"{"topic":"build/status"}"#;
    let r = server.request(
        "POST",
        "/publish",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", "Bearer from-the-env"),
        ],
        body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = server.request(
        "POST",
        "/publish",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", BEARER),
        ],
        body,
    );
    assert_eq!(r.status, 401, "{}", r.text());
}

fn mcpbus() -> Command {
    let mut cmd = Command::new(MCPBUS);
    cmd.env("MCPBUS_LOG", "warn")
        .env_remove("MCPBUS_PUBLISH_TOKEN");
    cmd
}

#[test]
fn mcpbus_pub_prints_the_report_and_fails_clearly() {
    let server = ServeProcess::start(MCPBUS, &fixture("http.toml"), "warn", &[]);
    let mut cmd = mcpbus();
    cmd.args([
        "pub",
        "build/status",
        r#"{"status":"green","build":3}"#,
        "--url",
        &server.base_url(),
        "--token",
        TOKEN,
        "--retained",
        "--priority",
        "high",
        "--source",
        "cli",
        "--expires-in",
        "600",
    ]);
    let out = run_bounded(cmd, Duration::from_secs(30), "mcpbus pub");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let report: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(report["delivered"], json!(0), "{report}");
    assert_eq!(report["retained"], json!(true), "{report}");
    assert!(report["eventId"].as_str().is_some_and(|s| !s.is_empty()));

    // The token from the environment works too; a bare word payload becomes a string.
    let mut cmd = mcpbus();
    cmd.args([
        "pub",
        "alerts/critical",
        "fire",
        "--url",
        &server.base_url(),
    ])
    .env("MCPBUS_PUBLISH_TOKEN", TOKEN);
    let out = run_bounded(cmd, Duration::from_secs(30), "mcpbus pub (env token)");
    assert!(out.status.success(), "{out:?}");

    // Wrong token: exit 1, the status and the server's message on stderr, nothing on stdout.
    let mut cmd = mcpbus();
    cmd.args([
        "pub",
        "build/status",
        "1",
        "--url",
        &server.base_url(),
        "--token",
        "nope",
    ]);
    let out = run_bounded(cmd, Duration::from_secs(30), "mcpbus pub (bad token)");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("401") && err.contains("bearer token"), "{err}");

    // Undeclared topic: 422 named.
    let mut cmd = mcpbus();
    cmd.args([
        "pub",
        "nope/x",
        "1",
        "--url",
        &server.base_url(),
        "--token",
        TOKEN,
    ]);
    let out = run_bounded(cmd, Duration::from_secs(30), "mcpbus pub (undeclared)");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("422"),
        "{out:?}"
    );

    // Invalid priority: refused before any request.
    let mut cmd = mcpbus();
    cmd.args([
        "pub",
        "build/status",
        "1",
        "--url",
        &server.base_url(),
        "--token",
        TOKEN,
        "--priority",
        "asap",
    ]);
    let out = run_bounded(cmd, Duration::from_secs(30), "mcpbus pub (bad priority)");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid priority"));

    // Nobody listening: a clear error, not a hang.
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", unused.local_addr().unwrap());
    drop(unused);
    let mut cmd = mcpbus();
    cmd.args(["pub", "build/status", "1", "--url", &dead, "--token", TOKEN]);
    let out = run_bounded(cmd, Duration::from_secs(40), "mcpbus pub (no server)");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach"),
        "{out:?}"
    );

    // Two events were published.
    assert_eq!(server.healthz()["eventsEmitted"], json!(2));
}

fn next_json_line(rx: &mpsc::Receiver<String>, what: &str) -> Value {
    let line = rx
        .recv_timeout(Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("mcpbus sub printed no line for {what}: {e}"));
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn mcpbus_sub_over_http_prints_published_events_as_json_lines() {
    let server = ServeProcess::start(MCPBUS, &fixture("http.toml"), "info", &[]);
    // A retained value before anyone subscribes: `sub` prints it first.
    let r =
        server.publish(&json!({"topic": "build/status", "payload": {"n": 0}, "eventId": "before"}));
    assert_eq!(r.status, 200, "{}", r.text());

    let mut cmd = mcpbus();
    // The handshake era's topic events (a 2026-07-28 server is subscribed to with SEP-3415,
    // tests/sub_cli.rs): pinned, since mcpbus serve speaks both.
    cmd.args([
        "sub",
        "--era",
        "legacy",
        &server.mcp_url(),
        "build/status",
        "alerts/+",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut sub = ChildGuard::spawn(&mut cmd, "mcpbus sub");
    let rx = line_channel(sub.child.stdout.take().unwrap());

    let retained = next_json_line(&rx, "the retained value");
    assert_eq!(retained["eventId"], "before", "{retained}");
    assert_eq!(retained["topic"], "build/status", "{retained}");
    assert_eq!(retained["payload"], json!({"n": 0}), "{retained}");
    assert_eq!(retained["retained"], json!(true), "{retained}");
    assert_eq!(server.healthz()["sessions"], json!(1));

    // Live events, in order, each printed once, through HTTP publish and `mcpbus pub`.
    for n in 1..=3 {
        let r = server.publish(&json!({
            "topic": "build/status",
            "payload": {"n": n},
            "priority": "urgent",
            "source": "test",
        }));
        let report = r.json();
        assert_eq!(report["delivered"], json!(1), "{report}");
        let event = next_json_line(&rx, &format!("event {n}"));
        assert_eq!(event["eventId"], report["eventId"], "{event}");
        assert_eq!(event["topic"], "build/status", "{event}");
        assert_eq!(event["payload"], json!({"n": n}), "{event}");
        assert_eq!(event["priority"], "urgent", "{event}");
        assert_eq!(event["source"], "test", "{event}");
        assert_eq!(event["retained"], json!(true), "{event}");
    }
    let mut cmd = mcpbus();
    cmd.args([
        "pub",
        "alerts/critical",
        r#""fire""#,
        "--url",
        &server.base_url(),
        "--token",
        TOKEN,
    ]);
    let out = run_bounded(cmd, Duration::from_secs(30), "mcpbus pub");
    assert!(out.status.success(), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let event = next_json_line(&rx, "the alert");
    assert_eq!(event["eventId"], report["eventId"], "{event}");
    assert_eq!(event["payload"], "fire", "{event}");
    assert_eq!(event["retained"], json!(false), "{event}");

    // A topic it did not subscribe to is not printed.
    let r = server.publish(&json!({"topic": "deploy/status", "payload": 1}));
    assert_eq!(r.json()["delivered"], json!(0));
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "printed an unsubscribed event"
    );

    // SIGTERM: `sub` closes its session (DELETE) and exits 0.
    sub.terminate();
    let status = sub
        .wait_timeout(Duration::from_secs(15))
        .expect("mcpbus sub did not exit after SIGTERM");
    assert!(status.success(), "{status}");
    server.wait_for_log("ending the sub session", Duration::from_secs(10), |l| {
        l.contains("session ended") && l.contains("deleted by client")
    });
    wait_until("the session to go", Duration::from_secs(10), || {
        server.healthz()["sessions"] == json!(0)
    });
}

/// `initialize` over raw HTTP; the session id.
fn initialize(server: &ServeProcess) -> String {
    let r = server.post(None, &initialize_request("raw-http-test"));
    assert_eq!(r.status, 200, "{r:?} {}", r.text());
    assert!(r.text().contains("\"protocolVersion\""), "{}", r.text());
    r.header("mcp-session-id")
        .expect("an Mcp-Session-Id header")
        .to_string()
}

fn session_headers(session: &str) -> Vec<(&str, &str)> {
    vec![
        ("Mcp-Session-Id", session),
        ("MCP-Protocol-Version", "2025-11-25"),
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ]
}

#[test]
fn sessions_log_their_start_and_their_end_with_a_reason() {
    let server = ServeProcess::start(MCPBUS, &fixture("http.toml"), "info", &[]);
    let session = initialize(&server);
    let started = server.wait_for_log("for the session start", Duration::from_secs(10), |l| {
        l.contains("session initialized") && l.contains(&session)
    });
    assert!(started.contains("INFO"), "{started}");
    assert!(started.contains("client=raw-http-test"), "{started}");
    assert!(started.contains("protocol=2025-11-25"), "{started}");

    let r = server.request("DELETE", "/mcp", &session_headers(&session), b"");
    assert_eq!(r.status, 200, "{r:?} {}", r.text());
    let ended = server.wait_for_log("for the session end", Duration::from_secs(10), |l| {
        l.contains("session ended") && l.contains(&session)
    });
    assert!(ended.contains("INFO"), "{ended}");
    assert!(ended.contains(r#"reason="deleted by client""#), "{ended}");

    // The ended session is gone: 404 on its id.
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}).to_string();
    let r = server.request("POST", "/mcp", &session_headers(&session), ping.as_bytes());
    assert_eq!(r.status, 404, "{r:?} {}", r.text());
}

#[test]
fn an_idle_session_ends_with_the_idle_timeout_reason() {
    let config = TempConfig::new(
        "idle",
        &std::fs::read_to_string(fixture("http.toml"))
            .unwrap()
            .replace(
                "[publish]",
                "[http]\nsession_idle_timeout_secs = 1\n\n[publish]",
            ),
    );
    let server = ServeProcess::start(MCPBUS, &config.0, "info", &[]);
    let session = initialize(&server);
    let ended = server.wait_for_log("for the idle session end", Duration::from_secs(15), |l| {
        l.contains("session ended") && l.contains(&session)
    });
    assert!(ended.contains(r#"reason="idle timeout""#), "{ended}");
    assert_eq!(server.healthz()["sessions"], json!(0));
}

#[test]
fn sigterm_ends_open_sessions_and_exits_cleanly() {
    let mut server = ServeProcess::start(MCPBUS, &fixture("http.toml"), "info", &[]);
    let session = initialize(&server);
    server.guard.terminate();
    let status = server
        .guard
        .wait_timeout(Duration::from_secs(15))
        .expect("mcpbus serve did not exit after SIGTERM");
    assert!(status.success(), "{status}\n{}", server.log());
    let ended = server.wait_for_log("for the shutdown", Duration::from_secs(5), |l| {
        l.contains("session ended") && l.contains(&session)
    });
    assert!(ended.contains(r#"reason="server shutdown""#), "{ended}");
}
