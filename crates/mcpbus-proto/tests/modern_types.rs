//! The 2026-07-28 wire types beyond plain round trips: builders, accessors, lenient and strict
//! reading, and the error objects of the new codes (compared with the specification's examples).

use mcpbus_proto::mcp::{
    CallToolRequestParams, CallToolResult, ElicitResult, Implementation, ListToolsResult,
    LoggingLevel, methods,
};
use mcpbus_proto::modern::{
    self, CacheScope, Cacheable, Complete, ElicitRequestParams, InputRequest, InputRequests,
    InputRequiredResult, InputResponse, InputResponseRequestParams, MetaError, MrtrResult,
    NotificationParams, RequestMeta, ResultType, SubscriptionFilter, SubscriptionsListenResult,
};
use mcpbus_proto::{ErrorObject, RequestId, error_codes, headers};
use serde_json::{Map, Value, json};

fn from<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_json::from_value(value).map_err(|e| e.to_string())
}

fn to(value: impl serde::Serialize) -> Value {
    serde_json::to_value(value).expect("serializes")
}

#[test]
fn request_meta_reads_and_writes_the_reserved_keys() {
    let params = json!({"name": "t", "_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}},
        "io.modelcontextprotocol/clientInfo": {"name": "c", "version": "1"},
        "io.modelcontextprotocol/logLevel": "warning",
        "progressToken": 7,
        "traceparent": "00-abc-def-01"
    }});
    assert_eq!(
        modern::protocol_version_of(Some(&params)),
        Some("2026-07-28")
    );
    let meta = RequestMeta::from_params(Some(&params)).expect("valid meta");
    assert_eq!(meta.protocol_version, "2026-07-28");
    assert!(meta.client_capabilities.elicitation.is_some());
    assert_eq!(
        meta.client_info.as_ref().map(|i| i.name.as_str()),
        Some("c")
    );
    assert_eq!(meta.log_level, Some(LoggingLevel::Warning));
    assert_eq!(meta.progress_token, Some(RequestId::Number(7)));
    assert_eq!(meta.extra.get("traceparent"), Some(&json!("00-abc-def-01")));
    assert_eq!(Value::Object(meta.to_map()), params["_meta"]);

    // The payload types of the handshake era keep `_meta` as a map; the view reads it there.
    let call: CallToolRequestParams = from(params.clone()).expect("params");
    let typed = RequestMeta::from_map(call.meta.as_ref().expect("meta")).expect("meta");
    assert_eq!(typed, meta);

    // Building: `write_to` replaces the typed keys and keeps the others.
    let mut existing = Map::new();
    existing.insert("progressToken".into(), json!("p"));
    existing.insert("com.example/x".into(), json!(1));
    RequestMeta::new("2026-07-28", modern::ClientCapabilities::default())
        .with_client_info(Implementation::new("c", "1"))
        .with_log_level(LoggingLevel::Debug)
        .write_to(&mut existing);
    assert_eq!(
        Value::Object(existing),
        json!({"progressToken": "p", "com.example/x": 1,
               "io.modelcontextprotocol/protocolVersion": "2026-07-28",
               "io.modelcontextprotocol/clientCapabilities": {},
               "io.modelcontextprotocol/clientInfo": {"name": "c", "version": "1"},
               "io.modelcontextprotocol/logLevel": "debug"})
    );
}

#[test]
fn request_meta_errors_name_the_key() {
    let version = "io.modelcontextprotocol/protocolVersion";
    let caps = "io.modelcontextprotocol/clientCapabilities";
    assert_eq!(RequestMeta::from_params(None), Err(MetaError::MissingMeta));
    assert_eq!(
        RequestMeta::from_params(Some(&json!({"name": "t"}))),
        Err(MetaError::MissingMeta)
    );
    assert!(matches!(
        RequestMeta::from_params(Some(&json!({"_meta": []}))),
        Err(MetaError::NotAnObject {
            what: "params._meta",
            ..
        })
    ));
    let missing_caps = json!({"_meta": {version: "2026-07-28"}});
    let err = RequestMeta::from_params(Some(&missing_caps)).expect_err("no caps");
    assert_eq!(err, MetaError::Missing { key: caps });
    let object = err.to_error_object();
    assert_eq!(object.code, error_codes::INVALID_PARAMS);
    assert!(object.message.contains(caps), "{}", object.message);
    let missing_version = json!({"_meta": {caps: {}}});
    assert_eq!(
        RequestMeta::from_params(Some(&missing_version)),
        Err(MetaError::Missing { key: version })
    );
    let bad_level = json!({"_meta": {version: "2026-07-28", caps: {},
                                     "io.modelcontextprotocol/logLevel": "verbose"}});
    let err = RequestMeta::from_params(Some(&bad_level)).expect_err("bad level");
    assert!(
        matches!(
            &err,
            MetaError::Invalid {
                key: "io.modelcontextprotocol/logLevel",
                ..
            }
        ),
        "{err}"
    );
    let bad_version = json!({"_meta": {version: 2026, caps: {}}});
    assert!(RequestMeta::from_params(Some(&bad_version)).is_err());
    // Through serde, the same messages.
    let e = from::<modern::DiscoverRequestParams>(json!({"_meta": {version: "2026-07-28"}}))
        .expect_err("serde error");
    assert!(e.contains(caps), "{e}");
}

#[test]
fn complete_writes_and_checks_result_type() {
    let complete = Complete(CallToolResult::text("hi"));
    assert_eq!(
        to(&complete),
        json!({"resultType": "complete", "content": [{"type": "text", "text": "hi"}]})
    );
    // An absent resultType is a server of an earlier revision: complete.
    let legacy: Complete<CallToolResult> = from(json!({"content": []})).expect("legacy");
    assert!(legacy.0.content.is_empty());
    let err = from::<Complete<CallToolResult>>(json!({"resultType": "input_required"}))
        .expect_err("not complete");
    assert!(err.contains("input_required"), "{err}");
    // Unknown members are ignored, as everywhere.
    let r: Complete<CallToolResult> =
        from(json!({"resultType": "complete", "content": [], "future": 1})).expect("lenient");
    assert_eq!(r.into_inner(), CallToolResult::default());
    assert_eq!(ResultType::of(&json!({})), Some(ResultType::Complete));
    assert_eq!(
        ResultType::of(&json!({"resultType": "task"})),
        Some(ResultType::Other("task".into()))
    );
    assert_eq!(ResultType::of(&json!({"resultType": 1})), None);
}

#[test]
fn mrtr_result_dispatches_on_result_type() {
    let done: MrtrResult<CallToolResult> =
        from(json!({"resultType": "complete", "content": []})).expect("complete");
    assert!(matches!(done, MrtrResult::Complete(_)));
    let input: MrtrResult<CallToolResult> =
        from(json!({"resultType": "input_required", "requestState": "s"})).expect("input");
    assert_eq!(
        input,
        MrtrResult::InputRequired(InputRequiredResult::state_only("s"))
    );
    let err = from::<MrtrResult<CallToolResult>>(json!({"resultType": "task", "taskId": "t"}))
        .expect_err("unknown result type");
    assert!(err.contains("unrecognised resultType \"task\""), "{err}");
}

#[test]
fn input_required_result_needs_requests_or_state() {
    let err =
        from::<InputRequiredResult>(json!({"resultType": "input_required"})).expect_err("neither");
    assert!(err.contains("inputRequests or requestState"), "{err}");
    assert!(from::<InputRequiredResult>(json!({"requestState": "s"})).is_err());
    assert!(
        from::<InputRequiredResult>(json!({"resultType": "complete", "requestState": "s"}))
            .is_err()
    );
    let mut requests = InputRequests::new();
    requests.insert("roots".into(), InputRequest::ListRoots(None));
    let built = InputRequiredResult::new(requests).with_request_state("opaque");
    assert_eq!(
        to(&built),
        json!({"resultType": "input_required", "inputRequests": {"roots": {"method": "roots/list"}},
               "requestState": "opaque"})
    );
    let err = from::<InputRequest>(json!({"method": "ping"})).expect_err("unknown method");
    assert!(
        err.contains("unknown input request method \"ping\""),
        "{err}"
    );
    let err = from::<InputRequest>(json!({"method": "elicitation/create"})).expect_err("params");
    assert!(err.contains("has no params"), "{err}");
    let err = from::<InputResponse>(json!({"answer": 42})).expect_err("unknown answer");
    assert!(err.contains("none of"), "{err}");
}

#[test]
fn retry_params_carry_input_responses() {
    let params = json!({"name": "get_weather", "arguments": {"location": "New York"},
        "inputResponses": {"github_login": {"action": "accept", "content": {"name": "octocat"}}},
        "requestState": "state"});
    let retry: InputResponseRequestParams<CallToolRequestParams> =
        from(params.clone()).expect("retry");
    assert!(retry.is_retry());
    assert_eq!(retry.params.name, "get_weather");
    match retry
        .input_responses
        .as_ref()
        .and_then(|r| r.get("github_login"))
    {
        Some(InputResponse::Elicit(ElicitResult { content, .. })) => {
            assert_eq!(
                content.as_ref().map(|c| &c["name"]),
                Some(&json!("octocat"))
            );
        }
        other => panic!("unexpected answer {other:?}"),
    }
    assert_eq!(to(&retry), params);
    let first = InputResponseRequestParams::new(CallToolRequestParams::new("t"));
    assert!(!first.is_retry());
    assert_eq!(to(&first), json!({"name": "t"}));
}

#[test]
fn url_elicitation_has_no_elicitation_id() {
    let url: ElicitRequestParams =
        from(json!({"mode": "url", "message": "m", "url": "https://x"})).expect("url mode");
    assert_eq!(url.mode(), "url");
    assert_eq!(url.message(), "m");
    let form: ElicitRequestParams =
        from(json!({"message": "m", "requestedSchema": {"type": "object"}})).expect("form");
    assert_eq!(
        to(&form),
        json!({"message": "m", "requestedSchema": {"type": "object"}})
    );
    assert!(from::<ElicitRequestParams>(json!({"mode": "url", "message": "m"})).is_err());
    assert!(from::<ElicitRequestParams>(json!({"mode": "telepathy", "message": "m"})).is_err());
}

#[test]
fn cache_hints_are_lenient_on_input() {
    let list = Complete(Cacheable::new(
        ListToolsResult::default(),
        60_000,
        CacheScope::Public,
    ));
    assert_eq!(
        to(&list),
        json!({"resultType": "complete", "tools": [], "ttlMs": 60000, "cacheScope": "public"})
    );
    let absent: Cacheable<ListToolsResult> = from(json!({"tools": []})).expect("absent hints");
    assert_eq!((absent.ttl_ms, absent.cache_scope), (None, None));
    assert_eq!(absent.ttl_ms_or_zero(), 0);
    assert_eq!(absent.cache_scope_or_private(), CacheScope::Private);
    let negative: Cacheable<ListToolsResult> =
        from(json!({"tools": [], "ttlMs": -5, "cacheScope": "shared"})).expect("lenient");
    assert_eq!(negative.ttl_ms, Some(0));
    assert_eq!(negative.cache_scope, Some(CacheScope::Private));
    let err = from::<Cacheable<ListToolsResult>>(json!({"tools": [], "ttlMs": 1.5}))
        .expect_err("fraction");
    assert!(err.contains("whole number of milliseconds"), "{err}");
    assert!(from::<Cacheable<ListToolsResult>>(json!({"tools": [], "ttlMs": "1"})).is_err());
}

#[test]
fn listen_stream_messages_name_their_stream() {
    let ack = modern::SubscriptionsAcknowledgedNotificationParams::new(
        "listen-1",
        SubscriptionFilter {
            tools_list_changed: Some(true),
            ..Default::default()
        },
    );
    assert_eq!(
        to(&ack),
        json!({"notifications": {"toolsListChanged": true},
               "_meta": {"io.modelcontextprotocol/subscriptionId": "listen-1"}})
    );
    let changed = NotificationParams::for_subscription(1);
    assert_eq!(changed.subscription_id(), Some(&RequestId::Number(1)));
    assert_eq!(
        to(modern::ResourceUpdatedNotificationParams::new(
            1,
            "file:///a"
        )),
        json!({"uri": "file:///a", "_meta": {"io.modelcontextprotocol/subscriptionId": 1}})
    );
    assert_eq!(
        to(Complete(SubscriptionsListenResult::new("listen-1"))),
        json!({"resultType": "complete",
               "_meta": {"io.modelcontextprotocol/subscriptionId": "listen-1"}})
    );
    assert!(from::<SubscriptionsListenResult>(json!({"_meta": {}})).is_err());
    assert!(SubscriptionFilter::default().is_empty());
    assert!(
        SubscriptionFilter {
            resource_subscriptions: Some(vec![]),
            tools_list_changed: Some(false),
            ..Default::default()
        }
        .is_empty()
    );
}

#[test]
fn capabilities_gain_extensions() {
    let caps = modern::ServerCapabilities::default()
        .with_extension("io.modelcontextprotocol/tasks", Map::new());
    assert_eq!(
        to(&caps),
        json!({"extensions": {"io.modelcontextprotocol/tasks": {}}})
    );
    assert!(caps.extension("io.modelcontextprotocol/tasks").is_some());
    assert!(caps.extension("io.example/other").is_none());
    let client: modern::ClientCapabilities =
        from(json!({"roots": {}, "tasks": {"x": 1}})).expect("client caps");
    assert!(client.roots.is_some());
    assert_eq!(client.extra.get("tasks"), Some(&json!({"x": 1})));
}

#[test]
fn new_error_objects_match_the_specification_examples() {
    // docs/specification/2026-07-28/basic/versioning.mdx
    let unsupported =
        ErrorObject::unsupported_protocol_version(["2026-07-28", "2025-11-25"], "1900-01-01");
    assert_eq!(
        to(&unsupported),
        json!({"code": -32022, "message": "Unsupported protocol version",
               "data": {"supported": ["2026-07-28", "2025-11-25"], "requested": "1900-01-01"}})
    );
    let data = unsupported
        .unsupported_protocol_version_data()
        .expect("typed data");
    assert_eq!(data.requested, "1900-01-01");
    assert!(
        unsupported
            .missing_required_client_capability_data()
            .is_none()
    );
    // docs/specification/2026-07-28/basic/transports/streamable-http.mdx
    let mismatch =
        ErrorObject::header_mismatch("Mcp-Name header value 'foo' does not match body value 'bar'");
    assert_eq!(
        to(&mismatch),
        json!({"code": -32020,
               "message": "Header mismatch: Mcp-Name header value 'foo' does not match body value 'bar'"})
    );
    // schema/2026-07-28/examples/MissingRequiredClientCapabilityError: same data.
    let required: modern::ClientCapabilities =
        from(json!({"elicitation": {}})).expect("capabilities");
    let missing = ErrorObject::missing_required_client_capability(required.clone());
    assert_eq!(
        missing.code,
        error_codes::MISSING_REQUIRED_CLIENT_CAPABILITY
    );
    assert_eq!(
        missing.data,
        Some(json!({"requiredCapabilities": {"elicitation": {}}}))
    );
    assert_eq!(
        missing.message,
        "Missing required client capability: elicitation"
    );
    assert_eq!(
        missing
            .missing_required_client_capability_data()
            .map(|d| d.required_capabilities),
        Some(required)
    );
    let extension = ErrorObject::missing_required_client_capability(
        modern::ClientCapabilities::default().with_extension("io.example/ui", Map::new()),
    );
    assert!(
        extension.message.ends_with(": io.example/ui"),
        "{}",
        extension.message
    );
    assert_eq!(
        (
            error_codes::HEADER_MISMATCH,
            error_codes::MISSING_REQUIRED_CLIENT_CAPABILITY,
            error_codes::UNSUPPORTED_PROTOCOL_VERSION
        ),
        (-32020, -32021, -32022)
    );
}

#[test]
fn names_of_methods_headers_and_meta_keys() {
    assert_eq!(methods::SERVER_DISCOVER, "server/discover");
    assert_eq!(methods::SUBSCRIPTIONS_LISTEN, "subscriptions/listen");
    assert_eq!(
        methods::SUBSCRIPTIONS_ACKNOWLEDGED,
        "notifications/subscriptions/acknowledged"
    );
    assert_eq!(headers::METHOD, "mcp-method");
    assert_eq!(headers::NAME, "mcp-name");
    assert_eq!(headers::param("Region"), "mcp-param-region");
    assert_eq!(
        headers::NAMED_METHODS,
        &[
            ("tools/call", "name"),
            ("prompts/get", "name"),
            ("resources/read", "uri"),
            ("tasks/get", "taskId"),
            ("tasks/update", "taskId"),
            ("tasks/cancel", "taskId")
        ]
    );
    assert_eq!(modern::meta::LOG_LEVEL, "io.modelcontextprotocol/logLevel");
    assert_eq!(
        modern::meta::SERVER_INFO,
        "io.modelcontextprotocol/serverInfo"
    );
    assert_eq!(
        modern::meta::SUBSCRIPTION_ID,
        "io.modelcontextprotocol/subscriptionId"
    );
    assert_eq!(modern::LATEST_PROTOCOL_VERSION, "2026-07-28");
    assert!(modern::is_supported_protocol_version("2026-07-28"));
    assert!(!modern::is_supported_protocol_version("2025-11-25"));
    let result_meta = modern::ResultMeta::with_server_info(Implementation::new("s", "1"));
    assert_eq!(
        Value::Object(result_meta.to_map()),
        json!({"io.modelcontextprotocol/serverInfo": {"name": "s", "version": "1"}})
    );
}
