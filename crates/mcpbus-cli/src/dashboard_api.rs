//! The data behind the dashboard (see [`crate::dashboard`]): `GET <path>/api/snapshot`, one
//! JSON object with everything the page shows but the tail, and `GET
//! <path>/api/events?topic=PATTERN`, the live tail as Server-Sent Events.
//!
//! The tail is an [`EventTail`] of the hub: bounded, so a browser that reads slowly loses
//! events (counted, and shown) and never slows a publisher down.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use http::{HeaderMap, StatusCode, Uri};
use mcpbus::events::{EventTail, LoggedEvent};
use mcpbus::server::Server;
use mcpbus_proto::topic::TopicPattern;
use serde_json::{Value, json};

use crate::dashboard::Gate;

/// Events a tail holds for a browser that has not read them yet; past that they are lost.
const TAIL_BUFFER: usize = 512;
/// Tails open at once (each is a subscriber of the hub); more are refused with 503.
const MAX_TAILS: usize = 32;
/// Retained values listed in a snapshot (the page is a view, not an export).
const MAX_RETAINED: usize = 200;
/// Characters of a payload shown; longer ones are cut.
const PAYLOAD_PREVIEW: usize = 400;

/// Where this process runs and what it shares, for the snapshot.
#[derive(Debug, Clone)]
pub(crate) struct Replica {
    /// A random id drawn at start: tells replicas (and restarts) apart.
    pub id: String,
    /// The address listened on.
    pub listen: String,
    /// When the process started serving.
    pub started_at: DateTime<Utc>,
    /// The Redis URL, without its password; `None` in memory.
    pub redis: Option<String>,
    /// The Redis key prefix.
    pub redis_prefix: Option<String>,
}

/// What the data handlers share.
#[derive(Clone)]
pub(crate) struct Api {
    pub server: Server,
    pub replica: Arc<Replica>,
    pub started: Instant,
    /// Sessions of the MCP endpoint (the HTTP transport knows them).
    pub sessions: Arc<dyn Fn() -> usize + Send + Sync>,
    tails: Arc<AtomicUsize>,
    lost: Arc<AtomicU64>,
}

impl Api {
    /// The handlers' state; `sessions` counts the MCP endpoint's sessions.
    pub(crate) fn new(
        server: Server,
        replica: Replica,
        sessions: Arc<dyn Fn() -> usize + Send + Sync>,
    ) -> Api {
        Api {
            server,
            replica: Arc::new(replica),
            started: Instant::now(),
            sessions,
            tails: Arc::default(),
            lost: Arc::default(),
        }
    }
}

/// `redis://user:secret@host:6379/0` without `user:secret@`.
pub(crate) fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let slash = if rest.contains('/') { "/" } else { "" };
            format!("{scheme}://{host}{slash}{path}")
        }
        None => "(unreadable URL)".to_string(),
    }
}

/// `text` cut to [`PAYLOAD_PREVIEW`] characters.
fn preview(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(PAYLOAD_PREVIEW) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// The `replica` and `redis` parts of a snapshot.
async fn health(api: &Api) -> (Value, Value) {
    let r = &api.replica;
    let replica = json!({
        "id": r.id,
        "listen": r.listen,
        "pid": std::process::id(),
        "startedAt": r.started_at.to_rfc3339(),
        "uptimeMs": api.started.elapsed().as_millis() as u64,
    });
    let hub = api.server.events();
    let started = Instant::now();
    // With Redis a round trip: it tells whether Redis answers, and how fast.
    let length = hub.log_length().await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let redis = json!({
        "configured": r.redis.is_some(),
        "url": r.redis,
        "prefix": r.redis_prefix,
        "sharedLog": hub.has_shared_log(),
        "ok": length.is_ok(),
        "error": length.as_ref().err().map(ToString::to_string),
        "latencyMs": latency_ms,
        "logLength": length.ok().flatten(),
    });
    (replica, redis)
}

/// The topics with their counters, and the retained values.
async fn topics(api: &Api) -> (Value, Value) {
    let hub = api.server.events();
    let totals = hub.topic_totals();
    let topics: Vec<Value> = hub
        .descriptors()
        .into_iter()
        .zip(totals)
        .map(|(d, t)| {
            json!({
                "pattern": d.pattern,
                "kind": d.kind,
                "description": d.description,
                "retained": d.retained,
                "suggestedHandle": d.suggested_handle,
                "published": t.published,
                "delivered": t.delivered,
            })
        })
        .collect();
    let retained = match TopicPattern::new("#") {
        Ok(all) => hub.retained(&all).await,
        Err(_) => Ok(Vec::new()),
    };
    let retained = match retained {
        Ok(values) => {
            let total = values.len();
            let shown: Vec<Value> = values
                .into_iter()
                .take(MAX_RETAINED)
                .map(|e| {
                    json!({
                        "topic": e.topic,
                        "eventId": e.event_id,
                        "source": e.source,
                        "payload": preview(&e.payload),
                    })
                })
                .collect();
            json!({"total": total, "values": shown})
        }
        Err(e) => json!({"total": null, "values": [], "error": e.to_string()}),
    };
    (Value::Array(topics), retained)
}

/// Everything the page shows but the tail.
pub(crate) async fn snapshot(api: &Api) -> Value {
    let server = &api.server;
    let hub = server.events();
    let stats = hub.stats();
    let totals = hub.topic_totals();
    let tails = api.tails.load(Ordering::Relaxed);
    let (replica, redis) = health(api).await;
    let (topics, retained) = topics(api).await;
    json!({
        "server": {"name": server.info().name, "version": server.info().version},
        "replica": replica,
        "redis": redis,
        "counters": {
            "published": totals.iter().map(|t| t.published).sum::<u64>(),
            "delivered": totals.iter().map(|t| t.delivered).sum::<u64>(),
            "dropped": stats.dropped,
        },
        "sessions": {
            "sessions": (api.sessions)(),
            // The dashboard's own tails are subscribers of the hub too: not counted here.
            "subscribers": stats.sessions.saturating_sub(tails),
            "subscriptions": stats.subscriptions.saturating_sub(tails),
            "pushStreams": hub.push_streams(),
            "listenStreams": server.listen_streams(),
            "webhookSubscriptions": server.webhook_subscriptions(),
        },
        "tails": {"open": tails, "lost": api.lost.load(Ordering::Relaxed)},
        "topics": topics,
        "retained": retained,
    })
}

fn refused() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "log in to the dashboard, or send Authorization: Bearer <token>"})),
    )
        .into_response()
}

/// `GET <path>/api/snapshot`
async fn get_snapshot(State((gate, api)): State<(Gate, Api)>, headers: HeaderMap) -> Response {
    if !gate.admits(&headers) {
        return refused();
    }
    let mut r = Json(snapshot(&api).await).into_response();
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    r
}

/// Decodes `%XX` and `+` (a space) of a query string or form value; `None` when invalid.
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = [bytes.next()?, bytes.next()?];
                let hex = std::str::from_utf8(&hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
            }
            _ => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

/// The decoded value of `name` in a query string or `application/x-www-form-urlencoded` body.
pub(crate) fn form_value(text: &str, name: &str) -> Option<String> {
    text.split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| percent_decode(v))
}

/// One event of the tail as the page reads it.
pub(crate) fn tail_item(event: &LoggedEvent, lost: u64) -> Value {
    let params: Value = serde_json::from_slice(&event.params).unwrap_or(Value::Null);
    json!({
        "cursor": &*event.cursor,
        "topic": &*event.topic,
        "publishedAt": event.published_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "eventId": params.get("eventId"),
        "priority": params.get("priority"),
        "source": params.get("source"),
        "retained": params.get("retained"),
        "payload": preview(params.get("payload").unwrap_or(&Value::Null)),
        "lost": lost,
    })
}

/// Counts an open tail, and adds its losses to the total when it closes.
struct TailGuard {
    tails: Arc<AtomicUsize>,
    lost: Arc<AtomicU64>,
    seen_lost: u64,
}

impl Drop for TailGuard {
    fn drop(&mut self) {
        self.tails.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `GET <path>/api/events?topic=PATTERN` (default `#`): a `ready` event, then one `message`
/// per event matching the pattern, as this process delivers it.
async fn get_events(
    State((gate, api)): State<(Gate, Api)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if !gate.admits(&headers) {
        return refused();
    }
    let raw = uri
        .query()
        .and_then(|q| form_value(q, "topic"))
        .unwrap_or_else(|| "#".into());
    let pattern = match TopicPattern::new(&raw) {
        Ok(p) => p,
        Err(e) => {
            let error = json!({"error": format!("topic pattern {raw:?}: {e}")});
            return (StatusCode::BAD_REQUEST, Json(error)).into_response();
        }
    };
    if api.tails.fetch_add(1, Ordering::Relaxed) >= MAX_TAILS {
        api.tails.fetch_sub(1, Ordering::Relaxed);
        let error = json!({"error": format!("{MAX_TAILS} tails are open already")});
        return (StatusCode::SERVICE_UNAVAILABLE, Json(error)).into_response();
    }
    let guard = TailGuard {
        tails: api.tails.clone(),
        lost: api.lost.clone(),
        seen_lost: 0,
    };
    let tail = api.server.events().tail(pattern, TAIL_BUFFER);
    let ready = SseEvent::default()
        .event("ready")
        .data(json!({"topic": raw}).to_string());
    let first = futures::stream::once(async move { Ok::<_, Infallible>(ready) });
    let rest = futures::stream::unfold((tail, guard), next_item);
    Sse::new(futures::StreamExt::chain(first, rest))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// The next SSE event of a tail (its losses added to the dashboard's total as they grow).
async fn next_item(
    (mut tail, mut guard): (EventTail, TailGuard),
) -> Option<(Result<SseEvent, Infallible>, (EventTail, TailGuard))> {
    let event = tail.next().await?;
    let lost = tail.lost();
    guard
        .lost
        .fetch_add(lost - guard.seen_lost, Ordering::Relaxed);
    guard.seen_lost = lost;
    let item = SseEvent::default().data(tail_item(&event, lost).to_string());
    Some((Ok(item), (tail, guard)))
}

/// The data routes under `base`.
pub(crate) fn routes(base: &str, gate: Gate, api: Api) -> axum::Router {
    axum::Router::new()
        .route(&format!("{base}/api/snapshot"), get(get_snapshot))
        .route(&format!("{base}/api/events"), get(get_events))
        .with_state((gate, api))
}
