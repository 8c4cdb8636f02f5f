//! The suite's checks, replayed over an in-memory pipe with the mcpbus client: what each tool,
//! resource and prompt returns, independent of the HTTP transport.

use std::sync::{Arc, Mutex};

use mcpbus::client::{Client, Era};
use mcpbus::service::RequestOptions;
use mcpbus_proto::mcp::{
    CompleteRequestParams, CompletionArgument, ContentBlock, CreateMessageRequestParams,
    CreateMessageResult, ElicitAction, ElicitRequestParams, ElicitResult, LoggingLevel,
    ProgressNotificationParams, Reference, ResourceContents, Role, SamplingContent,
};
use serde_json::{Map, Value, json};

use super::build_server;

type Captured<T> = Arc<Mutex<Vec<T>>>;

struct Harness {
    client: Client,
    logs: Captured<String>,
    elicitations: Captured<Map<String, Value>>,
}

/// Connects a client that answers sampling and elicitation the way the suite's client does.
async fn connect() -> Harness {
    let server = build_server(Arc::default()).expect("the server builds");
    let (ours, theirs) = mcpbus::transport::duplex(1 << 16);
    server.start(theirs);
    let logs: Captured<String> = Arc::default();
    let elicitations: Captured<Map<String, Value>> = Arc::default();
    let (log_sink, elicit_sink) = (logs.clone(), elicitations.clone());
    // A replay of the 2025-11-25 server suite: the handshake era, whatever the server also speaks.
    let client = Client::builder("suite-replay", "1.0.0")
        .era(Era::Legacy)
        .on_log(move |m| {
            let text = m.data.as_str().unwrap_or_default().to_string();
            log_sink.lock().expect("lock").push(text);
        })
        .on_sampling(|_p: CreateMessageRequestParams| async {
            Ok(CreateMessageResult {
                role: Role::Assistant,
                content: SamplingContent::Single(ContentBlock::text("a test answer")),
                model: "test-model".into(),
                stop_reason: Some("endTurn".into()),
                meta: None,
            })
        })
        .on_elicitation(false, move |p: ElicitRequestParams| {
            let sink = elicit_sink.clone();
            async move {
                if let ElicitRequestParams::Form(form) = p {
                    sink.lock().expect("lock").push(form.requested_schema);
                }
                let content = json!({"username": "testuser", "email": "test@example.com"});
                Ok(ElicitResult {
                    action: ElicitAction::Accept,
                    content: content.as_object().cloned(),
                    meta: None,
                })
            }
        })
        .connect(ours)
        .await
        .expect("connects");
    Harness {
        client,
        logs,
        elicitations,
    }
}

fn kinds(content: &[ContentBlock]) -> Vec<&'static str> {
    content
        .iter()
        .map(|b| match b {
            ContentBlock::Text(_) => "text",
            ContentBlock::Image(_) => "image",
            ContentBlock::Audio(_) => "audio",
            ContentBlock::ResourceLink(_) => "resource_link",
            ContentBlock::Resource(_) => "resource",
        })
        .collect()
}

#[tokio::test]
async fn every_listed_tool_and_prompt_is_described_and_well_named() {
    let h = connect().await;
    let tools = h.client.list_tools().await.expect("tools/list");
    // One tool of each family the suite calls, by the name it calls it.
    for name in [
        "test_simple_text",
        "test_sampling",
        "json_schema_2020_12_tool",
        "test_missing_capability",
        "test_input_required_result_elicitation",
        "test_header_param",
    ] {
        assert!(tools.iter().any(|t| t.name == name), "{name} is not listed");
    }
    for tool in &tools {
        assert!(tool.description.as_deref().is_some_and(|d| !d.is_empty()));
        assert!(
            tool.name.len() <= 64
                && tool
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_./-".contains(c)),
            "{}",
            tool.name
        );
    }
    let schema_tool = tools
        .iter()
        .find(|t| t.name == "json_schema_2020_12_tool")
        .expect("listed");
    let schema = &schema_tool.input_schema;
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["$defs"]["address"]["$anchor"], "addressDef");
    assert_eq!(schema["additionalProperties"], false);
    assert!(schema["allOf"][0]["anyOf"].is_array() && schema["if"].is_object());
    for prompt in h.client.list_prompts().await.expect("prompts/list") {
        assert!(prompt.description.is_some(), "{}", prompt.name);
    }
    let caps = h.client.capabilities();
    assert!(caps.completions.is_some() && caps.logging.is_some() && caps.events.is_some());
    assert_eq!(
        caps.resources.as_ref().and_then(|r| r.subscribe),
        Some(true)
    );
}

#[tokio::test]
async fn content_tools_return_the_expected_blocks() {
    let h = connect().await;
    let call = |name: &'static str| h.client.call_tool(name, Value::Null);
    let text = call("test_simple_text").await.expect("call");
    assert_eq!(
        text.content[0].as_text(),
        Some("This is a simple text response for testing.")
    );
    let image = call("test_image_content").await.expect("call");
    assert!(matches!(&image.content[0], ContentBlock::Image(i) if i.mime_type == "image/png"));
    let audio = call("test_audio_content").await.expect("call");
    assert!(matches!(&audio.content[0], ContentBlock::Audio(a) if a.mime_type == "audio/wav"));
    let embedded = call("test_embedded_resource").await.expect("call");
    match &embedded.content[0] {
        ContentBlock::Resource(r) => {
            assert_eq!(r.resource.uri(), "test://embedded-resource");
            assert_eq!(r.resource.mime_type(), Some("text/plain"));
        }
        other => panic!("not a resource block: {other:?}"),
    }
    let mixed = call("test_multiple_content_types").await.expect("call");
    assert_eq!(kinds(&mixed.content), ["text", "image", "resource"]);
    let failed = call("test_error_handling")
        .await
        .expect("a result, not an error");
    assert!(failed.is_failure() && failed.content[0].as_text().is_some());
}

#[tokio::test]
async fn logging_and_progress_arrive_during_the_call() {
    let h = connect().await;
    h.client
        .set_log_level(LoggingLevel::Debug)
        .await
        .expect("setLevel");
    h.client
        .call_tool("test_tool_with_logging", json!({}))
        .await
        .expect("call");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        *h.logs.lock().expect("lock"),
        [
            "Tool execution started",
            "Tool processing data",
            "Tool execution completed"
        ]
    );

    let seen: Captured<f64> = Arc::default();
    let sink = seen.clone();
    let opts = RequestOptions {
        on_progress: Some(Arc::new(move |p: ProgressNotificationParams| {
            sink.lock().expect("lock").push(p.progress);
        })),
        ..RequestOptions::default()
    };
    h.client
        .call_tool_with("test_tool_with_progress", json!({}), opts)
        .await
        .expect("call");
    assert_eq!(*seen.lock().expect("lock"), [0.0, 50.0, 100.0]);
}

#[tokio::test]
async fn sampling_and_elicitation_go_through_the_client() {
    let h = connect().await;
    let sampled = h
        .client
        .call_tool(
            "test_sampling",
            json!({"prompt": "Test prompt for sampling"}),
        )
        .await
        .expect("call");
    assert_eq!(
        sampled.content[0].as_text(),
        Some("LLM response: a test answer")
    );
    let elicited = h
        .client
        .call_tool("test_elicitation", json!({"message": "Who are you?"}))
        .await
        .expect("call");
    assert!(!elicited.is_failure());
    for name in [
        "test_elicitation_sep1034_defaults",
        "test_elicitation_sep1330_enums",
    ] {
        let result = h.client.call_tool(name, json!({})).await.expect("call");
        assert!(!result.is_failure(), "{name}: {result:?}");
    }
    let schemas = h.elicitations.lock().expect("lock").clone();
    assert_eq!(schemas.len(), 3);
    let defaults = &schemas[1]["properties"];
    assert_eq!(defaults["name"]["default"], "John Doe");
    assert_eq!(defaults["age"]["default"], 30);
    assert_eq!(defaults["score"]["default"], 95.5);
    assert_eq!(defaults["status"]["default"], "active");
    assert_eq!(defaults["verified"]["default"], true);
    let enums = &schemas[2]["properties"];
    assert!(enums["untitledSingle"]["enum"].is_array());
    assert_eq!(enums["titledSingle"]["oneOf"][0]["title"], "First Option");
    assert_eq!(
        enums["legacyEnum"]["enumNames"].as_array().map(Vec::len),
        Some(3)
    );
    assert_eq!(enums["untitledMulti"]["items"]["type"], "string");
    assert_eq!(enums["titledMulti"]["items"]["anyOf"][2]["const"], "value3");
}

#[tokio::test]
async fn resources_prompts_and_completion_answer() {
    let h = connect().await;
    let text = h
        .client
        .read_resource("test://static-text")
        .await
        .expect("read");
    assert!(matches!(&text.contents[0], ResourceContents::Text(t) if !t.text.is_empty()));
    let blob = h
        .client
        .read_resource("test://static-binary")
        .await
        .expect("read");
    assert!(matches!(&blob.contents[0], ResourceContents::Blob(b) if b.mime_type.is_some()));
    let templated = h
        .client
        .read_resource("test://template/123/data")
        .await
        .expect("read");
    match &templated.contents[0] {
        ResourceContents::Text(t) => {
            let body: Value = serde_json::from_str(&t.text).expect("JSON");
            assert_eq!(body["id"], "123");
        }
        other => panic!("not text: {other:?}"),
    }
    h.client
        .subscribe_resource("test://watched-resource")
        .await
        .expect("subscribe");
    h.client
        .unsubscribe_resource("test://watched-resource")
        .await
        .expect("unsubscribe");

    let args = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    };
    let simple = h
        .client
        .get_prompt("test_simple_prompt", Default::default())
        .await
        .expect("get");
    assert!(!simple.messages.is_empty());
    let with_args = h
        .client
        .get_prompt(
            "test_prompt_with_arguments",
            args(&[("arg1", "testValue1"), ("arg2", "testValue2")]),
        )
        .await
        .expect("get");
    let text = serde_json::to_string(&with_args.messages).expect("serializes");
    assert!(text.contains("testValue1") && text.contains("testValue2"));
    let embedded = h
        .client
        .get_prompt(
            "test_prompt_with_embedded_resource",
            args(&[("resourceUri", "test://example-resource")]),
        )
        .await
        .expect("get");
    assert!(matches!(
        embedded.messages[0].content,
        ContentBlock::Resource(_)
    ));
    let image = h
        .client
        .get_prompt("test_prompt_with_image", Default::default())
        .await
        .expect("get");
    assert!(matches!(image.messages[0].content, ContentBlock::Image(_)));

    let completed = h
        .client
        .complete(CompleteRequestParams {
            r#ref: Reference::Prompt {
                name: "test_prompt_with_arguments".into(),
                title: None,
            },
            argument: CompletionArgument {
                name: "arg1".into(),
                value: "par".into(),
            },
            context: None,
            meta: None,
        })
        .await
        .expect("complete");
    assert_eq!(completed.completion.values, ["paris", "park", "party"]);
}

/// The MCP Events fixtures: the event types by delivery modes, the typed argument, the test
/// events each second, and the control tool.
#[tokio::test]
async fn events_fixtures_serve_every_mode_combination_and_tick() {
    use mcpbus::client::{Delivery, SubscriptionEvent};
    use mcpbus_proto::events_ext::DeliveryMode::{Poll, Push, Webhook};

    let server = build_server(Arc::default()).expect("the server builds");
    super::events::spawn_ticks(server.clone());
    let (ours, theirs) = mcpbus::transport::duplex(1 << 16);
    server.start(theirs);
    let client = Client::builder("events-harness", "1.0.0")
        .era(Era::Modern)
        .connect(ours)
        .await
        .expect("connects");
    let types = client.list_event_types().await.expect("events/list");
    let modes = |name: &str| {
        let found = types.iter().find(|t| t.name == name);
        found.map(|t| t.delivery.clone()).unwrap_or_default()
    };
    assert_eq!(modes("test.poll"), [Poll]);
    assert_eq!(modes("test.push_webhook"), [Push, Webhook]);
    assert_eq!(modes("test.all"), [Poll, Push, Webhook]);
    let combos: Vec<_> = types
        .iter()
        .filter(|t| t.name.starts_with("test."))
        .collect();
    assert_eq!(combos.len(), 8, "seven mode combinations and the typed one");
    let build = types
        .iter()
        .find(|t| t.name == "test.build")
        .expect("test.build");
    assert_eq!(build.input_schema["properties"]["repo"]["type"], "string");

    // The typed argument narrows the test events to one repository.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sub = client
        .subscribe_events("test.build")
        .argument("repo", "mcpbus")
        .delivery(Delivery::Push)
        .start(move |e| {
            let _ = tx.send(e);
        })
        .await
        .expect("events/stream");
    let mut seqs = Vec::new();
    while seqs.len() < 2 {
        let report = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv()).await;
        if let Ok(Some(SubscriptionEvent::Event(e))) = report {
            assert_eq!(e.topic, "conformance/builds/mcpbus");
            seqs.push(e.payload["seq"].as_u64().expect("seq"));
        } else {
            assert!(
                matches!(report, Ok(Some(_))),
                "a test event each second: {report:?}"
            );
        }
    }
    assert!(seqs[0] < seqs[1], "{seqs:?}");
    sub.stop().await;

    let allow = |origin: &'static str| {
        client.call_tool(
            "events_conformance_allow_callback_origin",
            json!({"origin": origin}),
        )
    };
    let allowed = allow("http://127.0.0.1:9/").await.expect("tools/call");
    assert_ne!(allowed.is_error, Some(true), "{allowed:?}");
    assert_eq!(allowed.content.len(), 1);
    let ContentBlock::Text(text) = &allowed.content[0] else {
        panic!("a text answer: {allowed:?}");
    };
    assert_eq!(text.text, "http://127.0.0.1:9");
    let refused = allow("127.0.0.1:9").await.expect("tools/call");
    assert_eq!(refused.is_error, Some(true));
}
