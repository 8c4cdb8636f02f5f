//! Elicitation: `elicitation/create` (server asks the client's user).

use serde::de::{self, Deserializer};
use serde::ser::{self, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Params of `elicitation/create`: form mode or (2025-11-25) URL mode.
///
/// On input a missing `mode` means form mode. On output form mode omits `mode` (so that
/// 2025-06-18 clients see the shape they know) and URL mode carries `"mode": "url"`.
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

/// Form-mode params of `elicitation/create`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElicitRequestFormParams {
    /// The message shown to the user.
    pub message: String,
    /// Flat JSON Schema object of the requested data, verbatim.
    pub requested_schema: Map<String, Value>,
    /// Request metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

/// URL-mode params of `elicitation/create`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElicitRequestUrlParams {
    /// The message shown to the user.
    pub message: String,
    /// Identifies the elicitation in `notifications/elicitation/complete`.
    pub elicitation_id: String,
    /// The URL to open.
    pub url: String,
    /// Request metadata.
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

/// An elicitation's params told apart by `mode` (absent or null: form), in both eras: form
/// params are written as they are, URL params with `"mode": "url"` added.
pub(crate) enum ByMode<F, U> {
    /// Form mode.
    Form(F),
    /// URL mode.
    Url(U),
}

impl<F: Serialize, U: Serialize> Serialize for ByMode<F, U> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ByMode::Form(form) => form.serialize(serializer),
            ByMode::Url(url) => {
                let mut value = serde_json::to_value(url).map_err(ser::Error::custom)?;
                if let Value::Object(map) = &mut value {
                    map.insert("mode".to_owned(), Value::from("url"));
                }
                value.serialize(serializer)
            }
        }
    }
}

impl<'de, F: serde::de::DeserializeOwned, U: serde::de::DeserializeOwned> Deserialize<'de>
    for ByMode<F, U>
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let mode = match value.get("mode") {
            None | Some(Value::Null) => "form",
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(de::Error::custom("elicitation mode must be a string")),
        };
        match mode {
            "form" => serde_json::from_value(value)
                .map(ByMode::Form)
                .map_err(de::Error::custom),
            "url" => serde_json::from_value(value)
                .map(ByMode::Url)
                .map_err(de::Error::custom),
            other => Err(de::Error::custom(format_args!(
                "unknown elicitation mode {other:?} (expected \"form\" or \"url\")"
            ))),
        }
    }
}

/// The user's answer to an elicitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElicitAction {
    /// The user submitted (form) or consented (URL).
    Accept,
    /// The user explicitly declined.
    Decline,
    /// The user dismissed without choosing.
    Cancel,
}

/// Result of `elicitation/create`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElicitResult {
    /// What the user did.
    pub action: ElicitAction,
    /// The submitted data (form mode, `accept` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Map<String, Value>>,
    /// Result metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

/// Params of `notifications/elicitation/complete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElicitationCompleteNotificationParams {
    /// The id from the URL-mode request.
    pub elicitation_id: String,
}
