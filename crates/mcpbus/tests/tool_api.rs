//! The typed tool API end to end: schemas derived from the handler's argument type, metadata
//! from a `ToolSpec`, and each kind of return value as the client sees it.

#![allow(clippy::unwrap_used)] // tests unwrap to fail loudly

use mcpbus::client::Client;
use mcpbus::events::{Event, TopicSpec};
use mcpbus::proto::mcp::{ContentBlock, Tool, ToolAnnotations};
use mcpbus::server::{Context, Json, NoArgs, Server, ToolError, ToolSpec};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Deserialize, JsonSchema)]
struct Greet {
    /// Who to greet.
    name: String,
}

#[derive(Deserialize, JsonSchema)]
struct Announce {
    /// The topic to publish on.
    topic: String,
}

#[derive(Serialize, JsonSchema)]
struct Sum {
    /// The sum.
    total: i64,
}

fn server() -> Server {
    Server::builder("tool-api", "1")
        .topic(TopicSpec::content("news/+"))
        .tool("greet", "Greets", |args: Greet, _ctx: Context| async move {
            format!("hello {}", args.name)
        })
        .tool_with(
            ToolSpec::new("sum", "Adds nothing")
                .title("Sum")
                .annotations(ToolAnnotations {
                    read_only_hint: Some(true),
                    ..Default::default()
                })
                .output_schema::<Sum>(),
            |_: NoArgs, _ctx: Context| async { Json(Sum { total: 0 }) },
        )
        .tool(
            "announce",
            "Publishes an event",
            |args: Announce, ctx: Context| async move {
                ctx.events()
                    .publish(Event::new(args.topic, json!("hi")))
                    .await?;
                Ok("published")
            },
        )
        .tool(
            "refuse",
            "Fails at the protocol level",
            |_: NoArgs, _ctx: Context| async {
                Err::<&str, _>(ToolError::protocol(
                    mcpbus::proto::ErrorObject::invalid_params("no"),
                ))
            },
        )
        .tool_raw(
            Tool::new("raw", json!({"type": "object"})),
            |args, _ctx| async move { Json(Value::Object(args)) },
        )
        .build()
        .unwrap()
}

async fn connect(server: &Server) -> Client {
    let (a, b) = mcpbus::transport::duplex(64 * 1024);
    server.start(a);
    Client::builder("tool-api-client", "1")
        .connect(b)
        .await
        .unwrap()
}

fn text(result: &mcpbus::proto::mcp::CallToolResult) -> &str {
    match &result.content[..] {
        [ContentBlock::Text(t)] => &t.text,
        other => panic!("expected one text block, got {other:?}"),
    }
}

#[tokio::test]
async fn listings_come_from_the_handlers_types_and_the_spec() {
    let server = server();
    let client = connect(&server).await;
    let tools = client.list_tools().await.unwrap();
    let greet = tools.iter().find(|t| t.name == "greet").unwrap();
    assert_eq!(greet.description.as_deref(), Some("Greets"));
    assert_eq!(greet.input_schema["type"], "object");
    assert_eq!(greet.input_schema["properties"]["name"]["type"], "string");
    assert_eq!(greet.input_schema["required"], json!(["name"]));

    let sum = tools.iter().find(|t| t.name == "sum").unwrap();
    assert_eq!(sum.title.as_deref(), Some("Sum"));
    assert_eq!(sum.annotations.as_ref().unwrap().read_only_hint, Some(true));
    let output = sum.output_schema.as_ref().unwrap();
    assert_eq!(output["properties"]["total"]["type"], "integer");

    let raw = tools.iter().find(|t| t.name == "raw").unwrap();
    assert_eq!(
        Value::Object(raw.input_schema.clone()),
        json!({"type": "object"})
    );
    client.close().await;
}

#[tokio::test]
async fn plain_values_json_and_errors_reach_the_client() {
    let server = server();
    let client = connect(&server).await;

    let greeted = client
        .call_tool("greet", json!({"name": "ada"}))
        .await
        .unwrap();
    assert!(!greeted.is_failure());
    assert_eq!(text(&greeted), "hello ada");

    let bad = client
        .call_tool("greet", json!({"nom": "ada"}))
        .await
        .unwrap();
    assert!(bad.is_failure());
    assert!(text(&bad).contains("invalid arguments"), "{}", text(&bad));

    let sum = client.call_tool("sum", json!({})).await.unwrap();
    assert_eq!(sum.structured_content, Some(json!({"total": 0})));
    assert_eq!(text(&sum), r#"{"total":0}"#);

    let raw = client.call_tool("raw", json!({"x": [1]})).await.unwrap();
    assert_eq!(raw.structured_content, Some(json!({"x": [1]})));

    let published = client
        .call_tool("announce", json!({"topic": "news/a"}))
        .await
        .unwrap();
    assert_eq!(text(&published), "published");

    // `?` on a refused event gives an error result the model can read.
    let refused = client
        .call_tool("announce", json!({"topic": "elsewhere/a"}))
        .await
        .unwrap();
    assert!(refused.is_failure());
    assert!(text(&refused).contains("elsewhere/a"), "{}", text(&refused));

    // A protocol error stays a JSON-RPC error.
    assert!(client.call_tool("refuse", json!({})).await.is_err());
    client.close().await;
}
