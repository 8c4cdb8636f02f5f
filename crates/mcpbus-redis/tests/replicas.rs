//! Two replicas in one process sharing a real Redis: a client's answer to a server-to-client
//! request (sampling) that reaches the other replica is routed to the one that waits for it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../mcpbus-cli/tests/redis_support/mod.rs"]
mod redis_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use mcpbus::server::{Context, NoArgs, Server};
use mcpbus::transport::http::{HttpConfig, serve_http};
use mcpbus_proto::mcp::{CallToolResult, CreateMessageRequestParams, SamplingMessage};
use mcpbus_redis::{RedisBackend, RedisConfig};
use redis_support::{Redis, SseItem, open_stream};
use serde_json::{Value, json};

/// Starts one replica on a free loopback port; returns the port.
async fn replica(redis: &Redis) -> u16 {
    let backend = RedisBackend::connect(RedisConfig::new(redis.url()).prefix("routing"))
        .await
        .unwrap();
    let server = Server::builder("replica", "1")
        .event_bus(backend.event_bus())
        .tool(
            "ask",
            "Asks the client's model",
            |_: NoArgs, ctx: Context| async move {
                let sampled = ctx
                    .create_message(CreateMessageRequestParams::new(
                        vec![SamplingMessage::user_text("hi")],
                        10,
                    ))
                    .await?;
                Ok(CallToolResult::text(format!("model {}", sampled.model)))
            },
        )
        .build()
        .unwrap();
    let config = HttpConfig {
        event_store: Some(backend.event_store()),
        session_store: Some(backend.session_store()),
        ..HttpConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(serve_http(
        listener,
        "/mcp",
        server,
        config,
        std::future::pending(),
    ));
    port
}

/// One POST answered with JSON or nothing: (status, session header, body).
fn post(port: u16, session: Option<&str>, body: &Value) -> (u16, Option<String>, String) {
    let body = body.to_string();
    let mut request = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-11-25\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(s) = session {
        request.push_str(&format!("Mcp-Session-Id: {s}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let session = head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case("mcp-session-id")
            .then(|| v.trim().to_string())
    });
    (status, session, body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sampling_answer_posted_to_another_replica_reaches_the_waiting_request() {
    let redis = Redis::start(false);
    let a = replica(&redis).await;
    let b = replica(&redis).await;
    let result = tokio::task::spawn_blocking(move || {
        let (status, session, body) = post(
            a,
            None,
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {"sampling": {}},
                "clientInfo": {"name": "t", "version": "1"}}}),
        );
        assert_eq!(status, 200, "{body}");
        let session = session.unwrap();
        let (status, _, _) = post(
            a,
            Some(&session),
            &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        );
        assert_eq!(status, 202);
        let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                          "params": {"name": "ask", "arguments": {}}})
        .to_string();
        let headers = [
            ("Mcp-Session-Id", session.as_str()),
            ("MCP-Protocol-Version", "2025-11-25"),
            ("Content-Type", "application/json"),
        ];
        let rx = open_stream(a, "POST", &headers, call.as_bytes());
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut answered = false;
        while Instant::now() < deadline {
            let item = rx.recv_timeout(Duration::from_secs(1));
            let Ok(SseItem::Event(e)) = item else {
                if matches!(item, Ok(SseItem::End)) {
                    break;
                }
                continue;
            };
            let Ok(v) = serde_json::from_str::<Value>(&e.data) else {
                continue;
            };
            if v["method"] == "sampling/createMessage" {
                // The client answers through replica B.
                let (status, _, body) = post(
                    b,
                    Some(&session),
                    &json!({"jsonrpc": "2.0", "id": v["id"], "result": {
                        "role": "assistant", "model": "model-on-b",
                        "content": {"type": "text", "text": "hello"}}}),
                );
                assert_eq!(status, 202, "{body}");
                answered = true;
            } else if v["id"] == 2 {
                assert!(answered, "the tool answered before sampling: {v}");
                return v;
            }
        }
        panic!("no answer to tools/call within 20 s");
    })
    .await
    .unwrap();
    assert_eq!(
        result["result"]["content"][0]["text"], "model model-on-b",
        "{result}"
    );
}
