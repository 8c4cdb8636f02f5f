//! SSE response bodies: every stream is read back from the event store, so a live stream and a
//! resumed one are the same code, and nothing appended is missed between replay and live.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use mcpbus_proto::jsonrpc::{Message, parse_message};
use mcpbus_proto::sse;
use tokio_util::sync::CancellationToken;

use super::session::{ActivityGuard, HttpSession, StandaloneGuard};
use crate::store::{EventStore, StoreError, StoredEvent};

/// How many stored events one read takes.
const READ_BATCH: usize = 256;

/// One SSE stream being written to a connection.
pub(crate) struct Tail {
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) session: Arc<HttpSession>,
    pub(crate) stream: String,
    /// Read after this id (from the start of the stream when `None`).
    pub(crate) cursor: Option<String>,
    /// Events already read (e.g. by the handler, to turn a failed resume into an HTTP error).
    pub(crate) first_batch: Vec<StoredEvent>,
    /// End after writing the response of the request (POST streams).
    pub(crate) end_on_response: bool,
    /// A priming event to write first: its id and the `retry` to advise.
    pub(crate) priming: Option<(String, Option<u64>)>,
    /// Cancelled to close the connection (after writing what is stored so far).
    pub(crate) close: CancellationToken,
    pub(crate) shutdown: CancellationToken,
    pub(crate) keep_alive: Option<Duration>,
    /// Held while the stream is open: the session is not idle.
    pub(crate) _activity: ActivityGuard,
    /// Set for the standalone stream: frees its slot and tracks the delivered cursor.
    pub(crate) standalone: Option<StandaloneGuard>,
}

impl Tail {
    /// The response body: the connection itself polls the stream (no task in between), so a
    /// delivery costs one wake-up of the connection.
    pub(crate) fn into_body(self) -> Body {
        let stream = futures::stream::unfold(TailState::new(self), |mut state| async move {
            state
                .next_chunk()
                .await
                .map(|chunk| (Ok::<_, Infallible>(chunk), state))
        });
        Body::from_stream(stream)
    }
}

struct TailState {
    tail: Tail,
    /// Closing: write what is stored, then end.
    closing: bool,
    finished: bool,
}

impl TailState {
    fn new(tail: Tail) -> Self {
        TailState {
            tail,
            closing: false,
            finished: false,
        }
    }

    /// The next chunk to write: the priming event, a batch of stored events, or a keep-alive
    /// comment; `None` when the stream is over.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.finished {
            return None;
        }
        let t = &mut self.tail;
        if let Some((id, retry)) = t.priming.take() {
            let mut buf = Vec::with_capacity(64);
            sse::encode_priming(&mut buf, &id, retry);
            return Some(Bytes::from(buf));
        }
        loop {
            let batch = if t.first_batch.is_empty() {
                let read = t
                    .store
                    .read_after(&t.session.id, &t.stream, t.cursor.as_deref(), READ_BATCH)
                    .await;
                match read {
                    Ok(b) => b,
                    Err(StoreError::Expired(_)) if t.standalone.is_some() => {
                        // This reader fell behind the store's bound: skip to what is still kept.
                        tracing::warn!(session = %t.session.id, "standalone stream fell behind; oldest events dropped");
                        t.cursor = None;
                        continue;
                    }
                    Err(e) => {
                        tracing::debug!(session = %t.session.id, stream = %t.stream, error = %e, "stream read failed; closing");
                        return None;
                    }
                }
            } else {
                std::mem::take(&mut t.first_batch)
            };
            let mut buf = Vec::new();
            for event in batch {
                t.cursor = Some(event.id.clone());
                let Some(message) = event.message else {
                    continue;
                };
                sse::encode_event(&mut buf, Some(&event.id), Some("message"), &message);
                if t.end_on_response && is_response(&message) {
                    self.finished = true;
                    break;
                }
            }
            if !buf.is_empty() {
                if let Some(guard) = &t.standalone {
                    guard.delivered(t.cursor.clone());
                }
                return Some(Bytes::from(buf));
            }
            if self.closing {
                return None;
            }
            let wait = t
                .store
                .wait_for(&t.session.id, &t.stream, t.cursor.as_deref());
            let keep_alive = async {
                match t.keep_alive {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = wait => {}
                // Closing (by the handler, or because the session ended): write what is
                // stored, then end.
                _ = t.close.cancelled(), if !self.closing => self.closing = true,
                _ = t.session.ended.cancelled(), if !self.closing => self.closing = true,
                _ = t.shutdown.cancelled() => return None,
                _ = aborted(&t.standalone) => return None,
                _ = keep_alive => {
                    let mut buf = Vec::with_capacity(16);
                    sse::encode_comment(&mut buf, "keep-alive");
                    return Some(Bytes::from(buf));
                }
            }
        }
    }
}

/// Completes when another connection took the standalone stream over (never for POST streams).
async fn aborted(standalone: &Option<StandaloneGuard>) {
    match standalone {
        Some(guard) => guard.abort.cancelled().await,
        None => std::future::pending().await,
    }
}

/// Whether a stored frame is a response (the end of a POST stream).
fn is_response(frame: &[u8]) -> bool {
    matches!(
        parse_message(frame),
        Ok(Message::Response(_) | Message::Error(_))
    )
}
