//! The session's own requests: `initialize`, `ping` and `logging/setLevel`.

use mcpbus_proto::jsonrpc::ErrorObject;
use mcpbus_proto::mcp::{
    EmptyResult, InitializeRequestParams, InitializeResult, LATEST_PROTOCOL_VERSION,
    SetLevelRequestParams, is_supported_protocol_version,
};
use serde_json::{Value, json};

use crate::server::context::{ClientSession, Context, lock};
use crate::service::{parse_params, to_result};

/// `initialize`: records the client, negotiates the revision (ours when the client's is
/// unknown), and tells the client what the server offers.
pub(crate) fn initialize(params: Option<Value>, ctx: &Context) -> Result<Value, ErrorObject> {
    let params: InitializeRequestParams = parse_params(params)?;
    let session = &ctx.session;
    let inner = &ctx.server.inner;
    let version = if is_supported_protocol_version(&params.protocol_version) {
        params.protocol_version.clone()
    } else {
        LATEST_PROTOCOL_VERSION.to_string()
    };
    {
        let mut client = lock(&session.client);
        if client.is_some() {
            return Err(ErrorObject::invalid_request(
                "the session is already initialized",
            ));
        }
        *client = Some(ClientSession {
            protocol_version: version.clone(),
            client_info: params.client_info.clone(),
            capabilities: params.capabilities.clone(),
        });
    }
    if let Some(identify) = &inner.agent_identity {
        let mut principal = lock(&session.principal);
        // A session opened with a credential is the agent its identity names: what the client
        // says in `initialize` does not outrank it.
        if principal.identity.is_none() {
            principal.agent_id = identify(&session.id, &params).into();
        }
    }
    tracing::info!(
        session = %session.id,
        client = %params.client_info.name,
        client_version = %params.client_info.version,
        protocol = %version,
        "session initialized"
    );
    let mut result = InitializeResult::new(version, inner.capabilities(), inner.info.clone());
    result.instructions = inner.instructions.clone();
    result.set_session_id(session.id.to_string());
    to_result(&result)
}

/// `ping`: an empty result.
pub(crate) fn ping() -> Result<Value, ErrorObject> {
    Ok(json!({}))
}

/// `logging/setLevel`: log messages below this level are no longer sent to the session.
pub(crate) fn set_log_level(params: Option<Value>, ctx: &Context) -> Result<Value, ErrorObject> {
    let p: SetLevelRequestParams = parse_params(params)?;
    *lock(&ctx.session.log_level) = Some(p.level);
    to_result(&EmptyResult::default())
}
