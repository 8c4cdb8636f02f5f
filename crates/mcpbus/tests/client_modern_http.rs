//! The client against a scripted 2026-07-28 HTTP server written here with hyper, to check what
//! travels on the wire: the era probe and its `-32022` retry, the fallback to `initialize` on a
//! non-modern refusal, the request headers (`Mcp-Name`, `Mcp-Param-*` in plain and base64 form),
//! modern errors passed through from `4xx` answers, an `input_required` round with its new id and
//! echoed `requestState`, progress on an SSE answer, and a listen stream reopened after it ends.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::channel::mpsc::{UnboundedSender, unbounded};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mcpbus::Error;
use mcpbus::client::{Client, Era};
use mcpbus::proto::mcp::{Root, methods};
use mcpbus::proto::modern::SubscriptionFilter;
use mcpbus::proto::sse::encode_event;
use mcpbus::service::RequestOptions;
use mcpbus::transport::{HttpClientConfig, HttpClientTransport};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const LIMIT: Duration = Duration::from_secs(10);
const MODERN: &str = "2026-07-28";

type Body = BoxBody<Bytes, Infallible>;
type SseTx = UnboundedSender<Result<Frame<Bytes>, Infallible>>;

/// One POST as the scripted server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    headers: HeaderMap,
    body: Value,
}

impl Seen {
    fn rpc(&self) -> &str {
        self.body["method"].as_str().unwrap_or("")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// What the scripted server does: answers by JSON-RPC method.
#[derive(Default)]
struct Script {
    seen: Mutex<Vec<Seen>>,
    /// Refuse the first probe with -32022.
    reject_first: bool,
    /// Be a handshake-era server: answer anything but initialize with 400 and a text body.
    legacy: bool,
    /// Answer server/discover with 404 and -32601.
    no_discover: bool,
    probes: AtomicUsize,
    listens: AtomicUsize,
    /// The listen streams kept open.
    open: Mutex<Vec<SseTx>>,
}

impl Script {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn json_answer(status: StatusCode, body: &Value) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    resp
}

fn result(id: &Value, result: Value) -> Response<Body> {
    json_answer(
        StatusCode::OK,
        &json!({"jsonrpc": "2.0", "id": id, "result": result}),
    )
}

fn sse() -> (SseTx, Response<Body>) {
    let (tx, rx) = unbounded();
    let mut resp = Response::new(StreamBody::new(rx).boxed());
    resp.headers_mut()
        .insert("content-type", "text/event-stream".parse().unwrap());
    (tx, resp)
}

fn send(tx: &SseTx, message: &Value) {
    let mut out = Vec::new();
    encode_event(&mut out, None, None, message.to_string().as_bytes());
    let _ = tx.unbounded_send(Ok(Frame::data(Bytes::from(out))));
}

fn discover_result() -> Value {
    json!({"resultType": "complete", "supportedVersions": [MODERN], "ttlMs": 0,
           "cacheScope": "private", "capabilities": {"tools": {"listChanged": true}},
           "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "scripted", "version": "9"}}})
}

fn respond(script: &Script, seen: &Seen) -> Response<Body> {
    let id = &seen.body["id"];
    let params = &seen.body["params"];
    if script.legacy {
        return match seen.rpc() {
            "initialize" => result(
                id,
                json!({"protocolVersion": "2025-11-25",
                "capabilities": {}, "serverInfo": {"name": "old", "version": "1"}}),
            ),
            "notifications/initialized" => json_answer(StatusCode::ACCEPTED, &json!({})),
            _ => {
                let mut resp = json_answer(StatusCode::BAD_REQUEST, &json!({}));
                *resp.body_mut() = Full::new(Bytes::from("Bad Request: no session")).boxed();
                resp
            }
        };
    }
    match seen.rpc() {
        "server/discover" if script.no_discover => json_answer(
            StatusCode::NOT_FOUND,
            &json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "nope"}}),
        ),
        "server/discover"
            if script.reject_first && script.probes.fetch_add(1, Ordering::SeqCst) == 0 =>
        {
            json_answer(
                StatusCode::BAD_REQUEST,
                &json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32022,
                    "message": "Unsupported protocol version",
                    "data": {"supported": [MODERN], "requested": "x"}}}),
            )
        }
        "server/discover" => result(id, discover_result()),
        "tools/list" => result(
            id,
            json!({"resultType": "complete", "tools": [
                {"name": "t", "inputSchema": {"type": "object", "properties": {
                    "region": {"type": "string", "x-mcp-header": "Region"},
                    "n": {"type": "integer", "x-mcp-header": "N"},
                    "on": {"type": "boolean", "x-mcp-header": "On"}}}},
                {"name": "bad", "inputSchema": {"type": "object", "properties": {
                    "v": {"type": "number", "x-mcp-header": "V"}}}}
            ]}),
        ),
        "tools/call" => call(seen, id, params),
        "resources/read" => result(id, json!({"resultType": "complete", "contents": []})),
        "subscriptions/listen" => listen(script, id),
        _ => json_answer(
            StatusCode::NOT_FOUND,
            &json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "unknown"}}),
        ),
    }
}

fn call(seen: &Seen, id: &Value, params: &Value) -> Response<Body> {
    let text =
        |t: &str| json!({"resultType": "complete", "content": [{"type": "text", "text": t}]});
    match params["name"].as_str() {
        Some("needs_sampling") => json_answer(
            StatusCode::BAD_REQUEST,
            &json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32021,
                "message": "Missing required client capability: sampling",
                "data": {"requiredCapabilities": {"sampling": {}}}}}),
        ),
        Some("roots") if params.get("inputResponses").is_none() => result(
            id,
            json!({"resultType": "input_required", "requestState": "opaque ∂ state",
                   "inputRequests": {"where": {"method": "roots/list"}}}),
        ),
        Some("roots") => {
            assert_eq!(params["requestState"], "opaque ∂ state");
            let roots = &params["inputResponses"]["where"]["roots"];
            result(
                id,
                text(&format!("{} root(s)", roots.as_array().unwrap().len())),
            )
        }
        Some("slow") => {
            let (tx, resp) = sse();
            let token = &params["_meta"]["progressToken"];
            send(
                &tx,
                &json!({"jsonrpc": "2.0", "method": "notifications/progress",
                "params": {"progressToken": token, "progress": 1, "total": 2}}),
            );
            send(
                &tx,
                &json!({"jsonrpc": "2.0", "id": id, "result": text("done")}),
            );
            resp
        }
        _ => result(id, text(seen.header("mcp-param-region").unwrap_or("-"))),
    }
}

/// The first listen stream is acknowledged and then ends; the second stays open after its
/// acknowledgement and a list change.
fn listen(script: &Script, id: &Value) -> Response<Body> {
    let n = script.listens.fetch_add(1, Ordering::SeqCst);
    let (tx, resp) = sse();
    let meta = json!({"io.modelcontextprotocol/subscriptionId": id});
    send(
        &tx,
        &json!({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged",
        "params": {"notifications": {"toolsListChanged": true}, "_meta": meta}}),
    );
    if n > 0 {
        send(
            &tx,
            &json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed",
            "params": {"_meta": meta}}),
        );
        script.open.lock().unwrap().push(tx);
    }
    resp
}

async fn handle(script: Arc<Script>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let headers = req.headers().clone();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let seen = Seen {
        method,
        headers,
        body,
    };
    script.seen.lock().unwrap().push(seen.clone());
    if seen.method != Method::POST {
        return Ok(json_answer(StatusCode::METHOD_NOT_ALLOWED, &json!({})));
    }
    Ok(respond(&script, &seen))
}

async fn serve(script: Arc<Script>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let script = script.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(script.clone(), req));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

async fn connect(script: &Arc<Script>, builder: mcpbus::client::ClientBuilder) -> Client {
    let addr = serve(script.clone()).await;
    let url = format!("http://{addr}/mcp");
    let transport = HttpClientTransport::new(&url, HttpClientConfig::default()).unwrap();
    tokio::time::timeout(LIMIT, builder.connect(transport))
        .await
        .expect("connect timed out")
        .expect("connect failed")
}

#[tokio::test]
async fn the_probe_retries_after_32022_and_requests_carry_the_headers() {
    let script = Arc::new(Script {
        reject_first: true,
        ..Script::default()
    });
    let client = connect(&script, Client::builder("wire", "1")).await;
    assert_eq!(client.era(), Era::Modern);
    assert_eq!(client.server_info().name, "scripted");

    let tools = client.list_tools().await.unwrap();
    assert_eq!(tools.len(), 1, "the tool with a number header is dropped");
    let args = json!({"region": "Zürich", "n": 42, "on": false, "other": "x"});
    let answer = client.call_tool("t", args).await.unwrap();
    assert_eq!(answer.content[0].as_text(), Some("=?base64?WsO8cmljaA==?="));
    client.read_resource("file:///a b/ü").await.unwrap();
    client.close().await;

    let seen = script.seen();
    let rpcs: Vec<&str> = seen.iter().map(Seen::rpc).collect();
    assert_eq!(
        rpcs,
        [
            "server/discover",
            "server/discover",
            "tools/list",
            "tools/call",
            "resources/read"
        ]
    );
    for s in &seen {
        assert_eq!(s.method, Method::POST, "no GET, no DELETE: {s:?}");
        assert_eq!(s.header("mcp-protocol-version"), Some(MODERN), "{s:?}");
        assert_eq!(s.header("mcp-method"), Some(s.rpc()), "{s:?}");
        assert_eq!(s.header("mcp-session-id"), None, "{s:?}");
        let accept = s.header("accept").unwrap();
        assert!(accept.contains("application/json") && accept.contains("text/event-stream"));
        let meta = &s.body["params"]["_meta"];
        assert_eq!(meta["io.modelcontextprotocol/protocolVersion"], MODERN);
        assert_eq!(meta["io.modelcontextprotocol/clientInfo"]["name"], "wire");
        assert!(meta["io.modelcontextprotocol/clientCapabilities"].is_object());
    }
    let call = &seen[3];
    assert_eq!(call.header("mcp-name"), Some("t"));
    assert_eq!(call.header("mcp-param-n"), Some("42"));
    assert_eq!(call.header("mcp-param-on"), Some("false"));
    assert_eq!(call.header("mcp-param-other"), None);
    assert_eq!(
        seen[4].header("mcp-name"),
        Some("=?base64?ZmlsZTovLy9hIGIvw7w=?=")
    );
}

#[tokio::test]
async fn a_refusal_without_a_modern_error_falls_back_to_initialize() {
    let script = Arc::new(Script {
        legacy: true,
        ..Script::default()
    });
    let client = connect(&script, Client::builder("wire", "1")).await;
    assert_eq!(client.era(), Era::Legacy);
    assert_eq!(client.server_info().name, "old");
    client.close().await;
    let rpcs: Vec<String> = script.seen().iter().map(|s| s.rpc().to_owned()).collect();
    assert_eq!(
        rpcs[..3],
        ["server/discover", "initialize", "notifications/initialized"]
    );
}

#[tokio::test]
async fn a_404_method_not_found_to_the_probe_still_means_modern() {
    let script = Arc::new(Script {
        no_discover: true,
        ..Script::default()
    });
    let client = connect(&script, Client::builder("wire", "1").era(Era::Modern)).await;
    assert_eq!(client.era(), Era::Modern);
    assert_eq!(client.protocol_version(), MODERN);
    // Modern errors under 4xx reach the caller with their code.
    match client.call_tool("needs_sampling", json!({})).await {
        Err(Error::Remote(e)) => {
            assert_eq!(e.code, -32021);
            assert!(e.missing_required_client_capability_data().is_some());
        }
        other => panic!("{other:?}"),
    }
    match client.request("nothing/here", None).await {
        Err(Error::Remote(e)) => assert_eq!(e.code, -32601),
        other => panic!("{other:?}"),
    }
    client.close().await;
}

#[tokio::test]
async fn input_rounds_progress_and_a_reopened_listen_stream() {
    let script = Arc::new(Script::default());
    let (tx, mut notes) = mpsc::unbounded_channel();
    let builder = Client::builder("wire", "1")
        .roots(vec![Root {
            uri: "file:///w".into(),
            name: None,
            meta: None,
        }])
        .on_notification(move |n| {
            let _ = tx.send(n.method);
        });
    let client = connect(&script, builder).await;

    let answer = client.call_tool("roots", json!({})).await.unwrap();
    assert_eq!(answer.content[0].as_text(), Some("1 root(s)"));
    let calls: Vec<Seen> = script
        .seen()
        .into_iter()
        .filter(|s| s.rpc() == "tools/call")
        .collect();
    assert_eq!(calls.len(), 2);
    assert_ne!(
        calls[0].body["id"], calls[1].body["id"],
        "a retry has a new id"
    );
    assert!(calls[0].body["params"].get("requestState").is_none());

    let progressed = Arc::new(AtomicUsize::new(0));
    let counter = progressed.clone();
    let opts = RequestOptions {
        on_progress: Some(Arc::new(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        })),
        ..RequestOptions::default()
    };
    let done = client
        .call_tool_with("slow", json!({}), opts)
        .await
        .unwrap();
    assert_eq!(done.content[0].as_text(), Some("done"));
    assert_eq!(progressed.load(Ordering::SeqCst), 1);

    // Connecting opened a listen stream (the server declares tool list changes); its first
    // stream ends after the acknowledgement, and the reopened one brings the change.
    let method = tokio::time::timeout(LIMIT, notes.recv()).await.unwrap();
    assert_eq!(method.as_deref(), Some(methods::TOOLS_LIST_CHANGED));
    assert_eq!(script.listens.load(Ordering::SeqCst), 2);
    let ack = client
        .listen(SubscriptionFilter {
            tools_list_changed: Some(true),
            ..SubscriptionFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(ack.tools_list_changed, Some(true));
    client.close().await;
    let listens = script
        .seen()
        .iter()
        .filter(|s| s.rpc() == "subscriptions/listen")
        .map(|s| s.body["params"]["notifications"].clone())
        .collect::<Vec<_>>();
    assert_eq!(listens.len(), 3);
    assert!(
        listens
            .iter()
            .all(|f| *f == json!({"toolsListChanged": true}))
    );
}
