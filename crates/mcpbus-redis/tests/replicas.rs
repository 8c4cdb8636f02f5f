//! Two replicas in one process sharing a real Redis: a client's answer to a server-to-client
//! request (sampling) that reaches the other replica is routed to the one that waits for it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use mcpbus::server::{Context, NoArgs, Server};
use mcpbus::transport::http::{HttpConfig, serve_http};
use mcpbus_proto::mcp::{CallToolResult, CreateMessageRequestParams, SamplingMessage};
use mcpbus_redis::{RedisBackend, RedisConfig};
use mcpbus_testkit::jsonrpc::{initialize_request, initialized, tool_call};
use mcpbus_testkit::{HttpClient, RedisServer, SseReader, TestServer};
use serde_json::{Value, json};

/// Starts one replica on a free loopback port.
async fn replica(redis: &RedisServer) -> TestServer {
    let backend = RedisBackend::connect(RedisConfig::new(redis.url()).prefix("routing"))
        .await
        .unwrap();
    let server = Server::builder("replica", "1")
        .event_log(backend.event_log())
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
    TestServer::start(|l, stop| serve_http(l, "/mcp", server, config, stop)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sampling_answer_posted_to_another_replica_reaches_the_waiting_request() {
    let redis = RedisServer::start(false);
    let (replica_a, replica_b) = (replica(&redis).await, replica(&redis).await);
    let (a, b) = (
        HttpClient::new(replica_a.url()),
        HttpClient::new(replica_b.url()),
    );
    let mut init = initialize_request("t");
    init["params"]["capabilities"] = json!({"sampling": {}});
    let r = a.post(None, &init).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let session = r.header("mcp-session-id").unwrap().to_string();
    assert_eq!(a.post(Some(&session), &initialized()).await.status, 202);
    let mut sse = SseReader::new(a.post_stream(Some(&session), &tool_call(2, "ask")).await);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut answered = false;
    let result = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(e)) = tokio::time::timeout(left, sse.next_event()).await else {
            panic!("no answer to tools/call within 20 s");
        };
        let Ok(v) = serde_json::from_str::<Value>(&e.data) else {
            continue;
        };
        if v["method"] == "sampling/createMessage" {
            // The client answers through replica B.
            let r = b
                .post(
                    Some(&session),
                    &json!({"jsonrpc": "2.0", "id": v["id"], "result": {
                        "role": "assistant", "model": "model-on-b",
                        "content": {"type": "text", "text": "hello"}}}),
                )
                .await;
            assert_eq!(r.status, 202, "{}", r.text());
            answered = true;
        } else if v["id"] == 2 {
            assert!(answered, "the tool answered before sampling: {v}");
            break v;
        }
    };
    assert_eq!(
        result["result"]["content"][0]["text"], "model model-on-b",
        "{result}"
    );
}
