//! The `_meta` keys of the 2026-07-28 revision, with typed views over a `_meta` object.
//!
//! Modern requests carry what the handshake used to negotiate in `params._meta`: the protocol
//! revision, the client's capabilities, who the client is and the log level it wants. Results
//! may name the server, and notifications and results on a `subscriptions/listen` stream name the
//! stream. [`RequestMeta`], [`ResultMeta`] and [`NotificationMeta`] read and write those keys and
//! keep every other key (`progressToken` aside, which requests type too) in `extra`, so a `_meta`
//! object survives a round trip. Payload types reused from [`crate::mcp`] keep `_meta` as a plain
//! map; `from_map` and `to_map` convert between the two.

use serde::de::{self, DeserializeOwned, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::capabilities::ClientCapabilities;
use crate::jsonrpc::{ErrorObject, RequestId, json_kind};
use crate::mcp::{Implementation, LoggingLevel, ProgressToken};

/// `_meta` key of a request's protocol revision (required on every modern request).
pub const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key of the client's capabilities for this request (required on every modern request).
pub const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key of the client's name and version (clients should send it on every request).
pub const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
/// `_meta` key of the lowest log level the client wants for this request; without it the server
/// sends no `notifications/message` for the request.
pub const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
/// `_meta` key of the server's name and version on a result.
pub const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// `_meta` key naming the `subscriptions/listen` stream (the id of its request) on every message
/// of that stream.
pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";
/// `_meta` key of the token a request asks progress notifications under (all revisions).
pub const PROGRESS_TOKEN: &str = "progressToken";

/// Why a `_meta` object does not hold what the 2026-07-28 revision requires. A server answers it
/// with `-32602` (see [`MetaError::to_error_object`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    /// The request has no `params._meta` at all.
    #[error(
        "params._meta is missing (a 2026-07-28 request needs \
         io.modelcontextprotocol/protocolVersion and io.modelcontextprotocol/clientCapabilities there)"
    )]
    MissingMeta,
    /// `params` or `params._meta` is not a JSON object.
    #[error("{what} must be an object, got {kind}")]
    NotAnObject {
        /// `"params"` or `"params._meta"`.
        what: &'static str,
        /// The JSON type found instead.
        kind: &'static str,
    },
    /// A required key is absent.
    #[error("params._meta is missing {key}")]
    Missing {
        /// The missing key.
        key: &'static str,
    },
    /// A key holds a value of the wrong shape.
    #[error("params._meta[\"{key}\"] is invalid: {detail}")]
    Invalid {
        /// The offending key.
        key: &'static str,
        /// What is wrong with its value.
        detail: String,
    },
}

impl MetaError {
    /// The `-32602` error a server answers the request with.
    pub fn to_error_object(&self) -> ErrorObject {
        ErrorObject::invalid_params(self)
    }
}

impl From<MetaError> for ErrorObject {
    fn from(error: MetaError) -> Self {
        error.to_error_object()
    }
}

/// Removes `key` from `map` and reads it as `T`; an absent key and `null` both read as `None`.
fn take<T: DeserializeOwned>(
    map: &mut Map<String, Value>,
    key: &'static str,
) -> Result<Option<T>, MetaError> {
    match map.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value)
            .map(Some)
            .map_err(|e| MetaError::Invalid {
                key,
                detail: e.to_string(),
            }),
    }
}

/// Like [`take`] for a key that must be present.
fn take_required<T: DeserializeOwned>(
    map: &mut Map<String, Value>,
    key: &'static str,
) -> Result<T, MetaError> {
    take(map, key)?.ok_or(MetaError::Missing { key })
}

/// Inserts `value` under `key` when it serializes (the types here always do).
fn put<T: Serialize>(map: &mut Map<String, Value>, key: &str, value: &T) {
    if let Ok(value) = serde_json::to_value(value) {
        map.insert(key.to_owned(), value);
    }
}

/// The `_meta` of a 2026-07-28 request (the schema's `RequestMetaObject`).
///
/// ```
/// use mcpbus_proto::mcp::{Implementation, LoggingLevel};
/// use mcpbus_proto::modern::{ClientCapabilities, RequestMeta};
///
/// let meta = RequestMeta::new("2026-07-28", ClientCapabilities::default())
///     .with_client_info(Implementation::new("ExampleClient", "1.0.0"))
///     .with_log_level(LoggingLevel::Info);
/// let map = meta.to_map();
/// assert_eq!(map["io.modelcontextprotocol/protocolVersion"], "2026-07-28");
/// assert_eq!(RequestMeta::from_map(&map).unwrap(), meta);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RequestMeta {
    /// The revision this request speaks ([`PROTOCOL_VERSION`], required).
    pub protocol_version: String,
    /// What the client can do for this request ([`CLIENT_CAPABILITIES`], required; empty means
    /// no optional capability).
    pub client_capabilities: ClientCapabilities,
    /// Who the client says it is ([`CLIENT_INFO`]); self-reported, for display and logs only.
    pub client_info: Option<Implementation>,
    /// The lowest log level the client wants for this request ([`LOG_LEVEL`]).
    pub log_level: Option<LoggingLevel>,
    /// The token progress notifications for this request carry ([`PROGRESS_TOKEN`]).
    pub progress_token: Option<ProgressToken>,
    /// Every other key (`traceparent`, vendor keys, ...), kept as it is.
    pub extra: Map<String, Value>,
}

impl RequestMeta {
    /// Metadata with the two required keys only.
    pub fn new(
        protocol_version: impl Into<String>,
        client_capabilities: ClientCapabilities,
    ) -> Self {
        RequestMeta {
            protocol_version: protocol_version.into(),
            client_capabilities,
            client_info: None,
            log_level: None,
            progress_token: None,
            extra: Map::new(),
        }
    }

    /// Sets the client's name and version.
    pub fn with_client_info(mut self, client_info: Implementation) -> Self {
        self.client_info = Some(client_info);
        self
    }

    /// Sets the log level the client wants for this request.
    pub fn with_log_level(mut self, level: LoggingLevel) -> Self {
        self.log_level = Some(level);
        self
    }

    /// Sets the progress token.
    pub fn with_progress_token(mut self, token: impl Into<ProgressToken>) -> Self {
        self.progress_token = Some(token.into());
        self
    }

    /// Reads a request's `_meta` object.
    pub fn from_map(meta: &Map<String, Value>) -> Result<Self, MetaError> {
        Self::from_owned_map(meta.clone())
    }

    /// Reads a request's `_meta` object, taking ownership of it.
    pub fn from_owned_map(mut meta: Map<String, Value>) -> Result<Self, MetaError> {
        Ok(RequestMeta {
            protocol_version: take_required(&mut meta, PROTOCOL_VERSION)?,
            client_capabilities: take_required(&mut meta, CLIENT_CAPABILITIES)?,
            client_info: take(&mut meta, CLIENT_INFO)?,
            log_level: take(&mut meta, LOG_LEVEL)?,
            progress_token: take(&mut meta, PROGRESS_TOKEN)?,
            extra: meta,
        })
    }

    /// Reads the `_meta` of a request's raw `params`.
    pub fn from_params(params: Option<&Value>) -> Result<Self, MetaError> {
        let params = match params {
            None | Some(Value::Null) => return Err(MetaError::MissingMeta),
            Some(Value::Object(params)) => params,
            Some(other) => {
                return Err(MetaError::NotAnObject {
                    what: "params",
                    kind: json_kind(other),
                });
            }
        };
        match params.get("_meta") {
            None | Some(Value::Null) => Err(MetaError::MissingMeta),
            Some(Value::Object(meta)) => Self::from_map(meta),
            Some(other) => Err(MetaError::NotAnObject {
                what: "params._meta",
                kind: json_kind(other),
            }),
        }
    }

    /// The metadata as a `_meta` object.
    pub fn to_map(&self) -> Map<String, Value> {
        let mut map = self.extra.clone();
        self.write_to(&mut map);
        map
    }

    /// Writes the typed keys into an existing `_meta` object (replacing them there) and adds the
    /// `extra` keys it lacks; other keys of `meta` stay.
    pub fn write_to(&self, meta: &mut Map<String, Value>) {
        for (key, value) in &self.extra {
            meta.entry(key.clone()).or_insert_with(|| value.clone());
        }
        meta.insert(
            PROTOCOL_VERSION.to_owned(),
            Value::String(self.protocol_version.clone()),
        );
        put(meta, CLIENT_CAPABILITIES, &self.client_capabilities);
        if let Some(info) = &self.client_info {
            put(meta, CLIENT_INFO, info);
        }
        if let Some(level) = self.log_level {
            put(meta, LOG_LEVEL, &level);
        }
        if let Some(token) = &self.progress_token {
            put(meta, PROGRESS_TOKEN, token);
        }
    }
}

/// The protocol revision a request's raw `params` names in `_meta`, if any; a cheap look that
/// parses nothing else (for telling the eras apart).
pub fn protocol_version_of(params: Option<&Value>) -> Option<&str> {
    params?.get("_meta")?.get(PROTOCOL_VERSION)?.as_str()
}

/// The `_meta` of a 2026-07-28 result (the schema's `ResultMetaObject`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResultMeta {
    /// Who the server says it is ([`SERVER_INFO`]); servers should send it on every result.
    pub server_info: Option<Implementation>,
    /// Every other key, kept as it is.
    pub extra: Map<String, Value>,
}

impl ResultMeta {
    /// Metadata naming the server.
    pub fn with_server_info(server_info: Implementation) -> Self {
        ResultMeta {
            server_info: Some(server_info),
            extra: Map::new(),
        }
    }

    /// Reads a result's `_meta` object.
    pub fn from_map(meta: &Map<String, Value>) -> Result<Self, MetaError> {
        Self::from_owned_map(meta.clone())
    }

    /// Reads a result's `_meta` object, taking ownership of it.
    pub fn from_owned_map(mut meta: Map<String, Value>) -> Result<Self, MetaError> {
        Ok(ResultMeta {
            server_info: take(&mut meta, SERVER_INFO)?,
            extra: meta,
        })
    }

    /// The metadata as a `_meta` object.
    pub fn to_map(&self) -> Map<String, Value> {
        let mut map = self.extra.clone();
        if let Some(info) = &self.server_info {
            put(&mut map, SERVER_INFO, info);
        }
        map
    }
}

/// The `_meta` of a 2026-07-28 notification (the schema's `NotificationMetaObject`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NotificationMeta {
    /// The `subscriptions/listen` stream the notification was delivered on
    /// ([`SUBSCRIPTION_ID`]); absent on notifications that belong to one request (progress, log).
    pub subscription_id: Option<RequestId>,
    /// Every other key, kept as it is.
    pub extra: Map<String, Value>,
}

impl NotificationMeta {
    /// Metadata naming the listen stream `subscription_id`.
    pub fn for_subscription(subscription_id: impl Into<RequestId>) -> Self {
        NotificationMeta {
            subscription_id: Some(subscription_id.into()),
            extra: Map::new(),
        }
    }

    /// Reads a notification's `_meta` object.
    pub fn from_map(meta: &Map<String, Value>) -> Result<Self, MetaError> {
        Self::from_owned_map(meta.clone())
    }

    /// Reads a notification's `_meta` object, taking ownership of it.
    pub fn from_owned_map(mut meta: Map<String, Value>) -> Result<Self, MetaError> {
        Ok(NotificationMeta {
            subscription_id: take(&mut meta, SUBSCRIPTION_ID)?,
            extra: meta,
        })
    }

    /// The metadata as a `_meta` object.
    pub fn to_map(&self) -> Map<String, Value> {
        let mut map = self.extra.clone();
        if let Some(id) = &self.subscription_id {
            put(&mut map, SUBSCRIPTION_ID, id);
        }
        map
    }
}

/// Serde for the three views: as the `_meta` object, through `from_owned_map` and `to_map` so
/// that serde and the accessors agree on every key and every error message.
macro_rules! meta_serde {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.to_map().serialize(serializer)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let map = Map::<String, Value>::deserialize(deserializer)?;
                <$ty>::from_owned_map(map).map_err(de::Error::custom)
            }
        }
    };
}

meta_serde!(RequestMeta);
meta_serde!(ResultMeta);
meta_serde!(NotificationMeta);
