//! The 2026-07-28 era over Streamable HTTP against raw HTTP (docs/protocol.md 6): era choice
//! per request on the one endpoint, the errors and their HTTP statuses, input rounds with a
//! sealed requestState, listen streams, logs only on request, cancellation by closing.

#![allow(clippy::unwrap_used)] // tests unwrap to fail loudly

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{Method, StatusCode};
use mcpbus::proto::mcp::{ElicitRequestFormParams, ElicitRequestParams, LoggingLevel};
use mcpbus::server::modern::ModernConfig;
use mcpbus::server::{Context, NoArgs, Server, ToolError};
use mcpbus::transport::http::{HttpConfig, serve_http};
use mcpbus_testkit::modern::{answer_message, headers, request};
use mcpbus_testkit::{HttpClient, SseReader, TestServer};
use serde_json::{Map, Value, json};

const T: Duration = Duration::from_secs(5);

fn form(field: &str) -> ElicitRequestParams {
    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
    schema.insert("properties".into(), json!({field: {"type": "string"}}));
    ElicitRequestParams::Form(ElicitRequestFormParams {
        message: format!("{field}?"),
        requested_schema: schema,
        meta: None,
    })
}

fn server(modern: ModernConfig, cancelled: Arc<AtomicBool>) -> Server {
    Server::builder("modern-test", "1")
        .tool("echo", "Answers at once", |_: NoArgs, _ctx| async { "ok" })
        .tool(
            "two_rounds",
            "Asks twice",
            |_: NoArgs, ctx: Context| async move {
                let name = ctx.input_key("name").elicit(form("name")).await?;
                let color = ctx.elicit(form("color")).await?;
                Ok::<_, ToolError>(format!("{:?} {:?}", name.content, color.content))
            },
        )
        .tool(
            "logs",
            "Logs at info",
            |_: NoArgs, ctx: Context| async move {
                ctx.log(LoggingLevel::Info, None, json!("hello"));
                tokio::time::sleep(Duration::from_millis(20)).await;
                "logged"
            },
        )
        .tool(
            "slow",
            "Waits until cancelled",
            move |_: NoArgs, ctx: Context| {
                let cancelled = cancelled.clone();
                async move {
                    ctx.progress(0.0, None, None);
                    ctx.cancellation().cancelled().await;
                    cancelled.store(true, Ordering::SeqCst);
                    "cancelled"
                }
            },
        )
        .tool(
            "change",
            "Changes the tool list",
            |_: NoArgs, ctx: Context| async move {
                ctx.server().notify_tools_list_changed();
                "changed"
            },
        )
        .modern(modern)
        .build()
        .unwrap()
}

async fn start(modern: ModernConfig) -> (TestServer, HttpClient, Arc<AtomicBool>) {
    start_with(modern, HttpConfig::default()).await
}

async fn start_with(
    modern: ModernConfig,
    http: HttpConfig,
) -> (TestServer, HttpClient, Arc<AtomicBool>) {
    let cancelled = Arc::new(AtomicBool::new(false));
    let s = server(modern, cancelled.clone());
    let ts = TestServer::start(|l, stop| serve_http(l, "/mcp", s, http, stop)).await;
    let raw = HttpClient::new(ts.url());
    (ts, raw, cancelled)
}

fn call(id: i64, tool: &str, extra: Value) -> Value {
    let mut params = json!({"name": tool, "arguments": {}});
    params
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    request(id, "tools/call", params, json!({"elicitation": {}}))
}

#[tokio::test]
async fn discover_names_the_revision_the_capabilities_and_the_server() {
    let (_ts, raw, _) = start(ModernConfig::default()).await;
    let a = raw
        .post_modern(&request(1, "server/discover", json!({}), json!({})))
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.header("mcp-session-id").is_none(),
        "no session in this era"
    );
    let r = &a.json()["result"];
    assert_eq!(r["resultType"], "complete");
    assert_eq!(r["supportedVersions"], json!(["2026-07-28"]));
    assert_eq!(r["capabilities"]["tools"]["listChanged"], true);
    assert_eq!(
        r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "modern-test"
    );
    assert!(r["ttlMs"].is_u64() && r["cacheScope"].is_string(), "{r}");
}

#[tokio::test]
async fn errors_carry_the_id_and_the_status_the_revision_gives_them() {
    let (_ts, raw, _) = start(ModernConfig::default()).await;
    // Unsupported revision: 400, -32022 listing what is supported and echoing the request.
    let mut old = request(2, "server/discover", json!({}), json!({}));
    old["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let mut h = headers(&old);
    h[2].1 = "2099-01-01".into();
    let hv: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let a = raw
        .call(Method::POST, &hv, old.to_string().as_bytes())
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let e = a.json();
    assert_eq!(
        (e["id"].clone(), e["error"]["code"].clone()),
        (json!(2), json!(-32022))
    );
    assert_eq!(e["error"]["data"]["supported"], json!(["2026-07-28"]));
    assert_eq!(e["error"]["data"]["requested"], "2099-01-01");
    // Header and body disagree: 400, -32020.
    let body = request(3, "tools/call", json!({"name": "echo"}), json!({}));
    let mut h = headers(&body);
    h.retain(|(k, _)| k != "mcp-name");
    h.push(("mcp-name".into(), "other".into()));
    let hv: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let a = raw
        .call(Method::POST, &hv, body.to_string().as_bytes())
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["error"]["code"], -32020, "{}", a.text());
    // _meta without clientCapabilities: 400, -32602.
    let mut bare = request(4, "tools/list", json!({}), json!({}));
    bare["params"]["_meta"]
        .as_object_mut()
        .unwrap()
        .remove("io.modelcontextprotocol/clientCapabilities");
    let a = raw.post_modern(&bare).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["error"]["code"], -32602);
    // Removed and unknown methods: 404, -32601.
    for method in ["initialize", "ping", "logging/setLevel", "no/such"] {
        let a = raw
            .post_modern(&request(5, method, json!({}), json!({})))
            .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(a.json()["error"]["code"], -32601, "{method}");
        assert_eq!(a.json()["id"], 5, "{method}");
    }
    // A tool that needs elicitation, from a client that did not declare it: 400, -32021.
    let a = raw
        .post_modern(&request(
            6,
            "tools/call",
            json!({"name": "two_rounds"}),
            json!({}),
        ))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let e = a.json();
    assert_eq!(e["error"]["code"], -32021);
    assert_eq!(
        e["error"]["data"]["requiredCapabilities"],
        json!({"elicitation": {}})
    );
    // GET and DELETE without a session belong to no era: 405.
    let a = raw
        .call(Method::GET, &[("accept", "text/event-stream")], b"")
        .await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn input_rounds_carry_their_answers_in_a_sealed_state() {
    let (_ts, raw, _) = start(ModernConfig::default()).await;
    let first = raw
        .post_modern(&call(1, "two_rounds", json!({})))
        .await
        .json();
    let r1 = &first["result"];
    assert_eq!(r1["resultType"], "input_required", "{first}");
    assert_eq!(r1["inputRequests"]["name"]["method"], "elicitation/create");
    let answer = json!({"name": {"action": "accept", "content": {"name": "Ada"}}});
    let retry = call(
        2,
        "two_rounds",
        json!({"inputResponses": answer, "requestState": r1["requestState"]}),
    );
    let second = raw.post_modern(&retry).await.json();
    let r2 = &second["result"];
    assert_eq!(r2["resultType"], "input_required", "{second}");
    // The second input is numbered by the order of asking.
    assert_eq!(
        r2["inputRequests"]["elicitation-2"]["method"], "elicitation/create",
        "{second}"
    );
    assert_ne!(r2["requestState"], r1["requestState"]);
    // The first answer travels in the state: the last retry only answers the second.
    let answer = json!({"elicitation-2": {"action": "accept", "content": {"color": "blue"}}});
    let last = call(
        3,
        "two_rounds",
        json!({"inputResponses": answer, "requestState": r2["requestState"]}),
    );
    let done = raw.post_modern(&last).await.json();
    let text = done["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("Ada") && text.contains("blue"), "{done}");
    // The state is bound to its request: other arguments, or a tampered state, are refused.
    let mut moved = last.clone();
    moved["params"]["arguments"] = json!({"other": 1});
    let refused = raw.post_modern(&moved).await.json();
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    let mut tampered = last.clone();
    tampered["params"]["requestState"] =
        json!(format!("{}-TAMPERED", r2["requestState"].as_str().unwrap()));
    let refused = raw.post_modern(&tampered).await.json();
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("requestState"),
        "{refused}"
    );
    // An answer of the wrong shape is an error, not an answer.
    let bad = call(4, "two_rounds", json!({"inputResponses": {"name": 12345}}));
    let refused = raw.post_modern(&bad).await.json();
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
}

#[tokio::test]
async fn logs_are_sent_only_to_requests_that_ask_for_them() {
    let (_ts, raw, _) = start(ModernConfig::default()).await;
    let quiet = raw.post_modern(&call(1, "logs", json!({}))).await;
    assert!(
        !quiet.text().contains("notifications/message"),
        "{}",
        quiet.text()
    );
    let asking = call(
        2,
        "logs",
        json!({"_meta": {"io.modelcontextprotocol/logLevel": "info"}}),
    );
    let loud = raw.post_modern(&asking).await;
    assert!(
        loud.text().contains("notifications/message"),
        "{}",
        loud.text()
    );
    assert_eq!(
        answer_message(&loud)["result"]["content"][0]["text"],
        "logged"
    );
}

#[tokio::test]
async fn a_listen_stream_acknowledges_filters_and_tags_its_notifications() {
    let (_ts, raw, _) = start(ModernConfig::default()).await;
    let filter = json!({"notifications": {"toolsListChanged": true, "promptsListChanged": true}});
    let listen = request(9, "subscriptions/listen", filter, json!({}));
    let response = raw.post_modern_stream(&listen).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = SseReader::new(response);
    let (_, ack) = stream.next_message(T).await.unwrap();
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    // The server has no prompts: it does not promise their changes.
    assert_eq!(
        ack["params"]["notifications"],
        json!({"toolsListChanged": true})
    );
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        9
    );
    let changed = raw.post_modern(&call(1, "change", json!({}))).await;
    assert_eq!(changed.status, StatusCode::OK);
    let (_, note) = stream.next_message(T).await.unwrap();
    assert_eq!(note["method"], "notifications/tools/list_changed");
    assert_eq!(
        note["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        9
    );
}

#[tokio::test]
async fn closing_the_stream_cancels_the_request() {
    let (_ts, raw, cancelled) = start(ModernConfig::default()).await;
    let slow = call(1, "slow", json!({"_meta": {"progressToken": "p"}}));
    let response = raw.post_modern_stream(&slow).await;
    let mut stream = SseReader::new(response);
    let (_, progress) = stream.next_message(T).await.unwrap();
    assert_eq!(progress["method"], "notifications/progress");
    drop(stream);
    for _ in 0..100 {
        if cancelled.load(Ordering::SeqCst) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the handler was not cancelled when the client closed the stream");
}

#[tokio::test]
async fn a_legacy_only_server_answers_modern_requests_as_the_handshake_era_does() {
    let (_ts, raw, _) = start(ModernConfig::disabled()).await;
    let a = raw
        .post_modern(&request(1, "server/discover", json!({}), json!({})))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text());
    assert_ne!(a.json()["error"]["code"], -32022);
    // The handshake era is untouched.
    let session = raw.initialize().await;
    assert!(!session.is_empty());
}

#[tokio::test]
async fn requests_beyond_the_limit_get_503_and_a_closed_stream_frees_its_place() {
    let http = HttpConfig {
        max_modern_requests: 1,
        ..HttpConfig::default()
    };
    let (_ts, raw, _) = start_with(ModernConfig::default(), http).await;
    let filter = json!({"notifications": {"toolsListChanged": true}});
    let listen = request(1, "subscriptions/listen", filter, json!({}));
    let mut stream = SseReader::new(raw.post_modern_stream(&listen).await);
    assert!(
        stream.next_message(T).await.is_some(),
        "the acknowledgement"
    );
    let refused = raw.post_modern(&call(2, "echo", json!({}))).await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.text()
    );
    drop(stream);
    for _ in 0..100 {
        if raw.post_modern(&call(3, "echo", json!({}))).await.status == StatusCode::OK {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the closed listen stream still counts against the limit");
}
