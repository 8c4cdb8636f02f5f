//! `mcpbus sub`: subscribes to topic patterns and prints every event as a JSON line, over HTTP
//! (`mcpbus sub URL PATTERN...`) or by spawning a stdio server (`mcpbus sub PATTERN... --
//! COMMAND...`).
//!
//! It connects as `--era` says, probing first with `auto`: a server of MCP 2026-07-28 is
//! subscribed to through the SEP-3415 events extension ([`crate::sub_modern`]: push by default,
//! `--poll` on request, resuming from `--cursor-file`), a handshake-era one (or `--era legacy`)
//! with `events/subscribe`, as before 2026-07-28 existed.

use std::path::PathBuf;

use mcpbus::client::{Client, Era};

use crate::connect::{self as reach, ConnectError};
use crate::cursor_file::{CursorFile, CursorFileError};
use crate::sub_modern;

/// Why `mcpbus sub` failed or stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SubError {
    #[error("usage: mcpbus sub URL PATTERN... (or PATTERN... -- COMMAND...)")]
    Usage,
    #[error(
        "{0:?} is not a URL: use `mcpbus sub URL PATTERN...`, or `mcpbus sub PATTERN... -- COMMAND...` for a stdio server"
    )]
    NotAUrl(String),
    #[error("no topic pattern given")]
    NoPattern,
    #[error("missing server command after --")]
    NoCommand,
    /// The server could not be reached.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("events/subscribe failed: {0}")]
    Subscribe(#[source] mcpbus::Error),
    #[error("no pattern was accepted")]
    NothingAccepted,
    #[error("the connection to the server ended")]
    ConnectionEnded,
    #[error("the server closed the connection")]
    ServerClosed,
    /// `--poll` or `--cursor-file` with a server (or `--era`) of the handshake era.
    #[error(
        "{0} needs the events extension of MCP 2026-07-28 (SEP-3415), and {1}: the handshake \
         era's events/subscribe neither polls nor resumes from a cursor"
    )]
    NeedsModern(&'static str, &'static str),
    #[error(transparent)]
    CursorFile(#[from] CursorFileError),
    /// `events/list` failed (e.g. a server without the events extension).
    #[error("cannot list the server's event types: {0}")]
    EventTypes(#[source] mcpbus::Error),
    /// The server ended every subscription.
    #[error("the server ended every subscription")]
    AllEnded,
    /// The webhook receiver cannot listen.
    #[error("cannot receive webhooks on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// `--webhook` for a stdio server, which has no principal to hold webhooks.
    #[error(
        "--webhook needs a server URL and --token: webhooks belong to an authenticated principal"
    )]
    WebhookNeedsToken,
}

/// The command line of `mcpbus sub`.
#[derive(Debug)]
pub(crate) struct SubArgs {
    /// The URL then patterns, or (with `command`) the patterns.
    pub(crate) args: Vec<String>,
    /// A stdio server's command line, after `--`.
    pub(crate) command: Vec<String>,
    pub(crate) era: Era,
    pub(crate) poll: bool,
    /// Long polls of this many seconds (implies `poll`).
    pub(crate) long_poll: Option<u64>,
    pub(crate) cursor_file: Option<PathBuf>,
    /// The bearer token of the HTTP endpoint (the principal to subscribe as).
    pub(crate) token: Option<String>,
    /// Webhook delivery to a receiver on this address.
    pub(crate) webhook: Option<std::net::SocketAddr>,
    /// The callback URL the server is given (default `http://ADDR/hook`).
    pub(crate) webhook_url: Option<String>,
}

impl SubArgs {
    /// The option that needs a 2026-07-28 server, if one was given.
    fn modern_only_option(&self) -> Option<&'static str> {
        if self.webhook.is_some() {
            Some("--webhook")
        } else if self.cursor_file.is_some() {
            Some("--cursor-file")
        } else if self.long_poll.is_some() {
            Some("--long-poll")
        } else if self.poll {
            Some("--poll")
        } else {
            None
        }
    }
}

/// Where the server is.
enum Server<'a> {
    Url(&'a str),
    Command(&'a [String]),
}

/// Runs `mcpbus sub` until SIGINT or SIGTERM (exit 0), or until the server goes away or
/// refuses everything (an error).
pub(crate) async fn run(a: SubArgs) -> Result<(), SubError> {
    let (server, patterns) = if a.command.is_empty() {
        let Some((url, patterns)) = a.args.split_first() else {
            return Err(SubError::Usage);
        };
        if !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(SubError::NotAUrl(url.clone()));
        }
        (Server::Url(url), patterns)
    } else {
        (Server::Command(&a.command), a.args.as_slice())
    };
    if patterns.is_empty() {
        return Err(SubError::NoPattern);
    }
    if a.era == Era::Legacy
        && let Some(option) = a.modern_only_option()
    {
        return Err(SubError::NeedsModern(option, "--era legacy was asked for"));
    }
    if a.webhook.is_some() && (a.token.is_none() || matches!(server, Server::Command(_))) {
        return Err(SubError::WebhookNeedsToken);
    }
    // Read before connecting: a bad file fails before anything happens.
    let cursors = a.cursor_file.as_deref().map(CursorFile::load).transpose()?;
    let client = connect(&server, a.era, a.token.as_deref()).await?;
    if client.era() == Era::Modern {
        let webhook = a.webhook.map(|listen| crate::sub_webhook::Webhook {
            listen,
            url: a.webhook_url.clone(),
        });
        let options = sub_modern::Options {
            poll: a.poll || a.long_poll.is_some(),
            long_poll: a.long_poll,
            cursors,
            webhook,
        };
        return sub_modern::run(&client, patterns, options, closed_error(&server)).await;
    }
    if let Some(option) = a.modern_only_option() {
        client.close().await;
        return Err(SubError::NeedsModern(
            option,
            "this server speaks only the handshake era",
        ));
    }
    subscribe_and_print(&client, patterns.to_vec()).await?;
    tokio::select! {
        _ = client.closed() => Err(closed_error(&server)),
        _ = crate::http::shutdown_signal() => {
            client.close().await;
            Ok(())
        }
    }
}

/// What it means when the connection ends by itself.
fn closed_error(server: &Server<'_>) -> SubError {
    match server {
        Server::Url(_) => SubError::ConnectionEnded,
        Server::Command(_) => SubError::ServerClosed,
    }
}

/// Connects in `era`. The event handler prints the handshake era's events; with `auto` the
/// client still probes first, so that a 2026-07-28 server is spoken to in its own era.
async fn connect(server: &Server<'_>, era: Era, token: Option<&str>) -> Result<Client, SubError> {
    let builder = Client::builder("mcpbus-sub", env!("CARGO_PKG_VERSION"))
        .on_event(|event| print_json(&event))
        .discover_first()
        .era(era);
    Ok(match server {
        Server::Url(url) => reach::to_url_as(builder, url, token).await?,
        Server::Command(words) => {
            let Some((program, args)) = words.split_first() else {
                return Err(SubError::NoCommand);
            };
            reach::to_command(builder, program, args).await?
        }
    })
}

/// Prints an event (or a retained value) as one JSON line.
pub(crate) fn print_json<T: serde::Serialize>(value: &T) {
    if let Ok(line) = serde_json::to_string(value) {
        println!("{line}");
    }
}

/// The handshake era: `events/subscribe`, the rejected patterns on stderr, the retained values
/// on stdout.
async fn subscribe_and_print(client: &Client, patterns: Vec<String>) -> Result<(), SubError> {
    let result = client
        .subscribe(patterns)
        .await
        .map_err(SubError::Subscribe)?;
    for rejected in &result.rejected {
        eprintln!(
            "mcpbus: rejected {:?}: {}",
            rejected.pattern, rejected.reason
        );
    }
    if result.subscribed.is_empty() {
        client.close().await;
        return Err(SubError::NothingAccepted);
    }
    for retained in &result.retained {
        print_json(retained);
    }
    Ok(())
}
