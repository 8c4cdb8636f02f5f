//! The HTTP side of the endpoint, below any session logic: header checks (`Accept`,
//! `Content-Type`, `MCP-Protocol-Version`, `Host` and `Origin`), the body size limit, and
//! every response shape (JSON-RPC error bodies, JSON answers, SSE streams).

// The error side of these checks is the HTTP response itself, built at most once per request.
#![allow(clippy::result_large_err)]

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt;
use mcpbus_proto::error_codes;
use mcpbus_proto::headers::{PROTOCOL_VERSION, SESSION_ID};
use mcpbus_proto::jsonrpc::{ErrorObject, Message, RequestId};
use mcpbus_proto::mcp::is_supported_protocol_version;

use super::HttpConfig;
use super::directory::DirectoryError;
use crate::error::BackendError;
use crate::store::StoreError;

/// The `id` of an error body that answers a request whose id could not be read: the body was
/// refused before it was parsed (406, 415, 413, a foreign `Host` or `Origin`...), was not JSON,
/// or there was no body (GET, DELETE).
///
/// The id cannot simply be left out, nor be `null`: the MCP Python SDK 2.x reads an error body
/// only when it has an `id` member (`null` accepted), and shows "Server returned an error
/// response" otherwise, while the MCP schema (2025-11-25 and 2026-07-28) makes `id` optional
/// but never `null` (the TypeScript SDK 2.x refuses `null` too). A string id is read by both;
/// neither uses it to match the answer to its request, which is the one its POST carried.
pub(crate) const UNKNOWN_REQUEST_ID: &str = "unknown";

/// What an [`error`] response's body says, kept in the response's extensions so that the body
/// can be addressed to its request once the request's id is known ([`addressed`]).
#[derive(Debug, Clone)]
struct ErrorBody(ErrorObject);

/// An HTTP error with a JSON-RPC error body whose id is [`UNKNOWN_REQUEST_ID`] until
/// [`addressed`] gives it the request's.
pub(crate) fn error(status: StatusCode, code: i64, message: impl Into<String>) -> Response<Body> {
    let error = ErrorObject::new(code, message);
    let mut response = Response::new(error_body(None, &error));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response.extensions_mut().insert(ErrorBody(error));
    response
}

/// `response`, when it is an [`error`], with its body addressed to request `id`; any other
/// response unchanged.
pub(crate) fn addressed(mut response: Response<Body>, id: &RequestId) -> Response<Body> {
    if let Some(ErrorBody(error)) = response.extensions_mut().remove::<ErrorBody>() {
        *response.body_mut() = error_body(Some(id), &error);
    }
    response
}

fn error_body(id: Option<&RequestId>, error: &ErrorObject) -> Body {
    let id = id
        .cloned()
        .unwrap_or_else(|| RequestId::from(UNKNOWN_REQUEST_ID));
    Body::from(Message::error(Some(id), error.clone()).to_vec())
}

/// 400 with `-32600`: the request is malformed at the HTTP level.
pub(crate) fn bad_request(message: impl Into<String>) -> Response<Body> {
    error(
        StatusCode::BAD_REQUEST,
        error_codes::INVALID_REQUEST,
        message,
    )
}

/// A response with a status and no body.
pub(crate) fn status_only(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

/// 404: the session is unknown, or ended (the client must initialize again).
pub(crate) fn not_found() -> Response<Body> {
    error(
        StatusCode::NOT_FOUND,
        error_codes::INVALID_REQUEST,
        "Session not found",
    )
}

/// 503: this replica serves as many sessions as it may.
pub(crate) fn too_many_sessions(limit: usize) -> Response<Body> {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        error_codes::INTERNAL_ERROR,
        format!("too many sessions (limit {limit})"),
    )
}

/// 503: the shared backend failed; the client may retry.
pub(crate) fn unavailable(e: &BackendError) -> Response<Body> {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        error_codes::INTERNAL_ERROR,
        e.to_string(),
    )
}

/// 405, with the methods the endpoint takes in its mode.
pub(crate) fn method_not_allowed(stateless: bool) -> Response<Body> {
    let mut response = status_only(StatusCode::METHOD_NOT_ALLOWED);
    let allow = if stateless {
        "POST"
    } else {
        "GET, POST, DELETE"
    };
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

impl From<DirectoryError> for Response<Body> {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::NotFound => not_found(),
            DirectoryError::Full { limit } => too_many_sessions(limit),
            DirectoryError::Unavailable(e) => unavailable(&e),
        }
    }
}

/// The HTTP answer to a `Last-Event-ID` that cannot be served.
pub(crate) fn resume_error(e: StoreError) -> Response<Body> {
    match e {
        StoreError::Malformed(_) | StoreError::Unknown(_) => {
            bad_request(format!("cannot resume: {e}"))
        }
        StoreError::Expired(_) => error(
            StatusCode::GONE,
            error_codes::INVALID_REQUEST,
            format!("cannot resume: {e}"),
        ),
        StoreError::Backend(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            error_codes::INTERNAL_ERROR,
            format!("cannot resume now: {e}"),
        ),
    }
}

/// One JSON answer; `session_id` is set on the answer that opens a session.
pub(crate) fn json_response(frame: Bytes, session_id: Option<&str>) -> Response<Body> {
    let mut response = Response::new(Body::from(frame));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    add_session_header(&mut response, session_id);
    response
}

/// An SSE stream; `session_id` is set on the answer that opens a session.
pub(crate) fn sse_response(body: Body, session_id: Option<&str>) -> Response<Body> {
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Reverse proxies (nginx) would otherwise hold events back to fill their buffers.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    add_session_header(&mut response, session_id);
    response
}

fn add_session_header(response: &mut Response<Body>, session_id: Option<&str>) {
    if let Some(v) = session_id.and_then(|id| HeaderValue::from_str(id).ok()) {
        response.headers_mut().insert(SESSION_ID, v);
    }
}

/// A header's value, when present and visible ASCII.
pub(crate) fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether an `Accept` header admits `mime` (`type/subtype`), honouring `*/*` and `type/*`.
pub(crate) fn accepts(headers: &HeaderMap, mime: &str) -> bool {
    let (ty, _) = mime.split_once('/').unwrap_or((mime, ""));
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',').any(|item| {
                let range = item
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                range == mime || range == "*/*" || range == format!("{ty}/*")
            })
        })
}

/// A POST must accept both answer shapes (406) and carry JSON (415).
pub(crate) fn check_post_headers(headers: &HeaderMap) -> Result<(), Response<Body>> {
    if !accepts(headers, "application/json") || !accepts(headers, "text/event-stream") {
        return Err(error(
            StatusCode::NOT_ACCEPTABLE,
            error_codes::INVALID_REQUEST,
            "Accept must list both application/json and text/event-stream",
        ));
    }
    let content_type = header_str(headers, header::CONTENT_TYPE).unwrap_or("");
    if !content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
    {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            error_codes::INVALID_REQUEST,
            "Content-Type must be application/json",
        ));
    }
    Ok(())
}

/// How much of an oversized body is still read (and thrown away) before the 413 is sent, and
/// for how long at most.
const DRAIN_BYTES: usize = 64 * 1024 * 1024;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads a POST body of at most `limit` bytes within `timeout`; beyond the size (or when
/// `Content-Length` says so), 413; beyond the time, 408, and the connection is closed. The rest
/// of an oversized body is read and discarded first, within bounds: a client that writes its
/// whole body before reading (most simple HTTP clients do) would otherwise see the connection
/// reset under its write instead of the 413.
pub(crate) async fn read_body(
    mut body: Body,
    headers: &HeaderMap,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, Response<Body>> {
    let declared_too_large = header_str(headers, header::CONTENT_LENGTH)
        .and_then(|l| l.parse::<u64>().ok())
        .is_some_and(|l| l > limit as u64);
    if !declared_too_large {
        match tokio::time::timeout(timeout, read_within(&mut body, limit)).await {
            Ok(Ok(Some(bytes))) => return Ok(bytes),
            Ok(Ok(None)) => {}
            Ok(Err(response)) => return Err(response),
            Err(_) => return Err(too_slow(timeout)),
        }
    }
    drain(body).await;
    let mut response = error(
        StatusCode::PAYLOAD_TOO_LARGE,
        error_codes::INVALID_REQUEST,
        format!("body exceeds the limit of {limit} bytes"),
    );
    // What was not drained must not be read as the next request.
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    Err(response)
}

/// 408 for a body that did not arrive in time; the connection closes, as the rest of the body
/// is not read.
fn too_slow(timeout: std::time::Duration) -> Response<Body> {
    let mut response = error(
        StatusCode::REQUEST_TIMEOUT,
        error_codes::INVALID_REQUEST,
        format!("the body did not arrive within {} ms", timeout.as_millis()),
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Reads a whole body if it fits in `limit` bytes; `None` as soon as it does not (the rest is
/// left unread).
async fn read_within(body: &mut Body, limit: usize) -> Result<Option<Bytes>, Response<Body>> {
    let mut buf = BytesMut::new();
    loop {
        match body.frame().await {
            None => return Ok(Some(buf.freeze())),
            Some(Err(e)) => return Err(bad_request(format!("could not read the body: {e}"))),
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                if buf.len() + data.len() > limit {
                    return Ok(None);
                }
                buf.extend_from_slice(&data);
            }
        }
    }
}

/// Reads and discards what is left of a body, up to [`DRAIN_BYTES`] and [`DRAIN_TIME`].
async fn drain(mut body: Body) {
    let mut left = DRAIN_BYTES;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(Ok(frame)) = body.frame().await {
            let len = frame.data_ref().map_or(0, |d| d.len());
            if len >= left {
                break;
            }
            left -= len;
        }
    })
    .await;
}

/// A `MCP-Protocol-Version` header, when sent, must name a supported revision (400).
pub(crate) fn check_protocol_version(headers: &HeaderMap) -> Result<(), Response<Body>> {
    match headers.get(PROTOCOL_VERSION) {
        None => Ok(()),
        Some(v) => match v.to_str() {
            Ok(v) if is_supported_protocol_version(v) => Ok(()),
            _ => Err(bad_request(format!(
                "unsupported MCP-Protocol-Version {:?}",
                String::from_utf8_lossy(v.as_bytes())
            ))),
        },
    }
}

/// DNS-rebinding protection: 421 for a foreign `Host`, 403 for a foreign `Origin`.
pub(crate) fn check_host_and_origin(
    config: &HttpConfig,
    headers: &HeaderMap,
) -> Result<(), Response<Body>> {
    if config.dns_rebinding_protection {
        let host = header_str(headers, header::HOST).unwrap_or("");
        if !host_allowed(config, host) {
            return Err(error(
                StatusCode::MISDIRECTED_REQUEST,
                error_codes::INVALID_REQUEST,
                format!("Host {host:?} is not allowed"),
            ));
        }
    }
    if let Some(origin) = header_str(headers, header::ORIGIN)
        && !origin_allowed(config, origin)
    {
        return Err(error(
            StatusCode::FORBIDDEN,
            error_codes::INVALID_REQUEST,
            format!("Origin {origin:?} is not allowed"),
        ));
    }
    Ok(())
}

fn host_allowed(config: &HttpConfig, host: &str) -> bool {
    let name = host_name(host);
    match &config.allowed_hosts {
        None => matches!(name.as_str(), "localhost" | "127.0.0.1" | "[::1]"),
        Some(list) => list.iter().any(|allowed| {
            let allowed = allowed.to_ascii_lowercase();
            allowed == host.to_ascii_lowercase()
                || (!allowed.contains(':') || allowed.starts_with('['))
                    && host_name(&allowed) == name
        }),
    }
}

fn origin_allowed(config: &HttpConfig, origin: &str) -> bool {
    if config
        .allowed_origins
        .iter()
        .any(|o| o.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    if !config.dns_rebinding_protection {
        return config.allowed_origins.is_empty();
    }
    match origin.split_once("://") {
        Some((scheme, authority)) if scheme == "http" || scheme == "https" => {
            host_allowed(config, authority)
        }
        _ => false,
    }
}

/// The host part of a `Host` header or an origin's authority, lowercased, without the port.
fn host_name(authority: &str) -> String {
    let a = authority.trim().to_ascii_lowercase();
    if let Some(rest) = a.strip_prefix('[') {
        return format!("[{}]", rest.split(']').next().unwrap_or(""));
    }
    match a.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host.to_string(),
        _ => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_ranges() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        assert!(accepts(&h, "application/json") && accepts(&h, "text/event-stream"));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!accepts(&h, "text/event-stream"));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*;q=0.8"));
        assert!(accepts(&h, "text/event-stream"));
        h.insert(header::ACCEPT, HeaderValue::from_static("text/*"));
        assert!(accepts(&h, "text/event-stream") && !accepts(&h, "application/json"));
    }

    #[test]
    fn host_names_drop_ports() {
        assert_eq!(host_name("LocalHost:8080"), "localhost");
        assert_eq!(host_name("127.0.0.1"), "127.0.0.1");
        assert_eq!(host_name("[::1]:3000"), "[::1]");
        assert_eq!(host_name("evil.example"), "evil.example");
    }
}
