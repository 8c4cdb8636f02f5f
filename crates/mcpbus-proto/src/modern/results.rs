//! What every 2026-07-28 result adds to a payload: `resultType`, and on cacheable results
//! `ttlMs` and `cacheScope`.
//!
//! The payloads themselves are mostly the handshake era's ([`crate::mcp::ListToolsResult`],
//! [`crate::mcp::CallToolResult`], ...); the wrappers here add the new members around them, so a
//! modern `tools/list` result is a `Complete<Cacheable<ListToolsResult>>` and a modern
//! `tools/call` result is an [`MrtrResult<CallToolResult>`](MrtrResult).

use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::mrtr::InputRequiredResult;

/// Wire name of the `resultType` member.
const RESULT_TYPE: &str = "resultType";

/// The `resultType` of a result: how the client is to read the rest of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ResultType {
    /// `"complete"`: the request is done and the result holds its content. An absent
    /// `resultType` (a server of an earlier revision) means this too.
    Complete,
    /// `"input_required"`: the server needs input first ([`InputRequiredResult`]).
    InputRequired,
    /// Another value, defined by an extension (e.g. `"task"`); a client that did not negotiate
    /// that extension must treat the result as invalid.
    Other(String),
}

impl ResultType {
    /// The wire value.
    pub fn as_str(&self) -> &str {
        match self {
            ResultType::Complete => "complete",
            ResultType::InputRequired => "input_required",
            ResultType::Other(other) => other,
        }
    }

    /// Reads a wire value.
    pub fn from_wire(value: &str) -> Self {
        match value {
            "complete" => ResultType::Complete,
            "input_required" => ResultType::InputRequired,
            other => ResultType::Other(other.to_owned()),
        }
    }

    /// The `resultType` of a raw result object: [`ResultType::Complete`] when absent; `None` when
    /// present but not a string.
    pub fn of(result: &Value) -> Option<Self> {
        match result.get(RESULT_TYPE) {
            None => Some(ResultType::Complete),
            Some(Value::String(s)) => Some(Self::from_wire(s)),
            Some(_) => None,
        }
    }
}

impl fmt::Display for ResultType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ResultType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ResultType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|s| Self::from_wire(&s))
    }
}

/// A complete result: the payload's members plus `"resultType": "complete"`.
///
/// On input an absent `resultType` is accepted (a server of an earlier revision) and any value
/// other than `"complete"` is refused; on output `"complete"` is always written.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Complete<T>(pub T);

impl<T> Complete<T> {
    /// Wraps a payload.
    pub fn new(result: T) -> Self {
        Complete(result)
    }

    /// The payload.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Complete<T> {
    fn from(result: T) -> Self {
        Complete(result)
    }
}

impl<T: Serialize> Serialize for Complete<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire<'a, U> {
            #[serde(rename = "resultType")]
            result_type: &'static str,
            #[serde(flatten)]
            result: &'a U,
        }
        Wire {
            result_type: "complete",
            result: &self.0,
        }
        .serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Complete<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire<U> {
            #[serde(rename = "resultType", default)]
            result_type: Option<ResultType>,
            #[serde(flatten)]
            result: U,
        }
        let wire = Wire::<T>::deserialize(deserializer)?;
        match wire.result_type {
            None | Some(ResultType::Complete) => Ok(Complete(wire.result)),
            Some(other) => Err(de::Error::custom(format_args!(
                "resultType is \"{other}\" where a complete result was expected"
            ))),
        }
    }
}

/// Who may keep a cached result (`cacheScope`), as HTTP `Cache-Control: public` / `private`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CacheScope {
    /// `"public"`: no user-specific data; any client or shared cache may serve it to anyone.
    Public,
    /// `"private"`: reusable only within the same authorization context.
    #[default]
    Private,
}

impl CacheScope {
    /// The wire value.
    pub fn as_str(&self) -> &'static str {
        match self {
            CacheScope::Public => "public",
            CacheScope::Private => "private",
        }
    }
}

impl Serialize for CacheScope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CacheScope {
    /// A value other than `"public"` reads as [`CacheScope::Private`]: a hint this crate does not
    /// know must not let a response be shared more widely than the server meant.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(deserializer)? {
            Value::String(s) if s == "public" => CacheScope::Public,
            _ => CacheScope::Private,
        })
    }
}

/// A cacheable result: the payload's members plus the caching hints `ttlMs` and `cacheScope`
/// (results of `server/discover`, the four list methods and `resources/read`).
///
/// The schema requires both hints, and [`Cacheable::new`] always sets them; on input they may be
/// absent (servers of earlier revisions, and some of the specification's own examples), which
/// reads as "stale at once, private" through [`Cacheable::ttl_ms_or_zero`] and
/// [`Cacheable::cache_scope_or_private`]. A negative `ttlMs` reads as `0`, as the specification
/// tells clients to treat it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cacheable<T> {
    /// How long, in milliseconds, the client may consider the result fresh.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_ttl"
    )]
    pub ttl_ms: Option<u64>,
    /// Who may keep the cached result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_scope: Option<CacheScope>,
    /// The payload.
    #[serde(flatten)]
    pub result: T,
}

impl<T> Cacheable<T> {
    /// A payload with both caching hints.
    pub fn new(result: T, ttl_ms: u64, cache_scope: CacheScope) -> Self {
        Cacheable {
            ttl_ms: Some(ttl_ms),
            cache_scope: Some(cache_scope),
            result,
        }
    }

    /// `ttlMs`, or 0 (immediately stale) when absent.
    pub fn ttl_ms_or_zero(&self) -> u64 {
        self.ttl_ms.unwrap_or(0)
    }

    /// `cacheScope`, or [`CacheScope::Private`] when absent.
    pub fn cache_scope_or_private(&self) -> CacheScope {
        self.cache_scope.unwrap_or_default()
    }
}

/// Reads `ttlMs`: a non-negative integer; negative integers read as 0; `null` as absent.
fn lenient_ttl<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        Value::Number(n) => {
            if let Some(ms) = n.as_u64() {
                Ok(Some(ms))
            } else if n.as_i64().is_some() {
                Ok(Some(0))
            } else {
                Err(de::Error::custom(format_args!(
                    "ttlMs must be a whole number of milliseconds, got {n}"
                )))
            }
        }
        other => Err(de::Error::custom(format_args!(
            "ttlMs must be a whole number of milliseconds, got {}",
            crate::jsonrpc::json_kind(&other)
        ))),
    }
}

/// The result of a request that may answer with [`InputRequiredResult`] (multi round-trip
/// requests: `tools/call`, `prompts/get`, `resources/read`): either the complete payload or a
/// request for input. Read by `resultType`: absent or `"complete"` is [`MrtrResult::Complete`],
/// `"input_required"` is [`MrtrResult::InputRequired`], anything else is refused.
// Clippy cannot size the generic payload; both variants are a few hundred bytes at most, and a
// result is built once per request, so boxing would only make the variants awkward to match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum MrtrResult<T> {
    /// The request is done.
    Complete(T),
    /// The server needs input; the client retries the request with it.
    InputRequired(InputRequiredResult),
}

impl<T: Serialize> Serialize for MrtrResult<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            MrtrResult::Complete(result) => Complete(result).serialize(serializer),
            MrtrResult::InputRequired(input) => input.serialize(serializer),
        }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for MrtrResult<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        match ResultType::of(&value) {
            Some(ResultType::Complete) => serde_json::from_value::<Complete<T>>(value)
                .map(|c| MrtrResult::Complete(c.0))
                .map_err(de::Error::custom),
            Some(ResultType::InputRequired) => serde_json::from_value(value)
                .map(MrtrResult::InputRequired)
                .map_err(de::Error::custom),
            Some(ResultType::Other(other)) => Err(de::Error::custom(format_args!(
                "unrecognised resultType \"{other}\" (expected \"complete\" or \"input_required\")"
            ))),
            None => Err(de::Error::custom("resultType must be a string")),
        }
    }
}
