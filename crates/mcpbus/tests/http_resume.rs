//! Resumability (docs/protocol.md 4): a client reading 10,000 events on its standalone stream, cut
//! at 20 random points and resumed each time with `Last-Event-ID`, ends with every event
//! exactly once, in order.

#![allow(clippy::unwrap_used)] // tests unwrap to fail loudly

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use mcpbus::events::{Event, TopicSpec};
use mcpbus::server::Server;
use mcpbus::store::{MemoryEventStore, MemoryEventStoreConfig};
use mcpbus::transport::http::{HttpConfig, serve_http};
use mcpbus_testkit::jsonrpc::subscribe_request;
use mcpbus_testkit::{HttpClient, SseReader, TestServer};
use serde_json::json;

const EVENTS: u64 = 10_000;
const CUTS: usize = 20;

/// A small deterministic generator (xorshift64*), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_survive_twenty_cuts_exactly_once_in_order() {
    let server = Server::builder("resume", "1")
        .topic(TopicSpec::signal("seq"))
        .build()
        .unwrap();
    // The store must keep at least what a client can miss while it reconnects; here, all of it.
    let store = MemoryEventStore::new(MemoryEventStoreConfig {
        max_events_per_stream: EVENTS as usize + 64,
        ..Default::default()
    });
    let config = HttpConfig {
        event_store: Some(Arc::new(store)),
        ..HttpConfig::default()
    };
    let s = server.clone();
    let ts = TestServer::start(|l, stop| serve_http(l, "/mcp", s, config, stop)).await;
    let raw = HttpClient::new(ts.url());
    let sid = raw.initialize().await;
    let sub = raw.post(Some(&sid), &subscribe_request(2, &["seq"])).await;
    assert_eq!(sub.json()["result"]["subscribed"][0]["pattern"], "seq");

    // Cut points: 20 distinct event counts, in order.
    let seed = 0x5eed_0000_0000_0001 ^ u64::from(std::process::id());
    let mut rng = Rng(seed);
    let mut cuts: Vec<u64> = Vec::new();
    while cuts.len() < CUTS {
        let c = 1 + rng.next() % (EVENTS - 1);
        if !cuts.contains(&c) {
            cuts.push(c);
        }
    }
    cuts.sort_unstable();

    // The publisher runs at full speed, concurrently with the reader and its reconnects.
    let publisher = {
        let server = server.clone();
        tokio::spawn(async move {
            for i in 0..EVENTS {
                server
                    .events()
                    .publish(Event::new("seq", json!(i)))
                    .await
                    .unwrap();
                if i % 64 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };

    let mut received: Vec<u64> = Vec::with_capacity(EVENTS as usize);
    let mut last_id: Option<String> = None;
    let mut next_cut = cuts.iter().copied().peekable();
    let mut reconnects = 0;
    'streams: while (received.len() as u64) < EVENTS {
        // Open (or resume) the stream; a just-cut stream may still hold the slot for a moment.
        let mut attempts = 0;
        let response = loop {
            let r = raw.get_stream(&sid, last_id.as_deref()).await;
            if r.status() == StatusCode::CONFLICT && attempts < 100 {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            assert_eq!(
                r.status(),
                StatusCode::OK,
                "resume with {last_id:?} refused"
            );
            break r;
        };
        let mut sse = SseReader::new(response);
        loop {
            let Some(event) = sse.next(Duration::from_secs(10)).await else {
                panic!("the stream ended by itself after {} events", received.len());
            };
            if event.data.is_empty() {
                // Priming event: it carries a resume point but no message.
                last_id = event.id.or(last_id);
                continue;
            }
            let msg: serde_json::Value = serde_json::from_str(&event.data).unwrap();
            received.push(msg["params"]["payload"].as_u64().unwrap());
            last_id = Some(event.id.expect("every message has an SSE id"));
            if next_cut.peek() == Some(&(received.len() as u64)) {
                next_cut.next();
                reconnects += 1;
                drop(sse); // cut the connection mid-stream
                continue 'streams;
            }
            if received.len() as u64 == EVENTS {
                break 'streams;
            }
        }
    }
    publisher.await.unwrap();
    assert_eq!(reconnects, CUTS, "seed {seed:#x}");
    let expected: Vec<u64> = (0..EVENTS).collect();
    assert!(
        received == expected,
        "seed {seed:#x}: events lost, duplicated or out of order"
    );
    ts.stop().await;
}
