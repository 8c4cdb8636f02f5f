//! The JSON examples of SEP-3415 (`tests/fixtures/sep-3415/`, see its README) read into the
//! `events_ext` types and write back as the same JSON.

use std::path::PathBuf;

use mcpbus_proto::events_ext::webhook::{
    SubscribeEventsRequestParams, SubscribeEventsResult, UnsubscribeEventsRequestParams,
    VerificationResponse, WebhookBody, WebhookControl,
};
use mcpbus_proto::events_ext::{
    self, EXTENSION_ID, EventOccurrence, EventsActiveNotificationParams,
    EventsErrorNotificationParams, EventsExtensionSettings, EventsHeartbeatNotificationParams,
    ListEventsRequestParams, ListEventsResult, PollEventsRequestParams, PollEventsResult,
    StreamEventsRequestParams, StreamEventsResult,
};
use mcpbus_proto::modern::{self, Complete};
use mcpbus_proto::{Message, RequestId, error_codes, parse_message};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sep-3415")
}

fn read(name: &str) -> Value {
    let path = fixtures().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: not JSON: {e}"))
}

/// Reads `value` as `T` and checks that it writes back unchanged.
fn roundtrip<T: DeserializeOwned + Serialize>(value: &Value, context: &str) -> T {
    let typed: T = serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("{context}: does not read: {e}\n{value:#}"));
    let back = serde_json::to_value(&typed).unwrap_or_else(|e| panic!("{context}: {e}"));
    assert_eq!(&back, value, "{context}: round trip");
    typed
}

fn check_value(type_name: &str, value: &Value, context: &str) {
    match type_name {
        "EventsExtensionSettings" => drop(roundtrip::<EventsExtensionSettings>(value, context)),
        "ServerCapabilities" => {
            let caps = roundtrip::<modern::ServerCapabilities>(value, context);
            let settings = caps.extension(EXTENSION_ID).expect("the events extension");
            let settings: EventsExtensionSettings =
                serde_json::from_value(Value::Object(settings.clone())).expect("its settings");
            assert_eq!(settings.list_changed, Some(true), "{context}");
        }
        "ClientCapabilities" => {
            let caps = roundtrip::<modern::ClientCapabilities>(value, context);
            assert!(caps.extension(EXTENSION_ID).is_some(), "{context}");
        }
        "ListEventsRequestParams" => drop(roundtrip::<ListEventsRequestParams>(value, context)),
        "ListEventsResult" => {
            let list = roundtrip::<Complete<ListEventsResult>>(value, context).0;
            assert_eq!(list.events.len(), 2, "{context}");
            assert_eq!(list.events[1].delivery.len(), 3, "{context}");
        }
        "PollEventsRequestParams" => {
            let p = roundtrip::<PollEventsRequestParams>(value, context);
            assert_eq!(
                p.subscription.cursor,
                Some(None),
                "{context}: an explicit null"
            );
            assert_eq!(p.max_events, Some(50), "{context}");
        }
        "PollEventsResult" => {
            let r = roundtrip::<Complete<PollEventsResult>>(value, context).0;
            assert_eq!(
                r.events[0].cursor(),
                None,
                "{context}: poll events carry no cursor"
            );
        }
        "SubscribeEventsResult" => {
            drop(roundtrip::<Complete<SubscribeEventsResult>>(value, context))
        }
        "WebhookBody" => {
            let body = roundtrip::<WebhookBody>(value, context);
            let has_type = value.get("type").is_some();
            assert_eq!(
                matches!(body, WebhookBody::Control(_)),
                has_type,
                "{context}"
            );
            if let WebhookBody::Control(WebhookControl::Terminated { error }) = body {
                assert_eq!(error.code, error_codes::FORBIDDEN, "{context}");
            }
        }
        "VerificationResponse" => drop(roundtrip::<VerificationResponse>(value, context)),
        other => panic!("{context}: no type for {other}"),
    }
}

#[test]
fn every_value_example_round_trips() {
    let Value::Object(by_type) = read("values.json") else {
        panic!("values.json: an object of arrays by type");
    };
    let mut checked = 0;
    for (type_name, examples) in &by_type {
        for (i, example) in examples.as_array().into_iter().flatten().enumerate() {
            check_value(type_name, example, &format!("{type_name}[{i}]"));
            checked += 1;
        }
    }
    assert!(checked >= 17, "only {checked} examples");
}

/// Checks the params of a request or notification of the extension.
fn check_params(method: &str, params: &Value, context: &str) {
    use events_ext::methods as m;
    match method {
        m::EVENTS_STREAM => drop(roundtrip::<StreamEventsRequestParams>(params, context)),
        m::EVENTS_SUBSCRIBE => {
            let p = roundtrip::<SubscribeEventsRequestParams>(params, context);
            assert_eq!(p.ttl_ms, Some(Some(3_600_000)), "{context}");
            assert_eq!(p.delivery.mode, "webhook", "{context}");
        }
        m::EVENTS_UNSUBSCRIBE => drop(roundtrip::<UnsubscribeEventsRequestParams>(params, context)),
        m::ACTIVE => drop(roundtrip::<EventsActiveNotificationParams>(params, context)),
        m::EVENT => {
            let o = roundtrip::<EventOccurrence>(params, context);
            assert_eq!(o.subscription_id(), Some(RequestId::Number(1)), "{context}");
        }
        m::ERROR | m::TERMINATED => {
            drop(roundtrip::<EventsErrorNotificationParams>(params, context))
        }
        m::HEARTBEAT => drop(roundtrip::<EventsHeartbeatNotificationParams>(
            params, context,
        )),
        other => panic!("{context}: no params type for {other}"),
    }
}

#[test]
fn every_message_example_round_trips() {
    let Value::Array(messages) = read("messages.json") else {
        panic!("messages.json: an array of messages");
    };
    for (i, value) in messages.iter().enumerate() {
        let context = format!("message {i}");
        let bytes = serde_json::to_vec(value).expect("serializes");
        let message = parse_message(&bytes).unwrap_or_else(|e| panic!("{context}: {e}"));
        assert_eq!(
            &serde_json::to_value(&message).expect("serializes"),
            value,
            "{context}: envelope"
        );
        match message {
            Message::Request(r) => {
                check_params(&r.method, r.params.as_ref().expect("params"), &context)
            }
            Message::Notification(n) => {
                check_params(&n.method, n.params.as_ref().expect("params"), &context)
            }
            // The only response the SEP shows is the final frame of a push stream.
            Message::Response(r) => {
                let result = roundtrip::<Complete<StreamEventsResult>>(&r.result, &context);
                assert_eq!(result.0.meta.subscription_id, r.id, "{context}");
            }
            Message::Error(e) => panic!("{context}: unexpected error {e:?}"),
        }
    }
    assert_eq!(messages.len(), 9);
}
