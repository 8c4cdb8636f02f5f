//! The tool bridge (docs/events.md, "Events through tools"): a client that knows only tools
//! lists the topics, reads retained values and waits for events with a cursor, in both eras,
//! with the topic rules of the events extensions.

#![allow(clippy::unwrap_used)] // tests unwrap to fail loudly

use std::time::Duration;

use mcpbus::client::{Client, Era};
use mcpbus::events::{Event, TopicSpec};
use mcpbus::proto::mcp::{CallToolResult, ContentBlock};
use mcpbus::server::{EventTools, Server};
use serde_json::{Value, json};

fn server() -> Server {
    Server::builder("bridge-test", "1")
        .topic(TopicSpec::content("build/+").retained(true))
        .topic(TopicSpec::content("agents/{agent_id}/inbox"))
        .event_tools(EventTools::default())
        .build()
        .unwrap()
}

async fn connect(server: &Server, era: Era) -> Client {
    let (a, b) = mcpbus::transport::duplex(1 << 16);
    server.start(a);
    Client::builder("bridge-client", "1")
        .era(era)
        .connect(b)
        .await
        .unwrap()
}

async fn call(client: &Client, name: &str, args: Value) -> CallToolResult {
    client.call_tool(name, args).await.unwrap()
}

fn texts(result: &CallToolResult) -> Vec<&str> {
    result
        .content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::Text(t) => Some(t.text.as_str()),
            _ => None,
        })
        .collect()
}

fn ids(result: &CallToolResult) -> Vec<String> {
    let structured = result.structured_content.as_ref().unwrap();
    let events = structured["events"].as_array().unwrap();
    events
        .iter()
        .map(|e| e["eventId"].as_str().unwrap().to_owned())
        .collect()
}

async fn publish(server: &Server, topic: &str, payload: Value) -> String {
    let report = server.events().publish(Event::new(topic, payload)).await;
    report.unwrap().event_id
}

#[tokio::test]
async fn tools_list_topics_and_read_retained_values_in_both_eras() {
    for era in [Era::Legacy, Era::Modern] {
        let server = server();
        let client = connect(&server, era).await;
        let tools = client.list_tools().await.unwrap();
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["list_topics", "read_retained", "wait_for_events"]);

        let topics = call(&client, "list_topics", json!({})).await;
        let listed = &topics.structured_content.unwrap()["topics"];
        assert_eq!(listed[0]["pattern"], "build/+", "{era:?}");

        let id = publish(&server, "build/web", json!({"state": "green <ok>"})).await;
        let retained = call(&client, "read_retained", json!({"topic": "build/+"})).await;
        let structured = retained.structured_content.clone().unwrap();
        assert_eq!(structured["retained"][0]["eventId"], id.as_str(), "{era:?}");
        let text = texts(&retained)[0];
        assert!(
            text.starts_with("<mcp:event server=\"bridge-test\" topic=\"build/web\""),
            "{text}"
        );
        assert!(text.contains(&format!("event_id=\"{id}\" trust=\"unverified\"")));
        assert!(
            text.contains("green &lt;ok&gt;"),
            "the payload is escaped: {text}"
        );
        client.close().await;
    }
}

#[tokio::test]
async fn waits_return_events_after_their_cursor_exactly_once() {
    for era in [Era::Legacy, Era::Modern] {
        let server = server();
        let client = connect(&server, era).await;
        // From now: nothing yet, and a cursor to wait from.
        let first = call(
            &client,
            "wait_for_events",
            json!({"topic": "build/+", "timeout_ms": 50}),
        )
        .await;
        assert!(ids(&first).is_empty(), "{era:?}");
        let cursor = first.structured_content.unwrap()["cursor"].clone();

        let a = publish(&server, "build/a", json!(1)).await;
        publish(&server, "agents/x/inbox", json!("elsewhere")).await;
        let b = publish(&server, "build/b", json!(2)).await;
        let args = json!({"topic": "build/+", "cursor": cursor, "timeout_ms": 50});
        let second = call(&client, "wait_for_events", args).await;
        assert_eq!(ids(&second), [a.clone(), b.clone()], "{era:?}");
        assert!(texts(&second).last().unwrap().contains("Next cursor"));
        let next = second.structured_content.unwrap()["cursor"].clone();
        assert_ne!(next, cursor);

        // A wait with the new cursor holds until the next event, and returns only it.
        let waiting = {
            let client = client.clone();
            let args = json!({"topic": "build/+", "cursor": next, "timeout_ms": 5000});
            tokio::spawn(async move { call(&client, "wait_for_events", args).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let c = publish(&server, "build/c", json!(3)).await;
        let third = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ids(&third), [c], "{era:?}");
        client.close().await;
    }
}

#[tokio::test]
async fn refusals_are_tool_errors_the_model_can_read() {
    let server = server();
    let client = connect(&server, Era::Legacy).await;
    let cases = [
        (json!({"topic": "nope/+"}), "nope/+"),
        (json!({"topic": "agents/bob/inbox"}), "not allowed"),
        (json!({"topic": "build/#/x"}), "not a topic pattern"),
        (
            json!({"topic": "build/+", "cursor": "no-such-cursor"}),
            "is not a cursor",
        ),
    ];
    for (args, expected) in cases {
        let result = call(&client, "wait_for_events", args.clone()).await;
        assert_eq!(result.is_error, Some(true), "{args}");
        assert!(texts(&result)[0].contains(expected), "{args}: {result:?}");
    }
    // The caller's own inbox, named as declared, is bound to its own id.
    let own = json!({"topic": "agents/{agent_id}/inbox", "timeout_ms": 10});
    let result = call(&client, "wait_for_events", own).await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    // Unknown arguments are refused too, naming what is accepted.
    let extra = json!({"topic": "build/+", "since": 1});
    let result = call(&client, "wait_for_events", extra).await;
    assert_eq!(result.is_error, Some(true));
    assert!(
        texts(&result)[0].contains("unknown field `since`"),
        "{result:?}"
    );
}
