//! The events core: topic matching, retained values, and fan-out to sessions.

pub mod retained;
pub mod trie;

pub use retained::RetainedStore;
pub use trie::TopicTrie;
