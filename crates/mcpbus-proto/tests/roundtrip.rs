//! Every fixture message's params and results survive deserialize → serialize unchanged, and the
//! typed structs are lenient about unknown members but strict about required ones.

use std::collections::HashMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};

use mcpbus_proto::events::*;
use mcpbus_proto::mcp::methods;
use mcpbus_proto::mcp::*;
use mcpbus_proto::{ErrorObject, Message, RequestId, parse_message};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The 2026-07-28 fixtures (`tests/fixtures/2026-07-28/`), checked by this same harness.
mod modern_fixtures;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Deserializes `value` as `T`, serializes it back and requires the same JSON.
fn roundtrip<T: DeserializeOwned + Serialize + Debug>(value: &Value, context: &str) -> T {
    let typed: T = serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("{context}: cannot deserialize {value}: {e}"));
    let back = serde_json::to_value(&typed)
        .unwrap_or_else(|e| panic!("{context}: cannot serialize {typed:?}: {e}"));
    assert_eq!(&back, value, "{context}: round trip changed the JSON");
    typed
}

/// Checks a request's or notification's params against the type of `method`. Returns whether
/// the method is known.
fn check_params(method: &str, params: Option<&Value>, context: &str) -> bool {
    let Some(p) = params else {
        // Methods whose params may be absent.
        return matches!(
            method,
            methods::PING
                | methods::INITIALIZED
                | methods::TOOLS_LIST
                | methods::TOOLS_LIST_CHANGED
                | methods::RESOURCES_LIST
                | methods::RESOURCES_LIST_CHANGED
                | methods::RESOURCES_TEMPLATES_LIST
                | methods::PROMPTS_LIST
                | methods::PROMPTS_LIST_CHANGED
                | methods::ROOTS_LIST
                | methods::ROOTS_LIST_CHANGED
                | methods::EVENTS_LIST
        );
    };
    match method {
        methods::INITIALIZE => drop(roundtrip::<InitializeRequestParams>(p, context)),
        methods::TOOLS_LIST
        | methods::RESOURCES_LIST
        | methods::RESOURCES_TEMPLATES_LIST
        | methods::PROMPTS_LIST
        | methods::ROOTS_LIST
        | methods::EVENTS_LIST => drop(roundtrip::<PaginatedRequestParams>(p, context)),
        methods::TOOLS_CALL => drop(roundtrip::<CallToolRequestParams>(p, context)),
        methods::RESOURCES_READ => drop(roundtrip::<ReadResourceRequestParams>(p, context)),
        methods::RESOURCES_SUBSCRIBE => drop(roundtrip::<SubscribeRequestParams>(p, context)),
        methods::RESOURCES_UNSUBSCRIBE => drop(roundtrip::<UnsubscribeRequestParams>(p, context)),
        methods::RESOURCES_UPDATED => {
            drop(roundtrip::<ResourceUpdatedNotificationParams>(p, context))
        }
        methods::PROMPTS_GET => drop(roundtrip::<GetPromptRequestParams>(p, context)),
        methods::COMPLETION_COMPLETE => drop(roundtrip::<CompleteRequestParams>(p, context)),
        methods::SAMPLING_CREATE_MESSAGE => {
            drop(roundtrip::<CreateMessageRequestParams>(p, context))
        }
        methods::ELICITATION_CREATE => drop(roundtrip::<ElicitRequestParams>(p, context)),
        methods::ELICITATION_COMPLETE => drop(roundtrip::<ElicitationCompleteNotificationParams>(
            p, context,
        )),
        methods::LOGGING_SET_LEVEL => drop(roundtrip::<SetLevelRequestParams>(p, context)),
        methods::LOGGING_MESSAGE => drop(roundtrip::<LoggingMessageNotificationParams>(p, context)),
        methods::PROGRESS => drop(roundtrip::<ProgressNotificationParams>(p, context)),
        methods::CANCELLED => drop(roundtrip::<CancelledNotificationParams>(p, context)),
        methods::EVENTS_SUBSCRIBE => drop(roundtrip::<EventSubscribeParams>(p, context)),
        methods::EVENTS_UNSUBSCRIBE => drop(roundtrip::<EventUnsubscribeParams>(p, context)),
        methods::EVENTS_EMIT => drop(roundtrip::<EventParams>(p, context)),
        _ => return false,
    }
    true
}

/// Checks a result against the result type of the request `method`.
fn check_result(method: &str, result: &Value, context: &str) {
    match method {
        methods::INITIALIZE => drop(roundtrip::<InitializeResult>(result, context)),
        methods::PING
        | methods::RESOURCES_SUBSCRIBE
        | methods::RESOURCES_UNSUBSCRIBE
        | methods::LOGGING_SET_LEVEL => drop(roundtrip::<EmptyResult>(result, context)),
        methods::TOOLS_LIST => drop(roundtrip::<ListToolsResult>(result, context)),
        methods::TOOLS_CALL => drop(roundtrip::<CallToolResult>(result, context)),
        methods::RESOURCES_LIST => drop(roundtrip::<ListResourcesResult>(result, context)),
        methods::RESOURCES_READ => drop(roundtrip::<ReadResourceResult>(result, context)),
        methods::RESOURCES_TEMPLATES_LIST => {
            drop(roundtrip::<ListResourceTemplatesResult>(result, context))
        }
        methods::PROMPTS_LIST => drop(roundtrip::<ListPromptsResult>(result, context)),
        methods::PROMPTS_GET => drop(roundtrip::<GetPromptResult>(result, context)),
        methods::COMPLETION_COMPLETE => drop(roundtrip::<CompleteResult>(result, context)),
        methods::SAMPLING_CREATE_MESSAGE => drop(roundtrip::<CreateMessageResult>(result, context)),
        methods::ELICITATION_CREATE => drop(roundtrip::<ElicitResult>(result, context)),
        methods::ROOTS_LIST => drop(roundtrip::<ListRootsResult>(result, context)),
        methods::EVENTS_SUBSCRIBE => drop(roundtrip::<EventSubscribeResult>(result, context)),
        methods::EVENTS_UNSUBSCRIBE => drop(roundtrip::<EventUnsubscribeResult>(result, context)),
        methods::EVENTS_LIST => drop(roundtrip::<EventListResult>(result, context)),
        other => panic!("{context}: no result type known for {other}"),
    }
}

/// The payload types of one protocol era, by method: which type a request's or notification's
/// params, a result, and an error object must read as.
struct Era {
    /// Checks params (see [`check_params`]); false when the method is unknown in the era.
    params: fn(&str, Option<&Value>, &str) -> bool,
    /// Checks a result against the result type of the request method (see [`check_result`]).
    result: fn(&str, &Value, &str),
    /// Checks an error object; true when it checked something the era defines.
    error: fn(&ErrorObject, &str) -> bool,
}

/// The handshake era (2024-11-05 to 2025-11-25) and the events extension.
const HANDSHAKE_ERA: Era = Era {
    params: check_params,
    result: check_result,
    error: |_, _| false,
};

/// Runs one fixture file (an array of JSON-RPC messages, each response after its request) and
/// returns how many payloads were checked.
fn check_fixture(path: &Path, era: &Era) -> usize {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("?")
        .to_owned();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let messages: Vec<Value> =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: not a JSON array: {e}"));
    assert!(!messages.is_empty(), "{name}: no messages");
    let mut pending: HashMap<RequestId, String> = HashMap::new();
    let mut checked = 0;
    for (i, raw) in messages.iter().enumerate() {
        let context = format!("{name}[{i}]");
        let bytes = serde_json::to_vec(raw).unwrap_or_default();
        let message = parse_message(&bytes)
            .unwrap_or_else(|e| panic!("{context}: not a JSON-RPC message: {e}"));
        // The envelope itself round-trips too.
        let reserialized = serde_json::to_value(&message).unwrap_or_default();
        assert_eq!(&reserialized, raw, "{context}: envelope round trip");
        match &message {
            Message::Request(r) => {
                assert!(
                    (era.params)(&r.method, r.params.as_ref(), &context),
                    "{context}: unknown method {}",
                    r.method
                );
                pending.insert(r.id.clone(), r.method.clone());
                checked += usize::from(r.params.is_some());
            }
            Message::Notification(n) => {
                assert!(
                    (era.params)(&n.method, n.params.as_ref(), &context),
                    "{context}: unknown method {}",
                    n.method
                );
                checked += usize::from(n.params.is_some());
            }
            Message::Response(r) => {
                let method = pending
                    .remove(&r.id)
                    .unwrap_or_else(|| panic!("{context}: response to unknown id {}", r.id));
                (era.result)(&method, &r.result, &context);
                checked += 1;
            }
            Message::Error(e) => {
                if let Some(id) = &e.id {
                    pending.remove(id);
                }
                checked += usize::from((era.error)(&e.error, &context));
            }
        }
    }
    checked
}

#[test]
fn every_fixture_round_trips() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures directory")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 20,
        "expected the full fixture set, found {}",
        files.len()
    );
    let mut total = 0;
    for file in &files {
        let checked = check_fixture(file, &HANDSHAKE_ERA);
        assert!(checked > 0, "{}: nothing checked", file.display());
        total += checked;
    }
    assert!(total >= 60, "only {total} payloads checked");
}

fn fixture_message(file: &str, index: usize) -> Value {
    let text = std::fs::read_to_string(fixtures_dir().join(file)).expect("fixture");
    let messages: Vec<Value> = serde_json::from_str(&text).expect("fixture array");
    messages[index].clone()
}

#[test]
fn initialize_result_exposes_session_id_events_and_extras() {
    let msg = fixture_message("initialize.json", 1);
    let result: InitializeResult = serde_json::from_value(msg["result"].clone()).expect("result");
    assert_eq!(
        result.session_id(),
        Some("6f1c2a9e-1b7d-4c55-9a0e-2d3b8f4e5a61")
    );
    let events = result
        .capabilities
        .events
        .as_ref()
        .expect("events capability");
    assert_eq!(events.topics.len(), 3);
    assert_eq!(
        events.topics[1].suggested_handle,
        Some(SuggestedHandle::Notify)
    );
    assert!(events.topics[1].retained);
    assert_eq!(events.topics[2].kind, EventKind::Signal);
    assert!(result.capabilities.extra.contains_key("tasks"));
    assert!(result.capabilities.extra.contains_key("extensions"));
    assert!(!result.capabilities.extra.contains_key("events"));
    assert!(result.capabilities.experimental.is_some());

    let mut built = InitializeResult::new(
        LATEST_PROTOCOL_VERSION,
        ServerCapabilities::default(),
        Implementation::new("s", "1"),
    );
    assert_eq!(built.session_id(), None);
    built.set_session_id("abc");
    assert_eq!(built.session_id(), Some("abc"));
    assert_eq!(
        serde_json::to_value(&built).expect("serialize"),
        json!({"protocolVersion": "2025-11-25", "capabilities": {},
               "serverInfo": {"name": "s", "version": "1"}, "_meta": {"session_id": "abc"}})
    );
}

#[test]
fn initialize_request_keeps_unknown_client_members() {
    let msg = fixture_message("initialize.json", 0);
    let params: InitializeRequestParams =
        serde_json::from_value(msg["params"].clone()).expect("params");
    assert!(params.capabilities.extra.contains_key("tasks"));
    assert_eq!(
        params.client_info.extra.get("io.example/buildId"),
        Some(&json!("abc123"))
    );
    let elicitation = params
        .capabilities
        .elicitation
        .as_ref()
        .expect("elicitation");
    assert!(elicitation.supports_form() && elicitation.supports_url());
    assert!(ElicitationCapability::default().supports_form());
    assert!(SUPPORTED_PROTOCOL_VERSIONS.contains(&params.protocol_version.as_str()));
    assert!(is_supported_protocol_version("2024-11-05"));
    assert!(!is_supported_protocol_version("2026-07-28"));
}

#[test]
fn tool_input_schema_is_kept_verbatim() {
    let msg = fixture_message("tools_list.json", 1);
    let result: ListToolsResult = serde_json::from_value(msg["result"].clone()).expect("result");
    let schema = &result.tools[0].input_schema;
    assert_eq!(
        schema["$schema"],
        json!("https://json-schema.org/draft/2020-12/schema")
    );
    assert_eq!(schema["additionalProperties"], json!(false));
    assert!(schema["$defs"]["units"].is_object());
    assert_eq!(
        result.tools[0]
            .annotations
            .as_ref()
            .and_then(|a| a.read_only_hint),
        Some(true)
    );
}

#[test]
fn call_tool_result_content_kinds() {
    let msg = fixture_message("tools_call.json", 1);
    let result: CallToolResult = serde_json::from_value(msg["result"].clone()).expect("result");
    let kinds: Vec<&str> = result
        .content
        .iter()
        .map(|b| match b {
            ContentBlock::Text(_) => "text",
            ContentBlock::Image(_) => "image",
            ContentBlock::Audio(_) => "audio",
            ContentBlock::ResourceLink(_) => "resource_link",
            ContentBlock::Resource(_) => "resource",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "text",
            "text",
            "image",
            "audio",
            "resource_link",
            "resource",
            "resource"
        ]
    );
    match &result.content[6] {
        ContentBlock::Resource(r) => assert!(matches!(r.resource, ResourceContents::Blob(_))),
        other => panic!("unexpected block {other:?}"),
    }
    assert!(!result.is_failure());
    // `content` is required on the wire but tolerated when missing.
    let empty: CallToolResult = serde_json::from_value(json!({"isError": true})).expect("lenient");
    assert!(empty.content.is_empty() && empty.is_failure());
}

#[test]
fn constructors_produce_wire_shapes() {
    assert_eq!(
        serde_json::to_value(CallToolResult::text("hi")).expect("ser"),
        json!({"content": [{"type": "text", "text": "hi"}]})
    );
    assert_eq!(
        serde_json::to_value(CallToolResult::error_text("bad")).expect("ser"),
        json!({"content": [{"type": "text", "text": "bad"}], "isError": true})
    );
    assert_eq!(
        serde_json::to_value(CallToolResult::structured(json!({"n": 1}))).expect("ser"),
        json!({"content": [{"type": "text", "text": "{\"n\":1}"}], "structuredContent": {"n": 1}})
    );
    assert_eq!(
        serde_json::to_value(Tool::new("t", json!({"type": "object"}))).expect("ser"),
        json!({"name": "t", "inputSchema": {"type": "object"}})
    );
    assert_eq!(
        serde_json::to_value(ResourceContents::text(
            "file:///a",
            Some("text/plain".into()),
            "x"
        ))
        .expect("ser"),
        json!({"uri": "file:///a", "mimeType": "text/plain", "text": "x"})
    );
    assert_eq!(
        serde_json::to_value(PromptMessage::user_text("q")).expect("ser"),
        json!({"role": "user", "content": {"type": "text", "text": "q"}})
    );
    assert_eq!(
        serde_json::to_value(EmptyResult::default()).expect("ser"),
        json!({})
    );
    assert_eq!(
        serde_json::to_value(ProgressNotificationParams::new(7, 3.0)).expect("ser"),
        json!({"progressToken": 7, "progress": 3})
    );
    let many: Vec<String> = (0..150).map(|i| i.to_string()).collect();
    let complete = CompleteResult::from_values(many);
    assert_eq!(complete.completion.values.len(), 100);
    assert_eq!(complete.completion.total, Some(150));
    assert_eq!(complete.completion.has_more, Some(true));
}

#[test]
fn sampling_content_single_array_and_unmodelled_blocks() {
    let single = fixture_message("sampling.json", 1);
    let r: CreateMessageResult = serde_json::from_value(single["result"].clone()).expect("single");
    assert!(matches!(
        r.content,
        SamplingContent::Single(ContentBlock::Text(_))
    ));
    assert_eq!(r.content.text(), "The capital of France is Paris.");
    let multi = fixture_message("sampling.json", 3);
    let r: CreateMessageResult = serde_json::from_value(multi["result"].clone()).expect("multi");
    assert_eq!(r.content.blocks().len(), 2);
    let tool_use = fixture_message("sampling.json", 5);
    let r: CreateMessageResult = serde_json::from_value(tool_use["result"].clone()).expect("tool");
    assert!(matches!(r.content, SamplingContent::Other(_)));
}

#[test]
fn elicitation_modes() {
    let form: ElicitRequestParams =
        serde_json::from_value(json!({"message": "m", "requestedSchema": {"type": "object"}}))
            .expect("form without mode");
    assert!(matches!(form, ElicitRequestParams::Form(_)));
    assert_eq!(form.mode(), "form");
    let explicit: ElicitRequestParams = serde_json::from_value(
        json!({"mode": "form", "message": "m", "requestedSchema": {"type": "object"}}),
    )
    .expect("form with mode");
    assert_eq!(explicit, form);
    let url: ElicitRequestParams = serde_json::from_value(
        json!({"mode": "url", "message": "m", "elicitationId": "e1", "url": "https://x"}),
    )
    .expect("url");
    assert!(matches!(&url, ElicitRequestParams::Url(u) if u.elicitation_id == "e1"));
    assert_eq!(url.message(), "m");
    assert!(
        serde_json::from_value::<ElicitRequestParams>(json!({"mode": "url", "message": "m"}))
            .is_err()
    );
    assert!(
        serde_json::from_value::<ElicitRequestParams>(json!({"mode": "telepathy", "message": "m"}))
            .is_err()
    );
}

#[test]
fn logging_levels_are_ordered_by_severity() {
    let order = [
        LoggingLevel::Debug,
        LoggingLevel::Info,
        LoggingLevel::Notice,
        LoggingLevel::Warning,
        LoggingLevel::Error,
        LoggingLevel::Critical,
        LoggingLevel::Alert,
        LoggingLevel::Emergency,
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]));
    for level in order {
        assert_eq!(
            serde_json::to_value(level).expect("ser"),
            json!(level.as_str())
        );
    }
    assert!(serde_json::from_value::<SetLevelRequestParams>(json!({"level": "verbose"})).is_err());
}

#[test]
fn unknown_fields_are_ignored() {
    let p: EventParams = serde_json::from_value(json!({
        "topic": "a/b", "eventId": "1", "payload": 1, "retained": false,
        "timestamp": "2026-01-01T00:00:00Z", "correlationId": "c", "future": {"x": 1}
    }))
    .expect("unknown members ignored");
    assert_eq!(p.topic, "a/b");
    let d: EventTopicDescriptor =
        serde_json::from_value(json!({"pattern": "a/+", "kind": "content", "somethingNew": true}))
            .expect("descriptor");
    assert!(!d.retained);
    let t: Tool = serde_json::from_value(
        json!({"name": "t", "inputSchema": {"type": "object"}, "futureField": [1, 2]}),
    )
    .expect("tool");
    assert_eq!(t.name, "t");
    let r: CallToolResult =
        serde_json::from_value(json!({"content": [], "resultType": "complete"})).expect("result");
    assert!(r.content.is_empty());
    let c: ContentBlock =
        serde_json::from_value(json!({"type": "text", "text": "x", "extra": 1})).expect("block");
    assert_eq!(c.as_text(), Some("x"));
    let s: EventSubscribeResult =
        serde_json::from_value(json!({"subscribed": [{"pattern": "a", "qos": 1}]})).expect("sub");
    assert!(s.rejected.is_empty() && s.retained.is_empty());
    assert_eq!(
        serde_json::to_value(&s).expect("ser"),
        json!({"subscribed": [{"pattern": "a"}], "rejected": [], "retained": []})
    );
}

#[test]
fn null_and_missing_payload_survive() {
    let v = json!({"topic": "a", "eventId": "1", "payload": null, "retained": false});
    let p: EventParams = serde_json::from_value(v.clone()).expect("null payload");
    assert_eq!(p.payload, Value::Null);
    assert_eq!(serde_json::to_value(&p).expect("ser"), v);
    let missing: EventParams =
        serde_json::from_value(json!({"topic": "a", "eventId": "1"})).expect("missing payload");
    assert_eq!(missing.payload, Value::Null);
    assert!(!missing.retained);
    assert_eq!(serde_json::to_value(&missing).expect("ser"), v);
    let built = EventParams::new("a", "1", Value::Null);
    assert_eq!(serde_json::to_value(&built).expect("ser"), v);
}

#[test]
fn missing_required_fields_are_errors() {
    assert!(serde_json::from_value::<EventTopicDescriptor>(json!({"pattern": "a/+"})).is_err());
    assert!(serde_json::from_value::<EventTopicDescriptor>(json!({"kind": "content"})).is_err());
    assert!(
        serde_json::from_value::<EventTopicDescriptor>(json!({"pattern": "a", "kind": "blob"}))
            .is_err()
    );
    assert!(serde_json::from_value::<EventParams>(json!({"eventId": "1", "payload": 1})).is_err());
    assert!(serde_json::from_value::<EventParams>(json!({"topic": "a", "payload": 1})).is_err());
    assert!(serde_json::from_value::<EventSubscribeParams>(json!({})).is_err());
    assert!(serde_json::from_value::<EventSubscribeResult>(json!({"rejected": []})).is_err());
    assert!(serde_json::from_value::<RejectedTopic>(json!({"pattern": "a"})).is_err());
    assert!(serde_json::from_value::<Tool>(json!({"name": "t"})).is_err());
    assert!(
        serde_json::from_value::<InitializeRequestParams>(json!({"protocolVersion": "x"})).is_err()
    );
    assert!(serde_json::from_value::<CreateMessageRequestParams>(json!({"messages": []})).is_err());
    assert!(serde_json::from_value::<ContentBlock>(json!({"type": "image", "data": "x"})).is_err());
    assert!(serde_json::from_value::<ContentBlock>(json!({"type": "video", "data": "x"})).is_err());
    assert!(serde_json::from_value::<ResourceContents>(json!({"uri": "file:///a"})).is_err());
    assert!(
        serde_json::from_value::<LoggingMessageNotificationParams>(json!({"level": "info"}))
            .is_err()
    );
}

#[test]
fn unknown_priority_reads_as_normal() {
    let p: EventParams = serde_json::from_value(
        json!({"topic": "a", "eventId": "1", "payload": {}, "priority": "critical"}),
    )
    .expect("unknown priority is not fatal");
    assert_eq!(p.priority, Some(EventPriority::Normal));
    let p: EventParams =
        serde_json::from_value(json!({"topic": "a", "eventId": "1", "priority": 5}))
            .expect("non-string priority is not fatal");
    assert_eq!(p.effective_priority(), EventPriority::Normal);
    let p: EventParams =
        serde_json::from_value(json!({"topic": "a", "eventId": "1", "priority": null}))
            .expect("null priority");
    assert_eq!(p.priority, None);
    assert_eq!(p.effective_priority(), EventPriority::Normal);
    let ranks: Vec<u8> = [
        EventPriority::Urgent,
        EventPriority::High,
        EventPriority::Normal,
        EventPriority::Low,
    ]
    .iter()
    .map(EventPriority::rank)
    .collect();
    assert_eq!(ranks, [0, 1, 2, 3]);
    for (wire, p) in [
        ("urgent", EventPriority::Urgent),
        ("low", EventPriority::Low),
    ] {
        assert_eq!(
            serde_json::from_value::<EventPriority>(json!(wire)).expect("de"),
            p
        );
        assert_eq!(serde_json::to_value(p).expect("ser"), json!(wire));
    }
}

#[test]
fn unknown_suggested_handle_is_dropped_not_fatal() {
    let d: EventTopicDescriptor = serde_json::from_value(
        json!({"pattern": "a", "kind": "signal", "suggestedHandle": "defer"}),
    )
    .expect("unknown hint is not fatal");
    assert_eq!(d.suggested_handle, None);
}

#[test]
fn retained_event_from_params() {
    let mut p = EventParams::new("config/current", "01J", json!({"v": 2}));
    p.priority = Some(EventPriority::High);
    p.source = Some("cfg".into());
    p.expires_at = Some("2030-01-01T00:00:00Z".into());
    let r = RetainedEvent::from_params(&p);
    assert!(r.retained);
    assert_eq!(r.topic, "config/current");
    assert_eq!(r.event_id, "01J");
    assert_eq!(r.payload, json!({"v": 2}));
    assert_eq!(r.priority, Some(EventPriority::High));
    assert_eq!(r.source.as_deref(), Some("cfg"));
    assert_eq!(r.expires_at.as_deref(), Some("2030-01-01T00:00:00Z"));
    assert_eq!(RetainedEvent::from(&p), r);
    let back = r.to_params();
    assert!(back.retained);
    assert_eq!(back.payload, p.payload);
    assert_eq!(
        serde_json::to_value(EventTopicDescriptor::new("a/+", EventKind::Content)).expect("ser"),
        json!({"pattern": "a/+", "kind": "content", "retained": false})
    );
    assert_eq!(reject_reason::UNKNOWN_TOPIC, "unknown_topic");
    assert_eq!(reject_reason::PERMISSION_DENIED, "permission_denied");
    assert_eq!(reject_reason::INVALID_PATTERN, "invalid_pattern");
    assert_eq!(META_SESSION_ID, "session_id");
}

#[test]
fn descriptor_without_retained_defaults_false() {
    // docs/protocol.md 2.1 shows a descriptor with no `retained`; it reads as false and is then
    // always written.
    let caps: EventsCapability = serde_json::from_value(
        json!({"topics": [{"pattern": "agents/{agent_id}/inbox", "kind": "signal"}]}),
    )
    .expect("caps");
    assert!(!caps.topics[0].retained);
    assert_eq!(
        serde_json::to_value(&caps).expect("ser"),
        json!({"topics": [{"pattern": "agents/{agent_id}/inbox", "kind": "signal", "retained": false}]})
    );
    let empty: EventsCapability = serde_json::from_value(json!({})).expect("empty");
    assert!(empty.topics.is_empty());
    assert_eq!(
        serde_json::to_value(&empty).expect("ser"),
        json!({"topics": []})
    );
}

#[test]
fn method_names() {
    assert_eq!(
        methods::RESOURCES_TEMPLATES_LIST,
        "resources/templates/list"
    );
    assert_eq!(
        methods::ELICITATION_COMPLETE,
        "notifications/elicitation/complete"
    );
    assert_eq!(methods::EVENTS_EMIT, "events/emit");
    assert_eq!(
        methods::TOOLS_LIST_CHANGED,
        "notifications/tools/list_changed"
    );
    assert_eq!(methods::CANCELLED, "notifications/cancelled");
}
