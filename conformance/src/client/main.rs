//! `mcpbus-conformance-client`: the client the official MCP conformance suite
//! (`@modelcontextprotocol/conformance`) drives in its *client* mode.
//!
//! `conformance client --command "mcpbus-conformance-client" --scenario S` starts a mock server
//! for scenario `S`, then runs this binary with the server's URL appended as the last argument
//! and the scenario's name in `MCP_CONFORMANCE_SCENARIO`. The binary connects with the mcpbus
//! [`Client`](mcpbus::client::Client) over
//! [`HttpClientTransport`](mcpbus::transport::HttpClientTransport) (default settings), does what
//! the scenario expects (see [`scenarios`]), closes the session and exits `0`. Any failure is
//! printed on stderr and exits `1`; an unknown scenario or a missing URL exits `2`.
//!
//! `mcpbus-conformance-client --list [REVISION]` prints the scenarios supported at a spec
//! revision (default 2025-11-25; 2026-07-28's are in [`modern`]; the OAuth ones, scored and
//! extensions, in [`auth`]), one a line; `--extensions` prints the OAuth extension scenarios
//! among them (the suite runs those only with `--force` when a revision is named). The client's
//! era follows the revision the harness names in `MCP_CONFORMANCE_PROTOCOL_VERSION`.
//!
//! The whole run is bounded by `MCPBUS_CLIENT_TIMEOUT_MS` (default 20000), below the suite's own
//! 30 s limit, so that a hang is reported by this binary with a message rather than by the suite
//! killing it. `MCPBUS_LOG` sets the log filter (default `warn`); logs go to stderr, which the
//! suite shows when the binary fails.
//!
//! `conformance/run-client.sh` builds it and runs the suite's client scenarios it supports;
//! `conformance/NOTES.md` ("Client mode") says which and why.

mod auth;
mod modern;
mod scenarios;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

/// The default bound of one run.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// Reads the bound of one run from `MCPBUS_CLIENT_TIMEOUT_MS`.
fn timeout_from_env() -> Result<Duration, String> {
    match std::env::var("MCPBUS_CLIENT_TIMEOUT_MS") {
        Ok(text) => text
            .trim()
            .parse()
            .map(Duration::from_millis)
            .map_err(|_| format!("MCPBUS_CLIENT_TIMEOUT_MS must be milliseconds, got {text:?}")),
        Err(std::env::VarError::NotPresent) => Ok(DEFAULT_TIMEOUT),
        Err(e) => Err(format!("MCPBUS_CLIENT_TIMEOUT_MS: {e}")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MCPBUS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let name = "mcpbus-conformance-client";
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--list") {
        let version = args.get(1).map_or("2025-11-25", String::as_str);
        for scenario in scenarios::supported(version) {
            println!("{scenario}");
        }
        return ExitCode::SUCCESS;
    }
    if args.first().map(String::as_str) == Some("--extensions") {
        for scenario in auth::EXTENSIONS {
            println!("{scenario}");
        }
        return ExitCode::SUCCESS;
    }
    // The harness appends the URL after whatever arguments the command line already had.
    let Some(url) = std::env::args().skip(1).last() else {
        eprintln!("{name}: usage: {name} <server-url> (with MCP_CONFORMANCE_SCENARIO set)");
        return ExitCode::from(2);
    };
    let scenario = match std::env::var("MCP_CONFORMANCE_SCENARIO") {
        Ok(s) if !s.is_empty() => s,
        _ => {
            eprintln!("{name}: MCP_CONFORMANCE_SCENARIO is not set");
            return ExitCode::from(2);
        }
    };
    let Some(run) = scenarios::find(&scenario) else {
        eprintln!(
            "{name}: scenario {scenario:?} is not supported; supported: {} (2025-11-25), {} \
             (2026-07-28)",
            scenarios::supported("2025-11-25").join(", "),
            scenarios::supported("2026-07-28").join(", ")
        );
        return ExitCode::from(2);
    };
    let timeout = match timeout_from_env() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(2);
        }
    };

    eprintln!("{name}: scenario {scenario} against {url}");
    match tokio::time::timeout(timeout, run(url)).await {
        Ok(Ok(summary)) => {
            eprintln!("{name}: {scenario}: ok: {summary}");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("{name}: {scenario}: FAILED: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("{name}: {scenario}: FAILED: not done within {timeout:?}");
            ExitCode::FAILURE
        }
    }
}
