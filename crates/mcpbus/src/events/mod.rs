//! The events core: declared topics, topic matching, retained values, the event log, and
//! fan-out to subscribers.
//!
//! Publish → [`EventLog`] (a cursor per event) → [`EventHub`] matches once in its
//! [`TopicTrie`] → one frame to each matching [`EventSink`]: the only delivery path, in
//! memory and across replicas.

pub mod access;
mod config;
mod delivery;
mod event;
pub(crate) mod event_types;
mod feed;
mod hub;
mod log;
pub(crate) mod retained;
mod ring;
mod tail;
mod topics;
mod trie;
pub(crate) mod watch;

pub use config::DeliveryConfig;
pub(crate) use delivery::QueueSink;
pub use delivery::{EventSink, LoggedEvent};
pub use event::{EmitError, EmitReport, Event};
pub use feed::{LogFeed, SubscriberKey};
pub use hub::{EventHub, HubStats};
pub use log::{
    Appended, EventLog, LogPage, LogPosition, MemoryEventLog, NewEvent, ReadError, ReadFrom,
    RetainedValue,
};
pub use ring::DEFAULT_HISTORY;
pub use tail::{EventTail, TopicTotals};
pub use topics::{AuthorizationRequest, Authorizer, InvalidDeclaredTopic, Principal, TopicSpec};
pub use trie::TopicTrie;
