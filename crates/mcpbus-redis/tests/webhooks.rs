//! The Redis webhook store against a real `redis-server` on a free loopback port: the store's
//! contract as two replicas see it (docs/protocol.md 3.6.8), leases included.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mcpbus::webhooks::{DeliveryState, SaveOutcome, StoredSecret, StoredWebhook, WebhookRecord};
use mcpbus_redis::{RedisBackend, RedisConfig};
use mcpbus_testkit::RedisServer;
use serde_json::json;

async fn backend(redis: &RedisServer) -> RedisBackend {
    RedisBackend::connect(RedisConfig::new(redis.url()).prefix("wh"))
        .await
        .expect("connects")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .try_into()
        .unwrap()
}

fn record(id: &str, expires_at_ms: u64) -> WebhookRecord {
    serde_json::from_value(json!({
        "id": id,
        "principal": "alice",
        "url": "http://127.0.0.1:9/hook",
        "name": "build/+",
        "arguments": {"retained": false},
        "secrets": [{"secret": "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "until_ms": null}],
        "expires_at_ms": expires_at_ms,
        "resumes": 0
    }))
    .unwrap()
}

#[tokio::test]
async fn replicas_share_subscriptions_and_leases_decide_who_writes() {
    let redis = RedisServer::start(false);
    let (a, b) = (
        backend(&redis).await.webhook_store(),
        backend(&redis).await.webhook_store(),
    );
    let ttl = Duration::from_millis(300);
    let stored = StoredWebhook::new(
        record("sub_1", now_ms() + 60_000),
        DeliveryState::new("10".into()),
    );
    assert!(a.create(&stored, "A/0", ttl).await.unwrap());
    assert!(!b.create(&stored, "B/0", ttl).await.unwrap(), "exists");
    assert_eq!(b.ids().await.unwrap(), ["sub_1"]);
    assert_eq!(b.load("sub_1").await.unwrap().unwrap(), stored);

    // Only the holder writes the delivery state; B cannot claim a held lease.
    assert!(!b.claim("sub_1", "B/0", ttl).await.unwrap());
    let mut state = DeliveryState::new("20".into());
    assert_eq!(
        b.save_state("sub_1", "B/0", &state).await.unwrap(),
        SaveOutcome::NotHolder
    );
    assert_eq!(
        a.save_state("sub_1", "A/0", &state).await.unwrap(),
        SaveOutcome::Saved
    );
    assert!(a.renew("sub_1", "A/0", ttl).await.unwrap());

    // A refresh from B changes the record, never the delivery state.
    let mut refreshed = stored.record.clone();
    refreshed.resumes = 1;
    refreshed.secrets.insert(
        0,
        StoredSecret::new("whsec_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB".into(), None),
    );
    assert!(b.update(&refreshed).await.unwrap());
    let loaded = a.load("sub_1").await.unwrap().unwrap();
    assert_eq!(loaded.record, refreshed);
    assert_eq!(loaded.state.watermark, "20");

    // A stops renewing: its lease lapses, B claims it, and A can no longer write or renew.
    tokio::time::sleep(ttl * 2).await;
    assert!(b.claim("sub_1", "B/1", ttl).await.unwrap());
    assert!(
        b.claim("sub_1", "B/1", ttl).await.unwrap(),
        "a holder's claim renews"
    );
    state.watermark = "15".into();
    assert_eq!(
        a.save_state("sub_1", "A/0", &state).await.unwrap(),
        SaveOutcome::NotHolder,
        "a replica that lost its lease cannot move the watermark back"
    );
    assert!(!a.renew("sub_1", "A/0", ttl).await.unwrap());
    a.release("sub_1", "A/0").await.unwrap();
    assert!(!a.claim("sub_1", "A/1", ttl).await.unwrap(), "still B's");
    b.release("sub_1", "B/1").await.unwrap();
    assert!(a.claim("sub_1", "A/1", ttl).await.unwrap(), "released");

    // Deleted: gone for every replica, its lease with it.
    assert!(b.delete("sub_1").await.unwrap());
    assert!(!b.delete("sub_1").await.unwrap());
    assert!(a.load("sub_1").await.unwrap().is_none());
    assert_eq!(
        a.save_state("sub_1", "A/1", &state).await.unwrap(),
        SaveOutcome::Gone
    );
    assert!(!a.renew("sub_1", "A/1", ttl).await.unwrap());
    assert!(!b.update(&refreshed).await.unwrap());
    assert!(a.ids().await.unwrap().is_empty());
}

#[tokio::test]
async fn expired_subscriptions_disappear_from_the_store_and_its_index() {
    let redis = RedisServer::start(false);
    let store = backend(&redis).await.webhook_store();
    let soon = StoredWebhook::new(
        record("sub_2", now_ms() + 200),
        DeliveryState::new("0".into()),
    );
    assert!(
        store
            .create(&soon, "A/0", Duration::from_secs(5))
            .await
            .unwrap()
    );
    assert!(store.load("sub_2").await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(store.load("sub_2").await.unwrap().is_none());
    // A claim meets the lapsed id and drops it from the index.
    assert!(
        !store
            .claim("sub_2", "B/0", Duration::from_secs(5))
            .await
            .unwrap()
    );
    assert!(store.ids().await.unwrap().is_empty());
    // The same id may be created again.
    let again = StoredWebhook::new(
        record("sub_2", now_ms() + 60_000),
        DeliveryState::new("0".into()),
    );
    assert!(
        store
            .create(&again, "B/0", Duration::from_secs(5))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn the_principal_s_grants_round_trip_and_older_records_still_read() {
    let redis = RedisServer::start(false);
    let store = backend(&redis).await.webhook_store();
    let ttl = Duration::from_secs(5);
    let mut granted = serde_json::to_value(record("sub_3", now_ms() + 60_000)).unwrap();
    granted["identity"] = json!({
        "subject": "alice", "agentId": "agent-7", "clientId": "ci",
        "scopes": ["inbox", "webhook"], "claims": {}
    });
    let granted: WebhookRecord = serde_json::from_value(granted).unwrap();
    let stored = StoredWebhook::new(granted.clone(), DeliveryState::new("0".into()));
    assert!(store.create(&stored, "A/0", ttl).await.unwrap());
    let loaded = store.load("sub_3").await.unwrap().unwrap().record;
    assert_eq!(loaded, granted);
    let owner = loaded.identity.unwrap();
    assert_eq!(
        owner.scopes.iter().collect::<Vec<_>>(),
        ["inbox", "webhook"]
    );
    assert_eq!(&*owner.agent_id, "agent-7");
    // A record of the shape written before the grants were kept reads with none of them.
    let old = record("sub_4", now_ms() + 60_000);
    assert!(old.identity.is_none());
    let stored = StoredWebhook::new(old.clone(), DeliveryState::new("0".into()));
    assert!(store.create(&stored, "A/0", ttl).await.unwrap());
    assert_eq!(store.load("sub_4").await.unwrap().unwrap().record, old);
}
