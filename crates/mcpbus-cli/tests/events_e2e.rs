//! End to end: the `mcpbus` binary over stdio, driven by the mcpbus client SDK.
//!
//! Covers the events extension as docs/protocol.md section 2 defines it: listing topics (2.2),
//! subscribing with wildcards and scoped topics (2.3, 2.5), at-most-once delivery and retained
//! values with expiry (2.4), and unsubscribing.

#![allow(clippy::unwrap_used)] // tests unwrap to fail loudly

use std::time::Duration;

use mcpbus::Error;
use mcpbus::client::Client;
use mcpbus::transport::ChildProcess;
use mcpbus_proto::events::{EventParams, reject_reason};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const CONFIG: &str = r#"
[server]
name = "e2e"

[[events.topics]]
pattern = "build/status"
kind = "content"
retained = true

[[events.topics]]
pattern = "deploy/status"
kind = "content"
retained = true

[[events.topics]]
pattern = "agents/{agent_id}/inbox"
kind = "content"

[publish]
enabled = true
"#;

struct Harness {
    client: Client,
    events: mpsc::UnboundedReceiver<EventParams>,
    _dir: TempDir,
}

/// A scratch directory removed on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn start() -> Harness {
    let dir = std::env::temp_dir().join(format!(
        "mcpbus-e2e-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcpbus"));
    cmd.arg("serve").arg("--stdio").arg("--config").arg(&config);
    cmd.env("MCPBUS_LOG", "warn");
    let (tx, events) = mpsc::unbounded_channel();
    let client = Client::builder("e2e", "1.0.0")
        .on_event(move |e| {
            let _ = tx.send(e);
        })
        .connect(ChildProcess::spawn(cmd).unwrap())
        .await
        .unwrap();
    Harness {
        client,
        events,
        _dir: TempDir(dir),
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Publishes through the server's `publish` tool; returns its structured report.
async fn publish(client: &Client, args: Value) -> Value {
    let result = client.call_tool("publish", args).await.unwrap();
    assert_ne!(result.is_error, Some(true), "publish failed: {result:?}");
    result.structured_content.unwrap()
}

async fn next_event(h: &mut Harness) -> EventParams {
    tokio::time::timeout(Duration::from_secs(5), h.events.recv())
        .await
        .expect("no event within 5 s")
        .expect("event channel closed")
}

#[tokio::test]
async fn events_end_to_end_over_stdio() {
    let mut h = start().await;
    let client = h.client.clone();

    // InitializeResult._meta.session_id (2.1) and the events capability.
    let sid = client
        .session_id()
        .expect("session_id in _meta")
        .to_string();
    assert_eq!(sid.len(), 32, "128-bit hex session id");
    let caps = client
        .capabilities()
        .events
        .as_ref()
        .expect("events capability");
    assert_eq!(caps.topics.len(), 3);

    // events/list (2.2).
    let topics = client.list_events().await.unwrap();
    let patterns: Vec<&str> = topics.iter().map(|t| t.pattern.as_str()).collect();
    assert_eq!(
        patterns,
        ["build/status", "deploy/status", "agents/{agent_id}/inbox"]
    );

    // Retained values: one that lives, one that expires before we subscribe (2.4).
    let green = publish(
        &client,
        json!({"topic": "build/status", "payload": {"state": "green"}}),
    )
    .await;
    assert_eq!(green["retained"], true);
    let expires = (chrono::Utc::now() + chrono::Duration::milliseconds(300)).to_rfc3339();
    publish(
        &client,
        json!({"topic": "deploy/status", "payload": {"v": 1}, "expiresAt": expires}),
    )
    .await;
    // An event that has already expired is refused, not delivered.
    let past = client
        .call_tool(
            "publish",
            json!({"topic": "deploy/status", "payload": 0, "expiresAt": "2000-01-01T00:00:00Z"}),
        )
        .await
        .unwrap();
    assert_eq!(past.is_error, Some(true));
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A pattern of 9 segments fails the whole request with -32602 (2.3).
    match client.subscribe(["a/b/c/d/e/f/g/h/i"]).await {
        Err(Error::Remote(e)) => assert_eq!(e.code, -32602),
        other => panic!("expected -32602, got {other:?}"),
    }

    // Subscribe: wildcards, our own inbox, someone else's inbox (2.5).
    let inbox = format!("agents/{sid}/inbox");
    let result = client
        .subscribe([
            "+/status",
            inbox.as_str(),
            "agents/other/inbox",
            "build/#",
            "agents/+/inbox",
        ])
        .await
        .unwrap();
    let subscribed: Vec<&str> = result
        .subscribed
        .iter()
        .map(|s| s.pattern.as_str())
        .collect();
    assert_eq!(subscribed, ["+/status", inbox.as_str(), "build/#"]);
    let rejected: Vec<(&str, &str)> = result
        .rejected
        .iter()
        .map(|r| (r.pattern.as_str(), r.reason.as_str()))
        .collect();
    assert_eq!(
        rejected,
        [
            ("agents/other/inbox", reject_reason::PERMISSION_DENIED),
            ("agents/+/inbox", reject_reason::PERMISSION_DENIED)
        ]
    );
    // The live retained value comes once although two patterns match it; the expired one never.
    assert_eq!(result.retained.len(), 1, "{:?}", result.retained);
    assert_eq!(result.retained[0].topic, "build/status");
    assert_eq!(
        result.retained[0].event_id,
        green["eventId"].as_str().unwrap()
    );
    assert!(result.retained[0].retained);
    assert_eq!(result.retained[0].payload, json!({"state": "green"}));

    // One event, two matching patterns: delivered once (2.4).
    let red = publish(
        &client,
        json!({"topic": "build/status", "payload": {"state": "red"}, "priority": "high"}),
    )
    .await;
    assert_eq!(red["delivered"], 1);
    let got = next_event(&mut h).await;
    assert_eq!(got.topic, "build/status");
    assert_eq!(got.event_id, red["eventId"].as_str().unwrap());
    assert_eq!(got.payload, json!({"state": "red"}));
    // The next event is the inbox message: nothing was duplicated in between.
    let hello = publish(&client, json!({"topic": inbox, "payload": "hello"})).await;
    assert_eq!(hello["delivered"], 1);
    let got = next_event(&mut h).await;
    assert_eq!(got.topic, inbox);
    assert_eq!(got.source.as_deref(), Some(format!("agent:{sid}").as_str()));

    // Unsubscribe: the server no longer delivers (its own count says so) and nothing arrives.
    let result = client
        .unsubscribe(["+/status", "build/#", inbox.as_str(), "never/subscribed"])
        .await
        .unwrap();
    assert_eq!(result.unsubscribed.len(), 4);
    assert!(client.subscriptions().is_empty());
    let after = publish(
        &client,
        json!({"topic": "build/status", "payload": {"state": "amber"}}),
    )
    .await;
    assert_eq!(after["delivered"], 0);
    let after = publish(&client, json!({"topic": inbox, "payload": "anyone?"})).await;
    assert_eq!(after["delivered"], 0);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), h.events.recv())
            .await
            .is_err(),
        "an event arrived after unsubscribing"
    );

    client.close().await;
}

#[tokio::test]
async fn the_server_exits_cleanly_on_end_of_input() {
    let h = start().await;
    let client = h.client.clone();
    client.ping().await.unwrap();
    // Closing our side closes the server's stdin; it must exit on its own, not be killed.
    tokio::time::timeout(Duration::from_secs(5), client.close())
        .await
        .expect("server did not exit on EOF");
}
