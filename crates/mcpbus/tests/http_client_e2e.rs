//! The Streamable HTTP client transport against mcpbus's own HTTP server: tools in each answer
//! mode, events on the standalone stream, a stream closed by the server and resumed, and a
//! session ended by the server and transparently re-initialized.

#![allow(clippy::unwrap_used)] // tests unwrap to fail loudly

use std::sync::Arc;
use std::time::Duration;

use mcpbus::client::Client;
use mcpbus::events::{Event, TopicSpec};
use mcpbus::proto::mcp::CallToolResult;
use mcpbus::server::{Context, NoArgs, Server};
use mcpbus::store::MemoryEventStore;
use mcpbus::transport::http::{HttpConfig, ResponseMode, StreamableHttpService, serve_http};
use mcpbus::transport::{HttpClientConfig, HttpClientTransport};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

const LIMIT: Duration = Duration::from_secs(10);

fn server() -> Server {
    Server::builder("e2e", "1")
        .topic(TopicSpec::content("news/+"))
        .tool("echo", "Answers at once", |_: NoArgs, _ctx| async move {
            Ok(CallToolResult::text("ok"))
        })
        .tool(
            "reconnect",
            "Closes its stream, then answers",
            |_: NoArgs, ctx: Context| async move {
                ctx.progress(1.0, None, None);
                ctx.close_sse_stream();
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok(CallToolResult::text("after reconnect"))
            },
        )
        .build()
        .unwrap()
}

/// Serves a fresh server; dropping the returned sender stops it.
async fn start(config: HttpConfig) -> (String, Server, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let s = server();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve_http(
        listener,
        "/mcp",
        s.clone(),
        config,
        async move {
            let _ = stopped.await;
        },
    ));
    (url, s, stop)
}

fn client_config(open_get_stream: bool) -> HttpClientConfig {
    HttpClientConfig {
        open_get_stream,
        initial_retry: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        ..HttpClientConfig::default()
    }
}

async fn connect(
    url: &str,
    config: HttpClientConfig,
) -> (Client, mpsc::UnboundedReceiver<(String, serde_json::Value)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let transport = HttpClientTransport::new(url, config).unwrap();
    let client = tokio::time::timeout(
        LIMIT,
        Client::builder("e2e-client", "1")
            .on_event(move |e| {
                let _ = tx.send((e.topic, e.payload));
            })
            .connect(transport),
    )
    .await
    .unwrap()
    .unwrap();
    (client, rx)
}

fn text(result: &CallToolResult) -> String {
    serde_json::to_value(&result.content).unwrap()[0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn call(client: &Client, tool: &str) -> String {
    let result = tokio::time::timeout(LIMIT, client.call_tool(tool, json!({})))
        .await
        .unwrap()
        .unwrap();
    text(&result)
}

#[tokio::test]
async fn tools_events_and_a_resumed_stream() {
    let config = HttpConfig {
        event_store: Some(Arc::new(MemoryEventStore::default())),
        sse_retry: Duration::from_millis(20),
        ..HttpConfig::default()
    };
    let (url, server, _stop) = start(config).await;
    let (client, mut events) = connect(&url, client_config(true)).await;
    assert!(client.session_id().is_some());

    assert_eq!(call(&client, "echo").await, "ok");
    // The server closes the tool's stream before answering: the answer arrives on the resume.
    assert_eq!(call(&client, "reconnect").await, "after reconnect");

    let subscribed = tokio::time::timeout(LIMIT, client.subscribe(["news/+"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(subscribed.subscribed.len(), 1);
    // The standalone stream may still be opening: emit until the event arrives.
    let deadline = tokio::time::Instant::now() + LIMIT;
    let got = loop {
        server
            .events()
            .publish(Event::new("news/a", json!({"n": 1})))
            .await
            .unwrap();
        if let Ok(Some(got)) = tokio::time::timeout(Duration::from_millis(100), events.recv()).await
        {
            break got;
        }
        assert!(tokio::time::Instant::now() < deadline, "no event arrived");
    };
    assert_eq!(got, ("news/a".to_owned(), json!({"n": 1})));

    tokio::time::timeout(LIMIT, client.close()).await.unwrap();
}

#[tokio::test]
async fn every_answer_mode_works() {
    for mode in [ResponseMode::Auto, ResponseMode::Json, ResponseMode::Sse] {
        let config = HttpConfig {
            response_mode: mode,
            ..HttpConfig::default()
        };
        let (url, _server, _stop) = start(config).await;
        let (client, _events) = connect(&url, client_config(true)).await;
        assert_eq!(call(&client, "echo").await, "ok", "{mode:?}");
        tokio::time::timeout(LIMIT, client.close()).await.unwrap();
    }
}

#[tokio::test]
async fn a_session_ended_by_the_server_is_re_initialized() {
    let config = HttpConfig {
        session_idle_timeout: Some(Duration::from_millis(200)),
        ..HttpConfig::default()
    };
    let service = StreamableHttpService::new(server(), config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let app = service.clone().into_router("/mcp");
    tokio::spawn(async move { axum::serve(listener, app).await });

    // No standalone stream, so that nothing keeps the session alive.
    let (client, _events) = connect(&url, client_config(false)).await;
    assert_eq!(call(&client, "echo").await, "ok");
    assert_eq!(service.session_count(), 1);
    let deadline = tokio::time::Instant::now() + LIMIT;
    while service.session_count() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the session never expired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The next call meets a 404, re-initializes a new session and is retried in it.
    assert_eq!(call(&client, "echo").await, "ok");
    assert_eq!(service.session_count(), 1);
    tokio::time::timeout(LIMIT, client.close()).await.unwrap();
    service.shutdown();
}
