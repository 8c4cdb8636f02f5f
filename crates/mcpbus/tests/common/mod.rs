//! Test helpers: a real Streamable HTTP server on a free loopback port, and a raw HTTP client
//! that reads SSE streams incrementally.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mcpbus::server::Server;
use mcpbus::transport::http::{HttpConfig, serve_http};
use mcpbus_proto::sse::{SseDecoder, SseEvent};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// A running server; dropped: shut down.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub async fn start(server: Server, config: HttpConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_http(listener, "/mcp", server, config, async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            stop: Some(stop),
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// A raw HTTP client for the MCP endpoint.
#[derive(Clone)]
pub struct Raw {
    pub url: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// A complete (non-streaming) answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub const ACCEPT_BOTH: &str = "application/json, text/event-stream";

impl Raw {
    pub fn new(url: String) -> Self {
        Raw {
            url,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    pub async fn send(
        &self,
        method: Method,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response<Incoming> {
        let mut req = Request::builder().method(method).uri(&self.url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(Bytes::copy_from_slice(body))).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.client.request(req))
            .await
            .expect("no answer within 10 s")
            .unwrap()
    }

    /// Sends and reads the whole body.
    pub async fn call(&self, method: Method, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        let response = self.send(method, headers, body).await;
        let status = response.status();
        let headers = response.headers().clone();
        let body = tokio::time::timeout(Duration::from_secs(10), response.into_body().collect())
            .await
            .expect("body not complete within 10 s")
            .unwrap()
            .to_bytes();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// POSTs a JSON-RPC message with the usual headers (and a session id if given).
    pub async fn post(&self, session: Option<&str>, message: &Value) -> Answer {
        let body = message.to_string();
        let mut headers = vec![
            ("content-type", "application/json"),
            ("accept", ACCEPT_BOTH),
        ];
        if let Some(s) = session {
            headers.push(("mcp-session-id", s));
            headers.push(("mcp-protocol-version", "2025-11-25"));
        }
        self.call(Method::POST, &headers, body.as_bytes()).await
    }

    /// Initializes a session; returns its id.
    pub async fn initialize(&self) -> String {
        let a = self.post(None, &initialize_request(1)).await;
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
        let id = a
            .header("mcp-session-id")
            .expect("session id header")
            .to_string();
        let n = self
            .post(
                Some(&id),
                &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            )
            .await;
        assert_eq!(n.status, StatusCode::ACCEPTED);
        id
    }

    /// Initializes a session whose answers come as SSE; returns its id.
    pub async fn initialize_sse(&self) -> String {
        let body = initialize_request(1).to_string();
        let headers = [
            ("content-type", "application/json"),
            ("accept", ACCEPT_BOTH),
        ];
        let response = self.send(Method::POST, &headers, body.as_bytes()).await;
        let id = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .expect("session id header")
            .to_string();
        let mut sse = SseReader::new(response);
        let (_, answer) = sse
            .next_message(Duration::from_secs(5))
            .await
            .expect("initialize answer");
        assert!(answer.get("result").is_some(), "{answer}");
        let n = self
            .post(
                Some(&id),
                &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            )
            .await;
        assert_eq!(n.status, StatusCode::ACCEPTED);
        id
    }

    /// Opens an SSE stream with GET (optionally resuming).
    pub async fn get_stream(
        &self,
        session: &str,
        last_event_id: Option<&str>,
    ) -> Response<Incoming> {
        let mut headers = vec![
            ("accept", "text/event-stream"),
            ("mcp-session-id", session),
            ("mcp-protocol-version", "2025-11-25"),
        ];
        if let Some(id) = last_event_id {
            headers.push(("last-event-id", id));
        }
        self.send(Method::GET, &headers, b"").await
    }
}

pub fn initialize_request(id: i64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "http-test", "version": "1"}}})
}

/// Reads SSE events from a streaming body.
pub struct SseReader {
    body: Incoming,
    decoder: SseDecoder,
    queue: std::collections::VecDeque<SseEvent>,
}

impl SseReader {
    pub fn new(response: Response<Incoming>) -> Self {
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream"),
            "not an SSE response: {}",
            response.status()
        );
        SseReader {
            body: response.into_body(),
            decoder: SseDecoder::new(),
            queue: Default::default(),
        }
    }

    /// The next event (priming events included); `None` at end of stream.
    pub async fn next(&mut self, timeout: Duration) -> Option<SseEvent> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Some(e);
            }
            let frame = tokio::time::timeout(timeout, self.body.frame())
                .await
                .expect("no SSE event in time")?;
            let frame = frame.ok()?;
            if let Ok(data) = frame.into_data() {
                self.queue.extend(self.decoder.push(&data));
            }
        }
    }

    /// The next event that carries a message.
    pub async fn next_message(&mut self, timeout: Duration) -> Option<(Option<String>, Value)> {
        loop {
            let e = self.next(timeout).await?;
            if !e.data.is_empty() {
                return Some((e.id, serde_json::from_str(&e.data).unwrap()));
            }
        }
    }
}
