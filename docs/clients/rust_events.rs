//! Topic events with the mcpbus Rust client, in both eras: each function returns the first
//! alert the server at `url` pushes.

use mcpbus::client::{Client, Era, SubscriptionEvent};
use mcpbus::proto::events::EventParams;
use mcpbus::transport::{HttpClientConfig, HttpClientTransport};
use tokio::sync::mpsc;

/// The handshake era: `subscribe` (`events/subscribe`), then `on_event` gets each `events/emit`.
pub async fn first_alert_handshake_era(url: &str) -> mcpbus::Result<Option<EventParams>> {
    let (tx, mut events) = mpsc::unbounded_channel();
    let client = Client::builder("alerts-watcher", "1.0.0")
        .era(Era::Legacy)
        .on_event(move |event| {
            let _ = tx.send(event);
        })
        .connect(HttpClientTransport::new(url, HttpClientConfig::default())?)
        .await?;
    client.subscribe(["alerts/+"]).await?;
    let first = events.recv().await;
    client.close().await;
    Ok(first)
}

/// MCP 2026-07-28: `subscribe_events` runs a SEP-3415 push stream (or polls, where the event
/// type offers no push) and hands its handler the same `EventParams`, with the cursor to keep.
pub async fn first_alert_2026_07_28(url: &str) -> mcpbus::Result<Option<EventParams>> {
    let client = Client::builder("alerts-watcher", "1.0.0")
        .era(Era::Modern)
        .connect(HttpClientTransport::new(url, HttpClientConfig::default())?)
        .await?;
    let (tx, mut events) = mpsc::unbounded_channel();
    let subscription = client
        .subscribe_events("alerts/+")
        .start(move |report| {
            if let SubscriptionEvent::Event(event) = report {
                let _ = tx.send(event);
            }
        })
        .await?;
    let first = events.recv().await;
    let _cursor = subscription.stop().await; // pass to .cursor(..) to resume from here
    client.close().await;
    Ok(first)
}
