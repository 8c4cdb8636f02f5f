//! The HTTP client of the OAuth flow: metadata documents, client registration and token
//! requests.
//!
//! These requests are few (a handful per authorization), so each one opens a connection of its
//! own (HTTP/1.1 with hyper, in TLS for `https` through the crate's rustls client, the one
//! webhook delivery uses) and closes it: no pool to keep. Redirects are not followed, answers
//! are read up to [`MAX_BODY`], and the whole exchange is bounded by the configured timeout.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HOST, HeaderName, HeaderValue, USER_AGENT};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;
use url::{Host, Position, Url};

use super::OAuthError;
use crate::webhooks::tls::Tls;

/// The largest answer body read (metadata documents and token responses are far smaller).
const MAX_BODY: usize = 1024 * 1024;
/// How much of an unexpected answer is quoted in an error.
const QUOTED_BODY: usize = 512;

/// What a server answered.
#[derive(Debug)]
pub(crate) struct Answer {
    /// Where the request went (for error messages).
    pub(crate) url: String,
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Answer {
    /// The body as JSON of type `T`.
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T, OAuthError> {
        serde_json::from_slice(&self.body).map_err(|e| OAuthError::InvalidJson {
            url: self.url.clone(),
            reason: e.to_string(),
        })
    }

    /// The start of the body, as text, for error messages.
    pub(crate) fn quoted_body(&self) -> String {
        let end = self.body.len().min(QUOTED_BODY);
        String::from_utf8_lossy(&self.body[..end]).trim().to_owned()
    }

    /// The `error` and `error_description` of an OAuth error body (RFC 6749 section 5.2), when
    /// the body is one.
    pub(crate) fn oauth_error(&self) -> (Option<String>, Option<String>) {
        let value: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or_default();
        let field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        (field("error"), field("error_description"))
    }

    /// An error for an answer whose status this exchange cannot use.
    pub(crate) fn unexpected(&self, what: &'static str) -> OAuthError {
        OAuthError::Status {
            what,
            url: self.url.clone(),
            status: self.status,
            body: self.quoted_body(),
        }
    }
}

/// Sends the OAuth flow's requests.
#[derive(Clone)]
pub(crate) struct Agent {
    tls: Tls,
    timeout: Duration,
    user_agent: HeaderValue,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// An agent trusting the shipped Mozilla roots plus `extra_roots` (DER), bounding each
    /// exchange by `timeout`.
    pub(crate) fn new(extra_roots: &[Vec<u8>], timeout: Duration) -> Result<Agent, OAuthError> {
        let tls = Tls::new(extra_roots).map_err(|e| OAuthError::InvalidConfig(e.to_string()))?;
        let user_agent = HeaderValue::from_static(concat!("mcpbus/", env!("CARGO_PKG_VERSION")));
        Ok(Agent {
            tls,
            timeout,
            user_agent,
        })
    }

    /// `GET url`, accepting JSON.
    pub(crate) async fn get(&self, url: &Url) -> Result<Answer, OAuthError> {
        self.send(Method::GET, url, Vec::new(), Bytes::new()).await
    }

    /// `POST url` with an `application/x-www-form-urlencoded` body of `form` and `headers`.
    pub(crate) async fn post_form(
        &self,
        url: &Url,
        form: &[(String, String)],
        headers: Vec<(HeaderName, HeaderValue)>,
    ) -> Result<Answer, OAuthError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut headers = headers;
        headers.push((
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        ));
        self.send(Method::POST, url, headers, Bytes::from(body))
            .await
    }

    /// `POST url` with a JSON body.
    pub(crate) async fn post_json(
        &self,
        url: &Url,
        body: &serde_json::Value,
    ) -> Result<Answer, OAuthError> {
        let headers = vec![(CONTENT_TYPE, HeaderValue::from_static("application/json"))];
        let body = Bytes::from(body.to_string());
        self.send(Method::POST, url, headers, body).await
    }

    async fn send(
        &self,
        method: Method,
        url: &Url,
        headers: Vec<(HeaderName, HeaderValue)>,
        body: Bytes,
    ) -> Result<Answer, OAuthError> {
        let failed = |reason: String| OAuthError::Http {
            method: method.clone(),
            url: url.to_string(),
            reason,
        };
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method.clone();
        *request.uri_mut() = url[Position::BeforePath..Position::AfterQuery]
            .parse()
            .map_err(|e: http::uri::InvalidUri| failed(e.to_string()))?;
        let host = &url[Position::BeforeHost..Position::AfterPort];
        let host = HeaderValue::from_str(host).map_err(|e| failed(e.to_string()))?;
        let fields = request.headers_mut();
        fields.insert(HOST, host);
        fields.insert(ACCEPT, HeaderValue::from_static("application/json"));
        fields.insert(USER_AGENT, self.user_agent.clone());
        for (name, value) in headers {
            fields.insert(name, value);
        }
        let exchange = self.exchange(url, request);
        let (status, headers, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| failed(format!("no complete answer within {:?}", self.timeout)))?
            .map_err(failed)?;
        Ok(Answer {
            url: url.to_string(),
            status,
            headers,
            body,
        })
    }

    /// Connects to `url`'s host (in TLS for `https`) and sends `request` over HTTP/1.1.
    async fn exchange(
        &self,
        url: &Url,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, HeaderMap, Bytes), String> {
        let port = url
            .port_or_known_default()
            .ok_or_else(|| "no port".to_owned())?;
        let (tcp, name) = match url.host() {
            Some(Host::Domain(domain)) => (TcpStream::connect((domain, port)).await, domain.into()),
            Some(Host::Ipv4(ip)) => (TcpStream::connect((ip, port)).await, ip.to_string()),
            Some(Host::Ipv6(ip)) => (TcpStream::connect((ip, port)).await, ip.to_string()),
            None => return Err("no host".into()),
        };
        let tcp = tcp.map_err(|e| format!("cannot connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        if url.scheme() == "https" {
            let tls = self
                .tls
                .connect(&name, tcp)
                .await
                .map_err(|e| format!("TLS handshake failed: {e}"))?;
            exchange_over(tls, request).await
        } else {
            exchange_over(tcp, request).await
        }
    }
}

async fn exchange_over<S>(
    stream: S,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, HeaderMap, Bytes), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let outcome = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("no answer: {e}"))?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("reading the answer failed: {e}"))?
            .to_bytes();
        Ok((parts.status, parts.headers, body))
    }
    .await;
    driver.abort();
    outcome
}
