//! The client's SEP-3415 subscriptions (docs/client.md, "Events of 2026-07-28 servers")
//! against an in-process server, over a pipe (stdio framing) and over Streamable HTTP: push and
//! poll deliver live events with increasing cursors, a subscription stopped and started again
//! from its cursor misses nothing and repeats nothing, a cursor the log no longer holds is
//! reported as a gap, refusals fail `start` with the server's error, and a stream that falls
//! silent (a scripted server) or whose server restarts is reopened from its cursor.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::sync::Arc;
use std::time::Duration;

use mcpbus::Error;
use mcpbus::client::{Client, Delivery, Era, SubscriptionEvent};
use mcpbus::events::{DeliveryConfig, Event, MemoryEventLog, TopicSpec};
use mcpbus::proto::error_codes;
use mcpbus::proto::events::EventParams;
use mcpbus::proto::events_ext::DeliveryMode;
use mcpbus::server::Server;
use mcpbus::transport::http::{HttpConfig, serve_http};
use mcpbus::transport::{HttpClientConfig, HttpClientTransport, duplex};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

const LIMIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
enum Via {
    Pipe,
    Http,
}

fn server(history: usize) -> Server {
    Server::builder("client-events", "1")
        .topic(TopicSpec::content("build/+").retained(true))
        .topic(TopicSpec::content("alerts/#"))
        .topic(TopicSpec::signal("agents/{agent_id}/inbox"))
        .topic(
            TopicSpec::content("deploy/{env}/status")
                .event_name("deploy.status")
                .delivery([DeliveryMode::Poll]),
        )
        .event_log(Arc::new(MemoryEventLog::with_history(history)))
        .event_delivery(DeliveryConfig {
            next_poll: Duration::from_millis(50),
            heartbeat: Duration::from_millis(200),
            ..DeliveryConfig::default()
        })
        .build()
        .unwrap()
}

/// Serves `server` over HTTP on `listener`; dropping the sender stops it.
fn serve_on(listener: TcpListener, server: &Server) -> oneshot::Sender<()> {
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve_http(
        listener,
        "/mcp",
        server.clone(),
        HttpConfig::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    stop
}

/// A connected 2026-07-28 client, and what keeps its server up.
struct Connection {
    client: Client,
    _stop: Option<oneshot::Sender<()>>,
}

async fn connect(server: &Server, via: Via) -> Connection {
    let builder = Client::builder("events-client", "1").era(Era::Modern);
    let (client, stop) = match via {
        Via::Pipe => {
            let (a, b) = duplex(64 * 1024);
            server.start(a);
            (builder.connect(b).await.unwrap(), None)
        }
        Via::Http => {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/mcp", listener.local_addr().unwrap());
            let stop = serve_on(listener, server);
            let transport = HttpClientTransport::new(&url, HttpClientConfig::default()).unwrap();
            (builder.connect(transport).await.unwrap(), Some(stop))
        }
    };
    Connection {
        client,
        _stop: stop,
    }
}

/// Collects what a subscription reports.
struct Reports {
    rx: mpsc::UnboundedReceiver<SubscriptionEvent>,
}

fn reports() -> (impl Fn(SubscriptionEvent) + Send + Sync + 'static, Reports) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        move |e| {
            let _ = tx.send(e);
        },
        Reports { rx },
    )
}

impl Reports {
    async fn next(&mut self) -> SubscriptionEvent {
        tokio::time::timeout(LIMIT, self.rx.recv())
            .await
            .expect("a report in time")
            .expect("the subscription is still there")
    }

    /// The next event, skipping cursor advances.
    async fn event(&mut self) -> EventParams {
        loop {
            match self.next().await {
                SubscriptionEvent::Event(e) => return e,
                SubscriptionEvent::Cursor(_) => {}
                other => panic!("expected an event, got {other:?}"),
            }
        }
    }

    /// Everything reported within `wait` (a quiet period).
    async fn rest(&mut self, wait: Duration) -> Vec<SubscriptionEvent> {
        let mut out = Vec::new();
        while let Ok(Some(e)) = tokio::time::timeout(wait, self.rx.recv()).await {
            out.push(e);
        }
        out
    }
}

fn cursor_of(e: &EventParams) -> u64 {
    SubscriptionEvent::Event(e.clone())
        .cursor()
        .expect("a cursor")
        .parse()
        .unwrap()
}

async fn publish(server: &Server, topic: &str, n: u64) {
    server
        .events()
        .publish(Event::new(topic, json!({"n": n})))
        .await
        .unwrap();
}

const MODES: [Delivery; 2] = [Delivery::Push, Delivery::Poll];

#[tokio::test]
async fn push_and_poll_deliver_live_events_with_increasing_cursors() {
    for via in [Via::Pipe, Via::Http] {
        for delivery in MODES {
            let s = server(1000);
            publish(&s, "build/web", 0).await;
            let c = connect(&s, via).await;
            let (handler, mut got) = reports();
            let sub = c
                .client
                .subscribe_events("build/+")
                .delivery(delivery)
                .start(handler)
                .await
                .unwrap();
            assert_eq!(sub.delivery(), delivery);
            // From now: the retained value first.
            let retained = got.event().await;
            assert_eq!(retained.payload, json!({"n": 0}), "{via:?} {delivery:?}");
            assert!(retained.retained);
            for n in 1..=5 {
                publish(&s, "build/web", n).await;
            }
            let mut last = cursor_of(&retained);
            for n in 1..=5 {
                let e = got.event().await;
                assert_eq!(e.topic, "build/web");
                assert_eq!(e.payload, json!({"n": n}), "{via:?} {delivery:?}");
                let meta = e.meta.as_ref().unwrap();
                assert_eq!(meta["mcpbus/eventType"], "build/+");
                if delivery == Delivery::Push || n == 5 {
                    let cursor = cursor_of(&e);
                    assert!(cursor > last, "{via:?} {delivery:?}: {cursor} after {last}");
                    last = cursor;
                }
            }
            assert_eq!(sub.cursor().unwrap().parse::<u64>().unwrap(), last);
            sub.stop().await;
            c.client.close().await;
        }
    }
}

#[tokio::test]
async fn a_subscription_started_again_from_its_cursor_gets_what_it_missed_exactly_once() {
    for via in [Via::Pipe, Via::Http] {
        for delivery in MODES {
            let s = server(10_000);
            let c = connect(&s, via).await;
            let (handler, mut got) = reports();
            let sub = c
                .client
                .subscribe_events("alerts/#")
                .delivery(delivery)
                .start(handler)
                .await
                .unwrap();
            publish(&s, "alerts/disk", 0).await;
            assert_eq!(got.event().await.payload, json!({"n": 0}));
            let cursor = sub.stop().await;
            assert!(cursor.is_some());

            // Away: 500 events, and some of another type that must not come.
            for n in 1..=500 {
                publish(&s, "alerts/disk", n).await;
                if n % 100 == 0 {
                    publish(&s, "build/web", n).await;
                }
            }
            let (handler, mut got) = reports();
            let sub = c
                .client
                .subscribe_events("alerts/#")
                .delivery(delivery)
                .cursor(cursor)
                .start(handler)
                .await
                .unwrap();
            for n in 1..=500 {
                let e = got.event().await;
                assert_eq!(e.payload, json!({"n": n}), "{via:?} {delivery:?}");
            }
            let extra: Vec<_> = got
                .rest(Duration::from_millis(400))
                .await
                .into_iter()
                .filter(|e| matches!(e, SubscriptionEvent::Event(_)))
                .collect();
            assert!(extra.is_empty(), "{via:?} {delivery:?}: {extra:?}");
            sub.stop().await;
            c.client.close().await;
        }
    }
}

#[tokio::test]
async fn a_cursor_the_log_no_longer_holds_is_reported_as_a_gap() {
    for via in [Via::Pipe, Via::Http] {
        for delivery in MODES {
            let s = server(10);
            let c = connect(&s, via).await;
            let (handler, mut got) = reports();
            let sub = c
                .client
                .subscribe_events("alerts/#")
                .delivery(delivery)
                .start(handler)
                .await
                .unwrap();
            publish(&s, "alerts/disk", 0).await;
            got.event().await;
            let cursor = sub.stop().await;
            for n in 1..=50 {
                publish(&s, "alerts/disk", n).await;
            }
            let (handler, mut got) = reports();
            let _sub = c
                .client
                .subscribe_events("alerts/#")
                .delivery(delivery)
                .cursor(cursor)
                .start(handler)
                .await
                .unwrap();
            match got.next().await {
                SubscriptionEvent::Gap { cursor } => assert!(cursor.is_some()),
                other => panic!("{via:?} {delivery:?}: expected a gap first, got {other:?}"),
            }
            let mut ns = Vec::new();
            for e in got.rest(Duration::from_millis(400)).await {
                if let SubscriptionEvent::Event(e) = e {
                    ns.push(e.payload["n"].as_u64().unwrap());
                }
            }
            assert_eq!(ns, (41..=50).collect::<Vec<_>>(), "{via:?} {delivery:?}");
            c.client.close().await;
        }
    }
}

#[tokio::test]
async fn refusals_fail_start_with_the_servers_error() {
    let s = server(100);
    let c = connect(&s, Via::Pipe).await;
    let code = |r: Result<_, Error>| match r {
        Err(Error::Remote(e)) => e.code,
        Err(other) => panic!("not a remote error: {other}"),
        Ok(_) => panic!("started"),
    };
    for delivery in [Delivery::Auto, Delivery::Push, Delivery::Poll] {
        let r = c
            .client
            .subscribe_events("nope/+")
            .delivery(delivery)
            .start(|_| {})
            .await;
        assert_eq!(code(r), error_codes::NOT_FOUND, "{delivery:?}");
    }
    let r = c
        .client
        .subscribe_events("deploy.status")
        .delivery(Delivery::Push)
        .start(|_| {})
        .await;
    assert_eq!(code(r), error_codes::UNSUPPORTED);
    // Auto picks the mode the type offers.
    let sub = c
        .client
        .subscribe_events("deploy.status")
        .argument("env", "prod")
        .start(|_| {})
        .await
        .unwrap();
    assert_eq!(sub.delivery(), Delivery::Poll);
    let r = c
        .client
        .subscribe_events("agents/{agent_id}/inbox")
        .start(|_| {})
        .await;
    assert_eq!(code(r), error_codes::FORBIDDEN);
    let r = c
        .client
        .subscribe_events("build/+")
        .argument("bogus", 1)
        .start(|_| {})
        .await;
    assert_eq!(code(r), error_codes::INVALID_PARAMS);

    // The handshake era has no SEP-3415; a server without topics does not offer it.
    let (a, b) = duplex(64 * 1024);
    s.start(a);
    let legacy = Client::builder("legacy", "1")
        .era(Era::Legacy)
        .connect(b)
        .await
        .unwrap();
    let e = legacy.subscribe_events("build/+").start(|_| {}).await;
    assert!(
        matches!(&e, Err(Error::Protocol(m)) if m.contains("2026-07-28")),
        "{e:?}"
    );
    let bare = Server::builder("bare", "1").build().unwrap();
    let c = connect(&bare, Via::Pipe).await;
    let e = c.client.list_event_types().await;
    assert!(
        matches!(&e, Err(Error::Protocol(m)) if m.contains("io.modelcontextprotocol/events")),
        "{e:?}"
    );
}

#[tokio::test]
async fn event_types_are_listed_and_heartbeats_advance_the_cursor() {
    let s = server(100);
    let c = connect(&s, Via::Http).await;
    let types = c.client.list_event_types().await.unwrap();
    let names: Vec<&str> = types.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "build/+",
            "alerts/#",
            "agents/{agent_id}/inbox",
            "deploy.status"
        ]
    );
    let (handler, mut got) = reports();
    let sub = c
        .client
        .subscribe_events("alerts/#")
        .heartbeat(Duration::from_millis(200))
        .start(handler)
        .await
        .unwrap();
    let start = sub.cursor().unwrap();
    // Events of other types move the log on: the heartbeat says the stream checked past them.
    publish(&s, "build/web", 1).await;
    loop {
        match got.next().await {
            SubscriptionEvent::Cursor(c) if c != start => break,
            SubscriptionEvent::Cursor(_) => {}
            other => panic!("expected a cursor, got {other:?}"),
        }
    }
    assert_ne!(sub.cursor().unwrap(), start);
}

#[tokio::test]
async fn a_stream_whose_server_restarts_is_reopened_from_its_cursor() {
    let s = server(1000);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = serve_on(listener, &s);
    let transport =
        HttpClientTransport::new(&format!("http://{addr}/mcp"), HttpClientConfig::default())
            .unwrap();
    let client = Client::builder("restart", "1")
        .era(Era::Modern)
        .connect(transport)
        .await
        .unwrap();
    let (handler, mut got) = reports();
    let _sub = client
        .subscribe_events("alerts/#")
        .delivery(Delivery::Push)
        .start(handler)
        .await
        .unwrap();
    publish(&s, "alerts/a", 1).await;
    assert_eq!(got.event().await.payload, json!({"n": 1}));
    // The endpoint goes away (its streams end), events are published meanwhile, and it comes
    // back on the same address with the same log.
    drop(stop);
    tokio::time::sleep(Duration::from_millis(300)).await;
    for n in 2..=20 {
        publish(&s, "alerts/a", n).await;
    }
    // Nothing can come while the endpoint is down: the old stream is gone.
    let meanwhile = got.rest(Duration::from_millis(300)).await;
    assert!(
        !meanwhile
            .iter()
            .any(|e| matches!(e, SubscriptionEvent::Event(_))),
        "{meanwhile:?}"
    );
    let listener = TcpListener::bind(addr).await.unwrap();
    let _stop = serve_on(listener, &s);
    for n in 2..=20 {
        assert_eq!(got.event().await.payload, json!({"n": n}));
    }
    publish(&s, "alerts/a", 21).await;
    assert_eq!(got.event().await.payload, json!({"n": 21}));
}

/// A scripted stdio server: answers `server/discover`, and hands every `events/stream` request
/// to the test.
async fn scripted() -> (Client, mpsc::UnboundedReceiver<Value>, ScriptOut) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let (r, mut w) = tokio::io::split(server_io);
    let (to_test, from_client) = mpsc::unbounded_channel();
    let (to_client, mut outgoing) = mpsc::unbounded_channel::<Value>();
    tokio::spawn(async move {
        while let Some(m) = outgoing.recv().await {
            let line = format!("{m}\n");
            if w.write_all(line.as_bytes()).await.is_err() {
                return;
            }
        }
    });
    let answers = to_client.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(r).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let m: Value = serde_json::from_str(&line).unwrap();
            if m["method"] == "server/discover" {
                let _ = answers.send(json!({"jsonrpc": "2.0", "id": m["id"], "result": {
                    "resultType": "complete",
                    "supportedVersions": ["2026-07-28"],
                    "capabilities": {"extensions": {"io.modelcontextprotocol/events": {}}},
                    "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "script", "version": "1"}}
                }}));
            } else {
                let _ = to_test.send(m);
            }
        }
    });
    let (cr, cw) = tokio::io::split(client_io);
    let client = Client::builder("scripted", "1")
        .era(Era::Modern)
        .connect(mcpbus::transport::LineTransport::new(cr, cw))
        .await
        .unwrap();
    (client, from_client, ScriptOut(to_client))
}

struct ScriptOut(mpsc::UnboundedSender<Value>);

impl ScriptOut {
    fn note(&self, method: &str, id: &Value, mut params: Value) {
        params["_meta"] = json!({"io.modelcontextprotocol/subscriptionId": id});
        let _ = self
            .0
            .send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    fn event(&self, id: &Value, event_id: &str, cursor: &str) {
        let occurrence = json!({"eventId": event_id, "name": "t", "timestamp": "2026-01-01T00:00:00Z",
                                "data": {"topic": "t", "payload": event_id}, "cursor": cursor});
        self.note("notifications/events/event", id, occurrence);
    }
}

async fn next_message(rx: &mut mpsc::UnboundedReceiver<Value>, method: &str) -> Value {
    loop {
        let m = tokio::time::timeout(LIMIT, rx.recv())
            .await
            .expect("a message in time")
            .expect("the client is still there");
        if m["method"] == method {
            return m;
        }
    }
}

#[tokio::test]
async fn a_stream_silent_for_two_heartbeats_is_reopened_from_its_cursor_and_duplicates_dropped() {
    let (client, mut seen, out) = scripted().await;
    let (handler, mut got) = reports();
    let starting = tokio::spawn(
        client
            .subscribe_events("t")
            .delivery(Delivery::Push)
            .heartbeat(Duration::from_millis(150))
            .start(handler),
    );
    let first = next_message(&mut seen, "events/stream").await;
    assert_eq!(first["params"]["cursor"], Value::Null);
    let id = first["id"].clone();
    out.note(
        "notifications/events/active",
        &id,
        json!({"cursor": "5", "truncated": false}),
    );
    let mut sub = starting.await.unwrap().unwrap();
    out.event(&id, "e6", "6");
    assert_eq!(got.next().await, SubscriptionEvent::Cursor("5".into()));
    assert_eq!(got.event().await.event_id, "e6");
    // Then silence: the client gives the stream up and asks again from its cursor.
    let cancelled = next_message(&mut seen, "notifications/cancelled").await;
    assert_eq!(cancelled["params"]["requestId"], id);
    let second = next_message(&mut seen, "events/stream").await;
    assert_eq!(second["params"]["cursor"], "6");
    let id = second["id"].clone();
    out.note(
        "notifications/events/active",
        &id,
        json!({"cursor": "6", "truncated": false}),
    );
    // An event sent again is not handed over twice; a heartbeat moves the cursor.
    out.event(&id, "e6", "6");
    out.event(&id, "e7", "7");
    out.note(
        "notifications/events/heartbeat",
        &id,
        json!({"cursor": "9"}),
    );
    assert_eq!(got.event().await.event_id, "e7");
    assert_eq!(got.next().await, SubscriptionEvent::Cursor("9".into()));
    assert_eq!(sub.cursor().as_deref(), Some("9"));
    // The server ends the subscription for good.
    out.note(
        "notifications/events/terminated",
        &id,
        json!({"error": {"code": -32023, "message": "Not found", "data": {"kind": "event"}}}),
    );
    match got.next().await {
        SubscriptionEvent::Terminated(e) => assert_eq!(e.code, error_codes::NOT_FOUND),
        other => panic!("expected the end, got {other:?}"),
    }
    let end = tokio::time::timeout(LIMIT, sub.finished()).await.unwrap();
    assert!(
        matches!(&end, Err(Error::Remote(e)) if e.code == error_codes::NOT_FOUND),
        "{end:?}"
    );
}
