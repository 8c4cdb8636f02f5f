//! The error codes 2026-07-28 defines (`-32020` to `-32022`): constructors of their error
//! objects and typed readers of their `data`.
//!
//! On HTTP all three go with `400 Bad Request`. A client that speaks both eras takes any of them
//! as proof that the server is of the modern era.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::capabilities::ClientCapabilities;
use crate::error_codes;
use crate::jsonrpc::ErrorObject;

/// `data` of an `-32022` (unsupported protocol version) error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsupportedProtocolVersionData {
    /// The revisions the server speaks; the client retries with one of them.
    pub supported: Vec<String>,
    /// The revision the request asked for.
    pub requested: String,
}

/// `data` of an `-32021` (missing required client capability) error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MissingRequiredClientCapabilityData {
    /// The capabilities the request needs and the client did not declare.
    pub required_capabilities: ClientCapabilities,
}

impl ErrorObject {
    /// `-32020`: the HTTP headers of a request (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`,
    /// `Mcp-Param-*`) are missing, malformed or disagree with the body. The message reads
    /// `Header mismatch: {detail}`.
    pub fn header_mismatch(detail: impl fmt::Display) -> Self {
        Self::new(
            error_codes::HEADER_MISMATCH,
            format!("Header mismatch: {detail}"),
        )
    }

    /// `-32021`: the request needs client capabilities that its `_meta` does not declare; `data`
    /// lists them (`{"requiredCapabilities": {...}}`).
    pub fn missing_required_client_capability(required: ClientCapabilities) -> Self {
        let data = MissingRequiredClientCapabilityData {
            required_capabilities: required,
        };
        let value = serde_json::to_value(&data).unwrap_or(Value::Null);
        let names = capability_names(&value["requiredCapabilities"]);
        Self::new(
            error_codes::MISSING_REQUIRED_CLIENT_CAPABILITY,
            format!("Missing required client capability: {names}"),
        )
        .with_data(value)
    }

    /// `-32022`: the server does not speak the revision the request names; `data` lists the ones
    /// it does (`{"supported": [...], "requested": "..."}`).
    pub fn unsupported_protocol_version<I, V>(supported: I, requested: impl Into<String>) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<String>,
    {
        let data = UnsupportedProtocolVersionData {
            supported: supported.into_iter().map(Into::into).collect(),
            requested: requested.into(),
        };
        Self::new(
            error_codes::UNSUPPORTED_PROTOCOL_VERSION,
            "Unsupported protocol version",
        )
        .with_data(serde_json::to_value(&data).unwrap_or(Value::Null))
    }

    /// The `data` of an `-32022` error; `None` for another code or a `data` of another shape.
    pub fn unsupported_protocol_version_data(&self) -> Option<UnsupportedProtocolVersionData> {
        self.typed_data(error_codes::UNSUPPORTED_PROTOCOL_VERSION)
    }

    /// The `data` of an `-32021` error; `None` for another code or a `data` of another shape.
    pub fn missing_required_client_capability_data(
        &self,
    ) -> Option<MissingRequiredClientCapabilityData> {
        self.typed_data(error_codes::MISSING_REQUIRED_CLIENT_CAPABILITY)
    }

    fn typed_data<T: serde::de::DeserializeOwned>(&self, code: i64) -> Option<T> {
        if self.code != code {
            return None;
        }
        serde_json::from_value(self.data.clone()?).ok()
    }
}

/// The capability names in a capabilities object, for a human-readable message: top-level
/// members, and each extension by its id.
fn capability_names(capabilities: &Value) -> String {
    let Some(object) = capabilities.as_object() else {
        return "(none)".to_owned();
    };
    let mut names = Vec::new();
    for (key, value) in object {
        match (key.as_str(), value.as_object()) {
            ("extensions", Some(extensions)) => names.extend(extensions.keys().cloned()),
            _ => names.push(key.clone()),
        }
    }
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        names.join(", ")
    }
}
