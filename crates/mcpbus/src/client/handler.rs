//! The client side of a connection: answers server requests, filters and delivers events.

use std::sync::{Arc, RwLock};

use chrono::Utc;
use futures::FutureExt;
use futures::future::BoxFuture;
use mcpbus_proto::events::EventParams;
use mcpbus_proto::jsonrpc::{ErrorObject, Notification, Request};
use mcpbus_proto::mcp::{LoggingMessageNotificationParams, Root, methods};
use mcpbus_proto::modern::{SubscriptionFilter, SubscriptionsAcknowledgedNotificationParams};
use mcpbus_proto::topic::TopicPattern;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::subscribe::routes::Routes;
use super::{ElicitationHandler, EventHandler, LogHandler, NotificationHandler, SamplingHandler};
use crate::events::retained::parse_expires_at;
use crate::service::{Handler, Peer, RequestContext, parse_params, to_result};

#[derive(Default)]
pub(super) struct Handlers {
    pub(super) sampling: Option<SamplingHandler>,
    pub(super) elicitation: Option<ElicitationHandler>,
    pub(super) roots: Option<Arc<RwLock<Vec<Root>>>>,
    pub(super) event: Option<EventHandler>,
    pub(super) event_filter: Option<TopicPattern>,
    pub(super) log: Option<LogHandler>,
    pub(super) notification: Option<NotificationHandler>,
}

pub(super) struct ClientShared {
    pub(super) handlers: Handlers,
    subscriptions: RwLock<Vec<TopicPattern>>,
    events: mpsc::UnboundedSender<EventParams>,
    /// Where the acknowledgements of `subscriptions/listen` streams go (2026-07-28).
    listen_acks: std::sync::Mutex<Option<mpsc::UnboundedSender<SubscriptionFilter>>>,
    /// Where the notifications of SEP-3415 push streams go, by subscription id.
    pub(super) routes: Arc<Routes>,
}

impl ClientShared {
    pub(super) fn new(handlers: Handlers, events: mpsc::UnboundedSender<EventParams>) -> Self {
        ClientShared {
            handlers,
            subscriptions: RwLock::new(Vec::new()),
            events,
            listen_acks: std::sync::Mutex::new(None),
            routes: Arc::new(Routes::default()),
        }
    }

    /// A new receiver of the listen streams' acknowledgements (the previous one gets no more).
    pub(super) fn listen_acks(&self) -> mpsc::UnboundedReceiver<SubscriptionFilter> {
        let (tx, rx) = mpsc::unbounded_channel();
        *crate::util::lock(&self.listen_acks) = Some(tx);
        rx
    }

    fn acknowledged(&self, params: Option<Value>) {
        let Some(params) = params else {
            return;
        };
        match serde_json::from_value::<SubscriptionsAcknowledgedNotificationParams>(params) {
            Ok(ack) => {
                if let Some(tx) = &*crate::util::lock(&self.listen_acks) {
                    let _ = tx.send(ack.notifications);
                }
            }
            Err(e) => tracing::debug!(error = %e, "ignoring a malformed listen acknowledgement"),
        }
    }

    pub(super) fn track<'a>(&self, patterns: impl Iterator<Item = &'a str>) {
        let mut subs = self
            .subscriptions
            .write()
            .unwrap_or_else(|p| p.into_inner());
        for raw in patterns {
            if let Ok(p) = TopicPattern::new(raw)
                && !subs.contains(&p)
            {
                subs.push(p);
            }
        }
    }

    pub(super) fn untrack(&self, patterns: &[String]) {
        let mut subs = self
            .subscriptions
            .write()
            .unwrap_or_else(|p| p.into_inner());
        subs.retain(|p| !patterns.iter().any(|raw| raw == p.as_str()));
    }

    pub(super) fn subscriptions(&self) -> Vec<String> {
        let subs = self.subscriptions.read().unwrap_or_else(|p| p.into_inner());
        subs.iter().map(|p| p.as_str().to_string()).collect()
    }

    /// docs/protocol.md 2.4, client side: once a subscription is held, events matching none of them
    /// are dropped; the handler's own filter drops more; expired events are dropped.
    pub(super) fn accepts(&self, event: &EventParams) -> bool {
        {
            let subs = self.subscriptions.read().unwrap_or_else(|p| p.into_inner());
            if !subs.is_empty() && !subs.iter().any(|p| p.matches(&event.topic)) {
                return false;
            }
        }
        if let Some(filter) = &self.handlers.event_filter
            && !filter.matches(&event.topic)
        {
            return false;
        }
        if let Some(at) = &event.expires_at
            && let Ok(at) = parse_expires_at(at)
            && at <= Utc::now()
        {
            return false;
        }
        true
    }
}

/// Runs the event handler on its own task, in arrival order, so that a slow handler never
/// stalls the connection.
pub(super) async fn deliver_events(
    mut rx: mpsc::UnboundedReceiver<EventParams>,
    handler: EventHandler,
) {
    while let Some(event) = rx.recv().await {
        handler(event);
    }
}

pub(super) struct ClientHandler {
    pub(super) shared: Arc<ClientShared>,
}

impl Handler for ClientHandler {
    fn handle_request(
        &self,
        request: Request,
        _ctx: RequestContext,
    ) -> BoxFuture<'static, Result<Value, ErrorObject>> {
        let shared = self.shared.clone();
        async move {
            let handlers = &shared.handlers;
            match request.method.as_str() {
                methods::PING => Ok(json!({})),
                methods::SAMPLING_CREATE_MESSAGE => match &handlers.sampling {
                    Some(f) => to_result(&f(parse_params(request.params)?).await?),
                    None => Err(ErrorObject::method_not_found(&request.method)),
                },
                methods::ELICITATION_CREATE => match &handlers.elicitation {
                    Some(f) => to_result(&f(parse_params(request.params)?).await?),
                    None => Err(ErrorObject::method_not_found(&request.method)),
                },
                methods::ROOTS_LIST => match &handlers.roots {
                    Some(roots) => {
                        let roots = roots.read().unwrap_or_else(|p| p.into_inner()).clone();
                        Ok(json!({"roots": roots}))
                    }
                    None => Err(ErrorObject::method_not_found(&request.method)),
                },
                other => Err(ErrorObject::method_not_found(other)),
            }
        }
        .boxed()
    }

    fn handle_notification(&self, notification: Notification, _peer: &Peer) {
        let handlers = &self.shared.handlers;
        match notification.method.as_str() {
            methods::EVENTS_EMIT => {
                let Some(params) = notification.params else {
                    return;
                };
                match serde_json::from_value::<EventParams>(params) {
                    Ok(event) if self.shared.accepts(&event) => {
                        if handlers.event.is_some() {
                            let _ = self.shared.events.send(event);
                        }
                    }
                    Ok(event) => {
                        tracing::debug!(topic = %event.topic, "dropping event outside subscriptions or filter")
                    }
                    Err(e) => tracing::debug!(error = %e, "ignoring malformed events/emit"),
                }
            }
            methods::SUBSCRIPTIONS_ACKNOWLEDGED => self.shared.acknowledged(notification.params),
            methods::LOGGING_MESSAGE => {
                if let (Some(log), Some(params)) = (&handlers.log, notification.params)
                    && let Ok(p) =
                        serde_json::from_value::<LoggingMessageNotificationParams>(params)
                {
                    log(p);
                }
            }
            _ => {
                // A SEP-3415 push stream's notification goes to its subscription.
                let Some(notification) = self.shared.routes.route(notification) else {
                    return;
                };
                if let Some(f) = &handlers.notification {
                    f(notification);
                }
            }
        }
    }
}
