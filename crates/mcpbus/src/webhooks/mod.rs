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
mod tls;
mod worker;

pub use config::{InvalidAllowEntry, InvalidOrigin, RetryPolicy, WebhookConfig};
pub use signing::{InvalidSecret, WebhookSecret, signature_header};
pub use tls::{WebhookTlsError, certificates_from_pem};

/// The webhook configuration cannot be served (`ServerBuilder::build`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookSetupError {
    /// An entry of the allow-list is unusable.
    #[error(transparent)]
    AllowList(#[from] InvalidAllowEntry),
    /// The TLS client cannot be set up (an unusable extra root certificate).
    #[error(transparent)]
    Tls(#[from] WebhookTlsError),
}

pub(crate) use registry::{SubscribeRequest, Webhooks};
