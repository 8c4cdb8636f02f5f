//! Routing of push-stream notifications (SEP-3415 `notifications/events/*`) to the
//! subscription whose `events/stream` request they name in
//! `_meta["io.modelcontextprotocol/subscriptionId"]`: on stdio every stream shares the one
//! connection, and over HTTP the streams' messages reach the client through one queue too.

use std::collections::{HashMap, VecDeque};

use mcpbus_proto::events_ext::methods;
use mcpbus_proto::jsonrpc::{Notification, RequestId};
use mcpbus_proto::modern::meta::SUBSCRIPTION_ID;
use tokio::sync::mpsc;

use crate::util::lock;

/// How many ids of streams this client gave up are remembered, so that what the server still
/// sends on them (it may not have seen the cancellation yet) is dropped rather than passed to
/// the notification callback.
const RETIRED: usize = 256;

#[derive(Default)]
struct Table {
    live: HashMap<RequestId, mpsc::UnboundedSender<Notification>>,
    retired: VecDeque<RequestId>,
}

/// The client's push streams, by request id.
#[derive(Default)]
pub(crate) struct Routes {
    table: std::sync::Mutex<Table>,
}

impl Routes {
    /// Sends the notifications that name `id` to `to` from now on.
    pub(crate) fn register(&self, id: RequestId, to: mpsc::UnboundedSender<Notification>) {
        let mut table = lock(&self.table);
        table.retired.retain(|r| *r != id);
        table.live.insert(id, to);
    }

    /// Stops routing `id`; what still comes for it is dropped.
    pub(crate) fn retire(&self, id: &RequestId) {
        let mut table = lock(&self.table);
        if table.live.remove(id).is_some() {
            if table.retired.len() == RETIRED {
                table.retired.pop_front();
            }
            table.retired.push_back(id.clone());
        }
    }

    /// Takes a notification of one of the client's push streams; gives back any other (a
    /// method outside the streams', or a stream the client did not open itself, e.g. through
    /// `Client::request`), for the notification callback.
    pub(crate) fn route(&self, notification: Notification) -> Option<Notification> {
        if !is_stream_method(&notification.method) {
            return Some(notification);
        }
        let Some(id) = notification
            .params
            .as_ref()
            .and_then(|p| p.get("_meta"))
            .and_then(|m| m.get(SUBSCRIPTION_ID))
            .and_then(RequestId::from_value)
        else {
            return Some(notification);
        };
        let table = lock(&self.table);
        match table.live.get(&id) {
            Some(to) => {
                // A receiver gone means the stream ends right now: nothing left to tell.
                let _ = to.send(notification);
                None
            }
            None if table.retired.contains(&id) => None,
            None => Some(notification),
        }
    }
}

/// The notifications that belong to one push stream (not `list_changed`, which travels on a
/// listen stream).
fn is_stream_method(method: &str) -> bool {
    matches!(
        method,
        methods::ACTIVE
            | methods::EVENT
            | methods::HEARTBEAT
            | methods::ERROR
            | methods::TERMINATED
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn note(method: &str, id: i64) -> Notification {
        Notification {
            method: method.into(),
            params: Some(json!({"_meta": {"io.modelcontextprotocol/subscriptionId": id}})),
        }
    }

    #[test]
    fn notes_go_to_their_stream_and_retired_streams_swallow_theirs() {
        let routes = Routes::default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        routes.register(RequestId::Number(3), tx);
        assert!(routes.route(note(methods::EVENT, 3)).is_none());
        assert_eq!(rx.try_recv().unwrap().method, methods::EVENT);
        // Another stream's, and other methods, are given back.
        assert!(routes.route(note(methods::EVENT, 4)).is_some());
        assert!(
            routes
                .route(note("notifications/tools/list_changed", 3))
                .is_some()
        );
        routes.retire(&RequestId::Number(3));
        assert!(routes.route(note(methods::HEARTBEAT, 3)).is_none());
        assert!(rx.try_recv().is_err());
    }
}
