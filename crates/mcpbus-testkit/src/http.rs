//! An HTTP/1.1 test client over hyper: whole answers, streaming answers, and the MCP exchanges
//! the tests share. hyper keeps status codes and headers as the server wrote them and undoes
//! the chunked transfer coding.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::jsonrpc::{ACCEPT_BOTH, PROTOCOL_VERSION, initialize_request, initialized};
use crate::sse::SseReader;

/// How long an answer's head, and then its whole body, may take.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// A client of one URL (usually an MCP endpoint); clones share their connections.
#[derive(Clone, Debug)]
pub struct HttpClient {
    /// Where every request goes.
    pub url: String,
    client: Client<HttpConnector, Full<Bytes>>,
    /// Sent as `Authorization: Bearer` with every request that has no `Authorization` of
    /// its own.
    bearer: Option<String>,
}

/// A complete answer.
#[derive(Debug)]
pub struct Answer {
    /// The status code (compares with a plain number: `answer.status == 200`).
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, without any transfer coding.
    pub body: Bytes,
}

impl Answer {
    /// The value of header `name` if it is present and readable as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {self:?} {}", self.text()))
    }
}

impl HttpClient {
    /// A client of `url`, e.g. `http://127.0.0.1:PORT/mcp`.
    pub fn new(url: impl Into<String>) -> Self {
        HttpClient {
            url: url.into(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            bearer: None,
        }
    }

    /// This client, sending `token` as a bearer token (a clone shares the connections).
    pub fn with_bearer(&self, token: impl Into<String>) -> Self {
        HttpClient {
            bearer: Some(token.into()),
            ..self.clone()
        }
    }

    /// Sends one request; returns the answer once its head arrived, the body still streaming.
    pub async fn send(
        &self,
        method: Method,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response<Incoming> {
        self.try_send(method, headers, body)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`send`](Self::send) for a server that may be down or stuck (fault tests): what went
    /// wrong, instead of a panic, when no answer's head arrives in time.
    pub async fn try_send(
        &self,
        method: Method,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response<Incoming>, String> {
        let mut request = Request::builder().method(method.clone()).uri(&self.url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let own = headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("authorization"));
        if let Some(token) = self.bearer.as_ref().filter(|_| !own) {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| format!("{method} {}: not a valid request: {e}", self.url))?;
        tokio::time::timeout(ANSWER_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| format!("{method} {}: no answer within {ANSWER_TIMEOUT:?}", self.url))?
            .map_err(|e| format!("{method} {}: {e}", self.url))
    }

    /// [`call`](Self::call) for a server that may be down or stuck: the whole answer, or what
    /// went wrong.
    pub async fn try_call(
        &self,
        method: Method,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Answer, String> {
        let response = self.try_send(method.clone(), headers, body).await?;
        let (head, body) = response.into_parts();
        let body = tokio::time::timeout(ANSWER_TIMEOUT, body.collect())
            .await
            .map_err(|_| format!("{method} {}: body not complete in time", self.url))?
            .map_err(|e| format!("{method} {}: reading the body: {e}", self.url))?
            .to_bytes();
        Ok(Answer {
            status: head.status,
            headers: head.headers,
            body,
        })
    }

    /// Sends one request and reads the whole answer.
    pub async fn call(&self, method: Method, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        let response = self.send(method.clone(), headers, body).await;
        let (head, body) = response.into_parts();
        let body = tokio::time::timeout(ANSWER_TIMEOUT, body.collect())
            .await
            .unwrap_or_else(|_| panic!("{method} {}: body not complete in time", self.url))
            .unwrap_or_else(|e| panic!("{method} {}: reading the body: {e}", self.url))
            .to_bytes();
        Answer {
            status: head.status,
            headers: head.headers,
            body,
        }
    }

    /// POSTs a JSON-RPC message with the usual headers (and the session's, if given); returns
    /// the answer once its head arrived, e.g. to read it with [`SseReader`].
    pub async fn post_stream(&self, session: Option<&str>, message: &Value) -> Response<Incoming> {
        let body = message.to_string();
        self.send(Method::POST, &post_headers(session), body.as_bytes())
            .await
    }

    /// POSTs a JSON-RPC message as [`post_stream`](Self::post_stream) and reads the whole answer.
    pub async fn post(&self, session: Option<&str>, message: &Value) -> Answer {
        let body = message.to_string();
        self.call(Method::POST, &post_headers(session), body.as_bytes())
            .await
    }

    /// POSTs a JSON-RPC message as [`post`](Self::post), with `Authorization: Bearer TOKEN`
    /// when a token is given.
    pub async fn post_with_token(
        &self,
        session: Option<&str>,
        token: Option<&str>,
        message: &Value,
    ) -> Answer {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers = post_headers(session);
        if let Some(bearer) = &bearer {
            headers.push(("authorization", bearer));
        }
        self.call(Method::POST, &headers, message.to_string().as_bytes())
            .await
    }

    /// Initializes a session answered with JSON, then confirms it; returns its id.
    pub async fn initialize(&self) -> String {
        let answer = self.post(None, &initialize_request("http-test")).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        let session = answer.header("mcp-session-id").expect("session id header");
        self.confirm(session).await
    }

    /// Initializes a session whose answers come as SSE, then confirms it; returns its id.
    pub async fn initialize_sse(&self) -> String {
        let response = self
            .post_stream(None, &initialize_request("http-test"))
            .await;
        let session = response.headers().get("mcp-session-id").cloned();
        let session = session.expect("session id header");
        let (_, answer) = SseReader::new(response)
            .next_message(Duration::from_secs(5))
            .await
            .expect("initialize answer");
        assert!(answer.get("result").is_some(), "{answer}");
        self.confirm(session.to_str().expect("a text session id"))
            .await
    }

    /// Sends `notifications/initialized` on `session`; returns the session id.
    async fn confirm(&self, session: &str) -> String {
        let answer = self.post(Some(session), &initialized()).await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{answer:?}");
        session.to_string()
    }

    /// Opens the session's standalone SSE stream with GET (resuming after `last_event_id`).
    pub async fn get_stream(
        &self,
        session: &str,
        last_event_id: Option<&str>,
    ) -> Response<Incoming> {
        let mut headers = vec![
            ("accept", "text/event-stream"),
            ("mcp-session-id", session),
            ("mcp-protocol-version", PROTOCOL_VERSION),
        ];
        if let Some(id) = last_event_id {
            headers.push(("last-event-id", id));
        }
        self.send(Method::GET, &headers, b"").await
    }
}

/// The headers of a POST of a JSON-RPC message, on `session` if given.
fn post_headers(session: Option<&str>) -> Vec<(&str, &str)> {
    let mut headers = vec![
        ("content-type", "application/json"),
        ("accept", ACCEPT_BOTH),
    ];
    if let Some(session) = session {
        headers.push(("mcp-session-id", session));
        headers.push(("mcp-protocol-version", PROTOCOL_VERSION));
    }
    headers
}

/// Runs `future` to completion on a runtime of its own: the async client from a plain `#[test]`
/// or a thread. Whatever it spawned (connections included) ends with it.
pub fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime")
        .block_on(future)
}
