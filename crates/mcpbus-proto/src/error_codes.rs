//! JSON-RPC and MCP error codes.
//!
//! 2026-07-28 reserves `-32020` to `-32099` for codes the MCP specification defines and leaves
//! `-32000` to `-32019` to implementations; its own codes are the last three here.

/// The input is not valid JSON (or not valid UTF-8).
pub const PARSE_ERROR: i64 = -32700;
/// The JSON is not a valid JSON-RPC message.
pub const INVALID_REQUEST: i64 = -32600;
/// The method does not exist, or its capability was not negotiated.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// The params are invalid: unknown tool or prompt, bad cursor, too deep a topic pattern…
pub const INVALID_PARAMS: i64 = -32602;
/// The receiver failed internally.
pub const INTERNAL_ERROR: i64 = -32603;
/// A request timed out before its response arrived (SDK-defined, as in the official SDKs).
pub const REQUEST_TIMEOUT: i64 = -32001;
/// A resource does not exist (legacy era, up to 2025-11-25).
pub const RESOURCE_NOT_FOUND: i64 = -32002;
/// The request was cancelled (SDK-defined; a cancelled request normally gets no answer at all).
pub const REQUEST_CANCELLED: i64 = -32800;
/// A URL-mode elicitation is required before the request can proceed (2025-11-25).
pub const URL_ELICITATION_REQUIRED: i64 = -32042;
/// HTTP headers of a request are missing, malformed or disagree with its body (2026-07-28;
/// HTTP 400). See [`ErrorObject::header_mismatch`](crate::ErrorObject::header_mismatch).
pub const HEADER_MISMATCH: i64 = -32020;
/// The request needs a client capability its `_meta` does not declare; `data.requiredCapabilities`
/// lists them (2026-07-28; HTTP 400). See
/// [`ErrorObject::missing_required_client_capability`](crate::ErrorObject::missing_required_client_capability).
pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;
/// The server does not speak the request's protocol revision; `data.supported` lists the ones it
/// does and `data.requested` repeats the asked one (2026-07-28; HTTP 400). See
/// [`ErrorObject::unsupported_protocol_version`](crate::ErrorObject::unsupported_protocol_version).
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

// The five general-purpose codes SEP-3415 (the Events extension, `io.modelcontextprotocol/events`,
// a draft) requests as the next allocations after `-32022`. The numbers are provisional until the
// SEP is accepted (its design sketch used `-32011` to `-32015`), which is why they are named here
// once and nowhere else: docs/protocol.md 3 keeps the table.

/// A referenced entity does not exist: an unknown event name, or no webhook subscription with
/// the given key; `data.kind` is `"event"` or `"subscription"` (SEP-3415, provisional number).
pub const NOT_FOUND: i64 = -32023;
/// The principal may not use this event type with these arguments, or lost its access
/// (SEP-3415, provisional number).
pub const FORBIDDEN: i64 = -32024;
/// A server limit was reached; `data.limit` names it, `data.max` may give it (SEP-3415,
/// provisional number).
pub const RESOURCE_EXHAUSTED: i64 = -32025;
/// A well-formed request asks for something not offered here, e.g. a delivery mode; `data`
/// names it (`{"feature": "deliveryMode", "value": "push"}`) (SEP-3415, provisional number).
pub const UNSUPPORTED: i64 = -32026;
/// A webhook callback endpoint failed verification or could not be reached; `data.reason` is a
/// delivery error category (SEP-3415, provisional number).
pub const CALLBACK_ENDPOINT_ERROR: i64 = -32027;
