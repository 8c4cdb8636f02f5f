//! The MCP Events extension (SEP-3415) over Streamable HTTP in the 2026-07-28 era
//! (docs/protocol.md 3): the capability, event types, polls (long ones too) and push streams,
//! all read from the one event log, so that an event has the same id and cursor everywhere.

#![allow(clippy::unwrap_used)] // tests unwrap to fail loudly

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use mcpbus::events::{DeliveryConfig, EmitReport, Event, MemoryEventLog, TopicSpec};
use mcpbus::proto::events_ext::DeliveryMode;
use mcpbus::server::{NoArgs, Server};
use mcpbus::transport::http::{HttpConfig, serve_http};
use mcpbus_testkit::jsonrpc::subscribe_request;
use mcpbus_testkit::modern::{answer_message, request};
use mcpbus_testkit::{HttpClient, SseReader, TestServer};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(5);

fn server(history: usize, delivery: DeliveryConfig) -> Server {
    Server::builder("events-ext", "1")
        .topic(
            TopicSpec::content("build/+")
                .description("Build status per project")
                .retained(true),
        )
        .topic(TopicSpec::content("alerts/#"))
        .topic(TopicSpec::signal("agents/{agent_id}/inbox"))
        .topic(
            TopicSpec::content("deploy/{env}/status")
                .event_name("deploy.status")
                .delivery([DeliveryMode::Poll]),
        )
        .tool("echo", "Answers at once", |_: NoArgs, _ctx| async { "ok" })
        .event_log(Arc::new(MemoryEventLog::with_history(history)))
        .event_delivery(delivery)
        .build()
        .unwrap()
}

async fn start_with(
    history: usize,
    delivery: DeliveryConfig,
    http: HttpConfig,
) -> (TestServer, HttpClient, Server) {
    let s = server(history, delivery);
    let served = s.clone();
    let ts = TestServer::start(|l, stop| serve_http(l, "/mcp", served, http, stop)).await;
    let raw = HttpClient::new(ts.url());
    (ts, raw, s)
}

async fn start() -> (TestServer, HttpClient, Server) {
    start_with(1000, DeliveryConfig::default(), HttpConfig::default()).await
}

async fn publish(server: &Server, topic: &str, payload: Value) -> EmitReport {
    server
        .events()
        .publish(Event::new(topic, payload))
        .await
        .unwrap()
}

async fn poll(raw: &HttpClient, id: i64, params: Value) -> Value {
    let answer = raw
        .post_modern(&request(id, "events/poll", params, json!({})))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    answer_message(&answer)
}

/// Opens a push stream; returns its reader after the first message (`active`).
async fn stream(raw: &HttpClient, id: i64, params: Value) -> (SseReader, Value) {
    let response = raw
        .post_modern_stream(&request(id, "events/stream", params, json!({})))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut reader = SseReader::new(response);
    let (_, active) = reader.next_message(T).await.expect("active first");
    assert_eq!(active["method"], "notifications/events/active", "{active}");
    assert_eq!(
        active["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        id
    );
    (reader, active)
}

/// The next `notifications/events/event` of a push stream (skipping heartbeats).
async fn next_event(reader: &mut SseReader) -> Value {
    loop {
        let (_, message) = reader.next_message(T).await.expect("an event");
        if message["method"] != "notifications/events/heartbeat" {
            assert_eq!(message["method"], "notifications/events/event", "{message}");
            return message["params"].clone();
        }
    }
}

fn cursor_number(c: &Value) -> u64 {
    c.as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn discover_announces_the_extension_and_events_list_the_topics_as_event_types() {
    let (_ts, raw, _s) = start().await;
    let discover = answer_message(
        &raw.post_modern(&request(1, "server/discover", json!({}), json!({})))
            .await,
    );
    let caps = &discover["result"]["capabilities"];
    assert_eq!(
        caps["extensions"]["io.modelcontextprotocol/events"],
        json!({"listChanged": true})
    );
    assert_eq!(
        caps["events"],
        json!({"listChanged": true}),
        "the sketch's place"
    );

    let list = answer_message(
        &raw.post_modern(&request(2, "events/list", json!({}), json!({})))
            .await,
    );
    let result = &list["result"];
    assert_eq!(result["resultType"], "complete");
    let events = result["events"].as_array().unwrap();
    let names: Vec<&str> = events.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "build/+",
            "alerts/#",
            "agents/{agent_id}/inbox",
            "deploy.status"
        ]
    );
    let build = &events[0];
    assert_eq!(build["description"], "Build status per project");
    assert_eq!(build["delivery"], json!(["poll", "push"]));
    assert_eq!(
        build["inputSchema"]["properties"]["retained"]["default"],
        true
    );
    assert_eq!(build["inputSchema"]["additionalProperties"], false);
    assert_eq!(
        build["payloadSchema"]["required"],
        json!(["topic", "payload"])
    );
    assert_eq!(build["_meta"]["mcpbus/kind"], "content");
    let deploy = &events[3];
    assert_eq!(deploy["delivery"], json!(["poll"]));
    assert!(deploy["inputSchema"]["properties"]["env"].is_object());
}

#[tokio::test]
async fn a_server_without_topics_offers_no_events() {
    let s = Server::builder("plain", "1").build().unwrap();
    let ts =
        TestServer::start(|l, stop| serve_http(l, "/mcp", s, HttpConfig::default(), stop)).await;
    let raw = HttpClient::new(ts.url());
    let discover = answer_message(
        &raw.post_modern(&request(1, "server/discover", json!({}), json!({})))
            .await,
    );
    let caps = &discover["result"]["capabilities"];
    assert!(caps.get("events").is_none(), "{caps}");
    assert!(
        caps["extensions"]
            .get("io.modelcontextprotocol/events")
            .is_none()
    );
    let a = raw
        .post_modern(&request(2, "events/poll", json!({"name": "x"}), json!({})))
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.json()["error"]["code"], -32601);
}

#[tokio::test]
async fn polls_start_with_retained_values_then_read_the_log_in_order() {
    let (_ts, raw, s) = start().await;
    let green = publish(&s, "build/web", json!({"state": "green"})).await;
    let first = poll(&raw, 1, json!({"name": "build/+", "cursor": null})).await;
    let r = &first["result"];
    assert_eq!(
        r["events"][0]["eventId"],
        green.event_id.as_str(),
        "{first}"
    );
    assert_eq!(r["events"][0]["data"]["payload"], json!({"state": "green"}));
    assert_eq!(r["events"][0]["data"]["retained"], true);
    assert_eq!(r["cursor"], green.cursor.as_str(), "from now: the head");
    assert_eq!(r["truncated"], false);
    assert_eq!(r["nextPollMs"], 1000);
    let cursor = r["cursor"].clone();

    let mut reports = Vec::new();
    for n in 0..3 {
        reports.push(publish(&s, "build/api", json!({"n": n})).await);
        publish(&s, "alerts/disk", json!({"other": n})).await;
    }
    let second = poll(&raw, 2, json!({"name": "build/+", "cursor": cursor})).await;
    let r = &second["result"];
    let events = r["events"].as_array().unwrap();
    let ids: Vec<&str> = events
        .iter()
        .map(|e| e["eventId"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = reports.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(ids, expected);
    assert!(
        events.iter().all(|e| e.get("cursor").is_none()),
        "poll cursors are on the result"
    );
    assert_eq!(events[2]["name"], "build/+");
    assert_eq!(events[2]["data"]["topic"], "build/api");
    assert_eq!(r["hasMore"], false);
    // The cursor passes the other topics' events too.
    let last = publish(&s, "alerts/cpu", json!({})).await;
    let third = poll(&raw, 3, json!({"name": "build/+", "cursor": r["cursor"]})).await;
    assert_eq!(third["result"]["events"], json!([]));
    assert_eq!(third["result"]["cursor"], last.cursor.as_str());
}

#[tokio::test]
async fn a_poller_that_stops_gets_exactly_what_was_published_meanwhile() {
    let (_ts, raw, s) = start().await;
    let start = poll(&raw, 1, json!({"name": "alerts/#", "cursor": null})).await;
    let mut cursor = start["result"]["cursor"].clone();
    let mut expected = Vec::new();
    for n in 0..500 {
        expected.push(publish(&s, &format!("alerts/{}", n % 7), json!({"n": n})).await);
    }
    let mut got = Vec::new();
    for id in 2.. {
        let r = poll(
            &raw,
            id,
            json!({"name": "alerts/#", "cursor": cursor, "maxEvents": 120}),
        )
        .await;
        let r = &r["result"];
        let batch = r["events"].as_array().unwrap();
        assert!(batch.len() <= 120);
        got.extend(batch.iter().cloned());
        cursor = r["cursor"].clone();
        if r["hasMore"] == false {
            break;
        }
    }
    assert_eq!(got.len(), 500);
    for (n, (event, report)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(event["eventId"], report.event_id.as_str());
        assert_eq!(event["data"]["payload"]["n"], n);
    }
    assert_eq!(cursor, expected[499].cursor.as_str());
}

#[tokio::test]
async fn a_cursor_older_than_the_log_is_truncated_with_a_fresh_cursor() {
    let (_ts, raw, s) = start_with(10, DeliveryConfig::default(), HttpConfig::default()).await;
    let mut reports = Vec::new();
    for n in 0..50 {
        reports.push(publish(&s, "alerts/a", json!({"n": n})).await);
    }
    let r = poll(
        &raw,
        1,
        json!({"name": "alerts/#", "cursor": reports[3].cursor}),
    )
    .await;
    let r = &r["result"];
    assert_eq!(r["truncated"], true, "{r}");
    let events = r["events"].as_array().unwrap();
    assert_eq!(events.len(), 10, "what the log still holds");
    assert_eq!(events[0]["eventId"], reports[40].event_id.as_str());
    assert_eq!(r["cursor"], reports[49].cursor.as_str());
    // A cursor from another process (ahead of this log) is truncated too; garbage is an error.
    let r = poll(&raw, 2, json!({"name": "alerts/#", "cursor": "999999"})).await;
    assert_eq!(r["result"]["truncated"], true);
    let r = poll(
        &raw,
        3,
        json!({"name": "alerts/#", "cursor": "not a cursor"}),
    )
    .await;
    assert_eq!(r["error"]["code"], -32602, "{r}");
    // maxAgeMs floors the replay by publish time.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let fresh = publish(&s, "alerts/a", json!({"fresh": true})).await;
    let r = poll(
        &raw,
        4,
        json!({"name": "alerts/#", "cursor": reports[45].cursor, "maxAgeMs": 30}),
    )
    .await;
    let r = &r["result"];
    assert_eq!(r["truncated"], true, "{r}");
    assert_eq!(r["events"].as_array().unwrap().len(), 1);
    assert_eq!(r["events"][0]["eventId"], fresh.event_id.as_str());
}

#[tokio::test]
async fn subscriptions_outside_the_declared_topics_are_refused_with_the_sep_errors() {
    let (_ts, raw, _s) = start().await;
    let cases = [
        (json!({"name": "nope"}), -32023),
        (
            json!({"name": "build/+", "arguments": {"topic": "deploy/x"}}),
            -32023,
        ),
        (
            json!({"name": "build/+", "arguments": {"topic": "alerts/x"}}),
            -32602,
        ),
        (
            json!({"name": "build/+", "arguments": {"colour": "red"}}),
            -32602,
        ),
        (
            json!({"name": "build/+", "arguments": {"retained": "yes"}}),
            -32602,
        ),
        (json!({"name": "agents/{agent_id}/inbox"}), -32024),
        (
            json!({"name": "agents/{agent_id}/inbox", "arguments": {"agent_id": "me"}}),
            -32024,
        ),
        (
            json!({"name": "alerts/#", "arguments": {"topic": "#"}}),
            -32602,
        ),
    ];
    for (i, (params, code)) in cases.into_iter().enumerate() {
        let r = poll(&raw, i as i64 + 1, params.clone()).await;
        assert_eq!(r["error"]["code"], code, "{params}: {r}");
        if code == -32023 {
            assert_eq!(r["error"]["data"]["kind"], "event");
        }
    }
    // A mode the type does not offer: Unsupported, and no stream.
    let a = raw
        .post_modern(&request(
            9,
            "events/stream",
            json!({"name": "deploy.status"}),
            json!({}),
        ))
        .await;
    assert_eq!(a.header("content-type"), Some("application/json"));
    let e = &a.json()["error"];
    assert_eq!(e["code"], -32026);
    assert_eq!(
        e["data"],
        json!({"feature": "deliveryMode", "value": "push"})
    );
    // A narrower topic within the type, and a placeholder argument, are fine.
    let r = poll(
        &raw,
        10,
        json!({"name": "deploy.status", "arguments": {"env": "prod"}}),
    )
    .await;
    assert!(r["result"].is_object(), "{r}");
}

#[tokio::test]
async fn a_long_poll_waits_for_the_next_event() {
    let (_ts, raw, s) = start().await;
    let start = poll(&raw, 1, json!({"name": "alerts/#", "cursor": null})).await;
    let cursor = start["result"]["cursor"].clone();
    let publisher = {
        let s = s.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            publish(&s, "build/x", json!({})).await;
            publish(&s, "alerts/late", json!({"late": true})).await
        })
    };
    let began = std::time::Instant::now();
    let r = poll(
        &raw,
        2,
        json!({"name": "alerts/#", "cursor": cursor, "timeoutMs": 4000}),
    )
    .await;
    let late = publisher.await.unwrap();
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "answered when the event came"
    );
    assert_eq!(
        r["result"]["events"][0]["eventId"],
        late.event_id.as_str(),
        "{r}"
    );
    // With nothing to wait for, it answers empty when the time is up.
    let began = std::time::Instant::now();
    let r = poll(
        &raw,
        3,
        json!({"name": "alerts/#", "cursor": r["result"]["cursor"], "timeoutMs": 150}),
    )
    .await;
    assert_eq!(r["result"]["events"], json!([]));
    assert!(began.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn a_push_stream_sends_active_retained_values_live_events_and_heartbeats() {
    let delivery = DeliveryConfig {
        heartbeat: Duration::from_millis(100),
        ..DeliveryConfig::default()
    };
    let (_ts, raw, s) = start_with(1000, delivery, HttpConfig::default()).await;
    let kept = publish(&s, "build/web", json!({"state": "red"})).await;
    let (mut reader, active) = stream(&raw, 7, json!({"name": "build/+"})).await;
    assert_eq!(active["params"]["cursor"], kept.cursor.as_str());
    assert_eq!(active["params"]["truncated"], false);
    let retained = next_event(&mut reader).await;
    assert_eq!(retained["eventId"], kept.event_id.as_str());
    assert_eq!(retained["cursor"], kept.cursor.as_str());
    assert_eq!(
        retained["_meta"]["io.modelcontextprotocol/subscriptionId"],
        7
    );
    assert_eq!(s.events().push_streams(), 1);

    let mut last = 0;
    for n in 0..5 {
        let report = publish(&s, &format!("build/p{n}"), json!({"n": n})).await;
        let event = next_event(&mut reader).await;
        assert_eq!(event["eventId"], report.event_id.as_str());
        assert_eq!(event["cursor"], report.cursor.as_str());
        assert!(cursor_number(&event["cursor"]) > last, "cursors increase");
        last = cursor_number(&event["cursor"]);
        assert!(event["timestamp"].as_str().unwrap().ends_with('Z'));
    }
    // Quiet for this subscription: heartbeats carry the cursor checked up to.
    let other = publish(&s, "alerts/x", json!({})).await;
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let (_, m) = reader.next_message(T).await.unwrap();
        assert_eq!(m["method"], "notifications/events/heartbeat", "{m}");
        assert_eq!(
            m["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
            7
        );
        if m["params"]["cursor"] == other.cursor.as_str() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the heartbeat cursor advances"
        );
    }
    // Closing the stream ends the subscription and releases it.
    drop(reader);
    for _ in 0..100 {
        if s.events().push_streams() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the closed push stream is still open on the server");
}

#[tokio::test]
async fn a_push_stream_resumed_with_its_cursor_gets_exactly_what_it_missed() {
    let (_ts, raw, s) = start().await;
    let (reader, active) = stream(&raw, 1, json!({"name": "alerts/#"})).await;
    let cursor = active["params"]["cursor"].clone();
    drop(reader);
    let mut expected = Vec::new();
    for n in 0..500 {
        expected.push(publish(&s, "alerts/disk", json!({"n": n})).await);
    }
    let (mut reader, active) = stream(&raw, 2, json!({"name": "alerts/#", "cursor": cursor})).await;
    assert_eq!(active["params"]["cursor"], cursor);
    assert_eq!(active["params"]["truncated"], false);
    for report in &expected {
        let event = next_event(&mut reader).await;
        assert_eq!(event["eventId"], report.event_id.as_str());
        assert_eq!(event["cursor"], report.cursor.as_str());
    }
    // Then live, with nothing repeated.
    let live = publish(&s, "alerts/net", json!({})).await;
    assert_eq!(
        next_event(&mut reader).await["eventId"],
        live.event_id.as_str()
    );
}

#[tokio::test]
async fn a_legacy_session_and_a_push_stream_see_the_same_ids_and_cursors() {
    let (_ts, raw, s) = start().await;
    let session = raw.initialize().await;
    let subscribed = raw
        .post(Some(&session), &subscribe_request(2, &["build/+"]))
        .await;
    assert_eq!(subscribed.status, StatusCode::OK);
    let mut legacy = SseReader::new(raw.get_stream(&session, None).await);
    let (mut push, _) = stream(
        &raw,
        3,
        json!({"name": "build/+", "arguments": {"retained": false}}),
    )
    .await;
    let mut reports = Vec::new();
    for n in 0..5 {
        reports.push(publish(&s, "build/web", json!({"n": n})).await);
    }
    for report in &reports {
        let modern = next_event(&mut push).await;
        let emitted = loop {
            let (_, m) = legacy.next_message(T).await.expect("events/emit");
            if m["method"] == "events/emit" {
                break m["params"].clone();
            }
        };
        assert_eq!(modern["eventId"], emitted["eventId"]);
        assert_eq!(modern["cursor"], emitted["_meta"]["mcpbus/cursor"]);
        assert_eq!(modern["eventId"], report.event_id.as_str());
        assert_eq!(modern["cursor"], report.cursor.as_str());
    }
}

#[tokio::test]
async fn push_streams_have_their_own_cap_outside_the_requests_in_flight() {
    let delivery = DeliveryConfig {
        max_streams: 2,
        ..DeliveryConfig::default()
    };
    let http = HttpConfig {
        max_modern_requests: 1,
        ..HttpConfig::default()
    };
    let (_ts, raw, _s) = start_with(1000, delivery, http).await;
    let (_a, _) = stream(&raw, 1, json!({"name": "alerts/#"})).await;
    let (_b, _) = stream(&raw, 2, json!({"name": "build/+"})).await;
    // Two streams open, and a request still fits under a limit of one in flight.
    let echo = request(
        3,
        "tools/call",
        json!({"name": "echo", "arguments": {}}),
        json!({}),
    );
    let a = raw.post_modern(&echo).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let a = raw
        .post_modern(&request(
            4,
            "events/stream",
            json!({"name": "alerts/#"}),
            json!({}),
        ))
        .await;
    let e = &a.json()["error"];
    assert_eq!(e["code"], -32025, "{e}");
    assert_eq!(e["data"], json!({"limit": "streams", "max": 2}));
}
