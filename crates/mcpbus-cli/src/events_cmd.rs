//! `mcpbus events ls TARGET`: the event types of a 2026-07-28 server (SEP-3415 `events/list`),
//! or the topics of a handshake-era one (its `events/list`).

use mcpbus::client::{Client, Era};
use serde_json::json;

use crate::client_cmd::{ClientCmdError, Target};

/// Lists the server's event types (or, in the handshake era, its topics): one line each with
/// the delivery modes (or the kind) and the description; with `json`, one JSON object.
pub(crate) async fn ls(target: &str, era: Era, as_json: bool) -> Result<(), ClientCmdError> {
    let builder = Client::builder("mcpbus-cli", env!("CARGO_PKG_VERSION"));
    let client = Target::parse(target)?.connect(builder, era).await?;
    let outcome = listing(&client, as_json).await;
    client.close().await;
    let (lines, value) = outcome?;
    if as_json {
        if let Ok(line) = serde_json::to_string(&value) {
            println!("{line}");
        }
    } else {
        for line in lines {
            println!("{line}");
        }
    }
    Ok(())
}

/// The listing as text lines and as JSON.
async fn listing(
    client: &Client,
    as_json: bool,
) -> Result<(Vec<String>, serde_json::Value), ClientCmdError> {
    let failed = |source| ClientCmdError::Request {
        what: "events/list".into(),
        source,
    };
    let mut lines = Vec::new();
    if client.era() == Era::Modern {
        let types = client.list_event_types().await.map_err(failed)?;
        if !as_json {
            lines.push(format!("event types ({}):", types.len()));
            for t in &types {
                let modes: Vec<&str> = t.delivery.iter().map(|m| m.as_str()).collect();
                lines.push(line(&t.name, &modes.join(", "), t.description.as_deref()));
            }
        }
        return Ok((lines, json!({"era": "modern", "events": types})));
    }
    let topics = client.list_events().await.map_err(failed)?;
    if !as_json {
        lines.push(format!("topics ({}):", topics.len()));
        for t in &topics {
            let kind = serde_json::to_value(t.kind).unwrap_or_default();
            let kind = kind.as_str().unwrap_or("?");
            lines.push(line(&t.pattern, kind, t.description.as_deref()));
        }
    }
    Ok((lines, json!({"era": "legacy", "topics": topics})))
}

fn line(name: &str, what: &str, description: Option<&str>) -> String {
    match description.and_then(|d| d.lines().next()) {
        Some(d) => format!("  {name}  [{what}]  {d}"),
        None => format!("  {name}  [{what}]"),
    }
}
