//! `mcpbus`: an MCP server with topic events, and clients to subscribe to one.

mod config;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mcpbus::client::Client;
use mcpbus::transport::ChildProcess;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, DEFAULT_CONFIG};

/// An MCP server and client with topic-based server-to-client events.
#[derive(Debug, Parser)]
#[command(name = "mcpbus", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (topics from --config, or the embedded default).
    Serve {
        /// Serve one client over stdin/stdout (newline-delimited JSON).
        #[arg(long)]
        stdio: bool,
        /// A TOML configuration file (see `mcpbus config` for the default).
        #[arg(long, env = "MCPBUS_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Spawn a stdio server, subscribe to patterns, and print events as JSON lines.
    Sub {
        /// Topic patterns (`+` one segment, `#` the rest).
        #[arg(required = true)]
        patterns: Vec<String>,
        /// The server command and its arguments, after `--`.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Print the embedded default configuration.
    Config,
}

fn init_logging() {
    // Logs go to stderr: stdout carries the protocol.
    let filter = EnvFilter::try_from_env("MCPBUS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let outcome = match cli.command {
        Command::Serve { stdio, config } => run_serve(stdio, config).await,
        Command::Sub { patterns, command } => run_sub(patterns, command).await,
        Command::Config => {
            print!("{DEFAULT_CONFIG}");
            Ok(())
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("mcpbus: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run_serve(stdio: bool, config: Option<PathBuf>) -> Result<(), String> {
    let config = Config::load(config.as_deref()).map_err(|e| e.to_string())?;
    let server = serve::build_server(&config).map_err(|e| e.to_string())?;
    if !stdio {
        return Err(
            "only --stdio serving is available in this build; run `mcpbus serve --stdio`".into(),
        );
    }
    tracing::info!(
        name = %config.server.name,
        topics = config.events.topics.len(),
        publish = config.publish.enabled,
        "serving over stdio"
    );
    server.serve(mcpbus::transport::stdio()).await;
    tracing::info!("end of input; exiting");
    Ok(())
}

async fn run_sub(patterns: Vec<String>, command: Vec<String>) -> Result<(), String> {
    let Some((program, args)) = command.split_first() else {
        return Err("missing server command after --".into());
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args);
    let transport =
        ChildProcess::spawn(cmd).map_err(|e| format!("cannot start {program:?}: {e}"))?;
    let client = Client::builder("mcpbus-sub", env!("CARGO_PKG_VERSION"))
        .on_event(|event| {
            if let Ok(line) = serde_json::to_string(&event) {
                println!("{line}");
            }
        })
        .connect(transport)
        .await
        .map_err(|e| format!("cannot initialize with {program:?}: {e}"))?;
    let result = client
        .subscribe(patterns)
        .await
        .map_err(|e| format!("events/subscribe failed: {e}"))?;
    for rejected in &result.rejected {
        eprintln!(
            "mcpbus: rejected {:?}: {}",
            rejected.pattern, rejected.reason
        );
    }
    if result.subscribed.is_empty() {
        client.close().await;
        return Err("no pattern was accepted".into());
    }
    for retained in &result.retained {
        if let Ok(line) = serde_json::to_string(retained) {
            println!("{line}");
        }
    }
    tokio::select! {
        _ = client.closed() => Err("the server closed the connection".into()),
        _ = tokio::signal::ctrl_c() => {
            client.close().await;
            Ok(())
        }
    }
}
