//! `mcpbus-everything`: the "everything server" that the official MCP conformance suite
//! (`@modelcontextprotocol/conformance`) runs its server scenarios against.
//!
//! It offers the tools, resources, resource template and prompts the suite asks for by name
//! (`test_simple_text`, `test://static-text`, `test_prompt_with_arguments`, ...), built with the
//! mcpbus SDK, and serves them over Streamable HTTP at `http://127.0.0.1:$PORT/mcp` (`PORT`
//! defaults to 3000; `0` picks a free port) with an in-memory event store, so that SSE streams
//! start with a priming event and can be resumed with `Last-Event-ID`. It also declares one
//! events topic, `conformance/status`, so that the events capability is part of what the suite
//! sees, and the MCP Events extension's fixtures ([`events`]: an event type per combination
//! of delivery modes and one with a typed argument, a test event on each every second, and a
//! control tool for a harness's loopback webhook receiver). Once listening it prints
//! `mcpbus-everything listening on http://ADDR/mcp`; it stops on Ctrl-C or SIGTERM.
//! `MCPBUS_LOG` sets the log filter (default `info`).
//!
//! `conformance/run.sh` builds it, starts it and runs the suite; `conformance/NOTES.md` says what
//! each scenario checks.

mod content;
mod events;
mod media;
mod modern;
mod tasks;
mod tools;

use std::io::IsTerminal;
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use mcpbus::events::{Event, TopicSpec};
use mcpbus::server::{BuildError, Server};
use mcpbus::store::{MemoryEventStore, MemoryEventStoreConfig};
use mcpbus::transport::http::{HttpConfig, serve_http};
use serde_json::json;
use tokio::net::TcpListener;

use content::{WATCHED_URI, Watched};

/// The one declared events topic.
const STATUS_TOPIC: &str = "conformance/status";

/// How often `test://watched-resource` changes (and subscribers are told).
const WATCH_PERIOD: Duration = Duration::from_secs(5);

/// Builds the server with everything the suite expects.
fn build_server(watched: Arc<Watched>) -> Result<Server, BuildError> {
    let builder = Server::builder("mcpbus-everything", env!("CARGO_PKG_VERSION"))
        .title("mcpbus conformance everything server")
        .instructions(
            "Test fixture for the MCP conformance suite: every tool, resource and prompt \
             the suite calls, plus one events topic.",
        )
        .topic(
            TopicSpec::content(STATUS_TOPIC)
                .description("The fixture's state and the watched resource's revision")
                .retained(true),
        );
    let builder = tools::register(builder);
    let builder = modern::register(builder);
    let builder = tasks::register(builder);
    let builder = events::register(builder);
    content::register(builder, watched).build()
}

/// Changes the watched resource now and then, telling its subscribers and the status topic.
fn spawn_watcher(server: Server, watched: Arc<Watched>) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(WATCH_PERIOD);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let revision = watched.bump();
            server.notify_resource_updated(WATCHED_URI);
            let status = json!({"state": "serving", "watchedRevision": revision});
            if let Err(e) = server
                .events()
                .publish(Event::new(STATUS_TOPIC, status))
                .await
            {
                tracing::warn!(error = %e, "could not publish the status event");
            }
        }
    });
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn port_from_env() -> Result<u16, String> {
    match std::env::var("PORT") {
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|_| format!("PORT must be a port number, got {text:?}")),
        Err(std::env::VarError::NotPresent) => Ok(3000),
        Err(e) => Err(format!("PORT: {e}")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MCPBUS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let port = match port_from_env() {
        Ok(port) => port,
        Err(e) => {
            eprintln!("mcpbus-everything: {e}");
            return ExitCode::from(2);
        }
    };
    let watched = Arc::new(Watched::default());
    let server = match build_server(watched.clone()) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("mcpbus-everything: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("mcpbus-everything: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("mcpbus-everything: {e}");
            return ExitCode::FAILURE;
        }
    };

    let ready = json!({"state": "ready", "watchedRevision": 0});
    if let Err(e) = server
        .events()
        .publish(Event::new(STATUS_TOPIC, ready))
        .await
    {
        tracing::warn!(error = %e, "could not publish the status event");
    }
    spawn_watcher(server.clone(), watched);
    events::spawn_ticks(server.clone());

    let config = HttpConfig {
        event_store: Some(Arc::new(MemoryEventStore::new(
            MemoryEventStoreConfig::default(),
        ))),
        ..HttpConfig::default()
    };
    println!("mcpbus-everything listening on http://{addr}/mcp");
    match serve_http(listener, "/mcp", server, config, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcpbus-everything: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests;
