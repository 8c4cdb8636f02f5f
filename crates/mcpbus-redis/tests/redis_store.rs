//! The Redis event store, event bus and session store against a real `redis-server` started
//! on a free loopback port (docs/protocol.md 4: resumable streams; 2: retained events).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use mcpbus::cluster::SessionRecord;
use mcpbus::events::NewEvent;
use mcpbus::store::StoreError;
use mcpbus_proto::topic::TopicPattern;
use mcpbus_redis::{RedisBackend, RedisConfig};
use mcpbus_testkit::RedisServer;

async fn backend(redis: &RedisServer, prefix: &str, max_events: usize) -> RedisBackend {
    let mut config = RedisConfig::new(redis.url()).prefix(prefix);
    config.max_events_per_stream = max_events;
    RedisBackend::connect(config).await.expect("connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_keep_one_strict_order_and_replay_it() {
    let redis = RedisServer::start(false);
    let b = backend(&redis, "order", 100_000).await;
    let store = b.event_store();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for n in 0..250 {
                    let msg = format!(r#"{{"w":{w},"n":{n}}}"#);
                    ids.push(
                        store
                            .append("s1", "get", Some(Bytes::from(msg)))
                            .await
                            .unwrap(),
                    );
                }
                ids
            })
        })
        .collect();
    let mut per_writer = Vec::new();
    for w in writers {
        per_writer.push(w.await.unwrap());
    }
    // Read it all back in pages: one order, each writer's messages in its own order.
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store
            .read_after("s1", "get", cursor.as_deref(), 300)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        cursor = Some(page.last().unwrap().id.clone());
        all.extend(page);
    }
    assert_eq!(all.len(), 2000);
    let mut next = HashMap::new();
    for e in &all {
        let v: serde_json::Value = serde_json::from_slice(e.message.as_ref().unwrap()).unwrap();
        let (w, n) = (v["w"].as_u64().unwrap(), v["n"].as_u64().unwrap());
        let expected = next.entry(w).or_insert(0);
        assert_eq!(n, *expected, "writer {w} out of order");
        *expected += 1;
        assert!(per_writer[w as usize].contains(&e.id));
    }
    // A resume from the middle gives exactly the rest.
    let rest = store
        .read_after("s1", "get", Some(&all[1499].id), 1000)
        .await
        .unwrap();
    assert_eq!(rest.len(), 500);
    assert_eq!(rest[0].id, all[1500].id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_are_scoped_by_session_and_stream_and_priming_events_have_no_message() {
    let redis = RedisServer::start(false);
    let b = backend(&redis, "scope", 100).await;
    let store = b.event_store();
    let priming = store.append("alice", "post-1", None).await.unwrap();
    let first = store
        .append("alice", "post-1", Some(Bytes::from_static(b"{}")))
        .await
        .unwrap();
    store
        .append("bob", "post-1", Some(Bytes::from_static(b"[]")))
        .await
        .unwrap();
    let read = store.read_after("alice", "post-1", None, 10).await.unwrap();
    assert_eq!(read.len(), 2);
    assert_eq!(read[0].message, None, "a priming event");
    let pos = store.locate("alice", &first).await.unwrap();
    assert_eq!(pos.stream, "post-1");
    // Bob cannot use Alice's ids, even on a stream with the same name.
    assert!(matches!(
        store.locate("bob", &priming).await,
        Err(StoreError::Unknown(_))
    ));
    assert!(matches!(
        store.read_after("bob", "post-1", Some(&priming), 10).await,
        Err(StoreError::Unknown(_))
    ));
    for bad in ["", "x", "a.b.c", "0000000.get.1-0", "deadbeef.get.x-1"] {
        assert!(
            matches!(
                store.locate("alice", bad).await,
                Err(StoreError::Malformed(_))
            ),
            "{bad:?}"
        );
    }
    // A forgotten session's ids are refused, and new ones do not reuse them.
    store.remove_session("alice").await;
    assert!(matches!(
        store.locate("alice", &first).await,
        Err(StoreError::Unknown(_))
    ));
    let again = store.append("alice", "post-1", None).await.unwrap();
    assert_ne!(again, priming);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_before_trimmed_events_is_expired_not_short() {
    let redis = RedisServer::start(false);
    let b = backend(&redis, "trim", 10).await;
    let store = b.event_store();
    let mut ids = Vec::new();
    for n in 0..25 {
        let msg = Bytes::from(format!("{n}"));
        ids.push(store.append("s", "get", Some(msg)).await.unwrap());
    }
    assert!(matches!(
        store.read_after("s", "get", Some(&ids[3]), 100).await,
        Err(StoreError::Expired(_))
    ));
    let kept = store
        .read_after("s", "get", Some(&ids[15]), 100)
        .await
        .unwrap();
    assert_eq!(kept.len(), 9);
    assert_eq!(
        store.last_id("s", "get").await.unwrap(),
        Some(ids[24].clone())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_values_expire_natively_and_wildcards_find_them() {
    let redis = RedisServer::start(false);
    let b = backend(&redis, "retained", 100).await;
    let log = b.event_log();
    let now = chrono::Utc::now();
    let publish = |topic: &str, expires_in_ms: Option<i64>| {
        let mut params =
            mcpbus_proto::events::EventParams::new(topic, format!("{topic}-1"), 1.into());
        params.retained = true;
        NewEvent {
            json: Bytes::from(serde_json::to_vec(&params).unwrap()),
            params,
            expires_at: expires_in_ms.map(|ms| now + chrono::Duration::milliseconds(ms)),
            published_at: now,
        }
    };
    let c1 = log.append(publish("alerts/a", None)).await.unwrap().cursor;
    let c2 = log
        .append(publish("alerts/b", Some(300)))
        .await
        .unwrap()
        .cursor;
    log.append(publish("build/status", None)).await.unwrap();
    assert!(c1 < c2, "cursors follow the log: {c1} {c2}");
    let topics = |events: Vec<mcpbus_proto::events::RetainedEvent>| {
        events.into_iter().map(|e| e.topic).collect::<Vec<_>>()
    };
    let plus = TopicPattern::new("alerts/+").unwrap();
    let all = TopicPattern::new("#").unwrap();
    assert_eq!(
        topics(log.retained(&plus).await.unwrap()),
        ["alerts/a", "alerts/b"]
    );
    assert_eq!(topics(log.retained(&all).await.unwrap()).len(), 3);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(topics(log.retained(&plus).await.unwrap()), ["alerts/a"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_shared_and_end_once() {
    let redis = RedisServer::start(false);
    let one = backend(&redis, "sess", 100).await;
    let two = backend(&redis, "sess", 100).await;
    let record: SessionRecord = serde_json::from_value(serde_json::json!({
        "protocolVersion": "2025-11-25",
        "clientInfo": {"name": "c", "version": "1"},
        "capabilities": {},
        "agentId": "agent-7"
    }))
    .unwrap();
    let ttl = Duration::from_secs(60);
    one.session_store()
        .create("s9", &record, ttl)
        .await
        .unwrap();
    let loaded = two.session_store().load("s9").await.unwrap();
    assert_eq!(loaded, Some(record));
    assert!(two.session_store().end("s9").await.unwrap());
    assert!(!one.session_store().end("s9").await.unwrap(), "ends once");
    assert_eq!(one.session_store().load("s9").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_url_or_prefix_is_a_clear_error() {
    let e = RedisBackend::connect(RedisConfig::new("http://127.0.0.1:1"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("invalid Redis URL"), "{e}");
    let e = RedisBackend::connect(RedisConfig::new("redis://127.0.0.1:1").prefix("a{b}"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("invalid Redis key prefix"), "{e}");
    // Nothing listens on port 1 of loopback.
    let e = RedisBackend::connect(RedisConfig::new("redis://127.0.0.1:1"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("could not connect to Redis"), "{e}");
}
