//! Answers the input a 2026-07-28 server asks for in `input_required` (elicitation, sampling,
//! roots) through the same callbacks that answer the handshake era's server requests, so that an
//! application writes each callback once for both eras.

use mcpbus_proto::mcp::{self, ListRootsResult, methods};
use mcpbus_proto::modern::{self, InputRequest, InputRequests, InputResponse, InputResponses};
use serde_json::Value;

use super::handler::Handlers;
use crate::error::{Error, Result};

/// Answers every input request, one after the other in key order (a user answers one
/// question at a time).
pub(super) async fn answer(handlers: &Handlers, requests: InputRequests) -> Result<InputResponses> {
    let mut responses = InputResponses::new();
    for (key, request) in requests {
        let method = request.method();
        let response = match request {
            InputRequest::Elicit(params) => {
                let f = handlers
                    .elicitation
                    .as_ref()
                    .ok_or_else(|| unhandled(&key, method))?;
                let params = legacy_elicitation(&key, params)?;
                InputResponse::Elicit(f(params).await.map_err(|e| failed(&key, method, &e))?)
            }
            InputRequest::CreateMessage(params) => {
                let f = handlers
                    .sampling
                    .as_ref()
                    .ok_or_else(|| unhandled(&key, method))?;
                InputResponse::CreateMessage(f(params).await.map_err(|e| failed(&key, method, &e))?)
            }
            InputRequest::ListRoots(_) => {
                let roots = handlers
                    .roots
                    .as_ref()
                    .ok_or_else(|| unhandled(&key, method))?;
                let roots = roots.read().unwrap_or_else(|p| p.into_inner()).clone();
                InputResponse::ListRoots(ListRootsResult { roots, meta: None })
            }
        };
        responses.insert(key, response);
    }
    Ok(responses)
}

/// The elicitation as the callback knows it (the handshake era's params). 2026-07-28 URL mode
/// has no `elicitationId`: the input's key stands in for it.
fn legacy_elicitation(
    key: &str,
    params: modern::ElicitRequestParams,
) -> Result<mcp::ElicitRequestParams> {
    let invalid = |source| Error::InvalidResponse {
        method: methods::ELICITATION_CREATE.to_owned(),
        source,
    };
    let mut value = serde_json::to_value(&params).map_err(invalid)?;
    if let (modern::ElicitRequestParams::Url(_), Some(object)) = (&params, value.as_object_mut()) {
        object
            .entry("elicitationId")
            .or_insert_with(|| Value::String(key.to_owned()));
    }
    serde_json::from_value(value).map_err(invalid)
}

/// The server asked for input the client declared no capability for.
fn unhandled(key: &str, method: &str) -> Error {
    Error::Protocol(format!(
        "the server asked for {method} (input {key:?}), which this client has no callback for \
         (and did not declare)"
    ))
}

/// The callback refused to answer: there is no error answer in `inputResponses`, so the request
/// fails here.
fn failed(key: &str, method: &str, error: &mcpbus_proto::ErrorObject) -> Error {
    Error::Protocol(format!(
        "answering the server's {method} (input {key:?}) failed: {}",
        error.message
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn url_elicitations_get_the_key_as_their_id() {
        let params: modern::ElicitRequestParams =
            serde_json::from_value(json!({"mode": "url", "message": "m", "url": "http://x"}))
                .expect("url mode");
        match legacy_elicitation("login", params).expect("converts") {
            mcp::ElicitRequestParams::Url(url) => assert_eq!(url.elicitation_id, "login"),
            other => panic!("{other:?}"),
        }
        let params: modern::ElicitRequestParams = serde_json::from_value(
            json!({"mode": "form", "message": "m", "requestedSchema": {"type": "object"}}),
        )
        .expect("form mode");
        assert!(matches!(
            legacy_elicitation("k", params),
            Ok(mcp::ElicitRequestParams::Form(_))
        ));
    }
}
