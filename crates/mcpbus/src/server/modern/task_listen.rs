//! `notifications/tasks` on `subscriptions/listen` streams (SEP-2663; docs/protocol.md 6.9): a
//! client names tasks in `notifications.taskIds`, and the stream then carries each task's state,
//! as `tasks/get` would show it, whenever the task changes, on whichever replica.
//!
//! Task changes travel as [`ServerChange::TaskChanged`](super::ServerChange::TaskChanged)
//! (the id only, across replicas through a shared log like every server change); each stream
//! that watches the task reads it from the task store and sends it.

use std::sync::Arc;

use mcpbus_proto::jsonrpc::{ErrorObject, RequestId};
use mcpbus_proto::modern::meta::SUBSCRIPTION_ID;
use mcpbus_proto::modern::tasks::TASKS_NOTIFICATION;
use serde_json::{Map, Value, json};

use super::tasks;
use crate::server::context::Context;
use crate::service::Peer;
use crate::tasks::TaskStore;

/// How many tasks one listen stream may watch.
const MAX_WATCHED: usize = 256;

/// The tasks one listen stream watches.
pub(crate) struct TaskWatch {
    ids: Vec<String>,
    store: Arc<dyn TaskStore>,
}

impl TaskWatch {
    /// The tasks a `subscriptions/listen` request asks to watch (`notifications.taskIds`) that
    /// the server knows; `-32021` when the request does not declare the tasks extension.
    pub(crate) async fn of_listen(
        params: Option<&Value>,
        ctx: &Context,
    ) -> Result<Self, ErrorObject> {
        let store = ctx.server.inner.modern.tasks.store.clone();
        let none = || TaskWatch {
            ids: Vec::new(),
            store: store.clone(),
        };
        let asked = params
            .and_then(|p| p.get("notifications"))
            .and_then(|n| n.get("taskIds"))
            .filter(|ids| !ids.is_null());
        let Some(asked) = asked else {
            return Ok(none());
        };
        let ids = asked
            .as_array()
            .and_then(|ids| {
                ids.iter()
                    .map(|id| id.as_str().map(str::to_owned))
                    .collect()
            })
            .ok_or_else(|| {
                ErrorObject::invalid_params("notifications.taskIds must be an array of task ids")
            })?;
        let ids: Vec<String> = ids;
        let declared = ctx
            .modern
            .as_ref()
            .is_some_and(|s| tasks::declares_extension(s));
        if !ids.is_empty() && !declared {
            return Err(tasks::missing_extension());
        }
        if !tasks::offered(&ctx.server) {
            // Like any kind of notification the server has nothing for: not honoured.
            return Ok(none());
        }
        let mut known = Vec::new();
        for id in ids.into_iter().take(MAX_WATCHED) {
            if !known.contains(&id) && matches!(store.load(&id).await, Ok(Some(_))) {
                known.push(id);
            }
        }
        Ok(TaskWatch { ids: known, store })
    }

    /// Names the watched tasks in the stream's acknowledgement (`notifications.taskIds`).
    pub(crate) fn acknowledge(&self, ack: &mut Value) {
        if !self.ids.is_empty() {
            ack["notifications"]["taskIds"] = json!(self.ids);
        }
    }

    /// Sends the state of every watched task (at the start, and after missed changes).
    pub(crate) async fn send_all(&self, peer: &Peer, subscription: &RequestId) {
        for id in &self.ids {
            self.send(id, peer, subscription).await;
        }
    }

    /// Sends task `task_id`'s state if the stream watches it.
    pub(crate) async fn changed(&self, task_id: &str, peer: &Peer, subscription: &RequestId) {
        if self.ids.iter().any(|id| id == task_id) {
            self.send(task_id, peer, subscription).await;
        }
    }

    async fn send(&self, task_id: &str, peer: &Peer, subscription: &RequestId) {
        let record = match self.store.load(task_id).await {
            Ok(Some(record)) => record,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(task = task_id, error = %e, "cannot read a watched task");
                return;
            }
        };
        let mut detailed = record.detailed();
        let meta = Map::from_iter([(SUBSCRIPTION_ID.to_owned(), json!(subscription))]);
        detailed.meta = Some(meta);
        if let Ok(params) = serde_json::to_value(detailed) {
            let _ = peer.notify(TASKS_NOTIFICATION, Some(params));
        }
    }
}
