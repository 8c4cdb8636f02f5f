//! Drives `mcpbus::transport::http::StreamableHttpService` in process, as a tower service (no
//! socket), with scripted requests whose headers and bodies the fuzzer writes, and checks
//! every answer against [`oracle`].
//!
//! Each input gets a fresh server, store and service (so inputs do not leak state into each
//! other) on one tokio runtime built once per process. Unless stateless, the harness opens a
//! session first with a well-formed `initialize`, so that the fuzzer's requests reach a live
//! session through `$s0`.

pub mod oracle;
pub mod script;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures::FutureExt;
use http::header::{ALLOW, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response};
use http_body_util::BodyExt;
use mcpbus::events::{Event, TopicSpec};
use mcpbus::server::{Context, NoArgs, Server};
use mcpbus::store::{EventStore, MemoryEventStore, MemoryEventStoreConfig};
use mcpbus::transport::http::{HttpConfig, ResponseMode, StreamableHttpService};
use mcpbus_proto::error_codes;
use mcpbus_proto::headers::SESSION_ID;
use mcpbus_proto::jsonrpc::{Message, RequestId, parse_message};
use mcpbus_proto::mcp::CallToolResult;
use mcpbus_proto::sse::SseDecoder;
use tower::ServiceExt;

use oracle::{Expectation, Model, STANDALONE, Then};
use script::{RawRequest, Setup};

/// Every status docs/http.md lists.
const DOCUMENTED: [u16; 13] = [
    200, 202, 400, 403, 404, 405, 406, 409, 410, 413, 415, 421, 503,
];

/// Longer than any answer of this in-memory server can take: past it, a request hangs.
const PATIENCE: Duration = Duration::from_secs(10);

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// Runs one input (see [`script`] for its form).
pub fn run(text: &str) {
    let script = script::parse(text);
    runtime().block_on(async move {
        let mut harness = Harness::start(script.setup).await;
        for request in &script.requests {
            harness.send(request).await;
        }
        harness.service.shutdown();
    });
}

/// A server with an answer of each shape: at once, after progress, after closing its stream.
fn server() -> Server {
    Server::builder("fuzz", "0")
        .topic(TopicSpec::content("news/+"))
        .tool("echo", "Answers at once", |_: NoArgs, _ctx| async move {
            CallToolResult::text("ok")
        })
        .tool(
            "chatty",
            "Progress, then the answer",
            |_: NoArgs, ctx: Context| async move {
                ctx.progress(1.0, Some(2.0), None);
                ctx.progress(2.0, Some(2.0), None);
                CallToolResult::text("done")
            },
        )
        .tool(
            "close",
            "Closes its stream, then answers",
            |_: NoArgs, ctx: Context| async move {
                ctx.progress(1.0, None, None);
                ctx.close_sse_stream();
                CallToolResult::text("closed")
            },
        )
        .build()
        .expect("the fuzz server builds")
}

struct Harness {
    setup: Setup,
    server: Server,
    service: StreamableHttpService,
    store: Arc<MemoryEventStore>,
    model: Model,
    /// Open SSE responses: kept so that their streams stay attached.
    held: Vec<Response<Body>>,
}

impl Harness {
    async fn start(setup: Setup) -> Self {
        let store = Arc::new(MemoryEventStore::new(MemoryEventStoreConfig {
            max_events_per_stream: setup.keep,
            ..MemoryEventStoreConfig::default()
        }));
        let config = HttpConfig {
            response_mode: setup.mode,
            stateless: setup.stateless,
            session_idle_timeout: None,
            max_body_bytes: setup.max_body,
            max_sessions: setup.max_sessions,
            dns_rebinding_protection: setup.protect,
            allowed_origins: setup.origins.clone(),
            event_store: Some(store.clone()),
            sse_keep_alive: None,
            ..HttpConfig::default()
        };
        let server = server();
        let service =
            StreamableHttpService::new(server.clone(), config).expect("valid HTTP settings");
        let mut harness = Harness {
            setup,
            server,
            service,
            store,
            model: Model::default(),
            held: Vec::new(),
        };
        if !harness.setup.stateless {
            harness.open_session().await;
        }
        harness
    }

    /// A well-formed `initialize` and `notifications/initialized`: the session `$s0` names.
    async fn open_session(&mut self) {
        let initialize = format!(
            r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{}","capabilities":{{}},"clientInfo":{{"name":"fuzz","version":"1"}}}}}}"#,
            // Only what a JSON string may hold unescaped.
            self.setup
                .version
                .replace(|c: char| !c.is_ascii_graphic() || c == '"' || c == '\\', "")
        );
        let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        for body in [initialize.as_str(), initialized] {
            let mut request = RawRequest {
                method: "POST".into(),
                headers: vec![
                    ("host".into(), "localhost".into()),
                    (
                        "accept".into(),
                        "application/json, text/event-stream".into(),
                    ),
                    ("content-type".into(), "application/json".into()),
                ],
                body: body.into(),
            };
            if let Some(id) = self.model.sessions.first() {
                request.headers.push((SESSION_ID.into(), id.clone()));
            }
            self.send(&request).await;
        }
        assert_eq!(
            self.model.live.len(),
            1,
            "the harness's own session did not open"
        );
    }

    /// Sends one scripted request and checks its answer.
    async fn send(&mut self, raw: &RawRequest) {
        if raw.method == "EMIT" {
            let event = Event::new("news/1", serde_json::json!({"body": raw.body}));
            // Refusals (no subscriber, say) are the hub's business, fuzzed elsewhere.
            let _ = self.server.events().publish(event).await;
            self.learn_event_ids();
            return;
        }
        let Ok(method) = Method::from_bytes(raw.method.as_bytes()) else {
            return;
        };
        let (sessions, events) = (&self.model.sessions, &self.model.events);
        let mut headers = HeaderMap::new();
        for (name, value) in &raw.headers {
            let value = script::substitute(value, sessions, events);
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.trim().as_bytes()),
                HeaderValue::from_bytes(value.as_bytes()),
            ) {
                headers.append(n, v);
            }
        }
        let body = script::substitute(&raw.body, sessions, events).into_bytes();
        let expected = oracle::expect(
            &self.setup,
            &self.model,
            &self.store,
            &method,
            &headers,
            &body,
        );
        let mut request = Request::new(Body::from(body));
        *request.method_mut() = method;
        *request.uri_mut() = http::Uri::from_static("/mcp");
        *request.headers_mut() = headers;
        let call = self.service.clone().oneshot(request);
        let response = tokio::time::timeout(PATIENCE, call)
            .await
            .unwrap_or_else(|_| panic!("no answer in {PATIENCE:?}; expected {expected:?}"))
            .unwrap_or_else(|never| match never {});
        self.verify(expected, response).await;
        self.learn_event_ids();
    }

    /// Remembers the newest id of each live session's standalone stream, for `$eN`.
    fn learn_event_ids(&mut self) {
        let mut sessions: Vec<&String> = self.model.live.iter().collect();
        sessions.sort();
        for session in sessions {
            let last = self.store.last_id(session, STANDALONE).now_or_never();
            if let Some(Ok(Some(id))) = last
                && !self.model.events.contains(&id)
            {
                self.model.events.push(id);
            }
        }
    }

    async fn verify(&mut self, expected: Expectation, response: Response<Body>) {
        let status = response.status().as_u16();
        if tracing() {
            eprintln!("http_headers: {status} (expected {expected:?})");
        }
        assert!(DOCUMENTED.contains(&status), "undocumented status {status}");
        let wanted = match &expected.then {
            Then::Status(s) => *s,
            Then::BadMessage(_) => 400,
            Then::Gone { .. } => 410,
            Then::Answer { .. } | Then::Stream { .. } | Then::Deleted(_) => 200,
            Then::Accepted => 202,
            Then::MethodNotAllowed => 405,
            // Any status of the era's own; one an unsure header check may give is checked as
            // that check's refusal.
            Then::Modern { .. } if expected.tolerated.contains(&status) => 0,
            Then::Modern { .. } => status,
        };
        if status != wanted {
            let body = body_of(response).await;
            let in_flight = matches!(expected.then, Then::Answer { .. })
                && status == 400
                && String::from_utf8_lossy(&body).contains("already in flight");
            assert!(
                expected.tolerated.contains(&status) || in_flight,
                "got {status} ({}), expected {expected:?}",
                String::from_utf8_lossy(&body)
            );
            check_error_body(status, &body, None);
            return;
        }
        self.check_outcome(expected.then, response).await;
    }

    async fn check_outcome(&mut self, then: Then, response: Response<Body>) {
        let status = response.status().as_u16();
        match then {
            Then::Status(_) => check_error_body(status, &body_of(response).await, None),
            Then::BadMessage(code) => {
                check_error_body(status, &body_of(response).await, Some(code))
            }
            Then::Gone {
                session,
                standalone,
            } => {
                if standalone {
                    self.model.standalone.remove(&session);
                }
                check_error_body(status, &body_of(response).await, None);
            }
            Then::MethodNotAllowed => {
                let allow = if self.setup.stateless {
                    "POST"
                } else {
                    "GET, POST, DELETE"
                };
                assert_eq!(
                    response.headers().get(ALLOW).map(|v| v.as_bytes()),
                    Some(allow.as_bytes())
                );
                assert!(body_of(response).await.is_empty());
            }
            Then::Accepted => assert!(body_of(response).await.is_empty(), "202 with a body"),
            Then::Modern { id } => check_modern(status, response, id.as_ref()).await,
            Then::Deleted(session) => {
                self.model.live.remove(&session);
                self.model.standalone.remove(&session);
            }
            Then::Stream {
                session,
                standalone,
            } => {
                assert_eq!(content_type(&response), "text/event-stream");
                if standalone {
                    self.model.standalone.insert(session);
                }
                self.held.push(response);
            }
            Then::Answer {
                id,
                opens,
                may_end_early,
            } => self.check_answer(response, &id, opens, may_end_early).await,
        }
    }

    /// A 200 answer to a request: one JSON body or an SSE stream, per the response mode,
    /// carrying the response to exactly that request.
    async fn check_answer(
        &mut self,
        response: Response<Body>,
        id: &RequestId,
        opens: bool,
        may_end_early: bool,
    ) {
        let kind = content_type(&response).to_owned();
        let session = response
            .headers()
            .get(SESSION_ID)
            .map(|v| v.to_str().expect("a visible ASCII session id").to_owned());
        let body = body_of(response).await;
        let answer = match (kind.as_str(), self.setup.mode) {
            ("application/json", ResponseMode::Auto | ResponseMode::Json) => {
                let message = parse_message(&body).expect("a JSON answer is one message");
                Some(message)
            }
            ("text/event-stream", ResponseMode::Auto | ResponseMode::Sse) => {
                self.read_post_stream(&body, may_end_early)
            }
            (kind, mode) => panic!("a {kind:?} answer in {mode:?} mode"),
        };
        let failed = match &answer {
            Some(Message::Response(r)) => {
                assert_eq!(&r.id, id);
                false
            }
            Some(Message::Error(e)) => {
                assert_eq!(e.id.as_ref(), Some(id));
                true
            }
            Some(other) => panic!("answered with {other:?}"),
            None => false,
        };
        match (opens, session) {
            (false, None) => {}
            (false, Some(s)) => panic!("session id {s:?} on an answer that opens none"),
            (true, None) => assert!(failed && kind == "application/json", "no session id"),
            (true, Some(s)) => {
                // An SSE answer names its session before the answer is known; a failed
                // initialize ends it.
                if !failed {
                    self.model.live.insert(s.clone());
                }
                self.model.sessions.push(s);
            }
        }
    }

    /// The messages of a POST's SSE stream: every event is a message or a priming event, the
    /// answer (if any) comes last. Returns the answer; `None` only when the stream may end
    /// early.
    fn read_post_stream(&mut self, body: &[u8], may_end_early: bool) -> Option<Message> {
        let mut decoder = SseDecoder::new();
        let events = decoder.push(body);
        let mut answer = None;
        for event in events {
            assert!(answer.is_none(), "an event after the answer: {event:?}");
            let id = event.id.clone().expect("every SSE event has an id");
            self.model.events.push(id);
            if event.data.is_empty() {
                continue;
            }
            let message = parse_message(event.data.as_bytes()).expect("SSE data is a message");
            if matches!(message, Message::Response(_) | Message::Error(_)) {
                answer = Some(message);
            }
        }
        assert!(
            answer.is_some() || may_end_early,
            "the stream ended without the answer"
        );
        answer
    }
}

/// `MCPBUS_FUZZ_TRACE=1` prints each answer's status and what was expected (to check what
/// the seeds reach).
fn tracing() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("MCPBUS_FUZZ_TRACE").is_some())
}

fn content_type(response: &Response<Body>) -> &str {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// A 2026-07-28 answer: a documented status for that era; no session id ever; an error (or,
/// in a JSON body, the answer) names the request's id.
async fn check_modern(status: u16, response: Response<Body>, id: Option<&RequestId>) {
    assert!(
        [200, 202, 400, 404, 503].contains(&status),
        "a 2026-07-28 message answered {status}"
    );
    assert!(response.headers().get("mcp-session-id").is_none());
    if status == 202 || content_type(&response) == "text/event-stream" {
        return;
    }
    let body = body_of(response).await;
    let message = parse_message(&body).unwrap_or_else(|e| {
        panic!("{status}: body {:?} is no message: {e}", String::from_utf8_lossy(&body))
    });
    let answered = match &message {
        Message::Response(r) => Some(&r.id),
        Message::Error(e) => e.id.as_ref(),
        other => panic!("{status}: {other:?} is no answer"),
    };
    if let (Some(id), Some(answered)) = (id, answered)
        && status != 503
    {
        assert_eq!(answered, id, "{status}: the answer names another request");
    }
    // Only a 200 may carry a result; every other status is an error.
    assert!(status == 200 || matches!(message, Message::Error(_)), "{status}: {message:?}");
}

async fn body_of(response: Response<Body>) -> Bytes {
    let collected = tokio::time::timeout(PATIENCE, response.into_body().collect())
        .await
        .expect("the body ends in time");
    collected.expect("an in-memory body cannot fail").to_bytes()
}

/// An error status carries a JSON-RPC error with an id (the request's when its body was read,
/// the string `"unknown"` otherwise; docs/protocol.md 5): `-32603` for 503, the parse error's
/// code when given, `-32600` otherwise.
fn check_error_body(status: u16, body: &[u8], code: Option<i64>) {
    let message = parse_message(body).unwrap_or_else(|e| {
        panic!(
            "{status}: body {:?} is no message: {e}",
            String::from_utf8_lossy(body)
        )
    });
    let Message::Error(error) = message else {
        panic!("{status}: {message:?} is not an error");
    };
    assert!(error.id.is_some(), "{status}: an HTTP error body always has an id");
    let expected = match (status, code) {
        (_, Some(code)) => code,
        (503, None) => error_codes::INTERNAL_ERROR,
        (_, None) => error_codes::INVALID_REQUEST,
    };
    assert_eq!(
        error.error.code, expected,
        "{status}: {}",
        error.error.message
    );
}
