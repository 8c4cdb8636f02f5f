//! GET: the session's standalone SSE stream (what the server sends outside any request: its
//! own requests, notifications, events), or, with `Last-Event-ID`, the resumption of any of
//! the session's streams after that event.

// The error side of these steps is the HTTP response itself, built at most once per request.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::body::Body;
use http::{HeaderMap, Request, Response, StatusCode};
use mcpbus_proto::error_codes;
use mcpbus_proto::headers::LAST_EVENT_ID;

use super::session::{HttpSession, STANDALONE_STREAM, StandaloneGuard, lock};
use super::stream::Tail;
use super::{HttpInner, wire};
use crate::server::Identity;
use crate::store::{StoreError, StoredEvent};

/// How many stored events the first read takes.
const FIRST_BATCH: usize = 256;

/// Answers a GET of `caller`.
pub(super) async fn get(
    http: Arc<HttpInner>,
    request: Request<Body>,
    caller: Option<Arc<Identity>>,
) -> Response<Body> {
    match open_stream(&http, request.headers(), caller.as_deref()).await {
        Ok(response) | Err(response) => response,
    }
}

/// Where a GET starts reading.
struct StreamStart {
    stream: String,
    /// Read after this event id (from the start of the stream when `None`).
    cursor: Option<String>,
    /// The client sent `Last-Event-ID`.
    resumed: bool,
}

async fn open_stream(
    http: &HttpInner,
    headers: &HeaderMap,
    caller: Option<&Identity>,
) -> Result<Response<Body>, Response<Body>> {
    if !wire::accepts(headers, "text/event-stream") {
        return Err(wire::error(
            StatusCode::NOT_ACCEPTABLE,
            error_codes::INVALID_REQUEST,
            "Accept must list text/event-stream",
        ));
    }
    let session = http.find_session(headers, caller).await?;
    wire::check_protocol_version(headers)?;
    let activity = session.activity();
    let mut start = locate(http, &session, headers).await?;
    let standalone = start.stream == STANDALONE_STREAM;
    let guard = if standalone {
        Some(attach_standalone(http, &session, start.resumed).await?)
    } else {
        None
    };
    let first_batch = read_first_batch(http, &session, &mut start).await?;
    // A fresh stream advises its resume point (what was delivered so far) and `retry`.
    let priming = match &start.cursor {
        Some(c) if !start.resumed && http.priming_enabled(&session.id) => {
            Some((c.clone(), Some(http.config.sse_retry.as_millis() as u64)))
        }
        _ => None,
    };
    let tail = Tail {
        store: http.store.clone(),
        session: session.clone(),
        stream: start.stream,
        cursor: start.cursor,
        first_batch,
        end_on_response: !standalone,
        priming,
        close: session.ended.child_token(),
        stop: match &guard {
            Some(g) => g.abort.clone(),
            None => http.shutdown.clone(),
        },
        keep_alive: http.config.sse_keep_alive,
        _activity: activity,
        standalone: guard,
        lost_after: None,
        _done: None,
    };
    Ok(wire::sse_response(tail.into_body(), None))
}

/// The stream `Last-Event-ID` names, after that event; without it, the standalone stream after
/// what earlier GETs delivered.
async fn locate(
    http: &HttpInner,
    session: &HttpSession,
    headers: &HeaderMap,
) -> Result<StreamStart, Response<Body>> {
    let Some(last_event_id) = wire::header_str(headers, LAST_EVENT_ID) else {
        return Ok(StreamStart {
            stream: STANDALONE_STREAM.to_string(),
            cursor: lock(&session.standalone_cursor).clone(),
            resumed: false,
        });
    };
    let position = http
        .store
        .locate(&session.id, last_event_id)
        .await
        .map_err(wire::resume_error)?;
    Ok(StreamStart {
        stream: position.stream,
        cursor: Some(position.event_id),
        resumed: true,
    })
}

/// Takes the session's standalone slot: 409 while another GET holds it, unless this one
/// resumes (its client lost the old connection, which the server may not know yet).
async fn attach_standalone(
    http: &HttpInner,
    session: &Arc<HttpSession>,
    resumed: bool,
) -> Result<StandaloneGuard, Response<Body>> {
    let Some(mut guard) = session.attach_standalone(resumed, &http.shutdown) else {
        return Err(wire::error(
            StatusCode::CONFLICT,
            error_codes::INVALID_REQUEST,
            "this session already has a standalone SSE stream open",
        ));
    };
    // With shared sessions, this replica now appends the session's events.
    http.sessions.hold_standalone(session, &mut guard).await?;
    Ok(guard)
}

/// Reads the first batch now, so that a resume that cannot be served is an HTTP error rather
/// than an empty stream that invites a reconnect loop.
async fn read_first_batch(
    http: &HttpInner,
    session: &HttpSession,
    start: &mut StreamStart,
) -> Result<Vec<StoredEvent>, Response<Body>> {
    let read = http
        .store
        .read_after(
            &session.id,
            &start.stream,
            start.cursor.as_deref(),
            FIRST_BATCH,
        )
        .await;
    match read {
        Ok(batch) => Ok(batch),
        Err(StoreError::Expired(_)) if !start.resumed || start.stream != STANDALONE_STREAM => {
            // A fresh standalone GET after the store trimmed events never delivered; or a
            // POST stream whose unread messages outgrew the bound: its trimmed messages were
            // progress and logs, and its answer, the newest, is still kept (docs/protocol.md 4).
            tracing::warn!(session = %session.id, stream = %start.stream, "undelivered messages were dropped");
            start.cursor = None;
            Ok(http
                .store
                .read_after(&session.id, &start.stream, None, FIRST_BATCH)
                .await
                .unwrap_or_default())
        }
        Err(e) => Err(wire::resume_error(e)),
    }
}
