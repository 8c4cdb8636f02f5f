//! `mcpbus ls URL` against a server that asks for OAuth: the authorization URL is printed on
//! stderr, the "browser" (this test) goes there and is redirected to the command's loopback
//! listener, the command gets its token and lists the tools; the next command finds the login
//! in the token store and asks nothing. With `--no-login` the `401` is an error.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mcpbus_testkit::run_bounded;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MCPBUS: &str = env!("CARGO_BIN_EXE_mcpbus");
const LIMIT: Duration = Duration::from_secs(30);

/// A resource server and its authorization server on one origin.
#[derive(Default)]
struct Mock {
    origin: Mutex<String>,
    /// Codes issued, with the redirect URI they were issued for.
    codes: Mutex<HashMap<String, String>>,
    /// Valid access tokens.
    tokens: Mutex<Vec<String>>,
    authorizations: Mutex<usize>,
}

type Shared = State<Arc<Mock>>;

fn origin(m: &Mock) -> String {
    m.origin.lock().unwrap().clone()
}

async fn resource_metadata(State(m): Shared) -> Response {
    let o = origin(&m);
    axum::Json(json!({"resource": format!("{o}/mcp"), "authorization_servers": [o]}))
        .into_response()
}

async fn server_metadata(State(m): Shared) -> Response {
    let o = origin(&m);
    axum::Json(json!({
        "issuer": o,
        "authorization_endpoint": format!("{o}/authorize"),
        "token_endpoint": format!("{o}/token"),
        "registration_endpoint": format!("{o}/register"),
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
    }))
    .into_response()
}

async fn register(body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["client_name"], "mcpbus-cli");
    let answer = json!({"client_id": "cli-client", "token_endpoint_auth_method": "none"});
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}

/// The user approves at once: back to the redirect URI with a code.
async fn authorize(State(m): Shared, uri: Uri) -> Response {
    let q = url_form(uri.query().unwrap_or_default().as_bytes());
    *m.authorizations.lock().unwrap() += 1;
    let code = format!("code-{}", m.codes.lock().unwrap().len());
    let redirect = q["redirect_uri"].clone();
    assert!(redirect.starts_with("http://127.0.0.1:"), "{redirect}");
    m.codes
        .lock()
        .unwrap()
        .insert(code.clone(), redirect.clone());
    let location = format!("{redirect}?code={code}&state={}", q["state"]);
    (StatusCode::FOUND, [("location", location)]).into_response()
}

async fn token(State(m): Shared, body: Bytes) -> Response {
    let form: HashMap<String, String> = url_form(&body);
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["client_id"], "cli-client");
    let redirect = m.codes.lock().unwrap().remove(&form["code"]).unwrap();
    assert_eq!(form["redirect_uri"], redirect);
    assert!(form["code_verifier"].len() >= 43);
    let token = format!("token-{}", m.tokens.lock().unwrap().len());
    m.tokens.lock().unwrap().push(token.clone());
    axum::Json(json!({"access_token": token, "token_type": "Bearer"})).into_response()
}

fn url_form(body: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), percent_decode(v)))
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.replace('+', " ").into_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

async fn mcp(State(m): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| m.tokens.lock().unwrap().iter().any(|known| known == t));
    if !authorized {
        let prm = format!("{}/.well-known/oauth-protected-resource/mcp", origin(&m));
        let challenge = format!(r#"Bearer resource_metadata="{prm}""#);
        return (StatusCode::UNAUTHORIZED, [("www-authenticate", challenge)]).into_response();
    }
    let message: Value = serde_json::from_slice(&body).unwrap();
    let result = match message["method"].as_str().unwrap_or_default() {
        "initialize" => json!({"protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                               "serverInfo": {"name": "login-mock", "version": "1"}}),
        "tools/list" => json!({"tools": [{"name": "t", "inputSchema": {"type": "object"}}]}),
        _ => return StatusCode::ACCEPTED.into_response(),
    };
    axum::Json(json!({"jsonrpc": "2.0", "id": message["id"], "result": result})).into_response()
}

async fn start() -> (Arc<Mock>, String) {
    let mock = Arc::new(Mock::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let o = format!("http://{}", listener.local_addr().unwrap());
    *mock.origin.lock().unwrap() = o.clone();
    let app = Router::new()
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(resource_metadata),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(server_metadata),
        )
        .route("/register", post(register))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/mcp", post(mcp))
        .with_state(mock.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (mock, format!("{o}/mcp"))
}

/// `GET url` (loopback only); returns the status line and the `Location`, if any.
async fn get_url(url: &str) -> (String, Option<String>) {
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, target) = rest.split_at(rest.find('/').unwrap());
    let mut tcp = tokio::net::TcpStream::connect(authority).await.unwrap();
    let head = format!("GET {target} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\n\r\n");
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    let status = answer.lines().next().unwrap_or_default().to_owned();
    let location = answer
        .lines()
        .find_map(|l| l.strip_prefix("location: ").map(str::to_owned));
    (status, location)
}

/// Kills the command if the test fails half-way.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ls(url: &str, store: &std::path::Path) -> Command {
    let mut cmd = Command::new(MCPBUS);
    cmd.args(["ls", url, "--era", "legacy", "--json", "--oauth-store"])
        .arg(store)
        .env("MCPBUS_LOG", "warn")
        .env_remove("MCPBUS_OAUTH_CLIENT_ID")
        .stdin(Stdio::null());
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn ls_logs_in_through_the_browser_once_and_reuses_the_login() {
    let (mock, url) = start().await;
    let dir = std::env::temp_dir().join(format!("mcpbus-login-cli-{}", std::process::id()));
    let store = dir.join("oauth.json");

    let mut cmd = ls(&url, &store);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut running = Running(cmd.spawn().unwrap());
    let stderr = running.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let address = tokio::task::spawn_blocking(move || {
        loop {
            let line = rx
                .recv_timeout(LIMIT)
                .expect("the authorization URL on stderr");
            if let Some(url) = line.trim().strip_prefix("http://") {
                return format!("http://{url}");
            }
        }
    })
    .await
    .unwrap();
    // The browser: the authorization server redirects to the command's loopback listener.
    let (status, location) = get_url(&address).await;
    assert!(status.contains("302"), "{status}");
    let (status, _) = get_url(&location.unwrap()).await;
    assert!(status.contains("200"), "{status}");
    let out = tokio::task::spawn_blocking(move || {
        let mut child = running.0.stdout.take().unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut child, &mut text).unwrap();
        (running.0.wait().unwrap(), text)
    })
    .await
    .unwrap();
    assert!(out.0.success(), "{out:?}");
    let listing: Value = serde_json::from_str(out.1.trim()).unwrap();
    assert_eq!(listing["tools"][0]["name"], "t");

    // The next command uses the stored login.
    let again = tokio::task::spawn_blocking({
        let (url, store) = (url.clone(), store.clone());
        move || run_bounded(ls(&url, &store), LIMIT, "mcpbus ls (logged in)")
    })
    .await
    .unwrap();
    assert!(again.status.success(), "{again:?}");
    assert!(!String::from_utf8_lossy(&again.stderr).contains("log in"));
    assert_eq!(*mock.authorizations.lock().unwrap(), 1);

    // --no-login: the 401 is an error, and no login is asked for.
    let fresh = dir.join("other.json");
    let refused = tokio::task::spawn_blocking(move || {
        let mut cmd = ls(&url, &fresh);
        cmd.arg("--no-login");
        run_bounded(cmd, LIMIT, "mcpbus ls --no-login")
    })
    .await
    .unwrap();
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("401") && !err.contains("log in"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
