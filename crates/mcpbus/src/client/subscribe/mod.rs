//! Subscriptions to the event types of the MCP Events extension (SEP-3415,
//! `io.modelcontextprotocol/events`), in the 2026-07-28 era: poll and push behind one handler.
//!
//! [`Client::subscribe_events`] names an event type; the returned [`SubscribeEvents`] sets the
//! arguments, the cursor to resume from and the delivery mode, and
//! [`start`](SubscribeEvents::start) runs the subscription on a task of its own, reporting to
//! one handler ([`SubscriptionEvent`]): the events, each the same [`EventParams`] a handshake-era
//! `on_event` handler receives, the cursor as it advances, gaps (`truncated`), the server's
//! errors and the end. The caller persists the cursor and passes it back next time to resume
//! without loss. docs/client.md describes the loops.
//!
//! ```no_run
//! use mcpbus::client::{Client, SubscriptionEvent};
//!
//! # async fn run(client: Client, saved: Option<String>) -> mcpbus::Result<()> {
//! let subscription = client
//!     .subscribe_events("build/+")
//!     .argument("topic", "build/web")
//!     .cursor(saved)
//!     .start(|event| match event {
//!         SubscriptionEvent::Event(e) => println!("{} {}", e.topic, e.payload),
//!         SubscriptionEvent::Gap { .. } => eprintln!("events may have been missed"),
//!         _ => {}
//!     })
//!     .await?;
//! // ... later: the cursor to persist and resume from.
//! let cursor = subscription.stop().await;
//! # let _ = cursor; Ok(()) }
//! ```

mod poll;
mod push;
pub(crate) mod routes;
mod sink;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use mcpbus_proto::error_codes;
use mcpbus_proto::events::EventParams;
use mcpbus_proto::events_ext::{
    DeliveryMode, EXTENSION_ID, EventDescriptor, ListEventsResult, PollEventsRequestParams,
    PollEventsResult, methods,
};
use mcpbus_proto::jsonrpc::ErrorObject;
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::Client;
use super::modern::ModernLink;
use crate::error::{Error, Result};
use crate::service::{Peer, RequestOptions};
use crate::util::lock;

pub(crate) use sink::RecentIds;
pub use sink::{CURSOR_KEY, EVENT_TYPE_KEY, TIMESTAMP_KEY, event_params};

/// The heartbeat interval a push stream is assumed to keep when none is set (SEP-3415's
/// "at least every 30 seconds"): a stream silent for twice as long is reopened.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(30);
/// The shortest wait between two polls, whatever `nextPollMs` says (SEP-3415's default floor).
pub const DEFAULT_POLL_FLOOR: Duration = Duration::from_secs(1);

/// What the client says when SEP-3415 is asked for in the handshake era.
const EVENTS_NEED_MODERN: &str = "the MCP events extension (io.modelcontextprotocol/events, \
     SEP-3415) is defined for MCP 2026-07-28, and this client speaks the handshake era with the \
     server: use topic events (Client::subscribe) there, or connect with Era::Modern";

/// How a subscription receives its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Delivery {
    /// Push when the event type offers it, else poll (the default; costs one `events/list`).
    #[default]
    Auto,
    /// `events/stream`: the server sends events as they happen on a long-lived request.
    Push,
    /// `events/poll`: the client asks at the interval the server recommends.
    Poll,
}

/// What a subscription reports to its handler, in order, one at a time.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SubscriptionEvent {
    /// An event: the same [`EventParams`] the handshake era's
    /// [`on_event`](super::ClientBuilder::on_event) handler receives (see [`event_params`]),
    /// with its cursor in `_meta` ([`CURSOR_KEY`]) when it has one of its own.
    Event(EventParams),
    /// The subscription's position moved without an event (the stream started, a heartbeat,
    /// a poll that found nothing, or events the client dropped as duplicates or expired): safe
    /// to persist.
    Cursor(String),
    /// Delivery resumed later than the cursor asked for (SEP-3415 `truncated`): events may have
    /// been skipped. Fetch authoritative state if that matters; the cursor is the new position.
    Gap {
        /// Where delivery resumed.
        cursor: Option<String>,
    },
    /// A recoverable error the server reported (`notifications/events/error`); the
    /// subscription goes on.
    Error(ErrorObject),
    /// The server ended the subscription (`notifications/events/terminated`, or an error saying
    /// it cannot be resumed, e.g. the event type is gone): nothing follows.
    Terminated(ErrorObject),
}

impl SubscriptionEvent {
    /// The position to persist once this is handled, if it carries one: an event's own cursor,
    /// a [`Cursor`](Self::Cursor), a [`Gap`](Self::Gap)'s cursor.
    pub fn cursor(&self) -> Option<&str> {
        match self {
            SubscriptionEvent::Event(e) => e.meta.as_ref()?.get(CURSOR_KEY)?.as_str(),
            SubscriptionEvent::Cursor(c) => Some(c),
            SubscriptionEvent::Gap { cursor } => cursor.as_deref(),
            _ => None,
        }
    }

    /// The event, if this is one.
    pub fn into_event(self) -> Option<EventParams> {
        match self {
            SubscriptionEvent::Event(e) => Some(e),
            _ => None,
        }
    }
}

/// Receives what a subscription reports. It runs on the subscription's task: a slow handler
/// delays that subscription only (its notifications wait in memory meanwhile).
pub type SubscriptionHandler = Arc<dyn Fn(SubscriptionEvent) + Send + Sync>;

/// The poll loop's settings.
#[derive(Debug, Clone)]
struct PollSettings {
    floor: Duration,
    max_events: Option<u64>,
    long_poll: Option<Duration>,
}

/// A subscription being set up: [`Client::subscribe_events`], then
/// [`start`](Self::start).
#[derive(Debug, Clone)]
#[must_use = "a subscription starts only with .start(handler)"]
pub struct SubscribeEvents {
    client: Client,
    name: String,
    arguments: Option<Map<String, Value>>,
    cursor: Option<String>,
    max_age: Option<Duration>,
    delivery: Delivery,
    heartbeat: Duration,
    poll: PollSettings,
}

impl SubscribeEvents {
    /// The subscription's arguments, as the event type's `inputSchema` describes them
    /// (replaces any set before).
    pub fn arguments(mut self, arguments: Map<String, Value>) -> Self {
        self.arguments = Some(arguments);
        self
    }

    /// One argument (e.g. `topic` on an mcpbus server).
    pub fn argument(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.arguments
            .get_or_insert_with(Map::new)
            .insert(name.into(), value.into());
        self
    }

    /// Where to resume: a cursor from an earlier run ([`Subscription::cursor`], or
    /// [`SubscriptionEvent::cursor`]); `None` (the default) starts from now.
    pub fn cursor(mut self, cursor: Option<String>) -> Self {
        self.cursor = cursor;
        self
    }

    /// Resumes no further back than this (SEP-3415 `maxAgeMs`; the server says `truncated`
    /// when it skipped events for it). Ignored from now.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Push, poll, or (the default) push when the event type offers it.
    pub fn delivery(mut self, delivery: Delivery) -> Self {
        self.delivery = delivery;
        self
    }

    /// The heartbeat interval the server keeps on push streams (default
    /// [`DEFAULT_HEARTBEAT`]): a stream with neither an event nor a heartbeat for twice as long
    /// is taken for dead and reopened from its cursor.
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = interval;
        self
    }

    /// The shortest wait between polls (default [`DEFAULT_POLL_FLOOR`]).
    pub fn poll_floor(mut self, floor: Duration) -> Self {
        self.poll.floor = floor;
        self
    }

    /// At most this many events per poll (`maxEvents`; default: the server's).
    pub fn max_events(mut self, max: u64) -> Self {
        self.poll.max_events = Some(max);
        self
    }

    /// Long polls: the server may hold a poll that finds nothing this long (`timeoutMs`), and
    /// the next poll goes out as soon as one answers.
    pub fn long_poll(mut self, wait: Duration) -> Self {
        self.poll.long_poll = Some(wait);
        self
    }

    /// Starts the subscription and waits until the server confirmed it (the push stream's
    /// `notifications/events/active`, or the first poll's answer), so that a refused
    /// subscription (an unknown event type, invalid arguments, a mode the type does not
    /// offer) fails here. Events then reach `handler` from the subscription's task until the
    /// [`Subscription`] is stopped or dropped, or the server ends it.
    ///
    /// Fails at once, sending nothing, in the handshake era (SEP-3415 is defined for
    /// 2026-07-28) and when the server does not advertise the extension.
    pub async fn start<F>(self, handler: F) -> Result<Subscription>
    where
        F: Fn(SubscriptionEvent) + Send + Sync + 'static,
    {
        let link = self.client.events_link()?.clone();
        let delivery = match self.delivery {
            Delivery::Auto => self.client.choose_delivery(&self.name).await?,
            chosen => chosen,
        };
        let cursor = Arc::new(Mutex::new(self.cursor.clone()));
        let stop = CancellationToken::new();
        let runner = Runner {
            peer: self.client.inner.peer.clone(),
            link,
            routes: self.client.inner.shared.routes.clone(),
            name: self.name.clone(),
            arguments: self.arguments,
            max_age: self.max_age,
            heartbeat: self.heartbeat,
            poll: self.poll,
            sink: sink::Sink::new(Arc::new(handler), cursor.clone()),
            stop: stop.clone(),
        };
        let (started, confirmed) = oneshot::channel();
        let task = match delivery {
            Delivery::Poll => tokio::spawn(poll::run(runner, started).boxed()),
            _ => tokio::spawn(push::run(runner, started).boxed()),
        };
        match confirmed.await {
            Ok(Ok(())) => Ok(Subscription {
                name: self.name,
                delivery,
                cursor,
                stop,
                task: Some(task),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(task
                .await
                .ok()
                .and_then(Result::err)
                .unwrap_or(Error::Closed)),
        }
    }
}

/// A running subscription. Dropping it (or [`stop`](Self::stop)) ends it: its push stream is
/// closed (HTTP) or cancelled (stdio), or its poll loop stops after handing over the batch it
/// read.
#[derive(Debug)]
pub struct Subscription {
    name: String,
    delivery: Delivery,
    cursor: Arc<Mutex<Option<String>>>,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<()>>>,
}

impl Subscription {
    /// The event type subscribed to.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How events arrive: [`Delivery::Push`] or [`Delivery::Poll`].
    pub fn delivery(&self) -> Delivery {
        self.delivery
    }

    /// The position after the last thing handed to the handler: pass it to
    /// [`SubscribeEvents::cursor`] to resume there. `None` before the server named one.
    pub fn cursor(&self) -> Option<String> {
        lock(&self.cursor).clone()
    }

    /// Whether the subscription has ended (stopped, ended by the server, or its connection
    /// closed).
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Ends the subscription, waits until its request is given up, and returns the cursor to
    /// resume from.
    pub async fn stop(mut self) -> Option<String> {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.cursor()
    }

    /// Waits until the subscription ends by itself: `Err` with the server's error when it
    /// ended the subscription (the handler got [`SubscriptionEvent::Terminated`]),
    /// [`Error::Closed`] when the connection closed; `Ok` once stopped. Returns at once when
    /// already waited for.
    pub async fn finished(&mut self) -> Result<()> {
        match self.task.take() {
            Some(task) => task.await.unwrap_or(Err(Error::Closed)),
            None => Ok(()),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Tells [`SubscribeEvents::start`] how the subscription's first request went.
type Started = oneshot::Sender<Result<()>>;

/// What the poll and push tasks share.
struct Runner {
    peer: Peer,
    link: Arc<ModernLink>,
    routes: Arc<routes::Routes>,
    name: String,
    arguments: Option<Map<String, Value>>,
    max_age: Option<Duration>,
    heartbeat: Duration,
    poll: PollSettings,
    sink: sink::Sink,
    stop: CancellationToken,
}

impl Runner {
    /// The params naming the subscription, from `cursor` (`null`: from now).
    fn params(&self, cursor: Option<String>) -> Value {
        let mut params = json!({"name": self.name, "cursor": cursor});
        if let Some(arguments) = &self.arguments {
            params["arguments"] = Value::Object(arguments.clone());
        }
        if let Some(age) = self.max_age {
            params["maxAgeMs"] = Value::from(u64::try_from(age.as_millis()).unwrap_or(u64::MAX));
        }
        params
    }
}

/// What a failed poll or stream open means for the subscription.
enum Failure {
    /// The first request failed: `start` reports it, the task ends quietly.
    Reported,
    /// The subscription is over for good (the connection closed, or a permanent refusal).
    Over(Error),
    /// Try again later.
    Retry(Error),
}

impl Runner {
    /// Sorts a failed request: refused at start, over for good, or worth another try.
    fn failure(&mut self, started: &mut Option<Started>, e: Error) -> Failure {
        if let Some(started) = started.take() {
            let _ = started.send(Err(e));
            return Failure::Reported;
        }
        if self.peer.is_closed() || matches!(e, Error::Closed) {
            return Failure::Over(Error::Closed);
        }
        if let Error::Remote(error) = &e
            && is_permanent(error)
        {
            self.sink.terminated(error.clone());
            return Failure::Over(e);
        }
        Failure::Retry(e)
    }
}

/// Whether an error answer says the subscription can never work as asked, so that retrying
/// is pointless: the SEP's NotFound, Forbidden, InvalidParams and Unsupported, and a server
/// without the method.
fn is_permanent(error: &ErrorObject) -> bool {
    matches!(
        error.code,
        error_codes::METHOD_NOT_FOUND
            | error_codes::INVALID_PARAMS
            | error_codes::NOT_FOUND
            | error_codes::FORBIDDEN
            | error_codes::UNSUPPORTED
    )
}

/// Whether capabilities advertise the extension: under `extensions`, or at top level as the
/// working group's design sketch had it.
fn offers_events(capabilities: &mcpbus_proto::modern::ServerCapabilities) -> bool {
    capabilities.extension(EXTENSION_ID).is_some() || capabilities.extra.contains_key("events")
}

impl Client {
    /// Starts setting up a subscription to the SEP-3415 event type `name` (2026-07-28 era);
    /// see [`SubscribeEvents`]. The handshake era's topic events are [`Client::subscribe`].
    pub fn subscribe_events(&self, name: impl Into<String>) -> SubscribeEvents {
        SubscribeEvents {
            client: self.clone(),
            name: name.into(),
            arguments: None,
            cursor: None,
            max_age: None,
            delivery: Delivery::Auto,
            heartbeat: DEFAULT_HEARTBEAT,
            poll: PollSettings {
                floor: DEFAULT_POLL_FLOOR,
                max_events: None,
                long_poll: None,
            },
        }
    }

    /// Lists the server's SEP-3415 event types (`events/list`, following pagination).
    /// 2026-07-28 era only; fails at once when the server does not advertise the extension.
    pub async fn list_event_types(&self) -> Result<Vec<EventDescriptor>> {
        self.events_link()?;
        self.list_all(methods::EVENTS_LIST, |p: ListEventsResult| {
            (p.events, p.next_cursor)
        })
        .await
    }

    /// One `events/poll`, as it is (for clients that run their own loop; a subscription with
    /// [`Delivery::Poll`] runs one). 2026-07-28 era only.
    pub async fn poll_events(&self, params: PollEventsRequestParams) -> Result<PollEventsResult> {
        self.events_link()?;
        let params = crate::error::encode_params(methods::EVENTS_POLL, params)?;
        self.typed_call(
            methods::EVENTS_POLL,
            Some(params),
            RequestOptions::default(),
        )
        .await
    }

    /// The modern link, when the server offers SEP-3415; otherwise why not.
    fn events_link(&self) -> Result<&Arc<ModernLink>> {
        let Some(link) = &self.inner.modern else {
            return Err(Error::Protocol(EVENTS_NEED_MODERN.to_owned()));
        };
        if !offers_events(&link.discover.capabilities) {
            return Err(Error::Protocol(format!(
                "the server {} does not offer the MCP events extension ({EXTENSION_ID}): its \
                 server/discover capabilities do not list it",
                self.server_info().name
            )));
        }
        Ok(link)
    }

    /// Push if the event type offers it, else poll (SEP-3415 Appendix A, without webhooks).
    async fn choose_delivery(&self, name: &str) -> Result<Delivery> {
        let types = self.list_event_types().await?;
        let Some(found) = types.iter().find(|t| t.name == name) else {
            return Err(Error::Remote(ErrorObject::event_not_found(name)));
        };
        if found.delivery.contains(&DeliveryMode::Push) {
            Ok(Delivery::Push)
        } else if found.delivery.contains(&DeliveryMode::Poll) {
            Ok(Delivery::Poll)
        } else {
            let offered: Vec<&str> = found.delivery.iter().map(DeliveryMode::as_str).collect();
            Err(Error::Protocol(format!(
                "no compatible delivery mode: event type {name:?} offers {offered:?}, and this \
                 client polls or streams"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_their_cursor_and_other_reports_theirs() {
        let mut e = EventParams::new("a", "1", Value::Null);
        assert_eq!(SubscriptionEvent::Event(e.clone()).cursor(), None);
        e.meta = Some(Map::from_iter([(CURSOR_KEY.to_owned(), json!("9"))]));
        assert_eq!(SubscriptionEvent::Event(e).cursor(), Some("9"));
        assert_eq!(SubscriptionEvent::Cursor("3".into()).cursor(), Some("3"));
        let gap = SubscriptionEvent::Gap { cursor: None };
        assert_eq!(gap.cursor(), None);
        assert!(gap.into_event().is_none());
    }

    #[test]
    fn only_refusals_that_cannot_change_end_a_subscription() {
        assert!(is_permanent(&ErrorObject::event_not_found("x")));
        assert!(is_permanent(&ErrorObject::forbidden("no")));
        assert!(!is_permanent(&ErrorObject::internal("HTTP 502")));
        assert!(!is_permanent(&ErrorObject::resource_exhausted(
            "streams",
            Some(1)
        )));
    }
}
