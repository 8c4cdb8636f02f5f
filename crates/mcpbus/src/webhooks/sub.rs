//! One webhook subscription as the replica delivering it holds it: the stored record's copy
//! (secrets, lifetime), the delivery state it writes back to the store, and its lease.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use mcpbus_proto::events_ext::webhook::{DeliveryErrorCategory, DeliveryStatus};
use serde_json::{Map, Value};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::WebhookConfig;
use super::destination::CallbackUrl;
use super::signing::WebhookSecret;
use super::store::{DeliveryState, StoredWebhook, WebhookRecord, now_ms};
use crate::events::event_types::EventSubscription;
use crate::server::Identity;
use crate::util::lock;

/// One webhook subscription delivered by this replica.
pub(super) struct Sub {
    /// The server-derived id (`X-MCP-Subscription-Id`).
    pub(super) id: String,
    pub(super) principal: Arc<str>,
    pub(super) url: CallbackUrl,
    pub(super) name: String,
    pub(super) arguments: Option<Map<String, Value>>,
    pub(super) events: EventSubscription,
    /// This delivery's lease token (the holder's name in the store).
    pub(super) token: String,
    state: Mutex<SubState>,
    /// Woken on a refresh (expiry moved, delivery resumed).
    pub(super) changed: Notify,
    /// Cancelled when delivery here stops (the subscription ended, the lease was lost, the
    /// server is closing).
    pub(super) cancel: CancellationToken,
    /// Set when the subscription itself ended (unsubscribed, `410`, terminated): it is deleted
    /// from the store rather than handed to another replica.
    ended: AtomicBool,
}

struct SubState {
    /// The current secret first, then earlier ones until their grace ends (ms since the epoch).
    secrets: Vec<(WebhookSecret, Option<u64>)>,
    expires_at_ms: u64,
    delivery: DeliveryState,
    window_start: Instant,
    window_attempts: u32,
    window_failures: u32,
    /// Until when this replica may deliver: its last lease renewal, less a margin.
    lease_until: Instant,
    /// The principal as it last subscribed, for the topic permissions.
    identity: Arc<Identity>,
}

impl Sub {
    /// The subscription `stored` (unreadable secrets dropped), delivered here under the lease
    /// `token`, valid until `lease_until`.
    pub(super) fn new(
        stored: StoredWebhook,
        url: CallbackUrl,
        events: EventSubscription,
        token: String,
        cancel: CancellationToken,
        lease_until: Instant,
    ) -> Self {
        let StoredWebhook { record, state } = stored;
        let secrets = parse_secrets(&record);
        let identity = Arc::new(record.owner());
        Sub {
            id: record.id,
            principal: record.principal.into(),
            url,
            name: record.name,
            arguments: record.arguments,
            events,
            token,
            state: Mutex::new(SubState {
                secrets,
                expires_at_ms: record.expires_at_ms,
                delivery: state,
                window_start: Instant::now(),
                window_attempts: 0,
                window_failures: 0,
                lease_until,
                identity,
            }),
            changed: Notify::new(),
            cancel,
            ended: AtomicBool::new(false),
        }
    }

    fn state(&self) -> MutexGuard<'_, SubState> {
        lock(&self.state)
    }

    /// The principal as it last subscribed (a refresh brings its current scopes).
    pub(super) fn identity(&self) -> Arc<Identity> {
        self.state().identity.clone()
    }

    pub(super) fn watermark(&self) -> Arc<str> {
        self.state().delivery.watermark.as_str().into()
    }

    /// Moves the watermark; whether it moved.
    pub(super) fn set_watermark(&self, cursor: &str) -> bool {
        let mut s = self.state();
        if s.delivery.watermark == cursor {
            return false;
        }
        cursor.clone_into(&mut s.delivery.watermark);
        true
    }

    /// The delivery state to write back to the store.
    pub(super) fn delivery_state(&self) -> DeliveryState {
        self.state().delivery.clone()
    }

    /// When the subscription ends unless refreshed.
    pub(super) fn expires(&self) -> Instant {
        let left = self.state().expires_at_ms.saturating_sub(now_ms());
        Instant::now() + Duration::from_millis(left)
    }

    pub(super) fn is_active(&self) -> bool {
        self.state().delivery.active
    }

    /// Whether this replica's lease still covers delivery.
    pub(super) fn lease_valid(&self) -> bool {
        self.state().lease_until > Instant::now()
    }

    /// Records a renewed lease.
    pub(super) fn leased_until(&self, until: Instant) {
        self.state().lease_until = until;
    }

    /// Marks the subscription as ended for good and stops its delivery.
    pub(super) fn end(&self) {
        self.ended.store(true, Ordering::SeqCst);
        self.cancel.cancel();
    }

    pub(super) fn has_ended(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
    }

    /// The secrets that sign now: the current one, and earlier ones still in their grace.
    pub(super) fn signing_secrets(&self) -> Vec<WebhookSecret> {
        let now = now_ms();
        let mut state = self.state();
        state
            .secrets
            .retain(|(_, until)| until.is_none_or(|t| t > now));
        state.secrets.iter().map(|(s, _)| s.clone()).collect()
    }

    /// Takes in a record written by `events/subscribe` (here or on another replica): secrets,
    /// lifetime, and delivery resumed when it was refreshed since.
    pub(super) fn apply(&self, record: &WebhookRecord) {
        let mut s = self.state();
        s.secrets = parse_secrets(record);
        s.identity = Arc::new(record.owner());
        let moved = s.expires_at_ms != record.expires_at_ms;
        s.expires_at_ms = record.expires_at_ms;
        let refreshed = record.resumes != s.delivery.resumes_seen;
        if refreshed {
            s.delivery.resumes_seen = record.resumes;
            if !s.delivery.active {
                s.delivery.active = true;
                s.window_start = Instant::now();
                s.window_attempts = 0;
                s.window_failures = 0;
            }
        }
        drop(s);
        if moved || refreshed {
            self.changed.notify_one();
        }
    }

    /// Counts one attempt (`None`: acknowledged) and suspends delivery when, within the
    /// window, enough attempts were made and 95% of them failed.
    pub(super) fn record(&self, failure: Option<DeliveryErrorCategory>, config: &WebhookConfig) {
        let now = now_ms();
        let mut s = self.state();
        if s.window_start.elapsed() > config.suspend_window {
            s.window_start = Instant::now();
            s.window_attempts = 0;
            s.window_failures = 0;
        }
        s.window_attempts += 1;
        match failure {
            None => {
                s.delivery.last_delivery_at_ms = Some(now);
                s.delivery.last_error = None;
                s.delivery.failed_since_ms = None;
            }
            Some(category) => {
                s.window_failures += 1;
                s.delivery.last_error = Some(category);
                s.delivery.failed_since_ms.get_or_insert(now);
            }
        }
        let (attempts, failures) = (u64::from(s.window_attempts), u64::from(s.window_failures));
        if s.delivery.active
            && attempts >= u64::from(config.suspend_min_attempts)
            && failures * 100 >= attempts * 95
        {
            s.delivery.active = false;
            tracing::warn!(subscription = %self.id, "webhook delivery suspended until a refresh");
        }
    }
}

/// The secrets of a record that parse (a store holds what this server wrote; anything else is
/// skipped with a warning rather than signing with garbage).
fn parse_secrets(record: &WebhookRecord) -> Vec<(WebhookSecret, Option<u64>)> {
    record
        .secrets
        .iter()
        .filter_map(|s| match WebhookSecret::parse(&s.secret) {
            Ok(secret) => Some((secret, s.until_ms)),
            Err(e) => {
                tracing::warn!(subscription = %record.id, "unusable stored webhook secret: {e}");
                None
            }
        })
        .collect()
}

/// `deliveryStatus` of a delivery state.
pub(super) fn status_of(state: &DeliveryState) -> DeliveryStatus {
    DeliveryStatus {
        active: state.active,
        last_delivery_at: state.last_delivery_at_ms.map(rfc3339_ms),
        last_error: Some(state.last_error.clone()),
        failed_since: state.failed_since_ms.map(rfc3339_ms),
        throttled: None,
        retry_after_ms: None,
    }
}

/// An RFC 3339 UTC timestamp with milliseconds.
pub(super) fn rfc3339_ms(ms: u64) -> String {
    let at = i64::try_from(ms)
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}
