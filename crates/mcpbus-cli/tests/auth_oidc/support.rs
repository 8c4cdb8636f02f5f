//! What the end-to-end identity and access tests share: `mcpbus serve` configured as a resource
//! server of a real authorization server (`oidc-provider`, `mcpbus_testkit::oidc::AuthServer`)
//! with topic permissions, and the requests an agent makes with a bearer token in both eras.
//!
//! Every process listens on 127.0.0.1 only; every wait is bounded.

#![allow(dead_code)] // each test binary uses its own part of the support

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mcpbus_testkit::jsonrpc::{initialize_request, initialized, subscribe_request};
use mcpbus_testkit::modern::{answer_message, headers, request};
use mcpbus_testkit::oidc::{AuthServer, RESOURCE_SERVER, Token};
use mcpbus_testkit::{Answer, HttpClient, ServeProcess, SseReader, block_on, fixture};
use serde_json::{Value, json};

/// The `mcpbus` binary under test.
pub(crate) const MCPBUS: &str = env!("CARGO_BIN_EXE_mcpbus");

/// The environment variable holding mcpbus's introspection secret.
const SECRET_ENV: &str = "MCPBUS_TEST_OIDC_RS_SECRET";

/// The bound on a GET stream's answer and on an event's arrival on it.
const STREAM_TIMEOUT: Duration = Duration::from_secs(15);

/// `[auth.oauth]` and `[[access.rules]]` for an issuer and a resource (`{issuer}`,
/// `{resource}`, `{client}`, `{secret_env}` filled in).
///
/// - `leeway_secs = 0`: the provider's 2 s tokens must count as expired once their `exp` passed.
/// - `jwks_min_refresh_secs = 0`: a token signed with a rotated key makes mcpbus fetch the keys
///   again at once (the default 30 s would make the rotation test wait, not test more).
/// - `cache_secs = 0`: introspection answers are not reused, so a revocation is seen at once (the
///   default would accept a revoked token for up to a minute, as docs/auth.md says).
const AUTH_CONFIG: &str = r#"
[auth.oauth]
issuer = "{issuer}"
resource = "{resource}"
required_scopes = ["mcp"]
scopes_supported = ["mcp", "events:subscribe", "events:publish"]
publish_scope = "events:publish"
leeway_secs = 0
jwks_min_refresh_secs = 0

[auth.oauth.introspection]
client_id = "{client}"
client_secret_env = "{secret_env}"
cache_secs = 0

[[access.rules]]
name = "an agent reads its own inbox"
who = { scopes = ["events:subscribe"] }
actions = ["subscribe"]
topics = ["agents/{agent_id}/inbox"]

[[access.rules]]
name = "publishers write to any inbox"
who = { scopes = ["events:publish"] }
actions = ["publish"]
topics = ["agents/+/inbox"]
"#;

/// The inbox topic of agent `agent`.
pub(crate) fn inbox(agent: &str) -> String {
    format!("agents/{agent}/inbox")
}

/// A configuration file in the temp directory, removed when dropped.
pub(crate) struct TempConfig(pub(crate) PathBuf);

impl TempConfig {
    /// The HTTP fixture (publish tool on, shared publish token set) with `[auth.oauth]` for
    /// `auth`'s issuer and `resource`, introspection as `mcpbus-rs`, and the inbox rules.
    pub(crate) fn oidc(name: &str, auth: &AuthServer, resource: &str) -> TempConfig {
        let base = std::fs::read_to_string(fixture("http.toml")).unwrap();
        let extra = AUTH_CONFIG
            .replace("{issuer}", auth.issuer())
            .replace("{resource}", resource)
            .replace("{client}", &RESOURCE_SERVER.id)
            .replace("{secret_env}", SECRET_ENV);
        let file = format!("mcpbus-auth-oidc-{name}-{}.toml", std::process::id());
        let path = std::env::temp_dir().join(file);
        std::fs::write(&path, format!("{base}\n{extra}")).unwrap();
        TempConfig(path)
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A loopback port free at the time of asking: the resource URL names the port, so it is
/// chosen before `mcpbus serve` starts.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

/// `mcpbus serve --listen 127.0.0.1:PORT --config CONFIG EXTRA...` with the introspection
/// secret in its environment.
pub(crate) fn serve(config: &TempConfig, port: u16, extra: &[&str]) -> ServeProcess {
    let mut cmd = Command::new(MCPBUS);
    cmd.arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--config")
        .arg(&config.0)
        .args(extra)
        .env("MCPBUS_LOG", "info")
        .env(SECRET_ENV, RESOURCE_SERVER.secret.as_deref().unwrap())
        .env_remove("MCPBUS_REDIS")
        .env_remove("MCPBUS_PUBLISH_TOKEN")
        .env_remove("MCPBUS_CONFIG");
    let server = ServeProcess::spawn(cmd);
    assert_eq!(server.port, port, "listening elsewhere: {}", server.log());
    server
}

/// One `mcpbus serve` whose resource URL is its own MCP endpoint, as a client sees it.
pub(crate) fn single(name: &str, auth: &AuthServer) -> (ServeProcess, TempConfig) {
    let port = free_port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let config = TempConfig::oidc(name, auth, &resource);
    (serve(&config, port, &[]), config)
}

/// The metadata pointer of a server's challenges for `resource`
/// (`http://HOST/.well-known/oauth-protected-resource/mcp`).
pub(crate) fn metadata_url(resource: &str) -> String {
    let (origin, path) = resource.split_at(resource.find("/mcp").unwrap());
    format!("{origin}/.well-known/oauth-protected-resource{path}")
}

/// Asserts a `401` carrying the `invalid_token` challenge with the metadata pointer.
pub(crate) fn assert_invalid_token(answer: &Answer, resource: &str, what: &str) {
    assert_eq!(answer.status, 401, "{what}: {}", answer.text());
    let challenge = answer
        .header("www-authenticate")
        .unwrap_or_else(|| panic!("{what}: no WWW-Authenticate"));
    let pointer = format!("resource_metadata=\"{}\"", metadata_url(resource));
    assert!(
        challenge.starts_with("Bearer ")
            && challenge.contains("error=\"invalid_token\"")
            && challenge.contains(&pointer),
        "{what}: {challenge}"
    );
}

/// A handshake-era POST to `server`'s `/mcp`, on `session` if given, with `token`.
pub(crate) fn legacy(
    server: &ServeProcess,
    session: Option<&str>,
    token: Option<&str>,
    body: &Value,
) -> Answer {
    block_on(HttpClient::new(server.mcp_url()).post_with_token(session, token, body))
}

/// Opens a handshake-era session on `server` with `token` and confirms it; its id.
pub(crate) fn open_session(server: &ServeProcess, token: &str) -> String {
    let opened = legacy(server, None, Some(token), &initialize_request("auth-oidc"));
    assert_eq!(opened.status, 200, "initialize: {}", opened.text());
    let session = opened.header("mcp-session-id").unwrap().to_owned();
    let confirmed = legacy(server, Some(&session), Some(token), &initialized());
    assert_eq!(confirmed.status, 202, "initialized: {}", confirmed.text());
    session
}

/// `events/subscribe` to `topics` on `session` at `server` with `token`: the result, or a
/// panic naming the refusal.
pub(crate) fn subscribe(
    server: &ServeProcess,
    session: &str,
    token: &str,
    topics: &[&str],
) -> Value {
    let answer = legacy(
        server,
        Some(session),
        Some(token),
        &subscribe_request(2, topics),
    );
    assert_eq!(answer.status, 200, "events/subscribe: {}", answer.text());
    let message = answer_message(&answer);
    message["result"].clone()
}

/// The patterns a subscribe result subscribed, and those it rejected with their reasons.
pub(crate) fn subscribed_and_rejected(result: &Value) -> (Vec<String>, Vec<(String, String)>) {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let subscribed = result["subscribed"].as_array().cloned().unwrap_or_default();
    let rejected = result["rejected"].as_array().cloned().unwrap_or_default();
    (
        subscribed.iter().map(|s| text(&s["pattern"])).collect(),
        rejected
            .iter()
            .map(|r| (text(&r["pattern"]), text(&r["reason"])))
            .collect(),
    )
}

/// A 2026-07-28 request to `server` with `token` (none: anonymous); the HTTP answer.
pub(crate) fn modern(
    server: &ServeProcess,
    token: Option<&str>,
    method: &str,
    params: Value,
) -> Answer {
    let message = request(1, method, params, json!({}));
    let mut owned = headers(&message);
    if let Some(token) = token {
        owned.push(("authorization".into(), format!("Bearer {token}")));
    }
    let borrowed: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    server.request("POST", "/mcp", &borrowed, message.to_string().as_bytes())
}

/// `events/poll` of agent `agent`'s inbox (the declared `agents/{agent_id}/inbox` bound to it)
/// from `cursor` (none: from now) with `token`; the JSON-RPC answer.
pub(crate) fn poll_inbox(
    server: &ServeProcess,
    token: &str,
    agent: &str,
    cursor: Option<&str>,
) -> Value {
    let params = json!({
        "name": "agents/{agent_id}/inbox",
        "arguments": {"agent_id": agent},
        "cursor": cursor,
    });
    let answer = modern(server, Some(token), "events/poll", params);
    assert_eq!(answer.status, 200, "events/poll: {}", answer.text());
    answer_message(&answer)
}

/// The events of an `events/poll` answer (none when it has none), and their ids in order.
pub(crate) fn polled_events(answer: &Value) -> (Vec<Value>, Vec<String>) {
    let events = answer["result"]["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ids = events
        .iter()
        .filter_map(|e| e["eventId"].as_str().map(str::to_owned))
        .collect();
    (events, ids)
}

/// `whoami` in the 2026-07-28 era with `token`; the HTTP answer.
pub(crate) fn whoami(server: &ServeProcess, token: &str) -> Answer {
    let params = json!({"name": "whoami", "arguments": {}});
    modern(server, Some(token), "tools/call", params)
}

/// The agent id `whoami` reports for `token`; panics unless the call succeeded.
pub(crate) fn agent_of(server: &ServeProcess, token: &str) -> String {
    let answer = whoami(server, token);
    assert_eq!(answer.status, 200, "whoami: {}", answer.text());
    let message = answer_message(&answer);
    let who = &message["result"]["structuredContent"];
    who["agentId"]
        .as_str()
        .unwrap_or_else(|| panic!("whoami: {message}"))
        .to_owned()
}

/// `POST /publish` of `payload` on `topic` with `token`.
pub(crate) fn publish(server: &ServeProcess, token: &str, topic: &str, payload: &Value) -> Answer {
    let auth = format!("Bearer {token}");
    let headers = [
        ("Content-Type", "application/json"),
        ("Authorization", auth.as_str()),
    ];
    let body = json!({"topic": topic, "payload": payload}).to_string();
    server.request("POST", "/publish", &headers, body.as_bytes())
}

/// Waits until `token` (a JWT) is past its `exp` by a full second, as mcpbus (with
/// `leeway_secs = 0`) and the provider count it. Bounded by the token's own lifetime.
pub(crate) fn wait_until_expired(token: &Token) {
    let exp = token.claims()["exp"].as_u64().unwrap();
    let deadline = Duration::from_secs(exp + 1);
    loop {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        if now > deadline {
            return;
        }
        std::thread::sleep(deadline - now + Duration::from_millis(50));
    }
}

/// Opens `session`'s GET stream on `server` with `token` and reads its messages on a thread of
/// its own; returns once the stream is open (panics unless it is a 200).
pub(crate) fn open_stream(
    server: &ServeProcess,
    session: &str,
    token: &str,
) -> mpsc::Receiver<Value> {
    let client = HttpClient::new(server.mcp_url()).with_bearer(token);
    let session = session.to_owned();
    let (tx, rx) = mpsc::channel();
    let (opened_tx, opened) = mpsc::channel();
    thread::spawn(move || {
        block_on(async move {
            let response = client.get_stream(&session, None).await;
            let _ = opened_tx.send(response.status().as_u16());
            let mut sse = SseReader::new(response);
            while let Some(event) = sse.next_event().await {
                let Ok(message) = serde_json::from_str(&event.data) else {
                    continue; // a priming event carries no message
                };
                if tx.send(message).is_err() {
                    return;
                }
            }
        })
    });
    let status = opened
        .recv_timeout(STREAM_TIMEOUT)
        .expect("the GET stream's answer");
    assert_eq!(status, 200, "the GET stream with the session's token");
    rx
}

/// The first `events/emit` notification on `stream` (from [`open_stream`]); panics if none
/// comes within a bound.
pub(crate) fn next_emit(stream: &mpsc::Receiver<Value>) -> Value {
    let deadline = Instant::now() + STREAM_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = stream
            .recv_timeout(left)
            .expect("an events/emit notification on the GET stream");
        if message["method"] == "events/emit" {
            return message["params"].clone();
        }
    }
}
