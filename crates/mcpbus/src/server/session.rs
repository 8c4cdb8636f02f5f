//! The [`Handler`] of one client session: a thin adapter from the service loop to the
//! [dispatcher](super::dispatch), plus the session's notifications and end.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::FutureExt;
use futures::future::BoxFuture;
use mcpbus_proto::jsonrpc::{ErrorObject, Notification, Request};
use mcpbus_proto::mcp::methods;
use serde_json::Value;

use super::Server;
use super::context::{Context, SessionState};
use super::dispatch::dispatch;
use crate::service::{Handler, Peer, RequestContext};

/// The [`Handler`] of one session: builds each request's [`Context`] and dispatches it.
pub(crate) struct SessionHandler {
    pub(crate) server: Server,
    pub(crate) session: Arc<SessionState>,
}

impl Handler for SessionHandler {
    fn handle_request(
        &self,
        request: Request,
        ctx: RequestContext,
    ) -> BoxFuture<'static, Result<Value, ErrorObject>> {
        let ctx = Context {
            request: ctx,
            session: self.session.clone(),
            server: self.server.clone(),
            modern: None,
            input_key: None,
        };
        dispatch(request, ctx).boxed()
    }

    fn handle_notification(&self, notification: Notification, _peer: &Peer) {
        match notification.method.as_str() {
            methods::INITIALIZED => self.session.mark_initialized(),
            methods::ROOTS_LIST_CHANGED => {
                tracing::debug!(session = %self.session.id, "client roots changed");
            }
            other => tracing::debug!(method = other, "ignoring notification"),
        }
    }

    fn on_close(&self) {
        self.server.end_session(&self.session);
    }

    fn is_sequential(&self, method: &str) -> bool {
        // A client may pipeline requests right behind `initialize`; they must see its effects.
        method == methods::INITIALIZE
    }

    fn is_long_lived(&self, method: &str) -> bool {
        // SEP-3415 asks servers to exempt push streams from caps on concurrent requests; they
        // have a cap of their own (docs/protocol.md 3.4).
        method == mcpbus_proto::events_ext::methods::EVENTS_STREAM
    }
}

impl SessionState {
    pub(crate) fn is_initialized(&self) -> bool {
        self.initialized.load(Ordering::Acquire)
    }
}
