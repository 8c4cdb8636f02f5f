//! A client that stops reading its stream (docs/http.md, "Slow clients"): once its socket has
//! taken no byte for `stalled_stream_timeout` while the server had bytes for it, its connection
//! is reset and counted, and the stream can be resumed: a session's GET stream with
//! `Last-Event-ID`, a 2026-07-28 push stream (`events/stream`) with its cursor. Between what
//! the stalled connection got and the resumed stream, every event arrives once, in order.
//!
//! The stalled clients are raw sockets with a small receive buffer that read the answer's head
//! and then nothing, while far more bytes are published than the socket buffers hold. Beside
//! fast subscribers, stalled ones hold nobody up: every fast one gets every event while the
//! stalled ones still sit on their first bytes.

#![allow(clippy::unwrap_used)] // tests unwrap to fail loudly

use std::sync::Arc;
use std::time::Duration;

use mcpbus::events::{DeliveryConfig, EmitReport, Event, MemoryEventLog, TopicSpec};
use mcpbus::server::Server;
use mcpbus::store::{MemoryEventStore, MemoryEventStoreConfig};
use mcpbus::transport::http::{HttpConfig, serve_http};
use mcpbus_testkit::jsonrpc::{PROTOCOL_VERSION, subscribe_request};
use mcpbus_testkit::modern::{headers, request};
use mcpbus_testkit::{HttpClient, SseReader, TestServer};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Events published while the clients do not read.
const EVENTS: usize = 60;
/// Bytes of each event's payload: EVENTS of them are far more than the socket buffers hold.
const PAYLOAD: usize = 64 * 1024;
/// The bound, small for the test.
const BOUND: Duration = Duration::from_millis(300);

async fn start() -> (TestServer, Server) {
    start_with(BOUND).await
}

async fn start_with(bound: Duration) -> (TestServer, Server) {
    start_buffered(bound, DeliveryConfig::default().stream_buffer).await
}

/// A server whose push streams buffer `stream_buffer` events (and frames).
async fn start_buffered(bound: Duration, stream_buffer: usize) -> (TestServer, Server) {
    let server = Server::builder("stalled", "1")
        .topic(TopicSpec::content("files/#"))
        .event_log(Arc::new(MemoryEventLog::with_history(1000)))
        .event_delivery(DeliveryConfig {
            stream_buffer,
            ..DeliveryConfig::default()
        })
        .build()
        .unwrap();
    let store = MemoryEventStore::new(MemoryEventStoreConfig {
        max_events_per_stream: 1000,
        ttl: Duration::from_secs(600),
    });
    let config = HttpConfig {
        stalled_stream_timeout: Some(bound),
        event_store: Some(Arc::new(store)),
        ..HttpConfig::default()
    };
    let served = server.clone();
    let ts = TestServer::start(|l, stop| serve_http(l, "/mcp", served, config, stop)).await;
    (ts, server)
}

fn addr_of(ts: &TestServer) -> String {
    let url = ts.url();
    let host = url.trim_start_matches("http://").split('/').next().unwrap();
    host.to_owned()
}

/// Connects with a small receive buffer, sends `head` and `body`, and reads the answer's head
/// (and whatever came with it): then it reads nothing more.
async fn stalled_client(addr: &str, head: String, body: &[u8]) -> (TcpStream, Vec<u8>) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut conn = socket.connect(addr.parse().unwrap()).await.unwrap();
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(body).await.unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    while !received.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the head");
        received.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&received);
    assert!(head.starts_with("HTTP/1.1 200"), "{head:.300}");
    (conn, received)
}

/// Publishes EVENTS big events on `files/big.bin`.
async fn publish_big(server: &Server) -> Vec<EmitReport> {
    publish(server, EVENTS, PAYLOAD).await
}

/// Publishes `count` events of `size` bytes on `files/big.bin`.
async fn publish(server: &Server, count: usize, size: usize) -> Vec<EmitReport> {
    let big = "x".repeat(size);
    let mut reports = Vec::new();
    for i in 0..count {
        let event = Event::new("files/big.bin", json!({"seq": i, "pad": big}));
        reports.push(server.events().publish(event).await.unwrap());
    }
    reports
}

/// Waits (at most 20 s) until the server has closed `n` stalled connections.
async fn until_stalled_closed(server: &Server, n: u64) {
    let stats = server.metrics().connections();
    for _ in 0..200 {
        if stats.stalled_closed() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{} stalled connections closed, expected {n}",
        stats.stalled_closed()
    );
}

/// Reads what is left (the kernel still holds what arrived before the reset), until the end
/// or the reset.
async fn read_rest(mut conn: TcpStream, received: &mut Vec<u8>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => received.extend_from_slice(&buf[..n]),
            // The end, the reset, or silence: the connection is over either way.
            _ => return,
        }
    }
}

/// The SSE events (id, data) complete in a chunked HTTP answer, whatever was cut off last.
fn sse_events(raw: &[u8]) -> Vec<(Option<String>, String)> {
    let start = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut body = Vec::new();
    let mut rest = &raw[start..];
    // Chunked transfer coding: a hex size line, the bytes, CRLF; a cut chunk keeps its part.
    while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&rest[..line_end]).unwrap();
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        rest = &rest[line_end + 2..];
        let take = size.min(rest.len());
        body.extend_from_slice(&rest[..take]);
        if take < size || size == 0 || rest.len() < size + 2 {
            break;
        }
        rest = &rest[size + 2..];
    }
    let text = String::from_utf8_lossy(&body);
    let mut events = Vec::new();
    let mut blocks: Vec<&str> = text.split("\n\n").collect();
    // The last block is not followed by a blank line: it may be cut off.
    blocks.pop();
    for block in blocks {
        let mut id = None;
        let mut data = String::new();
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("id:") {
                id = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            }
        }
        events.push((id, data));
    }
    events
}

/// The `seq` of a message carrying a published event (an `events/emit` or a push stream's
/// `notifications/events/event`), and its push-stream cursor.
fn seq_of(message: &Value) -> Option<(usize, Option<String>)> {
    let params = &message["params"];
    // `events/emit` carries the payload itself, a push stream's occurrence inside `data`.
    let payload = match params.get("payload") {
        Some(payload) => payload,
        None => &params["data"]["payload"],
    };
    let seq = payload["seq"].as_u64()?;
    let cursor = params["cursor"].as_str().map(str::to_owned);
    Some((usize::try_from(seq).unwrap(), cursor))
}

#[tokio::test]
async fn a_stalled_get_stream_is_cut_off_then_resumed_with_last_event_id() {
    let (ts, server) = start().await;
    let raw = HttpClient::new(ts.url());
    let session = raw.initialize().await;
    let subscribed = raw
        .post(Some(&session), &subscribe_request(2, &["files/#"]))
        .await;
    assert_eq!(subscribed.status, 200, "{}", subscribed.text());

    let addr = addr_of(&ts);
    let head = format!(
        "GET /mcp HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\
         Mcp-Session-Id: {session}\r\nMCP-Protocol-Version: {PROTOCOL_VERSION}\r\n\r\n"
    );
    let (conn, mut received) = stalled_client(&addr, head, b"").await;
    publish_big(&server).await;
    until_stalled_closed(&server, 1).await;
    read_rest(conn, &mut received).await;

    let mut seen = Vec::new();
    let mut last_id = None;
    for (id, data) in sse_events(&received) {
        last_id = id.or(last_id);
        if let Some((seq, _)) = serde_json::from_str(&data).ok().as_ref().and_then(seq_of) {
            seen.push(seq);
        }
    }
    assert!(
        seen.len() < EVENTS,
        "the stalled client got all {EVENTS} events: it did not stall"
    );
    // The rest, after the last whole event the client got (the priming event at least).
    let last_id = last_id.expect("at least the priming event's id");
    let mut reader = SseReader::new(raw.get_stream(&session, Some(&last_id)).await);
    while seen.last() != Some(&(EVENTS - 1)) {
        let (_, message) = reader
            .next_message(Duration::from_secs(10))
            .await
            .expect("the rest of the stream");
        if let Some((seq, _)) = seq_of(&message) {
            seen.push(seq);
        }
    }
    assert_eq!(seen, (0..EVENTS).collect::<Vec<_>>(), "once each, in order");
    assert_eq!(server.events().stats().dropped, 0);
}

#[tokio::test]
async fn a_stalled_push_stream_is_cut_off_then_resumed_with_its_cursor() {
    let (ts, server) = start().await;
    let addr = addr_of(&ts);
    let message = request(1, "events/stream", json!({"name": "files/#"}), json!({}));
    let body = message.to_string();
    let mut head = format!("POST /mcp HTTP/1.1\r\nHost: {addr}\r\n");
    for (name, value) in headers(&message) {
        head += &format!("{name}: {value}\r\n");
    }
    head += &format!("Content-Length: {}\r\n\r\n", body.len());
    let (conn, mut received) = stalled_client(&addr, head, body.as_bytes()).await;
    let reports = publish_big(&server).await;
    until_stalled_closed(&server, 1).await;
    read_rest(conn, &mut received).await;

    let mut seen = Vec::new();
    let mut cursor = None;
    for (_, data) in sse_events(&received) {
        let message: Value = serde_json::from_str(&data).unwrap();
        if message["method"] == "notifications/events/active" {
            cursor = message["params"]["cursor"].as_str().map(str::to_owned);
        }
        if let Some((seq, c)) = seq_of(&message) {
            assert_eq!(c.as_deref(), Some(reports[seq].cursor.as_str()));
            seen.push(seq);
            cursor = c;
        }
    }
    assert!(
        seen.len() < EVENTS,
        "the stalled client got all {EVENTS} events: it did not stall"
    );
    // The stream's request ended with its connection: its slot is free again.
    for _ in 0..100 {
        if server.events().push_streams() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.events().push_streams(), 0);
    let raw = HttpClient::new(ts.url());
    let params = json!({"name": "files/#", "cursor": cursor.expect("the active cursor")});
    let resumed = raw
        .post_modern_stream(&request(2, "events/stream", params, json!({})))
        .await;
    let mut reader = SseReader::new(resumed);
    while seen.last() != Some(&(EVENTS - 1)) {
        let (_, message) = reader
            .next_message(Duration::from_secs(10))
            .await
            .expect("the rest of the stream");
        assert_ne!(message["params"]["truncated"], true, "{message}");
        if let Some((seq, _)) = seq_of(&message) {
            seen.push(seq);
        }
    }
    assert_eq!(seen, (0..EVENTS).collect::<Vec<_>>(), "once each, in order");
}

/// The request head of a session's GET stream.
fn get_head(addr: &str, session: &str) -> String {
    format!(
        "GET /mcp HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\
         Mcp-Session-Id: {session}\r\nMCP-Protocol-Version: {PROTOCOL_VERSION}\r\n\r\n"
    )
}

/// The request (head and body) of a push stream of `files/#`.
fn push_request(addr: &str, id: i64) -> (String, String) {
    let message = request(id, "events/stream", json!({"name": "files/#"}), json!({}));
    let body = message.to_string();
    let mut head = format!("POST /mcp HTTP/1.1\r\nHost: {addr}\r\n");
    for (name, value) in headers(&message) {
        head += &format!("{name}: {value}\r\n");
    }
    head += &format!("Content-Length: {}\r\n\r\n", body.len());
    (head, body)
}

/// A session subscribed to `files/#`.
async fn subscribed_session(raw: &HttpClient) -> String {
    let session = raw.initialize().await;
    let subscribed = raw
        .post(Some(&session), &subscribe_request(2, &["files/#"]))
        .await;
    assert_eq!(subscribed.status, 200, "{}", subscribed.text());
    session
}

/// Reads a stream until the event numbered `last`; returns the numbers seen, in order.
async fn read_until(mut reader: SseReader, last: usize) -> Vec<usize> {
    let mut seen = Vec::new();
    while seen.last() != Some(&last) {
        let Some((_, message)) = reader.next_message(Duration::from_secs(20)).await else {
            break;
        };
        if let Some((seq, _)) = seq_of(&message) {
            seen.push(seq);
        }
    }
    seen
}

#[tokio::test]
async fn stalled_subscribers_hold_up_none_of_the_others() {
    /// Fast subscribers of each kind (GET streams, push streams), and stalled ones.
    const FAST: usize = 12;
    const STALLED: usize = 3;
    const COUNT: usize = 40;
    // The bound is far off: the stalled clients stay stalled for the whole test.
    let (ts, server) = start_with(Duration::from_secs(600)).await;
    let raw = HttpClient::new(ts.url());
    let addr = addr_of(&ts);
    let mut readers = Vec::new();
    for i in 0..FAST {
        let session = subscribed_session(&raw).await;
        let get = SseReader::new(raw.get_stream(&session, None).await);
        readers.push(tokio::spawn(read_until(get, COUNT - 1)));
        let message = request(
            100 + i as i64,
            "events/stream",
            json!({"name": "files/#"}),
            json!({}),
        );
        let push = SseReader::new(raw.post_modern_stream(&message).await);
        readers.push(tokio::spawn(read_until(push, COUNT - 1)));
    }
    let mut stalled = Vec::new();
    for i in 0..STALLED {
        let session = subscribed_session(&raw).await;
        stalled.push(stalled_client(&addr, get_head(&addr, &session), b"").await);
        let (head, body) = push_request(&addr, 200 + i as i64);
        stalled.push(stalled_client(&addr, head, body.as_bytes()).await);
    }

    publish(&server, COUNT, 16 * 1024).await;
    for reader in readers {
        let seen = reader.await.unwrap();
        assert_eq!(seen, (0..COUNT).collect::<Vec<_>>(), "a fast subscriber");
    }
    // Meanwhile the stalled ones took almost nothing, and are still connected.
    let stats = server.metrics().connections();
    assert_eq!(stats.stalled_closed(), 0);
    for (conn, mut received) in stalled {
        // One read: what the kernel holds for it now (reading on would let it catch up).
        let mut buf = vec![0u8; 256 * 1024];
        if let Ok(n) = conn.try_read(&mut buf) {
            received.extend_from_slice(&buf[..n]);
        }
        let got = sse_events(&received)
            .iter()
            .filter(|(_, data)| {
                serde_json::from_str(data)
                    .ok()
                    .as_ref()
                    .and_then(seq_of)
                    .is_some()
            })
            .count();
        assert!(
            got < COUNT / 2,
            "a stalled client got {got} of {COUNT} events"
        );
    }
}

#[tokio::test]
async fn a_push_stream_that_is_not_read_stops_taking_events_and_catches_up_from_the_log() {
    const COUNT: usize = 300;
    // 8 frames may wait for the connection; the rest stays in the log until it reads again.
    let (ts, server) = start_buffered(Duration::from_secs(600), 8).await;
    let addr = addr_of(&ts);
    let (head, body) = push_request(&addr, 1);
    let (mut conn, mut received) = stalled_client(&addr, head, body.as_bytes()).await;
    publish(&server, COUNT, 4096).await;
    // Now it reads: everything arrives, from the queue and then from the log, once each.
    let mut buf = vec![0u8; 64 * 1024];
    let mut seen = Vec::new();
    while seen.last() != Some(&(COUNT - 1)) {
        let n = tokio::time::timeout(Duration::from_secs(20), conn.read(&mut buf))
            .await
            .expect("the rest of the stream")
            .unwrap();
        assert!(n > 0, "the stream ended after {seen:?}");
        received.extend_from_slice(&buf[..n]);
        seen.clear();
        for (_, data) in sse_events(&received) {
            let message: Value = serde_json::from_str(&data).unwrap();
            assert_ne!(message["params"]["truncated"], true, "{message}");
            seen.extend(seq_of(&message).map(|(seq, _)| seq));
        }
    }
    assert_eq!(seen, (0..COUNT).collect::<Vec<_>>(), "once each, in order");
}
