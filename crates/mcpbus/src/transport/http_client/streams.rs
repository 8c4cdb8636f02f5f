//! The tasks that read answers: one per request (its POST's answer and the resumptions of its
//! SSE stream) and the standalone `GET` stream.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use mcpbus_proto::jsonrpc::{ErrorObject, Message, RequestId};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::{BodyKind, Shared, Sink, SseEnd, StreamProgress, Tx, answers, body_kind, lock};

/// One request in flight: its POST, its answer, and the resumptions of its SSE stream.
pub(super) struct RequestExchange {
    pub(super) shared: Arc<Shared>,
    pub(super) id: RequestId,
    pub(super) initialize: bool,
    pub(super) tx: Tx,
}

impl RequestExchange {
    pub(super) async fn run(self, body: Bytes, cancel: CancellationToken) {
        let outcome = tokio::select! {
            r = self.exchange(body) => r,
            _ = cancel.cancelled() => Ok(()),
        };
        lock(&self.shared.in_flight).remove(&self.id);
        if let Err(detail) = outcome {
            tracing::debug!(id = %self.id, error = %detail, "request failed at the HTTP level");
            let error = Message::error(Some(self.id.clone()), ErrorObject::internal(detail));
            let _ = self.tx.send(Ok(error)).await;
        }
    }

    async fn exchange(&self, body: Bytes) -> Result<(), String> {
        let shared = &self.shared;
        let resp = shared.post(&body).await?;
        if self.initialize {
            shared.record_session(resp.headers());
        }
        if resp.status() != StatusCode::OK {
            return Err(shared.http_error(resp).await);
        }
        match body_kind(resp.headers()) {
            BodyKind::Json => {
                let inbound = shared.read_json(resp).await?;
                let answered = answers(&inbound, &self.id);
                if answered && self.initialize {
                    shared.record_version(&inbound, &self.id);
                }
                let _ = self.tx.send(inbound).await;
                if answered {
                    Ok(())
                } else {
                    Err("the server's JSON answer does not answer this request".into())
                }
            }
            BodyKind::Sse => {
                let mut progress = StreamProgress::default();
                let target = Some((&self.id, self.initialize));
                let sink = Sink::Reader(&self.tx);
                match shared
                    .read_sse(resp.into_body(), &mut progress, target, sink)
                    .await
                {
                    SseEnd::Answered => Ok(()),
                    SseEnd::Ended => self.resume(progress).await,
                }
            }
            BodyKind::Other(ct) => Err(format!(
                "the server answered with content type {ct:?}; expected application/json or \
                 text/event-stream"
            )),
        }
    }

    /// The request's stream ended before its answer: resume it with `GET` + `Last-Event-ID`.
    async fn resume(&self, mut progress: StreamProgress) -> Result<(), String> {
        let shared = &self.shared;
        let max = shared.config.max_resume_attempts;
        let mut fruitless = 0;
        loop {
            let Some(last_id) = progress.last_id.clone() else {
                return Err(
                    "the SSE stream ended before the response, without an event id \
                            to resume from"
                        .into(),
                );
            };
            if fruitless >= max {
                return Err(format!(
                    "no response after {max} attempts to resume the SSE stream"
                ));
            }
            fruitless += 1;
            tokio::time::sleep(progress.retry.unwrap_or(shared.config.initial_retry)).await;
            let seen = progress.seen;
            let (resp, session) = match shared.get(Some(&last_id)).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(id = %self.id, error = %e, "resuming the stream failed");
                    continue;
                }
            };
            let status = resp.status();
            if status == StatusCode::OK && matches!(body_kind(resp.headers()), BodyKind::Sse) {
                tracing::debug!(id = %self.id, last_id, "resumed the request's SSE stream");
                let target = Some((&self.id, self.initialize));
                let sink = Sink::Reader(&self.tx);
                if let SseEnd::Answered = shared
                    .read_sse(resp.into_body(), &mut progress, target, sink)
                    .await
                {
                    return Ok(());
                }
                if progress.seen > seen {
                    fruitless = 0;
                }
                continue;
            }
            if status == StatusCode::NOT_FOUND
                && let Some(session) = session
            {
                shared.reinitialize(&session).await?;
                return Err(
                    "the server ended the session before answering; the transport \
                            re-initialized, but this request is lost"
                        .into(),
                );
            }
            return Err(format!(
                "resuming the SSE stream failed: {}",
                shared.http_error(resp).await
            ));
        }
    }
}

/// The standalone `GET` stream: reconnected until the transport closes or the server says it
/// offers none (`405`). `opened` fires once the first `GET` has an answer (or failed).
pub(super) async fn run_get_stream(shared: Arc<Shared>, tx: Tx, opened: oneshot::Sender<()>) {
    tokio::select! {
        _ = get_stream_loop(&shared, &tx, opened) => {}
        _ = shared.shutdown.cancelled() => {}
    }
}

async fn get_stream_loop(shared: &Shared, tx: &Tx, opened: oneshot::Sender<()>) {
    let mut opened = Some(opened);
    let config = &shared.config;
    let mut progress = StreamProgress::default();
    // The session the last event id belongs to: ids mean nothing in another session.
    let mut id_session: Option<HeaderValue> = None;
    let mut failures: u32 = 0;
    loop {
        if shared.state().session_id != id_session {
            progress.last_id = None;
        }
        let resume = progress.last_id.clone();
        let retry = progress.retry.unwrap_or(config.initial_retry);
        let backoff = |failures: u32| {
            let factor = 1u32 << failures.saturating_sub(1).min(16);
            retry.saturating_mul(factor).min(config.max_backoff)
        };
        let answer = shared.get(resume.as_deref()).await;
        if let Some(opened) = opened.take() {
            let _ = opened.send(());
        }
        let wait = match answer {
            Err(e) => {
                failures += 1;
                tracing::debug!(error = %e, "opening the standalone SSE stream failed");
                backoff(failures)
            }
            Ok((resp, session)) => match resp.status() {
                StatusCode::OK if matches!(body_kind(resp.headers()), BodyKind::Sse) => {
                    failures = 0;
                    id_session = session;
                    tracing::debug!(resume = ?resume, "standalone SSE stream open");
                    let sink = Sink::Reader(tx);
                    shared
                        .read_sse(resp.into_body(), &mut progress, None, sink)
                        .await;
                    tracing::debug!("standalone SSE stream ended; reconnecting");
                    progress.retry.unwrap_or(config.initial_retry)
                }
                StatusCode::METHOD_NOT_ALLOWED => {
                    tracing::debug!("the server offers no standalone SSE stream (405)");
                    return;
                }
                StatusCode::CONFLICT => {
                    failures += 1;
                    tracing::debug!("the session already has a standalone stream (409)");
                    backoff(failures)
                }
                StatusCode::BAD_REQUEST | StatusCode::GONE if resume.is_some() => {
                    let error = shared.http_error(resp).await;
                    tracing::warn!(
                        last_event_id = ?resume,
                        %error,
                        "the server cannot resume the standalone stream; reconnecting without \
                         Last-Event-ID: events sent meanwhile are lost"
                    );
                    progress.last_id = None;
                    Duration::ZERO
                }
                StatusCode::NOT_FOUND if session.is_some() => {
                    failures += 1;
                    if let Some(session) = session
                        && let Err(e) = shared.reinitialize(&session).await
                    {
                        tracing::warn!(error = %e, "re-initializing the session failed");
                        backoff(failures)
                    } else if failures == 1 {
                        Duration::ZERO // reconnect at once in the new session
                    } else {
                        backoff(failures)
                    }
                }
                _ => {
                    failures += 1;
                    let error = shared.http_error(resp).await;
                    tracing::warn!(%error, "the server refused the standalone SSE stream");
                    backoff(failures)
                }
            },
        };
        tokio::time::sleep(wait).await;
    }
}
