//! The client's requests in the 2026-07-28 era (docs/client.md): every request carries the
//! client's revision, capabilities, identity and wanted log level in `_meta`; a `-32022` answer
//! is retried once with a revision the server names; `resultType` is read on every result, and
//! an `input_required` answer to `tools/call`, `prompts/get` or `resources/read` is answered
//! through the client's elicitation, sampling and roots callbacks and retried, round after round.

use std::sync::RwLock;

use mcpbus_proto::error_codes;
use mcpbus_proto::jsonrpc::RequestId;
use mcpbus_proto::mcp::{self, Implementation, LoggingLevel, methods};
use mcpbus_proto::modern::{
    self, ClientCapabilities, DiscoverResult, InputRequiredResult, RequestMeta, ResultType,
};
use serde_json::{Map, Value};

use super::handler::ClientShared;
use super::input;
use crate::error::{Error, Result};
use crate::service::{Peer, RequestOptions};
use crate::transport::HttpHandle;

/// How many `input_required` rounds one request may take before the client gives up.
pub const MAX_INPUT_ROUNDS: usize = 16;

/// What a modern client sends with every request, and what it learned from `server/discover`.
pub(super) struct ModernLink {
    /// The revision spoken (changes only when the server answers `-32022`).
    version: RwLock<String>,
    info: Implementation,
    capabilities: ClientCapabilities,
    log_level: RwLock<Option<LoggingLevel>>,
    /// The HTTP transport's handle, when the server is reached over HTTP.
    pub(super) http: Option<HttpHandle>,
    /// What `server/discover` said.
    pub(super) discover: DiscoverResult,
}

impl ModernLink {
    pub(super) fn new(
        version: String,
        info: Implementation,
        capabilities: ClientCapabilities,
        http: Option<HttpHandle>,
        discover: DiscoverResult,
    ) -> Self {
        ModernLink {
            version: RwLock::new(version),
            info,
            capabilities,
            log_level: RwLock::new(None),
            http,
            discover,
        }
    }

    /// The `_meta` of the next request.
    pub(super) fn meta(&self) -> RequestMeta {
        let version = read(&self.version).clone();
        let mut meta = RequestMeta::new(version, self.capabilities.clone())
            .with_client_info(self.info.clone());
        meta.log_level = *read(&self.log_level);
        meta
    }

    /// The log level asked for in every later request's `_meta` (2026-07-28 has no
    /// `logging/setLevel`: without it the server sends no log messages).
    pub(super) fn set_log_level(&self, level: LoggingLevel) {
        *self.log_level.write().unwrap_or_else(|p| p.into_inner()) = Some(level);
    }

    /// `params` with the request metadata in `_meta` (other `_meta` keys stay).
    fn with_meta(&self, method: &str, params: Option<Value>) -> Result<Value> {
        let mut params = match params {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(object)) => object,
            Some(_) => {
                return Err(Error::Protocol(format!(
                    "{method}: 2026-07-28 requests need object params (for _meta)"
                )));
            }
        };
        let meta = params
            .entry("_meta")
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(meta) = meta else {
            return Err(Error::Protocol(format!(
                "{method}: params._meta must be an object"
            )));
        };
        self.meta().write_to(meta);
        Ok(Value::Object(params))
    }

    /// Sends one request with `_meta`; after `-32022`, sends it again once at a revision the
    /// server offers (and keeps that revision).
    pub(super) async fn send(
        &self,
        peer: &Peer,
        method: &str,
        params: Option<Value>,
        opts: RequestOptions,
    ) -> Result<Value> {
        self.send_tracked(peer, method, params, opts, &|_| {}).await
    }

    /// Like [`send`](Self::send), telling `on_id` the id of each request sent (a retry after
    /// `-32022` has an id of its own) before it goes out.
    pub(super) async fn send_tracked(
        &self,
        peer: &Peer,
        method: &str,
        params: Option<Value>,
        opts: RequestOptions,
        on_id: &(dyn Fn(&RequestId) + Sync),
    ) -> Result<Value> {
        let first = self.with_meta(method, params.clone())?;
        match peer
            .request_tracked(method, Some(first), opts.clone(), on_id)
            .await
        {
            Err(Error::Remote(e)) if e.code == error_codes::UNSUPPORTED_PROTOCOL_VERSION => {
                let offered = e
                    .unsupported_protocol_version_data()
                    .map(|d| d.supported)
                    .unwrap_or_default();
                let current = read(&self.version).clone();
                let Some(next) = modern::SUPPORTED_PROTOCOL_VERSIONS
                    .iter()
                    .find(|v| **v != current && offered.iter().any(|o| o == *v))
                else {
                    return Err(Error::Remote(e));
                };
                tracing::info!(from = %current, to = next, "the server asked for another revision");
                *self.version.write().unwrap_or_else(|p| p.into_inner()) = (*next).to_owned();
                let again = self.with_meta(method, params)?;
                peer.request_tracked(method, Some(again), opts, on_id).await
            }
            other => other,
        }
    }

    /// A request whose result must be complete (every method but the three that may ask for
    /// input).
    pub(super) async fn request(
        &self,
        peer: &Peer,
        method: &str,
        params: Option<Value>,
        opts: RequestOptions,
    ) -> Result<Value> {
        let result = self.send(peer, method, params, opts).await?;
        match ResultType::of(&result) {
            Some(ResultType::Complete) => Ok(result),
            Some(ResultType::InputRequired) => Err(Error::Protocol(format!(
                "{method} was answered with input_required, which only tools/call, prompts/get \
                 and resources/read may be"
            ))),
            other => Err(unsupported_result_type(method, other)),
        }
    }

    /// `tools/call`, `prompts/get` or `resources/read`: answers `input_required` through the
    /// client's callbacks and retries (a new request id each time) until the result is
    /// complete, for at most [`MAX_INPUT_ROUNDS`] rounds.
    pub(super) async fn request_with_input(
        &self,
        peer: &Peer,
        shared: &ClientShared,
        method: &str,
        params: Value,
        opts: RequestOptions,
    ) -> Result<Value> {
        let mut attempt = params.clone();
        for round in 1..=MAX_INPUT_ROUNDS {
            let result = self.send(peer, method, Some(attempt), opts.clone()).await?;
            match ResultType::of(&result) {
                Some(ResultType::Complete) => return Ok(result),
                Some(ResultType::InputRequired) => {}
                other => return Err(unsupported_result_type(method, other)),
            }
            let asked: InputRequiredResult =
                serde_json::from_value(result).map_err(|source| Error::InvalidResponse {
                    method: method.to_owned(),
                    source,
                })?;
            tracing::debug!(method, round, "the server asked for input");
            // The retry is the original request plus this round's answers and state, and
            // nothing of an earlier round: the server keeps what it needs in its state.
            attempt = params.clone();
            if let Some(requests) = asked.input_requests {
                let responses = input::answer(&shared.handlers, requests).await?;
                put(
                    &mut attempt,
                    "inputResponses",
                    serde_json::to_value(responses),
                );
            }
            if let Some(state) = asked.request_state {
                put(&mut attempt, "requestState", Ok(Value::String(state)));
            }
        }
        Err(Error::Protocol(format!(
            "{method}: the server still asked for input after {MAX_INPUT_ROUNDS} rounds; giving up"
        )))
    }
}

fn put(params: &mut Value, key: &str, value: serde_json::Result<Value>) {
    if let (Some(object), Ok(value)) = (params.as_object_mut(), value) {
        object.insert(key.to_owned(), value);
    }
}

fn unsupported_result_type(method: &str, found: Option<ResultType>) -> Error {
    match found {
        Some(t) => Error::Protocol(format!(
            "{method} was answered with resultType {:?}, which this client does not support",
            t.as_str()
        )),
        None => Error::Protocol(format!("{method}: resultType of the answer is no string")),
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

/// The client's capabilities as 2026-07-28 writes them: `roots` is an empty object (there is no
/// list-changed notification of roots any more), the rest as declared.
pub(super) fn modern_capabilities(legacy: &mcp::ClientCapabilities) -> ClientCapabilities {
    let mut capabilities: ClientCapabilities = serde_json::to_value(legacy)
        .and_then(serde_json::from_value)
        .unwrap_or_default();
    if legacy.roots.is_some() {
        capabilities.roots = Some(Map::new());
    }
    capabilities.extra.remove("tasks");
    capabilities
}

/// Whether `method` may be answered with `input_required`.
pub(super) fn takes_input(method: &str) -> bool {
    matches!(
        method,
        methods::TOOLS_CALL | methods::PROMPTS_GET | methods::RESOURCES_READ
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpbus_proto::mcp::{ElicitationCapability, RootsCapability};
    use serde_json::json;

    #[test]
    fn capabilities_take_the_modern_shape() {
        let legacy = mcp::ClientCapabilities {
            roots: Some(RootsCapability {
                list_changed: Some(true),
            }),
            sampling: Some(Map::new()),
            elicitation: Some(ElicitationCapability {
                form: Some(Map::new()),
                url: None,
            }),
            ..Default::default()
        };
        let modern = serde_json::to_value(modern_capabilities(&legacy)).expect("json");
        assert_eq!(
            modern,
            json!({"roots": {}, "sampling": {}, "elicitation": {"form": {}}})
        );
    }

    #[test]
    fn meta_is_merged_into_params() {
        let link = ModernLink::new(
            "2026-07-28".into(),
            Implementation::new("c", "1"),
            ClientCapabilities::default(),
            None,
            DiscoverResult::default(),
        );
        link.set_log_level(LoggingLevel::Debug);
        let params = link
            .with_meta(
                "tools/call",
                Some(json!({"name": "t", "_meta": {"progressToken": 7}})),
            )
            .expect("params");
        assert_eq!(params["name"], "t");
        let meta = &params["_meta"];
        assert_eq!(meta["progressToken"], 7);
        assert_eq!(
            meta["io.modelcontextprotocol/protocolVersion"],
            "2026-07-28"
        );
        assert_eq!(
            meta["io.modelcontextprotocol/clientCapabilities"],
            json!({})
        );
        assert_eq!(meta["io.modelcontextprotocol/clientInfo"]["name"], "c");
        assert_eq!(meta["io.modelcontextprotocol/logLevel"], "debug");
        assert!(link.with_meta("x", Some(json!([1]))).is_err());
    }
}
