//! The clients of the fault schedule: publishers that record what was acknowledged, push
//! streams and pollers that resume with their last cursor on whichever replica is up. Each
//! runs on a thread of its own with its own runtime, and never panics on a server that is
//! down or stuck: it tries again elsewhere, as a real client would.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use http::Method;
use mcpbus_testkit::modern::{answer_message, headers, request};
use mcpbus_testkit::{HttpClient, SseReader, TOKEN, block_on};
use serde_json::{Value, json};

use crate::Rng;

/// The event type every subscriber follows; publishers publish `alerts/<publisher>`.
pub(crate) const NAME: &str = "alerts/+";

/// How long a client waits for an answer before it gives up on a replica.
const GIVE_UP: Duration = Duration::from_secs(5);

/// The base URLs (`http://127.0.0.1:PORT`) of the replicas that are up; the schedule
/// changes them, clients pick one at random for each attempt.
#[derive(Clone, Default)]
pub(crate) struct Live(Arc<Mutex<Vec<String>>>);

impl Live {
    pub(crate) fn set(&self, urls: Vec<String>) {
        *self.0.lock().unwrap() = urls;
    }

    fn pick(&self, rng: &mut Rng) -> Option<String> {
        let urls = self.0.lock().unwrap();
        (!urls.is_empty()).then(|| urls[rng.below(urls.len() as u64) as usize].clone())
    }
}

/// An acknowledged publish: `POST /publish` answered 200 with these.
#[derive(Debug, Clone)]
pub(crate) struct Ack {
    pub(crate) key: String,
    pub(crate) event_id: String,
    pub(crate) cursor: String,
}

/// What a publisher did.
#[derive(Debug, Default)]
pub(crate) struct Published {
    /// Every attempt's key (`<publisher>-<n>`), acknowledged or not.
    pub(crate) attempted: Vec<String>,
    pub(crate) acked: Vec<Ack>,
}

/// A publisher on its own thread until `stop`; what it did comes out of the handle.
pub(crate) fn publisher(
    name: String,
    live: Live,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<Published> {
    thread::spawn(move || {
        let mut rng = Rng::new(seed);
        let mut out = Published::default();
        let auth = format!("Bearer {TOKEN}");
        let headers = [
            ("Content-Type", "application/json"),
            ("Authorization", auth.as_str()),
        ];
        block_on(async {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let Some(base) = live.pick(&mut rng) else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                n += 1;
                let key = format!("{name}-{n}");
                let body = json!({"topic": format!("alerts/{name}"), "payload": {"key": key}});
                let body = body.to_string();
                out.attempted.push(key.clone());
                let client = HttpClient::new(format!("{base}/publish"));
                let call = client.try_call(Method::POST, &headers, body.as_bytes());
                if let Ok(Ok(r)) = tokio::time::timeout(GIVE_UP, call).await
                    && r.status == 200
                {
                    let v = r.json();
                    out.acked.push(Ack {
                        key,
                        event_id: v["eventId"].as_str().unwrap_or_default().to_owned(),
                        cursor: v["cursor"].as_str().unwrap_or_default().to_owned(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(5 + rng.below(15))).await;
            }
        });
        out
    })
}

/// One event as a subscriber received it.
#[derive(Debug, Clone)]
pub(crate) struct Delivered {
    pub(crate) key: String,
    pub(crate) event_id: String,
    /// The event's own cursor (push streams; polls carry one per answer only).
    pub(crate) cursor: Option<String>,
}

/// What a subscriber saw, shared with the test while it runs.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub(crate) events: Vec<Delivered>,
    /// Anything the checker must fail on (a truncated resume: a gap the server admits).
    pub(crate) problems: Vec<String>,
    pub(crate) resumes: usize,
}

/// A subscriber (push stream or poller) following [`NAME`] from the moment it was opened.
pub(crate) struct Subscriber {
    pub(crate) label: String,
    pub(crate) seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
}

impl Subscriber {
    /// Starts one, `push` or polling, and returns once it holds its first cursor.
    pub(crate) fn start(label: String, push: bool, live: Live, seed: u64) -> Subscriber {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready, opened) = mpsc::channel();
        let follower = Follower {
            live,
            rng: Rng::new(seed),
            seen: seen.clone(),
            stop: stop.clone(),
            cursor: None,
            ids: 0,
        };
        thread::spawn(move || {
            if push {
                block_on(follower.push(ready))
            } else {
                block_on(follower.poll(ready))
            }
        });
        opened
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("{label}: no first cursor"));
        Subscriber { label, seen, stop }
    }

    pub(crate) fn has_all(&self, keys: &std::collections::HashSet<&str>) -> bool {
        let seen = self.seen.lock().unwrap();
        let have: std::collections::HashSet<&str> =
            seen.events.iter().map(|d| d.key.as_str()).collect();
        keys.is_subset(&have)
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

struct Follower {
    live: Live,
    rng: Rng,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    cursor: Option<String>,
    /// The last JSON-RPC id used.
    ids: i64,
}

impl Follower {
    fn params(&self) -> Value {
        json!({"name": NAME, "cursor": self.cursor})
    }

    /// Records an event occurrence (`eventId`, `data.payload.key`).
    fn record(&self, event: &Value, cursor: Option<&str>) {
        let delivered = Delivered {
            key: event["data"]["payload"]["key"]
                .as_str()
                .unwrap_or("?")
                .to_owned(),
            event_id: event["eventId"].as_str().unwrap_or("?").to_owned(),
            cursor: cursor.map(str::to_owned),
        };
        self.seen.lock().unwrap().events.push(delivered);
    }

    fn problem(&self, what: String) {
        self.seen.lock().unwrap().problems.push(what);
    }

    fn next_id(&mut self) -> i64 {
        self.ids += 1;
        self.ids
    }

    /// `events/stream` again and again with the last cursor, on a random live replica.
    async fn push(mut self, ready: mpsc::Sender<()>) {
        while !self.stop.load(Ordering::SeqCst) {
            let Some(base) = self.live.pick(&mut self.rng) else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let message = request(self.next_id(), "events/stream", self.params(), json!({}));
            let client = HttpClient::new(format!("{base}/mcp"));
            let pairs = headers(&message);
            let borrowed: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let body = message.to_string();
            let sent = client.try_send(Method::POST, &borrowed, body.as_bytes());
            let is_sse = |r: &http::Response<_>| {
                r.status() == 200
                    && r.headers()
                        .get("content-type")
                        .is_some_and(|t| t.as_bytes().starts_with(b"text/event-stream"))
            };
            match tokio::time::timeout(GIVE_UP, sent).await {
                Ok(Ok(response)) if is_sse(&response) => {
                    self.read_stream(SseReader::new(response), &ready).await;
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
            self.seen.lock().unwrap().resumes += 1;
        }
    }

    /// Reads one stream until it ends, stalls for a while, or the test stops.
    async fn read_stream(&mut self, mut stream: SseReader, ready: &mpsc::Sender<()>) {
        // Heartbeats come every 15 s: a stream quiet for 2 s may be stuck, go elsewhere.
        while let Ok(Some(event)) =
            tokio::time::timeout(Duration::from_secs(2), stream.next_event()).await
        {
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            let Ok(m) = serde_json::from_str::<Value>(&event.data) else {
                continue;
            };
            let p = &m["params"];
            match m["method"].as_str() {
                Some("notifications/events/active") => {
                    if p["truncated"] == true && self.cursor.is_some() {
                        self.problem(format!("truncated resume from {:?}: {p}", self.cursor));
                    }
                    if self.cursor.is_none() {
                        self.cursor = p["cursor"].as_str().map(str::to_owned);
                        let _ = ready.send(());
                    }
                }
                Some("notifications/events/event") => {
                    let cursor = p["cursor"].as_str();
                    self.record(p, cursor);
                    if let Some(c) = cursor {
                        self.cursor = Some(c.to_owned());
                    }
                }
                _ => {}
            }
        }
    }

    /// `events/poll` (long polls of 1 s) with the last cursor, on a random live replica.
    async fn poll(mut self, ready: mpsc::Sender<()>) {
        while !self.stop.load(Ordering::SeqCst) {
            let Some(base) = self.live.pick(&mut self.rng) else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let mut params = self.params();
            if self.cursor.is_some() {
                params["timeoutMs"] = json!(1000);
                params["maxEvents"] = json!(500);
            }
            let message = request(self.next_id(), "events/poll", params, json!({}));
            let client = HttpClient::new(format!("{base}/mcp"));
            let pairs = headers(&message);
            let borrowed: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let body = message.to_string();
            let call = client.try_call(Method::POST, &borrowed, body.as_bytes());
            let answer = match tokio::time::timeout(GIVE_UP, call).await {
                Ok(Ok(a)) if a.status == 200 => answer_message(&a),
                _ => {
                    self.seen.lock().unwrap().resumes += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let r = &answer["result"];
            let Some(next) = r["cursor"].as_str() else {
                // An error answer (Redis unreachable, say): try again.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            if r["truncated"] == true && self.cursor.is_some() {
                self.problem(format!("truncated poll from {:?}: {r}", self.cursor));
            }
            for event in r["events"].as_array().into_iter().flatten() {
                self.record(event, None);
            }
            if self.cursor.is_none() {
                let _ = ready.send(());
            }
            self.cursor = Some(next.to_owned());
        }
    }
}
