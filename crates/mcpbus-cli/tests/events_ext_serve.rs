//! SEP-3415 against `mcpbus serve` over stdio and HTTP (docs/events.md): what a subscription
//! from now starts with (retained values), a cursor older than the log (`truncated` with a
//! fresh cursor), a scoped topic refused without a principal and served with one (a bearer
//! token over HTTP), and event types or topics outside every declared pattern (NotFound).
//! The server's in-memory log is made small with `[events] history`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use mcpbus::Error;
use mcpbus::client::{Client, Era};
use mcpbus::proto::error_codes;
use mcpbus::proto::events_ext::{PollEventsRequestParams, PollEventsResult, SubscriptionParams};
use mcpbus::transport::{ChildProcess, HttpClientConfig, HttpClientTransport};
use mcpbus_testkit::{ServeProcess, fixture};
use serde_json::{Map, Value, json};

const MCPBUS: &str = env!("CARGO_BIN_EXE_mcpbus");
const HISTORY: usize = 20;
const ALICE_TOKEN: &str = "alice-token-0123456789abcdef";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Via {
    Stdio,
    Http,
}

/// The publish fixture with a log of [`HISTORY`] events and a bearer token for Alice, in a
/// file removed when dropped.
struct TempConfig(std::path::PathBuf);

impl TempConfig {
    fn new() -> Self {
        let base = std::fs::read_to_string(fixture("publish.toml")).unwrap();
        let text = base.replacen("[events]\n", &format!("[events]\nhistory = {HISTORY}\n"), 1)
            + "\n[auth]\ntokens = [{ principal = \"alice\", token_env = \"MCPBUS_TEST_ALICE\" }]\n";
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("mcpbus-events-serve-{}-{nanos}.toml", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, text).unwrap();
        TempConfig(path)
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A 2026-07-28 client of `mcpbus serve`; over HTTP as Alice when `token`.
async fn connect(
    via: Via,
    config: &std::path::Path,
    token: bool,
) -> (Client, Option<ServeProcess>) {
    let builder = Client::builder("events-serve", "1").era(Era::Modern);
    match via {
        Via::Stdio => {
            let mut cmd = tokio::process::Command::new(MCPBUS);
            cmd.args(["serve", "--stdio", "--config"])
                .arg(config)
                .env("MCPBUS_LOG", "warn")
                .env("MCPBUS_TEST_ALICE", ALICE_TOKEN)
                .env_remove("MCPBUS_CONFIG");
            let client = builder.connect(ChildProcess::spawn(cmd).unwrap());
            (client.await.unwrap(), None)
        }
        Via::Http => {
            let mut cmd = ServeProcess::command(MCPBUS, config, "warn", &[]);
            cmd.env("MCPBUS_TEST_ALICE", ALICE_TOKEN);
            let server = ServeProcess::spawn(cmd);
            let mut http = HttpClientConfig::default();
            if token {
                let value = format!("Bearer {ALICE_TOKEN}");
                http.headers.push(("Authorization".into(), value));
            }
            let transport = HttpClientTransport::new(&server.mcp_url(), http).unwrap();
            (builder.connect(transport).await.unwrap(), Some(server))
        }
    }
}

async fn publish(client: &Client, topic: &str, payload: Value) -> String {
    let result = client
        .call_tool("publish", json!({"topic": topic, "payload": payload}))
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    result.structured_content.unwrap()["eventId"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn poll(
    client: &Client,
    name: &str,
    arguments: Value,
    cursor: Option<&str>,
) -> Result<PollEventsResult, Error> {
    let arguments: Option<Map<String, Value>> = arguments.as_object().cloned();
    let params = PollEventsRequestParams {
        subscription: SubscriptionParams {
            name: name.into(),
            arguments,
            cursor: Some(cursor.map(str::to_owned)),
            max_age_ms: None,
        },
        max_events: Some(1000),
        timeout_ms: None,
        meta: None,
    };
    client.poll_events(params).await
}

fn code(answer: Result<PollEventsResult, Error>) -> (i64, Value) {
    match answer {
        Err(Error::Remote(e)) => (e.code, e.data.unwrap_or(Value::Null)),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn retained_values_first_then_a_cursor_older_than_the_log_is_truncated() {
    let config = TempConfig::new();
    for via in [Via::Stdio, Via::Http] {
        let (client, _server) = connect(via, &config.0, false).await;
        let green = publish(&client, "build/status", json!({"state": "green"})).await;
        let first = poll(&client, "build/status", json!({}), None)
            .await
            .unwrap();
        assert_eq!(first.events.len(), 1, "{via:?}: the retained value first");
        assert_eq!(first.events[0].event_id, green);
        assert_eq!(first.events[0].data["retained"], true);
        assert!(!first.truncated);
        let early = first.cursor.clone().unwrap();

        // More than the log keeps, then a resume from before them.
        let mut ids = Vec::new();
        for n in 0..HISTORY + 10 {
            ids.push(publish(&client, "alerts/disk", json!({"n": n})).await);
        }
        let resumed = poll(&client, "alerts/+", json!({}), Some(&early))
            .await
            .unwrap();
        assert!(resumed.truncated, "{via:?}: {resumed:?}");
        let fresh = resumed.cursor.clone().unwrap();
        assert_ne!(fresh, early);
        let got: Vec<&str> = resumed.events.iter().map(|e| e.event_id.as_str()).collect();
        assert!(!got.is_empty() && got.len() < ids.len(), "{via:?}: {got:?}");
        assert_eq!(
            got,
            ids[ids.len() - got.len()..],
            "{via:?}: the newest kept, in order"
        );
        // From the fresh cursor on, nothing is missing any more.
        let next = poll(&client, "alerts/+", json!({}), Some(&fresh))
            .await
            .unwrap();
        assert!(
            !next.truncated && next.events.is_empty(),
            "{via:?}: {next:?}"
        );
        client.close().await;
    }
}

#[tokio::test]
async fn scoped_topics_need_a_principal_and_undeclared_ones_are_not_found() {
    let config = TempConfig::new();
    for via in [Via::Stdio, Via::Http] {
        let (client, _server) = connect(via, &config.0, false).await;
        let inbox = poll(&client, "agents/{agent_id}/inbox", json!({}), None).await;
        let (refused, _) = code(inbox);
        assert_eq!(refused, error_codes::FORBIDDEN, "{via:?}: no principal");
        let (missing, data) = code(poll(&client, "nope/+", json!({}), None).await);
        assert_eq!(missing, error_codes::NOT_FOUND, "{via:?}");
        assert_eq!(data["kind"], "event");
        let outside = poll(&client, "alerts/+", json!({"topic": "other/x"}), None).await;
        assert_eq!(code(outside).0, error_codes::NOT_FOUND, "{via:?}");
        client.close().await;
    }

    // Over HTTP with Alice's token: her own inbox, and nobody else's.
    let (alice, _server) = connect(Via::Http, &config.0, true).await;
    let start = poll(&alice, "agents/{agent_id}/inbox", json!({}), None)
        .await
        .unwrap();
    let id = publish(&alice, "agents/alice/inbox", json!({"text": "hi"})).await;
    publish(&alice, "agents/bob/inbox", json!({"text": "not yours"})).await;
    let cursor = start.cursor.as_deref();
    let got = poll(&alice, "agents/{agent_id}/inbox", json!({}), cursor)
        .await
        .unwrap();
    let ids: Vec<&str> = got.events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, [id.as_str()]);
    let bobs = poll(
        &alice,
        "agents/{agent_id}/inbox",
        json!({"agent_id": "bob"}),
        None,
    )
    .await;
    assert_eq!(code(bobs).0, error_codes::FORBIDDEN);
    alice.close().await;
}
