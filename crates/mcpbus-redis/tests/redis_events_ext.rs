//! The read side of the shared event log (docs/protocol.md 3.3) against a real `redis-server`:
//! reading after a cursor, cursors the stream can no longer serve, the age floor, retained
//! values with their publish time, and SEP-3415 polls and push streams across two replicas.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use mcpbus::events::{EventLog, LogPosition, NewEvent, ReadError, ReadFrom, TopicSpec};
use mcpbus::server::Server;
use mcpbus::transport::http::{HttpConfig, serve_http};
use mcpbus_proto::events::EventParams;
use mcpbus_proto::topic::TopicPattern;
use mcpbus_redis::{RedisBackend, RedisConfig};
use mcpbus_testkit::modern::{answer_message, request};
use mcpbus_testkit::{HttpClient, RedisServer, SseReader, TestServer};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(5);

async fn backend(redis: &RedisServer, prefix: &str, log_max_len: usize) -> RedisBackend {
    let mut config = RedisConfig::new(redis.url()).prefix(prefix);
    config.log_max_len = log_max_len;
    RedisBackend::connect(config).await.expect("connects")
}

fn event(topic: &str, n: usize, retained: bool) -> NewEvent {
    let mut params = EventParams::new(topic, format!("e{n}"), json!({"n": n}));
    params.retained = retained;
    NewEvent {
        json: Bytes::from(serde_json::to_vec(&params).unwrap()),
        params,
        expires_at: None,
        published_at: Utc::now(),
    }
}

async fn append_all(log: &Arc<dyn EventLog>, count: usize) -> Vec<String> {
    let mut cursors = Vec::new();
    for n in 0..count {
        let appended = log.append(event("alerts/a", n, false)).await.unwrap();
        cursors.push(appended.cursor.to_string());
    }
    cursors
}

fn from(cursor: &str) -> ReadFrom<'_> {
    ReadFrom {
        cursor,
        not_before: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_reads_back_after_a_cursor_in_order() {
    let redis = RedisServer::start(false);
    let b = backend(&redis, "read", 1_000_000).await;
    let log = b.event_log();
    assert_eq!(&*log.head().await.unwrap(), "0-0", "an empty log");
    let cursors = append_all(&log, 30).await;
    assert_eq!(&*log.head().await.unwrap(), cursors[29].as_str());
    let mut got = Vec::new();
    let mut cursor = "0-0".to_string();
    loop {
        let page = log.read_after(from(&cursor), 7).await.unwrap();
        assert!(!page.truncated, "nothing was trimmed");
        got.extend(page.events.iter().map(|e| e.cursor.to_string()));
        cursor = page.next.to_string();
        if page.at_end {
            break;
        }
    }
    assert_eq!(got, cursors);
    let page = log.read_after(from(&cursors[9]), 100).await.unwrap();
    assert_eq!(page.events.len(), 20);
    assert_eq!(&*page.events[0].cursor, cursors[10].as_str());
    let at = page.events[0].published_at;
    assert!(
        (Utc::now() - at).num_seconds().abs() < 60,
        "the stream id's time"
    );
    // Garbage is an error; a cursor beyond the log (another deployment's) starts over.
    assert!(matches!(
        log.read_after(from("yesterday"), 10).await,
        Err(ReadError::InvalidCursor(_))
    ));
    let future = log.read_after(from("99999999999999-0"), 100).await.unwrap();
    assert!(future.truncated);
    assert_eq!(future.events.len(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_the_log_trimmed_past_is_truncated() {
    let redis = RedisServer::start(false);
    // Approximate trimming drops whole nodes of 100 entries: 10 keeps about a node's worth.
    let b = backend(&redis, "trim", 10).await;
    let log = b.event_log();
    let cursors = append_all(&log, 350).await;
    let page = log.read_after(from(&cursors[0]), 1000).await.unwrap();
    assert!(page.truncated, "the start of the log is gone");
    assert!(page.events.len() < 350);
    let kept = page.events.len();
    assert_eq!(&*page.events[kept - 1].cursor, cursors[349].as_str());
    // The oldest entry kept is read, and the resume point is just before it.
    assert_eq!(&*page.events[0].cursor, cursors[350 - kept].as_str());
    let resume = LogPosition::parse(&page.start).unwrap();
    assert!(resume < LogPosition::parse(&cursors[350 - kept]).unwrap());
    // The cursor of the entry just before the oldest kept loses nothing.
    let page = log
        .read_after(from(&cursors[349 - kept]), 1000)
        .await
        .unwrap();
    assert_eq!(page.events.len(), kept);
    // A cursor inside what is kept is served as it is.
    let page = log.read_after(from(&cursors[340]), 1000).await.unwrap();
    assert!(!page.truncated);
    assert_eq!(page.events.len(), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_age_floor_skips_older_events() {
    let redis = RedisServer::start(false);
    let b = backend(&redis, "age", 1_000_000).await;
    let log = b.event_log();
    let old = append_all(&log, 5).await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    let floor = Utc::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let fresh = log.append(event("alerts/a", 99, false)).await.unwrap();
    let page = log
        .read_after(
            ReadFrom {
                cursor: &old[1],
                not_before: Some(floor),
            },
            100,
        )
        .await
        .unwrap();
    assert!(page.truncated);
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].cursor, fresh.cursor);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_values_know_when_they_were_published() {
    let redis = RedisServer::start(false);
    let b = backend(&redis, "kept", 1_000_000).await;
    let log = b.event_log();
    log.append(event("cfg/a", 1, true)).await.unwrap();
    let values = log
        .retained_values(&TopicPattern::new("cfg/+").unwrap())
        .await
        .unwrap();
    assert_eq!(values.len(), 1);
    assert_eq!(values[0].event.event_id, "e1");
    assert!(values[0].event.retained);
    let at = values[0].published_at.expect("the log id's time");
    assert!((Utc::now() - at).num_seconds().abs() < 60);
    // The handshake era reads the same value as before.
    let legacy = log
        .retained(&TopicPattern::new("#").unwrap())
        .await
        .unwrap();
    assert_eq!(legacy[0].payload, json!({"n": 1}));
}

async fn replica(redis: &RedisServer) -> (TestServer, Server) {
    let backend = backend(redis, "two", 1_000_000).await;
    let server = Server::builder("replica", "1")
        .topic(TopicSpec::content("alerts/#"))
        .event_log(backend.event_log())
        .build()
        .unwrap();
    let served = server.clone();
    let ts =
        TestServer::start(|l, stop| serve_http(l, "/mcp", served, HttpConfig::default(), stop))
            .await;
    (ts, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_and_push_streams_span_replicas() {
    let redis = RedisServer::start(false);
    let ((ts_a, _a), (ts_b, b)) = (replica(&redis).await, replica(&redis).await);
    let (raw_a, raw_b) = (HttpClient::new(ts_a.url()), HttpClient::new(ts_b.url()));
    let open = request(1, "events/stream", json!({"name": "alerts/#"}), json!({}));
    let mut push = SseReader::new(raw_a.post_modern_stream(&open).await);
    let (_, active) = push.next_message(T).await.unwrap();
    let cursor = active["params"]["cursor"].clone();
    let mut reports = Vec::new();
    for n in 0..20 {
        let e = mcpbus::events::Event::new(format!("alerts/{n}"), json!({"n": n}));
        reports.push(b.events().publish(e).await.unwrap());
    }
    // Published on B, pushed by A, with the cursors B's log gave them.
    for report in &reports {
        let (_, m) = push.next_message(T).await.unwrap();
        assert_eq!(m["method"], "notifications/events/event", "{m}");
        assert_eq!(m["params"]["eventId"], report.event_id.as_str());
        assert_eq!(m["params"]["cursor"], report.cursor.as_str());
    }
    // A's cursor polled on B: the same events.
    let poll = request(
        2,
        "events/poll",
        json!({"name": "alerts/#", "cursor": cursor}),
        json!({}),
    );
    let r = answer_message(&raw_b.post_modern(&poll).await);
    let ids: Vec<&Value> = r["result"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["eventId"])
        .collect();
    assert_eq!(ids.len(), 20, "{r}");
    for (id, report) in ids.iter().zip(&reports) {
        assert_eq!(**id, report.event_id.as_str());
    }
    assert_eq!(r["result"]["cursor"], reports[19].cursor.as_str());
}
