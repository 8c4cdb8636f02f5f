//! Where webhook subscriptions live (docs/protocol.md 3.6.8): a [`WebhookStore`] keeps each
//! subscription's record (what the client asked for, its secrets and lifetime) and its delivery
//! state (the watermark and the status a refresh reports), and leases each subscription to the
//! one replica that delivers it.
//!
//! [`MemoryWebhookStore`] serves one process: a restart loses every subscription. A shared
//! store (e.g. `mcpbus-redis`) lets subscriptions survive restarts and lets any replica take
//! over the delivery of a subscription whose replica died, from the stored watermark.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use mcpbus_proto::events_ext::webhook::DeliveryErrorCategory;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::error::BackendError;
use crate::util::lock;

/// What the client asked for, as `events/subscribe` last wrote it. Only `events/subscribe`
/// (creation and refresh) and the end of a subscription change it; delivery never does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WebhookRecord {
    /// The server-derived id (`sub_...`, `X-MCP-Subscription-Id`).
    pub id: String,
    /// The authenticated principal that subscribed.
    pub principal: String,
    /// The callback URL.
    pub url: String,
    /// The event type's name.
    pub name: String,
    /// The subscription's arguments.
    pub arguments: Option<Map<String, Value>>,
    /// The signing secrets, the current one first, then earlier ones until their grace ends.
    pub secrets: Vec<StoredSecret>,
    /// When the subscription ends unless refreshed, in milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
    /// Bumped by every refresh: the delivering replica resumes a suspended delivery when it
    /// sees a number it has not seen ([`DeliveryState::resumes_seen`]).
    pub resumes: u64,
    /// What the principal's credential proved when it last subscribed (docs/auth.md): its
    /// agent id and scopes decide the topic rules whichever replica delivers. Absent in
    /// records written before it was kept: the principal alone, as its own agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<crate::server::Identity>,
}

impl WebhookRecord {
    /// The identity the subscription is delivered as.
    pub(crate) fn owner(&self) -> crate::server::Identity {
        self.identity
            .clone()
            .unwrap_or_else(|| crate::server::Identity::named(self.principal.as_str()))
    }
}

/// One signing secret of a [`WebhookRecord`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoredSecret {
    /// The client's `whsec_` value. Whoever reads the store can sign as the server.
    pub secret: String,
    /// Until when it still signs, in milliseconds since the Unix epoch (`None`: the current
    /// secret).
    pub until_ms: Option<u64>,
}

impl StoredSecret {
    /// A secret signing until `until_ms` (`None`: for as long as it is the current one).
    pub fn new(secret: String, until_ms: Option<u64>) -> Self {
        StoredSecret { secret, until_ms }
    }
}

/// How delivery stands. Only the replica holding the subscription's lease writes it
/// ([`WebhookStore::save_state`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeliveryState {
    /// Every matching event at or before this cursor was acknowledged or abandoned.
    pub watermark: String,
    /// Whether delivery runs (false: suspended until a refresh).
    pub active: bool,
    /// The [`WebhookRecord::resumes`] last acted upon.
    pub resumes_seen: u64,
    /// The last acknowledged delivery, in milliseconds since the Unix epoch.
    pub last_delivery_at_ms: Option<u64>,
    /// The failure of the last attempt, if it failed.
    pub last_error: Option<DeliveryErrorCategory>,
    /// Since when attempts fail, in milliseconds since the Unix epoch.
    pub failed_since_ms: Option<u64>,
}

impl DeliveryState {
    /// A fresh delivery starting after `watermark`.
    pub fn new(watermark: String) -> Self {
        DeliveryState {
            watermark,
            active: true,
            resumes_seen: 0,
            last_delivery_at_ms: None,
            last_error: None,
            failed_since_ms: None,
        }
    }
}

/// A subscription as stored: its record and its delivery state.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StoredWebhook {
    /// What the client asked for.
    pub record: WebhookRecord,
    /// How delivery stands.
    pub state: DeliveryState,
}

impl StoredWebhook {
    /// A subscription from its parts.
    pub fn new(record: WebhookRecord, state: DeliveryState) -> Self {
        StoredWebhook { record, state }
    }
}

/// What [`WebhookStore::save_state`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaveOutcome {
    /// Written.
    Saved,
    /// Not written: another replica holds the lease (or none does), so this one must stop.
    NotHolder,
    /// Not written: the subscription is gone (unsubscribed, expired, ended elsewhere).
    Gone,
}

/// Where webhook subscriptions live, and who delivers each. Every method may run on any
/// replica. A lease names its holder (a replica's own string) and lapses after its time to
/// live unless renewed; a subscription is delivered only by its lease holder, and its delivery
/// state is written only by it, so a replica that lost its lease can never move a watermark
/// back.
pub trait WebhookStore: Send + Sync + 'static {
    /// Stores a new subscription and leases it to `holder` for `ttl`, at once; `false`
    /// (nothing written) when the id exists.
    fn create<'a>(
        &'a self,
        stored: &'a StoredWebhook,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, BackendError>>;

    /// Replaces the record of an existing subscription (a refresh; the delivery state stays);
    /// `false` when it is gone.
    fn update<'a>(&'a self, record: &'a WebhookRecord)
    -> BoxFuture<'a, Result<bool, BackendError>>;

    /// The subscription `id`, unless unknown or expired.
    fn load<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredWebhook>, BackendError>>;

    /// The ids of the stored subscriptions (expired ones may still be listed).
    fn ids(&self) -> BoxFuture<'_, Result<Vec<String>, BackendError>>;

    /// Forgets the subscription and its lease; `false` when it was not there.
    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, BackendError>>;

    /// Writes the delivery state, if `holder` holds the lease and the subscription exists.
    fn save_state<'a>(
        &'a self,
        id: &'a str,
        holder: &'a str,
        state: &'a DeliveryState,
    ) -> BoxFuture<'a, Result<SaveOutcome, BackendError>>;

    /// Leases the subscription to `holder` for `ttl` if it exists and nobody holds it;
    /// `true` when `holder` holds it now.
    fn claim<'a>(
        &'a self,
        id: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, BackendError>>;

    /// Extends `holder`'s lease to `ttl` from now; `false` when it holds it no longer (or the
    /// subscription is gone).
    fn renew<'a>(
        &'a self,
        id: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, BackendError>>;

    /// Gives up `holder`'s lease (another replica may claim it at once).
    fn release<'a>(
        &'a self,
        id: &'a str,
        holder: &'a str,
    ) -> BoxFuture<'a, Result<(), BackendError>>;
}

impl fmt::Debug for dyn WebhookStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookStore")
    }
}

/// Subscriptions in this process's memory: the store of a single replica. Leases are kept as
/// for a shared store, so one process behaves as one replica of many would.
#[derive(Debug, Default)]
pub struct MemoryWebhookStore {
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug)]
struct Entry {
    stored: StoredWebhook,
    lease: Option<(String, Instant)>,
}

impl Entry {
    fn held_by(&self, holder: &str) -> bool {
        self.lease
            .as_ref()
            .is_some_and(|(h, until)| h == holder && *until > Instant::now())
    }

    fn leased(&self) -> bool {
        self.lease
            .as_ref()
            .is_some_and(|(_, until)| *until > Instant::now())
    }
}

impl MemoryWebhookStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` on the live entry `id` (an expired one is dropped first).
    fn with_live<T>(&self, id: &str, f: impl FnOnce(&mut Entry) -> T) -> Option<T> {
        let mut entries = lock(&self.entries);
        if entries
            .get(id)
            .is_some_and(|e| e.stored.record.expires_at_ms <= now_ms())
        {
            entries.remove(id);
        }
        entries.get_mut(id).map(f)
    }
}

impl WebhookStore for MemoryWebhookStore {
    fn create<'a>(
        &'a self,
        stored: &'a StoredWebhook,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, BackendError>> {
        let id = &stored.record.id;
        let created = self.with_live(id, |_| ()).is_none();
        if created {
            lock(&self.entries).insert(
                id.clone(),
                Entry {
                    stored: stored.clone(),
                    lease: Some((holder.to_owned(), Instant::now() + ttl)),
                },
            );
        }
        async move { Ok(created) }.boxed()
    }

    fn update<'a>(
        &'a self,
        record: &'a WebhookRecord,
    ) -> BoxFuture<'a, Result<bool, BackendError>> {
        let updated = self
            .with_live(&record.id, |e| e.stored.record = record.clone())
            .is_some();
        async move { Ok(updated) }.boxed()
    }

    fn load<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredWebhook>, BackendError>> {
        let found = self.with_live(id, |e| e.stored.clone());
        async move { Ok(found) }.boxed()
    }

    fn ids(&self) -> BoxFuture<'_, Result<Vec<String>, BackendError>> {
        let ids = lock(&self.entries).keys().cloned().collect();
        async move { Ok(ids) }.boxed()
    }

    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, BackendError>> {
        let deleted = lock(&self.entries).remove(id).is_some();
        async move { Ok(deleted) }.boxed()
    }

    fn save_state<'a>(
        &'a self,
        id: &'a str,
        holder: &'a str,
        state: &'a DeliveryState,
    ) -> BoxFuture<'a, Result<SaveOutcome, BackendError>> {
        let outcome = self
            .with_live(id, |e| {
                if !e.held_by(holder) {
                    return SaveOutcome::NotHolder;
                }
                e.stored.state = state.clone();
                SaveOutcome::Saved
            })
            .unwrap_or(SaveOutcome::Gone);
        async move { Ok(outcome) }.boxed()
    }

    fn claim<'a>(
        &'a self,
        id: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, BackendError>> {
        let claimed = self
            .with_live(id, |e| {
                if e.leased() {
                    return e.held_by(holder);
                }
                e.lease = Some((holder.to_owned(), Instant::now() + ttl));
                true
            })
            .unwrap_or(false);
        async move { Ok(claimed) }.boxed()
    }

    fn renew<'a>(
        &'a self,
        id: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, BackendError>> {
        let renewed = self
            .with_live(id, |e| {
                let held = e.held_by(holder);
                if held {
                    e.lease = Some((holder.to_owned(), Instant::now() + ttl));
                }
                held
            })
            .unwrap_or(false);
        async move { Ok(renewed) }.boxed()
    }

    fn release<'a>(
        &'a self,
        id: &'a str,
        holder: &'a str,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        self.with_live(id, |e| {
            if e.held_by(holder) {
                e.lease = None;
            }
        });
        async move { Ok(()) }.boxed()
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    crate::tasks::now_ms()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn stored(id: &str, expires_at_ms: u64) -> StoredWebhook {
        StoredWebhook::new(
            WebhookRecord {
                id: id.into(),
                principal: "alice".into(),
                url: "http://127.0.0.1:1/hook".into(),
                name: "build/+".into(),
                arguments: None,
                secrets: vec![StoredSecret::new("whsec_x".into(), None)],
                expires_at_ms,
                resumes: 0,
                identity: None,
            },
            DeliveryState::new("0".into()),
        )
    }

    #[tokio::test]
    async fn leases_decide_who_writes_the_delivery_state() {
        let store = MemoryWebhookStore::new();
        let ttl = Duration::from_millis(50);
        let sub = stored("s", now_ms() + 60_000);
        assert!(store.create(&sub, "a", ttl).await.unwrap());
        assert!(!store.create(&sub, "b", ttl).await.unwrap());
        assert!(!store.claim("s", "b", ttl).await.unwrap());
        let mut state = DeliveryState::new("5".into());
        assert_eq!(
            store.save_state("s", "a", &state).await.unwrap(),
            SaveOutcome::Saved
        );
        assert_eq!(
            store.save_state("s", "b", &state).await.unwrap(),
            SaveOutcome::NotHolder
        );
        tokio::time::sleep(ttl * 2).await;
        assert!(
            !store.renew("s", "a", ttl).await.unwrap(),
            "the lease lapsed"
        );
        assert!(store.claim("s", "b", ttl).await.unwrap());
        state.watermark = "3".into();
        assert_eq!(
            store.save_state("s", "a", &state).await.unwrap(),
            SaveOutcome::NotHolder
        );
        assert_eq!(store.load("s").await.unwrap().unwrap().state.watermark, "5");
        store.release("s", "b").await.unwrap();
        assert!(store.claim("s", "a", ttl).await.unwrap());
        assert!(store.delete("s").await.unwrap());
        assert_eq!(
            store.save_state("s", "a", &state).await.unwrap(),
            SaveOutcome::Gone
        );
        assert!(!store.claim("s", "a", ttl).await.unwrap());
    }

    #[test]
    fn records_keep_what_the_topic_permissions_check() {
        // The shape written before agent id, client and scopes were kept.
        let old: WebhookRecord = serde_json::from_value(serde_json::json!({
            "id": "s", "principal": "alice", "url": "u", "name": "n", "arguments": null,
            "secrets": [], "expires_at_ms": 1, "resumes": 0
        }))
        .unwrap();
        assert_eq!(old.owner(), crate::server::Identity::named("alice"));
        let mut identity = crate::server::Identity::named("alice").with_scopes(["inbox"]);
        identity.agent_id = "agent-7".into();
        identity.client_id = Some("ci".into());
        let record = WebhookRecord {
            identity: Some(identity.clone()),
            ..old.clone()
        };
        assert_eq!(record.owner(), identity);
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["identity"]["scopes"], serde_json::json!(["inbox"]));
        assert_eq!(
            serde_json::from_value::<WebhookRecord>(json).unwrap(),
            record
        );
        // Nothing new is written for a record without an identity.
        let json = serde_json::to_value(&old).unwrap();
        assert!(json.get("identity").is_none());
    }

    #[tokio::test]
    async fn expired_subscriptions_are_gone() {
        let store = MemoryWebhookStore::new();
        let sub = stored("old", now_ms().saturating_sub(1));
        assert!(
            store
                .create(&sub, "a", Duration::from_secs(5))
                .await
                .unwrap()
        );
        assert!(store.load("old").await.unwrap().is_none());
        assert!(
            store
                .create(&sub, "a", Duration::from_secs(5))
                .await
                .unwrap()
        );
    }
}
