//! The error codes of SEP-3415, with typed `data` and constructors.
//!
//! | name | code | `data` |
//! |---|---|---|
//! | InvalidParams | `-32602` | free text in the message |
//! | NotFound | [`NOT_FOUND`](crate::error_codes::NOT_FOUND) `-32023` | [`NotFoundData`] |
//! | Forbidden | [`FORBIDDEN`](crate::error_codes::FORBIDDEN) `-32024` | free (`{"reason": ...}` in the SEP's examples) |
//! | ResourceExhausted | [`RESOURCE_EXHAUSTED`](crate::error_codes::RESOURCE_EXHAUSTED) `-32025` | [`ResourceExhaustedData`] |
//! | Unsupported | [`UNSUPPORTED`](crate::error_codes::UNSUPPORTED) `-32026` | [`UnsupportedData`] |
//! | CallbackEndpointError | [`CALLBACK_ENDPOINT_ERROR`](crate::error_codes::CALLBACK_ENDPOINT_ERROR) `-32027` | [`CallbackEndpointErrorData`] |
//!
//! The numbers are the draft's and may still change; code that branches on them uses the
//! constants.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::webhook::DeliveryErrorCategory;
use crate::error_codes;
use crate::jsonrpc::ErrorObject;

/// What a NotFound refers to.
pub mod not_found_kind {
    /// An event type name.
    pub const EVENT: &str = "event";
    /// A webhook subscription key (`events/unsubscribe`).
    pub const SUBSCRIPTION: &str = "subscription";
}

/// `data` of a NotFound error.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NotFoundData {
    /// `"event"` or `"subscription"` ([`not_found_kind`]); may be absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Every other member.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `data` of a ResourceExhausted error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceExhaustedData {
    /// Which limit (e.g. `"subscriptions"`).
    pub limit: String,
    /// Its value, when the server tells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
    /// Every other member.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `data` of an Unsupported error (`{"feature": "deliveryMode", "value": "push"}`, or
/// `{"feature": "payloadSchema", "reason": "schema_changed"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsupportedData {
    /// What is not supported.
    pub feature: String,
    /// The value asked for, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Why, when it is not simply absent (`"schema_changed"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Every other member.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `data` of a CallbackEndpointError.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackEndpointErrorData {
    /// What failed, as a category (never the endpoint's own answer).
    pub reason: DeliveryErrorCategory,
    /// Every other member.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ErrorObject {
    /// NotFound for an event type name (`data.kind = "event"`).
    pub fn event_not_found(name: &str) -> Self {
        Self::new(
            error_codes::NOT_FOUND,
            format!("Not found: no event type {name:?}"),
        )
        .with_data(json!({"kind": not_found_kind::EVENT}))
    }

    /// NotFound for a webhook subscription key (`data.kind = "subscription"`).
    pub fn subscription_not_found() -> Self {
        Self::new(
            error_codes::NOT_FOUND,
            "Not found: no such webhook subscription",
        )
        .with_data(json!({"kind": not_found_kind::SUBSCRIPTION}))
    }

    /// Forbidden, with the reason in the message and in `data.reason`.
    pub fn forbidden(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self::new(error_codes::FORBIDDEN, format!("Forbidden: {reason}"))
            .with_data(json!({ "reason": reason }))
    }

    /// ResourceExhausted: the limit `limit` (of `max`, when told) is reached.
    pub fn resource_exhausted(limit: &str, max: Option<u64>) -> Self {
        let data = ResourceExhaustedData {
            limit: limit.into(),
            max,
            extra: Map::new(),
        };
        let message = match max {
            Some(max) => format!("Resource exhausted: {limit} (limit {max})"),
            None => format!("Resource exhausted: {limit}"),
        };
        Self::new(error_codes::RESOURCE_EXHAUSTED, message)
            .with_data(serde_json::to_value(data).unwrap_or(Value::Null))
    }

    /// Unsupported: `feature` with `value` is not offered here (e.g. `deliveryMode`, `push`).
    pub fn unsupported(feature: &str, value: &str) -> Self {
        let data = UnsupportedData {
            feature: feature.into(),
            value: Some(value.into()),
            reason: None,
            extra: Map::new(),
        };
        Self::new(
            error_codes::UNSUPPORTED,
            format!("Unsupported: {feature} {value:?}"),
        )
        .with_data(serde_json::to_value(data).unwrap_or(Value::Null))
    }

    /// CallbackEndpointError with its category.
    pub fn callback_endpoint_error(reason: DeliveryErrorCategory) -> Self {
        let message = format!("Callback endpoint error: {}", reason.as_str());
        let data = CallbackEndpointErrorData {
            reason,
            extra: Map::new(),
        };
        Self::new(error_codes::CALLBACK_ENDPOINT_ERROR, message)
            .with_data(serde_json::to_value(data).unwrap_or(Value::Null))
    }

    /// The `data` of a NotFound error; `None` for another code or shape.
    pub fn not_found_data(&self) -> Option<NotFoundData> {
        self.events_data(error_codes::NOT_FOUND)
    }

    /// The `data` of a ResourceExhausted error; `None` for another code or shape.
    pub fn resource_exhausted_data(&self) -> Option<ResourceExhaustedData> {
        self.events_data(error_codes::RESOURCE_EXHAUSTED)
    }

    /// The `data` of an Unsupported error; `None` for another code or shape.
    pub fn unsupported_data(&self) -> Option<UnsupportedData> {
        self.events_data(error_codes::UNSUPPORTED)
    }

    /// The `data` of a CallbackEndpointError; `None` for another code or shape.
    pub fn callback_endpoint_error_data(&self) -> Option<CallbackEndpointErrorData> {
        self.events_data(error_codes::CALLBACK_ENDPOINT_ERROR)
    }

    fn events_data<T: serde::de::DeserializeOwned>(&self, code: i64) -> Option<T> {
        if self.code != code {
            return None;
        }
        serde_json::from_value(self.data.clone()?).ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn constructors_write_the_typed_data() {
        let e = ErrorObject::event_not_found("build/+");
        assert_eq!(e.code, -32023);
        assert_eq!(e.not_found_data().unwrap().kind.as_deref(), Some("event"));
        let e = ErrorObject::resource_exhausted("streams", Some(4));
        assert_eq!(e.resource_exhausted_data().unwrap().max, Some(4));
        let e = ErrorObject::unsupported("deliveryMode", "push");
        assert_eq!(e.unsupported_data().unwrap().value.as_deref(), Some("push"));
        assert!(e.not_found_data().is_none());
        let e = ErrorObject::callback_endpoint_error(DeliveryErrorCategory::ChallengeFailed);
        assert_eq!(e.data.unwrap()["reason"], "challenge_failed");
        assert_eq!(ErrorObject::forbidden("no principal").code, -32024);
    }
}
