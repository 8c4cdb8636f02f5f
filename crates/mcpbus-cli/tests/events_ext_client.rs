//! The SDK client's SEP-3415 subscriptions against `mcpbus serve`, over stdio and over HTTP, in
//! the 2026-07-28 era (docs/client.md): push and poll deliver the events published through the
//! server's `publish` tool with increasing cursors; a subscription stopped and started again
//! from its cursor gets the 500 events published meanwhile exactly once, in order; a cursor the
//! log cannot serve is reported as a gap.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::time::Duration;

use mcpbus::client::{Client, Delivery, Era, SubscriptionEvent};
use mcpbus::proto::events::EventParams;
use mcpbus::transport::{ChildProcess, HttpClientConfig, HttpClientTransport};
use mcpbus_testkit::{ServeProcess, fixture};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const MCPBUS: &str = env!("CARGO_BIN_EXE_mcpbus");
const LIMIT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy)]
enum Via {
    Stdio,
    Http,
}

/// A 2026-07-28 client of `mcpbus serve` with the publish tool, and the server if over HTTP.
async fn connect(via: Via) -> (Client, Option<ServeProcess>) {
    let builder = Client::builder("events-ext-client", "1").era(Era::Modern);
    match via {
        Via::Stdio => {
            let mut cmd = tokio::process::Command::new(MCPBUS);
            cmd.args(["serve", "--stdio", "--config"])
                .arg(fixture("publish.toml"))
                .env("MCPBUS_LOG", "warn")
                .env_remove("MCPBUS_CONFIG");
            let client = builder
                .connect(ChildProcess::spawn(cmd).unwrap())
                .await
                .unwrap();
            (client, None)
        }
        Via::Http => {
            let server = ServeProcess::start(MCPBUS, &fixture("http.toml"), "warn", &[]);
            let transport =
                HttpClientTransport::new(&server.mcp_url(), HttpClientConfig::default()).unwrap();
            (builder.connect(transport).await.unwrap(), Some(server))
        }
    }
}

async fn publish(client: &Client, topic: &str, n: u64) -> String {
    let result = client
        .call_tool("publish", json!({"topic": topic, "payload": {"n": n}}))
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    result.structured_content.unwrap()["eventId"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn collector() -> (
    impl Fn(SubscriptionEvent) + Send + Sync + 'static,
    mpsc::UnboundedReceiver<SubscriptionEvent>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        move |e| {
            let _ = tx.send(e);
        },
        rx,
    )
}

async fn next(rx: &mut mpsc::UnboundedReceiver<SubscriptionEvent>) -> SubscriptionEvent {
    tokio::time::timeout(LIMIT, rx.recv())
        .await
        .expect("a report in time")
        .expect("the subscription is still there")
}

async fn next_event(rx: &mut mpsc::UnboundedReceiver<SubscriptionEvent>) -> EventParams {
    loop {
        match next(rx).await {
            SubscriptionEvent::Event(e) => return e,
            SubscriptionEvent::Cursor(_) => {}
            other => panic!("expected an event, got {other:?}"),
        }
    }
}

fn cursor(e: &EventParams) -> Option<u64> {
    e.meta
        .as_ref()?
        .get("mcpbus/cursor")?
        .as_str()?
        .parse()
        .ok()
}

#[tokio::test]
async fn push_and_poll_against_mcpbus_serve_resume_without_loss_or_repeat() {
    for via in [Via::Stdio, Via::Http] {
        for delivery in [Delivery::Push, Delivery::Poll] {
            let what = format!("{via:?} {delivery:?}");
            let (client, _server) = connect(via).await;
            let (handler, mut rx) = collector();
            let sub = client
                .subscribe_events("alerts/+")
                .delivery(delivery)
                .start(handler)
                .await
                .unwrap();
            let mut last = 0;
            for n in 1..=3 {
                let id = publish(&client, "alerts/disk", n).await;
                let e = next_event(&mut rx).await;
                assert_eq!(e.event_id, id, "{what}");
                assert_eq!(e.topic, "alerts/disk", "{what}");
                assert_eq!(e.payload, json!({"n": n}), "{what}");
                let c = cursor(&e).unwrap();
                assert!(c > last, "{what}: cursor {c} after {last}");
                last = c;
            }
            let saved = sub.stop().await;
            assert_eq!(saved, Some(last.to_string()), "{what}");

            // Away: 500 events of the type, and others that must not come.
            let mut ids = Vec::new();
            for n in 1..=500 {
                ids.push(publish(&client, "alerts/disk", n).await);
                if n % 50 == 0 {
                    publish(&client, "build/status", n).await;
                }
            }
            let (handler, mut rx) = collector();
            let sub = client
                .subscribe_events("alerts/+")
                .delivery(delivery)
                .cursor(saved)
                .start(handler)
                .await
                .unwrap();
            for (n, id) in ids.iter().enumerate() {
                let e = next_event(&mut rx).await;
                assert_eq!(&e.event_id, id, "{what}: event {}", n + 1);
            }
            let extra = tokio::time::timeout(Duration::from_millis(400), async {
                loop {
                    if let SubscriptionEvent::Event(e) = next(&mut rx).await {
                        return e;
                    }
                }
            })
            .await;
            assert!(extra.is_err(), "{what}: an extra event {extra:?}");
            sub.stop().await;
            client.close().await;
        }
    }
}

#[tokio::test]
async fn a_cursor_the_log_cannot_serve_is_reported_as_a_gap_then_delivery_goes_on() {
    for via in [Via::Stdio, Via::Http] {
        for delivery in [Delivery::Push, Delivery::Poll] {
            let what = format!("{via:?} {delivery:?}");
            let (client, _server) = connect(via).await;
            let first = publish(&client, "alerts/disk", 1).await;
            // A cursor from the future (another deployment, or before a restart).
            let (handler, mut rx) = collector();
            let _sub = client
                .subscribe_events("alerts/+")
                .delivery(delivery)
                .cursor(Some("999999".into()))
                .start(handler)
                .await
                .unwrap();
            match next(&mut rx).await {
                SubscriptionEvent::Gap { cursor } => assert!(cursor.is_some(), "{what}"),
                other => panic!("{what}: expected a gap first, got {other:?}"),
            }
            // Delivery resumes from the oldest event kept.
            assert_eq!(next_event(&mut rx).await.event_id, first, "{what}");
            let id = publish(&client, "alerts/disk", 2).await;
            assert_eq!(next_event(&mut rx).await.event_id, id, "{what}");
            client.close().await;
        }
    }
}

#[tokio::test]
async fn event_types_of_mcpbus_serve_are_listed_with_their_modes() {
    for via in [Via::Stdio, Via::Http] {
        let (client, _server) = connect(via).await;
        let types = client.list_event_types().await.unwrap();
        let names: Vec<&str> = types.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "build/status",
                "deploy/status",
                "alerts/+",
                "files/#",
                "agents/{agent_id}/inbox"
            ],
            "{via:?}"
        );
        let modes = serde_json::to_value(&types[0].delivery).unwrap();
        assert_eq!(modes, json!(["poll", "push"]));
        assert_eq!(
            types[2].meta.as_ref().unwrap()["mcpbus/pattern"],
            Value::from("alerts/+")
        );
        client.close().await;
    }
}

#[tokio::test]
async fn events_max_streams_caps_the_push_streams_of_mcpbus_serve() {
    use mcpbus_testkit::HttpClient;
    use mcpbus_testkit::modern::{answer_message, request};

    let text = std::fs::read_to_string(fixture("http.toml"))
        .unwrap()
        .replacen(
            "queue_capacity = 1024",
            "queue_capacity = 1024\nmax_streams = 1",
            1,
        );
    assert!(
        text.contains("max_streams = 1"),
        "the fixture's [events] changed"
    );
    let path = std::env::temp_dir().join(format!("mcpbus-max-streams-{}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    let server = ServeProcess::start(MCPBUS, &path, "warn", &[]);
    let _ = std::fs::remove_file(&path);
    let raw = HttpClient::new(server.mcp_url());
    let stream = |id| {
        request(
            id,
            "events/stream",
            json!({"name": "build/status"}),
            json!({}),
        )
    };
    let first = raw.post_modern_stream(&stream(1)).await;
    assert_eq!(first.status(), 200, "the one stream allowed is open");
    // Bounded: a stream accepted by mistake would never end.
    let second = tokio::time::timeout(LIMIT, raw.post_modern(&stream(2)))
        .await
        .expect("the second events/stream is refused at once");
    let second = answer_message(&second);
    assert_eq!(
        second["error"]["code"],
        mcpbus::proto::error_codes::RESOURCE_EXHAUSTED,
        "{second}"
    );
    assert_eq!(second["error"]["data"]["max"], 1, "{second}");
    drop(first);
}
