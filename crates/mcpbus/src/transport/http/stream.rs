//! SSE response bodies: every stream is read back from the event store, so a live stream and a
//! resumed one are the same code, and nothing appended is missed between replay and live.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use mcpbus_proto::jsonrpc::{Message, parse_message};
use mcpbus_proto::sse;
use tokio::sync::mpsc;
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
    pub(crate) activity: ActivityGuard,
    /// Set for the standalone stream: frees its slot and tracks the delivered cursor.
    pub(crate) standalone: Option<StandaloneGuard>,
}

impl Tail {
    /// Starts writing the stream; returns the response body.
    pub(crate) fn spawn(self) -> Body {
        let (tx, rx) = mpsc::channel::<Bytes>(16);
        tokio::spawn(self.run(tx));
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|chunk| (Ok::<_, Infallible>(chunk), rx))
        });
        Body::from_stream(stream)
    }

    /// Sends a chunk; `false` when the client is gone or another connection took over.
    async fn send(&self, tx: &mpsc::Sender<Bytes>, buf: &mut Vec<u8>) -> bool {
        let chunk = Bytes::from(std::mem::take(buf));
        tokio::select! {
            sent = tx.send(chunk) => sent.is_ok(),
            _ = aborted(&self.standalone) => false,
        }
    }

    async fn run(mut self, tx: mpsc::Sender<Bytes>) {
        let mut buf = Vec::with_capacity(4096);
        if let Some((id, retry)) = self.priming.take() {
            sse::encode_priming(&mut buf, &id, retry);
            if !self.send(&tx, &mut buf).await {
                return;
            }
        }
        let mut batch = std::mem::take(&mut self.first_batch);
        loop {
            if batch.is_empty() {
                let read = self
                    .store
                    .read_after(
                        &self.session.id,
                        &self.stream,
                        self.cursor.as_deref(),
                        READ_BATCH,
                    )
                    .await;
                batch = match read {
                    Ok(b) => b,
                    Err(StoreError::Expired(_)) if self.standalone.is_some() => {
                        // This reader fell behind the store's bound: skip to what is still kept.
                        tracing::warn!(session = %self.session.id, "standalone stream fell behind; oldest events dropped");
                        self.cursor = None;
                        continue;
                    }
                    Err(e) => {
                        tracing::debug!(session = %self.session.id, stream = %self.stream, error = %e, "stream read failed; closing");
                        return;
                    }
                };
            }
            let mut done = false;
            for event in batch.drain(..) {
                self.cursor = Some(event.id.clone());
                let Some(message) = event.message else {
                    continue;
                };
                sse::encode_event(&mut buf, Some(&event.id), Some("message"), &message);
                if self.end_on_response && is_response(&message) {
                    done = true;
                    break;
                }
            }
            if !buf.is_empty() {
                if !self.send(&tx, &mut buf).await {
                    return;
                }
                if let Some(guard) = &self.standalone {
                    guard.delivered(self.cursor.clone());
                }
            }
            if done {
                return;
            }
            if self.close.is_cancelled() {
                // Write everything stored up to now, then close the connection.
                match self.drained().await {
                    true => continue,
                    false => return,
                }
            }
            let wait = self
                .store
                .wait_for(&self.session.id, &self.stream, self.cursor.as_deref());
            let keep_alive = async {
                match self.keep_alive {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = wait => {}
                _ = self.close.cancelled() => {}
                _ = self.session.ended.cancelled() => {
                    if !self.drained().await { return; }
                }
                _ = self.shutdown.cancelled() => return,
                _ = aborted(&self.standalone) => return,
                _ = keep_alive => {
                    sse::encode_comment(&mut buf, "keep-alive");
                    if !self.send(&tx, &mut buf).await {
                        return;
                    }
                }
            }
            let _ = &self.activity;
        }
    }

    /// Whether there is still something stored to write before closing.
    async fn drained(&self) -> bool {
        matches!(
            self.store
                .read_after(&self.session.id, &self.stream, self.cursor.as_deref(), 1)
                .await,
            Ok(b) if !b.is_empty()
        )
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
