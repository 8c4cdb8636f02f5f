//! A subscriber that stops reading its HTTP stream loses events, never slows the publisher, and
//! every event it lost is counted in `/healthz` (docs/protocol.md 2.4; docs/http.md).
//!
//! The server keeps 16 events per stream; the client opens its GET stream and reads nothing
//! while far more bytes are published than the loopback socket buffers hold, so the server's
//! reader of the stream falls behind the store's bound. Once the client reads again, what it
//! received plus what `/healthz` counts as dropped is exactly what was published.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::time::Duration;

use mcpbus_testkit::jsonrpc::subscribe_request;
use mcpbus_testkit::{HttpClient, ServeProcess, SseReader, fixture};
use serde_json::json;

const MCPBUS: &str = env!("CARGO_BIN_EXE_mcpbus");
/// Events published while the subscriber does not read.
const EVENTS: usize = 400;
/// Bytes of each event's payload: EVENTS of them are far more than the socket buffers hold.
const PAYLOAD: usize = 64 * 1024;

#[test]
fn events_a_stalled_http_subscriber_loses_are_counted_in_healthz() {
    let text = std::fs::read_to_string(fixture("http.toml")).unwrap()
        + "\n[http]\nreplay_events_per_stream = 16\n";
    let config = std::env::temp_dir().join(format!("mcpbus-slow-{}.toml", std::process::id()));
    std::fs::write(&config, text).unwrap();
    let server = ServeProcess::start(MCPBUS, &config, "warn", &[]);
    let _ = std::fs::remove_file(&config);

    let session = server.initialize();
    let subscribed = server.post(Some(&session), &subscribe_request(2, &["files/#"]));
    assert_eq!(subscribed.status, 200, "{}", subscribed.text());

    // A runtime that outlives each call, so the stream's connection stays open in between.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let client = HttpClient::new(server.mcp_url());
    let response = rt.block_on(client.get_stream(&session, None));
    assert_eq!(response.status(), 200);

    // Nobody reads the stream now: the publisher must still be served at once, every time.
    let big = "x".repeat(PAYLOAD);
    for i in 0..EVENTS {
        let r = server.publish(&json!({
            "topic": "files/big.bin", "eventId": format!("e-{i}"), "payload": big,
        }));
        assert_eq!(r.status, 200, "publish {i}: {}", r.text());
    }

    let last = format!("e-{}", EVENTS - 1);
    let received = rt.block_on(async {
        let mut reader = SseReader::new(response);
        let mut received = 0;
        while let Some((_, message)) = reader.next_message(Duration::from_secs(10)).await {
            assert_eq!(message["method"], "events/emit", "{message}");
            received += 1;
            if message["params"]["eventId"] == last.as_str() {
                break;
            }
        }
        received
    });

    let dropped = server.healthz()["dropped"].as_u64().unwrap() as usize;
    assert!(
        received < EVENTS,
        "the stalled reader got all {EVENTS} events: the test did not stall it"
    );
    assert_eq!(
        received + dropped,
        EVENTS,
        "received {received} + dropped {dropped} must be every published event"
    );
}
