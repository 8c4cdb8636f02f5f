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
    /// Cancelled to close the connection after writing what is stored so far: by the
    /// handler (SEP-1699), or because the session ended (a child of the session's token).
    pub(crate) close: CancellationToken,
    /// Cancelled to end the stream at once: server shutdown, or (standalone) another
    /// connection took the stream over.
    pub(crate) stop: CancellationToken,
    pub(crate) keep_alive: Option<Duration>,
    /// Held while the stream is open: the session is not idle.
    pub(crate) _activity: ActivityGuard,
    /// Set for the standalone stream: frees its slot and tracks the delivered cursor.
    pub(crate) standalone: Option<StandaloneGuard>,
    /// The last id read before this reader fell behind the store's bound, until the events
    /// lost after it are counted.
    pub(crate) lost_after: Option<String>,
    /// Cancels its token when the stream is over (written to the end, or its client gone).
    pub(crate) _done: Option<tokio_util::sync::DropGuard>,
}

impl Tail {
    /// Counts the events lost between the position this reader fell behind at and `next`, the
    /// first event still kept (at least one when the store cannot tell how many).
    fn count_lost(&mut self, next: Option<&StoredEvent>) {
        let (Some(next), Some(after)) = (next, self.lost_after.take()) else {
            return;
        };
        let lost = self.store.events_between(&after, &next.id).unwrap_or(1);
        self.session.events.count_dropped(lost);
    }
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
    /// The last read took everything stored: wait before reading again.
    caught_up: bool,
}

/// What a wait ended with.
enum Woken {
    /// Something may have been appended, or the stream is closing: read.
    Read,
    /// Write this chunk (a keep-alive comment).
    Write(Bytes),
    /// The stream is over.
    End,
}

impl TailState {
    fn new(tail: Tail) -> Self {
        TailState {
            tail,
            closing: false,
            finished: false,
            caught_up: false,
        }
    }

    /// The next chunk to write: the priming event, a batch of stored events, or a keep-alive
    /// comment; `None` when the stream is over.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.finished {
            return None;
        }
        if let Some((id, retry)) = self.tail.priming.take() {
            let mut buf = Vec::with_capacity(64);
            sse::encode_priming(&mut buf, &id, retry);
            return Some(Bytes::from(buf));
        }
        loop {
            if self.caught_up && self.tail.first_batch.is_empty() && !self.closing {
                // Everything stored was written: wait first (the wait returns at once if
                // something was appended meanwhile) instead of a read that finds nothing.
                match self.wait().await {
                    Woken::Read => {}
                    Woken::Write(chunk) => return Some(chunk),
                    Woken::End => return None,
                }
            }
            let t = &mut self.tail;
            let batch = if t.first_batch.is_empty() {
                let read = t
                    .store
                    .read_after(&t.session.id, &t.stream, t.cursor.as_deref(), READ_BATCH)
                    .await;
                match read {
                    Ok(b) => b,
                    Err(StoreError::Expired(_)) => {
                        // This reader fell behind the store's bound: skip to what is still kept.
                        // On the standalone stream the lost are events, counted once the next
                        // kept one is known; on a POST stream they are progress and logs, and
                        // the answer, the newest, is still ahead.
                        tracing::warn!(session = %t.session.id, stream = %t.stream, "stream fell behind; oldest messages dropped");
                        let skipped = t.cursor.take();
                        if t.standalone.is_some() {
                            t.lost_after = skipped;
                        }
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
            self.caught_up = batch.len() < READ_BATCH;
            t.count_lost(batch.first());
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
            match self.wait().await {
                Woken::Read => {}
                Woken::Write(chunk) => return Some(chunk),
                Woken::End => return None,
            }
        }
    }

    /// Waits until something may be stored after the cursor, the stream closes, or a
    /// keep-alive is due.
    async fn wait(&mut self) -> Woken {
        let t = &self.tail;
        let wait = t
            .store
            .wait_for(&t.session.id, &t.stream, t.cursor.as_deref());
        let keep_alive = async {
            match t.keep_alive {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let closing = self.closing;
        let woken = tokio::select! {
            _ = wait => Woken::Read,
            _ = t.close.cancelled(), if !closing => {
                self.closing = true;
                Woken::Read
            }
            _ = t.stop.cancelled() => Woken::End,
            _ = keep_alive => {
                let mut buf = Vec::with_capacity(16);
                sse::encode_comment(&mut buf, "keep-alive");
                Woken::Write(Bytes::from(buf))
            }
        };
        self.caught_up = false;
        woken
    }
}

/// Whether a stored frame is a response (the end of a POST stream).
fn is_response(frame: &[u8]) -> bool {
    matches!(
        parse_message(frame),
        Ok(Message::Response(_) | Message::Error(_))
    )
}
