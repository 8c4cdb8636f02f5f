//! MCP message decoding: the typed params and results of crates/mcpbus-proto/src/mcp and of
//! the events extension.
//!
//! The input is one JSON-RPC message. The params of a request or notification of a known
//! method are decoded as that method's params type (absent params as `{}`, as servers read
//! them); a result is decoded as the result type of every method, since a response does not
//! name its method. Whenever decoding succeeds, the typed value re-serializes to JSON that
//! decodes to an equal typed value and serializes to the very same JSON (a fixed point: what the typed structs
//! drop or default on the way in is settled after one pass, nothing keeps changing). Decoding
//! never panics, whatever the JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpbus_proto::events::*;
use mcpbus_proto::jsonrpc::{Message, parse_message};
use mcpbus_proto::mcp::methods;
use mcpbus_proto::mcp::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(message) = parse_message(data) else {
        return;
    };
    match message {
        Message::Request(r) => check_params(&r.method, r.params),
        Message::Notification(n) => check_params(&n.method, n.params),
        Message::Response(r) => check_results(&r.result),
        Message::Error(_) => {}
    }
});

/// Decodes `value` as `T`; when that works, checks that the re-serialized JSON decodes to an
/// equal value and is a fixed point.
fn fixpoint<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(value: &Value) {
    let Ok(typed) = serde_json::from_value::<T>(value.clone()) else {
        return;
    };
    let once = serde_json::to_value(&typed).expect("a decoded value serializes");
    let again: T = serde_json::from_value(once.clone()).unwrap_or_else(|e| {
        panic!(
            "{}: its own output {once} does not decode: {e}",
            std::any::type_name::<T>()
        )
    });
    assert_eq!(again, typed, "{once}");
    let twice = serde_json::to_value(&again).expect("serializes again");
    assert_eq!(once, twice, "{}", std::any::type_name::<T>());
}

fn check_params(method: &str, params: Option<Value>) {
    let p = params.unwrap_or_else(|| Value::Object(Map::new()));
    let p = &p;
    match method {
        methods::INITIALIZE => fixpoint::<InitializeRequestParams>(p),
        methods::TOOLS_LIST
        | methods::RESOURCES_LIST
        | methods::RESOURCES_TEMPLATES_LIST
        | methods::PROMPTS_LIST
        | methods::ROOTS_LIST
        | methods::EVENTS_LIST => fixpoint::<PaginatedRequestParams>(p),
        methods::TOOLS_CALL => fixpoint::<CallToolRequestParams>(p),
        methods::RESOURCES_READ => fixpoint::<ReadResourceRequestParams>(p),
        methods::RESOURCES_SUBSCRIBE => fixpoint::<SubscribeRequestParams>(p),
        methods::RESOURCES_UNSUBSCRIBE => fixpoint::<UnsubscribeRequestParams>(p),
        methods::RESOURCES_UPDATED => fixpoint::<ResourceUpdatedNotificationParams>(p),
        methods::PROMPTS_GET => fixpoint::<GetPromptRequestParams>(p),
        methods::COMPLETION_COMPLETE => fixpoint::<CompleteRequestParams>(p),
        methods::SAMPLING_CREATE_MESSAGE => fixpoint::<CreateMessageRequestParams>(p),
        methods::ELICITATION_CREATE => fixpoint::<ElicitRequestParams>(p),
        methods::ELICITATION_COMPLETE => fixpoint::<ElicitationCompleteNotificationParams>(p),
        methods::LOGGING_SET_LEVEL => fixpoint::<SetLevelRequestParams>(p),
        methods::LOGGING_MESSAGE => fixpoint::<LoggingMessageNotificationParams>(p),
        methods::PROGRESS => fixpoint::<ProgressNotificationParams>(p),
        methods::CANCELLED => fixpoint::<CancelledNotificationParams>(p),
        methods::EVENTS_SUBSCRIBE => fixpoint::<EventSubscribeParams>(p),
        methods::EVENTS_UNSUBSCRIBE => fixpoint::<EventUnsubscribeParams>(p),
        methods::EVENTS_EMIT => {
            fixpoint::<EventParams>(p);
            fixpoint::<RetainedEvent>(p);
        }
        _ => {}
    }
}

fn check_results(r: &Value) {
    fixpoint::<InitializeResult>(r);
    fixpoint::<EmptyResult>(r);
    fixpoint::<ListToolsResult>(r);
    fixpoint::<CallToolResult>(r);
    fixpoint::<ListResourcesResult>(r);
    fixpoint::<ReadResourceResult>(r);
    fixpoint::<ListResourceTemplatesResult>(r);
    fixpoint::<ListPromptsResult>(r);
    fixpoint::<GetPromptResult>(r);
    fixpoint::<CompleteResult>(r);
    fixpoint::<CreateMessageResult>(r);
    fixpoint::<ElicitResult>(r);
    fixpoint::<ListRootsResult>(r);
    fixpoint::<EventSubscribeResult>(r);
    fixpoint::<EventUnsubscribeResult>(r);
    fixpoint::<EventListResult>(r);
}
