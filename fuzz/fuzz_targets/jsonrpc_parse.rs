//! JSON-RPC message parsing (`mcpbus_proto::jsonrpc::parse_message`).
//!
//! Properties: any input gives a message or an `InvalidMessage` whose error is exactly `-32700`
//! (invalid UTF-8 or not JSON) or `-32600` (JSON, but not one valid message), as a JSON check
//! made here independently decides; the error response built from it is itself a valid error
//! message; a parsed message re-serializes to JSON that parses back to an equal message, and
//! `Message`'s serde implementation agrees with `parse_message`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpbus_proto::error_codes;
use mcpbus_proto::jsonrpc::{Message, parse_message};
use serde_json::Value;

fuzz_target!(|data: &[u8]| check(data));

fn check(data: &[u8]) {
    let parsed = parse_message(data);
    let json: Option<Value> = std::str::from_utf8(data)
        .ok()
        .and_then(|text| serde_json::from_str(text).ok());
    match parsed {
        Ok(message) => {
            assert!(json.is_some(), "a message from input that is not JSON");
            round_trip(&message);
        }
        Err(invalid) => {
            let expected = if json.is_some() {
                error_codes::INVALID_REQUEST
            } else {
                error_codes::PARSE_ERROR
            };
            assert_eq!(invalid.error.code, expected, "{invalid}");
            assert!(!invalid.error.message.is_empty());
            // A parse error never knows the id it could answer to.
            if expected == error_codes::PARSE_ERROR {
                assert_eq!(invalid.id, None);
            }
            let response = invalid.to_response();
            let back = parse_message(&response.to_vec()).expect("the error response parses");
            assert_eq!(back, response);
            assert!(matches!(back, Message::Error(_)));
        }
    }
}

/// A message survives serialization, by `to_vec` and by serde, unchanged.
fn round_trip(message: &Message) {
    let bytes = message.to_vec();
    let back = parse_message(&bytes).expect("a serialized message parses");
    assert_eq!(&back, message);
    let value = serde_json::to_value(message).expect("serializes to a value");
    assert_eq!(value.get("jsonrpc"), Some(&Value::from("2.0")));
    let via_serde: Message = serde_json::from_value(value).expect("deserializes");
    assert_eq!(&via_serde, message);
    assert_eq!(message.method(), back.method());
}
