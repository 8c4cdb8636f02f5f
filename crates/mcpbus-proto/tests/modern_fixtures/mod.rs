//! The 2026-07-28 fixtures, checked with the harness of the handshake-era ones.
//!
//! `tests/fixtures/2026-07-28/schema/<Type>/<name>.json` are the examples of
//! `schema/2026-07-28/examples/` in the MCP specification repository, copied verbatim; the
//! directory names the schema type each one is. `tests/fixtures/2026-07-28/spec/<page>.json` are
//! the JSON-RPC messages shown on the specification pages, in page order, and
//! `spec/<page>.values.json` the bare values shown there, by schema type. Every one must read as
//! its type and write back as the same JSON value.

use std::path::{Path, PathBuf};

use mcpbus_proto::mcp::methods;
use mcpbus_proto::mcp::{
    CallToolRequestParams, CallToolResult, CancelledNotificationParams, CompleteRequestParams,
    CompleteResult, CreateMessageRequestParams, GetPromptRequestParams, GetPromptResult,
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
    LoggingMessageNotificationParams, PaginatedRequestParams, ProgressNotificationParams,
    ReadResourceRequestParams, ReadResourceResult, Tool,
};
use mcpbus_proto::modern::{
    self, Cacheable, Complete, DiscoverRequestParams, DiscoverResult, InputRequest, InputRequests,
    InputRequiredResult, InputResponse, InputResponseRequestParams, InputResponses,
    MissingRequiredClientCapabilityData, MrtrResult, RequestMeta,
    SubscriptionsAcknowledgedNotificationParams, SubscriptionsListenRequestParams,
    SubscriptionsListenResult, UnsupportedProtocolVersionData,
};
use mcpbus_proto::{ErrorObject, Message, error_codes, parse_message};
use serde_json::{Map, Value};

use super::{Era, check_fixture, fixtures_dir, roundtrip};

/// The stateless era (2026-07-28).
const MODERN_ERA: Era = Era {
    params: check_params,
    result: check_result,
    error: check_error,
};

fn modern_dir() -> PathBuf {
    fixtures_dir().join("2026-07-28")
}

/// A request whose `_meta` names a revision must carry a valid [`RequestMeta`], which writes the
/// same `_meta` back. (The specification pages leave `_meta` out for brevity.)
fn check_request_meta(params: &Value, context: &str) {
    if modern::protocol_version_of(Some(params)).is_none() {
        return;
    }
    let meta = RequestMeta::from_params(Some(params))
        .unwrap_or_else(|e| panic!("{context}: request _meta: {e}"));
    assert_eq!(
        Value::Object(meta.to_map()),
        params["_meta"],
        "{context}: RequestMeta round trip"
    );
}

/// Checks a request's or notification's params against the 2026-07-28 type of `method`.
/// Returns whether the method exists in that revision.
fn check_params(method: &str, params: Option<&Value>, context: &str) -> bool {
    let Some(p) = params else {
        // The specification pages show these without params (and so without `_meta`).
        return matches!(
            method,
            methods::TOOLS_LIST_CHANGED
                | methods::RESOURCES_LIST_CHANGED
                | methods::PROMPTS_LIST_CHANGED
        );
    };
    check_request_meta(p, context);
    match method {
        methods::SERVER_DISCOVER => drop(roundtrip::<DiscoverRequestParams>(p, context)),
        methods::SUBSCRIPTIONS_LISTEN => {
            drop(roundtrip::<SubscriptionsListenRequestParams>(p, context))
        }
        methods::SUBSCRIPTIONS_ACKNOWLEDGED => drop(roundtrip::<
            SubscriptionsAcknowledgedNotificationParams,
        >(p, context)),
        methods::TOOLS_LIST
        | methods::RESOURCES_LIST
        | methods::RESOURCES_TEMPLATES_LIST
        | methods::PROMPTS_LIST => drop(roundtrip::<PaginatedRequestParams>(p, context)),
        methods::TOOLS_CALL => {
            drop(roundtrip::<InputResponseRequestParams<CallToolRequestParams>>(p, context))
        }
        methods::PROMPTS_GET => drop(roundtrip::<
            InputResponseRequestParams<GetPromptRequestParams>,
        >(p, context)),
        methods::RESOURCES_READ => drop(roundtrip::<
            InputResponseRequestParams<ReadResourceRequestParams>,
        >(p, context)),
        methods::COMPLETION_COMPLETE => drop(roundtrip::<CompleteRequestParams>(p, context)),
        methods::TOOLS_LIST_CHANGED
        | methods::RESOURCES_LIST_CHANGED
        | methods::PROMPTS_LIST_CHANGED => {
            drop(roundtrip::<modern::NotificationParams>(p, context))
        }
        methods::RESOURCES_UPDATED => drop(roundtrip::<modern::ResourceUpdatedNotificationParams>(
            p, context,
        )),
        methods::PROGRESS => drop(roundtrip::<ProgressNotificationParams>(p, context)),
        methods::CANCELLED => drop(roundtrip::<CancelledNotificationParams>(p, context)),
        methods::LOGGING_MESSAGE => drop(roundtrip::<LoggingMessageNotificationParams>(p, context)),
        _ => return false,
    }
    true
}

/// Checks a result against the 2026-07-28 result type of the request `method`.
fn check_result(method: &str, result: &Value, context: &str) {
    match method {
        methods::SERVER_DISCOVER => drop(roundtrip::<Complete<Cacheable<DiscoverResult>>>(
            result, context,
        )),
        methods::TOOLS_LIST => drop(roundtrip::<Complete<Cacheable<ListToolsResult>>>(
            result, context,
        )),
        methods::PROMPTS_LIST => drop(roundtrip::<Complete<Cacheable<ListPromptsResult>>>(
            result, context,
        )),
        methods::RESOURCES_LIST => drop(roundtrip::<Complete<Cacheable<ListResourcesResult>>>(
            result, context,
        )),
        methods::RESOURCES_TEMPLATES_LIST => {
            drop(roundtrip::<Complete<Cacheable<ListResourceTemplatesResult>>>(result, context))
        }
        methods::TOOLS_CALL => drop(roundtrip::<MrtrResult<CallToolResult>>(result, context)),
        methods::PROMPTS_GET => drop(roundtrip::<MrtrResult<GetPromptResult>>(result, context)),
        methods::RESOURCES_READ => drop(roundtrip::<MrtrResult<Cacheable<ReadResourceResult>>>(
            result, context,
        )),
        methods::COMPLETION_COMPLETE => {
            drop(roundtrip::<Complete<CompleteResult>>(result, context))
        }
        methods::SUBSCRIPTIONS_LISTEN => drop(roundtrip::<Complete<SubscriptionsListenResult>>(
            result, context,
        )),
        other => panic!("{context}: no 2026-07-28 result type known for {other}"),
    }
}

/// Checks an error object; true for the codes 2026-07-28 defines, whose `data` has a type.
fn check_error(error: &ErrorObject, context: &str) -> bool {
    let value = serde_json::to_value(error).unwrap_or_default();
    drop(roundtrip::<ErrorObject>(&value, context));
    let data = error.data.clone().unwrap_or_default();
    match error.code {
        error_codes::HEADER_MISMATCH => true,
        error_codes::MISSING_REQUIRED_CLIENT_CAPABILITY => {
            drop(roundtrip::<MissingRequiredClientCapabilityData>(
                &data, context,
            ));
            error.missing_required_client_capability_data().is_some()
        }
        error_codes::UNSUPPORTED_PROTOCOL_VERSION => {
            drop(roundtrip::<UnsupportedProtocolVersionData>(&data, context));
            error.unsupported_protocol_version_data().is_some()
        }
        _ => false,
    }
}

/// The method a schema type name (without its `Request`, `Result`, ... suffix) belongs to.
fn method_of(stem: &str, context: &str) -> &'static str {
    match stem {
        "Discover" => methods::SERVER_DISCOVER,
        "SubscriptionsListen" => methods::SUBSCRIPTIONS_LISTEN,
        "SubscriptionsAcknowledged" => methods::SUBSCRIPTIONS_ACKNOWLEDGED,
        "CallTool" => methods::TOOLS_CALL,
        "GetPrompt" => methods::PROMPTS_GET,
        "Complete" => methods::COMPLETION_COMPLETE,
        "ListTools" | "Paginated" => methods::TOOLS_LIST,
        "ListPrompts" => methods::PROMPTS_LIST,
        "ListResources" => methods::RESOURCES_LIST,
        "ListResourceTemplates" => methods::RESOURCES_TEMPLATES_LIST,
        "ReadResource" => methods::RESOURCES_READ,
        "ResourceUpdated" => methods::RESOURCES_UPDATED,
        "ToolListChanged" => methods::TOOLS_LIST_CHANGED,
        "PromptListChanged" => methods::PROMPTS_LIST_CHANGED,
        "ResourceListChanged" => methods::RESOURCES_LIST_CHANGED,
        "Cancelled" => methods::CANCELLED,
        "Progress" => methods::PROGRESS,
        "LoggingMessage" => methods::LOGGING_MESSAGE,
        other => panic!("{context}: no method known for schema type {other}…"),
    }
}

/// Checks one example of the schema type `type_name`.
fn check_typed(type_name: &str, value: &Value, context: &str) {
    match type_name {
        "ClientCapabilities" => drop(roundtrip::<modern::ClientCapabilities>(value, context)),
        "ServerCapabilities" => drop(roundtrip::<modern::ServerCapabilities>(value, context)),
        "InputRequests" => drop(roundtrip::<InputRequests>(value, context)),
        "InputResponses" => drop(roundtrip::<InputResponses>(value, context)),
        "InputRequiredResult" => drop(roundtrip::<InputRequiredResult>(value, context)),
        "ElicitRequest" | "CreateMessageRequest" | "ListRootsRequest" => {
            let request = roundtrip::<InputRequest>(value, context);
            assert_eq!(value["method"], request.method(), "{context}: method");
        }
        "ElicitResult" | "CreateMessageResult" | "ListRootsResult" => {
            let kind = match roundtrip::<InputResponse>(value, context) {
                InputResponse::Elicit(_) => "ElicitResult",
                InputResponse::CreateMessage(_) => "CreateMessageResult",
                InputResponse::ListRoots(_) => "ListRootsResult",
            };
            assert_eq!(
                kind, type_name,
                "{context}: read as the wrong kind of answer"
            );
        }
        "ElicitRequestFormParams" | "ElicitRequestURLParams" => {
            let params = roundtrip::<modern::ElicitRequestParams>(value, context);
            let expected = if type_name.contains("URL") {
                "url"
            } else {
                "form"
            };
            assert_eq!(params.mode(), expected, "{context}: mode");
        }
        "CreateMessageRequestParams" => {
            drop(roundtrip::<CreateMessageRequestParams>(value, context))
        }
        "Tool" => drop(roundtrip::<Tool>(value, context)),
        _ if value.get("jsonrpc").is_some() => check_message(type_name, value, context),
        _ => check_payload(type_name, value, context),
    }
}

/// A bare result or params example, typed by the method its name belongs to.
fn check_payload(type_name: &str, value: &Value, context: &str) {
    if let Some(stem) = type_name.strip_suffix("Result") {
        check_result(method_of(stem, context), value, context);
    } else if let Some(stem) = type_name
        .strip_suffix("RequestParams")
        .or_else(|| type_name.strip_suffix("NotificationParams"))
    {
        let method = method_of(stem, context);
        assert!(
            check_params(method, Some(value), context),
            "{context}: {method} unknown"
        );
    } else {
        panic!("{context}: no type known for schema type {type_name}");
    }
}

/// A whole JSON-RPC message example: the envelope round-trips, and its payload is the type the
/// schema type's name says.
fn check_message(type_name: &str, value: &Value, context: &str) {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let message =
        parse_message(&bytes).unwrap_or_else(|e| panic!("{context}: not a JSON-RPC message: {e}"));
    let reserialized = serde_json::to_value(&message).unwrap_or_default();
    assert_eq!(&reserialized, value, "{context}: envelope round trip");
    match &message {
        Message::Response(r) => {
            let stem = type_name
                .strip_suffix("ResultResponse")
                .unwrap_or_else(|| panic!("{context}: a response, but {type_name}"));
            check_result(method_of(stem, context), &r.result, context);
        }
        Message::Request(r) => {
            let stem = type_name.strip_suffix("Request").unwrap_or(type_name);
            assert_eq!(r.method, method_of(stem, context), "{context}: method");
            assert!(check_params(&r.method, r.params.as_ref(), context));
        }
        Message::Notification(n) => {
            let stem = type_name.strip_suffix("Notification").unwrap_or(type_name);
            assert_eq!(n.method, method_of(stem, context), "{context}: method");
            assert!(check_params(&n.method, n.params.as_ref(), context));
        }
        Message::Error(e) => assert!(
            check_error(&e.error, context),
            "{context}: {type_name} is not an error 2026-07-28 defines"
        ),
    }
}

/// The entries of `dir` whose names end in `suffix`, sorted.
fn json_files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.to_str().is_some_and(|s| s.ends_with(suffix)))
        .collect();
    files.sort();
    files
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

#[test]
fn every_schema_example_round_trips() {
    let schema = modern_dir().join("schema");
    let mut checked = 0;
    for type_dir in json_files(&schema, "") {
        let type_name = type_dir.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        for file in json_files(&type_dir, ".json") {
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("?");
            check_typed(type_name, &read_json(&file), &format!("{type_name}/{name}"));
            checked += 1;
        }
    }
    assert!(checked >= 90, "only {checked} schema examples checked");
}

#[test]
fn every_spec_page_example_round_trips() {
    let spec = modern_dir().join("spec");
    let mut checked = 0;
    for file in json_files(&spec, ".json") {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        if name.ends_with(".values.json") {
            let Value::Object(by_type) = read_json(&file) else {
                panic!("{name}: expected an object of arrays by schema type");
            };
            for (type_name, examples) in &by_type {
                for (i, example) in examples.as_array().into_iter().flatten().enumerate() {
                    check_typed(type_name, example, &format!("{name}:{type_name}[{i}]"));
                    checked += 1;
                }
            }
        } else {
            let count = check_fixture(&file, &MODERN_ERA);
            assert!(count > 0, "{name}: nothing checked");
            checked += count;
        }
    }
    assert!(
        checked >= 50,
        "only {checked} specification examples checked"
    );
}

#[test]
fn handshake_only_methods_are_unknown_to_the_modern_era() {
    let empty = Value::Object(Map::new());
    for method in [
        methods::INITIALIZE,
        methods::PING,
        methods::LOGGING_SET_LEVEL,
        methods::RESOURCES_SUBSCRIBE,
        methods::RESOURCES_UNSUBSCRIBE,
        methods::ELICITATION_COMPLETE,
        methods::ROOTS_LIST_CHANGED,
    ] {
        assert!(!check_params(method, Some(&empty), method), "{method}");
    }
}
