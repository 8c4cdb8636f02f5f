#![doc = include_str!("../README.md")]

pub mod client;
pub mod cluster;
pub mod error;
pub mod events;
mod outbound;
pub mod server;
pub mod service;
pub mod store;
pub mod transport;
mod util;

pub use error::{BackendError, BackendErrorKind, Error, Result};
pub use mcpbus_proto as proto;
