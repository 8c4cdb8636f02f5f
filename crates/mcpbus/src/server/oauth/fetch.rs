//! HTTP to the authorization server (docs/auth.md): its metadata, its keys, its introspection
//! endpoint. One request per connection, over the TLS client webhook delivery uses (the Mozilla
//! roots built in, plus any configured), with the whole exchange under a timeout and the answer
//! bounded. Plain `http` is accepted only for a loopback host (a test's authorization server).

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::webhooks::Tls;

/// The largest answer read from the authorization server (a key set of a few dozen keys fits).
const MAX_ANSWER: usize = 256 * 1024;

/// An absolute `https` URL of the authorization server (or a loopback `http` one), read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    /// The URL as configured.
    pub(crate) text: String,
    pub(crate) https: bool,
    /// The host, without brackets around an IPv6 address.
    pub(crate) host: String,
    pub(crate) port: u16,
    /// What goes in `Host`.
    pub(crate) authority: String,
    /// The path, `/` at least.
    pub(crate) path: String,
    /// The query, if any (without `?`).
    pub(crate) query: Option<String>,
}

impl Url {
    /// Reads `text`: `https`, or `http` to a loopback host; no user information, no fragment.
    pub(crate) fn parse(text: &str) -> Result<Url, String> {
        if text.contains('#') {
            return Err(format!("{text:?} must not have a fragment"));
        }
        let uri: http::Uri = text
            .parse()
            .map_err(|_| format!("{text:?} is not an absolute URL"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(format!("{text:?} must be an https URL")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("{text:?} has no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!("{text:?} must not carry user information"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if host.is_empty() {
            return Err(format!("{text:?} has no host"));
        }
        if !https && !is_loopback_host(&host) {
            return Err(format!(
                "{text:?} must be an https URL (plain http only to a loopback host)"
            ));
        }
        Ok(Url {
            text: text.to_owned(),
            https,
            port: authority.port_u16().unwrap_or(if https { 443 } else { 80 }),
            authority: authority.as_str().to_owned(),
            host,
            path: match uri.path() {
                "" => "/".to_owned(),
                p => p.to_owned(),
            },
            query: uri.query().map(str::to_owned),
        })
    }

    /// `scheme://authority`, lowercase scheme, as the URL wrote its authority.
    pub(crate) fn origin(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.authority)
    }

    /// The path without a trailing `/` (empty for the root).
    pub(crate) fn trimmed_path(&self) -> &str {
        self.path.trim_end_matches('/')
    }

    fn request_target(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }
}

/// `localhost`, or an address literal of the loopback range.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Why a request to the authorization server gave nothing usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FetchError {
    /// No connection, a failed TLS handshake, a broken exchange, or no answer in time.
    #[error("{url}: unreachable: {reason}")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// An answer that is not 2xx.
    #[error("{url}: answered HTTP {status}")]
    Status {
        /// The URL asked.
        url: String,
        /// The status.
        status: u16,
    },
    /// A 2xx answer that is not a JSON object (or too large).
    #[error("{url}: the answer is not a JSON object: {reason}")]
    NotJson {
        /// The URL asked.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

/// The HTTP client of the authorization server.
#[derive(Debug, Clone)]
pub(crate) struct Fetcher {
    tls: Tls,
    timeout: Duration,
}

impl Fetcher {
    /// A client trusting the built-in roots and `extra_roots`, each exchange bounded by
    /// `timeout`.
    pub(crate) fn new(tls: Tls, timeout: Duration) -> Self {
        Fetcher { tls, timeout }
    }

    /// `GET url`, whose answer must be a JSON object.
    pub(crate) async fn get_json(&self, url: &Url) -> Result<Value, FetchError> {
        let request = http::Request::get(url.request_target())
            .header(http::header::ACCEPT, "application/json");
        self.json_exchange(url, request, Bytes::new()).await
    }

    /// `POST url` of a form (`application/x-www-form-urlencoded`) with `authorization`; the
    /// answer must be a JSON object.
    pub(crate) async fn post_form(
        &self,
        url: &Url,
        form: String,
        authorization: &str,
    ) -> Result<Value, FetchError> {
        let request = http::Request::post(url.request_target())
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::AUTHORIZATION, authorization);
        self.json_exchange(url, request, Bytes::from(form)).await
    }

    async fn json_exchange(
        &self,
        url: &Url,
        request: http::request::Builder,
        body: Bytes,
    ) -> Result<Value, FetchError> {
        let request = request
            .header(http::header::HOST, url.authority.as_str())
            .header(http::header::CONNECTION, "close")
            .body(Full::new(body))
            .map_err(|e| unreachable(url, e))?;
        let exchange = tokio::time::timeout(self.timeout, self.send(url, request));
        let (status, body) = exchange
            .await
            .map_err(|_| unreachable(url, format!("no answer within {:?}", self.timeout)))??;
        if !(200..300).contains(&status) {
            return Err(FetchError::Status {
                url: url.text.clone(),
                status,
            });
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(v @ Value::Object(_)) => Ok(v),
            Ok(_) => Err(not_json(url, "not an object")),
            Err(e) => Err(not_json(url, e)),
        }
    }

    /// Connects (in TLS for `https`) and exchanges one request.
    async fn send(
        &self,
        url: &Url,
        request: http::Request<Full<Bytes>>,
    ) -> Result<(u16, Bytes), FetchError> {
        let tcp = tokio::net::TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|e| unreachable(url, e))?;
        if !url.https {
            return exchange(url, tcp, request).await;
        }
        let tls = self
            .tls
            .connect(&url.host, tcp)
            .await
            .map_err(|e| unreachable(url, format!("TLS: {e}")))?;
        exchange(url, tls, request).await
    }
}

async fn exchange<S>(
    url: &Url,
    stream: S,
    request: http::Request<Full<Bytes>>,
) -> Result<(u16, Bytes), FetchError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| unreachable(url, e))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let result = match sender.send_request(request).await {
        Err(e) => Err(unreachable(url, e)),
        Ok(response) => {
            let status = response.status().as_u16();
            Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map(|b| (status, b.to_bytes()))
                .map_err(|e| not_json(url, format!("reading it failed or it is too large: {e}")))
        }
    };
    driver.abort();
    result
}

fn unreachable(url: &Url, reason: impl ToString) -> FetchError {
    FetchError::Unreachable {
        url: url.text.clone(),
        reason: reason.to_string(),
    }
}

fn not_json(url: &Url, reason: impl ToString) -> FetchError {
    FetchError::NotJson {
        url: url.text.clone(),
        reason: reason.to_string(),
    }
}

/// `application/x-www-form-urlencoded` encoding of one name or value.
pub(crate) fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_https_or_loopback_http() {
        let u = Url::parse("https://Auth.Example.com/tenant/?x=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("auth.example.com", 443, "/tenant/")
        );
        assert_eq!(u.trimmed_path(), "/tenant");
        assert_eq!(u.query.as_deref(), Some("x=1"));
        assert_eq!(u.origin(), "https://Auth.Example.com");
        assert!(Url::parse("http://127.0.0.1:9000").is_ok());
        assert!(Url::parse("http://[::1]:9000/as").is_ok());
        assert!(Url::parse("http://localhost/as").is_ok());
        for bad in [
            "http://auth.example.com",
            "ftp://x",
            "https://u:p@auth.example.com",
            "https://auth.example.com/#f",
            "/relative",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forms_are_encoded() {
        assert_eq!(form_encode("a b+c/é~"), "a+b%2Bc%2F%C3%A9~");
    }
}
