//! `webhooks`: publish → deliver latency and deliveries per second of SEP-3415 webhook
//! delivery (docs/protocol.md 3.6) to a receiver inside this process.
//!
//! The receiver listens on loopback only. K subscriptions are made with `events/subscribe` as
//! the principal a bearer token names, each to its own URL (`/hook/<i>`), so each is verified
//! once (the receiver echoes the challenge) and then gets every event as a POST of its own.
//! The server sends at most `max_verifications_per_host` (10) verifications to one host a
//! minute, so the receiver listens on several loopback addresses (127.0.0.1, 127.0.0.2, ...;
//! Linux routes all of 127.0.0.0/8 to the loopback interface), ten subscriptions each. Then
//! events are published as in `fanout` (same publisher, same merge): a delivery's latency is
//! the arrival of its POST minus the publish's send time. Signatures are not checked here (the
//! tests check them with the Standard Webhooks library); the receiver answers `200` at once.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::conn::{Conn, Endpoint};
use crate::events;
use crate::fanout::{self, Completion, FanoutConfig, FanoutReport, Run, StreamResult};

/// Subscriptions per receiver address: the server's verifications per host and minute.
const PER_HOST: usize = 10;

/// The signing secret of every subscription: `whsec_` and the base64 of 32 bytes.
const SECRET: &str = "whsec_bWNwYnVzLWJlbmNoLXdlYmhvb2stc2VjcmV0LTAxMjM=";

/// Settings of the `webhooks` scenario: a fan-out with `delivery` = webhook, `sessions` the
/// subscriptions, and the bearer token of the principal that subscribes.
#[derive(Debug, Clone)]
pub(crate) struct WebhooksConfig {
    /// The fan-out's settings.
    pub fanout: FanoutConfig,
    /// A bearer token the server knows (`[[auth.tokens]]`).
    pub auth_token: String,
}

/// Runs the scenario.
pub(crate) async fn run(config: &WebhooksConfig) -> Result<FanoutReport, String> {
    let f = &config.fanout;
    if f.sessions == 0 || f.events == 0 {
        return Err("--sessions and --events must be at least 1".into());
    }
    // A connection per delivery in flight, at most one per subscription.
    fanout::check_open_files(2 * f.sessions + f.setup_concurrency)?;
    let endpoint = Endpoint::parse(&f.url)?;
    let (run, _stop) = Run::start(f.server_pid);
    let receiver = Receiver::start(f.sessions, f.events, run.start, run.completion.clone()).await?;
    let urls: Vec<String> = (0..f.sessions).map(|i| receiver.url(i)).collect();
    let workers = f.setup_concurrency.clamp(1, f.sessions);
    let mut setup = Vec::with_capacity(workers);
    for w in 0..workers {
        let mine: Vec<String> = urls.iter().skip(w).step_by(workers).cloned().collect();
        let (endpoint, token, name) =
            (endpoint.clone(), config.auth_token.clone(), f.topic.clone());
        setup.push(tokio::spawn(async move {
            let mut conn = Conn::connect(&endpoint).await?;
            for url in mine {
                events::subscribe_webhook(&mut conn, &endpoint, &token, &name, &url, SECRET)
                    .await
                    .map_err(|e| format!("{url}: {e}"))?;
            }
            Ok::<_, String>(())
        }));
    }
    for task in setup {
        task.await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
            .map_err(|e| format!("webhook subscription failed: {e}"))?;
    }
    let verified = receiver.state.verifications();
    if verified != f.sessions {
        return Err(format!(
            "{verified} verifications for {} subscriptions",
            f.sessions
        ));
    }
    fanout::measure(f, run, fanout::Subscribers::Webhooks(receiver)).await
}

/// The receiver: loopback listeners, and what each subscription received.
pub(crate) struct Receiver {
    state: Arc<State>,
    addrs: Vec<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

/// What the receiver shares with its connections.
struct State {
    /// Per subscription: arrivals, and how many distinct events came.
    subs: Mutex<Vec<(StreamResult, usize)>>,
    events: usize,
    start: Instant,
    completion: Arc<Completion>,
    /// Challenges echoed, and POSTs that were neither a challenge nor a bench event.
    counts: Mutex<(usize, usize)>,
}

impl State {
    fn verifications(&self) -> usize {
        self.counts.lock().map(|c| c.0).unwrap_or(0)
    }
}

impl Receiver {
    /// Listens on as many loopback addresses as `subscriptions` need.
    async fn start(
        subscriptions: usize,
        events: usize,
        start: Instant,
        completion: Arc<Completion>,
    ) -> Result<Self, String> {
        let hosts = subscriptions.div_ceil(PER_HOST);
        if hosts > 254 {
            return Err(format!(
                "at most {} webhook subscriptions (254 loopback addresses, {PER_HOST} each)",
                254 * PER_HOST
            ));
        }
        let state = Arc::new(State {
            subs: Mutex::new(
                (0..subscriptions)
                    .map(|_| (StreamResult::new(events), 0))
                    .collect(),
            ),
            events,
            start,
            completion,
            counts: Mutex::new((0, 0)),
        });
        let mut addrs = Vec::with_capacity(hosts);
        let mut tasks = Vec::with_capacity(hosts);
        for h in 0..hosts {
            let ip = Ipv4Addr::new(127, 0, 0, u8::try_from(h + 1).unwrap_or(1));
            let listener = TcpListener::bind((ip, 0))
                .await
                .map_err(|e| format!("receiver: cannot listen on {ip}: {e}"))?;
            addrs.push(listener.local_addr().map_err(|e| e.to_string())?);
            tasks.push(tokio::spawn(accept(listener, state.clone())));
        }
        Ok(Receiver {
            state,
            addrs,
            tasks,
        })
    }

    /// The callback URL of subscription `i`.
    fn url(&self, i: usize) -> String {
        format!("http://{}/hook/{i}", self.addrs[i / PER_HOST])
    }

    /// What each subscription received; stops listening.
    pub(crate) fn results(self) -> Vec<StreamResult> {
        for t in &self.tasks {
            t.abort();
        }
        let mut subs = self.state.subs.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *subs)
            .into_iter()
            .map(|(r, _)| r)
            .collect()
    }
}

/// Serves every connection of one listener.
async fn accept(listener: TcpListener, state: Arc<State>) {
    while let Ok((tcp, _)) = listener.accept().await {
        let _ = tcp.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

/// One POST: a challenge is echoed, a bench event recorded; `200` either way.
async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let now = (state.start.elapsed().as_nanos() as u64).max(1);
    let sub = req
        .uri()
        .path()
        .strip_prefix("/hook/")
        .and_then(|i| i.parse::<usize>().ok());
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let message: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut answer = Bytes::new();
    if message["type"] == "verification" {
        answer = Bytes::from(json!({"challenge": message["challenge"]}).to_string());
        if let Ok(mut c) = state.counts.lock() {
            c.0 += 1;
        }
    } else if let (Some(sub), Some(seq)) = (sub, event_seq(&message)) {
        state.record(sub, seq, now);
    } else if let Ok(mut c) = state.counts.lock() {
        c.1 += 1;
    }
    let mut response = Response::new(Full::new(answer));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

impl State {
    /// Records that subscription `sub` received event `seq` at `now`.
    fn record(&self, sub: usize, seq: usize, now: u64) {
        let Ok(mut subs) = self.subs.lock() else {
            return;
        };
        let Some((result, received)) = subs.get_mut(sub) else {
            return;
        };
        match result.arrivals.get_mut(seq) {
            Some(slot) if *slot == 0 => {
                *slot = now;
                *received += 1;
                if *received == self.events {
                    self.completion.one_done();
                }
            }
            Some(_) => result.duplicates += 1,
            None => {}
        }
    }
}

/// The sequence number of a delivered occurrence (`data.payload.seq`).
fn event_seq(occurrence: &Value) -> Option<usize> {
    usize::try_from(occurrence.pointer("/data/payload/seq")?.as_u64()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_receiver_echoes_challenges_and_records_events() {
        let completion = Arc::new(Completion::default());
        let receiver = Receiver::start(12, 2, Instant::now(), completion)
            .await
            .unwrap();
        assert!(receiver.url(0).starts_with("http://127.0.0.1:"));
        assert!(receiver.url(11).starts_with("http://127.0.0.2:"));
        assert!(receiver.url(11).ends_with("/hook/11"));
        let post = |url: String, body: Value| async move {
            let endpoint = Endpoint::parse(&url).unwrap();
            let mut conn = Conn::connect(&endpoint).await.unwrap();
            let request = endpoint
                .request(http::Method::POST)
                .body(Full::new(Bytes::from(body.to_string())))
                .unwrap();
            conn.exchange(request).await.unwrap()
        };
        let a = post(
            receiver.url(11),
            json!({"type": "verification", "challenge": "abc"}),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK);
        let echoed: Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(echoed, json!({"challenge": "abc"}));
        let event = json!({"eventId": "e", "data": {"payload": {"seq": 1, "t": 0}}});
        post(receiver.url(11), event.clone()).await;
        post(receiver.url(11), event).await;
        assert_eq!(receiver.state.verifications(), 1);
        let results = receiver.results();
        assert_eq!(results.len(), 12);
        assert!(results[11].arrivals[1] > 0);
        assert_eq!(results[11].arrivals[0], 0);
        assert_eq!(results[11].duplicates, 1);
    }
}
