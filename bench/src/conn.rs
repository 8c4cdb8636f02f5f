//! Raw HTTP/1.1: one keep-alive TCP connection per [`Conn`], driven by hyper's connection-level
//! API, so that the generator opens exactly the connections a scenario asks for (no pool).

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long one exchange (request sent, whole answer read) may take before it counts as failed.
pub(crate) const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where requests go: a parsed `http://host:port/path` URL.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// `host:port`, to connect to.
    pub addr: String,
    /// The path (and query) requested.
    pub path: String,
    /// The `Host` header value (the connection-level API does not add one).
    pub host: String,
}

impl Endpoint {
    /// Parses a plain `http://` URL (TLS is out of scope: all load stays on loopback).
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("invalid URL {url:?}: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!("{url:?}: only http:// URLs are supported"));
        }
        let authority = uri.authority().ok_or_else(|| format!("{url:?}: no host"))?;
        let port = authority.port_u16().unwrap_or(80);
        let path = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".to_string());
        Ok(Endpoint {
            addr: format!("{}:{port}", authority.host()),
            path,
            host: authority.as_str().to_string(),
        })
    }

    /// The same server with another path (e.g. `/healthz` next to `/publish`).
    pub(crate) fn with_path(&self, path: &str) -> Endpoint {
        Endpoint {
            path: path.to_string(),
            ..self.clone()
        }
    }

    /// A request builder for this endpoint with the `Host` header set.
    pub(crate) fn request(&self, method: Method) -> http::request::Builder {
        Request::builder()
            .method(method)
            .uri(self.path.as_str())
            .header(header::HOST, self.host.as_str())
    }
}

/// A complete (non-streaming) answer.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The status code.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Answer {
    /// A header as text, if present and valid.
    pub(crate) fn header(&self, name: impl header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One HTTP/1.1 connection with keep-alive; requests on it go one at a time.
pub(crate) struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    /// Opens a TCP connection (with `TCP_NODELAY`) and performs the HTTP/1.1 handshake.
    pub(crate) async fn connect(endpoint: &Endpoint) -> Result<Self, String> {
        let tcp = tokio::time::timeout(EXCHANGE_TIMEOUT, TcpStream::connect(&endpoint.addr))
            .await
            .map_err(|_| format!("connect to {} timed out", endpoint.addr))?
            .map_err(|e| format!("connect to {}: {e}", endpoint.addr))?;
        tcp.set_nodelay(true)
            .map_err(|e| format!("TCP_NODELAY: {e}"))?;
        let (sender, connection) = http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| format!("HTTP handshake with {}: {e}", endpoint.addr))?;
        // The connection task ends when the server closes or every sender is dropped.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Conn { sender })
    }

    /// Sends a request and returns as soon as the headers arrive (the body streams after).
    pub(crate) async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, String> {
        self.sender
            .ready()
            .await
            .map_err(|e| format!("connection not ready: {e}"))?;
        self.sender
            .send_request(request)
            .await
            .map_err(|e| format!("request failed: {e}"))
    }

    /// Sends a request and reads the whole answer, within [`EXCHANGE_TIMEOUT`].
    pub(crate) async fn exchange(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<Answer, String> {
        let exchange = async {
            let response = self.send(request).await?;
            let status = response.status();
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| format!("reading the body: {e}"))?
                .to_bytes();
            Ok(Answer {
                status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("no complete answer within {EXCHANGE_TIMEOUT:?}"))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_split_into_address_path_and_host() {
        let e = Endpoint::parse("http://127.0.0.1:4000/mcp").unwrap();
        assert_eq!(e.addr, "127.0.0.1:4000");
        assert_eq!(e.path, "/mcp");
        assert_eq!(e.host, "127.0.0.1:4000");
        let e = Endpoint::parse("http://localhost").unwrap();
        assert_eq!(e.addr, "localhost:80");
        assert_eq!(e.path, "/");
        assert_eq!(e.with_path("/healthz").path, "/healthz");
        assert!(Endpoint::parse("https://127.0.0.1/mcp").is_err());
        assert!(Endpoint::parse("not a url").is_err());
    }
}
