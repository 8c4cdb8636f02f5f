//! Webhook delivery of SEP-3415 (`events/subscribe`, `events/unsubscribe`; docs/protocol.md
//! 3.6): the server POSTs each event of a subscription to the client's callback URL, signed as
//! Standard Webhooks do, after the endpoint proved it wants them; retries with bounded
//! exponential backoff; refuses destinations that are not public unless allowed.
//!
//! Subscriptions have a bounded lifetime that clients refresh, and live in a [`WebhookStore`]
//! ([`WebhookConfig::store`]): by default this process's memory ([`MemoryWebhookStore`]), where
//! a restart loses them and clients resubscribe with their cursor (SEP-3415 allows it for the
//! finite grants given here); or a store shared by the replicas of a deployment (e.g. Redis),
//! where they survive restarts and each is delivered by exactly one replica at a time, under a
//! lease that moves to another replica when its holder dies.

mod config;
mod destination;
mod leases;
mod registry;
mod sender;
mod signing;
mod store;
mod sub;
pub(crate) mod tls;
mod worker;

pub use config::{InvalidAllowEntry, InvalidOrigin, RetryPolicy, WebhookConfig};
pub use signing::{InvalidSecret, WebhookSecret, signature_header};
pub use tls::{WebhookTlsError, certificates_from_pem};
// The OAuth resource server reaches its authorization server with the same TLS client.
pub(crate) use tls::Tls;

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
pub use store::{
    DeliveryState, MemoryWebhookStore, SaveOutcome, StoredSecret, StoredWebhook, WebhookRecord,
    WebhookStore,
};

pub(crate) use registry::{SubscribeRequest, Webhooks};
