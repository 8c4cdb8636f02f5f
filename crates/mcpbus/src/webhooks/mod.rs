//! Webhook delivery of SEP-3415 (`events/subscribe`, `events/unsubscribe`; docs/protocol.md
//! 3.6): the server POSTs each event of a subscription to the client's callback URL, signed as
//! Standard Webhooks do, after the endpoint proved it wants them; retries with bounded
//! exponential backoff; refuses destinations that are not public unless allowed.
//!
//! Subscriptions live in this process's memory with a bounded lifetime that clients refresh;
//! a restart loses them and clients resubscribe with their cursor (SEP-3415 allows it for the
//! finite grants given here).

mod config;
mod destination;
mod registry;
mod sender;
mod signing;
mod worker;

pub use config::{InvalidAllowEntry, RetryPolicy, WebhookConfig};
pub use signing::{InvalidSecret, WebhookSecret, signature_header};

pub(crate) use registry::{SubscribeRequest, Webhooks};
