//! The webhook subscriptions of one server (docs/protocol.md 3.6): keyed by (principal, URL,
//! event name, arguments), held in memory with the lifetime granted, each delivered by its own
//! worker ([`super::worker`]). `events/subscribe` is an idempotent upsert: a live key is
//! refreshed (TTL granted again, secret replaced, delivery resumed), an unknown or lapsed one
//! is created after the endpoint's verification.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use mcpbus_proto::events_ext::EventOccurrence;
use mcpbus_proto::events_ext::webhook::{
    DeliveryErrorCategory, DeliveryStatus, HEADER_SUBSCRIPTION_ID, HEADER_WEBHOOK_ID,
    HEADER_WEBHOOK_SIGNATURE, HEADER_WEBHOOK_TIMESTAMP, SubscribeEventsResult,
    VerificationResponse, WebhookControl,
};
use mcpbus_proto::jsonrpc::ErrorObject;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::WebhookSetupError;
use super::config::{AllowList, InvalidOrigin, WebhookConfig};
use super::destination::{self, CallbackUrl, Refusal};
use super::sender;
use super::signing::{WebhookSecret, constant_time_eq, signature_header};
use super::tls::Tls;
use crate::events::event_types::{EventSubscription, retained_occurrence};
use crate::events::{EventHub, ReadFrom};
use crate::util::lock;

/// The webhook subscriptions of a server.
#[derive(Clone)]
pub(crate) struct Webhooks {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("subscriptions", &lock(&self.inner.subs).len())
            .finish()
    }
}

pub(super) struct Inner {
    pub(super) config: WebhookConfig,
    pub(super) allow: AllowList,
    pub(super) hub: EventHub,
    tls: Tls,
    subs: Mutex<HashMap<String, Arc<Sub>>>,
    /// Verified (principal, URL) pairs and until when.
    verified: Mutex<HashMap<(Arc<str>, String), Instant>>,
    /// Verification POSTs per host in the current minute: (minute's start, count).
    verifications: Mutex<HashMap<String, (Instant, u32)>>,
    shutdown: CancellationToken,
}

impl Inner {
    /// Where a POST for `url` to the checked `addr` goes.
    pub(super) fn target<'a>(
        &'a self,
        url: &'a CallbackUrl,
        addr: std::net::SocketAddr,
    ) -> sender::Target<'a> {
        sender::Target {
            url,
            addr,
            tls: &self.tls,
            timeout: self.config.timeout,
        }
    }

    /// Drops `sub` from the registry, if it is still the one held under its id.
    pub(super) fn forget(&self, sub: &Sub) {
        let mut subs = lock(&self.subs);
        if subs
            .get(&sub.id)
            .is_some_and(|s| std::ptr::eq(Arc::as_ptr(s), sub))
        {
            subs.remove(&sub.id);
        }
        sub.cancel.cancel();
    }
}

/// One webhook subscription.
pub(super) struct Sub {
    /// The server-derived id (`X-MCP-Subscription-Id`).
    pub(super) id: String,
    pub(super) principal: Arc<str>,
    pub(super) url: CallbackUrl,
    pub(super) name: String,
    pub(super) arguments: Option<Map<String, Value>>,
    pub(super) events: EventSubscription,
    state: Mutex<SubState>,
    /// Woken on a refresh (expiry moved, delivery resumed).
    pub(super) changed: Notify,
    /// Cancelled when the subscription ends (unsubscribed, expired, terminated, shutdown).
    pub(super) cancel: CancellationToken,
}

struct SubState {
    /// The current secret first, then earlier ones until their grace ends.
    secrets: Vec<(WebhookSecret, Option<Instant>)>,
    expires: Instant,
    refresh_before: DateTime<Utc>,
    /// Every matching event at or before it was acknowledged or abandoned.
    watermark: Arc<str>,
    active: bool,
    last_delivery_at: Option<DateTime<Utc>>,
    last_error: Option<DeliveryErrorCategory>,
    failed_since: Option<DateTime<Utc>>,
    window_start: Instant,
    window_attempts: u32,
    window_failures: u32,
}

impl Sub {
    pub(super) fn watermark(&self) -> Arc<str> {
        lock(&self.state).watermark.clone()
    }

    pub(super) fn set_watermark(&self, cursor: Arc<str>) {
        lock(&self.state).watermark = cursor;
    }

    pub(super) fn expires(&self) -> Instant {
        lock(&self.state).expires
    }

    pub(super) fn is_active(&self) -> bool {
        lock(&self.state).active
    }

    /// The secrets that sign now: the current one, and earlier ones still in their grace.
    pub(super) fn signing_secrets(&self) -> Vec<WebhookSecret> {
        let now = Instant::now();
        let mut state = lock(&self.state);
        state
            .secrets
            .retain(|(_, until)| until.is_none_or(|t| t > now));
        state.secrets.iter().map(|(s, _)| s.clone()).collect()
    }

    /// Counts one attempt (`None`: acknowledged) and suspends delivery when, within the
    /// window, enough attempts were made and 95% of them failed.
    pub(super) fn record(&self, failure: Option<DeliveryErrorCategory>, config: &WebhookConfig) {
        let now = Utc::now();
        let mut s = lock(&self.state);
        if s.window_start.elapsed() > config.suspend_window {
            s.window_start = Instant::now();
            s.window_attempts = 0;
            s.window_failures = 0;
        }
        s.window_attempts += 1;
        match failure {
            None => {
                s.last_delivery_at = Some(now);
                s.last_error = None;
                s.failed_since = None;
            }
            Some(category) => {
                s.window_failures += 1;
                s.last_error = Some(category);
                s.failed_since.get_or_insert(now);
            }
        }
        let (attempts, failures) = (u64::from(s.window_attempts), u64::from(s.window_failures));
        if s.active
            && attempts >= u64::from(config.suspend_min_attempts)
            && failures * 100 >= attempts * 95
        {
            s.active = false;
            tracing::warn!(subscription = %self.id, "webhook delivery suspended until a refresh");
        }
    }

    fn status(&self) -> DeliveryStatus {
        let s = lock(&self.state);
        DeliveryStatus {
            active: s.active,
            last_delivery_at: s.last_delivery_at.map(rfc3339),
            last_error: Some(s.last_error.clone()),
            failed_since: s.failed_since.map(rfc3339),
            throttled: None,
            retry_after_ms: None,
        }
    }
}

/// What `events/subscribe` asks for, checked by the request handler.
#[derive(Debug)]
pub(crate) struct SubscribeRequest {
    /// The authenticated principal.
    pub(crate) principal: Arc<str>,
    pub(crate) name: String,
    pub(crate) arguments: Option<Map<String, Value>>,
    /// The subscription resolved against the declared topics.
    pub(crate) events: EventSubscription,
    pub(crate) url: String,
    pub(crate) secret: WebhookSecret,
    pub(crate) cursor: Option<String>,
    /// The `maxAgeMs` floor (with a cursor).
    pub(crate) not_before: Option<DateTime<Utc>>,
    pub(crate) ttl_ms: Option<Option<u64>>,
}

/// Where a new subscription starts.
struct Start {
    watermark: Arc<str>,
    truncated: bool,
    /// Retained values, delivered first (a subscription from now).
    initial: Vec<EventOccurrence>,
}

impl Webhooks {
    /// The registry of a server whose events are `hub`'s.
    pub(crate) fn new(config: WebhookConfig, hub: EventHub) -> Result<Self, WebhookSetupError> {
        let allow = AllowList::parse(&config.allow_private)?;
        let tls = Tls::new(&config.extra_root_certificates)?;
        Ok(Webhooks {
            inner: Arc::new(Inner {
                config,
                allow,
                hub,
                tls,
                subs: Mutex::default(),
                verified: Mutex::default(),
                verifications: Mutex::default(),
                shutdown: CancellationToken::new(),
            }),
        })
    }

    /// Allows callback URLs under `origin` past the `https` and public-address rules.
    pub(crate) fn allow_origin(&self, origin: &str) -> Result<String, InvalidOrigin> {
        self.inner.allow.allow_origin(origin)
    }

    /// Webhook subscriptions held now.
    pub(crate) fn len(&self) -> usize {
        lock(&self.inner.subs).len()
    }

    /// Ends every subscription's delivery (the server is closing).
    pub(crate) fn close(&self) {
        self.inner.shutdown.cancel();
        lock(&self.inner.subs).clear();
    }

    /// `events/subscribe`: refreshes a live subscription, or verifies the endpoint and creates
    /// one.
    pub(crate) async fn subscribe(
        &self,
        req: SubscribeRequest,
    ) -> Result<SubscribeEventsResult, ErrorObject> {
        let url = CallbackUrl::parse(&req.url).map_err(ErrorObject::invalid_params)?;
        if !url.https && !url.host_allowed(&self.inner.allow) {
            return Err(ErrorObject::invalid_params(
                "delivery.url must be https (plain http only to a destination the server's \
                 webhook allow-list names)",
            ));
        }
        let id = derive_id(&req.principal, &req.url, &req.name, req.arguments.as_ref());
        if let Some(sub) = self.live(&id) {
            return Ok(self.refresh(&sub, &req));
        }
        let max = self.inner.config.max_subscriptions;
        if self.len() >= max {
            return Err(ErrorObject::resource_exhausted(
                "subscriptions",
                u64::try_from(max).ok(),
            ));
        }
        let addr = destination::resolve(&url, &self.inner.allow)
            .await
            .map_err(refusal_error)?;
        self.verify(&req, &url, addr, &id).await?;
        let start = self.start(&req).await?;
        let sub = self.new_sub(id, url, &req, start.watermark);
        {
            let mut subs = lock(&self.inner.subs);
            // A concurrent subscribe of the same key may have won: refresh that one instead.
            if let Some(existing) = subs.get(&sub.id).filter(|s| !s.cancel.is_cancelled()) {
                let existing = existing.clone();
                drop(subs);
                return Ok(self.refresh(&existing, &req));
            }
            subs.insert(sub.id.clone(), sub.clone());
        }
        tracing::info!(subscription = %sub.id, principal = %sub.principal, "webhook subscription created");
        let result = result_of(&sub, start.truncated, None);
        tokio::spawn(super::worker::run(
            self.inner.clone(),
            sub,
            start.initial,
            req.not_before,
        ));
        Ok(result)
    }

    /// `events/unsubscribe`: ends the subscription under the key at once (NotFound when none).
    pub(crate) fn unsubscribe(
        &self,
        principal: &str,
        url: &str,
        name: &str,
        arguments: Option<&Map<String, Value>>,
    ) -> Result<(), ErrorObject> {
        let id = derive_id(principal, url, name, arguments);
        let sub = self
            .live(&id)
            .ok_or_else(ErrorObject::subscription_not_found)?;
        self.inner.forget(&sub);
        tracing::info!(subscription = %id, "webhook subscription removed");
        Ok(())
    }

    /// The subscription under `id`, unless it has lapsed (then it is dropped).
    fn live(&self, id: &str) -> Option<Arc<Sub>> {
        let sub = lock(&self.inner.subs).get(id).cloned()?;
        if sub.expires() <= Instant::now() || sub.cancel.is_cancelled() {
            self.inner.forget(&sub);
            return None;
        }
        Some(sub)
    }

    fn new_sub(
        &self,
        id: String,
        url: CallbackUrl,
        req: &SubscribeRequest,
        watermark: Arc<str>,
    ) -> Arc<Sub> {
        let ttl = self.inner.config.grant(req.ttl_ms);
        Arc::new(Sub {
            id,
            principal: req.principal.clone(),
            url,
            name: req.name.clone(),
            arguments: req.arguments.clone(),
            events: req.events.clone(),
            state: Mutex::new(SubState {
                secrets: vec![(req.secret.clone(), None)],
                expires: Instant::now() + ttl,
                refresh_before: after(ttl),
                watermark,
                active: true,
                last_delivery_at: None,
                last_error: None,
                failed_since: None,
                window_start: Instant::now(),
                window_attempts: 0,
                window_failures: 0,
            }),
            changed: Notify::new(),
            cancel: self.inner.shutdown.child_token(),
        })
    }

    /// A refresh: the TTL granted again, a new secret replacing the old one (which keeps
    /// signing for the rotation grace), delivery resumed. The cursor asked for is ignored: the
    /// subscription is live, so it is at or behind where delivery stands.
    fn refresh(&self, sub: &Arc<Sub>, req: &SubscribeRequest) -> SubscribeEventsResult {
        let status = sub.status();
        let ttl = self.inner.config.grant(req.ttl_ms);
        {
            let mut s = lock(&sub.state);
            if s.secrets
                .first()
                .is_none_or(|(current, _)| *current != req.secret)
            {
                let grace = Instant::now() + self.inner.config.rotation_grace;
                for (_, until) in &mut s.secrets {
                    let end = until.map_or(grace, |t| t.min(grace));
                    *until = Some(end);
                }
                s.secrets.insert(0, (req.secret.clone(), None));
            }
            s.expires = Instant::now() + ttl;
            s.refresh_before = after(ttl);
            if !s.active {
                s.active = true;
                s.window_start = Instant::now();
                s.window_attempts = 0;
                s.window_failures = 0;
            }
        }
        sub.changed.notify_one();
        result_of(sub, false, Some(status))
    }

    /// Where a new subscription starts: from now (the log's head, the retained values first
    /// unless the arguments say otherwise), or from the client's cursor (and `maxAgeMs`).
    async fn start(&self, req: &SubscribeRequest) -> Result<Start, ErrorObject> {
        let log = self.inner.hub.log();
        let backend = |e| ErrorObject::internal(format_args!("the event log: {e}"));
        let Some(cursor) = req.cursor.as_deref() else {
            let head = log.head().await.map_err(backend)?;
            let mut initial = Vec::new();
            if req.events.retained {
                let values = self
                    .inner
                    .hub
                    .retained_values(&req.events.pattern)
                    .await
                    .map_err(backend)?;
                initial.extend(
                    values
                        .iter()
                        .filter_map(|v| retained_occurrence(&req.events.name, v, Some(&head))),
                );
            }
            return Ok(Start {
                watermark: head,
                truncated: false,
                initial,
            });
        };
        let from = ReadFrom {
            cursor,
            not_before: req.not_before,
        };
        let page = log
            .read_after(from, 1)
            .await
            .map_err(crate::server::requests::events_ext::read_error)?;
        Ok(Start {
            watermark: page.start,
            truncated: page.truncated,
            initial: Vec::new(),
        })
    }

    /// Endpoint verification (docs/protocol.md 3.6.4): unless this principal verified this URL
    /// recently, a signed `verification` envelope must come back as `{"challenge": nonce}` in a
    /// 2xx answer.
    async fn verify(
        &self,
        req: &SubscribeRequest,
        url: &CallbackUrl,
        addr: std::net::SocketAddr,
        id: &str,
    ) -> Result<(), ErrorObject> {
        let key = (req.principal.clone(), req.url.clone());
        let now = Instant::now();
        {
            let mut verified = lock(&self.inner.verified);
            verified.retain(|_, until| *until > now);
            if verified.contains_key(&key) {
                return Ok(());
            }
        }
        self.count_verification(&url.host)?;
        let challenge = crate::util::random_hex(16);
        let body = serde_json::to_vec(&WebhookControl::Verification {
            challenge: challenge.clone(),
        })
        .unwrap_or_default();
        let webhook_id = control_id("verification");
        let headers = signed_headers(id, &webhook_id, [&req.secret], &body);
        let answer = sender::post(self.inner.target(url, addr), &headers, Bytes::from(body))
            .await
            .map_err(ErrorObject::callback_endpoint_error)?;
        if !(200..300).contains(&answer.status) {
            return Err(ErrorObject::callback_endpoint_error(
                sender::status_category(answer.status),
            ));
        }
        let echoed = answer
            .body
            .and_then(|b| serde_json::from_slice::<VerificationResponse>(&b).ok())
            .is_some_and(|r| constant_time_eq(r.challenge.as_bytes(), challenge.as_bytes()));
        if !echoed {
            return Err(ErrorObject::callback_endpoint_error(
                DeliveryErrorCategory::ChallengeFailed,
            ));
        }
        let until = Instant::now() + self.inner.config.verification_ttl;
        lock(&self.inner.verified).insert(key, until);
        Ok(())
    }
}

impl Webhooks {
    /// Counts a verification POST to `host`; ResourceExhausted past the limit per minute.
    fn count_verification(&self, host: &str) -> Result<(), ErrorObject> {
        const MINUTE: std::time::Duration = std::time::Duration::from_secs(60);
        let max = self.inner.config.max_verifications_per_host;
        let now = Instant::now();
        let mut counts = lock(&self.inner.verifications);
        counts.retain(|_, (start, _)| now.duration_since(*start) < MINUTE);
        let (_, count) = counts.entry(host.to_owned()).or_insert((now, 0));
        if *count >= max {
            tracing::warn!(host, "webhook verifications to this host are rate-limited");
            return Err(ErrorObject::resource_exhausted(
                "verifications",
                Some(u64::from(max)),
            ));
        }
        *count += 1;
        Ok(())
    }
}

/// The headers of one attempt: the Standard Webhooks three, signed now, and the subscription.
pub(super) fn signed_headers<'a>(
    subscription_id: &str,
    webhook_id: &str,
    secrets: impl IntoIterator<Item = &'a WebhookSecret>,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let timestamp = Utc::now().timestamp();
    vec![
        (HEADER_WEBHOOK_ID, webhook_id.to_owned()),
        (HEADER_WEBHOOK_TIMESTAMP, timestamp.to_string()),
        (
            HEADER_WEBHOOK_SIGNATURE,
            signature_header(secrets, webhook_id, timestamp, body),
        ),
        (HEADER_SUBSCRIPTION_ID, subscription_id.to_owned()),
    ]
}

/// `msg_<type>_<random>`, the `webhook-id` of a control envelope.
pub(super) fn control_id(kind: &str) -> String {
    format!("msg_{kind}_{}", crate::util::random_hex(12))
}

fn refusal_error(refusal: Refusal) -> ErrorObject {
    match refusal {
        Refusal::NotPublic(_) => ErrorObject::invalid_params(refusal.to_string()),
        Refusal::Unresolvable => {
            ErrorObject::callback_endpoint_error(DeliveryErrorCategory::ConnectionRefused)
        }
    }
}

fn result_of(sub: &Sub, truncated: bool, status: Option<DeliveryStatus>) -> SubscribeEventsResult {
    let s = lock(&sub.state);
    SubscribeEventsResult {
        id: sub.id.clone(),
        refresh_before: Some(rfc3339(s.refresh_before)),
        cursor: Some(s.watermark.to_string()),
        truncated,
        delivery_status: status,
        meta: None,
    }
}

fn after(ttl: std::time::Duration) -> DateTime<Utc> {
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    Utc::now()
        .checked_add_signed(ttl)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The subscription id: `sub_` and 128 bits of a SHA-256 over the key in canonical JSON
/// (object members sorted, absent arguments as `{}`), so the same key gives the same id on
/// every replica and across restarts.
pub(crate) fn derive_id(
    principal: &str,
    url: &str,
    name: &str,
    arguments: Option<&Map<String, Value>>,
) -> String {
    let arguments = Value::Object(arguments.cloned().unwrap_or_default());
    let key = Value::Array(vec![
        Value::from(principal),
        Value::from(url),
        Value::from(name),
        arguments,
    ]);
    let mut canonical = String::new();
    write_canonical(&key, &mut canonical);
    let digest = Sha256::digest(canonical.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("sub_{hex}")
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(key.as_str()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_depend_on_the_whole_key_and_not_on_member_order() {
        let a = json!({"x": 1, "y": [1, {"b": 2, "a": 1}]});
        let b = json!({"y": [1, {"a": 1, "b": 2}], "x": 1});
        let id = derive_id("alice", "https://h/x", "n", a.as_object());
        assert_eq!(id, derive_id("alice", "https://h/x", "n", b.as_object()));
        assert!(id.starts_with("sub_") && id.len() == 36);
        assert_ne!(id, derive_id("bob", "https://h/x", "n", a.as_object()));
        assert_ne!(id, derive_id("alice", "https://h/y", "n", a.as_object()));
        assert_eq!(
            derive_id("alice", "u", "n", None),
            derive_id("alice", "u", "n", json!({}).as_object())
        );
    }
}
