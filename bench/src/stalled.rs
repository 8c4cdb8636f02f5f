//! Stalled subscribers beside the fast ones of a fan-out (`--stalled N`): clients that subscribe
//! like the others, read their stream's head, and then read nothing, on sockets with a small
//! receive buffer, so that the server soon has bytes for them that they do not take. They are
//! not measured; they are there to show whether the fast subscribers' deliveries suffer.

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::conn::{Conn, Endpoint};
use crate::mcp;

/// The receive buffer of a stalled subscriber's socket (the kernel doubles it): small, so that
/// a few events fill it.
const RECEIVE_BUFFER: u32 = 4096;

/// Opens `count` stalled subscribers to `topic`: sessions with their GET stream, or push streams
/// (`push`). Returns their connections, to be held (unread) until the run ends.
pub(crate) async fn open(
    endpoint: &Endpoint,
    topic: &str,
    push: bool,
    count: usize,
) -> Result<Vec<TcpStream>, String> {
    let mut setup = match (push, count) {
        (false, 1..) => Some(Conn::connect(endpoint).await?),
        _ => None,
    };
    let mut stalled = Vec::with_capacity(count);
    for _ in 0..count {
        let request = match setup.as_mut() {
            Some(conn) => {
                let session = mcp::initialize(conn, endpoint).await?;
                mcp::subscribe(conn, endpoint, &session, topic).await?;
                mcp::get_stream(endpoint, &session)
            }
            None => {
                let params =
                    json!({"name": topic, "arguments": {"retained": false}, "cursor": null});
                mcp::modern_request(endpoint, 1, "events/stream", params, None)
            }
        };
        stalled.push(send_and_stall(endpoint, request).await?);
    }
    Ok(stalled)
}

/// Sends `request` on a new connection with a small receive buffer and reads its answer's
/// head: the stream has started, and nothing more will be read.
async fn send_and_stall(
    endpoint: &Endpoint,
    request: Request<Full<Bytes>>,
) -> Result<TcpStream, String> {
    let addr = tokio::net::lookup_host(&endpoint.addr)
        .await
        .map_err(|e| format!("{}: {e}", endpoint.addr))?
        .next()
        .ok_or_else(|| format!("{}: no address", endpoint.addr))?;
    let socket = match addr {
        std::net::SocketAddr::V4(_) => TcpSocket::new_v4(),
        std::net::SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| format!("socket: {e}"))?;
    socket
        .set_recv_buffer_size(RECEIVE_BUFFER)
        .map_err(|e| format!("SO_RCVBUF: {e}"))?;
    let mut tcp = socket
        .connect(addr)
        .await
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    tcp.write_all(&request_bytes(request).await?)
        .await
        .map_err(|e| format!("writing a stalled subscriber's request: {e}"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = tokio::time::timeout(crate::conn::EXCHANGE_TIMEOUT, tcp.read(&mut buf)).await;
        match read {
            Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
            _ => return Err("a stalled subscriber's stream did not start".into()),
        }
    }
    if !head.starts_with(b"HTTP/1.1 200") {
        let text = String::from_utf8_lossy(&head);
        return Err(format!(
            "a stalled subscriber's stream: {}",
            text.lines().next().unwrap_or_default()
        ));
    }
    Ok(tcp)
}

/// An HTTP/1.1 request as bytes (with its `Content-Length`).
async fn request_bytes(request: Request<Full<Bytes>>) -> Result<Vec<u8>, String> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("request body: {e}"))?
        .to_bytes();
    let mut out = format!("{} {} HTTP/1.1\r\n", parts.method, parts.uri).into_bytes();
    for (name, value) in &parts.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_are_written_as_http_1_1() {
        let endpoint = Endpoint::parse("http://127.0.0.1:4000/mcp").unwrap();
        let bytes = request_bytes(mcp::get_stream(&endpoint, "abc"))
            .await
            .unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("GET /mcp HTTP/1.1\r\n"), "{text}");
        assert!(text.contains("host: 127.0.0.1:4000\r\n"), "{text}");
        assert!(text.contains("mcp-session-id: abc\r\n"), "{text}");
        assert!(text.ends_with("content-length: 0\r\n\r\n"), "{text}");
    }
}
