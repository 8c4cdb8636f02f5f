//! One POST to a checked address (docs/protocol.md 3.6.5): HTTP/1.1 over a connection to the
//! address the SSRF check approved, the URL's host in `Host`, no redirect followed, the whole
//! exchange under a timeout, and at most a few KiB of the answer read. Failures are reported
//! as SEP-3415 categories only, never with what the endpoint said.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use mcpbus_proto::events_ext::webhook::DeliveryErrorCategory;

use super::destination::CallbackUrl;

/// The most of an answer's body read (a verification echo is far smaller).
const MAX_ANSWER: usize = 8 * 1024;

/// What the endpoint answered.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    /// The body, when it was read whole within [`MAX_ANSWER`].
    pub(crate) body: Option<Bytes>,
}

/// POSTs `body` with `headers` to `addr` for `url`.
pub(crate) async fn post(
    url: &CallbackUrl,
    addr: SocketAddr,
    headers: &[(&'static str, String)],
    body: Bytes,
    timeout: Duration,
) -> Result<Answer, DeliveryErrorCategory> {
    if url.https {
        // This build has no TLS client: an https endpoint cannot be reached (docs/protocol.md
        // 3.6.9), and says so with the category the SEP has for it.
        return Err(DeliveryErrorCategory::TlsError);
    }
    tokio::time::timeout(timeout, exchange(url, addr, headers, body))
        .await
        .unwrap_or(Err(DeliveryErrorCategory::Timeout))
}

async fn exchange(
    url: &CallbackUrl,
    addr: SocketAddr,
    headers: &[(&'static str, String)],
    body: Bytes,
) -> Result<Answer, DeliveryErrorCategory> {
    let refused = |_| DeliveryErrorCategory::ConnectionRefused;
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(refused)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| DeliveryErrorCategory::ConnectionRefused)?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut request = http::Request::post(url.path_and_query.as_str())
        .header(http::header::HOST, url.authority.as_str())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CONNECTION, "close");
    for (name, value) in headers {
        request = request.header(*name, value.as_str());
    }
    let request = request
        .body(Full::new(body))
        .map_err(|_| DeliveryErrorCategory::ConnectionRefused)?;
    let answer = sender.send_request(request).await;
    let result = match answer {
        Err(_) => Err(DeliveryErrorCategory::ConnectionRefused),
        Ok(response) => {
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .ok()
                .map(|b| b.to_bytes());
            Ok(Answer { status, body })
        }
    };
    driver.abort();
    result
}

/// The category of a non-2xx status. A redirect is never followed and counts as `http_4xx`
/// (the SEP's categories have none for it).
pub(crate) fn status_category(status: u16) -> DeliveryErrorCategory {
    if status >= 500 {
        DeliveryErrorCategory::Http5xx
    } else {
        DeliveryErrorCategory::Http4xx
    }
}
