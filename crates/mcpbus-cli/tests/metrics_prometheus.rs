//! `GET /metrics` scraped by a real Prometheus (the Debian package, started by the test on a
//! free loopback port with a one-second scrape interval, `MCPBUS_PROMETHEUS` or `prometheus`
//! on PATH; `bash scripts/test.sh` installs it): the delivered events Prometheus reports are
//! exactly the events published times their subscribers, for one replica in memory and summed
//! over two replicas sharing a real Redis.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::mpsc;
use std::time::{Duration, Instant};

use mcpbus_testkit::jsonrpc::subscribe_request;
use mcpbus_testkit::{PrometheusServer, RedisServer, ServeProcess, SseItem, fixture, open_sse};
use serde_json::{Value, json};

/// The declared pattern the test publishes under, and the concrete topic.
const PATTERN: &str = "alerts/+";
const TOPIC: &str = "alerts/critical";
/// How long Prometheus gets to scrape the final numbers.
const SCRAPED: Duration = Duration::from_secs(30);

fn serve(extra: &[&str]) -> ServeProcess {
    ServeProcess::start(
        env!("CARGO_BIN_EXE_mcpbus"),
        &fixture("http.toml"),
        "info",
        extra,
    )
}

/// `host:port` of a replica, as Prometheus scrapes it.
fn target(server: &ServeProcess) -> String {
    server
        .base_url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

/// A handshake-era subscriber: a session subscribed to [`PATTERN`] through `via`, whose GET
/// stream is held by `holder` (the same replica or another one); returns once the stream is open.
fn subscriber(via: &ServeProcess, holder: &ServeProcess) -> mpsc::Receiver<SseItem> {
    let session = via.initialize();
    let r = via.post(Some(&session), &subscribe_request(2, &[PATTERN]));
    assert_eq!(r.status, 200, "{}", r.text());
    let stream = open_sse(&holder.mcp_url(), &session, None);
    match stream.recv_timeout(Duration::from_secs(10)) {
        Ok(SseItem::Status(200)) => stream,
        other => panic!("the GET stream did not open: {other:?}"),
    }
}

/// Reads `stream` until it has carried `n` events on [`TOPIC`].
fn receive(stream: &mpsc::Receiver<SseItem>, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = 0;
    while got < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match stream.recv_timeout(left) {
            Ok(SseItem::Event(e)) => {
                let v: Value = serde_json::from_str(&e.data).unwrap_or_default();
                if v["method"] == "events/emit" && v["params"]["topic"] == TOPIC {
                    got += 1;
                }
            }
            Ok(_) => {}
            Err(e) => panic!("{got} of {n} events received: {e}"),
        }
    }
}

fn publish(server: &ServeProcess, n: usize) {
    let r = server.publish(&json!({"topic": TOPIC, "payload": {"n": n}}));
    assert_eq!(r.status, 200, "{}", r.text());
}

fn delivered_query() -> String {
    format!(r#"sum(mcpbus_events_delivered_total{{topic="{PATTERN}"}})"#)
}

fn published_query() -> String {
    format!(r#"sum(mcpbus_events_published_total{{topic="{PATTERN}"}})"#)
}

#[test]
fn prometheus_counts_each_published_event_once_per_subscriber() {
    const EVENTS: usize = 25;
    const SUBSCRIBERS: usize = 3;
    let server = serve(&[]);
    let prometheus = PrometheusServer::start(&[target(&server)], "/metrics");
    let streams: Vec<_> = (0..SUBSCRIBERS)
        .map(|_| subscriber(&server, &server))
        .collect();
    for n in 0..EVENTS {
        publish(&server, n);
    }
    for stream in &streams {
        receive(stream, EVENTS);
    }
    let expected = (EVENTS * SUBSCRIBERS) as f64;
    assert_eq!(
        prometheus.wait_for_value(&delivered_query(), expected, SCRAPED),
        Some(expected),
        "Prometheus's delivered events after {EVENTS} events to {SUBSCRIBERS} subscribers"
    );
    assert_eq!(
        prometheus.wait_for_value(&published_query(), EVENTS as f64, SCRAPED),
        Some(EVENTS as f64)
    );
    // The scrapes themselves were answered and counted (each one shows in the next).
    let scraped = prometheus.wait_for_value(
        r#"count(sum(mcpbus_http_responses_total{route="metrics",status="200"}) > 0)"#,
        1.0,
        SCRAPED,
    );
    assert_eq!(scraped, Some(1.0), "no counted answer of GET /metrics");
    assert_eq!(
        prometheus.wait_for_value(
            r#"sum(mcpbus_sessions{era="2025-11-25"})"#,
            SUBSCRIBERS as f64,
            SCRAPED
        ),
        Some(SUBSCRIBERS as f64)
    );
}

#[test]
fn the_sum_over_two_replicas_on_redis_is_the_deployments_total() {
    const EVENTS: usize = 20;
    let redis = RedisServer::start(false);
    let args = ["--redis", &redis.url(), "--redis-prefix", "metrics"];
    let a = serve(&args);
    let b = serve(&args);
    let prometheus = PrometheusServer::start(&[target(&a), target(&b)], "/metrics");
    // Two streams held by A (one session made through B), one by B.
    let streams = [subscriber(&a, &a), subscriber(&b, &a), subscriber(&b, &b)];
    for n in 0..EVENTS {
        publish(if n % 2 == 0 { &a } else { &b }, n);
    }
    for stream in &streams {
        receive(stream, EVENTS);
    }
    let expected = (EVENTS * streams.len()) as f64;
    assert_eq!(
        prometheus.wait_for_value(&delivered_query(), expected, SCRAPED),
        Some(expected),
        "summed over both replicas"
    );
    // Each replica counts the copies it handed to the streams it holds, and the publishes it
    // accepted.
    let on = |server: &ServeProcess, metric: &str, expected: f64| {
        let query = format!(
            r#"sum({metric}{{topic="{PATTERN}",instance="{}"}})"#,
            target(server)
        );
        let value = prometheus.wait_for_value(&query, expected, SCRAPED);
        assert_eq!(value, Some(expected), "{query}");
    };
    on(&a, "mcpbus_events_delivered_total", 2.0 * EVENTS as f64);
    on(&b, "mcpbus_events_delivered_total", EVENTS as f64);
    on(&a, "mcpbus_events_published_total", (EVENTS / 2) as f64);
    on(&b, "mcpbus_events_published_total", (EVENTS / 2) as f64);
    assert_eq!(
        prometheus.wait_for_value(&published_query(), EVENTS as f64, SCRAPED),
        Some(EVENTS as f64)
    );
    // Every publish was one timed round trip to Redis, none failed.
    assert_eq!(
        prometheus.wait_for_value(
            r#"sum(mcpbus_log_operation_duration_seconds_count{operation="append"})"#,
            EVENTS as f64,
            SCRAPED
        ),
        Some(EVENTS as f64)
    );
    assert_eq!(
        prometheus.wait_for_value(
            r#"sum(mcpbus_log_errors_total{operation="append"})"#,
            0.0,
            SCRAPED
        ),
        Some(0.0)
    );
    // /healthz counts the same deliveries (not 0 with Redis).
    let healthz = |s: &ServeProcess| s.healthz()["deliveries"].as_u64().unwrap();
    assert_eq!((healthz(&a) + healthz(&b)) as f64, expected);
    // The shared log, seen from either replica: at least every event published, and the same
    // length once both have been scraped after the last publish.
    let same = prometheus.wait_for_value(
        &format!(
            "count(min(mcpbus_log_length) >= {EVENTS}) \
             * count(max(mcpbus_log_length) == min(mcpbus_log_length))"
        ),
        1.0,
        SCRAPED,
    );
    assert_eq!(
        same,
        Some(1.0),
        "the shared log's length as both replicas report it"
    );
}
