//! The shared webhook store (docs/protocol.md 3.6.8): subscriptions survive restarts, and each
//! is delivered by the one replica holding its lease.
//!
//! - `{NAME}:wh:s:ID`: a hash with the record as JSON (`r`, written by `events/subscribe`)
//!   and the delivery state as JSON (`d`: watermark and status, written by the lease holder
//!   only), expiring with the subscription.
//! - `{NAME}:wh:ids`: the set of ids (an id whose hash expired is dropped when met).
//! - `{NAME}:wh:l:ID`: the lease, the holder's token with a time to live (`SET NX PX`),
//!   renewed, released and checked by Lua calls that compare the token, so a replica that lost
//!   its lease can neither renew it nor write the delivery state.
//!
//! The record holds the clients' signing secrets: every replica must be able to sign.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use mcpbus::webhooks::{DeliveryState, SaveOutcome, StoredWebhook, WebhookRecord, WebhookStore};
use mcpbus::{BackendError, BackendErrorKind};

use crate::{Inner, backend_error};

/// KEYS: hash, ids, lease. ARGV: id, record, state, expiry (ms since the epoch), token, lease
/// ttl (ms). Returns 1, or 0 when the id exists.
const CREATE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'r', ARGV[2], 'd', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SET', KEYS[3], ARGV[5], 'PX', ARGV[6])
return 1
"#;

/// KEYS: hash. ARGV: record, expiry. Returns 1, or 0 when gone.
const UPDATE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'r', ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
"#;

/// KEYS: hash, ids, lease. ARGV: id. Returns how many hashes were deleted (0 or 1).
const DELETE: &str = r#"
local n = redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
return n
"#;

/// KEYS: hash, lease. ARGV: token, state. Returns 1 (written), 0 (not the holder) or -1
/// (gone).
const SAVE_STATE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'd', ARGV[2])
return 1
"#;

/// KEYS: hash, ids, lease. ARGV: id, token, ttl. Returns 1 when the token holds the lease now.
const CLAIM: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[1])
  redis.call('DEL', KEYS[3])
  return 0
end
local holder = redis.call('GET', KEYS[3])
if holder == ARGV[2] then
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
  return 1
end
if holder then return 0 end
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
return 1
"#;

/// KEYS: hash, lease. ARGV: token, ttl. Returns 1 when renewed.
const RENEW: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
"#;

/// KEYS: lease. ARGV: token.
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"#;

/// The webhook store of a [`RedisBackend`](crate::RedisBackend).
pub(crate) struct RedisWebhookStore(pub(crate) Arc<Inner>);

impl RedisWebhookStore {
    fn hash(&self, id: &str) -> String {
        self.0.keys.webhook(id)
    }

    fn lease(&self, id: &str) -> String {
        self.0.keys.webhook_lease(id)
    }

    async fn run(&self, script: &str, keys: &[String], args: &[&str]) -> Result<i64, BackendError> {
        let script = redis::Script::new(script);
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        let mut conn = self.0.conn();
        invocation
            .invoke_async(&mut conn)
            .await
            .map_err(backend_error)
    }
}

fn unreadable(e: serde_json::Error) -> BackendError {
    BackendError::new(
        BackendErrorKind::Invalid,
        "unreadable webhook subscription",
        e,
    )
}

fn ms(d: Duration) -> String {
    d.as_millis().max(1).to_string()
}

impl WebhookStore for RedisWebhookStore {
    fn create<'a>(
        &'a self,
        stored: &'a StoredWebhook,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, BackendError>> {
        async move {
            let id = &stored.record.id;
            let record = serde_json::to_string(&stored.record).map_err(unreadable)?;
            let state = serde_json::to_string(&stored.state).map_err(unreadable)?;
            let expiry = stored.record.expires_at_ms.to_string();
            let keys = [self.hash(id), self.0.keys.webhook_ids(), self.lease(id)];
            let args = [id.as_str(), &record, &state, &expiry, holder, &ms(ttl)];
            Ok(self.run(CREATE, &keys, &args).await? == 1)
        }
        .boxed()
    }

    fn update<'a>(
        &'a self,
        record: &'a WebhookRecord,
    ) -> BoxFuture<'a, Result<bool, BackendError>> {
        async move {
            let json = serde_json::to_string(record).map_err(unreadable)?;
            let expiry = record.expires_at_ms.to_string();
            let keys = [self.hash(&record.id)];
            Ok(self.run(UPDATE, &keys, &[&json, &expiry]).await? == 1)
        }
        .boxed()
    }

    fn load<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredWebhook>, BackendError>> {
        async move {
            let mut conn = self.0.conn();
            let (record, state): (Option<String>, Option<String>) = redis::cmd("HMGET")
                .arg(self.hash(id))
                .arg("r")
                .arg("d")
                .query_async(&mut conn)
                .await
                .map_err(backend_error)?;
            let (Some(record), Some(state)) = (record, state) else {
                return Ok(None);
            };
            let record: WebhookRecord = serde_json::from_str(&record).map_err(unreadable)?;
            let state: DeliveryState = serde_json::from_str(&state).map_err(unreadable)?;
            // Redis expires keys lazily to the millisecond; the record's own clock decides.
            if record.expires_at_ms <= now_ms() {
                return Ok(None);
            }
            Ok(Some(StoredWebhook::new(record, state)))
        }
        .boxed()
    }

    fn ids(&self) -> BoxFuture<'_, Result<Vec<String>, BackendError>> {
        async move {
            let mut conn = self.0.conn();
            redis::cmd("SMEMBERS")
                .arg(self.0.keys.webhook_ids())
                .query_async(&mut conn)
                .await
                .map_err(backend_error)
        }
        .boxed()
    }

    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, BackendError>> {
        async move {
            let keys = [self.hash(id), self.0.keys.webhook_ids(), self.lease(id)];
            Ok(self.run(DELETE, &keys, &[id]).await? == 1)
        }
        .boxed()
    }

    fn save_state<'a>(
        &'a self,
        id: &'a str,
        holder: &'a str,
        state: &'a DeliveryState,
    ) -> BoxFuture<'a, Result<SaveOutcome, BackendError>> {
        async move {
            let json = serde_json::to_string(state).map_err(unreadable)?;
            let keys = [self.hash(id), self.lease(id)];
            Ok(match self.run(SAVE_STATE, &keys, &[holder, &json]).await? {
                1 => SaveOutcome::Saved,
                0 => SaveOutcome::NotHolder,
                _ => SaveOutcome::Gone,
            })
        }
        .boxed()
    }

    fn claim<'a>(
        &'a self,
        id: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, BackendError>> {
        async move {
            let keys = [self.hash(id), self.0.keys.webhook_ids(), self.lease(id)];
            Ok(self.run(CLAIM, &keys, &[id, holder, &ms(ttl)]).await? == 1)
        }
        .boxed()
    }

    fn renew<'a>(
        &'a self,
        id: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, BackendError>> {
        async move {
            let keys = [self.hash(id), self.lease(id)];
            Ok(self.run(RENEW, &keys, &[holder, &ms(ttl)]).await? == 1)
        }
        .boxed()
    }

    fn release<'a>(
        &'a self,
        id: &'a str,
        holder: &'a str,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        async move {
            self.run(RELEASE, &[self.lease(id)], &[holder]).await?;
            Ok(())
        }
        .boxed()
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().try_into().unwrap_or(u64::MAX))
}
