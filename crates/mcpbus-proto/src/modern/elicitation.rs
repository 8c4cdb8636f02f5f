//! `elicitation/create` params as the 2026-07-28 revision writes them (inside
//! [`InputRequest`](super::InputRequest)s).
//!
//! Two differences from the handshake era's [`crate::mcp::ElicitRequestParams`]: URL mode has no
//! `elicitationId` any more (the client learns the outcome by retrying the original request), and
//! form mode may name itself with `"mode": "form"`, which is kept here so that a request reads
//! back as it was written.

use serde::{Deserializer, Serializer};

use crate::mcp::ByMode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Params of `elicitation/create`: form mode or URL mode.
///
/// On input a missing `mode` means form mode; on output URL mode always carries `"mode": "url"`
/// and form mode carries `mode` only when [`ElicitRequestFormParams::mode`] is set.
#[derive(Debug, Clone, PartialEq)]
pub enum ElicitRequestParams {
    /// Ask for structured data through a form.
    Form(ElicitRequestFormParams),
    /// Send the user to a URL, out of band.
    Url(ElicitRequestUrlParams),
}

impl ElicitRequestParams {
    /// The message shown to the user.
    pub fn message(&self) -> &str {
        match self {
            ElicitRequestParams::Form(f) => &f.message,
            ElicitRequestParams::Url(u) => &u.message,
        }
    }

    /// The wire name of the mode: `"form"` or `"url"`.
    pub fn mode(&self) -> &'static str {
        match self {
            ElicitRequestParams::Form(_) => "form",
            ElicitRequestParams::Url(_) => "url",
        }
    }
}

/// The only value of a form-mode request's `mode` member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElicitFormMode {
    /// `"form"`.
    Form,
}

/// Form-mode params of `elicitation/create`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElicitRequestFormParams {
    /// `"mode": "form"` when the sender wrote it (the member is optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ElicitFormMode>,
    /// The message shown to the user.
    pub message: String,
    /// Flat JSON Schema object of the requested data, verbatim.
    pub requested_schema: Map<String, Value>,
    /// Metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

impl ElicitRequestFormParams {
    /// A form request with a message and a schema, without `mode`.
    pub fn new(message: impl Into<String>, requested_schema: Map<String, Value>) -> Self {
        ElicitRequestFormParams {
            mode: None,
            message: message.into(),
            requested_schema,
            meta: None,
        }
    }
}

/// URL-mode params of `elicitation/create` (no `elicitationId` in 2026-07-28).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElicitRequestUrlParams {
    /// The message shown to the user.
    pub message: String,
    /// The URL to open.
    pub url: String,
    /// Metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

impl Serialize for ElicitRequestParams {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ElicitRequestParams::Form(form) => ByMode::<_, ()>::Form(form).serialize(serializer),
            ElicitRequestParams::Url(url) => ByMode::<(), _>::Url(url).serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ElicitRequestParams {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match ByMode::deserialize(deserializer)? {
            ByMode::Form(form) => ElicitRequestParams::Form(form),
            ByMode::Url(url) => ElicitRequestParams::Url(url),
        })
    }
}
