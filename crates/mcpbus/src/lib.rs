#![doc = include_str!("../README.md")]

pub mod client;
pub mod cluster;
pub mod error;
pub mod events;
pub mod metrics;
mod outbound;
pub mod server;
pub mod service;
pub mod store;
pub mod tasks;
pub mod transport;
mod util;
pub mod webhooks;

pub use error::{BackendError, BackendErrorKind, Error, Result};
pub use mcpbus_proto as proto;

/// The repository README's examples, compiled as doc tests so that they cannot drift from the
/// API.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
mod repository_readme {}
