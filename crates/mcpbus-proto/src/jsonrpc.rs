//! JSON-RPC 2.0 envelopes as MCP uses them.
//!
//! MCP restricts JSON-RPC in two ways that matter here: request ids are a string or an integer and
//! never `null`, and (since 2025-06-18) a message is always one object, never a batch array.
//! [`parse_message`] classifies any input into a [`Message`] or into the precise error a peer must
//! answer with: `-32700` when the bytes are not JSON at all, `-32600` when they are JSON but not one
//! valid JSON-RPC message.

use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error_codes;

/// The `jsonrpc` member every message carries.
pub const JSONRPC_VERSION: &str = "2.0";

/// A request id: a string or an integer, never `null`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RequestId {
    /// An integer id (any value that fits an `i64`).
    Number(i64),
    /// A string id.
    String(Arc<str>),
}

impl RequestId {
    /// Reads an id from a JSON value; `None` when the value is not a valid MCP id.
    pub fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(RequestId::String(Arc::from(s.as_str()))),
            Value::Number(n) => n.as_i64().map(RequestId::Number),
            _ => None,
        }
    }

    /// The id as a JSON value.
    pub fn to_value(&self) -> Value {
        match self {
            RequestId::Number(n) => Value::from(*n),
            RequestId::String(s) => Value::from(s.as_ref()),
        }
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestId::Number(n) => write!(f, "{n}"),
            RequestId::String(s) => f.write_str(s),
        }
    }
}

impl From<i64> for RequestId {
    fn from(n: i64) -> Self {
        RequestId::Number(n)
    }
}

impl From<&str> for RequestId {
    fn from(s: &str) -> Self {
        RequestId::String(Arc::from(s))
    }
}

impl From<String> for RequestId {
    fn from(s: String) -> Self {
        RequestId::String(Arc::from(s))
    }
}

impl Serialize for RequestId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            RequestId::Number(n) => serializer.serialize_i64(*n),
            RequestId::String(s) => serializer.serialize_str(s),
        }
    }
}

impl<'de> Deserialize<'de> for RequestId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        RequestId::from_value(&value)
            .ok_or_else(|| de::Error::custom("request id must be a string or an integer"))
    }
}

/// The error object of a JSON-RPC error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject {
    /// The error code (see [`crate::error_codes`]).
    pub code: i64,
    /// A short human-readable description.
    pub message: String,
    /// Extra information, free-form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ErrorObject {
    /// An error with a code and a message.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        ErrorObject {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Adds `data` to the error.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// `-32700`: the input was not valid JSON.
    pub fn parse_error(detail: impl fmt::Display) -> Self {
        Self::new(error_codes::PARSE_ERROR, format!("Parse error: {detail}"))
    }

    /// `-32600`: valid JSON but not a valid JSON-RPC message.
    pub fn invalid_request(detail: impl fmt::Display) -> Self {
        Self::new(
            error_codes::INVALID_REQUEST,
            format!("Invalid request: {detail}"),
        )
    }

    /// `-32601`: the method does not exist (or its capability was not negotiated).
    pub fn method_not_found(method: &str) -> Self {
        Self::new(
            error_codes::METHOD_NOT_FOUND,
            format!("Method not found: {method}"),
        )
    }

    /// `-32602`: the params of a request are invalid.
    pub fn invalid_params(detail: impl fmt::Display) -> Self {
        Self::new(
            error_codes::INVALID_PARAMS,
            format!("Invalid params: {detail}"),
        )
    }

    /// `-32603`: the receiver failed internally.
    pub fn internal(detail: impl fmt::Display) -> Self {
        Self::new(
            error_codes::INTERNAL_ERROR,
            format!("Internal error: {detail}"),
        )
    }
}

impl fmt::Display for ErrorObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ErrorObject {}

/// A request: expects exactly one response with the same id.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The id the response will carry.
    pub id: RequestId,
    /// The method name, e.g. `tools/call`.
    pub method: String,
    /// The params, an object or an array when present.
    pub params: Option<Value>,
}

/// A notification: no id, never answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The method name, e.g. `notifications/progress`.
    pub method: String,
    /// The params, an object or an array when present.
    pub params: Option<Value>,
}

/// A successful response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The id of the request this answers.
    pub id: RequestId,
    /// The result value.
    pub result: Value,
}

/// An error response. `id` is absent only when the request's id could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorResponse {
    /// The id of the request this answers, when it could be read.
    pub id: Option<RequestId>,
    /// What went wrong.
    pub error: ErrorObject,
}

/// Any one JSON-RPC message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A notification.
    Notification(Notification),
    /// A successful response.
    Response(Response),
    /// An error response.
    Error(ErrorResponse),
}

impl Message {
    /// A request message.
    pub fn request(
        id: impl Into<RequestId>,
        method: impl Into<String>,
        params: Option<Value>,
    ) -> Self {
        Message::Request(Request {
            id: id.into(),
            method: method.into(),
            params,
        })
    }

    /// A notification message.
    pub fn notification(method: impl Into<String>, params: Option<Value>) -> Self {
        Message::Notification(Notification {
            method: method.into(),
            params,
        })
    }

    /// A successful response message.
    pub fn response(id: RequestId, result: Value) -> Self {
        Message::Response(Response { id, result })
    }

    /// An error response message.
    pub fn error(id: Option<RequestId>, error: ErrorObject) -> Self {
        Message::Error(ErrorResponse { id, error })
    }

    /// The method, for requests and notifications.
    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Request(r) => Some(&r.method),
            Message::Notification(n) => Some(&n.method),
            _ => None,
        }
    }

    /// Serializes the message to compact JSON bytes (no trailing newline).
    pub fn to_vec(&self) -> Vec<u8> {
        // Serializing a `Value`-based message cannot fail: keys are strings and numbers finite.
        serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec())
    }
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("jsonrpc", JSONRPC_VERSION)?;
        match self {
            Message::Request(r) => {
                map.serialize_entry("id", &r.id)?;
                map.serialize_entry("method", &r.method)?;
                if let Some(p) = &r.params {
                    map.serialize_entry("params", p)?;
                }
            }
            Message::Notification(n) => {
                map.serialize_entry("method", &n.method)?;
                if let Some(p) = &n.params {
                    map.serialize_entry("params", p)?;
                }
            }
            Message::Response(r) => {
                map.serialize_entry("id", &r.id)?;
                map.serialize_entry("result", &r.result)?;
            }
            Message::Error(e) => {
                if let Some(id) = &e.id {
                    map.serialize_entry("id", id)?;
                }
                map.serialize_entry("error", &e.error)?;
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        message_from_value(value).map_err(|e| de::Error::custom(e.error.message))
    }
}

/// Why some input is not a JSON-RPC message, with the error response it deserves.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidMessage {
    /// The id of the offending request when it could be read (so the answer can carry it).
    pub id: Option<RequestId>,
    /// The error to answer with (`-32700` or `-32600`).
    pub error: ErrorObject,
}

impl InvalidMessage {
    fn parse(detail: impl fmt::Display) -> Self {
        InvalidMessage {
            id: None,
            error: ErrorObject::parse_error(detail),
        }
    }

    fn invalid(id: Option<RequestId>, detail: impl fmt::Display) -> Self {
        InvalidMessage {
            id,
            error: ErrorObject::invalid_request(detail),
        }
    }

    /// The error response to send back.
    pub fn to_response(&self) -> Message {
        Message::error(self.id.clone(), self.error.clone())
    }
}

impl fmt::Display for InvalidMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for InvalidMessage {}

/// Parses one JSON-RPC message from raw bytes.
///
/// Invalid UTF-8 and invalid JSON (including nesting deeper than 128 levels) give `-32700`;
/// anything else that is not exactly one valid message gives `-32600`, carrying the request id
/// when it could be read.
pub fn parse_message(bytes: &[u8]) -> Result<Message, InvalidMessage> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        InvalidMessage::parse(format_args!("invalid UTF-8 at byte {}", e.valid_up_to()))
    })?;
    parse_message_str(text)
}

/// Parses one JSON-RPC message from a string (see [`parse_message`]).
pub fn parse_message_str(text: &str) -> Result<Message, InvalidMessage> {
    let value: Value = serde_json::from_str(text).map_err(InvalidMessage::parse)?;
    message_from_value(value)
}

/// Classifies an already parsed JSON value as a JSON-RPC message.
pub fn message_from_value(value: Value) -> Result<Message, InvalidMessage> {
    let mut obj = into_object(value)?;
    // Read the id first so that every later complaint can be addressed to it.
    let id = read_id(obj.remove("id"))?;
    check_version(&obj, &id)?;

    let method = obj.remove("method");
    let result = obj.remove("result");
    let error = obj.remove("error");
    match method {
        Some(method) => call_from_parts(id, method, result.is_some() || error.is_some(), obj),
        None => answer_from_parts(id, result, error),
    }
}

/// The message's members, refusing batches and anything that is not an object.
fn into_object(value: Value) -> Result<Map<String, Value>, InvalidMessage> {
    match value {
        Value::Object(obj) => Ok(obj),
        Value::Array(_) => Err(InvalidMessage::invalid(
            None,
            "batch arrays are not supported; send one message per line or request",
        )),
        other => Err(InvalidMessage::invalid(
            None,
            format_args!("expected a JSON object, got {}", json_kind(&other)),
        )),
    }
}

/// Reads the `id` member: absent is a notification, `null` or a non-id type is refused (with
/// no id to answer to, since the id itself is what is wrong).
fn read_id(raw_id: Option<Value>) -> Result<Option<RequestId>, InvalidMessage> {
    match &raw_id {
        None => Ok(None),
        Some(Value::Null) => Err(InvalidMessage::invalid(None, "id must not be null")),
        Some(v) => RequestId::from_value(v).map(Some).ok_or_else(|| {
            InvalidMessage::invalid(
                None,
                format_args!(
                    "id must be a string or an integer that fits 64 bits, got {}",
                    json_kind(v)
                ),
            )
        }),
    }
}

/// Requires `"jsonrpc": "2.0"`.
fn check_version(obj: &Map<String, Value>, id: &Option<RequestId>) -> Result<(), InvalidMessage> {
    match obj.get("jsonrpc") {
        Some(Value::String(v)) if v == JSONRPC_VERSION => Ok(()),
        Some(_) => Err(InvalidMessage::invalid(
            id.clone(),
            "jsonrpc must be \"2.0\"",
        )),
        None => Err(InvalidMessage::invalid(
            id.clone(),
            "missing jsonrpc member",
        )),
    }
}

/// A message with a `method`: a request when it has an id, else a notification.
fn call_from_parts(
    id: Option<RequestId>,
    method: Value,
    has_result_or_error: bool,
    mut obj: Map<String, Value>,
) -> Result<Message, InvalidMessage> {
    let Value::String(method) = method else {
        return Err(InvalidMessage::invalid(id, "method must be a string"));
    };
    if has_result_or_error {
        return Err(InvalidMessage::invalid(
            id,
            "a request cannot carry result or error",
        ));
    }
    let params = match obj.remove("params") {
        None | Some(Value::Null) => None,
        Some(p @ (Value::Object(_) | Value::Array(_))) => Some(p),
        Some(other) => {
            return Err(InvalidMessage::invalid(
                id,
                format_args!(
                    "params must be an object or an array, got {}",
                    json_kind(&other)
                ),
            ));
        }
    };
    Ok(match id {
        Some(id) => Message::Request(Request { id, method, params }),
        None => Message::Notification(Notification { method, params }),
    })
}

/// A message without a `method`: a response or an error response.
fn answer_from_parts(
    id: Option<RequestId>,
    result: Option<Value>,
    error: Option<Value>,
) -> Result<Message, InvalidMessage> {
    match (result, error) {
        (Some(_), Some(_)) => Err(InvalidMessage::invalid(
            id,
            "a response cannot carry both result and error",
        )),
        (Some(result), None) => match id {
            Some(id) => Ok(Message::Response(Response { id, result })),
            None => Err(InvalidMessage::invalid(None, "a response must carry an id")),
        },
        (None, Some(error)) => {
            let error =
                parse_error_object(error).map_err(|m| InvalidMessage::invalid(id.clone(), m))?;
            Ok(Message::Error(ErrorResponse { id, error }))
        }
        (None, None) => Err(InvalidMessage::invalid(
            id,
            "a message needs a method (request, notification) or a result or error (response)",
        )),
    }
}

fn parse_error_object(value: Value) -> Result<ErrorObject, String> {
    let Value::Object(mut obj) = value else {
        return Err("error must be an object".into());
    };
    let code = match obj.remove("code") {
        Some(Value::Number(n)) => n.as_i64().ok_or("error.code must be an integer")?,
        _ => return Err("error.code must be an integer".into()),
    };
    let message = match obj.remove("message") {
        Some(Value::String(s)) => s,
        _ => return Err("error.message must be a string".into()),
    };
    Ok(ErrorObject {
        code,
        message,
        data: obj.remove("data"),
    })
}

/// A short name of a JSON value's type, for error messages.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) => match n.as_f64() {
            _ if n.is_i64() => "an integer",
            _ if n.is_u64() => "an integer beyond the 64-bit signed range",
            Some(f) if f.fract() == 0.0 && f.is_finite() => {
                "an integer beyond the 64-bit signed range"
            }
            _ => "a non-integer number",
        },
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Params as an object: absent params read as an empty object; an array is refused.
pub fn params_object(params: Option<Value>) -> Result<Map<String, Value>, ErrorObject> {
    match params {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(other) => Err(ErrorObject::invalid_params(format_args!(
            "params must be an object, got {}",
            json_kind(&other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn code_of(input: &[u8]) -> i64 {
        parse_message(input)
            .expect_err("should be invalid")
            .error
            .code
    }

    #[test]
    fn classifies_the_four_kinds() {
        let r = parse_message(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).unwrap();
        assert_eq!(r, Message::request(1, "ping", None));
        let n =
            parse_message(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(n, Message::notification("notifications/initialized", None));
        let ok = parse_message(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap();
        assert_eq!(ok, Message::response("a".into(), json!({})));
        let err =
            parse_message(br#"{"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"x"}}"#)
                .unwrap();
        assert_eq!(
            err,
            Message::error(Some(2.into()), ErrorObject::new(-32601, "x"))
        );
    }

    #[test]
    fn error_codes_for_bad_input() {
        assert_eq!(code_of(b"{not json"), error_codes::PARSE_ERROR);
        assert_eq!(code_of(b"\xff\xfe"), error_codes::PARSE_ERROR);
        assert_eq!(code_of(b"[]"), error_codes::INVALID_REQUEST);
        assert_eq!(code_of(b"42"), error_codes::INVALID_REQUEST);
        assert_eq!(
            code_of(br#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#),
            error_codes::INVALID_REQUEST
        );
        assert_eq!(
            code_of(br#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#),
            error_codes::INVALID_REQUEST
        );
        assert_eq!(
            code_of(br#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#),
            error_codes::INVALID_REQUEST
        );
        assert_eq!(
            code_of(br#"{"jsonrpc":"2.0","id":1,"method":7}"#),
            error_codes::INVALID_REQUEST
        );
        assert_eq!(
            code_of(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#),
            error_codes::INVALID_REQUEST
        );
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(code_of(deep.as_bytes()), error_codes::PARSE_ERROR);
    }

    #[test]
    fn invalid_request_keeps_a_readable_id() {
        let e = parse_message(br#"{"jsonrpc":"2.0","id":9,"method":false}"#).unwrap_err();
        assert_eq!(e.id, Some(RequestId::Number(9)));
        let out = serde_json::to_value(e.to_response()).unwrap();
        assert_eq!(out["id"], json!(9));
        assert_eq!(out["error"]["code"], json!(-32600));
    }

    #[test]
    fn id_less_error_omits_id() {
        let e = parse_message(b"nope").unwrap_err();
        let out = serde_json::to_value(e.to_response()).unwrap();
        assert!(out.get("id").is_none());
        assert_eq!(out["jsonrpc"], json!("2.0"));
    }

    #[test]
    fn unknown_members_are_ignored() {
        let m = parse_message(br#"{"jsonrpc":"2.0","id":"x","method":"ping","extra":{"a":1}}"#)
            .unwrap();
        assert_eq!(m, Message::request("x", "ping", None));
    }

    #[test]
    fn long_numbers_survive_a_round_trip() {
        // Found by fuzz/fuzz_targets/jsonrpc_parse.rs: without serde_json's `float_roundtrip`
        // this number parsed 1 ulp away from the value its own output parses to, so a relayed
        // payload changed on the way through.
        let input = br#"{"jsonrpc":"2.0","method":"m","params":[600000000000000000000000000000000000009319448828905346378]}"#;
        let message = parse_message(input).unwrap();
        assert_eq!(parse_message(&message.to_vec()).unwrap(), message);
    }

    #[test]
    fn serializes_round_trip() {
        for m in [
            Message::request(5, "tools/list", Some(json!({"cursor": "c"}))),
            Message::notification("notifications/progress", Some(json!({"progress": 1}))),
            Message::response("s".into(), json!({"ok": true})),
            Message::error(None, ErrorObject::new(-32700, "bad")),
        ] {
            let bytes = m.to_vec();
            assert_eq!(parse_message(&bytes).unwrap(), m);
        }
    }
}
