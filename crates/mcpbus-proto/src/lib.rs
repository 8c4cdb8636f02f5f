#![doc = include_str!("../README.md")]

pub mod error_codes;
pub mod events;
pub mod events_ext;
pub mod headers;
pub mod jsonrpc;
pub mod mcp;
pub mod modern;
pub mod sse;
pub mod topic;

pub use jsonrpc::{
    ErrorObject, ErrorResponse, InvalidMessage, Message, Notification, Request, RequestId,
    Response, parse_message,
};
pub use topic::{Topic, TopicError, TopicPattern};
