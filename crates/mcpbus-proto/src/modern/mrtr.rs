//! Multi round-trip requests (MRTR): the `input_required` result and the retry that answers it.
//!
//! In 2026-07-28 a server never sends the client a request. When `tools/call`, `prompts/get` or
//! `resources/read` needs input (an elicitation, an LLM sample, the client's roots), the server
//! answers with an [`InputRequiredResult`] naming what it needs in `inputRequests` and, opaque to
//! the client, a `requestState`. The client gathers the input and sends the original request again
//! (with a new id), adding `inputResponses` under the same keys and echoing `requestState`
//! ([`InputResponseRequestParams`]).

use std::collections::BTreeMap;

use serde::de::{self, Deserializer};
use serde::ser::{self, SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::elicitation::ElicitRequestParams;
use super::meta::ResultMeta;
use crate::jsonrpc::json_kind;
use crate::mcp::methods;
use crate::mcp::{CreateMessageRequestParams, CreateMessageResult, ElicitResult, ListRootsResult};

/// The requests of an [`InputRequiredResult`], by server-assigned key.
pub type InputRequests = BTreeMap<String, InputRequest>;

/// The client's answers on a retry, under the keys of the [`InputRequests`] they answer.
pub type InputResponses = BTreeMap<String, InputResponse>;

/// One thing the server needs from the client: a request object (`method` and `params`, no `id`).
// The sampling params are much larger than the others; boxing them would make the variant awkward
// to build and match, and an input request is built once per round trip.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum InputRequest {
    /// `elicitation/create`: ask the user.
    Elicit(ElicitRequestParams),
    /// `sampling/createMessage`: sample the client's LLM (deprecated in 2026-07-28).
    CreateMessage(CreateMessageRequestParams),
    /// `roots/list`: list the client's roots (deprecated in 2026-07-28); `params` is optional.
    ListRoots(Option<ListRootsRequestParams>),
}

impl InputRequest {
    /// The request's method name.
    pub fn method(&self) -> &'static str {
        match self {
            InputRequest::Elicit(_) => methods::ELICITATION_CREATE,
            InputRequest::CreateMessage(_) => methods::SAMPLING_CREATE_MESSAGE,
            InputRequest::ListRoots(_) => methods::ROOTS_LIST,
        }
    }
}

/// Params of a `roots/list` input request: only metadata.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ListRootsRequestParams {
    /// Metadata.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

impl Serialize for InputRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let params = match self {
            InputRequest::Elicit(p) => Some(serde_json::to_value(p)),
            InputRequest::CreateMessage(p) => Some(serde_json::to_value(p)),
            InputRequest::ListRoots(p) => p.as_ref().map(serde_json::to_value),
        }
        .transpose()
        .map_err(ser::Error::custom)?;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("method", self.method())?;
        if let Some(params) = params {
            map.serialize_entry("params", &params)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for InputRequest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut object = Map::<String, Value>::deserialize(deserializer)?;
        let method = match object.remove("method") {
            Some(Value::String(method)) => method,
            Some(other) => {
                return Err(de::Error::custom(format_args!(
                    "input request method must be a string, got {}",
                    json_kind(&other)
                )));
            }
            None => return Err(de::Error::custom("input request has no method")),
        };
        let params = object.remove("params").filter(|p| !p.is_null());
        let required = |params: Option<Value>| -> Result<Value, D::Error> {
            params.ok_or_else(|| {
                de::Error::custom(format_args!("input request {method} has no params"))
            })
        };
        match method.as_str() {
            methods::ELICITATION_CREATE => serde_json::from_value(required(params)?)
                .map(InputRequest::Elicit)
                .map_err(de::Error::custom),
            methods::SAMPLING_CREATE_MESSAGE => serde_json::from_value(required(params)?)
                .map(InputRequest::CreateMessage)
                .map_err(de::Error::custom),
            methods::ROOTS_LIST => params
                .map(serde_json::from_value)
                .transpose()
                .map(InputRequest::ListRoots)
                .map_err(de::Error::custom),
            other => Err(de::Error::custom(format_args!(
                "unknown input request method {other:?} (expected elicitation/create, \
                 sampling/createMessage or roots/list)"
            ))),
        }
    }
}

/// The client's answer to one [`InputRequest`]: the result of that request.
// As for `InputRequest`: the sampling result is the large one, and answers are built rarely.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum InputResponse {
    /// Answer to `elicitation/create` (has `action`).
    Elicit(ElicitResult),
    /// Answer to `sampling/createMessage` (has `role`, `content` and `model`).
    CreateMessage(CreateMessageResult),
    /// Answer to `roots/list` (has `roots`).
    ListRoots(ListRootsResult),
}

impl<'de> Deserialize<'de> for InputResponse {
    /// Told apart by their required members, since an answer does not name the request it
    /// answers (the key does).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let Some(object) = value.as_object() else {
            return Err(de::Error::custom(format_args!(
                "input response must be an object, got {}",
                json_kind(&value)
            )));
        };
        let parsed = if object.contains_key("action") {
            serde_json::from_value(value).map(InputResponse::Elicit)
        } else if object.contains_key("roots") {
            serde_json::from_value(value).map(InputResponse::ListRoots)
        } else if object.contains_key("model") || object.contains_key("role") {
            serde_json::from_value(value).map(InputResponse::CreateMessage)
        } else {
            return Err(de::Error::custom(
                "input response is none of an elicitation result (action), a sampling result \
                 (role, content, model) or a roots result (roots)",
            ));
        };
        parsed.map_err(de::Error::custom)
    }
}

/// The result of a request the server cannot finish without input from the client
/// (`"resultType": "input_required"`). At least one of `inputRequests` and `requestState` is
/// present; on input a result with neither is refused.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InputRequiredResult {
    /// What the server needs, by key.
    pub input_requests: Option<InputRequests>,
    /// State the client echoes on its retry; opaque to the client, and untrusted by the server
    /// when it comes back.
    pub request_state: Option<String>,
    /// Result metadata.
    pub meta: Option<ResultMeta>,
}

impl InputRequiredResult {
    /// A result asking for the given input.
    pub fn new(input_requests: InputRequests) -> Self {
        InputRequiredResult {
            input_requests: Some(input_requests),
            ..Default::default()
        }
    }

    /// A result carrying only state: the client retries at once (e.g. load shedding).
    pub fn state_only(request_state: impl Into<String>) -> Self {
        InputRequiredResult {
            request_state: Some(request_state.into()),
            ..Default::default()
        }
    }

    /// Sets the state the client is to echo.
    pub fn with_request_state(mut self, request_state: impl Into<String>) -> Self {
        self.request_state = Some(request_state.into());
        self
    }
}

/// The wire shape of [`InputRequiredResult`] on input, with its `resultType`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InputRequiredWire {
    result_type: String,
    #[serde(default)]
    input_requests: Option<InputRequests>,
    #[serde(default)]
    request_state: Option<String>,
    #[serde(rename = "_meta", default)]
    meta: Option<ResultMeta>,
}

/// The wire shape of [`InputRequiredResult`] on output, borrowing from it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InputRequiredWireRef<'a> {
    result_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_requests: Option<&'a InputRequests>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_state: Option<&'a str>,
    #[serde(rename = "_meta", skip_serializing_if = "Option::is_none")]
    meta: Option<&'a ResultMeta>,
}

impl Serialize for InputRequiredResult {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        InputRequiredWireRef {
            result_type: "input_required",
            input_requests: self.input_requests.as_ref(),
            request_state: self.request_state.as_deref(),
            meta: self.meta.as_ref(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for InputRequiredResult {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = InputRequiredWire::deserialize(deserializer)?;
        if wire.result_type != "input_required" {
            return Err(de::Error::custom(format_args!(
                "resultType is \"{}\" where \"input_required\" was expected",
                wire.result_type
            )));
        }
        if wire.input_requests.is_none() && wire.request_state.is_none() {
            return Err(de::Error::custom(
                "an input_required result needs inputRequests or requestState",
            ));
        }
        Ok(InputRequiredResult {
            input_requests: wire.input_requests,
            request_state: wire.request_state,
            meta: wire.meta,
        })
    }
}

/// Params of a request that may be a retry answering an [`InputRequiredResult`]: the payload's
/// own params (e.g. [`crate::mcp::CallToolRequestParams`], whose `_meta` a
/// [`RequestMeta`](super::RequestMeta) reads) plus `inputResponses` and `requestState`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputResponseRequestParams<T> {
    /// The request's own params.
    #[serde(flatten)]
    pub params: T,
    /// The answers to the previous round's `inputRequests`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_responses: Option<InputResponses>,
    /// The previous round's `requestState`, echoed exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_state: Option<String>,
}

impl<T> InputResponseRequestParams<T> {
    /// A first attempt: params without input responses or state.
    pub fn new(params: T) -> Self {
        InputResponseRequestParams {
            params,
            input_responses: None,
            request_state: None,
        }
    }

    /// Whether this is a retry (it carries input responses or state); such results are never
    /// cached.
    pub fn is_retry(&self) -> bool {
        self.input_responses.is_some() || self.request_state.is_some()
    }
}
