//! The tasks that read answers: one per request (its POST's answer and the resumptions of its
//! SSE stream) and the standalone `GET` stream.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use hyper::body::Incoming;
use mcpbus_proto::jsonrpc::{ErrorObject, Message, RequestId};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::{
    BodyKind, HttpError, Shared, Sink, SseEnd, StreamProgress, Tx, answers, body_kind, lock,
};

/// One request in flight: its POST, its answer, and the resumptions of its SSE stream.
pub(super) struct RequestExchange {
    pub(super) shared: Arc<Shared>,
    pub(super) id: RequestId,
    pub(super) initialize: bool,
    /// The headers of a 2026-07-28 request; `None` in the handshake era.
    pub(super) modern: Option<super::modern::ExtraHeaders>,
    pub(super) tx: Tx,
}

impl RequestExchange {
    pub(super) async fn run(self, body: Bytes, cancel: CancellationToken) {
        let outcome = tokio::select! {
            r = self.exchange(body) => r,
            _ = cancel.cancelled() => Ok(()),
        };
        lock(&self.shared.in_flight).remove(&self.id);
        if let Err(e) = outcome {
            // The caller sees a JSON-RPC error: the whole chain goes into its message.
            tracing::debug!(id = %self.id, error = %e, "request failed at the HTTP level");
            let error = Message::error(Some(self.id.clone()), ErrorObject::internal(e));
            let _ = self.tx.send(Ok(error)).await;
        }
    }

    async fn exchange(&self, body: Bytes) -> Result<(), HttpError> {
        if let Some(headers) = &self.modern {
            return self.exchange_modern(body, headers).await;
        }
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
                    Err(HttpError::NotTheAnswer)
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
            BodyKind::Other(ct) => Err(HttpError::ContentType(ct)),
        }
    }

    /// The request's stream ended before its answer: resume it with `GET` + `Last-Event-ID`.
    async fn resume(&self, mut progress: StreamProgress) -> Result<(), HttpError> {
        let shared = &self.shared;
        let max = shared.config.max_resume_attempts;
        let mut fruitless = 0;
        loop {
            let Some(last_id) = progress.last_id.clone() else {
                return Err(HttpError::NothingToResume);
            };
            if fruitless >= max {
                return Err(HttpError::ResumeExhausted(max));
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
                return Err(HttpError::SessionLost);
            }
            return Err(HttpError::Resume(Box::new(shared.http_error(resp).await)));
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
    let mut stream = Standalone {
        shared,
        tx,
        progress: StreamProgress::default(),
        id_session: None,
        failures: 0,
    };
    loop {
        if shared.state().session_id != stream.id_session {
            stream.progress.last_id = None;
        }
        let resume = stream.progress.last_id.clone();
        let answer = shared.get(resume.as_deref()).await;
        if let Some(opened) = opened.take() {
            let _ = opened.send(());
        }
        let wait = match answer {
            Err(e) => {
                tracing::debug!(error = %e, "opening the standalone SSE stream failed");
                stream.failed()
            }
            Ok((resp, session)) => match stream.answered(resp, session, resume).await {
                Some(wait) => wait,
                None => return,
            },
        };
        tokio::time::sleep(wait).await;
    }
}

/// What the standalone stream remembers from one connection to the next.
struct Standalone<'a> {
    shared: &'a Shared,
    tx: &'a Tx,
    progress: StreamProgress,
    /// The session the last event id belongs to: ids mean nothing in another session.
    id_session: Option<HeaderValue>,
    /// Failed connections in a row, for the backoff.
    failures: u32,
}

impl Standalone<'_> {
    /// Counts a failure; returns how long to wait before the next attempt: the server's
    /// `retry`, doubled for each further failure in a row, capped by the configuration.
    fn failed(&mut self) -> Duration {
        self.failures += 1;
        let config = &self.shared.config;
        let retry = self.progress.retry.unwrap_or(config.initial_retry);
        let factor = 1u32 << self.failures.saturating_sub(1).min(16);
        retry.saturating_mul(factor).min(config.max_backoff)
    }

    /// Handles the server's answer to a `GET` (sent with `Last-Event-ID: resume`, if some):
    /// reads the stream to its end, or judges the refusal. Returns how long to wait before
    /// reconnecting, or `None` when the server offers no standalone stream.
    async fn answered(
        &mut self,
        resp: Response<Incoming>,
        session: Option<HeaderValue>,
        resume: Option<String>,
    ) -> Option<Duration> {
        let shared = self.shared;
        let wait = match resp.status() {
            StatusCode::OK if matches!(body_kind(resp.headers()), BodyKind::Sse) => {
                self.failures = 0;
                self.id_session = session;
                tracing::debug!(resume = ?resume, "standalone SSE stream open");
                let sink = Sink::Reader(self.tx);
                shared
                    .read_sse(resp.into_body(), &mut self.progress, None, sink)
                    .await;
                tracing::debug!("standalone SSE stream ended; reconnecting");
                self.progress.retry.unwrap_or(shared.config.initial_retry)
            }
            StatusCode::METHOD_NOT_ALLOWED => {
                tracing::debug!("the server offers no standalone SSE stream (405)");
                return None;
            }
            StatusCode::CONFLICT => {
                tracing::debug!("the session already has a standalone stream (409)");
                self.failed()
            }
            StatusCode::BAD_REQUEST | StatusCode::GONE if resume.is_some() => {
                let error = shared.http_error(resp).await;
                tracing::warn!(
                    last_event_id = ?resume,
                    %error,
                    "the server cannot resume the standalone stream; reconnecting without \
                     Last-Event-ID: events sent meanwhile are lost"
                );
                self.progress.last_id = None;
                Duration::ZERO
            }
            StatusCode::NOT_FOUND if session.is_some() => self.session_gone(session).await,
            _ => {
                let error = shared.http_error(resp).await;
                tracing::warn!(%error, "the server refused the standalone SSE stream");
                self.failed()
            }
        };
        Some(wait)
    }

    /// The server no longer knows the session the `GET` carried: re-initialize, and reconnect
    /// at once in the new session unless this keeps happening.
    async fn session_gone(&mut self, session: Option<HeaderValue>) -> Duration {
        let backoff = self.failed();
        if let Some(session) = session
            && let Err(e) = self.shared.reinitialize(&session).await
        {
            tracing::warn!(error = %e, "re-initializing the session failed");
            backoff
        } else if self.failures == 1 {
            Duration::ZERO
        } else {
            backoff
        }
    }
}
