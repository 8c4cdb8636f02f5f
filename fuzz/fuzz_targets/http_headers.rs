//! The Streamable HTTP endpoint (`mcpbus::transport::http::StreamableHttpService`) driven in
//! process as a tower service, with fuzzed methods, headers (Accept, Content-Type,
//! MCP-Protocol-Version, Mcp-Session-Id, Last-Event-ID, Origin, Host, Content-Length) and
//! bodies; the input form is described in `mcpbus_fuzz::http::script`.
//!
//! Properties: every answer has a status of the docs/http.md table, and exactly the one the
//! table gives for the request (see `mcpbus_fuzz::http::oracle`); every error with a body
//! carries a well-formed, id-less JSON-RPC error with the right code; 405 names the allowed
//! methods; a 200 answer to a request is one JSON message or an SSE stream (as the response
//! mode says) ending with the answer to that very request; a session id is given only by an
//! `initialize` that opens a session; no request hangs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mcpbus_fuzz::http::run(&String::from_utf8_lossy(data));
});
