//! Server-sent events read from a streaming answer, parsed by `mcpbus_proto::sse`.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use http::Response;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use mcpbus_proto::sse::{SseDecoder, SseEvent};
use serde_json::Value;

use crate::http::{HttpClient, block_on};

/// Reads the events of one SSE answer as they arrive.
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

/// What the reader thread of [`open_sse`] reports, in this order.
#[derive(Debug)]
pub enum SseItem {
    /// The answer's status (first).
    Status(u16),
    /// One event.
    Event(SseEvent),
    /// The stream ended (or was refused: after a status other than 200).
    End,
}

/// Opens the session's GET stream at `url` (resuming after `last_event_id`) and reads it on a
/// thread of its own, for tests without a runtime: status, events, end. The thread stops once
/// the receiver is dropped and another event arrives.
pub fn open_sse(url: &str, session: &str, last_event_id: Option<&str>) -> mpsc::Receiver<SseItem> {
    let client = HttpClient::new(url);
    let (session, last) = (session.to_string(), last_event_id.map(str::to_string));
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        block_on(async move {
            let response = client.get_stream(&session, last.as_deref()).await;
            let status = response.status().as_u16();
            let _ = tx.send(SseItem::Status(status));
            if status == 200 {
                let mut sse = SseReader::new(response);
                while let Some(event) = sse.next_event().await {
                    if tx.send(SseItem::Event(event)).is_err() {
                        return;
                    }
                }
            }
            let _ = tx.send(SseItem::End);
        })
    });
    rx
}
