//! The events core: topic matching, retained values, and fan-out to sessions.

mod hub;
pub mod retained;
pub mod trie;

pub use hub::{
    AuthorizationRequest, Authorizer, EmitError, EmitReport, Event, EventHub, HubStats, Principal,
    TopicSpec,
};
pub use retained::RetainedStore;
pub use trie::TopicTrie;
