//! JSON-RPC and MCP error codes.

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
