//! A GET stream read on a thread of its own, for tests that run without a runtime.

use std::sync::mpsc;
use std::thread;

use mcpbus_proto::sse::SseEvent;

use crate::http::{HttpClient, block_on};
use crate::sse::SseReader;

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
