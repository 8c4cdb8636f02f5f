//! The events core: declared topics, topic matching, retained values, the event log, and
//! fan-out to subscribers.
//!
//! Publish → [`EventLog`] (a cursor per event) → [`EventHub`] matches once in its
//! [`TopicTrie`] → one frame to each matching [`EventSink`]: the only delivery path, in
//! memory and across replicas.

mod delivery;
mod event;
mod feed;
mod hub;
mod log;
pub(crate) mod retained;
mod topics;
mod trie;

pub(crate) use delivery::QueueSink;
pub use delivery::{EventSink, LoggedEvent};
pub use event::{EmitError, EmitReport, Event};
pub use feed::{LogFeed, SubscriberKey};
pub use hub::{EventHub, HubStats};
pub use log::{Appended, EventLog, MemoryEventLog, NewEvent};
pub use topics::{AuthorizationRequest, Authorizer, InvalidDeclaredTopic, Principal, TopicSpec};
pub use trie::TopicTrie;
