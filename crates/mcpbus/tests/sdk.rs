//! The server and client SDKs against each other over in-memory pipes.

#![allow(clippy::unwrap_used)] // tests unwrap to fail loudly

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mcpbus::client::{Client, Era};
use mcpbus::events::{Event, TopicSpec};
use mcpbus::server::{Context, NoArgs, Server, ToolError};
use mcpbus::service::{RequestOptions, ServiceConfig};
use mcpbus::transport::duplex;
use mcpbus::{Error, proto};
use proto::mcp::{
    CallToolResult, CompleteResult, CreateMessageRequestParams, CreateMessageResult, ElicitAction,
    ElicitRequestFormParams, ElicitRequestParams, ElicitResult, GetPromptResult, LoggingLevel,
    Prompt, PromptArgument, PromptMessage, ReadResourceResult, Resource, ResourceContents,
    ResourceTemplate, Role, Root, SamplingContent, SamplingMessage,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, json};
use tokio::sync::mpsc;

#[derive(Deserialize, JsonSchema)]
struct AddArgs {
    /// First addend.
    a: i64,
    /// Second addend.
    b: i64,
}

fn server() -> Server {
    Server::builder("sdk-test", "0.0.1")
        .instructions("test server")
        .tool("add", "Adds two integers", |args: AddArgs, _ctx| async move {
            Ok(CallToolResult::text((args.a + args.b).to_string()))
        })
        .tool("fail", "Always fails", |_: NoArgs, _ctx| async move {
            Err::<CallToolResult, _>(ToolError::failed("it broke"))
        })
        .tool("slow", "Reports progress, then waits to be cancelled", |_: NoArgs, ctx: Context| async move {
            ctx.progress(1.0, Some(2.0), Some("half".into()));
            ctx.cancellation().cancelled().await;
            Ok(CallToolResult::text("cancelled"))
        })
        .tool("ask", "Samples, elicits and lists roots", |_: NoArgs, ctx: Context| async move {
            let sampled = ctx
                .create_message(CreateMessageRequestParams::new(
                    vec![SamplingMessage::user_text("hi")],
                    10,
                ))
                .await?;
            let elicited = ctx
                .elicit(ElicitRequestParams::Form(ElicitRequestFormParams {
                    message: "name?".into(),
                    requested_schema: Map::new(),
                    meta: None,
                }))
                .await?;
            let roots = ctx.list_roots().await?;
            ctx.log(LoggingLevel::Debug, None, json!("debug noise"));
            ctx.log(LoggingLevel::Warning, Some("ask"), json!("careful"));
            Ok(CallToolResult::structured(json!({
                "model": sampled.model,
                "action": elicited.action,
                "roots": roots.roots.len(),
            })))
        })
        .resource(Resource::new("test://static", "static"), |uri, _ctx| async move {
            Ok(ReadResourceResult {
                contents: vec![ResourceContents::text(uri, Some("text/plain".into()), "static text")],
                meta: None,
            })
        })
        .resource_template(
            ResourceTemplate::new("test://items/{id}", "item"),
            |uri, vars: BTreeMap<String, String>, _ctx| async move {
                Ok(ReadResourceResult {
                    contents: vec![ResourceContents::text(uri, None, format!("item {}", vars["id"]))],
                    meta: None,
                })
            },
        )
        .prompt(
            Prompt {
                arguments: Some(vec![PromptArgument {
                    name: "who".into(),
                    title: None,
                    description: None,
                    required: Some(true),
                }]),
                ..Prompt::new("greet")
            },
            |args: BTreeMap<String, String>, _ctx| async move {
                Ok(GetPromptResult {
                    description: None,
                    messages: vec![PromptMessage::user_text(format!("hello {}", args["who"]))],
                    meta: None,
                })
            },
        )
        .completion(|_p, _ctx| async move { Ok(CompleteResult::from_values(vec!["alpha".into(), "beta".into()])) })
        .topic(TopicSpec::content("news/+").retained(true))
        .topic(TopicSpec::signal("private/{session_id}/+"))
        .topic(TopicSpec::content("vault/{name}").authorize(|_who, req| match req.params.get("name").map(String::as_str) {
            Some("open") => Ok(true),
            Some("boom") => Err("authorizer backend down".into()),
            _ => Ok(false),
        }))
        .build()
        .unwrap()
}

async fn connect(
    server: &Server,
    events: Option<mpsc::UnboundedSender<proto::events::EventParams>>,
) -> Client {
    let (a, b) = duplex(64 * 1024);
    server.start(a);
    // These tests check the handshake era; tests/client_eras.rs covers the 2026-07-28 one.
    let mut builder = Client::builder("sdk-client", "0.0.1").era(Era::Legacy);
    if let Some(tx) = events {
        builder = builder.on_event(move |e| {
            let _ = tx.send(e);
        });
    }
    builder.connect(b).await.unwrap()
}

#[tokio::test]
async fn tools_resources_prompts_and_completion() {
    let server = server();
    let client = connect(&server, None).await;
    assert_eq!(client.server_info().name, "sdk-test");
    assert_eq!(client.instructions(), Some("test server"));

    let tools = client.list_tools().await.unwrap();
    let add = tools.iter().find(|t| t.name == "add").unwrap();
    assert_eq!(add.input_schema["properties"]["a"]["type"], "integer");

    let sum = client
        .call_tool("add", json!({"a": 2, "b": 40}))
        .await
        .unwrap();
    assert_eq!(sum.content[0].as_text(), Some("42"));
    // Arguments that do not fit the schema: an error result the model can read, not a crash.
    let bad = client.call_tool("add", json!({"a": "two"})).await.unwrap();
    assert_eq!(bad.is_error, Some(true));
    assert!(
        bad.content[0]
            .as_text()
            .unwrap()
            .contains("invalid arguments")
    );
    let failed = client.call_tool("fail", json!({})).await.unwrap();
    assert_eq!(failed.is_error, Some(true));
    match client.call_tool("nope", json!({})).await {
        Err(Error::Remote(e)) => assert_eq!(e.code, -32602),
        other => panic!("{other:?}"),
    }

    let text = client.read_resource("test://static").await.unwrap();
    assert_eq!(text.contents[0].uri(), "test://static");
    let item = client.read_resource("test://items/7").await.unwrap();
    match &item.contents[0] {
        ResourceContents::Text(t) => assert_eq!(t.text, "item 7"),
        other => panic!("{other:?}"),
    }
    match client.read_resource("test://missing").await {
        Err(Error::Remote(e)) => {
            assert_eq!(e.code, -32002);
            assert_eq!(e.data, Some(json!({"uri": "test://missing"})));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(client.list_resource_templates().await.unwrap().len(), 1);

    let prompt = client
        .get_prompt(
            "greet",
            BTreeMap::from([("who".to_string(), "you".to_string())]),
        )
        .await
        .unwrap();
    assert_eq!(prompt.messages[0].role, Role::User);
    match client.get_prompt("greet", BTreeMap::new()).await {
        Err(Error::Remote(e)) => assert_eq!(e.code, -32602),
        other => panic!("{other:?}"),
    }
    let completion = client
        .request("completion/complete", Some(json!({"ref": {"type": "ref/prompt", "name": "greet"}, "argument": {"name": "who", "value": "a"}})))
        .await
        .unwrap();
    assert_eq!(completion["completion"]["values"], json!(["alpha", "beta"]));
    match client.request("no/such/method", None).await {
        Err(Error::Remote(e)) => assert_eq!(e.code, -32601),
        other => panic!("{other:?}"),
    }
    client.close().await;
}

#[tokio::test]
async fn server_requests_reach_client_callbacks_and_logs_respect_the_level() {
    let server = server();
    let (a, b) = duplex(64 * 1024);
    server.start(a);
    let (log_tx, mut logs) = mpsc::unbounded_channel();
    let client = Client::builder("c", "1")
        .on_sampling(|p| async move {
            assert_eq!(p.max_tokens, 10);
            Ok(CreateMessageResult {
                role: Role::Assistant,
                content: SamplingContent::Single(proto::mcp::ContentBlock::text("sampled")),
                model: "test-model".into(),
                stop_reason: None,
                meta: None,
            })
        })
        .on_elicitation(false, |_p| async move {
            Ok(ElicitResult {
                action: ElicitAction::Accept,
                content: Some(Map::new()),
                meta: None,
            })
        })
        .roots(vec![Root {
            uri: "file:///work".into(),
            name: None,
            meta: None,
        }])
        .on_log(move |l| {
            let _ = log_tx.send(l);
        })
        .connect(b)
        .await
        .unwrap();
    client.set_log_level(LoggingLevel::Info).await.unwrap();
    let result = client.call_tool("ask", json!({})).await.unwrap();
    assert_eq!(
        result.structured_content,
        Some(json!({"model": "test-model", "action": "accept", "roots": 1}))
    );
    let log = tokio::time::timeout(Duration::from_secs(2), logs.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        log.level,
        LoggingLevel::Warning,
        "debug must be filtered by setLevel(info)"
    );
    client.close().await;
}

#[tokio::test]
async fn a_client_without_sampling_gets_a_clear_tool_error() {
    let server = server();
    let client = connect(&server, None).await;
    let result = client.call_tool("ask", json!({})).await.unwrap();
    assert_eq!(result.is_error, Some(true));
    assert!(
        result.content[0]
            .as_text()
            .unwrap()
            .contains("sampling capability")
    );
}

#[tokio::test]
async fn progress_timeouts_and_cancellation() {
    let server = server();
    let client = connect(&server, None).await;
    let seen = Arc::new(AtomicUsize::new(0));
    let seen2 = seen.clone();
    let opts = RequestOptions {
        timeout: Some(Duration::from_millis(200)),
        on_progress: Some(Arc::new(move |p| {
            assert_eq!(p.total, Some(2.0));
            seen2.fetch_add(1, Ordering::SeqCst);
        })),
        ..RequestOptions::default()
    };
    // The tool waits until cancelled: our timeout sends notifications/cancelled.
    match client.call_tool_with("slow", json!({}), opts).await {
        Err(Error::Timeout(_)) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    // Dropping a request future also cancels it on the server; the connection stays usable.
    let pending = client.call_tool("slow", json!({}));
    let _ = tokio::time::timeout(Duration::from_millis(50), pending).await;
    client.ping().await.unwrap();
    client.close().await;
}

#[tokio::test]
async fn fan_out_scoping_authorizers_and_cleanup() {
    let server = server();
    let (tx1, mut rx1) = mpsc::unbounded_channel();
    let (tx2, mut rx2) = mpsc::unbounded_channel();
    let c1 = connect(&server, Some(tx1)).await;
    let c2 = connect(&server, Some(tx2)).await;
    assert_eq!(server.session_count(), 2);

    server
        .events()
        .publish(Event::new("news/today", json!(1)))
        .await
        .unwrap();
    let s1 = c1.subscribe(["news/+", "news/#"]).await.unwrap();
    assert_eq!(
        s1.retained.len(),
        1,
        "retained value once despite two matching patterns"
    );
    c2.subscribe(["#"])
        .await
        .map(|r| assert!(r.rejected.len() == 1))
        .unwrap();
    c2.subscribe(["news/today"]).await.unwrap();

    let report = server
        .events()
        .publish(Event::new("news/today", json!(2)))
        .await
        .unwrap();
    assert_eq!(report.delivered, 2);
    assert_eq!(rx1.recv().await.unwrap().payload, json!(2));
    assert_eq!(rx2.recv().await.unwrap().payload, json!(2));
    assert!(matches!(
        server
            .events()
            .publish(Event::new("undeclared", json!(0)))
            .await,
        Err(mcpbus::events::EmitError::UndeclaredTopic(_))
    ));

    // {session_id} scoping: own id accepted, wildcard and foreign ids denied.
    let own = format!("private/{}/x", c1.session_id().unwrap());
    let foreign = format!("private/{}/x", c2.session_id().unwrap());
    let r = c1
        .subscribe([own.as_str(), foreign.as_str(), "private/+/x", "private/#"])
        .await
        .unwrap();
    assert_eq!(r.subscribed.len(), 1);
    assert!(
        r.rejected.iter().all(|x| x.reason == "permission_denied"),
        "{r:?}"
    );

    // A custom authorizer replaces the default check and fails closed on error.
    let r = c1
        .subscribe(["vault/open", "vault/shut", "vault/boom", "vault/+"])
        .await
        .unwrap();
    let ok: Vec<&str> = r.subscribed.iter().map(|s| s.pattern.as_str()).collect();
    assert_eq!(ok, ["vault/open"]);
    assert_eq!(r.rejected.len(), 3);

    // A session that ends is removed from every map.
    let before = server.events().stats();
    c2.close().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let after = server.events().stats();
    assert_eq!(after.sessions, before.sessions - 1);
    assert_eq!(after.subscriptions, before.subscriptions - 1);
    assert_eq!(server.session_count(), 1);
    assert_eq!(
        server
            .events()
            .publish(Event::new("news/today", json!(3)))
            .await
            .unwrap()
            .delivered,
        1
    );
    c1.close().await;
}

#[tokio::test]
async fn a_slow_session_drops_its_oldest_events_without_blocking_the_publisher() {
    let server = Server::builder("slow", "1")
        .topic(TopicSpec::signal("tick"))
        .service_config(ServiceConfig {
            outbound_capacity: 8,
            ..ServiceConfig::default()
        })
        .build()
        .unwrap();
    // A tiny pipe that nobody reads once the handshake is done: the session's queue fills up.
    let (a, b) = duplex(256);
    server.start(a);
    let client = Client::builder("c", "1")
        .era(Era::Legacy)
        .connect(b)
        .await
        .unwrap();
    client.subscribe(["tick"]).await.unwrap();
    let start = std::time::Instant::now();
    for i in 0..10_000 {
        server
            .events()
            .publish(Event::new("tick", json!(i)))
            .await
            .unwrap();
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "publisher was blocked"
    );
    let stats = server.events().stats();
    assert_eq!(stats.emitted, 10_000);
    assert_eq!(stats.deliveries, 10_000);
    assert!(
        stats.dropped >= 10_000 - 8 - 64,
        "dropped only {}",
        stats.dropped
    );
    client.close().await;
}

/// docs/protocol.md 2.4, client side, against a scripted server that misbehaves on purpose: events
/// outside the accepted subscriptions, outside the handler filter, or expired never reach the
/// handler; an event that passes all three does.
#[tokio::test]
async fn client_drop_rules_hold_against_a_server_that_oversends() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    let script = tokio::spawn(async move {
        let (r, mut w) = tokio::io::split(server_io);
        let mut lines = BufReader::new(r).lines();
        let mut next_request = async || loop {
            let line = lines.next_line().await.unwrap().unwrap();
            let msg: serde_json::Value = serde_json::from_str(&line).unwrap();
            if msg.get("id").is_some() {
                return msg;
            }
        };
        let init = next_request().await;
        let reply = json!({"jsonrpc": "2.0", "id": init["id"], "result": {
            "protocolVersion": "2025-11-25", "capabilities": {"events": {"topics": []}},
            "serverInfo": {"name": "scripted", "version": "0"}, "_meta": {"session_id": "s1"}}});
        w.write_all(format!("{reply}\n").as_bytes()).await.unwrap();
        let sub = next_request().await;
        let reply = json!({"jsonrpc": "2.0", "id": sub["id"], "result": {
            "subscribed": [{"pattern": "a/+"}], "rejected": [{"pattern": "b/#", "reason": "permission_denied"}],
            "retained": []}});
        w.write_all(format!("{reply}\n").as_bytes()).await.unwrap();
        for (topic, id, expires) in [
            ("b/x", "outside-subscriptions", None),
            ("a/skip", "outside-filter", None),
            ("a/keep", "expired", Some("2001-01-01T00:00:00Z")),
            ("a/keep", "delivered", Some("2999-01-01T00:00:00Z")),
        ] {
            let mut params =
                json!({"topic": topic, "eventId": id, "payload": null, "retained": false});
            if let Some(at) = expires {
                params["expiresAt"] = json!(at);
            }
            let note = json!({"jsonrpc": "2.0", "method": "events/emit", "params": params});
            w.write_all(format!("{note}\n").as_bytes()).await.unwrap();
        }
        w.flush().await.unwrap();
        // Keep the connection open until the client is done.
        let _ = lines.next_line().await;
    });

    let (tx, mut rx) = mpsc::unbounded_channel();
    let (r, w) = tokio::io::split(client_io);
    let client = Client::builder("c", "1")
        .event_filter("a/keep")
        .on_event(move |e| {
            let _ = tx.send(e.event_id);
        })
        .connect(mcpbus::transport::LineTransport::new(r, w))
        .await
        .unwrap();
    assert_eq!(client.session_id(), Some("s1"));
    let result = client.subscribe(["a/+", "b/#"]).await.unwrap();
    assert_eq!(result.rejected.len(), 1);
    assert_eq!(client.subscriptions(), ["a/+"]);
    let first = tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .unwrap();
    assert_eq!(first.as_deref(), Some("delivered"));
    client.close().await;
    script.abort();
}
