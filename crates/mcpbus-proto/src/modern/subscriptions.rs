//! `subscriptions/listen`: the one long-lived request through which a 2026-07-28 client receives
//! change notifications (it replaces the HTTP `GET` stream and `resources/subscribe`).
//!
//! The client names the notifications it wants ([`SubscriptionFilter`]); the server first sends
//! `notifications/subscriptions/acknowledged` with the subset it will honour, then the
//! notifications, each tagged in `_meta` with the listen request's id
//! ([`NotificationMeta::subscription_id`]); a server ending the stream on its own answers the
//! request with a [`SubscriptionsListenResult`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::meta::{NotificationMeta, RequestMeta};
use crate::jsonrpc::RequestId;

/// The notifications a listen stream carries; every kind is opt-in (absent means not wanted).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionFilter {
    /// `notifications/tools/list_changed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools_list_changed: Option<bool>,
    /// `notifications/prompts/list_changed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompts_list_changed: Option<bool>,
    /// `notifications/resources/list_changed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources_list_changed: Option<bool>,
    /// `notifications/resources/updated` for these resource URIs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_subscriptions: Option<Vec<String>>,
}

impl SubscriptionFilter {
    /// Whether the filter asks for nothing at all.
    pub fn is_empty(&self) -> bool {
        self.tools_list_changed != Some(true)
            && self.prompts_list_changed != Some(true)
            && self.resources_list_changed != Some(true)
            && self
                .resource_subscriptions
                .as_ref()
                .is_none_or(|uris| uris.is_empty())
    }
}

/// Params of `subscriptions/listen`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionsListenRequestParams {
    /// The notifications the client wants on this stream.
    pub notifications: SubscriptionFilter,
    /// Request metadata (revision, client capabilities, ...).
    #[serde(rename = "_meta")]
    pub meta: RequestMeta,
}

/// Params of `notifications/subscriptions/acknowledged`, the first message of a listen stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionsAcknowledgedNotificationParams {
    /// The subset of the requested notifications the server will send.
    pub notifications: SubscriptionFilter,
    /// Metadata; names the stream.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<NotificationMeta>,
}

impl SubscriptionsAcknowledgedNotificationParams {
    /// The acknowledgement of stream `subscription_id`.
    pub fn new(subscription_id: impl Into<RequestId>, notifications: SubscriptionFilter) -> Self {
        SubscriptionsAcknowledgedNotificationParams {
            notifications,
            meta: Some(NotificationMeta::for_subscription(subscription_id)),
        }
    }
}

/// Params of a notification that carries nothing but metadata (the three list-changed
/// notifications); on a listen stream the metadata names the stream.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NotificationParams {
    /// Metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<NotificationMeta>,
}

impl NotificationParams {
    /// Params naming the listen stream `subscription_id`.
    pub fn for_subscription(subscription_id: impl Into<RequestId>) -> Self {
        NotificationParams {
            meta: Some(NotificationMeta::for_subscription(subscription_id)),
        }
    }

    /// The listen stream the notification belongs to, if any.
    pub fn subscription_id(&self) -> Option<&RequestId> {
        self.meta.as_ref()?.subscription_id.as_ref()
    }
}

/// Params of `notifications/resources/updated` in 2026-07-28: the handshake era's plus `_meta`,
/// which names the listen stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceUpdatedNotificationParams {
    /// The resource that changed (possibly a sub-resource of the subscribed URI).
    pub uri: String,
    /// Metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<NotificationMeta>,
}

impl ResourceUpdatedNotificationParams {
    /// An update of `uri` on the listen stream `subscription_id`.
    pub fn new(subscription_id: impl Into<RequestId>, uri: impl Into<String>) -> Self {
        ResourceUpdatedNotificationParams {
            uri: uri.into(),
            meta: Some(NotificationMeta::for_subscription(subscription_id)),
        }
    }
}

/// Result of `subscriptions/listen`, sent only when the server ends the stream gracefully (on the
/// wire it is complete: `Complete<SubscriptionsListenResult>`). Its `_meta` must name the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionsListenResult {
    /// Result metadata.
    #[serde(rename = "_meta")]
    pub meta: SubscriptionsListenResultMeta,
}

impl SubscriptionsListenResult {
    /// The graceful end of stream `subscription_id`.
    pub fn new(subscription_id: impl Into<RequestId>) -> Self {
        SubscriptionsListenResult {
            meta: SubscriptionsListenResultMeta {
                subscription_id: subscription_id.into(),
                extra: Map::new(),
            },
        }
    }
}

/// The `_meta` of a [`SubscriptionsListenResult`]: the stream's id, required, and any other key
/// (`serverInfo` among them) kept as it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionsListenResultMeta {
    /// The id of the `subscriptions/listen` request whose stream this ends
    /// ([`SUBSCRIPTION_ID`](super::meta::SUBSCRIPTION_ID)).
    #[serde(rename = "io.modelcontextprotocol/subscriptionId")]
    pub subscription_id: RequestId,
    /// Every other key.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
