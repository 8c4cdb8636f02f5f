//! `mcpbus sub --webhook ADDR`: the patterns' subscriptions delivered by webhook (SEP-3415
//! `events/subscribe`, docs/events.md) to a receiver this command runs on ADDR. Every POST is
//! checked (signature under the subscription's own fresh secret, timestamp) and answered by
//! [`WebhookReceiver`]; events are printed once each (de-duplicated by `eventId`) as the same
//! JSON lines push and poll print, and their cursors kept in `--cursor-file`. Each subscription
//! is refreshed at half its grant and ended with `events/unsubscribe` on SIGINT or SIGTERM.
//!
//! The server must be able to reach the callback URL (`--webhook-url`, by default
//! `http://ADDR/hook`): `https` for a public server, plain `http` only where its allow-list
//! names the address. Webhooks need an authenticated principal: `--token`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use mcpbus::client::{Client, SubscriptionEvent, WebhookReceiver};
use mcpbus_proto::events_ext::webhook::SubscribeEventsResult;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::sub::SubError;
use crate::sub_modern::{Plan, Shared, refusal, report_to_user};

/// Where the receiver listens, and the URL the server is given.
#[derive(Debug, Clone)]
pub(crate) struct Webhook {
    pub(crate) listen: SocketAddr,
    pub(crate) url: Option<String>,
}

/// The receiver's path.
const PATH: &str = "/hook";

/// When a failed refresh is tried again.
const RETRY: Duration = Duration::from_secs(30);

/// One subscription held.
struct Held {
    plan: Plan,
    secret: String,
    refresh_at: Instant,
}

/// Subscribes every plan by webhook, then prints what arrives until a signal (exit 0), the
/// connection's end (`closed`), or every subscription refused.
pub(crate) async fn run(
    client: &Client,
    plans: Vec<(String, Plan)>,
    shared: &Shared,
    webhook: Webhook,
    closed: SubError,
) -> Result<(), SubError> {
    let listener = tokio::net::TcpListener::bind(webhook.listen)
        .await
        .map_err(|source| SubError::Listen {
            addr: webhook.listen,
            source,
        })?;
    let local = listener.local_addr().map_err(|source| SubError::Listen {
        addr: webhook.listen,
        source,
    })?;
    let url = webhook
        .url
        .unwrap_or_else(|| format!("http://{local}{PATH}"));
    let keys: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let receiver = receiver(shared, keys.clone());
    let app = receiver.router(PATH);
    let serving = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    eprintln!("mcpbus: receiving webhooks on {local}{PATH} (callback URL {url})");
    let mut held = Vec::new();
    for (pattern, plan) in plans {
        match subscribe(client, &receiver, plan, &url, shared, &keys).await {
            Ok(h) => held.push(h),
            Err(reason) => eprintln!("mcpbus: rejected {pattern:?}: {reason}"),
        }
    }
    let end = if held.is_empty() {
        Err(SubError::NothingAccepted)
    } else {
        hold(client, &mut held, &url, closed).await
    };
    for h in &held {
        unsubscribe(client, &h.plan, &url).await;
    }
    client.close().await;
    serving.abort();
    end
}

/// The receiver: each event printed once, its cursor kept under its subscription's key.
fn receiver(shared: &Shared, keys: Arc<Mutex<HashMap<String, String>>>) -> WebhookReceiver {
    let printed = shared.printed.clone();
    let cursors = shared.cursors.clone();
    WebhookReceiver::new(move |id: &str, report: SubscriptionEvent| {
        let key = keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_owned());
        report_to_user(&key, &report, &printed);
        if let (Some(file), Some(cursor)) = (&cursors, report.cursor()) {
            file.set(&key, cursor);
        }
    })
}

/// Refreshes the subscriptions as they come due until the command ends.
async fn hold(
    client: &Client,
    held: &mut [Held],
    url: &str,
    closed: SubError,
) -> Result<(), SubError> {
    loop {
        let next = held.iter().map(|h| h.refresh_at).min();
        let due = next.unwrap_or_else(|| Instant::now() + RETRY);
        tokio::select! {
            _ = crate::http::shutdown_signal() => return Ok(()),
            _ = client.closed() => return Err(closed),
            _ = tokio::time::sleep_until(due) => {}
        }
        for h in held.iter_mut().filter(|h| h.refresh_at <= Instant::now()) {
            match request(client, &h.plan, url, &h.secret, None).await {
                Ok(result) => h.refresh_at = refresh_at(&result),
                Err(e) => {
                    eprintln!("mcpbus: {}: refresh failed: {e}", h.plan.key());
                    h.refresh_at = Instant::now() + RETRY;
                }
            }
        }
    }
}

/// Subscribes one plan with a fresh secret, from the cursor kept for it.
async fn subscribe(
    client: &Client,
    receiver: &WebhookReceiver,
    plan: Plan,
    url: &str,
    shared: &Shared,
    keys: &Mutex<HashMap<String, String>>,
) -> Result<Held, String> {
    let key = plan.key();
    let secret = WebhookReceiver::generate_secret().map_err(|e| e.to_string())?;
    receiver.add_secret(&secret).map_err(|e| e.to_string())?;
    let cursor = shared.cursors.as_ref().and_then(|c| c.get(&key));
    let result = request(client, &plan, url, &secret, Some(cursor)).await?;
    receiver
        .bind(&result.id, &secret)
        .map_err(|e| e.to_string())?;
    keys.lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(result.id.clone(), key.clone());
    if result.truncated {
        let report = SubscriptionEvent::Gap {
            cursor: result.cursor.clone(),
        };
        report_to_user(&key, &report, &shared.printed);
    }
    if let (Some(file), Some(cursor)) = (&shared.cursors, &result.cursor) {
        file.set(&key, cursor);
    }
    eprintln!("mcpbus: {key}: webhook subscription {}", result.id);
    Ok(Held {
        refresh_at: refresh_at(&result),
        plan,
        secret,
    })
}

/// `events/subscribe` for `plan` (a refresh when `cursor` is `None`: the server keeps its
/// watermark).
async fn request(
    client: &Client,
    plan: &Plan,
    url: &str,
    secret: &str,
    cursor: Option<Option<String>>,
) -> Result<SubscribeEventsResult, String> {
    let mut params = json!({
        "name": plan.name,
        "delivery": {"mode": "webhook", "url": url, "secret": secret},
    });
    if let Some(arguments) = &plan.arguments {
        params["arguments"] = Value::Object(arguments.clone());
    }
    if let Some(cursor) = cursor {
        params["cursor"] = cursor.map_or(Value::Null, Value::String);
    }
    let answer = client
        .request("events/subscribe", Some(params))
        .await
        .map_err(refusal)?;
    serde_json::from_value(answer).map_err(|e| format!("unexpected events/subscribe answer: {e}"))
}

/// Half-way to the grant's end (at least a second from now); a grant without end is
/// refreshed daily anyway.
fn refresh_at(result: &SubscribeEventsResult) -> Instant {
    let left = result
        .refresh_before
        .as_deref()
        .and_then(|at| at.parse::<DateTime<Utc>>().ok())
        .and_then(|at| (at - Utc::now()).to_std().ok())
        .unwrap_or(Duration::from_secs(86_400));
    Instant::now() + (left / 2).max(Duration::from_secs(1))
}

async fn unsubscribe(client: &Client, plan: &Plan, url: &str) {
    let mut params = json!({"name": plan.name, "delivery": {"url": url}});
    if let Some(arguments) = &plan.arguments {
        params["arguments"] = Value::Object(arguments.clone());
    }
    if let Err(e) = client.request("events/unsubscribe", Some(params)).await {
        eprintln!("mcpbus: {}: events/unsubscribe failed: {e}", plan.key());
    }
}
