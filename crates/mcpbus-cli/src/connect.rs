//! How the client commands (`call`, `ls`, `events ls`, `sub`) reach a server: Streamable HTTP
//! at a URL, or a stdio server they spawn.

use mcpbus::client::{Client, ClientBuilder};
use mcpbus::transport::{ChildProcess, HttpClientConfig, HttpClientTransport};

/// Why a client command could not reach its server.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    /// The HTTP transport refuses the URL.
    #[error(transparent)]
    Transport(mcpbus::Error),
    /// The stdio server could not be started.
    #[error("cannot start {program:?}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// Connecting (era detection, `initialize` or `server/discover`) failed.
    #[error("cannot connect to {server}: {source}")]
    Connect {
        /// The URL, or the quoted program.
        server: String,
        /// Why.
        source: mcpbus::Error,
    },
}

/// Connects `builder` over Streamable HTTP to `url`.
pub(crate) async fn to_url(builder: ClientBuilder, url: &str) -> Result<Client, ConnectError> {
    to_url_as(builder, url, None).await
}

/// Connects `builder` over Streamable HTTP to `url`, with `Authorization: Bearer token` on
/// every request when a token is given (the server's principal for it).
pub(crate) async fn to_url_as(
    builder: ClientBuilder,
    url: &str,
    token: Option<&str>,
) -> Result<Client, ConnectError> {
    let mut config = HttpClientConfig::default();
    if let Some(token) = token {
        config
            .headers
            .push(("Authorization".into(), format!("Bearer {token}")));
    }
    let transport = HttpClientTransport::new(url, config).map_err(ConnectError::Transport)?;
    builder
        .connect(transport)
        .await
        .map_err(|source| ConnectError::Connect {
            server: url.to_owned(),
            source,
        })
}

/// Spawns `program` with `args` as a stdio server and connects `builder` to it.
pub(crate) async fn to_command(
    builder: ClientBuilder,
    program: &str,
    args: &[String],
) -> Result<Client, ConnectError> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args);
    let transport = ChildProcess::spawn(cmd).map_err(|source| ConnectError::Spawn {
        program: program.to_owned(),
        source,
    })?;
    builder
        .connect(transport)
        .await
        .map_err(|source| ConnectError::Connect {
            server: format!("{program:?}"),
            source,
        })
}
