#![doc = include_str!("../README.md")]

pub mod client;
pub mod cluster;
pub mod error;
pub mod events;
pub mod outbound;
pub mod server;
pub mod service;
pub mod store;
pub mod transport;

pub use error::{Error, Result};
pub use mcpbus_proto as proto;
