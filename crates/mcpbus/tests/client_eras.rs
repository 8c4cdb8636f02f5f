//! The client in both eras against mcpbus's own (dual-era) server, in process: over an in-memory
//! pipe (as over stdio) and over Streamable HTTP. Era detection and pinning, a tool call, an
//! elicitation asked through `input_required` and answered by the same callback as in the
//! handshake era, the bound on input rounds, `x-mcp-header` tools over HTTP, a list change
//! heard on a `subscriptions/listen` stream, and an HTTP error the server sent before reading the
//! request (its id `"unknown"`); and a server that ignores the probe, which the client
//! initializes after the probe times out.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mcpbus::client::{Client, ClientBuilder, Era, MAX_INPUT_ROUNDS};
use mcpbus::proto::jsonrpc::Notification;
use mcpbus::proto::mcp::{
    CallToolResult, ElicitAction, ElicitRequestFormParams, ElicitRequestParams, ElicitResult, Tool,
    methods,
};
use mcpbus::proto::modern::SubscriptionFilter;
use mcpbus::server::modern::ModernConfig;
use mcpbus::server::{Context, NoArgs, Server, ServerBuilder};
use mcpbus::transport::http::{HttpConfig, serve_http};
use mcpbus::transport::{HttpClientConfig, HttpClientTransport, duplex};
use mcpbus::{Error, proto};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

const LIMIT: Duration = Duration::from_secs(10);

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|b| b.as_text())
        .collect::<Vec<_>>()
        .join(" ")
}

fn form(message: &str) -> ElicitRequestParams {
    let schema = json!({"type": "object", "properties": {"name": {"type": "string"}}});
    ElicitRequestParams::Form(ElicitRequestFormParams {
        message: message.into(),
        requested_schema: schema.as_object().unwrap().clone(),
        meta: None,
    })
}

fn builder() -> ServerBuilder {
    let endless = Arc::new(AtomicUsize::new(0));
    let region = Tool::new(
        "region",
        json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "limit": {"type": "integer", "x-mcp-header": "Limit"},
            "query": {"type": "string"}
        }}),
    );
    let invalid = Tool::new(
        "invalid_header",
        json!({"type": "object", "properties": {"v": {"type": "object", "x-mcp-header": "V"}}}),
    );
    Server::builder("eras", "1.2.3")
        .instructions("two eras")
        .tool("echo", "Answers at once", |_: NoArgs, _ctx| async move {
            Ok(CallToolResult::text("echoed"))
        })
        .tool_raw(region, |args: Map<String, Value>, _ctx| async move {
            Ok(CallToolResult::text(format!(
                "{} {}",
                args["region"].as_str().unwrap_or("?"),
                args.get("limit").unwrap_or(&Value::Null)
            )))
        })
        .tool_raw(invalid, |_args, _ctx| async move {
            Ok(CallToolResult::text("must not be called"))
        })
        .tool(
            "login",
            "Asks the user's name",
            |_: NoArgs, ctx: Context| async move {
                let answer = ctx.elicit(form("Your name?")).await?;
                let name = answer
                    .content
                    .and_then(|c| c.get("name").cloned())
                    .unwrap_or(Value::Null);
                Ok(CallToolResult::text(format!("hello {name}")))
            },
        )
        .tool(
            "endless",
            "Never has enough",
            move |_: NoArgs, ctx: Context| {
                let round = endless.fetch_add(1, Ordering::SeqCst);
                async move {
                    ctx.input_key(format!("round-{round}"))
                        .elicit(form("Again?"))
                        .await?;
                    Ok(CallToolResult::text("unreachable"))
                }
            },
        )
}

/// A client whose elicitation callback answers `octocat` and counts its calls.
fn client_builder(asked: &Arc<AtomicUsize>) -> ClientBuilder {
    let counter = asked.clone();
    Client::builder("eras-client", "0.1").on_elicitation(false, move |params| {
        counter.fetch_add(1, Ordering::SeqCst);
        assert!(matches!(params, ElicitRequestParams::Form(_)));
        async move {
            Ok(ElicitResult {
                action: ElicitAction::Accept,
                content: Some(json!({"name": "octocat"}).as_object().unwrap().clone()),
                meta: None,
            })
        }
    })
}

async fn over_pipe(server: &Server, builder: ClientBuilder) -> Result<Client, Error> {
    let (a, b) = duplex(64 * 1024);
    server.start(a);
    tokio::time::timeout(LIMIT, builder.connect(b))
        .await
        .expect("connect timed out")
}

/// Serves `server` over HTTP; dropping the sender stops it.
async fn over_http(server: &Server) -> (String, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve_http(
        listener,
        "/mcp",
        server.clone(),
        HttpConfig::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    (url, stop)
}

async fn connect_http(url: &str, builder: ClientBuilder) -> Client {
    let transport = HttpClientTransport::new(url, HttpClientConfig::default()).unwrap();
    tokio::time::timeout(LIMIT, builder.connect(transport))
        .await
        .expect("connect timed out")
        .expect("connect failed")
}

async fn call(client: &Client, tool: &str, arguments: Value) -> Result<String, Error> {
    tokio::time::timeout(LIMIT, client.call_tool(tool, arguments))
        .await
        .expect("call timed out")
        .map(|r| text(&r))
}

#[tokio::test]
async fn auto_speaks_modern_to_a_dual_era_server_and_legacy_when_pinned_or_for_events() {
    let server = builder().build().unwrap();
    let asked = Arc::new(AtomicUsize::new(0));

    let client = over_pipe(&server, client_builder(&asked)).await.unwrap();
    assert_eq!(client.era(), Era::Modern);
    assert_eq!(client.protocol_version(), "2026-07-28");
    let discover = client.discover_result().expect("a discover result");
    assert_eq!(discover.supported_versions, ["2026-07-28"]);
    assert_eq!(client.server_info().name, "eras");
    assert_eq!(client.instructions(), Some("two eras"));
    assert_eq!(client.session_id(), None);
    assert_eq!(call(&client, "echo", json!({})).await.unwrap(), "echoed");
    client.ping().await.unwrap();
    client.close().await;

    let legacy = over_pipe(&server, client_builder(&asked).era(Era::Legacy))
        .await
        .unwrap();
    assert_eq!(legacy.era(), Era::Legacy);
    assert_eq!(
        legacy.protocol_version(),
        proto::mcp::LATEST_PROTOCOL_VERSION
    );
    assert!(legacy.session_id().is_some());
    assert!(legacy.discover_result().is_none());
    assert_eq!(call(&legacy, "echo", json!({})).await.unwrap(), "echoed");
    legacy.close().await;

    // Topic events exist only in the handshake era: a client that wants them initializes.
    let events = Client::builder("events", "1").on_event(|_| {});
    let events = over_pipe(&server, events).await.unwrap();
    assert_eq!(events.era(), Era::Legacy);
    events.close().await;

    // And a modern client says so when asked for them.
    let modern = over_pipe(&server, Client::builder("c", "1")).await.unwrap();
    let err = modern.subscribe(["news/+"]).await.unwrap_err();
    assert!(err.to_string().contains("handshake era"), "{err}");
    modern.close().await;
}

#[tokio::test]
async fn a_handshake_only_server_makes_auto_fall_back_and_modern_fail() {
    let server = builder().modern(ModernConfig::disabled()).build().unwrap();
    let asked = Arc::new(AtomicUsize::new(0));
    let client = over_pipe(&server, client_builder(&asked)).await.unwrap();
    assert_eq!(client.era(), Era::Legacy);
    assert_eq!(call(&client, "echo", json!({})).await.unwrap(), "echoed");
    client.close().await;

    let err = over_pipe(&server, client_builder(&asked).era(Era::Modern))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("does not speak MCP 2026-07-28"),
        "{err}"
    );

    let (url, _stop) = over_http(&server).await;
    let client = connect_http(&url, client_builder(&asked)).await;
    assert_eq!(client.era(), Era::Legacy);
    assert_eq!(call(&client, "echo", json!({})).await.unwrap(), "echoed");
    client.close().await;
}

#[tokio::test]
async fn input_required_is_answered_by_the_elicitation_callback_in_both_transports() {
    let server = builder().build().unwrap();
    let (url, _stop) = over_http(&server).await;
    let asked = Arc::new(AtomicUsize::new(0));

    let piped = over_pipe(&server, client_builder(&asked)).await.unwrap();
    let http = connect_http(&url, client_builder(&asked)).await;
    assert_eq!(http.era(), Era::Modern);
    for client in [&piped, &http] {
        let before = asked.load(Ordering::SeqCst);
        let answer = call(client, "login", json!({})).await.unwrap();
        assert_eq!(answer, "hello \"octocat\"");
        assert_eq!(asked.load(Ordering::SeqCst), before + 1);
    }

    // A server that keeps asking is given up on, with a clear error.
    let before = asked.load(Ordering::SeqCst);
    let err = call(&piped, "endless", json!({})).await.unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("after {MAX_INPUT_ROUNDS} rounds")),
        "{err}"
    );
    assert_eq!(asked.load(Ordering::SeqCst), before + MAX_INPUT_ROUNDS);

    // The same tool in the handshake era reaches the same callback as a server request.
    let legacy = over_pipe(&server, client_builder(&asked).era(Era::Legacy))
        .await
        .unwrap();
    assert_eq!(
        call(&legacy, "login", json!({})).await.unwrap(),
        "hello \"octocat\""
    );
    for client in [piped, http, legacy] {
        client.close().await;
    }
}

#[tokio::test]
async fn http_tools_mirror_annotated_arguments_and_invalid_ones_are_dropped() {
    let server = builder().build().unwrap();
    let (url, _stop) = over_http(&server).await;
    let asked = Arc::new(AtomicUsize::new(0));

    // Called before any tools/list: the client does not know the annotations yet, the
    // server refuses the call (-32020), and the client lists the tools and calls again.
    let client = connect_http(&url, client_builder(&asked)).await;
    let answer = call(&client, "region", json!({"region": "Zürich ", "limit": 5}))
        .await
        .unwrap();
    assert_eq!(answer, "Zürich  5");

    let tools = client.list_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert!(names.contains(&"region"), "{names:?}");
    assert!(!names.contains(&"invalid_header"), "{names:?}");
    for arguments in [
        json!({"region": "us-west1", "query": "SELECT 1"}),
        json!({"region": "=?base64?literal?=", "limit": null}),
        json!({"region": "line1\nline2", "limit": -7}),
    ] {
        let expected = format!(
            "{} {}",
            arguments["region"].as_str().unwrap(),
            arguments.get("limit").unwrap_or(&Value::Null)
        );
        assert_eq!(call(&client, "region", arguments).await.unwrap(), expected);
    }
    client.close().await;
}

async fn next_notification(rx: &mut mpsc::UnboundedReceiver<Notification>) -> Notification {
    tokio::time::timeout(LIMIT, rx.recv())
        .await
        .expect("no notification in time")
        .expect("the notification channel closed")
}

#[tokio::test]
async fn list_changes_arrive_on_a_listen_stream_over_a_pipe_and_over_http() {
    let server = builder().build().unwrap();
    let (url, _stop) = over_http(&server).await;
    for over in ["pipe", "http"] {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let builder = Client::builder("listener", "1").on_notification(move |n| {
            let _ = tx.send(n);
        });
        let client = match over {
            "pipe" => over_pipe(&server, builder).await.unwrap(),
            _ => connect_http(&url, builder).await,
        };

        assert_eq!(client.era(), Era::Modern);
        // A client with a notification callback listens to the declared list changes by
        // default; asking explicitly replaces the stream and waits for its acknowledgement.
        let ack = client
            .listen(SubscriptionFilter {
                tools_list_changed: Some(true),
                ..SubscriptionFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(ack.tools_list_changed, Some(true), "{over}");
        server.notify_tools_list_changed();
        let n = next_notification(&mut rx).await;
        assert_eq!(n.method, methods::TOOLS_LIST_CHANGED, "{over}");
        client.stop_listening();
        client.close().await;
    }
}

/// A handshake-era server that never answers what it does not know (as some do before
/// `initialize`): the probe times out and the client initializes.
#[tokio::test]
async fn a_silent_probe_falls_back_to_initialize_after_the_probe_timeout() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        let (r, mut w) = tokio::io::split(server_io);
        let mut lines = BufReader::new(r).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let message: Value = serde_json::from_str(&line).unwrap();
            let method = message["method"].as_str().unwrap_or("").to_owned();
            record.lock().unwrap().push(method.clone());
            if method == "initialize" {
                let answer = json!({"jsonrpc": "2.0", "id": message["id"], "result": {
                    "protocolVersion": "2025-11-25", "capabilities": {},
                    "serverInfo": {"name": "old", "version": "1"}}});
                w.write_all(format!("{answer}\n").as_bytes()).await.unwrap();
            }
        }
    });
    let (r, w) = tokio::io::split(client_io);
    let started = std::time::Instant::now();
    let client = Client::builder("c", "1")
        .probe_timeout(Duration::from_millis(200))
        .connect(mcpbus::transport::LineTransport::new(r, w))
        .await
        .unwrap();
    assert_eq!(client.era(), Era::Legacy);
    assert_eq!(client.server_info().name, "old");
    assert!(started.elapsed() >= Duration::from_millis(200));
    client.close().await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen[..2],
        ["server/discover", "notifications/cancelled"],
        "{seen:?}"
    );
    assert!(seen.contains(&"initialize".to_owned()), "{seen:?}");
}

/// An HTTP error refused before the server read the request (a `413` for a body over the
/// limit) carries the id `"unknown"`: the client still takes its JSON-RPC error as the answer
/// to the one request its POST carried, code and message as the server wrote them.
#[tokio::test]
async fn an_error_answered_before_the_body_was_read_is_the_requests_error() {
    let server = builder().build().unwrap();
    let (url, _stop) = over_http(&server).await;
    let client = connect_http(&url, Client::builder("c", "1")).await;
    assert_eq!(client.era(), Era::Modern);
    let big = "x".repeat(HttpConfig::default().max_body_bytes + 1);
    let err = call(&client, "echo", json!({ "padding": big }))
        .await
        .unwrap_err();
    match err {
        Error::Remote(e) => {
            assert_eq!(e.code, -32600, "{e:?}");
            assert!(e.message.contains("exceeds the limit"), "{e:?}");
        }
        other => panic!("expected the server's JSON-RPC error, got {other:?}"),
    }
    // The client goes on.
    assert_eq!(call(&client, "echo", json!({})).await.unwrap(), "echoed");
    client.close().await;
}
