//! Logging in when a server asks (OAuth 2.1, `mcpbus::client::oauth`): the client commands
//! reaching a URL (`call`, `ls`, `events ls`, `sub`) answer a `401` challenge with the
//! authorization code grant. The authorization URL is printed on stderr; the browser comes back
//! to a listener on 127.0.0.1 (a random port, open for the command's lifetime) that reads the
//! code. Registrations and tokens are kept in a file (0600) under the user's configuration
//! directory, so that the next command does not ask again.

use std::path::PathBuf;
use std::sync::Arc;

use mcpbus::client::oauth::{
    AuthorizationRequest, FileTokenStore, MemoryTokenStore, OAuthConfig, PreRegisteredClient,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The login options of the client commands.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct LoginArgs {
    /// A client id registered with the server's authorization server (else the client
    /// registers itself where the server allows it).
    #[arg(long, env = "MCPBUS_OAUTH_CLIENT_ID", value_name = "ID")]
    pub(crate) oauth_client_id: Option<String>,
    /// The secret of --oauth-client-id, for a confidential client.
    #[arg(
        long,
        env = "MCPBUS_OAUTH_CLIENT_SECRET",
        hide_env_values = true,
        value_name = "SECRET",
        requires = "oauth_client_id"
    )]
    pub(crate) oauth_client_secret: Option<String>,
    /// Scopes to ask for besides those the server asks for (repeat, or separate with spaces).
    #[arg(long = "oauth-scope", value_name = "SCOPE")]
    pub(crate) oauth_scopes: Vec<String>,
    /// Where logins are kept (default: mcpbus/oauth.json under $XDG_CONFIG_HOME, else
    /// ~/.config).
    #[arg(long, env = "MCPBUS_OAUTH_STORE", value_name = "FILE")]
    pub(crate) oauth_store: Option<PathBuf>,
    /// Never log in: a server asking for authorization is an error.
    #[arg(long)]
    pub(crate) no_login: bool,
}

/// Why logging in cannot be set up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoginError {
    /// The loopback listener cannot be opened.
    #[error("cannot listen on 127.0.0.1 for the login redirect: {0}")]
    Listen(std::io::Error),
    /// The options are inconsistent.
    #[error("{0}")]
    Invalid(String),
}

/// The default file of logins: `mcpbus/oauth.json` in the user's configuration directory.
fn default_store() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("APPDATA").map(PathBuf::from))
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("mcpbus").join("oauth.json"))
}

impl LoginArgs {
    /// The OAuth configuration of a transport, or `None` with `--no-login`. Opens the loopback
    /// listener the redirect comes back to.
    pub(crate) async fn oauth(&self) -> Result<Option<OAuthConfig>, LoginError> {
        if self.no_login {
            return Ok(None);
        }
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(LoginError::Listen)?;
        let port = listener.local_addr().map_err(LoginError::Listen)?.port();
        let redirect_uri = format!("http://127.0.0.1:{port}/callback");
        let listener = Arc::new(tokio::sync::Mutex::new(listener));
        let mut config = OAuthConfig::authorization_code(redirect_uri, move |request| {
            let listener = listener.clone();
            async move { wait_for_callback(&listener, port, request).await }
        });
        config.client_name = "mcpbus-cli".into();
        config.scopes = self
            .oauth_scopes
            .iter()
            .flat_map(|s| s.split_ascii_whitespace())
            .map(str::to_owned)
            .collect();
        if let Some(id) = &self.oauth_client_id {
            let mut client = PreRegisteredClient::new(id);
            client.client_secret = self.oauth_client_secret.clone();
            config.client = Some(client);
        }
        config = match self.oauth_store.clone().or_else(default_store) {
            Some(path) => config.with_store(FileTokenStore::new(path)),
            None => {
                tracing::debug!("no configuration directory: logins last for this command only");
                config.with_store(MemoryTokenStore::new())
            }
        };
        config
            .validate()
            .map_err(|e| LoginError::Invalid(e.to_string()))?;
        Ok(Some(config))
    }
}

/// Prints the authorization URL, then serves the loopback listener until the browser comes
/// back with this authorization's `state`; returns the callback URL.
async fn wait_for_callback(
    listener: &tokio::sync::Mutex<TcpListener>,
    port: u16,
    request: AuthorizationRequest,
) -> Result<String, String> {
    eprintln!(
        "mcpbus: the server asks you to log in. Open this address in a browser:\n\n  {}\n\n\
         mcpbus: waiting for the browser to come back to {}",
        request.url, request.redirect_uri
    );
    let listener = listener.lock().await;
    loop {
        let (mut tcp, _) = listener
            .accept()
            .await
            .map_err(|e| format!("the login listener failed: {e}"))?;
        let Some(target) = read_request_target(&mut tcp).await else {
            continue;
        };
        let expected = format!("state={}", request.state);
        let ours = target.starts_with("/callback?")
            && target
                .split(['?', '&'])
                .any(|pair| pair == expected.as_str());
        let (status, page) = if ours {
            (
                "200 OK",
                "Logged in: you can close this window and go back to mcpbus.",
            )
        } else {
            (
                "404 Not Found",
                "This is not the login mcpbus is waiting for.",
            )
        };
        let answer = format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{page}",
            page.len()
        );
        let _ = tcp.write_all(answer.as_bytes()).await;
        let _ = tcp.shutdown().await;
        if ours {
            return Ok(format!("http://127.0.0.1:{port}{target}"));
        }
    }
}

/// The request target of an HTTP/1.1 `GET` (the head read up to 8 KiB, with a time bound so
/// that an idle connection cannot hold the listener).
async fn read_request_target(tcp: &mut tokio::net::TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let reading = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
            let n = tcp.read(&mut buf).await.ok()?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Some(())
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), reading)
        .await
        .ok()??;
    let text = String::from_utf8_lossy(&head);
    let mut words = text.lines().next()?.split(' ');
    (words.next()? == "GET").then_some(())?;
    words.next().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_listener_returns_the_callback_with_our_state_only() {
        let args = LoginArgs {
            oauth_store: Some(std::env::temp_dir().join("mcpbus-login-unused.json")),
            oauth_scopes: vec!["a b".into(), "c".into()],
            ..LoginArgs::default()
        };
        let config = args.oauth().await.unwrap().unwrap();
        assert_eq!(config.scopes, ["a", "b", "c"]);
        let redirect = config.redirect_uri.clone();
        assert!(redirect.starts_with("http://127.0.0.1:"), "{redirect}");
        let mcpbus::client::oauth::Grant::AuthorizationCode(handler) = &config.grant else {
            panic!("not the authorization code grant");
        };
        let waiting = handler.authorize(AuthorizationRequest {
            url: "http://127.0.0.1:1/authorize".into(),
            redirect_uri: redirect.clone(),
            state: "s1".into(),
        });
        let waiting = tokio::spawn(waiting);
        let addr = redirect
            .trim_start_matches("http://")
            .trim_end_matches("/callback")
            .to_owned();
        let get = |target: &'static str| {
            let addr = addr.clone();
            async move {
                let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
                let head = format!("GET {target} HTTP/1.1\r\nhost: x\r\n\r\n");
                tcp.write_all(head.as_bytes()).await.unwrap();
                let mut answer = String::new();
                tcp.read_to_string(&mut answer).await.unwrap();
                answer
            }
        };
        assert!(get("/favicon.ico").await.starts_with("HTTP/1.1 404"));
        assert!(
            get("/callback?code=c&state=other")
                .await
                .starts_with("HTTP/1.1 404")
        );
        assert!(
            get("/callback?code=c&state=s1")
                .await
                .starts_with("HTTP/1.1 200")
        );
        let callback = waiting.await.unwrap().unwrap();
        assert_eq!(callback, format!("{redirect}?code=c&state=s1"));
    }

    #[tokio::test]
    async fn no_login_means_no_oauth() {
        let args = LoginArgs {
            no_login: true,
            ..LoginArgs::default()
        };
        assert!(args.oauth().await.unwrap().is_none());
        let bad = LoginArgs {
            oauth_client_id: Some(String::new()),
            ..LoginArgs::default()
        };
        let e = bad.oauth().await.unwrap_err();
        assert!(e.to_string().contains("client id is empty"), "{e}");
    }
}
