//! The Streamable HTTP client transport against a scripted HTTP server written here with hyper:
//! sessions, protocol headers, SSE answers resumed with `Last-Event-ID`, the standalone stream and
//! its reconnection, transparent re-initialization after a `404`, HTTP errors, and `DELETE`.

#![allow(clippy::unwrap_used)] // tests unwrap to fail loudly

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::channel::mpsc::{UnboundedSender, unbounded};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mcpbus::client::Client;
use mcpbus::proto::mcp::ContentBlock;
use mcpbus::proto::sse::{encode_event, encode_priming};
use mcpbus::transport::{HttpClientConfig, HttpClientTransport};
use mcpbus::{Error, proto};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const LIMIT: Duration = Duration::from_secs(10);
const VERSION: &str = "2025-11-25";

type Body = BoxBody<Bytes, Infallible>;
type SseTx = UnboundedSender<Result<Frame<Bytes>, Infallible>>;

/// One HTTP request as the scripted server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    session: Option<String>,
    version: Option<String>,
    last_event_id: Option<String>,
    accept: Option<String>,
    authorization: Option<String>,
    /// The JSON-RPC method (or `"response"`) of a POST.
    rpc: Option<String>,
    status: StatusCode,
}

/// How the scripted server behaves, and what it saw.
#[derive(Default)]
struct Script {
    seen: Mutex<Vec<Seen>>,
    sessions: Mutex<HashSet<String>>,
    minted: AtomicUsize,
    /// The next POST carrying a session finds it ended (404).
    expire_next: AtomicBool,
    /// GET streams are refused with 405.
    no_get: bool,
    /// Resumes of the standalone stream are refused with 410 (the id expired).
    refuse_resume: bool,
    /// The id of the `tools/call` whose answer waits for a resume.
    pending_call: Mutex<Option<Value>>,
    /// Standalone streams kept open (so the client does not reconnect in a loop).
    open_streams: Mutex<Vec<SseTx>>,
    standalone_gets: AtomicUsize,
}

impl Script {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    async fn wait_for(&self, what: &str, pred: impl Fn(&[Seen]) -> bool) {
        let deadline = tokio::time::Instant::now() + LIMIT;
        while !pred(&self.seen()) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; seen: {:#?}",
                self.seen()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn header(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn full(status: StatusCode, content_type: Option<&str>, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()).boxed());
    *resp.status_mut() = status;
    if let Some(ct) = content_type {
        resp.headers_mut()
            .insert("content-type", ct.parse().unwrap());
    }
    resp
}

fn sse() -> (SseTx, Response<Body>) {
    let (tx, rx) = unbounded();
    let mut resp = Response::new(StreamBody::new(rx).boxed());
    resp.headers_mut()
        .insert("content-type", "text/event-stream".parse().unwrap());
    (tx, resp)
}

fn send_event(tx: &SseTx, id: &str, message: &Value) {
    let mut out = Vec::new();
    encode_event(
        &mut out,
        Some(id),
        Some("message"),
        message.to_string().as_bytes(),
    );
    let _ = tx.unbounded_send(Ok(Frame::data(Bytes::from(out))));
}

fn send_priming(tx: &SseTx, id: &str, retry_ms: u64) {
    let mut out = Vec::new();
    encode_priming(&mut out, id, Some(retry_ms));
    let _ = tx.unbounded_send(Ok(Frame::data(Bytes::from(out))));
}

fn initialize_result() -> Value {
    json!({
        "protocolVersion": VERSION,
        "capabilities": {"tools": {}},
        "serverInfo": {"name": "scripted", "version": "0"},
    })
}

async fn handle(script: Arc<Script>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let mut seen = Seen {
        method: req.method().clone(),
        session: header(&req, "mcp-session-id"),
        version: header(&req, "mcp-protocol-version"),
        last_event_id: header(&req, "last-event-id"),
        accept: header(&req, "accept"),
        authorization: header(&req, "authorization"),
        rpc: None,
        status: StatusCode::OK,
    };
    let method = req.method().clone();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let message: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap()
    };
    seen.rpc = message
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| message.get("result").map(|_| "response".to_owned()));
    let resp = respond(&script, &method, &seen, &message);
    seen.status = resp.status();
    script.seen.lock().unwrap().push(seen);
    Ok(resp)
}

fn respond(script: &Script, method: &Method, seen: &Seen, message: &Value) -> Response<Body> {
    let known = |s: &Option<String>| {
        s.as_ref()
            .is_some_and(|s| script.sessions.lock().unwrap().contains(s))
    };
    if seen.rpc.as_deref() == Some("initialize") {
        let n = script.minted.fetch_add(1, Ordering::SeqCst) + 1;
        let session = format!("sess-{n}");
        script.sessions.lock().unwrap().insert(session.clone());
        let answer = json!({"jsonrpc": "2.0", "id": message["id"], "result": initialize_result()});
        let mut resp = full(StatusCode::OK, Some("application/json"), answer.to_string());
        resp.headers_mut()
            .insert("mcp-session-id", session.parse().unwrap());
        return resp;
    }
    if method == Method::POST
        && seen.session.is_some()
        && script.expire_next.swap(false, Ordering::SeqCst)
    {
        script.sessions.lock().unwrap().clear();
    }
    if !known(&seen.session) {
        return full(StatusCode::NOT_FOUND, None, "unknown session");
    }
    match *method {
        Method::DELETE => {
            script.sessions.lock().unwrap().clear();
            full(StatusCode::OK, None, "")
        }
        Method::GET => get_stream(script, seen),
        _ => match seen.rpc.as_deref() {
            Some("tools/call") if message["params"]["name"] == "fail" => full(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some("text/plain"),
                "boom",
            ),
            Some("tools/call") if message["params"]["name"] == "silent" => {
                sse().1 // ends at once, with no event id to resume from
            }
            Some("tools/call") => {
                // Prime the stream, ask the client to come back in 20 ms, and close it before
                // answering: the answer is only sent on the resumed stream.
                *script.pending_call.lock().unwrap() = Some(message["id"].clone());
                let (tx, resp) = sse();
                send_priming(&tx, "call-1", 20);
                resp
            }
            Some("ping") => {
                let answer = json!({"jsonrpc": "2.0", "id": message["id"], "result": {}});
                full(StatusCode::OK, Some("application/json"), answer.to_string())
            }
            _ if message.get("id").is_none() || seen.rpc.as_deref() == Some("response") => {
                let mut resp = Response::new(Empty::new().boxed());
                *resp.status_mut() = StatusCode::ACCEPTED;
                resp
            }
            _ => full(StatusCode::BAD_REQUEST, None, "unscripted request"),
        },
    }
}

fn get_stream(script: &Script, seen: &Seen) -> Response<Body> {
    if script.no_get {
        return full(StatusCode::METHOD_NOT_ALLOWED, None, "");
    }
    match seen.last_event_id.as_deref() {
        Some(id) if id.starts_with("call-") => {
            let Some(call_id) = script.pending_call.lock().unwrap().take() else {
                return full(StatusCode::BAD_REQUEST, None, "nothing to resume");
            };
            let (tx, resp) = sse();
            let answer = json!({
                "jsonrpc": "2.0",
                "id": call_id,
                "result": {"content": [{"type": "text", "text": format!("resumed after {id}")}]},
            });
            send_event(&tx, "call-2", &answer);
            resp // `tx` dropped: the stream ends after the answer
        }
        Some(_) if script.refuse_resume => full(StatusCode::GONE, None, "event id expired"),
        resume => {
            let n = script.standalone_gets.fetch_add(1, Ordering::SeqCst);
            let (tx, resp) = sse();
            if n == 0 {
                assert_eq!(resume, None);
                send_priming(&tx, "g-1", 20);
                let emit = json!({
                    "jsonrpc": "2.0",
                    "method": "events/emit",
                    "params": {"topic": "build/done", "eventId": "e1", "payload": {"ok": true}},
                });
                send_event(&tx, "g-2", &emit);
                // Dropping `tx` ends the stream: the client must come back with g-2.
            } else {
                script.open_streams.lock().unwrap().push(tx);
            }
            resp
        }
    }
}

async fn serve(script: Arc<Script>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
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

fn config() -> HttpClientConfig {
    HttpClientConfig {
        headers: vec![("Authorization".into(), "Bearer t0ken".into())],
        initial_retry: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        request_timeout: Duration::from_secs(5),
        ..HttpClientConfig::default()
    }
}

async fn connect(
    addr: SocketAddr,
    config: HttpClientConfig,
) -> (Client, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let transport = HttpClientTransport::new(&format!("http://{addr}/mcp"), config).unwrap();
    let client = tokio::time::timeout(
        LIMIT,
        Client::builder("http-test", "0.0.1")
            .on_event(move |e| {
                let _ = tx.send(e.topic);
            })
            .connect(transport),
    )
    .await
    .expect("connect timed out")
    .expect("connect failed");
    (client, rx)
}

fn text(content: &[ContentBlock]) -> String {
    serde_json::to_value(content).unwrap()[0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn sessions_resumed_answers_standalone_stream_and_delete() {
    let script = Arc::new(Script::default());
    let addr = serve(script.clone()).await;
    let (client, mut events) = connect(addr, config()).await;
    assert_eq!(client.protocol_version(), VERSION);

    // The standalone stream delivers the event, ends, and is reopened from its last id.
    let topic = tokio::time::timeout(LIMIT, events.recv()).await.unwrap();
    assert_eq!(topic.as_deref(), Some("build/done"));
    script
        .wait_for("the standalone stream to be resumed", |seen| {
            seen.iter()
                .any(|s| s.method == Method::GET && s.last_event_id.as_deref() == Some("g-2"))
        })
        .await;

    // The tool's stream closes after its priming event; the answer comes on the resumed stream.
    let result = tokio::time::timeout(LIMIT, client.call_tool("slow", json!({})))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(text(&result.content), "resumed after call-1");

    tokio::time::timeout(LIMIT, client.close()).await.unwrap();
    let seen = script.seen();
    let delete = seen.iter().find(|s| s.method == Method::DELETE);
    assert_eq!(
        delete.and_then(|s| s.session.as_deref()),
        Some("sess-1"),
        "{seen:#?}"
    );

    // The initialize POST carries no session; every later request carries both headers.
    let init = &seen[0];
    assert_eq!(init.rpc.as_deref(), Some("initialize"));
    assert_eq!(
        (init.session.as_deref(), init.version.as_deref()),
        (None, None)
    );
    assert_eq!(
        init.accept.as_deref(),
        Some("application/json, text/event-stream")
    );
    for s in &seen[1..] {
        assert_eq!(s.session.as_deref(), Some("sess-1"), "{s:?}");
        assert_eq!(s.version.as_deref(), Some(VERSION), "{s:?}");
    }
    for s in &seen {
        assert_eq!(s.authorization.as_deref(), Some("Bearer t0ken"), "{s:?}");
        if s.method == Method::GET {
            assert_eq!(s.accept.as_deref(), Some("text/event-stream"));
        }
    }
    let resume = seen
        .iter()
        .find(|s| s.last_event_id.as_deref() == Some("call-1"))
        .expect("the tool's stream was resumed");
    assert_eq!(resume.method, Method::GET);
    // The standalone stream was opened only after notifications/initialized was accepted.
    let initialized = seen
        .iter()
        .position(|s| s.rpc.as_deref() == Some("notifications/initialized"))
        .unwrap();
    let first_get = seen.iter().position(|s| s.method == Method::GET).unwrap();
    assert!(initialized < first_get, "{seen:#?}");
}

#[tokio::test]
async fn a_404_re_initializes_and_retries_once() {
    let script = Arc::new(Script {
        no_get: true,
        ..Script::default()
    });
    let addr = serve(script.clone()).await;
    let (client, _events) = connect(addr, config()).await;
    // The GET (refused) is only tried once notifications/initialized was accepted.
    script
        .wait_for("the GET attempt", |seen| {
            seen.iter().any(|s| s.method == Method::GET)
        })
        .await;
    script.expire_next.store(true, Ordering::SeqCst);

    let pong = tokio::time::timeout(LIMIT, client.request("ping", None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pong, json!({}));

    let seen = script.seen();
    let posts: Vec<_> = seen
        .iter()
        .filter(|s| s.method == Method::POST)
        .map(|s| (s.rpc.clone().unwrap(), s.session.clone(), s.status.as_u16()))
        .collect();
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        posts,
        vec![
            ("initialize".into(), None, 200),
            ("notifications/initialized".into(), s("sess-1"), 202),
            ("ping".into(), s("sess-1"), 404),
            ("initialize".into(), None, 200),
            ("notifications/initialized".into(), s("sess-2"), 202),
            ("ping".into(), s("sess-2"), 200),
        ]
    );
    // The replayed initialize carries no protocol version either.
    let replay = seen
        .iter()
        .filter(|s| s.rpc.as_deref() == Some("initialize"))
        .nth(1)
        .unwrap();
    assert_eq!(replay.version, None);
    // 405 on GET: the client never tried again.
    assert_eq!(
        seen.iter().filter(|s| s.method == Method::GET).count(),
        1,
        "{seen:#?}"
    );

    tokio::time::timeout(LIMIT, client.close()).await.unwrap();
    let last = script.seen().pop().unwrap();
    assert_eq!(
        (last.method, last.session.as_deref()),
        (Method::DELETE, Some("sess-2"))
    );
}

#[tokio::test]
async fn http_errors_fail_the_request_clearly() {
    let script = Arc::new(Script {
        no_get: true,
        ..Script::default()
    });
    let addr = serve(script.clone()).await;
    let (client, _events) = connect(addr, config()).await;
    let err = tokio::time::timeout(LIMIT, client.call_tool("fail", json!({})))
        .await
        .unwrap()
        .unwrap_err();
    match err {
        Error::Remote(e) => {
            assert_eq!(e.code, proto::error_codes::INTERNAL_ERROR);
            assert!(e.message.contains("500"), "{}", e.message);
            assert!(e.message.contains("boom"), "{}", e.message);
        }
        other => panic!("expected a remote error, got {other:?}"),
    }
    let err = tokio::time::timeout(LIMIT, client.call_tool("silent", json!({})))
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("without an event id"), "{err}");
    // The connection is still usable.
    let pong = tokio::time::timeout(LIMIT, client.request("ping", None))
        .await
        .unwrap();
    assert_eq!(pong.unwrap(), json!({}));
    tokio::time::timeout(LIMIT, client.close()).await.unwrap();
}

#[tokio::test]
async fn a_refused_resume_reconnects_without_last_event_id() {
    let script = Arc::new(Script {
        refuse_resume: true,
        ..Script::default()
    });
    let addr = serve(script.clone()).await;
    let (client, mut events) = connect(addr, config()).await;
    let topic = tokio::time::timeout(LIMIT, events.recv()).await.unwrap();
    assert_eq!(topic.as_deref(), Some("build/done"));
    script
        .wait_for("a fresh standalone stream", |seen| {
            seen.iter().filter(|s| s.method == Method::GET).count() >= 3
        })
        .await;
    let gets: Vec<_> = script
        .seen()
        .iter()
        .filter(|s| s.method == Method::GET)
        .map(|s| (s.last_event_id.clone(), s.status.as_u16()))
        .collect();
    assert_eq!(
        gets[..3],
        [(None, 200), (Some("g-2".to_owned()), 410), (None, 200)]
    );
    tokio::time::timeout(LIMIT, client.close()).await.unwrap();
}

#[tokio::test]
async fn unreachable_server_fails_connect_instead_of_hanging() {
    // Bind then drop a listener: nothing accepts on that port any more.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let transport = HttpClientTransport::new(&format!("http://{addr}/mcp"), config()).unwrap();
    let result = tokio::time::timeout(
        LIMIT,
        Client::builder("http-test", "0.0.1").connect(transport),
    )
    .await
    .unwrap();
    match result {
        Err(Error::Remote(e)) => assert!(e.message.contains("POST"), "{}", e.message),
        other => panic!("expected a remote error, got {other:?}"),
    }
}

#[test]
fn only_plain_http_urls_are_accepted() {
    let err = HttpClientTransport::new("https://example.com/mcp", HttpClientConfig::default())
        .unwrap_err();
    assert!(err.to_string().contains("TLS is not supported"), "{err}");
    assert!(HttpClientTransport::new("/mcp", HttpClientConfig::default()).is_err());
    assert!(HttpClientTransport::new("ftp://host/mcp", HttpClientConfig::default()).is_err());
    let bad_header = HttpClientConfig {
        headers: vec![("bad header".into(), "x".into())],
        ..HttpClientConfig::default()
    };
    assert!(HttpClientTransport::new("http://127.0.0.1:1/mcp", bad_header).is_err());
    assert!(
        HttpClientTransport::new("http://127.0.0.1:1/mcp", HttpClientConfig::default()).is_ok()
    );
}
