//! `mcpbus serve` with `[[access.rules]]` (docs/auth.md, "Topic permissions"), driven from
//! outside: `POST /publish` as the shared publish token and as `[auth]` bearer tokens, the
//! `publish` tool, subscriptions, and configurations refused with a precise message.
//!
//! Every server is a spawned `mcpbus` process on 127.0.0.1 with a free port, killed on every
//! path out of a test.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::path::PathBuf;
use std::time::Duration;

use mcpbus_testkit::jsonrpc::{initialize_request, subscribe_request};
use mcpbus_testkit::modern::{answer_message, headers, request};
use mcpbus_testkit::{
    Answer, HttpClient, RedisServer, ServeProcess, TOKEN, block_on, fixture, run_bounded,
};
use serde_json::{Value, json};

const MCPBUS: &str = env!("CARGO_BIN_EXE_mcpbus");
const ALICE: &str = "alice-token-0123456789abcdef";
const BOB: &str = "bob-token-0123456789abcdef";

const RULES: &str = r##"
[[auth.tokens]]
principal = "alice"
token_env = "ACL_TEST_ALICE"

[[auth.tokens]]
principal = "bob"
token_env = "ACL_TEST_BOB"

[[access.rules]]
name = "alice publishes alerts and writes to inboxes"
who = { subjects = ["alice"] }
actions = ["publish"]
topics = ["alerts/+", "agents/+/inbox"]

[[access.rules]]
who = { authenticated = true }
actions = ["subscribe"]
topics = ["agents/{agent_id}/inbox", "build/status"]

[[access.rules]]
effect = "deny"
who = { subjects = ["publish-token"] }
actions = ["publish"]
topics = ["alerts/critical"]
"##;

/// A configuration file in the temp directory, removed when dropped.
struct TempConfig(PathBuf);

impl TempConfig {
    fn new(name: &str, text: &str) -> TempConfig {
        let file = format!("mcpbus-access-{name}-{}.toml", std::process::id());
        let path = std::env::temp_dir().join(file);
        std::fs::write(&path, text).unwrap();
        TempConfig(path)
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The HTTP fixture (publish tool on, shared token set) with `extra` appended.
fn config(name: &str, extra: &str) -> TempConfig {
    let text = std::fs::read_to_string(fixture("http.toml")).unwrap();
    TempConfig::new(name, &format!("{text}\n{extra}"))
}

fn serve(config: &TempConfig) -> ServeProcess {
    serve_with(config, &[])
}

fn serve_with(config: &TempConfig, extra: &[&str]) -> ServeProcess {
    let mut cmd = ServeProcess::command(MCPBUS, &config.0, "info", extra);
    cmd.env("ACL_TEST_ALICE", ALICE).env("ACL_TEST_BOB", BOB);
    ServeProcess::spawn(cmd)
}

fn publish_as(server: &ServeProcess, token: Option<&str>, topic: &str) -> Answer {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    let body = json!({"topic": topic, "payload": 1}).to_string();
    server.request("POST", "/publish", &headers, body.as_bytes())
}

fn error_of(answer: &Answer) -> String {
    answer.json()["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn post_publish_follows_the_rules_and_the_shared_token_only_the_denies() {
    let config = config("publish", RULES);
    let server = serve(&config);
    assert_eq!(
        publish_as(&server, Some(ALICE), "alerts/warning").status,
        200
    );
    let refused = publish_as(&server, Some(BOB), "alerts/warning");
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(
        error_of(&refused),
        "not allowed to publish on alerts/warning"
    );
    let outside = publish_as(&server, Some(ALICE), "build/status");
    assert_eq!(error_of(&outside), "not allowed to publish on build/status");
    // The shared token may publish anything the deny rules leave it.
    assert_eq!(publish_as(&server, Some(TOKEN), "build/status").status, 200);
    let denied = publish_as(&server, Some(TOKEN), "alerts/critical");
    assert_eq!(denied.status, 403, "{}", denied.text());
    assert_eq!(
        error_of(&denied),
        "not allowed to publish on alerts/critical"
    );
    for token in [None, Some("not-a-known-token-at-all")] {
        let r = publish_as(&server, token, "alerts/warning");
        assert_eq!(r.status, 401, "{}", r.text());
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
    let log = server.log();
    assert!(log.contains("topic access denied"), "{log}");
    assert!(
        log.contains("subject=\"bob\"") || log.contains("subject=bob"),
        "{log}"
    );
    assert!(
        !log.contains(BOB) && !log.contains(TOKEN),
        "no credential in the log: {log}"
    );
}

#[test]
fn without_rules_only_the_shared_token_publishes_over_http() {
    let tokens = "[[auth.tokens]]\nprincipal = \"alice\"\ntoken_env = \"ACL_TEST_ALICE\"\n";
    let config = config("unchanged", tokens);
    let server = serve(&config);
    assert_eq!(
        publish_as(&server, Some(ALICE), "alerts/warning").status,
        401
    );
    assert_eq!(
        publish_as(&server, Some(TOKEN), "alerts/warning").status,
        200
    );
}

/// A 2026-07-28 request as `token`; the JSON-RPC answer.
fn call(server: &ServeProcess, token: &str, method: &str, params: Value) -> Value {
    let message = request(1, method, params, json!({}));
    let auth = format!("Bearer {token}");
    let mut owned = headers(&message);
    owned.push(("authorization".into(), auth));
    let borrowed: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let answer = server.request("POST", "/mcp", &borrowed, message.to_string().as_bytes());
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer_message(&answer)
}

#[test]
fn the_publish_tool_and_subscriptions_follow_the_rules() {
    let config = config("tool", RULES);
    let server = serve(&config);
    let publish = |token: &str, topic: &str| {
        let arguments = json!({"topic": topic, "payload": "hi", "retained": true});
        let args = json!({"name": "publish", "arguments": arguments});
        call(&server, token, "tools/call", args)["result"].clone()
    };
    let sent = publish(ALICE, "agents/bob/inbox");
    assert_ne!(sent["isError"], true, "{sent}");
    let refused = publish(BOB, "agents/alice/inbox");
    assert_eq!(refused["isError"], true, "{refused}");
    assert_eq!(
        refused["content"][0]["text"],
        "not allowed to publish on agents/alice/inbox"
    );

    let poll = |token: &str, name: &str, arguments: Value| {
        let params = json!({"name": name, "arguments": arguments, "cursor": null});
        call(&server, token, "events/poll", params)
    };
    // From now: the retained value of Bob's inbox first.
    let inbox = poll(BOB, "agents/{agent_id}/inbox", json!({}));
    assert_eq!(
        inbox["result"]["events"][0]["data"]["payload"], "hi",
        "{inbox}"
    );
    let alerts = poll(BOB, "alerts/+", json!({}));
    assert_eq!(alerts["error"]["code"], -32024, "{alerts}");
    let message = alerts["error"]["message"].as_str().unwrap();
    assert_eq!(message, "Forbidden: not allowed to subscribe to alerts/+");
}

fn refused_config(name: &str, extra: &str) -> String {
    let config = config(name, extra);
    let cmd = ServeProcess::command(MCPBUS, &config.0, "warn", &[]);
    let out = run_bounded(
        cmd,
        Duration::from_secs(30),
        "mcpbus serve with a bad config",
    );
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_rules_are_refused_with_a_precise_message() {
    let rule = |body: &str| format!("[[access.rules]]\n{body}\n");
    let base = "who = { anyone = true }\nactions = [\"subscribe\"]";
    let placeholder = refused_config(
        "placeholder",
        &rule(&format!("{base}\ntopics = [\"t/{{tenant}}\"]")),
    );
    assert!(
        placeholder.contains(
            "[[access.rules]] rule 1: topic pattern \"t/{tenant}\": unknown placeholder {tenant}"
        ),
        "{placeholder}"
    );
    let pattern = refused_config("pattern", &rule(&format!("{base}\ntopics = [\"a/#/b\"]")));
    assert!(
        pattern.contains("rule 1: topic pattern \"a/#/b\""),
        "{pattern}"
    );
    let who = refused_config(
        "who",
        &rule("who = {}\nactions = [\"publish\"]\ntopics = [\"a\"]"),
    );
    assert!(who.contains("rule 1: `who` is empty"), "{who}");
    let action = refused_config(
        "action",
        &rule("who = { anyone = true }\nactions = [\"read\"]\ntopics = [\"a\"]"),
    );
    assert!(action.contains("unknown variant `read`"), "{action}");
}

/// A handshake-era POST to `/mcp` on `session` (none: it opens one) with `token`.
fn legacy(
    server: &ServeProcess,
    session: Option<&str>,
    token: Option<&str>,
    body: &Value,
) -> Answer {
    block_on(HttpClient::new(server.mcp_url()).post_with_token(session, token, body))
}

#[test]
fn a_session_opened_with_a_token_is_bound_to_it_on_every_replica() {
    let redis = RedisServer::start(false);
    let config = config("replicas", RULES);
    let shared = ["--redis", &redis.url(), "--redis-prefix", "acl"];
    let (a, b) = (serve_with(&config, &shared), serve_with(&config, &shared));
    let opened = legacy(&a, None, Some(ALICE), &initialize_request("acl"));
    assert_eq!(opened.status, 200, "{}", opened.text());
    let session = opened.header("mcp-session-id").unwrap().to_owned();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(
        legacy(&a, Some(&session), Some(ALICE), &initialized).status,
        202
    );

    let subscribe = subscribe_request(2, &["agents/alice/inbox", "agents/bob/inbox"]);
    let without = legacy(&b, Some(&session), None, &subscribe);
    assert_eq!(without.status, 401, "{}", without.text());
    let other = legacy(&b, Some(&session), Some(BOB), &subscribe);
    assert_eq!(other.status, 403, "{}", other.text());
    let answer = legacy(&b, Some(&session), Some(ALICE), &subscribe);
    assert_eq!(answer.status, 200, "{}", answer.text());
    let result = &answer_message(&answer)["result"];
    assert_eq!(
        result["subscribed"],
        json!([{"pattern": "agents/alice/inbox"}]),
        "{result}"
    );
    assert_eq!(
        result["rejected"][0]["reason"], "permission_denied",
        "{result}"
    );
}
