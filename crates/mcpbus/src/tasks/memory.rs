//! [`MemoryTaskStore`]: tasks kept in this process's memory.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::watch;

use super::{TaskRecord, TaskStore, now_ms};
use crate::error::{BackendError, BackendErrorKind};
use crate::util::lock;

/// How many tasks a [`MemoryTaskStore`] holds by default.
pub const DEFAULT_MAX_TASKS: usize = 10_000;

/// Keeps tasks in this process's memory: only this process can answer for them, and they are
/// lost when it ends. Tasks past their time to live are dropped; a full store refuses new
/// tasks (the client is answered with an error) rather than grow without bound.
#[derive(Debug)]
pub struct MemoryTaskStore {
    state: Mutex<State>,
    max_tasks: usize,
}

#[derive(Debug, Default)]
struct State {
    tasks: HashMap<String, Entry>,
    /// When expired tasks were last swept out, in milliseconds since the Unix epoch.
    swept_at_ms: u64,
}

#[derive(Debug)]
struct Entry {
    record: TaskRecord,
    /// The record's version, for [`TaskStore::changed`]; dropped with the entry, which wakes
    /// every waiter.
    version: watch::Sender<u64>,
}

impl Default for MemoryTaskStore {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_TASKS)
    }
}

impl MemoryTaskStore {
    /// A store holding at most `max_tasks` tasks at once (at least one).
    pub fn new(max_tasks: usize) -> Self {
        MemoryTaskStore {
            state: Mutex::new(State::default()),
            max_tasks: max_tasks.max(1),
        }
    }

    /// How many tasks are held right now (expired ones included until they are swept out).
    pub fn len(&self) -> usize {
        lock(&self.state).tasks.len()
    }

    /// Whether no task is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl State {
    /// Drops expired tasks, at most once a second unless the store is full.
    fn sweep(&mut self, now: u64, full: bool) {
        if !full && now.saturating_sub(self.swept_at_ms) < 1000 {
            return;
        }
        self.swept_at_ms = now;
        self.tasks.retain(|_, e| !e.record.is_expired(now));
    }

    /// The live entry of `task_id`, dropping it if it expired.
    fn live(&mut self, task_id: &str, now: u64) -> Option<&mut Entry> {
        if self
            .tasks
            .get(task_id)
            .is_some_and(|e| e.record.is_expired(now))
        {
            self.tasks.remove(task_id);
        }
        self.tasks.get_mut(task_id)
    }
}

impl TaskStore for MemoryTaskStore {
    fn create<'a>(&'a self, record: &'a TaskRecord) -> BoxFuture<'a, Result<(), BackendError>> {
        let mut state = lock(&self.state);
        let now = now_ms();
        let full = state.tasks.len() >= self.max_tasks;
        state.sweep(now, full);
        let outcome = if state.tasks.len() >= self.max_tasks {
            Err(BackendError::msg(
                BackendErrorKind::Unavailable,
                format!(
                    "too many tasks at once (limit {}); retry later",
                    self.max_tasks
                ),
            ))
        } else if state.tasks.contains_key(&record.task_id) {
            Err(BackendError::msg(
                BackendErrorKind::Invalid,
                format!("task {} exists already", record.task_id),
            ))
        } else {
            let entry = Entry {
                record: record.clone(),
                version: watch::channel(record.version).0,
            };
            state.tasks.insert(record.task_id.clone(), entry);
            Ok(())
        };
        futures::future::ready(outcome).boxed()
    }

    fn load<'a>(
        &'a self,
        task_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<TaskRecord>, BackendError>> {
        let record = lock(&self.state)
            .live(task_id, now_ms())
            .map(|e| e.record.clone());
        futures::future::ready(Ok(record)).boxed()
    }

    fn replace<'a>(
        &'a self,
        record: &'a TaskRecord,
        expected_version: u64,
    ) -> BoxFuture<'a, Result<bool, BackendError>> {
        let mut state = lock(&self.state);
        let replaced = match state.live(&record.task_id, now_ms()) {
            Some(entry) if entry.record.version == expected_version => {
                entry.record = record.clone();
                entry.version.send_replace(record.version);
                true
            }
            _ => false,
        };
        futures::future::ready(Ok(replaced)).boxed()
    }

    fn changed<'a>(&'a self, task_id: &'a str, since_version: u64) -> BoxFuture<'a, ()> {
        let receiver = lock(&self.state)
            .live(task_id, now_ms())
            .map(|e| e.version.subscribe());
        async move {
            if let Some(mut receiver) = receiver {
                // An error means the task is gone, which is a change too.
                let _ = receiver.wait_for(|v| *v > since_version).await;
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::{TaskConfig, modify};
    use mcpbus_proto::modern::tasks::TaskStatus;
    use std::time::Duration;

    fn record(id: &str) -> TaskRecord {
        TaskRecord::new(id.into(), &TaskConfig::new())
    }

    #[tokio::test]
    async fn versions_guard_every_write() {
        let store = MemoryTaskStore::default();
        store.create(&record("a")).await.unwrap();
        assert!(store.create(&record("a")).await.is_err(), "ids are unique");
        let mut copy = store.load("a").await.unwrap().unwrap();
        copy.version = 2;
        copy.status = TaskStatus::Completed;
        assert!(!store.replace(&copy, 7).await.unwrap(), "stale version");
        assert!(store.replace(&copy, 1).await.unwrap());
        assert_eq!(
            store.load("a").await.unwrap().unwrap().status,
            TaskStatus::Completed
        );
        assert!(store.load("b").await.unwrap().is_none());
        let changed = modify(&store, "a", |r| {
            r.status_message = Some("done".into());
            true
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(changed.version, 3);
        assert!(modify(&store, "b", |_| true).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn waiters_wake_on_a_change() {
        let store = std::sync::Arc::new(MemoryTaskStore::default());
        store.create(&record("a")).await.unwrap();
        let waiter = tokio::spawn({
            let store = store.clone();
            async move { store.changed("a", 1).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        modify(&*store, "a", |_| true).await.unwrap();
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("woken")
            .unwrap();
        // A change already made is seen at once.
        tokio::time::timeout(Duration::from_secs(1), store.changed("a", 1))
            .await
            .expect("at once");
    }

    #[tokio::test]
    async fn a_full_store_refuses_and_expired_tasks_go() {
        let store = MemoryTaskStore::new(1);
        let mut old = record("old");
        old.ttl_ms = Some(1);
        old.created_at_ms -= 10;
        store.create(&old).await.unwrap();
        assert!(store.load("old").await.unwrap().is_none(), "expired");
        store.create(&record("a")).await.unwrap();
        let full = store.create(&record("b")).await.unwrap_err();
        assert!(full.is_unavailable(), "{full}");
        assert_eq!(store.len(), 1);
    }
}
