//! The 2026-07-28 era over stdio (docs/protocol.md 6.4): a client that probes with
//! `server/discover` is served statelessly, per request; one that opens with `initialize`
//! keeps the handshake era for the whole connection.

#![allow(clippy::unwrap_used)] // tests unwrap to fail loudly

use std::time::Duration;

use mcpbus::server::{Context, NoArgs, Server};
use mcpbus_testkit::jsonrpc::initialize_request;
use mcpbus_testkit::modern::request;
use serde_json::{Value, json};
use tokio::io::{
    AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines, ReadHalf, WriteHalf,
};

struct Line {
    lines: Lines<BufReader<ReadHalf<DuplexStream>>>,
    w: WriteHalf<DuplexStream>,
}

impl Line {
    async fn send(&mut self, message: &Value) {
        self.w
            .write_all(format!("{message}\n").as_bytes())
            .await
            .unwrap();
    }

    /// The next message with an id (answers), skipping notifications into `notes`.
    async fn answer(&mut self, notes: &mut Vec<Value>) -> Value {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(5), self.lines.next_line())
                .await
                .expect("an answer in time")
                .unwrap()
                .expect("the server is still there");
            let message: Value = serde_json::from_str(&line).unwrap();
            if message.get("id").is_some() {
                return message;
            }
            notes.push(message);
        }
    }
}

fn start() -> Line {
    let server = Server::builder("stdio-modern", "1")
        .tool(
            "ask",
            "Asks the user",
            |_: NoArgs, ctx: Context| async move {
                let form = serde_json::from_value(json!({
                    "message": "Name?", "requestedSchema": {"type": "object", "properties": {}}
                }))
                .unwrap();
                let answer = ctx.input_key("who").elicit(form).await?;
                Ok::<_, mcpbus::server::ToolError>(format!("{:?}", answer.action))
            },
        )
        .build()
        .unwrap();
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    let (r, w) = tokio::io::split(server_io);
    tokio::spawn(async move {
        server
            .serve(mcpbus::transport::LineTransport::new(r, w))
            .await
    });
    let (r, w) = tokio::io::split(client_io);
    Line {
        lines: BufReader::new(r).lines(),
        w,
    }
}

#[tokio::test]
async fn a_discover_probe_gets_the_modern_era_request_by_request() {
    let mut io = start();
    let mut notes = Vec::new();
    io.send(&request(1, "server/discover", json!({}), json!({})))
        .await;
    let discover = io.answer(&mut notes).await;
    assert_eq!(
        discover["result"]["supportedVersions"],
        json!(["2026-07-28"])
    );
    let call = request(
        2,
        "tools/call",
        json!({"name": "ask"}),
        json!({"elicitation": {}}),
    );
    io.send(&call).await;
    let first = io.answer(&mut notes).await;
    assert_eq!(first["result"]["resultType"], "input_required", "{first}");
    let mut retry = request(
        3,
        "tools/call",
        json!({"name": "ask", "inputResponses": {"who": {"action": "decline"}},
               "requestState": first["result"]["requestState"]}),
        json!({"elicitation": {}}),
    );
    retry["params"]["arguments"] = json!(null);
    retry["params"].as_object_mut().unwrap().remove("arguments");
    io.send(&retry).await;
    let done = io.answer(&mut notes).await;
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    assert_eq!(done["result"]["content"][0]["text"], "Decline");
    // The server never sent the client a request.
    assert!(
        notes
            .iter()
            .all(|n| n.get("method").is_some() && n.get("id").is_none())
    );
}

#[tokio::test]
async fn initialize_keeps_the_handshake_era_for_the_connection() {
    let mut io = start();
    let mut notes = Vec::new();
    io.send(&initialize_request("legacy")).await;
    let init = io.answer(&mut notes).await;
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25");
    io.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;
    // After the handshake, ping exists and server/discover does not.
    io.send(&json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}))
        .await;
    assert_eq!(io.answer(&mut notes).await["result"], json!({}));
    io.send(&request(3, "server/discover", json!({}), json!({})))
        .await;
    assert_eq!(io.answer(&mut notes).await["error"]["code"], -32601);
}

#[tokio::test]
async fn end_of_input_ends_an_open_listen_stream_at_once() {
    let server = Server::builder("stdio-listen", "1")
        .tool("noop", "Does nothing", |_: NoArgs, _ctx: Context| async {
            "ok"
        })
        .build()
        .unwrap();
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    let (r, w) = tokio::io::split(server_io);
    let serving = tokio::spawn(async move {
        server
            .serve(mcpbus::transport::LineTransport::new(r, w))
            .await
    });
    let (r, w) = tokio::io::split(client_io);
    let mut io = Line {
        lines: BufReader::new(r).lines(),
        w,
    };
    let filter = json!({"notifications": {"toolsListChanged": true}});
    io.send(&request(1, "subscriptions/listen", filter, json!({})))
        .await;
    let ack = io.lines.next_line().await.unwrap().unwrap();
    assert!(
        ack.contains("notifications/subscriptions/acknowledged"),
        "{ack}"
    );
    // The client goes away: end of input. The stream must not hold the server for the drain
    // timeout (10 s).
    io.w.shutdown().await.unwrap();
    drop(io);
    tokio::time::timeout(Duration::from_secs(3), serving)
        .await
        .expect("the server ends soon after its input")
        .unwrap();
}

#[tokio::test]
async fn end_of_input_ends_an_open_push_stream_at_once() {
    let server = Server::builder("stdio-push", "1")
        .topic(mcpbus::events::TopicSpec::content("alerts/+"))
        .build()
        .unwrap();
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    let (r, w) = tokio::io::split(server_io);
    let serving = tokio::spawn(async move {
        server
            .serve(mcpbus::transport::LineTransport::new(r, w))
            .await
    });
    let (r, w) = tokio::io::split(client_io);
    let mut io = Line {
        lines: BufReader::new(r).lines(),
        w,
    };
    let stream = request(1, "events/stream", json!({"name": "alerts/+"}), json!({}));
    io.send(&stream).await;
    let active = io.lines.next_line().await.unwrap().unwrap();
    assert!(active.contains("notifications/events/active"), "{active}");
    io.w.shutdown().await.unwrap();
    drop(io);
    tokio::time::timeout(Duration::from_secs(3), serving)
        .await
        .expect("the server ends soon after its input")
        .unwrap();
}
