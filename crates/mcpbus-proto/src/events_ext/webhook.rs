//! Webhook delivery of SEP-3415 as data: `events/subscribe` and `events/unsubscribe` with a
//! `delivery`, the delivery status of a refresh, the bodies POSTed to a callback URL (events and
//! control envelopes) and the header names of a delivery (a Standard Webhooks profile).
//!
//! Nothing here signs, verifies or delivers anything.

use serde::de::Deserializer;
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{EventOccurrence, SubscriptionParams, double_option};
use crate::jsonrpc::ErrorObject;

/// `webhook-id`: the event's id, or `msg_<type>_<random>` for a control envelope.
pub const HEADER_WEBHOOK_ID: &str = "webhook-id";
/// `webhook-timestamp`: Unix seconds of the attempt.
pub const HEADER_WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// `webhook-signature`: `v1,<base64 HMAC-SHA256>` (several, space-separated, while a secret
/// rotates).
pub const HEADER_WEBHOOK_SIGNATURE: &str = "webhook-signature";
/// `X-MCP-Subscription-Id`: the subscription's server-derived id.
pub const HEADER_SUBSCRIPTION_ID: &str = "X-MCP-Subscription-Id";
/// Where a receiver publishes the path prefixes that accept deliveries.
pub const WELL_KNOWN_RECEIVER: &str = "/.well-known/mcp-webhook-receiver.json";
/// Where a server may publish the key of its asymmetric (`v1a,`) signatures.
pub const WELL_KNOWN_JWKS: &str = "/.well-known/mcp-webhook-jwks.json";
/// The prefix of a webhook secret (`whsec_` + base64 of 24 to 64 random bytes).
pub const SECRET_PREFIX: &str = "whsec_";

/// `delivery` of `events/subscribe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    /// Always `"webhook"`.
    pub mode: String,
    /// The callback URL (`https`).
    pub url: String,
    /// The client's signing secret (`whsec_…`).
    pub secret: String,
}

impl WebhookDelivery {
    /// A webhook delivery to `url` signed with `secret`.
    pub fn new(url: impl Into<String>, secret: impl Into<String>) -> Self {
        WebhookDelivery {
            mode: "webhook".into(),
            url: url.into(),
            secret: secret.into(),
        }
    }
}

/// Params of `events/subscribe` (webhook mode; an idempotent upsert keyed by principal, URL,
/// name and arguments).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeEventsRequestParams {
    /// Name, arguments, cursor and replay floor.
    #[serde(flatten)]
    pub subscription: SubscriptionParams,
    /// Where to deliver.
    pub delivery: WebhookDelivery,
    /// The suggested lifetime in milliseconds. `None`: absent (server default); `Some(None)`:
    /// `null` (asks for no expiry).
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub ttl_ms: Option<Option<u64>>,
    /// Request metadata (revision, client capabilities, ...).
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

/// Result of `events/subscribe` (wrap it in [`Complete`](crate::modern::Complete)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeEventsResult {
    /// The server-derived id (a routing handle, not a capability).
    pub id: String,
    /// Refresh before this instant (ISO 8601); `null`: no expiry. Always written.
    #[serde(default)]
    pub refresh_before: Option<String>,
    /// The safe-to-persist watermark; `null` without replay. Always written.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Whether delivery starts later than the cursor asked for.
    #[serde(default)]
    pub truncated: bool,
    /// How delivery goes (on a refresh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_status: Option<DeliveryStatus>,
    /// Result metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

/// A failure category of webhook delivery (`deliveryStatus.lastError`, and `data.reason` of a
/// CallbackEndpointError); never the endpoint's own answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeliveryErrorCategory {
    /// `connection_refused`.
    ConnectionRefused,
    /// `timeout`.
    Timeout,
    /// `tls_error`.
    TlsError,
    /// `http_4xx`.
    Http4xx,
    /// `http_5xx`.
    Http5xx,
    /// `challenge_failed`: the endpoint did not echo the verification challenge.
    ChallengeFailed,
    /// A category this crate does not know, kept as written.
    Other(String),
}

impl DeliveryErrorCategory {
    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            DeliveryErrorCategory::ConnectionRefused => "connection_refused",
            DeliveryErrorCategory::Timeout => "timeout",
            DeliveryErrorCategory::TlsError => "tls_error",
            DeliveryErrorCategory::Http4xx => "http_4xx",
            DeliveryErrorCategory::Http5xx => "http_5xx",
            DeliveryErrorCategory::ChallengeFailed => "challenge_failed",
            DeliveryErrorCategory::Other(other) => other,
        }
    }

    /// Reads a wire name.
    pub fn from_wire(value: &str) -> Self {
        match value {
            "connection_refused" => DeliveryErrorCategory::ConnectionRefused,
            "timeout" => DeliveryErrorCategory::Timeout,
            "tls_error" => DeliveryErrorCategory::TlsError,
            "http_4xx" => DeliveryErrorCategory::Http4xx,
            "http_5xx" => DeliveryErrorCategory::Http5xx,
            "challenge_failed" => DeliveryErrorCategory::ChallengeFailed,
            other => DeliveryErrorCategory::Other(other.to_owned()),
        }
    }
}

impl Serialize for DeliveryErrorCategory {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DeliveryErrorCategory {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|s| DeliveryErrorCategory::from_wire(&s))
    }
}

/// `deliveryStatus` of a refresh.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryStatus {
    /// Whether the server delivers (false: suspended after repeated failures; the refresh that
    /// returned it has just reactivated it).
    pub active: bool,
    /// The last successful delivery (ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_delivery_at: Option<String>,
    /// The last failure's category. `None`: absent; `Some(None)`: `null` (no failure).
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_error: Option<Option<DeliveryErrorCategory>>,
    /// Since when deliveries fail (ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_since: Option<String>,
    /// Whether the server is rate-limiting deliveries (delayed, not failing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttled: Option<bool>,
    /// How long the throttling is expected to last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// `delivery` of `events/unsubscribe`: the URL only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsubscribeDelivery {
    /// The callback URL of the subscription.
    pub url: String,
}

/// Params of `events/unsubscribe` (webhook mode); the result is an empty result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnsubscribeEventsRequestParams {
    /// The event type's name.
    pub name: String,
    /// The subscription's arguments, as subscribed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Map<String, Value>>,
    /// Which callback URL.
    pub delivery: UnsubscribeDelivery,
    /// Request metadata (revision, client capabilities, ...).
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

/// A control envelope POSTed to a callback URL (a body with a top-level `type`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum WebhookControl {
    /// Events were skipped between refreshes: persist `cursor` and treat it as truncated.
    Gap {
        /// The fresh cursor.
        cursor: Option<String>,
    },
    /// The subscription has ended on the server.
    Terminated {
        /// Why.
        error: ErrorObject,
    },
    /// Proves the endpoint wants deliveries: echo `challenge` in a 2xx body.
    Verification {
        /// The single-use nonce.
        challenge: String,
    },
}

/// The body a receiver answers a verification envelope with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationResponse {
    /// The challenge, echoed.
    pub challenge: String,
}

/// Any body POSTed to a callback URL: a control envelope when it has a top-level `type`, an
/// event otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WebhookBody {
    /// A control envelope.
    Control(WebhookControl),
    /// An event.
    Event(EventOccurrence),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_are_told_apart_by_their_type() {
        let gap: WebhookBody =
            serde_json::from_value(json!({"type": "gap", "cursor": "c"})).unwrap();
        assert!(matches!(
            gap,
            WebhookBody::Control(WebhookControl::Gap { .. })
        ));
        let event: WebhookBody = serde_json::from_value(json!({
            "eventId": "e", "name": "n", "timestamp": "t", "data": {}, "cursor": "c"
        }))
        .unwrap();
        assert!(matches!(event, WebhookBody::Event(_)));
    }

    #[test]
    fn a_null_ttl_asks_for_no_expiry() {
        let v = json!({
            "name": "n",
            "delivery": {"mode": "webhook", "url": "https://x", "secret": "whsec_x"},
            "ttlMs": null
        });
        let p: SubscribeEventsRequestParams = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(p.ttl_ms, Some(None));
        assert_eq!(serde_json::to_value(&p).unwrap(), v);
    }
}
