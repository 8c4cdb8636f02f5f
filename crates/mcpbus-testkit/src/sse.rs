//! Server-sent events read from a streaming answer, parsed by `mcpbus_proto::sse`.

use std::collections::VecDeque;

use std::time::Duration;

use http::Response;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use mcpbus_proto::sse::{SseDecoder, SseEvent};
use serde_json::Value;

/// Reads the events of one SSE answer as they arrive.
#[derive(Debug)]
pub struct SseReader {
    body: Incoming,
    decoder: SseDecoder,
    queue: VecDeque<SseEvent>,
}

impl SseReader {
    /// Reads `response`; panics if it is not `text/event-stream`.
    pub fn new(response: Response<Incoming>) -> Self {
        let content_type = response.headers().get("content-type");
        assert_eq!(
            content_type.and_then(|v| v.to_str().ok()),
            Some("text/event-stream"),
            "not an SSE response: {}",
            response.status()
        );
        SseReader {
            body: response.into_body(),
            decoder: SseDecoder::new(),
            queue: VecDeque::new(),
        }
    }

    /// The next event (priming events included), however long it takes; `None` once the
    /// stream ended or broke.
    pub async fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Some(event);
            }
            let frame = self.body.frame().await?.ok()?;
            if let Ok(data) = frame.into_data() {
                self.queue.extend(self.decoder.push(&data));
            }
        }
    }

    /// The next event, as [`next_event`](Self::next_event); panics if none comes in `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<SseEvent> {
        tokio::time::timeout(timeout, self.next_event())
            .await
            .expect("no SSE event in time")
    }

    /// The next event that carries a message: its id and the message.
    pub async fn next_message(&mut self, timeout: Duration) -> Option<(Option<String>, Value)> {
        loop {
            let event = self.next(timeout).await?;
            if !event.data.is_empty() {
                let message = serde_json::from_str(&event.data)
                    .unwrap_or_else(|e| panic!("an SSE message that is not JSON ({e}): {event:?}"));
                return Some((event.id, message));
            }
        }
    }
}
