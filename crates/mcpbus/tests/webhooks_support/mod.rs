//! What the webhook tests share: a receiver on loopback that records every POST and answers
//! as told, the official Standard Webhooks library (Python) to verify what it received, and
//! modern requests with a bearer token.

#![allow(dead_code)] // each test binary uses its own part

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use bytes::Bytes;
use http::{Method, StatusCode};
use mcpbus_testkit::modern::{answer_message, headers, request};
use mcpbus_testkit::{Answer, HttpClient};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// One POST the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    /// Its headers, names lowercase.
    pub(crate) headers: BTreeMap<String, String>,
    /// Its raw body.
    pub(crate) body: String,
}

impl Received {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or_else(|| panic!("no {name} header: {self:?}"), String::as_str)
    }

    /// Whether it is a control envelope of this type.
    pub(crate) fn is(&self, kind: &str) -> bool {
        self.json()["type"] == kind
    }
}

#[derive(Default)]
struct Inner {
    received: Mutex<Vec<Received>>,
    /// Statuses for the next deliveries (not verifications); 200 once empty.
    statuses: Mutex<VecDeque<u16>>,
    refuse_challenge: std::sync::atomic::AtomicBool,
    /// Deliveries still to answer only after 2 s.
    slow: std::sync::atomic::AtomicUsize,
    arrived: Notify,
}

/// A webhook endpoint on 127.0.0.1: it echoes verification challenges (unless told not to)
/// and answers deliveries with the statuses it is given, then 200.
#[derive(Clone)]
pub(crate) struct Receiver {
    inner: Arc<Inner>,
    /// `http://127.0.0.1:PORT/hook`.
    pub(crate) url: String,
}

impl Receiver {
    pub(crate) async fn start() -> Receiver {
        let inner = Arc::new(Inner::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { inner, url }
    }

    /// The same endpoint in TLS with `cert` and `key` (PEM):
    /// `https://127.0.0.1:PORT/hook`.
    pub(crate) async fn start_tls(cert: &str, key: &str) -> Receiver {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        use tower::ServiceExt;
        let certs = vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let inner = Arc::new(Inner::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}/hook", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(inner.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    // A client that refuses the certificate ends the handshake: nothing to serve.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| app.clone().oneshot(req));
                    let io = hyper_util::rt::TokioIo::new(tls);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Receiver { inner, url }
    }

    pub(crate) fn refuse_challenges(&self) {
        self.inner
            .refuse_challenge
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Answers the next `n` deliveries only after 2 s.
    pub(crate) fn answer_slowly(&self, n: usize) {
        self.inner
            .slow
            .store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// The statuses of the next deliveries, in order.
    pub(crate) fn answer_with(&self, statuses: &[u16]) {
        self.inner.statuses.lock().unwrap().extend(statuses);
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    /// Waits until `n` POSTs have arrived (all of them, within `within`).
    pub(crate) async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let arrived = self.inner.arrived.notified();
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!("{} of {n} POSTs arrived: {got:#?}", got.len());
            }
        }
    }
}

async fn hook(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let received = Received {
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    inner.received.lock().unwrap().push(received);
    inner.arrived.notify_waiters();
    if parsed["type"] == "verification" {
        let refuse = inner
            .refuse_challenge
            .load(std::sync::atomic::Ordering::SeqCst);
        let challenge = if refuse {
            json!("not it")
        } else {
            parsed["challenge"].clone()
        };
        return (
            StatusCode::OK,
            HeaderMap::new(),
            axum::Json(json!({"challenge": challenge})),
        );
    }
    let slow = inner.slow.fetch_update(
        std::sync::atomic::Ordering::SeqCst,
        std::sync::atomic::Ordering::SeqCst,
        |n| n.checked_sub(1),
    );
    if slow.is_ok() {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let status = inner.statuses.lock().unwrap().pop_front().unwrap_or(200);
    // A redirect points back here: a client that followed it would be seen arriving again.
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::LOCATION,
        http::HeaderValue::from_static("/hook"),
    );
    (
        StatusCode::from_u16(status).unwrap(),
        headers,
        axum::Json(json!({})),
    )
}

/// Verifies each POST under `secret` with the official Standard Webhooks library (Python's
/// `standardwebhooks`); returns "ok" or the library's refusal, per POST.
pub(crate) async fn verify(secret: &str, received: &[Received]) -> Vec<String> {
    let python = std::env::var("MCPBUS_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/interop/verify_webhooks.py"
    );
    let items: Vec<Value> = received
        .iter()
        .map(|r| json!({"secret": secret, "headers": r.headers, "body": r.body}))
        .collect();
    let mut child = tokio::process::Command::new(&python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python:?} (MCPBUS_PYTHON): {e}"));
    let mut stdin = child.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, Value::from(items).to_string().as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "{python} {script} failed; the official Standard Webhooks library (`standardwebhooks`, \
         pinned in tests/interop/requirements.txt) must be importable: run scripts/test.sh or \
         set MCPBUS_PYTHON. stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Asserts that every POST verifies under `secret`.
pub(crate) async fn assert_all_verify(secret: &str, received: &[Received]) {
    let results = verify(secret, received).await;
    assert_eq!(results.len(), received.len());
    for (result, r) in results.iter().zip(received) {
        assert_eq!(result, "ok", "{r:?}");
    }
}

/// POSTs a modern request with `Authorization: Bearer token` (when given).
pub(crate) async fn post_as(raw: &HttpClient, token: Option<&str>, message: &Value) -> Answer {
    let mut headers = headers(message);
    if let Some(token) = token {
        headers.push(("authorization".into(), format!("Bearer {token}")));
    }
    let borrowed: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    raw.call(Method::POST, &borrowed, message.to_string().as_bytes())
        .await
}

/// A modern request as `token`; returns the JSON-RPC answer.
pub(crate) async fn call_as(
    raw: &HttpClient,
    token: Option<&str>,
    method: &str,
    params: Value,
) -> Value {
    let answer = post_as(raw, token, &request(1, method, params, json!({}))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    answer_message(&answer)
}

/// A `whsec_` secret of `n` bytes of `fill`.
pub(crate) fn secret(fill: u8) -> String {
    use base64::Engine as _;
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([fill; 32])
    )
}
