//! The server's changes (list changes, resource updates) and who hears of them: the sessions of
//! the handshake era (`notifications/...` on their streams) and the `subscriptions/listen`
//! streams of the 2026-07-28 era (docs/protocol.md 6.6).
//!
//! A change is delivered on this replica at once. When the event log is shared by several
//! replicas, it is also appended to the log as a notice, which every other replica delivers to
//! its own listeners: a change made on replica A reaches a listen stream held by replica B.

use std::sync::{Arc, Weak};

use serde_json::{Value, json};

use super::context::lock;
use super::modern::ServerChange;
use super::{Server, ServerInner};

impl Server {
    /// Tells the clients subscribed to `uri` that the resource changed: sessions subscribed
    /// with `resources/subscribe` and listen streams that asked for it. Returns how many
    /// sessions of this replica were told (other replicas are told through the shared log).
    pub fn notify_resource_updated(&self, uri: &str) -> usize {
        self.change(ServerChange::ResourceUpdated(uri.to_owned()))
    }

    /// Tells every client that the tool list changed.
    pub fn notify_tools_list_changed(&self) {
        self.change(ServerChange::ToolsListChanged);
    }

    /// Tells every client that the resource list changed.
    pub fn notify_resources_list_changed(&self) {
        self.change(ServerChange::ResourcesListChanged);
    }

    /// Tells every client that the prompt list changed.
    pub fn notify_prompts_list_changed(&self) {
        self.change(ServerChange::PromptsListChanged);
    }

    /// Tells the listen streams watching task `task_id`, on every replica, that it changed.
    pub(crate) fn notify_task_changed(&self, task_id: &str) {
        self.change(ServerChange::TaskChanged(task_id.to_owned()));
    }

    /// Delivers a change here, and to the other replicas through a shared log.
    fn change(&self, change: ServerChange) -> usize {
        let told = deliver_here(&self.inner, &change);
        if self.inner.hub.log_is_shared()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let hub = self.inner.hub.clone();
            let notice = json!({"origin": origin(), "change": change.to_json()});
            runtime.spawn(async move {
                if let Err(e) = hub.publish_notice(notice).await {
                    tracing::warn!(error = %e, "could not share a server change with the other replicas");
                }
            });
        }
        told
    }
}

/// Makes the hub hand the notices of other replicas to this server.
pub(crate) fn listen_for_notices(inner: &Arc<ServerInner>) {
    let weak: Weak<ServerInner> = Arc::downgrade(inner);
    inner.hub.on_notice(Arc::new(move |notice: &Value| {
        let Some(inner) = weak.upgrade() else {
            return;
        };
        if notice.get("origin").and_then(Value::as_str) == Some(origin()) {
            return;
        }
        match notice.get("change").and_then(ServerChange::from_json) {
            Some(change) => {
                deliver_here(&inner, &change);
            }
            None => tracing::debug!(%notice, "ignoring an unknown server notice"),
        }
    }));
}

/// Tells this replica's sessions and listen streams; returns how many sessions were told.
pub(super) fn deliver_here(inner: &ServerInner, change: &ServerChange) -> usize {
    inner.changes.announce(change.clone());
    let sessions: Vec<_> = lock(&inner.sessions).values().cloned().collect();
    let method = change.method();
    let mut told = 0;
    for session in sessions {
        let wanted = match change {
            ServerChange::ResourceUpdated(uri) => {
                lock(&session.resource_subscriptions).contains(uri)
            }
            // Tasks are of the modern era only.
            ServerChange::TaskChanged(_) => false,
            _ => session.is_initialized(),
        };
        let params = match change {
            ServerChange::ResourceUpdated(uri) => Some(json!({"uri": uri})),
            _ => None,
        };
        if wanted && session.peer.notify(method, params).is_ok() {
            told += 1;
        }
    }
    told
}

/// This process, as the origin of the notices it appends.
fn origin() -> &'static str {
    static ORIGIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(|| crate::util::random_hex(8))
}
