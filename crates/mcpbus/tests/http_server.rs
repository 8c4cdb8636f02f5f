//! The Streamable HTTP server against raw HTTP: every row of the docs/protocol.md section 5 table,
//! resumption (section 4) and session lifetimes.

#![allow(clippy::unwrap_used)] // tests unwrap to fail loudly

use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use mcpbus::events::{Event, TopicSpec};
use mcpbus::proto::mcp::CallToolResult;
use mcpbus::server::{Context, NoArgs, Server};
use mcpbus::store::{MemoryEventStore, MemoryEventStoreConfig};
use mcpbus::transport::http::{HttpConfig, ResponseMode, serve_http};
use mcpbus_testkit::jsonrpc::{ACCEPT_BOTH, initialize_request, subscribe_request, tool_call};
use mcpbus_testkit::{HttpClient, SseReader, TestServer};
use serde_json::json;

const T: Duration = Duration::from_secs(5);

fn server() -> Server {
    Server::builder("http-test", "1")
        .topic(TopicSpec::content("news/+"))
        .tool("echo", "Answers at once", |_: NoArgs, _ctx| async move {
            Ok(CallToolResult::text("ok"))
        })
        .tool(
            "chatty",
            "Progress, then the answer",
            |_: NoArgs, ctx: Context| async move {
                ctx.progress(1.0, Some(2.0), None);
                tokio::time::sleep(Duration::from_millis(20)).await;
                ctx.progress(2.0, Some(2.0), None);
                Ok(CallToolResult::text("done"))
            },
        )
        .tool(
            "reconnect",
            "Closes its stream, then answers",
            |_: NoArgs, ctx: Context| async move {
                ctx.progress(1.0, None, None);
                ctx.close_sse_stream();
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok(CallToolResult::text("after reconnect"))
            },
        )
        .tool(
            "reconnect_then_chatter",
            "Closes its stream, then reports progress 20 times before it answers",
            |_: NoArgs, ctx: Context| async move {
                ctx.progress(0.0, None, None);
                ctx.close_sse_stream();
                // The connection is gone before the chatter: all of it waits in the store.
                tokio::time::sleep(Duration::from_millis(50)).await;
                for i in 1..=20 {
                    ctx.progress(f64::from(i), None, None);
                }
                Ok(CallToolResult::text("answer after chatter"))
            },
        )
        .build()
        .unwrap()
}

fn resumable() -> HttpConfig {
    HttpConfig {
        event_store: Some(Arc::new(MemoryEventStore::default())),
        ..HttpConfig::default()
    }
}

async fn start(config: HttpConfig) -> (TestServer, HttpClient, Server) {
    let s = server();
    let served = s.clone();
    let ts = TestServer::start(|l, stop| serve_http(l, "/mcp", served, config, stop)).await;
    let raw = HttpClient::new(ts.url());
    (ts, raw, s)
}

#[tokio::test]
async fn table_row_406_415_400_413_on_post() {
    let (_ts, raw, _) = start(HttpConfig::default()).await;
    let body = initialize_request("http-test").to_string();
    // 406: Accept must list both types.
    let a = raw
        .call(
            Method::POST,
            &[
                ("content-type", "application/json"),
                ("accept", "application/json"),
            ],
            body.as_bytes(),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_ACCEPTABLE);
    // Refused before the body was read: the error's id says the request's is unknown (a
    // string, which the MCP schema and the official SDKs all accept; `null` is refused by
    // the schema, a missing id by the Python SDK 2.x).
    assert_eq!(a.json()["id"], "unknown", "{a:?}");
    // 415: the body must be JSON.
    let a = raw
        .call(
            Method::POST,
            &[("content-type", "text/plain"), ("accept", ACCEPT_BOTH)],
            body.as_bytes(),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // 400: not JSON, not one message; the error carries the request's id when it can be read.
    let h = [
        ("content-type", "application/json"),
        ("accept", ACCEPT_BOTH),
    ];
    let a = raw.call(Method::POST, &h, b"{oops").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["error"]["code"], -32700);
    assert_eq!(a.json()["id"], "unknown");
    let a = raw
        .call(Method::POST, &h, br#"{"jsonrpc":"2.0","id":9}"#)
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["error"]["code"], -32600);
    assert_eq!(a.json()["id"], 9);
    let a = raw
        .call(
            Method::POST,
            &h,
            br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["error"]["code"], -32600);
    // 413: over the 4 MiB default.
    let big = vec![b' '; 4 * 1024 * 1024 + 1];
    let a = raw.call(Method::POST, &h, &big).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(a.json()["id"], "unknown");
    // And the server still serves.
    raw.initialize().await;
}

/// A client that writes its whole body before it reads (as Python's urllib does) must be able to
/// read the 413, not find the connection reset under its write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_413_is_readable_by_a_client_that_writes_its_whole_body_first() {
    let (ts, raw, _) = start(HttpConfig::default()).await;
    let addr = ts.url();
    let addr = addr
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    for declared in [true, false] {
        let addr = addr.clone();
        let head = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut conn = std::net::TcpStream::connect(&addr).unwrap();
            let body = vec![b' '; 6 * 1024 * 1024];
            let length = if declared {
                format!("Content-Length: {}\r\n", body.len())
            } else {
                "Transfer-Encoding: chunked\r\n".to_string()
            };
            let request = format!(
                "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
                 Accept: application/json, text/event-stream\r\n{length}\r\n"
            );
            conn.write_all(request.as_bytes()).unwrap();
            if declared {
                conn.write_all(&body).unwrap();
            } else {
                for chunk in body.chunks(64 * 1024) {
                    conn.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                        .unwrap();
                    conn.write_all(chunk).unwrap();
                    conn.write_all(b"\r\n").unwrap();
                }
                conn.write_all(b"0\r\n\r\n").unwrap();
            }
            let mut answer = Vec::new();
            let _ = conn.read_to_end(&mut answer);
            String::from_utf8_lossy(&answer).into_owned()
        })
        .await
        .unwrap();
        assert!(
            head.starts_with("HTTP/1.1 413"),
            "declared length {declared}: {head:.200}"
        );
        assert!(head.contains("-32600"), "{head:.400}");
    }
    // And the server still serves.
    raw.initialize().await;
}

#[tokio::test]
async fn table_rows_on_sessions_versions_and_acceptance() {
    let (_ts, raw, _) = start(HttpConfig::default()).await;
    let sid = raw.initialize().await;
    assert!(sid.len() >= 32 && sid.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    // 400: no session id on a request other than initialize.
    let a = raw
        .post(None, &json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    // Refused after the body was read: the error answers the request by its id.
    assert_eq!(a.json()["id"], 2, "{a:?}");
    // 404: an unknown session id.
    let a = raw
        .post(
            Some("nope"),
            &json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.json()["id"], 2, "{a:?}");
    assert_eq!(a.json()["error"]["message"], "Session not found", "{a:?}");
    // 400: a bad MCP-Protocol-Version.
    let h = [
        ("content-type", "application/json"),
        ("accept", ACCEPT_BOTH),
        ("mcp-session-id", sid.as_str()),
        ("mcp-protocol-version", "1999-01-01"),
    ];
    let a = raw
        .call(
            Method::POST,
            &h,
            br#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#,
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["id"], 3, "{a:?}");
    // 202, no body: a notification, and a response.
    let a = raw.post(Some(&sid), &json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 99}})).await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    assert!(a.body.is_empty());
    let a = raw
        .post(
            Some(&sid),
            &json!({"jsonrpc": "2.0", "id": 77, "result": {}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    // A plain call answers with one JSON body.
    let a = raw.post(Some(&sid), &tool_call(4, "echo")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(a.json()["result"]["content"][0]["text"], "ok");
    // Unsupported methods: 405 with Allow.
    let a = raw.call(Method::PUT, &[], b"").await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(a.header("allow"), Some("GET, POST, DELETE"));
}

#[tokio::test]
async fn table_rows_on_origin_and_host() {
    let (ts, raw, _) = start(HttpConfig::default()).await;
    let body = initialize_request("http-test").to_string();
    let base = [
        ("content-type", "application/json"),
        ("accept", ACCEPT_BOTH),
    ];
    let with = |extra: &[(&'static str, String)]| {
        let mut h: Vec<(&str, String)> = base.iter().map(|(k, v)| (*k, v.to_string())).collect();
        h.extend(extra.iter().cloned());
        h
    };
    let send = |h: Vec<(&'static str, String)>| {
        let raw = raw.clone();
        let body = body.clone();
        async move {
            let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            raw.call(Method::POST, &h, body.as_bytes()).await.status
        }
    };
    assert_eq!(
        send(with(&[("origin", "http://evil.example".into())])).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(with(&[("host", "evil.example".into())])).await,
        StatusCode::MISDIRECTED_REQUEST
    );
    let own = format!("http://127.0.0.1:{}", ts.addr.port());
    assert_eq!(send(with(&[("origin", own)])).await, StatusCode::OK);
    assert_eq!(
        send(with(&[("host", format!("localhost:{}", ts.addr.port()))])).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn table_rows_delete_and_second_get_stream() {
    let (_ts, raw, server) = start(HttpConfig::default()).await;
    let sid = raw.initialize().await;
    let first = raw.get_stream(&sid, None).await;
    assert_eq!(first.status(), StatusCode::OK);
    let mut events = SseReader::new(first);
    // 409: a second standalone stream while the first is open.
    let second = raw.get_stream(&sid, None).await;
    assert_eq!(second.status(), StatusCode::CONFLICT);
    // GET needs Accept: text/event-stream (406) and a session that exists (404); without a
    // session it is a 2026-07-28 GET, which that revision does not have (405).
    let a = raw
        .call(
            Method::GET,
            &[
                ("accept", "application/json"),
                ("mcp-session-id", sid.as_str()),
            ],
            b"",
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_ACCEPTABLE);
    let a = raw
        .call(Method::GET, &[("accept", "text/event-stream")], b"")
        .await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    // DELETE: 200, the session ends, its stream closes, its id is then unknown.
    let a = raw
        .call(Method::DELETE, &[("mcp-session-id", sid.as_str())], b"")
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(events.next(T).await.is_none(), "the GET stream should end");
    let a = raw
        .post(
            Some(&sid),
            &json!({"jsonrpc": "2.0", "id": 5, "method": "ping"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = raw
        .call(Method::DELETE, &[("mcp-session-id", sid.as_str())], b"")
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.session_count(), 0);
    assert_eq!(server.events().stats().sessions, 0);
}

#[tokio::test]
async fn events_travel_on_the_get_stream_with_ids() {
    let (_ts, raw, server) = start(resumable()).await;
    let sid = raw.initialize().await;
    let sub = raw
        .post(Some(&sid), &subscribe_request(2, &["news/+"]))
        .await;
    assert_eq!(sub.json()["result"]["subscribed"][0]["pattern"], "news/+");
    // Emitted before the GET stream opens: still delivered (the stream is anchored at start).
    server
        .events()
        .publish(Event::new("news/early", json!(0)))
        .await
        .unwrap();
    let mut events = SseReader::new(raw.get_stream(&sid, None).await);
    let priming = events.next(T).await.unwrap();
    assert!(priming.id.is_some() && priming.data.is_empty() && priming.retry.is_some());
    server
        .events()
        .publish(Event::new("news/late", json!(1)))
        .await
        .unwrap();
    let (id0, m0) = events.next_message(T).await.unwrap();
    let (id1, m1) = events.next_message(T).await.unwrap();
    assert_eq!(m0["params"]["topic"], "news/early");
    assert_eq!(m1["params"]["topic"], "news/late");
    assert!(id0.is_some() && id1.is_some() && id0 != id1);
}

#[tokio::test]
async fn a_request_with_progress_is_answered_as_sse_with_priming() {
    let (_ts, raw, _) = start(resumable()).await;
    let sid = raw.initialize().await;
    let mut msg = tool_call(7, "chatty");
    msg["params"]["_meta"] = json!({"progressToken": "p1"});
    let response = raw.post_stream(Some(&sid), &msg).await;
    let mut sse = SseReader::new(response);
    let priming = sse.next(T).await.unwrap();
    assert!(priming.id.is_some() && priming.data.is_empty());
    let (_, p1) = sse.next_message(T).await.unwrap();
    assert_eq!(p1["method"], "notifications/progress");
    assert_eq!(p1["params"]["progressToken"], "p1");
    let (_, p2) = sse.next_message(T).await.unwrap();
    assert_eq!(p2["params"]["progress"], 2);
    let (_, answer) = sse.next_message(T).await.unwrap();
    assert_eq!(answer["id"], 7);
    assert_eq!(answer["result"]["content"][0]["text"], "done");
    assert!(
        sse.next(T).await.is_none(),
        "the stream ends after the answer"
    );
}

#[tokio::test]
async fn a_closed_post_stream_is_resumed_with_last_event_id() {
    let (_ts, raw, _) = start(resumable()).await;
    let sid = raw.initialize().await;
    // The standalone stream is open too: resuming a POST stream must not be a 409.
    let _standalone = SseReader::new(raw.get_stream(&sid, None).await);
    let response = raw
        .post_stream(Some(&sid), &tool_call(9, "reconnect"))
        .await;
    let mut sse = SseReader::new(response);
    let mut last = None;
    while let Some(e) = sse.next(T).await {
        last = e.id.clone().or(last);
        assert!(
            !e.data.contains("after reconnect"),
            "the answer came before the close"
        );
    }
    let resumed = raw.get_stream(&sid, last.as_deref()).await;
    assert_eq!(resumed.status(), StatusCode::OK);
    let mut sse = SseReader::new(resumed);
    let (_, answer) = sse.next_message(T).await.unwrap();
    assert_eq!(answer["id"], 9);
    assert_eq!(answer["result"]["content"][0]["text"], "after reconnect");
}

/// A POST stream whose unread messages outgrew the store's bound still gets its answer on
/// resume: the progress that was trimmed is lost, the answer is the newest and is kept.
#[tokio::test]
async fn a_post_stream_resumed_after_its_bound_still_gets_its_answer() {
    let store = Arc::new(MemoryEventStore::new(MemoryEventStoreConfig {
        max_events_per_stream: 4,
        ..MemoryEventStoreConfig::default()
    }));
    let config = HttpConfig {
        event_store: Some(store),
        ..HttpConfig::default()
    };
    let (_ts, raw, _) = start(config).await;
    let sid = raw.initialize().await;
    let mut call = tool_call(11, "reconnect_then_chatter");
    call["params"]["_meta"] = json!({"progressToken": "chatter"});
    let response = raw.post_stream(Some(&sid), &call).await;
    let mut sse = SseReader::new(response);
    let mut last = None;
    while let Some(e) = sse.next(T).await {
        last = e.id.clone().or(last);
    }
    // Let the handler finish: 20 progress notifications and the answer, 4 of them kept.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let resumed = raw.get_stream(&sid, last.as_deref()).await;
    assert_eq!(resumed.status(), StatusCode::OK);
    let mut sse = SseReader::new(resumed);
    let mut answer = None;
    while let Some((_, message)) = sse.next_message(T).await {
        if message.get("id").is_some() {
            answer = Some(message);
            break;
        }
        assert_eq!(message["method"], "notifications/progress");
    }
    let answer = answer.expect("the answer after the kept progress");
    assert_eq!(
        answer["result"]["content"][0]["text"],
        "answer after chatter"
    );
}

#[tokio::test]
async fn resumes_that_cannot_be_served_are_http_errors() {
    let store = Arc::new(MemoryEventStore::new(MemoryEventStoreConfig {
        max_events_per_stream: 4,
        ..Default::default()
    }));
    let config = HttpConfig {
        event_store: Some(store),
        ..HttpConfig::default()
    };
    let (_ts, raw, server) = start(config).await;
    let a = raw.initialize().await;
    let b = raw.initialize().await;
    for sid in [&a, &b] {
        raw.post(Some(sid), &subscribe_request(2, &["news/+"]))
            .await;
    }
    let mut stream_b = SseReader::new(raw.get_stream(&b, None).await);
    server
        .events()
        .publish(Event::new("news/x", json!(1)))
        .await
        .unwrap();
    let (b_id, _) = stream_b.next_message(T).await.unwrap();
    drop(stream_b);
    // Unknown and malformed ids: 400, never an empty stream.
    assert_eq!(
        raw.get_stream(&a, Some("garbage")).await.status(),
        StatusCode::BAD_REQUEST
    );
    // Another session's id: 400.
    assert_eq!(
        raw.get_stream(&a, b_id.as_deref()).await.status(),
        StatusCode::BAD_REQUEST
    );
    // An id whose successors were trimmed: 410 Gone.
    for i in 0..10 {
        server
            .events()
            .publish(Event::new("news/x", json!(i)))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        raw.get_stream(&b, b_id.as_deref()).await.status(),
        StatusCode::GONE
    );
}

#[tokio::test]
async fn idle_sessions_end_and_leave_every_map() {
    let config = HttpConfig {
        session_idle_timeout: Some(Duration::from_millis(200)),
        ..HttpConfig::default()
    };
    let (_ts, raw, server) = start(config).await;
    let sid = raw.initialize().await;
    raw.post(Some(&sid), &subscribe_request(2, &["news/+"]))
        .await;
    assert_eq!(server.events().stats().subscriptions, 1);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(server.session_count(), 0);
    let stats = server.events().stats();
    assert_eq!((stats.sessions, stats.subscriptions), (0, 0));
    let a = raw
        .post(
            Some(&sid),
            &json!({"jsonrpc": "2.0", "id": 3, "method": "ping"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_open_get_stream_keeps_a_session_alive() {
    let config = HttpConfig {
        session_idle_timeout: Some(Duration::from_millis(200)),
        ..HttpConfig::default()
    };
    let (_ts, raw, server) = start(config).await;
    let sid = raw.initialize().await;
    let _stream = SseReader::new(raw.get_stream(&sid, None).await);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(server.session_count(), 1);
}

#[tokio::test]
async fn idle_timeout_must_be_positive_and_not_stateless() {
    use mcpbus::transport::http::{HttpConfigError, StreamableHttpService};
    let zero = HttpConfig {
        session_idle_timeout: Some(Duration::ZERO),
        ..HttpConfig::default()
    };
    assert_eq!(
        StreamableHttpService::new(server(), zero).unwrap_err(),
        HttpConfigError::IdleTimeoutNotPositive
    );
    let stateless = HttpConfig {
        stateless: true,
        ..HttpConfig::default()
    };
    assert_eq!(
        StreamableHttpService::new(server(), stateless).unwrap_err(),
        HttpConfigError::IdleTimeoutInStatelessMode
    );
}

#[tokio::test]
async fn stateless_mode_serves_each_post_alone() {
    let config = HttpConfig {
        stateless: true,
        session_idle_timeout: None,
        ..HttpConfig::default()
    };
    let (_ts, raw, server) = start(config).await;
    let a = raw.post(None, &tool_call(1, "echo")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.header("mcp-session-id").is_none());
    assert_eq!(a.json()["result"]["content"][0]["text"], "ok");
    let a = raw
        .call(Method::GET, &[("accept", "text/event-stream")], b"")
        .await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.session_count(), 0);
}

#[tokio::test]
async fn sse_response_mode_streams_even_plain_answers() {
    let config = HttpConfig {
        response_mode: ResponseMode::Sse,
        ..HttpConfig::default()
    };
    let (_ts, raw, _) = start(config).await;
    let sid = raw.initialize_sse().await;
    let mut sse = SseReader::new(raw.post_stream(Some(&sid), &tool_call(3, "echo")).await);
    let (id, answer) = sse.next_message(T).await.unwrap();
    assert!(id.is_some());
    assert_eq!(answer["result"]["content"][0]["text"], "ok");
}

/// With SSE answers the session id goes out before the answer is known; an `initialize` that
/// fails must still leave no session behind.
#[tokio::test]
async fn a_failed_initialize_answered_as_sse_leaves_no_session() {
    let config = HttpConfig {
        response_mode: ResponseMode::Sse,
        ..HttpConfig::default()
    };
    let (_ts, raw, server) = start(config).await;
    let bad =
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": 5}});
    let response = raw.post_stream(None, &bad).await;
    let sid = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let mut sse = SseReader::new(response);
    let (_, answer) = sse.next_message(T).await.unwrap();
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    assert!(
        sse.next(T).await.is_none(),
        "the stream ends after the answer"
    );
    for _ in 0..100 {
        if server.session_count() == 0 {
            let after = raw.post(Some(&sid), &tool_call(2, "echo")).await;
            assert_eq!(after.status, StatusCode::NOT_FOUND);
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the session of a failed initialize is still open");
}

#[tokio::test]
async fn shutdown_closes_streams() {
    let (ts, raw, _) = start(HttpConfig::default()).await;
    let sid = raw.initialize().await;
    let mut events = SseReader::new(raw.get_stream(&sid, None).await);
    ts.stop().await;
    assert!(events.next(T).await.is_none());
}

/// The official SDKs drop the top-level `events` capability they do not know, but keep
/// `experimental`: the same capability is there under `mcpbus/events`, in `initialize` and in
/// the 2026-07-28 `server/discover`.
#[tokio::test]
async fn the_events_capability_is_repeated_under_experimental() {
    let (_ts, raw, _) = start(HttpConfig::default()).await;
    let init = raw.post(None, &initialize_request("http-test")).await;
    assert_eq!(init.status, StatusCode::OK, "{init:?}");
    let caps = &init.json()["result"]["capabilities"];
    assert_eq!(caps["events"]["topics"][0]["pattern"], "news/+", "{caps}");
    assert_eq!(
        caps["experimental"]["mcpbus/events"], caps["events"],
        "{caps}"
    );

    let discover = json!({"jsonrpc": "2.0", "id": 7, "method": "server/discover", "params": {
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        }
    }});
    let headers = [
        ("content-type", "application/json"),
        ("accept", ACCEPT_BOTH),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "server/discover"),
    ];
    let a = raw
        .call(Method::POST, &headers, discover.to_string().as_bytes())
        .await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    let modern = &a.json()["result"]["capabilities"];
    assert_eq!(
        modern["experimental"]["mcpbus/events"], caps["events"],
        "{modern}"
    );
}
