//! How the client commands (`call`, `ls`, `events ls`, `sub`) reach a server: Streamable HTTP
//! at a URL, or a stdio server they spawn.

use std::sync::OnceLock;

use mcpbus::client::{Client, ClientBuilder};
use mcpbus::transport::{ChildProcess, HttpClientConfig, HttpClientTransport};

use crate::login::{LoginArgs, LoginError};

/// The login options of this run's client command, set once by `main`. They are the same for
/// every client command and only matter where a URL is reached, so they are kept here rather
/// than threaded through each command's functions.
static LOGIN: OnceLock<LoginArgs> = OnceLock::new();

/// Sets the login options of the client command being run.
pub(crate) fn set_login(login: LoginArgs) {
    let _ = LOGIN.set(login);
}

/// Why a client command could not reach its server.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    /// The HTTP transport refuses the URL.
    #[error(transparent)]
    Transport(mcpbus::Error),
    /// Logging in cannot be set up.
    #[error(transparent)]
    Login(#[from] LoginError),
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
/// every request when a token is given (the server's principal for it); without one, logs in
/// when the server asks (OAuth, unless `--no-login`: see [`crate::login`]).
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
    } else {
        config.oauth = LOGIN.get().cloned().unwrap_or_default().oauth().await?;
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
