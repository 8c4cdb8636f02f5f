//! Several `mcpbus serve` replicas sharing one real Redis (started by the test on a free
//! loopback port): events published anywhere reach every subscriber once, in the log's order,
//! across a replica's death; sessions are served and ended by any replica; a Redis restart
//! loses nothing a publisher saw acknowledged. docs/protocol.md 4 (resumable streams) and 5 (HTTP).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use mcpbus_testkit::jsonrpc::{subscribe_request, tool_call};
use mcpbus_testkit::{RedisServer, ServeProcess, SseItem, fixture, open_sse};
use serde_json::{Value, json};

fn replica(redis: &RedisServer, prefix: &str) -> ServeProcess {
    ServeProcess::start(
        env!("CARGO_BIN_EXE_mcpbus"),
        &fixture("http.toml"),
        "info",
        &["--redis", &redis.url(), "--redis-prefix", prefix],
    )
}

fn subscribe(server: &ServeProcess, session: &str, patterns: &[&str]) -> Value {
    let r = server.post(Some(session), &subscribe_request(2, patterns));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// The `events/emit` params of an SSE event, if it is one.
fn emitted(event: &mcpbus_proto::sse::SseEvent) -> Option<Value> {
    let v: Value = serde_json::from_str(&event.data).ok()?;
    (v["method"] == "events/emit").then(|| v["params"].clone())
}

/// Reads a GET stream until it ends or `stop` says so; returns (received params, last id).
fn drain(
    rx: &mpsc::Receiver<SseItem>,
    received: &mut Vec<Value>,
    last_id: &mut Option<String>,
    until: impl Fn(usize) -> bool,
    timeout: Duration,
) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(SseItem::Event(e)) => {
                if let Some(id) = &e.id
                    && !id.is_empty()
                {
                    *last_id = Some(id.clone());
                }
                if let Some(p) = emitted(&e) {
                    received.push(p);
                    if until(received.len()) {
                        return true;
                    }
                }
            }
            Ok(SseItem::Status(s)) => assert_eq!(s, 200, "GET stream refused"),
            Ok(SseItem::End) | Err(mpsc::RecvTimeoutError::Disconnected) => return false,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
    }
    false
}

/// Which publisher sent an event, and its number: `(payload.by, payload.n)`.
fn published_key(params: &Value) -> (String, u64) {
    (
        params["payload"]["by"].as_str().unwrap().to_string(),
        params["payload"]["n"].as_u64().unwrap(),
    )
}

/// Checks exactly once and the log's order: cursors strictly increase, every published
/// (publisher, n) arrives once.
fn assert_exactly_once_in_log_order(received: &[Value], expected: &HashSet<(String, u64)>) {
    let mut seen = HashSet::new();
    let mut previous: Option<(u64, u64)> = None;
    for p in received {
        let cursor = p["_meta"]["mcpbus/cursor"].as_str().expect("a cursor");
        let (ms, seq) = cursor.split_once('-').unwrap();
        let position = (ms.parse::<u64>().unwrap(), seq.parse::<u64>().unwrap());
        assert!(
            previous.is_none_or(|prev| prev < position),
            "out of log order: {previous:?} then {position:?}"
        );
        previous = Some(position);
        let key = published_key(p);
        assert!(seen.insert(key.clone()), "delivered twice: {key:?}");
    }
    let missing: Vec<_> = expected.difference(&seen).take(5).collect();
    assert!(
        missing.is_empty() && seen.len() == expected.len(),
        "{} of {} delivered; missing e.g. {missing:?}",
        seen.len(),
        expected.len()
    );
}

#[test]
fn ten_thousand_events_from_two_replicas_arrive_once_in_order_across_a_replica_kill() {
    const PER_PUBLISHER: u64 = 5_000;
    let redis = RedisServer::start(false);
    let mut a = replica(&redis, "kill");
    let b = Arc::new(replica(&redis, "kill"));
    let c = Arc::new(replica(&redis, "kill"));
    let session = a.initialize();
    subscribe(&a, &session, &["alerts/+"]);
    let stream = open_sse(&a.mcp_url(), &session, None);

    // B and C publish at once: the log decides one order that every replica follows.
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let publishers: Vec<_> = [("b", b.clone()), ("c", c.clone())]
        .into_iter()
        .map(|(name, server)| {
            let acked = acked.clone();
            thread::spawn(move || {
                for n in 0..PER_PUBLISHER {
                    let r = server.publish(&json!({
                        "topic": format!("alerts/{name}"),
                        "payload": {"by": name, "n": n},
                    }));
                    assert_eq!(r.status, 200, "publish via {name}: {}", r.text());
                    assert!(r.json()["cursor"].is_string(), "{}", r.text());
                    acked.lock().unwrap().insert((name.to_string(), n));
                }
            })
        })
        .collect();

    let mut received = Vec::new();
    let mut last_id = None;
    let total = (2 * PER_PUBLISHER) as usize;
    // Kill A once a third has arrived, without a clean shutdown.
    drain(
        &stream,
        &mut received,
        &mut last_id,
        |n| n >= total / 3,
        Duration::from_secs(120),
    );
    assert!(
        received.len() >= total / 3,
        "only {} events before the kill",
        received.len()
    );
    a.guard.child.kill().unwrap();
    let _ = a.guard.child.wait();
    // Whatever was in flight on A's connection is read to the end.
    drain(
        &stream,
        &mut received,
        &mut last_id,
        |_| false,
        Duration::from_secs(5),
    );

    let before_kill = received.len();
    let published_at_kill = acked.lock().unwrap().len();
    // Resume on C with the last id received: it catches up from the shared log and goes on.
    let last = last_id.clone().expect("an event id");
    let resumed = open_sse(&c.mcp_url(), &session, Some(&last));
    drain(
        &resumed,
        &mut received,
        &mut last_id,
        |n| n >= total,
        Duration::from_secs(180),
    );
    for p in publishers {
        p.join().unwrap();
    }
    // Nothing more arrives after everything did (no duplicates at the end either).
    drain(
        &resumed,
        &mut received,
        &mut last_id,
        |_| false,
        Duration::from_millis(500),
    );
    eprintln!(
        "received {before_kill} events from A before killing it ({published_at_kill} published by then), {} in all",
        received.len()
    );
    assert!(
        published_at_kill < total,
        "A was killed after publishing ended: the test would not show a mid-stream takeover"
    );
    assert_exactly_once_in_log_order(&received, &acked.lock().unwrap());
    assert!(
        c.log()
            .contains("serving a session created by another replica"),
        "{}",
        c.log()
    );
}

#[test]
fn a_session_from_one_replica_is_served_by_the_others_and_deleted_everywhere() {
    let redis = RedisServer::start(false);
    let a = replica(&redis, "sessions");
    let b = replica(&redis, "sessions");
    let c = replica(&redis, "sessions");
    let session = a.initialize();
    let call = tool_call(7, "whoami");
    let mut agents = HashSet::new();
    for server in [&b, &c, &a] {
        let r = server.post(Some(&session), &call);
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert!(v["result"]["isError"] != true, "{v}");
        agents.insert(v["result"]["structuredContent"].to_string());
    }
    assert_eq!(
        agents.len(),
        1,
        "every replica sees the same agent: {agents:?}"
    );

    // A subscription made through B is in force for a stream held by C.
    subscribe(&b, &session, &["deploy/status"]);
    let stream = open_sse(&c.mcp_url(), &session, None);
    assert_eq!(
        a.publish(&json!({"topic": "deploy/status", "payload": "v2"}))
            .status,
        200
    );
    let mut received = Vec::new();
    let mut last_id = None;
    drain(
        &stream,
        &mut received,
        &mut last_id,
        |n| n >= 1,
        Duration::from_secs(10),
    );
    assert_eq!(
        received.len(),
        1,
        "the event published on A reached C's stream"
    );
    assert_eq!(received[0]["payload"], "v2");

    // DELETE on C ends it on every replica.
    let r = c.request(
        "DELETE",
        "/mcp",
        &[
            ("Mcp-Session-Id", &session),
            ("MCP-Protocol-Version", "2025-11-25"),
        ],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // The other replicas hear of it through the shared log and end their copies.
    for server in [&a, &b] {
        server.wait_for_log(
            "ending the copy of the session",
            Duration::from_secs(10),
            |l| l.contains("ended on another replica"),
        );
    }
    for server in [&a, &b, &c] {
        let r = server.post(Some(&session), &call);
        assert_eq!(r.status, 404, "after DELETE: {}", r.text());
    }
    // An unknown session stays unknown everywhere.
    assert_eq!(
        b.post(Some("0123456789abcdef0123456789abcdef"), &call)
            .status,
        404
    );
}

#[test]
fn a_redis_restart_loses_no_acknowledged_event() {
    let mut redis = RedisServer::start(true);
    let a = replica(&redis, "restart");
    let b = Arc::new(replica(&redis, "restart"));
    let session = a.initialize();
    subscribe(&a, &session, &["alerts/+"]);

    let acked = Arc::new(Mutex::new(HashSet::new()));
    let refused = Arc::new(Mutex::new(0u64));
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (acked, refused, stop, b) = (acked.clone(), refused.clone(), stop.clone(), b.clone());
        thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let r = b.publish(&json!({"topic": "alerts/x", "payload": {"by": "b", "n": n}}));
                match r.status.as_u16() {
                    200 => {
                        acked.lock().unwrap().insert(("b".to_string(), n));
                    }
                    // Redis is down: the publisher is told, nothing is silently dropped.
                    503 => *refused.lock().unwrap() += 1,
                    other => panic!("publish: {other} {}", r.text()),
                }
                n += 1;
                thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let mut received = Vec::new();
    let mut last_id: Option<String> = None;
    let mut stream = open_sse(&a.mcp_url(), &session, None);
    let wait_for = |target: usize,
                    received: &mut Vec<Value>,
                    last_id: &mut Option<String>,
                    stream: &mut mpsc::Receiver<SseItem>| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while received.len() < target && Instant::now() < deadline {
            if !drain(
                stream,
                received,
                last_id,
                |n| n >= target,
                Duration::from_secs(5),
            ) {
                // The stream ended (Redis went away): resume where it stopped, until it works.
                thread::sleep(Duration::from_millis(200));
                *stream = open_sse(&a.mcp_url(), &session, last_id.as_deref());
                match stream.recv_timeout(Duration::from_secs(5)) {
                    Ok(SseItem::Status(200)) => {}
                    _ => *stream = mpsc::channel().1,
                }
            }
        }
    };
    wait_for(200, &mut received, &mut last_id, &mut stream);
    redis.kill();
    thread::sleep(Duration::from_millis(1500));
    redis.restart();
    thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    publisher.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(
        *refused.lock().unwrap() > 0,
        "no publish failed while Redis was down"
    );
    // Every acknowledged event arrives (those refused were never acknowledged).
    let expected_count = acked.len();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let have: HashSet<_> = received.iter().map(published_key).collect();
        if acked.is_subset(&have) {
            break;
        }
        wait_for(received.len() + 1, &mut received, &mut last_id, &mut stream);
    }
    let delivered: Vec<Value> = received.clone();
    let have: HashSet<_> = delivered.iter().map(published_key).collect();
    let missing: Vec<_> = acked.difference(&have).take(5).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events missing after the restart (of {expected_count}), e.g. {missing:?}",
        acked.difference(&have).count()
    );
    assert_eq!(have.len(), delivered.len(), "an event was delivered twice");
}

#[test]
fn serve_fails_clearly_without_a_reachable_redis() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcpbus"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("MCPBUS_REDIS")
            .env_remove("MCPBUS_CONFIG")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // Nothing listens on port 1 of loopback.
    let e = run(&["--redis", "redis://127.0.0.1:1"]);
    assert!(
        e.contains("could not connect to Redis at redis://127.0.0.1:1"),
        "{e}"
    );
    let e = run(&["--redis", "http://127.0.0.1:1"]);
    assert!(e.contains("invalid Redis URL"), "{e}");
    let e = run(&["--redis-prefix", "x"]);
    assert!(e.contains("a Redis prefix needs a Redis"), "{e}");
    let e = run(&[
        "--redis",
        "redis://127.0.0.1:1",
        "--redis-prefix",
        "bad{prefix}",
    ]);
    assert!(e.contains("invalid Redis key prefix"), "{e}");
}
