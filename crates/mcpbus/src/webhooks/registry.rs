//! The webhook subscriptions of one server (docs/protocol.md 3.6): keyed by (principal, URL,
//! event name, arguments), kept in the configured [`WebhookStore`] with the lifetime granted,
//! each delivered by one replica at a time under a lease ([`super::leases`]), by its own worker
//! ([`super::worker`]). `events/subscribe` is an idempotent upsert: a live key is refreshed
//! (TTL granted again, secret replaced, delivery resumed), an unknown or lapsed one is created
//! after the endpoint's verification, which this replica makes itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use mcpbus_proto::events_ext::EventOccurrence;
use mcpbus_proto::events_ext::webhook::{
    DeliveryErrorCategory, DeliveryStatus, HEADER_SUBSCRIPTION_ID, HEADER_WEBHOOK_ID,
    HEADER_WEBHOOK_SIGNATURE, HEADER_WEBHOOK_TIMESTAMP, SubscribeEventsResult,
    VerificationResponse, WebhookControl,
};
use mcpbus_proto::jsonrpc::ErrorObject;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::WebhookSetupError;
use super::config::{AllowList, InvalidOrigin, WebhookConfig};
use super::destination::{self, CallbackUrl, Refusal};
use super::sender;
use super::signing::{WebhookSecret, constant_time_eq, signature_header};
use super::store::{
    DeliveryState, StoredSecret, StoredWebhook, WebhookRecord, WebhookStore, now_ms,
};
use super::sub::{Sub, rfc3339_ms, status_of};
use super::tls::Tls;
use crate::error::BackendError;
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
            .field("delivering", &lock(&self.inner.subs).len())
            .finish()
    }
}

pub(super) struct Inner {
    pub(super) config: WebhookConfig,
    pub(super) allow: AllowList,
    pub(super) hub: EventHub,
    tls: Tls,
    pub(super) store: Arc<dyn WebhookStore>,
    /// This replica as a lease holder: its process id and a random tag.
    holder: String,
    /// Numbers this replica's leases, so that each delivery has a lease token of its own.
    leases: AtomicU64,
    /// The subscriptions this replica delivers now.
    subs: Mutex<HashMap<String, Arc<Sub>>>,
    /// Verified (principal, URL) pairs and until when.
    verified: Mutex<HashMap<(Arc<str>, String), Instant>>,
    /// Verification POSTs per host in the current minute: (minute's start, count).
    verifications: Mutex<HashMap<String, (Instant, u32)>>,
    pub(super) shutdown: CancellationToken,
    /// Whether the lease loop runs.
    claiming: AtomicBool,
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

    /// A fresh lease token of this replica (`PID-TAG/N`).
    pub(super) fn new_token(&self) -> String {
        let n = self.leases.fetch_add(1, Ordering::Relaxed);
        format!("{}/{n}", self.holder)
    }

    /// Until when a lease renewed by a request sent at `sent` may be relied on: the lease's
    /// time to live less a fifth, for clocks that do not run quite alike.
    pub(super) fn lease_deadline(&self, sent: Instant) -> Instant {
        sent + self.config.lease_ttl * 4 / 5
    }

    /// The subscriptions delivered here.
    pub(super) fn held(&self) -> Vec<Arc<Sub>> {
        lock(&self.subs).values().cloned().collect()
    }

    /// Whether `id` is delivered here.
    pub(super) fn holds(&self, id: &str) -> bool {
        lock(&self.subs).contains_key(id)
    }

    /// The subscription `id` if it is delivered here.
    fn local(&self, id: &str) -> Option<Arc<Sub>> {
        lock(&self.subs)
            .get(id)
            .filter(|s| !s.cancel.is_cancelled())
            .cloned()
    }

    /// Drops `sub` from those delivered here, if it is still the one held under its id.
    pub(super) fn forget_local(&self, sub: &Sub) {
        let mut subs = lock(&self.subs);
        if subs
            .get(&sub.id)
            .is_some_and(|s| std::ptr::eq(Arc::as_ptr(s), sub))
        {
            subs.remove(&sub.id);
        }
    }

    /// Ends the subscription for good (`410`, terminated): it stops here and leaves the store.
    pub(super) async fn end(&self, sub: &Sub) {
        sub.end();
        self.forget_local(sub);
        if let Err(e) = self.store.delete(&sub.id).await {
            tracing::warn!(subscription = %sub.id, "could not delete the webhook subscription: {e}");
        }
    }

    /// After a worker stopped: unless the subscription ended, its lease is given up, so another
    /// replica (or this one, later) takes its delivery over at once.
    pub(super) async fn finish(&self, sub: &Sub) {
        self.forget_local(sub);
        if !sub.has_ended()
            && let Err(e) = self.store.release(&sub.id, &sub.token).await
        {
            tracing::debug!(subscription = %sub.id, "could not release a webhook lease: {e}");
        }
    }

    /// The subscription a stored record names, resolved against the declared topics and the
    /// topic permissions as its principal last subscribed (an authorizer or a rule may refuse
    /// it now).
    pub(super) fn subscription_of(
        &self,
        record: &WebhookRecord,
    ) -> Result<EventSubscription, ErrorObject> {
        let principal = crate::server::auth::topic_principal(&Arc::new(record.owner()));
        self.hub.declared().subscribe_event(
            &record.name,
            record.arguments.as_ref(),
            mcpbus_proto::events_ext::DeliveryMode::Webhook,
            Some(&principal),
        )
    }

    /// Starts delivering `sub` here, `initial` (retained values) first.
    pub(super) fn deliver(
        self: &Arc<Self>,
        sub: Arc<Sub>,
        initial: Vec<EventOccurrence>,
        not_before: Option<chrono::DateTime<Utc>>,
    ) {
        lock(&self.subs).insert(sub.id.clone(), sub.clone());
        tokio::spawn(super::worker::run(self.clone(), sub, initial, not_before));
    }

    /// Starts the lease loop, once, when a runtime is there to run it.
    fn start_claiming(self: &Arc<Self>) {
        if tokio::runtime::Handle::try_current().is_ok()
            && !self.claiming.swap(true, Ordering::SeqCst)
        {
            tokio::spawn(super::leases::run(
                Arc::downgrade(self),
                self.shutdown.clone(),
            ));
        }
    }
}

/// What `events/subscribe` asks for, checked by the request handler.
#[derive(Debug)]
pub(crate) struct SubscribeRequest {
    /// The authenticated principal (its identity's subject).
    pub(crate) principal: Arc<str>,
    /// Everything its credential proved (docs/auth.md).
    pub(crate) identity: Arc<crate::server::Identity>,
    pub(crate) name: String,
    pub(crate) arguments: Option<Map<String, Value>>,
    /// The subscription resolved against the declared topics.
    pub(crate) events: EventSubscription,
    pub(crate) url: String,
    pub(crate) secret: WebhookSecret,
    pub(crate) cursor: Option<String>,
    /// The `maxAgeMs` floor (with a cursor).
    pub(crate) not_before: Option<chrono::DateTime<Utc>>,
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
    pub(crate) fn new(mut config: WebhookConfig, hub: EventHub) -> Result<Self, WebhookSetupError> {
        config.lease_ttl = config.lease_ttl.max(Duration::from_millis(100));
        let allow = AllowList::parse(&config.allow_private)?;
        let tls = Tls::new(&config.extra_root_certificates)?;
        let inner = Arc::new(Inner {
            store: config.store.clone(),
            config,
            allow,
            hub,
            tls,
            holder: format!("{}-{}", std::process::id(), crate::util::random_hex(4)),
            leases: AtomicU64::new(0),
            subs: Mutex::default(),
            verified: Mutex::default(),
            verifications: Mutex::default(),
            shutdown: CancellationToken::new(),
            claiming: AtomicBool::new(false),
        });
        // Subscriptions already stored (made before a restart, or on another replica) are
        // taken up from the start.
        inner.start_claiming();
        Ok(Webhooks { inner })
    }

    /// Allows callback URLs under `origin` past the `https` and public-address rules.
    pub(crate) fn allow_origin(&self, origin: &str) -> Result<String, InvalidOrigin> {
        self.inner.allow.allow_origin(origin)
    }

    /// Webhook subscriptions this replica delivers now.
    pub(crate) fn len(&self) -> usize {
        lock(&self.inner.subs).len()
    }

    /// Ends every delivery of this replica (the server is closing); their leases are given up,
    /// so a shared store's subscriptions move to other replicas.
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
        self.inner.start_claiming();
        let url = CallbackUrl::parse(&req.url).map_err(ErrorObject::invalid_params)?;
        if !url.https && !url.host_allowed(&self.inner.allow) {
            return Err(ErrorObject::invalid_params(
                "delivery.url must be https (plain http only to a destination the server's \
                 webhook allow-list names)",
            ));
        }
        let id = derive_id(&req.principal, &req.url, &req.name, req.arguments.as_ref());
        if let Some(result) = self.refresh(&id, &req).await? {
            return Ok(result);
        }
        let max = self.inner.config.max_subscriptions;
        if self.inner.store.ids().await.map_err(store_error)?.len() >= max {
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
        let stored = self.new_stored(id, &req, &start.watermark);
        let token = self.inner.new_token();
        let sent = Instant::now();
        let created = (self.inner.store)
            .create(&stored, &token, self.inner.config.lease_ttl)
            .await
            .map_err(store_error)?;
        if !created {
            // A concurrent subscribe of the same key won: refresh that one instead.
            return self.refresh(&stored.record.id, &req).await?.ok_or_else(|| {
                ErrorObject::internal("the subscription ended while it was made; subscribe again")
            });
        }
        let result = result_of(&stored, start.truncated, None);
        let cancel = self.inner.shutdown.child_token();
        let deadline = self.inner.lease_deadline(sent);
        let sub = Sub::new(stored, url, req.events.clone(), token, cancel, deadline);
        tracing::info!(subscription = %sub.id, principal = %sub.principal, "webhook subscription created");
        self.inner
            .deliver(Arc::new(sub), start.initial, req.not_before);
        Ok(result)
    }

    /// `events/unsubscribe`: ends the subscription under the key at once (NotFound when none),
    /// on whichever replica delivers it (that one sees it gone at its next write or lease
    /// renewal).
    pub(crate) async fn unsubscribe(
        &self,
        principal: &str,
        url: &str,
        name: &str,
        arguments: Option<&Map<String, Value>>,
    ) -> Result<(), ErrorObject> {
        let id = derive_id(principal, url, name, arguments);
        let store = &self.inner.store;
        if store.load(&id).await.map_err(store_error)?.is_none()
            || !store.delete(&id).await.map_err(store_error)?
        {
            return Err(ErrorObject::subscription_not_found());
        }
        if let Some(sub) = self.inner.local(&id) {
            sub.end();
            self.inner.forget_local(&sub);
        }
        tracing::info!(subscription = %id, "webhook subscription removed");
        Ok(())
    }

    fn new_stored(&self, id: String, req: &SubscribeRequest, watermark: &str) -> StoredWebhook {
        let ttl = self.inner.config.grant(req.ttl_ms);
        StoredWebhook::new(
            WebhookRecord {
                id,
                principal: req.principal.to_string(),
                url: req.url.clone(),
                name: req.name.clone(),
                arguments: req.arguments.clone(),
                secrets: vec![StoredSecret::new(req.secret.to_whsec(), None)],
                expires_at_ms: after_ms(ttl),
                resumes: 0,
                identity: Some((*req.identity).clone()),
            },
            DeliveryState::new(watermark.to_owned()),
        )
    }

    /// A refresh of the live subscription `id`, if there is one: the TTL granted again, a new
    /// secret replacing the old one (which keeps signing for the rotation grace), delivery
    /// resumed. The cursor asked for is ignored: the subscription is live, so it is at or behind
    /// where delivery stands.
    async fn refresh(
        &self,
        id: &str,
        req: &SubscribeRequest,
    ) -> Result<Option<SubscribeEventsResult>, ErrorObject> {
        let Some(mut stored) = self.inner.store.load(id).await.map_err(store_error)? else {
            return Ok(None);
        };
        // The delivering replica's own view is the freshest, when it is this one.
        let local = self.inner.local(id);
        if let Some(sub) = &local {
            stored.state = sub.delivery_state();
        }
        let status = status_of(&stored.state);
        let record = &mut stored.record;
        let secret = req.secret.to_whsec();
        let now = now_ms();
        if record.secrets.first().is_none_or(|s| s.secret != secret) {
            let grace = now.saturating_add(duration_ms(self.inner.config.rotation_grace));
            for old in &mut record.secrets {
                old.until_ms = Some(old.until_ms.map_or(grace, |t| t.min(grace)));
            }
            record
                .secrets
                .retain(|s| s.until_ms.is_none_or(|t| t > now));
            record.secrets.insert(0, StoredSecret::new(secret, None));
        }
        record.expires_at_ms = after_ms(self.inner.config.grant(req.ttl_ms));
        record.resumes += 1;
        // The latest credential's view (its scopes, claims) is the one delivery goes on with.
        record.identity = Some((*req.identity).clone());
        if !self.inner.store.update(record).await.map_err(store_error)? {
            return Ok(None);
        }
        if let Some(sub) = local {
            sub.apply(record);
        }
        Ok(Some(result_of(&stored, false, Some(status))))
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

fn result_of(
    stored: &StoredWebhook,
    truncated: bool,
    status: Option<DeliveryStatus>,
) -> SubscribeEventsResult {
    SubscribeEventsResult {
        id: stored.record.id.clone(),
        refresh_before: Some(rfc3339_ms(stored.record.expires_at_ms)),
        cursor: Some(stored.state.watermark.clone()),
        truncated,
        delivery_status: status,
        meta: None,
    }
}

/// `ttl` from now, in milliseconds since the Unix epoch.
fn after_ms(ttl: Duration) -> u64 {
    now_ms().saturating_add(duration_ms(ttl))
}

fn duration_ms(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

/// A failure of the subscription store, as the client hears of it.
pub(super) fn store_error(e: BackendError) -> ErrorObject {
    ErrorObject::internal(format_args!("the webhook subscription store: {e}"))
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
