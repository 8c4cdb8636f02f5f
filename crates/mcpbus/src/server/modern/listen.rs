//! `subscriptions/listen` (docs/protocol.md 6.6): the one long-lived request through which a
//! 2026-07-28 client hears of changes. The stream opens with an acknowledgement naming what it
//! will carry, then carries only those notifications, each tagged with the listen request's
//! id, until the client closes it.
//!
//! Changes come from the server's change bus ([`ServerChange`]), which also feeds the
//! handshake era's sessions; with a shared event log the bus spans every replica.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mcpbus_proto::error_codes;
use mcpbus_proto::jsonrpc::{ErrorObject, RequestId};
use mcpbus_proto::mcp::methods;
use mcpbus_proto::modern::meta::SUBSCRIPTION_ID;
use mcpbus_proto::modern::tasks::TASKS_NOTIFICATION;
use mcpbus_proto::modern::{SubscriptionFilter, SubscriptionsListenRequestParams};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::task_listen::TaskWatch;
use crate::server::context::Context;
use crate::service::parse_params;

/// `notifications/subscriptions/acknowledged`.
const ACKNOWLEDGED: &str = "notifications/subscriptions/acknowledged";

/// How many listen streams a server holds open by default.
pub const DEFAULT_MAX_LISTENS: usize = 1024;

/// A change the server announces to whoever listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerChange {
    /// The tool list changed.
    ToolsListChanged,
    /// The prompt list changed.
    PromptsListChanged,
    /// The resource list changed.
    ResourcesListChanged,
    /// The resource with this URI changed.
    ResourceUpdated(String),
    /// The task with this id changed (the tasks extension): the listen streams watching it
    /// send its state (`notifications/tasks`); handshake-era sessions hear nothing of it.
    TaskChanged(String),
}

impl ServerChange {
    /// The notification method that announces the change.
    pub fn method(&self) -> &'static str {
        match self {
            ServerChange::ToolsListChanged => methods::TOOLS_LIST_CHANGED,
            ServerChange::PromptsListChanged => methods::PROMPTS_LIST_CHANGED,
            ServerChange::ResourcesListChanged => methods::RESOURCES_LIST_CHANGED,
            ServerChange::ResourceUpdated(_) => methods::RESOURCES_UPDATED,
            ServerChange::TaskChanged(_) => TASKS_NOTIFICATION,
        }
    }

    /// The change as a notice between replicas.
    pub(crate) fn to_json(&self) -> Value {
        match self {
            ServerChange::ToolsListChanged => json!({"kind": "toolsListChanged"}),
            ServerChange::PromptsListChanged => json!({"kind": "promptsListChanged"}),
            ServerChange::ResourcesListChanged => json!({"kind": "resourcesListChanged"}),
            ServerChange::ResourceUpdated(uri) => json!({"kind": "resourceUpdated", "uri": uri}),
            ServerChange::TaskChanged(id) => json!({"kind": "taskChanged", "taskId": id}),
        }
    }

    /// Reads a notice written by [`ServerChange::to_json`].
    pub(crate) fn from_json(value: &Value) -> Option<Self> {
        Some(match value.get("kind")?.as_str()? {
            "toolsListChanged" => ServerChange::ToolsListChanged,
            "promptsListChanged" => ServerChange::PromptsListChanged,
            "resourcesListChanged" => ServerChange::ResourcesListChanged,
            "resourceUpdated" => ServerChange::ResourceUpdated(value.get("uri")?.as_str()?.into()),
            "taskChanged" => ServerChange::TaskChanged(value.get("taskId")?.as_str()?.into()),
            _ => return None,
        })
    }

    fn wanted_by(&self, filter: &SubscriptionFilter) -> bool {
        match self {
            ServerChange::ToolsListChanged => filter.tools_list_changed == Some(true),
            ServerChange::PromptsListChanged => filter.prompts_list_changed == Some(true),
            ServerChange::ResourcesListChanged => filter.resources_list_changed == Some(true),
            ServerChange::ResourceUpdated(uri) => filter
                .resource_subscriptions
                .as_ref()
                .is_some_and(|uris| uris.iter().any(|u| u == uri)),
            // Watched tasks are not part of the filter (see `task_listen`).
            ServerChange::TaskChanged(_) => false,
        }
    }

    /// The notification's params on the listen stream `subscription`.
    fn params(&self, subscription: &RequestId) -> Value {
        let mut params = match self {
            ServerChange::ResourceUpdated(uri) => json!({"uri": uri}),
            _ => json!({}),
        };
        params["_meta"] = json!({ SUBSCRIPTION_ID: subscription });
        params
    }
}

/// The server's change bus and its listeners.
#[derive(Debug)]
pub(crate) struct ChangeBus {
    sender: broadcast::Sender<ServerChange>,
    open: Arc<AtomicUsize>,
    max_listens: usize,
}

impl ChangeBus {
    pub(crate) fn new(max_listens: usize) -> Self {
        ChangeBus {
            sender: broadcast::channel(256).0,
            open: Arc::new(AtomicUsize::new(0)),
            max_listens,
        }
    }

    /// Announces a change to every listen stream of this process.
    pub(crate) fn announce(&self, change: ServerChange) {
        let _ = self.sender.send(change);
    }

    /// How many listen streams are open.
    pub(crate) fn open_listens(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    fn admit(&self) -> Option<ListenSlot> {
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_listens).then_some(n + 1)
            })
            .is_ok();
        taken.then(|| ListenSlot(self.open.clone()))
    }
}

/// One open listen stream, counted until dropped.
struct ListenSlot(Arc<AtomicUsize>);

impl Drop for ListenSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// `subscriptions/listen`: acknowledges, then forwards the wanted changes until cancelled.
pub(crate) async fn listen(params: Option<Value>, ctx: Context) -> Result<Value, ErrorObject> {
    let tasks = TaskWatch::of_listen(params.as_ref(), &ctx).await?;
    let p: SubscriptionsListenRequestParams = parse_params(params)?;
    let accepted = honoured(&p.notifications, &ctx);
    let bus = &ctx.server.inner.changes;
    let Some(_slot) = bus.admit() else {
        return Err(ErrorObject::new(
            error_codes::INTERNAL_ERROR,
            format!(
                "too many open subscriptions/listen streams (limit {}); retry later",
                bus.max_listens
            ),
        ));
    };
    let mut changes = bus.sender.subscribe();
    let id = ctx.request.id.clone();
    let mut ack = json!({"notifications": accepted, "_meta": { SUBSCRIPTION_ID: id }});
    tasks.acknowledge(&mut ack);
    let peer = ctx.peer().clone();
    let _ = peer.notify(ACKNOWLEDGED, Some(ack));
    tasks.send_all(&peer, &id).await;
    loop {
        let change = tokio::select! {
            change = changes.recv() => change,
            _ = ctx.cancellation().cancelled() => return Err(cancelled()),
            _ = peer.closed() => return Err(cancelled()),
            // stdio: the client is gone; do not hold the process for the drain timeout.
            _ = peer.input_closed() => return Err(cancelled()),
        };
        match change {
            Ok(ServerChange::TaskChanged(task)) => tasks.changed(&task, &peer, &id).await,
            Ok(change) if change.wanted_by(&accepted) => {
                let _ = peer.notify(change.method(), Some(change.params(&id)));
            }
            Ok(_) => {}
            // Too slow to read: the client must refetch whatever it listens to.
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "a listen stream fell behind the change bus");
                for change in lagged_all(&accepted) {
                    let _ = peer.notify(change.method(), Some(change.params(&id)));
                }
                tasks.send_all(&peer, &id).await;
            }
            Err(broadcast::error::RecvError::Closed) => return Err(cancelled()),
        }
    }
}

/// What a stream will carry: the part of the request the server can honour.
fn honoured(requested: &SubscriptionFilter, ctx: &Context) -> SubscriptionFilter {
    let inner = &ctx.server.inner;
    let tools = !inner.registry.tools.is_empty();
    let prompts = !inner.registry.prompts.is_empty();
    let resources = inner.offers_resources();
    let keep =
        |asked: Option<bool>, offered: bool| (asked == Some(true) && offered).then_some(true);
    SubscriptionFilter {
        tools_list_changed: keep(requested.tools_list_changed, tools),
        prompts_list_changed: keep(requested.prompts_list_changed, prompts),
        resources_list_changed: keep(requested.resources_list_changed, resources),
        // A retained-topic URI the topic permissions refuse is not honoured (docs/auth.md).
        resource_subscriptions: requested
            .resource_subscriptions
            .clone()
            .map(|mut uris| {
                uris.retain(|uri| {
                    crate::server::topic_resources::check_resource_subscription(ctx, uri).is_ok()
                });
                uris
            })
            .filter(|uris| resources && !uris.is_empty()),
    }
}

/// After missed changes, every list the stream watches is announced as changed.
fn lagged_all(filter: &SubscriptionFilter) -> Vec<ServerChange> {
    let mut all = vec![
        ServerChange::ToolsListChanged,
        ServerChange::PromptsListChanged,
        ServerChange::ResourcesListChanged,
    ];
    all.extend(
        filter
            .resource_subscriptions
            .iter()
            .flatten()
            .map(|uri| ServerChange::ResourceUpdated(uri.clone())),
    );
    all.retain(|c| c.wanted_by(filter));
    all
}

fn cancelled() -> ErrorObject {
    ErrorObject::new(error_codes::REQUEST_CANCELLED, "listen stream closed")
}
