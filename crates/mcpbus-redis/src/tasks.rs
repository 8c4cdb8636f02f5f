//! The shared task store (the 2026-07-28 tasks extension): every replica finds, answers and
//! cancels every task, whichever replica runs its handler.
//!
//! A task is one hash `{NAME}:task:{id}` with its version (`v`) and its record as JSON (`r`),
//! expiring with the task's time to live. Creation and compare-and-swap replacement are one
//! Lua call each. A wait for a change ends at once for a write made on this replica, and after
//! [`RedisConfig::poll_interval`](crate::RedisConfig::poll_interval) otherwise (the caller
//! then reads the task again).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::BoxFuture;
use mcpbus::tasks::{TaskRecord, TaskStore};
use mcpbus::{BackendError, BackendErrorKind};
use tokio::sync::watch;

use crate::{Inner, backend_error, lock};

/// Stores a task unless its id exists. KEYS: the task. ARGV: version, record, expiry (ms since
/// the epoch, or empty). Returns 1, or 0 when the id exists.
const CREATE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'r', ARGV[2])
if ARGV[3] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[3]) end
return 1
"#;

/// Replaces a task if its version is still the expected one (the expiry stays). KEYS: the
/// task. ARGV: expected version, new version, record. Returns 1, or 0 (changed or gone).
const REPLACE: &str = r#"
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'r', ARGV[3])
return 1
"#;

/// The task store of a [`RedisBackend`](crate::RedisBackend).
pub(crate) struct RedisTaskStore {
    inner: Arc<Inner>,
    /// The newest version this replica wrote, per task someone here waits on.
    local: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl RedisTaskStore {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        RedisTaskStore {
            inner,
            local: Mutex::new(HashMap::new()),
        }
    }

    fn key(&self, task_id: &str) -> String {
        self.inner.keys.task(task_id)
    }

    /// Wakes this replica's waiters on a task it just wrote.
    fn wrote(&self, task_id: &str, version: u64) {
        if let Some(sender) = lock(&self.local).get(task_id) {
            sender.send_replace(version);
        }
    }
}

fn unreadable(e: serde_json::Error) -> BackendError {
    BackendError::new(BackendErrorKind::Invalid, "unreadable task record", e)
}

impl TaskStore for RedisTaskStore {
    fn create<'a>(&'a self, record: &'a TaskRecord) -> BoxFuture<'a, Result<(), BackendError>> {
        async move {
            let json = serde_json::to_string(record).map_err(unreadable)?;
            let expiry = record
                .expires_at_ms()
                .map_or_else(String::new, |at| at.to_string());
            let mut conn = self.inner.conn();
            let created: i64 = redis::Script::new(CREATE)
                .key(self.key(&record.task_id))
                .arg(record.version)
                .arg(json)
                .arg(expiry)
                .invoke_async(&mut conn)
                .await
                .map_err(backend_error)?;
            if created == 0 {
                return Err(BackendError::msg(
                    BackendErrorKind::Invalid,
                    format!("task {} exists already", record.task_id),
                ));
            }
            Ok(())
        }
        .boxed()
    }

    fn load<'a>(
        &'a self,
        task_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<TaskRecord>, BackendError>> {
        async move {
            let mut conn = self.inner.conn();
            let raw: Option<String> = redis::cmd("HGET")
                .arg(self.key(task_id))
                .arg("r")
                .query_async(&mut conn)
                .await
                .map_err(backend_error)?;
            let record: Option<TaskRecord> = raw
                .map(|r| serde_json::from_str(&r))
                .transpose()
                .map_err(unreadable)?;
            // Redis expires keys lazily to the millisecond; the record's own clock decides.
            Ok(record.filter(|r| !r.is_expired(now_ms())))
        }
        .boxed()
    }

    fn replace<'a>(
        &'a self,
        record: &'a TaskRecord,
        expected_version: u64,
    ) -> BoxFuture<'a, Result<bool, BackendError>> {
        async move {
            let json = serde_json::to_string(record).map_err(unreadable)?;
            let mut conn = self.inner.conn();
            let replaced: i64 = redis::Script::new(REPLACE)
                .key(self.key(&record.task_id))
                .arg(expected_version)
                .arg(record.version)
                .arg(json)
                .invoke_async(&mut conn)
                .await
                .map_err(backend_error)?;
            if replaced == 1 {
                self.wrote(&record.task_id, record.version);
            }
            Ok(replaced == 1)
        }
        .boxed()
    }

    fn changed<'a>(&'a self, task_id: &'a str, since_version: u64) -> BoxFuture<'a, ()> {
        let receiver = lock(&self.local)
            .entry(task_id.to_owned())
            .or_insert_with(|| watch::channel(since_version).0)
            .subscribe();
        let mut waiting = Waiting {
            store: self,
            task_id,
            receiver: Some(receiver),
        };
        let poll = self.inner.config.poll_interval;
        async move {
            let Some(receiver) = waiting.receiver.as_mut() else {
                return;
            };
            tokio::select! {
                _ = receiver.wait_for(|v| *v > since_version) => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
        .boxed()
    }
}

/// One wait on a task; forgets the task's local version once nobody here waits on it, however
/// the wait ends (it may be dropped unfinished).
struct Waiting<'a> {
    store: &'a RedisTaskStore,
    task_id: &'a str,
    receiver: Option<watch::Receiver<u64>>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.receiver.take();
        let mut local = lock(&self.store.local);
        if local
            .get(self.task_id)
            .is_some_and(|s| s.receiver_count() == 0)
        {
            local.remove(self.task_id);
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().try_into().unwrap_or(u64::MAX))
}
