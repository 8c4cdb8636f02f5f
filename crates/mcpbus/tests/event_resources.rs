//! The resource bridge (docs/events.md, "Events through resources"): each topic's retained
//! value is a resource of the template `mcpbus://retained/{+topic}`, and its subscribers hear of
//! every change, in both eras (`resources/subscribe`; a `subscriptions/listen` stream).

#![allow(clippy::unwrap_used)] // tests unwrap to fail loudly

use std::time::Duration;

use mcpbus::client::{Client, Era};
use mcpbus::events::{Event, TopicSpec};
use mcpbus::proto::error_codes;
use mcpbus::proto::jsonrpc::Notification;
use mcpbus::proto::mcp::ResourceContents;
use mcpbus::proto::modern::SubscriptionFilter;
use mcpbus::server::Server;
use serde_json::{Value, json};
use tokio::sync::mpsc;

fn server() -> Server {
    Server::builder("resources-test", "1")
        .topic(TopicSpec::content("build/+").retained(true))
        .topic(TopicSpec::content("alerts/+"))
        .event_resources()
        .build()
        .unwrap()
}

async fn connect(server: &Server, era: Era) -> (Client, mpsc::UnboundedReceiver<Notification>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (a, b) = mcpbus::transport::duplex(1 << 16);
    server.start(a);
    let client = Client::builder("resources-client", "1")
        .era(era)
        .on_notification(move |n| {
            let _ = tx.send(n);
        })
        .connect(b)
        .await
        .unwrap();
    (client, rx)
}

async fn updated(rx: &mut mpsc::UnboundedReceiver<Notification>) -> String {
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("a notification in time")
            .unwrap();
        if n.method == "notifications/resources/updated" {
            return n.params.unwrap()["uri"].as_str().unwrap().to_owned();
        }
    }
}

async fn read_json(client: &Client, uri: &str) -> Value {
    let read = client.read_resource(uri).await.unwrap();
    match &read.contents[0] {
        ResourceContents::Text(t) => serde_json::from_str(&t.text).unwrap(),
        other => panic!("text expected: {other:?}"),
    }
}

async fn publish(server: &Server, topic: &str, payload: Value) -> String {
    let report = server.events().publish(Event::new(topic, payload)).await;
    report.unwrap().event_id
}

#[tokio::test]
async fn a_topic_resource_reads_its_retained_value_and_tells_subscribers_of_changes() {
    for era in [Era::Legacy, Era::Modern] {
        let server = server();
        let (client, mut notes) = connect(&server, era).await;
        let templates = client.list_resource_templates().await.unwrap();
        let uris: Vec<&str> = templates.iter().map(|t| t.uri_template.as_str()).collect();
        assert_eq!(uris, ["mcpbus://retained/{+topic}"], "{era:?}");

        let uri = "mcpbus://retained/build/web";
        let filter = SubscriptionFilter {
            resource_subscriptions: Some(vec![uri.into(), "mcpbus://retained".into()]),
            ..SubscriptionFilter::default()
        };
        client.listen(filter).await.unwrap();
        let first = publish(&server, "build/web", json!({"state": "green"})).await;
        let mut told = vec![updated(&mut notes).await, updated(&mut notes).await];
        told.sort();
        assert_eq!(told, ["mcpbus://retained", uri], "{era:?}");
        let value = read_json(&client, uri).await;
        assert_eq!(value["eventId"], first.as_str());
        assert_eq!(value["payload"], json!({"state": "green"}));

        // An event that is not retained changes nothing; another topic's value is not this one.
        publish(&server, "alerts/x", json!(1)).await;
        publish(&server, "build/api", json!({"state": "red"})).await;
        assert_eq!(updated(&mut notes).await, "mcpbus://retained", "{era:?}");
        let second = publish(&server, "build/web", json!({"state": "red"})).await;
        let mut told = vec![updated(&mut notes).await, updated(&mut notes).await];
        told.sort();
        assert_eq!(told, ["mcpbus://retained", uri], "{era:?}");
        assert_eq!(read_json(&client, uri).await["eventId"], second.as_str());
        client.close().await;
    }
}

#[tokio::test]
async fn topics_without_a_value_and_patterns_are_refused() {
    let server = server();
    let (client, _notes) = connect(&server, Era::Legacy).await;
    let code = |r: Result<_, mcpbus::Error>| match r {
        Err(mcpbus::Error::Remote(e)) => e.code,
        other => panic!("an error expected, got {other:?}"),
    };
    let none = client.read_resource("mcpbus://retained/build/none").await;
    assert_eq!(code(none), error_codes::RESOURCE_NOT_FOUND);
    let pattern = client.read_resource("mcpbus://retained/build/+").await;
    assert_eq!(code(pattern), error_codes::INVALID_PARAMS);
    publish(&server, "build/web", json!(1)).await;
    let all = read_json(&client, "mcpbus://retained").await;
    assert_eq!(all["retained"][0]["topic"], "build/web");
    let topics = read_json(&client, "mcpbus://topics").await;
    assert_eq!(topics["topics"][0]["pattern"], "build/+");
}
