//! The MCP Events extension (SEP-3415) over stdio (docs/protocol.md 3): polls and push streams
//! of the 2026-07-28 era on one connection, push streams ended by `notifications/cancelled`
//! and exempt from the limit on requests in flight, and the same methods in a handshake-era
//! session (3.5).

#![allow(clippy::unwrap_used)] // tests unwrap to fail loudly

use std::sync::Arc;
use std::time::Duration;

use mcpbus::events::{DeliveryConfig, EmitReport, Event, MemoryEventLog, TopicSpec};
use mcpbus::server::Server;
use mcpbus::service::ServiceConfig;
use mcpbus_testkit::jsonrpc::{initialize_request, initialized};
use mcpbus_testkit::modern::request;
use serde_json::{Value, json};
use tokio::io::{
    AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines, ReadHalf, WriteHalf,
};

const T: Duration = Duration::from_secs(5);

struct Line {
    lines: Lines<BufReader<ReadHalf<DuplexStream>>>,
    w: WriteHalf<DuplexStream>,
}

impl Line {
    async fn send(&mut self, message: &Value) {
        self.w
            .write_all(format!("{message}\n").as_bytes())
            .await
            .unwrap();
    }

    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(T, self.lines.next_line())
            .await
            .expect("a message in time")
            .unwrap()
            .expect("the server is still there");
        serde_json::from_str(&line).unwrap()
    }

    /// The answer to request `id`, with the notifications before it.
    async fn answer(&mut self, id: i64) -> (Value, Vec<Value>) {
        let mut notes = Vec::new();
        loop {
            let m = self.next().await;
            if m["id"] == id {
                return (m, notes);
            }
            notes.push(m);
        }
    }

    /// The next notification of push stream `id`.
    async fn note(&mut self, id: i64, method: &str) -> Value {
        loop {
            let m = self.next().await;
            let of_stream = m["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == id;
            if of_stream && m["method"] == method {
                return m["params"].clone();
            }
        }
    }
}

fn server(max_in_flight: usize) -> Server {
    builder(max_in_flight).build().unwrap()
}

fn builder(max_in_flight: usize) -> mcpbus::server::ServerBuilder {
    Server::builder("stdio-events", "1")
        .topic(TopicSpec::content("build/+").retained(true))
        .topic(TopicSpec::signal("agents/{agent_id}/inbox"))
        .service_config(ServiceConfig {
            max_in_flight,
            ..ServiceConfig::default()
        })
}

/// A server whose push streams hold 4 live events and whose log keeps `history`.
fn small(history: usize) -> Server {
    builder(1024)
        .event_log(Arc::new(MemoryEventLog::with_history(history)))
        .event_delivery(DeliveryConfig {
            stream_buffer: 4,
            ..DeliveryConfig::default()
        })
        .build()
        .unwrap()
}

/// Opens a push stream on `build/+` from now, then publishes 100 events at once: the
/// single-threaded test runtime does not let the stream run meanwhile, so it falls behind.
async fn burst(s: &Server, io: &mut Line) -> Vec<EmitReport> {
    let params = json!({"name": "build/+", "arguments": {"retained": false}});
    io.send(&request(1, "events/stream", params, json!({})))
        .await;
    io.note(1, "notifications/events/active").await;
    let mut reports = Vec::new();
    for n in 0..100 {
        reports.push(publish(s, "build/api", json!({"n": n})).await);
    }
    reports
}

fn connect(server: &Server) -> Line {
    let (server_io, client_io) = tokio::io::duplex(1024 * 1024);
    let (r, w) = tokio::io::split(server_io);
    let served = server.clone();
    tokio::spawn(async move {
        served
            .serve(mcpbus::transport::LineTransport::new(r, w))
            .await
    });
    let (r, w) = tokio::io::split(client_io);
    Line {
        lines: BufReader::new(r).lines(),
        w,
    }
}

async fn publish(server: &Server, topic: &str, payload: Value) -> EmitReport {
    server
        .events()
        .publish(Event::new(topic, payload))
        .await
        .unwrap()
}

#[tokio::test]
async fn polls_over_stdio_resume_with_their_cursor() {
    let s = server(1024);
    let mut io = connect(&s);
    let retained = publish(&s, "build/web", json!({"state": "green"})).await;
    io.send(&request(
        1,
        "events/poll",
        json!({"name": "build/+"}),
        json!({}),
    ))
    .await;
    let (first, _) = io.answer(1).await;
    assert_eq!(
        first["result"]["events"][0]["eventId"],
        retained.event_id.as_str()
    );
    let mut cursor = first["result"]["cursor"].clone();
    let mut expected = Vec::new();
    for n in 0..500 {
        expected.push(publish(&s, "build/api", json!({"n": n})).await);
    }
    let mut got = Vec::new();
    for id in 2.. {
        let params = json!({"name": "build/+", "cursor": cursor, "maxEvents": 200});
        io.send(&request(id, "events/poll", params, json!({})))
            .await;
        let (answer, _) = io.answer(id).await;
        let r = &answer["result"];
        got.extend(r["events"].as_array().unwrap().iter().cloned());
        cursor = r["cursor"].clone();
        if r["hasMore"] == false {
            break;
        }
    }
    let ids: Vec<&str> = got.iter().map(|e| e["eventId"].as_str().unwrap()).collect();
    let want: Vec<&str> = expected.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(ids, want);
}

#[tokio::test]
async fn a_push_stream_over_stdio_ends_with_notifications_cancelled() {
    let s = server(1024);
    let mut io = connect(&s);
    let kept = publish(&s, "build/web", json!({"state": "red"})).await;
    io.send(&request(
        5,
        "events/stream",
        json!({"name": "build/+"}),
        json!({}),
    ))
    .await;
    let active = io.note(5, "notifications/events/active").await;
    assert_eq!(active["cursor"], kept.cursor.as_str());
    let retained = io.note(5, "notifications/events/event").await;
    assert_eq!(retained["eventId"], kept.event_id.as_str());
    let mut last = 0u64;
    for n in 0..3 {
        let report = publish(&s, "build/api", json!({"n": n})).await;
        let event = io.note(5, "notifications/events/event").await;
        assert_eq!(event["eventId"], report.event_id.as_str());
        let cursor: u64 = event["cursor"].as_str().unwrap().parse().unwrap();
        assert!(cursor > last);
        last = cursor;
    }
    assert_eq!(s.events().push_streams(), 1);
    io.send(
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                   "params": {"requestId": 5}}),
    )
    .await;
    for _ in 0..100 {
        if s.events().push_streams() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        s.events().push_streams(),
        0,
        "cancelled streams are released"
    );
    // Nothing more for the cancelled stream: the next message is the answer to a later request.
    publish(&s, "build/api", json!({"after": true})).await;
    io.send(&request(6, "events/list", json!({}), json!({})))
        .await;
    let (list, notes) = io.answer(6).await;
    assert!(list["result"]["events"].is_array());
    assert!(notes.is_empty(), "{notes:?}");
}

#[tokio::test]
async fn a_push_stream_over_stdio_resumed_with_its_cursor_gets_what_it_missed() {
    let s = server(1024);
    let mut io = connect(&s);
    let params = json!({"name": "build/+", "arguments": {"retained": false}});
    io.send(&request(1, "events/stream", params, json!({})))
        .await;
    let cursor = io.note(1, "notifications/events/active").await["cursor"].clone();
    io.send(
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                   "params": {"requestId": 1}}),
    )
    .await;
    let mut expected = Vec::new();
    for n in 0..500 {
        expected.push(publish(&s, "build/api", json!({"n": n})).await);
    }
    let params = json!({"name": "build/+", "cursor": cursor});
    io.send(&request(2, "events/stream", params, json!({})))
        .await;
    let active = io.note(2, "notifications/events/active").await;
    assert_eq!(active["truncated"], false);
    for report in &expected {
        let event = io.note(2, "notifications/events/event").await;
        assert_eq!(event["eventId"], report.event_id.as_str());
        assert_eq!(event["cursor"], report.cursor.as_str());
    }
}

#[tokio::test]
async fn push_streams_do_not_count_against_the_requests_in_flight() {
    let s = server(1);
    let mut io = connect(&s);
    for id in 1..=3 {
        io.send(&request(
            id,
            "events/stream",
            json!({"name": "build/+"}),
            json!({}),
        ))
        .await;
        io.note(id, "notifications/events/active").await;
    }
    io.send(&request(
        9,
        "events/poll",
        json!({"name": "build/+"}),
        json!({}),
    ))
    .await;
    let (answer, _) = io.answer(9).await;
    assert!(answer["result"]["cursor"].is_string(), "{answer}");
}

#[tokio::test]
async fn a_handshake_session_may_poll_and_stream_its_own_scoped_topics() {
    let s = server(1024);
    let mut io = connect(&s);
    io.send(&initialize_request("legacy")).await;
    let (init, _) = io.answer(1).await;
    let session = init["result"]["_meta"]["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    io.send(&initialized()).await;
    io.send(&json!({"jsonrpc": "2.0", "id": 2, "method": "events/list"}))
        .await;
    let (list, _) = io.answer(2).await;
    assert_eq!(list["result"]["topics"].as_array().unwrap().len(), 2);
    assert_eq!(
        list["result"]["events"][1]["name"],
        "agents/{agent_id}/inbox"
    );
    // Its own inbox by default (docs/protocol.md 3.2): the agent id is the session id here.
    io.send(
        &json!({"jsonrpc": "2.0", "id": 3, "method": "events/stream",
                   "params": {"name": "agents/{agent_id}/inbox"}}),
    )
    .await;
    io.note(3, "notifications/events/active").await;
    publish(&s, "agents/someone-else/inbox", json!({"not": "mine"})).await;
    let mine = publish(&s, &format!("agents/{session}/inbox"), json!({"hi": 1})).await;
    let event = io.note(3, "notifications/events/event").await;
    assert_eq!(event["eventId"], mine.event_id.as_str());
    io.send(&json!({"jsonrpc": "2.0", "id": 4, "method": "events/poll",
                   "params": {"name": "agents/{agent_id}/inbox",
                              "arguments": {"agent_id": "someone-else"}}}))
        .await;
    let (refused, _) = io.answer(4).await;
    assert_eq!(refused["error"]["code"], -32024);
}

#[tokio::test]
async fn a_stream_that_falls_behind_catches_up_from_the_log() {
    let s = small(1000);
    let mut io = connect(&s);
    let reports = burst(&s, &mut io).await;
    for report in &reports {
        let m = loop {
            let m = io.next().await;
            if m["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == 1 {
                break m;
            }
        };
        assert_eq!(m["method"], "notifications/events/event", "no gap: {m}");
        assert_eq!(m["params"]["eventId"], report.event_id.as_str());
    }
}

#[tokio::test]
async fn a_stream_whose_missed_events_left_the_log_hears_of_the_gap() {
    let s = small(10);
    let mut io = connect(&s);
    let reports = burst(&s, &mut io).await;
    let gap = io.note(1, "notifications/events/active").await;
    assert_eq!(gap["truncated"], true, "{gap}");
    assert_eq!(gap["cursor"], reports[89].cursor.as_str());
    for report in &reports[90..] {
        let event = io.note(1, "notifications/events/event").await;
        assert_eq!(event["eventId"], report.event_id.as_str());
    }
}

/// The value of the sample written exactly as `series` in the server's metrics.
async fn metric(s: &Server, series: &str) -> Option<f64> {
    let text = s.metrics_text().await;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn push_streams_and_polls_count_what_they_hand_over_in_the_metrics() {
    let s = server(1024);
    let mut io = connect(&s);
    let params = json!({"name": "build/+", "arguments": {"retained": false}});
    io.send(&request(1, "events/stream", params, json!({})))
        .await;
    let cursor = io.note(1, "notifications/events/active").await["cursor"].clone();
    for n in 0..5 {
        publish(&s, "build/api", json!({"n": n})).await;
        io.note(1, "notifications/events/event").await;
    }
    let params = json!({"name": "build/+", "cursor": cursor});
    io.send(&request(2, "events/poll", params, json!({}))).await;
    let (answer, _) = io.answer(2).await;
    assert_eq!(answer["result"]["events"].as_array().unwrap().len(), 5);
    let delivered = r#"mcpbus_events_delivered_total{topic="build/+"}"#;
    // Five sent on the stream, five returned by the poll; the stream's watch counts nothing.
    assert_eq!(metric(&s, delivered).await, Some(10.0));
    let published = r#"mcpbus_events_published_total{topic="build/+"}"#;
    assert_eq!(metric(&s, published).await, Some(5.0));
    assert_eq!(
        metric(
            &s,
            r#"mcpbus_streams{era="2026-07-28",method="events/stream"}"#
        )
        .await,
        Some(1.0)
    );
}
