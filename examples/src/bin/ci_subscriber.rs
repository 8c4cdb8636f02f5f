//! Spawns `ci_server`, subscribes to `build/+`, reports two builds through the server's tool, and
//! prints the events that come back.
//!
//! `cargo run -p mcpbus-examples --bin ci_subscriber` (builds and finds `ci_server` beside it).

use std::time::Duration;

use mcpbus::client::Client;
use mcpbus::transport::ChildProcess;
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server_path = std::env::current_exe()?.with_file_name("ci_server");
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let client = Client::builder("ci-subscriber", "1.0.0")
        .on_event(move |event| {
            let _ = tx.send(event);
        })
        .connect(ChildProcess::spawn(tokio::process::Command::new(
            server_path,
        ))?)
        .await?;
    let result = client.subscribe(["build/+"]).await?;
    println!("subscribed: {:?}", result.subscribed);
    for (project, ok) in [("api", true), ("web", false)] {
        client
            .call_tool("finish", json!({"project": project, "ok": ok}))
            .await?;
        if let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
            println!("{} -> {}", event.topic, event.payload);
        }
    }
    client.close().await;
    Ok(())
}
