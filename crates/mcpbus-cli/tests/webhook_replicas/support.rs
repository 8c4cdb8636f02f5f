//! What webhook_replicas.rs uses: replicas with webhooks on loopback, a webhook receiver that
//! verifies signatures and records acknowledgements, a push stream that follows its cursor to
//! another replica, and publishers.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use mcpbus::webhooks::WebhookSecret;
use mcpbus_testkit::modern::{answer_message, headers, request};
use mcpbus_testkit::{HttpClient, RedisServer, ServeProcess, SseReader, TOKEN, block_on, fixture};
use serde_json::{Value, json};
use tokio::sync::watch;

pub(crate) const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ALICE: &str = "alice-token-0123456789abcdef";
const ALICE_ENV: &str = "MCPBUS_TEST_TOKEN_ALICE";

/// The HTTP fixture with webhooks to loopback, Alice's token, short leases and room for the
/// test's events.
pub(crate) fn config_file(dir: &Path) -> PathBuf {
    let base = std::fs::read_to_string(fixture("http.toml")).unwrap();
    let base = base.replace("queue_capacity = 1024", "queue_capacity = 20000");
    let extra = format!(
        r#"
[webhooks]
enabled = true
allow_private = ["127.0.0.0/8"]
lease_ttl_ms = 1500
timeout_ms = 60000
initial_backoff_ms = 100
max_backoff_ms = 500

[auth]
tokens = [{{ principal = "alice", token_env = "{ALICE_ENV}" }}]
"#
    );
    let path = dir.join("webhooks.toml");
    std::fs::write(&path, base + &extra).unwrap();
    path
}

/// `mcpbus serve --redis` with `config`, keys under `prefix`.
pub(crate) fn replica(redis: &RedisServer, config: &Path, prefix: &str) -> ServeProcess {
    let extra = ["--redis", &redis.url(), "--redis-prefix", prefix];
    let mut cmd = ServeProcess::command(env!("CARGO_BIN_EXE_mcpbus"), config, "info", &extra);
    cmd.env(ALICE_ENV, ALICE);
    ServeProcess::spawn(cmd)
}

/// Alice's webhook subscription to `alerts/+` from now, made on `server`.
pub(crate) fn subscribe(server: &ServeProcess, url: &str) {
    let params = json!({
        "name": "alerts/+",
        "delivery": {"mode": "webhook", "url": url, "secret": SECRET},
        "ttlMs": 600_000
    });
    let message = request(1, "events/subscribe", params, json!({}));
    let mut headers = headers(&message);
    headers.push(("authorization".into(), format!("Bearer {ALICE}")));
    let borrowed: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let client = HttpClient::new(server.mcp_url());
    let answer = block_on(client.call(
        http::Method::POST,
        &borrowed,
        message.to_string().as_bytes(),
    ));
    let answer = answer_message(&answer);
    assert!(
        answer["result"]["id"].is_string(),
        "subscribe failed: {answer}"
    );
}

/// Publishes `n` events on `topic` through `base`'s `POST /publish`, one after the other;
/// their ids in order.
pub(crate) fn publish_many(base: &str, topic: &str, n: usize, count: &AtomicUsize) -> Vec<String> {
    let client = HttpClient::new(format!("{base}/publish"));
    let auth = format!("Bearer {TOKEN}");
    let headers = [
        ("Content-Type", "application/json"),
        ("Authorization", auth.as_str()),
    ];
    block_on(async {
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let body = json!({"topic": topic, "payload": {"n": i}}).to_string();
            let r = client
                .call(http::Method::POST, &headers, body.as_bytes())
                .await;
            assert_eq!(r.status, 200, "{}", r.text());
            ids.push(r.json()["eventId"].as_str().unwrap().to_owned());
            count.fetch_add(1, Ordering::SeqCst);
        }
        ids
    })
}

/// Polls `done` until it holds, or panics naming `what`.
pub(crate) fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "not {what} within {within:?}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Which of `servers` delivers the webhook now, by their logs (a delivery starts and stops
/// with a line each).
pub(crate) fn webhook_holder(servers: &[&ServeProcess]) -> usize {
    let mut found = None;
    wait_until(
        "a replica delivering the webhook",
        Duration::from_secs(10),
        || {
            found = None;
            for (i, s) in servers.iter().enumerate() {
                let log = s.log();
                let starts = log.matches("webhook delivery starts here").count();
                let stops = log.matches("webhook delivery stops here").count();
                if starts > stops {
                    found = Some(i);
                }
            }
            found.is_some()
        },
    );
    found.unwrap()
}

/// Checks the pushed events: each published one exactly once, cursors ascending, and each
/// publisher's events in the order it published them.
pub(crate) fn check_log_order(pushed: &[(String, String)], by_b: &[String], by_c: &[String]) {
    let ids: Vec<&String> = pushed.iter().map(|(id, _)| id).collect();
    let unique: HashSet<&String> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "an event was pushed twice");
    let published: HashSet<&String> = by_b.iter().chain(by_c).collect();
    assert_eq!(unique, published, "pushed events are the published ones");
    let keys: Vec<Vec<u64>> = pushed.iter().map(|(_, c)| cursor_key(c)).collect();
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "cursors ascend in log order"
    );
    for mine in [by_b, by_c] {
        let set: HashSet<&String> = mine.iter().collect();
        let seen: Vec<&String> = ids.iter().copied().filter(|id| set.contains(id)).collect();
        assert!(
            seen.iter().copied().eq(mine.iter()),
            "a publisher's events in its order"
        );
    }
}

/// A cursor as numbers, for ordering (`MS-SEQ` and the like).
fn cursor_key(cursor: &str) -> Vec<u64> {
    cursor
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

/// What the receiver saw.
#[derive(Debug, Default, Clone)]
pub(crate) struct Report {
    /// Every event delivery (webhook-id), in arrival order, repeats included.
    pub(crate) deliveries: Vec<String>,
    /// Repeats of an event already acknowledged (each was the last acknowledged one).
    pub(crate) repeated_acked: Vec<String>,
    /// Anything wrong: a bad signature, an unexpected envelope, a repeat of an event
    /// acknowledged before the last one.
    pub(crate) problems: Vec<String>,
}

#[derive(Default)]
struct Seen {
    report: Report,
    /// Acknowledged events, in order, each once.
    acked: Vec<String>,
    acked_set: HashSet<String>,
}

struct Shared {
    seen: Mutex<Seen>,
    gate: watch::Receiver<bool>,
}

/// A webhook endpoint on 127.0.0.1 (its own thread and runtime).
pub(crate) struct Receiver {
    shared: Arc<Shared>,
    gate: watch::Sender<bool>,
    pub(crate) url: String,
}

impl Receiver {
    /// Starts it; deliveries (not verifications) wait until [`open_gate`](Self::open_gate).
    pub(crate) fn start() -> Receiver {
        let (gate, gate_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            seen: Mutex::default(),
            gate: gate_rx,
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(shared.clone());
        thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let _ = axum::serve(listener, app).await;
            });
        });
        Receiver { shared, gate, url }
    }

    pub(crate) fn open_gate(&self) {
        self.gate.send_replace(true);
    }

    /// The events acknowledged, each once, in order.
    pub(crate) fn acked(&self) -> Vec<String> {
        self.shared.seen.lock().unwrap().acked.clone()
    }

    pub(crate) fn report(&self) -> Report {
        self.shared.seen.lock().unwrap().report.clone()
    }
}

async fn hook(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, axum::Json<Value>) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let id = header("webhook-id");
    let timestamp: i64 = header("webhook-timestamp").parse().unwrap_or_default();
    let expected = WebhookSecret::parse(SECRET)
        .unwrap()
        .sign(&id, timestamp, &body);
    let signed = header("webhook-signature")
        .split(' ')
        .any(|s| s == expected);
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if parsed["type"] == "verification" {
        return (
            StatusCode::OK,
            axum::Json(json!({"challenge": parsed["challenge"]})),
        );
    }
    let mut gate = shared.gate.clone();
    let _ = gate.wait_for(|open| *open).await;
    let mut seen = shared.seen.lock().unwrap();
    if !signed {
        seen.report.problems.push(format!("bad signature on {id}"));
    }
    if parsed["eventId"].as_str() != Some(id.as_str()) {
        seen.report.problems.push(format!("not an event: {parsed}"));
        return (StatusCode::OK, axum::Json(json!({})));
    }
    seen.report.deliveries.push(id.clone());
    if seen.acked_set.contains(&id) {
        if seen.acked.last() == Some(&id) {
            seen.report.repeated_acked.push(id);
        } else {
            seen.report.problems.push(format!(
                "{id} came again after later events were acknowledged"
            ));
        }
    } else {
        seen.acked_set.insert(id.clone());
        seen.acked.push(id);
    }
    (StatusCode::OK, axum::Json(json!({})))
}

/// An `events/stream` push stream on its own thread, reconnecting with its last cursor to
/// whichever replica [`move_to`](Self::move_to) names.
pub(crate) struct PushStream {
    url: Arc<Mutex<String>>,
    events: Arc<Mutex<Vec<(String, String)>>>,
    reconnects: Arc<AtomicUsize>,
    /// Events published so far (the publishers count here).
    pub(crate) published: Arc<AtomicUsize>,
}

impl PushStream {
    /// Opens the stream of `name` from now on `url`; returns once it is open.
    pub(crate) fn open(url: String, name: &str) -> PushStream {
        let stream = PushStream {
            url: Arc::new(Mutex::new(url)),
            events: Arc::default(),
            reconnects: Arc::default(),
            published: Arc::default(),
        };
        let (ready, opened) = std::sync::mpsc::channel();
        let (url, events, reconnects) = (
            stream.url.clone(),
            stream.events.clone(),
            stream.reconnects.clone(),
        );
        let name = name.to_owned();
        thread::spawn(move || block_on(follow(url, name, events, reconnects, ready)));
        opened.recv_timeout(Duration::from_secs(10)).unwrap();
        stream
    }

    /// Where the stream reconnects from now on.
    pub(crate) fn move_to(&self, url: String) {
        *self.url.lock().unwrap() = url;
    }

    /// The (eventId, cursor) pushed so far.
    pub(crate) fn received(&self) -> Vec<(String, String)> {
        self.events.lock().unwrap().clone()
    }

    pub(crate) fn reconnects(&self) -> usize {
        self.reconnects.load(Ordering::SeqCst)
    }
}

async fn follow(
    url: Arc<Mutex<String>>,
    name: String,
    events: Arc<Mutex<Vec<(String, String)>>>,
    reconnects: Arc<AtomicUsize>,
    ready: std::sync::mpsc::Sender<()>,
) {
    let mut cursor: Option<String> = None;
    for attempt in 0..200 {
        if attempt > 0 {
            reconnects.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut params = json!({"name": name});
        if let Some(c) = &cursor {
            params["cursor"] = json!(c);
        }
        let target = url.lock().unwrap().clone();
        let message = request(1, "events/stream", params, json!({}));
        let client = HttpClient::new(target);
        let Ok(response) =
            tokio::time::timeout(Duration::from_secs(5), client.post_modern_stream(&message)).await
        else {
            continue;
        };
        if response.status() != 200 {
            continue;
        }
        let mut stream = SseReader::new(response);
        // An idle stream is left after a while (the test is over by then, or it reconnects).
        while let Ok(Some(event)) =
            tokio::time::timeout(Duration::from_secs(5), stream.next_event()).await
        {
            let Ok(m) = serde_json::from_str::<Value>(&event.data) else {
                continue;
            };
            let p = &m["params"];
            if cursor.is_none() && p["cursor"].is_string() {
                cursor = p["cursor"].as_str().map(str::to_owned);
                let _ = ready.send(());
            }
            if m["method"] != "notifications/events/event" {
                continue;
            }
            let (id, c) = (p["eventId"].as_str(), p["cursor"].as_str());
            let (Some(id), Some(c)) = (id, c) else {
                continue;
            };
            events.lock().unwrap().push((id.to_owned(), c.to_owned()));
            cursor = Some(c.to_owned());
        }
    }
}
