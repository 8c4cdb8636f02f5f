//! A receiver of SEP-3415 webhook deliveries: the callback URL's side of `events/subscribe`
//! with a `delivery`, as an axum handler.
//!
//! Every POST is checked before anything is done with it, as the SEP's Standard Webhooks
//! profile asks of a receiver: the `webhook-signature` (`v1,` HMAC-SHA256 of
//! `webhook-id.webhook-timestamp.body`, over the raw body, any of several space-separated
//! signatures) must verify under a secret of the subscription named by `X-MCP-Subscription-Id`,
//! and `webhook-timestamp` must be within 5 minutes of now. Then:
//!
//! - a `verification` envelope is answered with its challenge (`{"challenge": ...}`); on a first
//!   subscribe it names an id the receiver was not told yet, so the secrets registered without
//!   an id are tried, and the one that verifies is bound to that id;
//! - an event goes to the handler as a [`SubscriptionEvent::Event`] (the same `EventParams` a
//!   subscription's handler receives, its cursor in `_meta`), once: a delivery retried or sent
//!   twice (same `eventId`, or same `webhook-id` for an envelope) is acknowledged and dropped;
//! - a `gap` envelope is a [`SubscriptionEvent::Gap`], a `terminated` one a
//!   [`SubscriptionEvent::Terminated`].
//!
//! Answers: `200` once handled (or a duplicate), `400` for a malformed request or a stale
//! timestamp, `401` for a signature that does not verify under the subscription's secrets, `503`
//! (retryable) for a subscription id no registered secret verifies yet (the SEP's "not yet told
//! to route" case; the server retries later).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http::{HeaderMap, StatusCode};
use mcpbus_proto::events_ext::webhook::{
    HEADER_SUBSCRIPTION_ID, HEADER_WEBHOOK_ID, HEADER_WEBHOOK_SIGNATURE, HEADER_WEBHOOK_TIMESTAMP,
    SECRET_PREFIX, VerificationResponse, WebhookBody, WebhookControl,
};
use sha2::Sha256;

use super::subscribe::{RecentIds, SubscriptionEvent, event_params};
use crate::error::{Error, Result};
use crate::util::lock;

type HmacSha256 = Hmac<Sha256>;

/// How far a delivery's `webhook-timestamp` may be from now (the SEP's 5 minutes).
pub const TIMESTAMP_TOLERANCE: Duration = Duration::from_secs(300);

/// Receives what a [`WebhookReceiver`] accepted: the subscription id (`X-MCP-Subscription-Id`)
/// and the event, gap or end.
pub type WebhookHandler = Arc<dyn Fn(&str, SubscriptionEvent) + Send + Sync>;

/// A secret, decoded.
#[derive(Clone, PartialEq, Eq)]
struct Secret(Vec<u8>);

impl Secret {
    /// `whsec_` followed by the base64 of 24 to 64 bytes, as SEP-3415 requires.
    fn parse(text: &str) -> Result<Secret> {
        let bad = |why: &str| Error::Protocol(format!("invalid webhook secret: {why}"));
        let encoded = text
            .strip_prefix(SECRET_PREFIX)
            .ok_or_else(|| bad("it must start with whsec_"))?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| bad("what follows whsec_ is not base64"))?;
        if !(24..=64).contains(&bytes.len()) {
            return Err(bad("it must hold 24 to 64 bytes"));
        }
        Ok(Secret(bytes))
    }

    /// Whether one of the `v1,` signatures of `header` is this secret's over `signed`.
    fn verifies(&self, header: &str, signed: &[u8]) -> bool {
        header.split(' ').any(|entry| {
            let Some(encoded) = entry.strip_prefix("v1,") else {
                return false;
            };
            let Ok(signature) = STANDARD.decode(encoded) else {
                return false;
            };
            let Ok(mut mac) = HmacSha256::new_from_slice(&self.0) else {
                return false;
            };
            mac.update(signed);
            // Constant-time comparison.
            mac.verify_slice(&signature).is_ok()
        })
    }
}

/// The secrets known, by subscription id, and those not bound to one yet.
#[derive(Default)]
struct Secrets {
    bound: HashMap<String, Vec<Secret>>,
    unbound: Vec<Secret>,
}

struct Inner {
    handler: WebhookHandler,
    secrets: Mutex<Secrets>,
    seen: Mutex<RecentIds>,
}

/// The receiving end of SEP-3415 webhook deliveries (see the module's documentation).
/// Clonable: every clone shares the secrets and the de-duplication.
///
/// ```no_run
/// use mcpbus::client::{SubscriptionEvent, WebhookReceiver};
///
/// # async fn run() -> mcpbus::Result<()> {
/// let receiver = WebhookReceiver::new(|subscription, event| {
///     if let SubscriptionEvent::Event(e) = event {
///         println!("{subscription}: {} {}", e.topic, e.payload);
///     }
/// });
/// // A fresh secret for each subscription, registered before events/subscribe sends it.
/// let secret = WebhookReceiver::generate_secret()?;
/// receiver.add_secret(&secret)?;
/// let app = receiver.router("/hooks");
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9000").await?;
/// axum::serve(listener, app).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct WebhookReceiver {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for WebhookReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secrets = lock(&self.inner.secrets);
        f.debug_struct("WebhookReceiver")
            .field("subscriptions", &secrets.bound.len())
            .field("unbound_secrets", &secrets.unbound.len())
            .finish()
    }
}

impl WebhookReceiver {
    /// A receiver handing what it accepts to `handler`.
    pub fn new<F>(handler: F) -> Self
    where
        F: Fn(&str, SubscriptionEvent) + Send + Sync + 'static,
    {
        WebhookReceiver {
            inner: Arc::new(Inner {
                handler: Arc::new(handler),
                secrets: Mutex::new(Secrets::default()),
                seen: Mutex::new(RecentIds::default()),
            }),
        }
    }

    /// A new secret: `whsec_` and the base64 of 32 bytes from the OS's random source (SEP-3415:
    /// SDKs generate it; hand-picked values are discouraged). Fails only if the OS has no
    /// random source to offer: a guessable secret would be worse than none.
    pub fn generate_secret() -> Result<String> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| Error::Protocol(format!("no random source for a webhook secret: {e}")))?;
        Ok(format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes)))
    }

    /// Registers a secret not bound to a subscription yet (before `events/subscribe` sends
    /// it): the first delivery that verifies under it binds it to its subscription id.
    pub fn add_secret(&self, secret: &str) -> Result<()> {
        let secret = Secret::parse(secret)?;
        let mut secrets = lock(&self.inner.secrets);
        if !secrets.unbound.contains(&secret) {
            secrets.unbound.push(secret);
        }
        Ok(())
    }

    /// Binds a secret to subscription `id` (the `id` of the `events/subscribe` result); a
    /// second one for the same id is how a rotation is received (both verify meanwhile).
    pub fn bind(&self, id: &str, secret: &str) -> Result<()> {
        let secret = Secret::parse(secret)?;
        let mut secrets = lock(&self.inner.secrets);
        secrets.unbound.retain(|s| *s != secret);
        let bound = secrets.bound.entry(id.to_owned()).or_default();
        if !bound.contains(&secret) {
            bound.push(secret);
        }
        Ok(())
    }

    /// Forgets subscription `id` and its secrets (after `events/unsubscribe`).
    pub fn remove(&self, id: &str) {
        lock(&self.inner.secrets).bound.remove(id);
    }

    /// An axum router that receives deliveries POSTed to `path`.
    pub fn router(&self, path: &str) -> axum::Router {
        let receiver = self.clone();
        axum::Router::new().route(
            path,
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let receiver = receiver.clone();
                async move { receiver.receive(&headers, &body) }
            }),
        )
    }

    /// Handles one delivery, given its headers and raw body (before any parsing: the
    /// signature covers the bytes as received); the answer to send back.
    pub fn receive(&self, headers: &HeaderMap, body: &[u8]) -> http::Response<String> {
        let (status, content_type, body) = match self.check(headers, body) {
            Ok(answer) if answer.is_empty() => (StatusCode::OK, "text/plain", answer),
            Ok(answer) => (StatusCode::OK, "application/json", answer),
            Err((status, why)) => {
                tracing::debug!(%status, why, "webhook delivery refused");
                (status, "text/plain", why)
            }
        };
        let mut response = http::Response::new(body);
        *response.status_mut() = status;
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(content_type),
        );
        response
    }

    fn check(&self, headers: &HeaderMap, body: &[u8]) -> std::result::Result<String, Refusal> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .ok_or((StatusCode::BAD_REQUEST, format!("missing header {name}")))
        };
        let webhook_id = header(HEADER_WEBHOOK_ID)?;
        let timestamp = header(HEADER_WEBHOOK_TIMESTAMP)?;
        let signatures = header(HEADER_WEBHOOK_SIGNATURE)?;
        let subscription = header(HEADER_SUBSCRIPTION_ID)?;
        fresh(timestamp)?;
        let mut signed = format!("{webhook_id}.{timestamp}.").into_bytes();
        signed.extend_from_slice(body);
        self.verify(subscription, signatures, &signed)?;
        let parsed: WebhookBody = serde_json::from_slice(body)
            .map_err(|e| (StatusCode::BAD_REQUEST, format!("not a webhook body: {e}")))?;
        let (dedup_key, report) = match parsed {
            WebhookBody::Control(WebhookControl::Verification { challenge }) => {
                let answer = VerificationResponse { challenge };
                return Ok(serde_json::to_string(&answer).unwrap_or_default());
            }
            WebhookBody::Control(WebhookControl::Gap { cursor }) => {
                (webhook_id.to_owned(), SubscriptionEvent::Gap { cursor })
            }
            WebhookBody::Control(WebhookControl::Terminated { error }) => {
                (webhook_id.to_owned(), SubscriptionEvent::Terminated(error))
            }
            WebhookBody::Event(occurrence) => {
                let event = event_params(&occurrence, occurrence.cursor());
                (occurrence.event_id, SubscriptionEvent::Event(event))
            }
        };
        // Scoped by subscription: one event delivered to two subscriptions is two deliveries.
        if lock(&self.inner.seen).insert(&format!("{subscription}\n{dedup_key}")) {
            (self.inner.handler)(subscription, report);
        } else {
            tracing::debug!(
                subscription,
                id = dedup_key,
                "dropping a delivery received twice"
            );
        }
        Ok(String::new())
    }

    /// Verifies the signature under the subscription's secrets, else the unbound ones (binding
    /// the one that verifies).
    fn verify(
        &self,
        id: &str,
        signatures: &str,
        signed: &[u8],
    ) -> std::result::Result<(), Refusal> {
        let mut secrets = lock(&self.inner.secrets);
        let bound = secrets.bound.get(id);
        if bound.is_some_and(|b| b.iter().any(|s| s.verifies(signatures, signed))) {
            return Ok(());
        }
        if let Some(i) = secrets
            .unbound
            .iter()
            .position(|s| s.verifies(signatures, signed))
        {
            let secret = secrets.unbound.remove(i);
            secrets.bound.entry(id.to_owned()).or_default().push(secret);
            return Ok(());
        }
        if bound.is_some() {
            Err((
                StatusCode::UNAUTHORIZED,
                "the signature does not verify".into(),
            ))
        } else {
            Err((
                StatusCode::SERVICE_UNAVAILABLE,
                format!("subscription {id} is not known here (yet)"),
            ))
        }
    }
}

/// Why a delivery is refused: the status, and a short reason (never an echo of the body).
type Refusal = (StatusCode, String);

/// Whether a `webhook-timestamp` is within [`TIMESTAMP_TOLERANCE`] of now.
fn fresh(timestamp: &str) -> std::result::Result<(), Refusal> {
    let stale = || {
        (
            StatusCode::BAD_REQUEST,
            "webhook-timestamp is not within 5 minutes of now".to_owned(),
        )
    };
    let at: u64 = timestamp.parse().map_err(|_| stale())?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if now.abs_diff(at) > TIMESTAMP_TOLERANCE.as_secs() {
        return Err(stale());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_checked_and_generated_well_formed() {
        assert!(Secret::parse("nope").is_err());
        assert!(Secret::parse("whsec_!!").is_err());
        assert!(Secret::parse(&format!("whsec_{}", STANDARD.encode([1u8; 8]))).is_err());
        let generated = WebhookReceiver::generate_secret().ok();
        let parsed = generated.as_deref().map(Secret::parse);
        assert!(parsed.is_some_and(|s| s.is_ok_and(|s| s.0.len() == 32)));
        assert_ne!(generated, WebhookReceiver::generate_secret().ok());
    }

    #[test]
    fn the_standard_webhooks_example_verifies() {
        // The example of the Standard Webhooks specification, which SEP-3415 profiles.
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").ok();
        let signed = br#"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}"#;
        let header = "v1a,ignored v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert!(secret.as_ref().is_some_and(|s| s.verifies(header, signed)));
        assert!(secret.is_some_and(|s| !s.verifies(header, b"msg.1.{}")));
    }

    #[test]
    fn timestamps_older_or_newer_than_five_minutes_are_stale() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        assert!(fresh(&now.to_string()).is_ok());
        assert!(fresh(&(now - 301).to_string()).is_err());
        assert!(fresh(&(now + 301).to_string()).is_err());
        assert!(fresh("soon").is_err());
    }
}
