//! A real OAuth 2.1 authorization server for the tests: [`AuthServer`] runs
//! `tests/auth/provider.mjs` (panva's certified `oidc-provider`, pinned in
//! `tests/auth/package.json`) under Node on a free loopback port, and mints tokens from it without
//! a browser: client credentials, the authorization code flow with PKCE (the server approves by
//! itself, as the account named by `login_hint`), refresh, dynamic registration, introspection,
//! revocation, and a signing-key rotation on demand. Killed when dropped.
//!
//! Node comes from `MCPBUS_NODE` (see [`crate::interop::node`]), `oidc-provider` from `npm ci` in
//! `tests/auth`; `bash scripts/test.sh` installs both. Without them [`AuthServer::start`] fails
//! saying how to fix it. The clients, scopes and token shapes are listed in
//! `tests/auth/README.md` and by the constants of this module.
//!
//! Every method is blocking and may be called from anywhere, async tests included: each request
//! runs on a thread of its own.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use http::Method;
use serde_json::{Value, json};

use crate::http::{Answer, HttpClient, block_on};
use crate::interop::{node, node_version, pinned_npm_package};
use crate::oidc_codec::{basic_auth, form_encode, pkce_pair, query_param, unique_token};
use crate::process::{ChildGuard, line_channel, repo_root};

pub use crate::oidc_codec::decode_jwt;

/// The scopes every resource server (any loopback URL given as RFC 8707 `resource`) accepts.
pub const SCOPES: [&str; 4] = [
    "mcp",
    "events:subscribe",
    "events:publish",
    "events:webhook",
];

/// The account of an authorization request without `login_hint`.
pub const DEFAULT_ACCOUNT: &str = "agent-a";

/// The `login_hint` for which the test user refuses: the redirect carries
/// `error=access_denied`.
pub const DENYING_ACCOUNT: &str = "deny";

/// The redirect URI [`AuthServer::authorization_code`] uses for [`PUBLIC_CLIENT`] (registered
/// without a port; as a native client's loopback URI it also matches with any port).
pub const PUBLIC_REDIRECT_URI: &str = "http://127.0.0.1/callback";

/// The lifetime (seconds) of the tokens of the `*-expiring*` clients.
pub const SHORT_TTL_SECS: u64 = 2;

/// How long the server may take to print its address (Node starts, an RSA key is generated).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The most redirects [`AuthServer::follow_authorization`] follows.
const MAX_REDIRECTS: usize = 10;

/// An OAuth client of the test server: its id and, for a confidential one, its secret
/// (`client_secret_basic`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    /// `client_id`.
    pub id: Cow<'static, str>,
    /// `client_secret`; `None` for a public client (`token_endpoint_auth_method: none`).
    pub secret: Option<Cow<'static, str>>,
}

impl Client {
    /// A static client of `tests/auth/provider.mjs`.
    pub const fn fixed(id: &'static str, secret: Option<&'static str>) -> Client {
        let secret = match secret {
            Some(s) => Some(Cow::Borrowed(s)),
            None => None,
        };
        Client {
            id: Cow::Borrowed(id),
            secret,
        }
    }

    /// A client known at run time (one registered with [`AuthServer::register_client`]).
    pub fn new(id: impl Into<String>, secret: Option<String>) -> Client {
        Client {
            id: Cow::Owned(id.into()),
            secret: secret.map(Cow::Owned),
        }
    }

    /// The `Authorization` header of a confidential client and, for a public one, the
    /// `client_id` form field to add instead.
    fn authenticate(&self) -> (Option<String>, Option<(&'static str, &str)>) {
        match &self.secret {
            Some(secret) => (Some(basic_auth(&self.id, secret)), None),
            None => (None, Some(("client_id", &self.id))),
        }
    }
}

/// Client credentials for agent-a: JWT access tokens with `sub` `agent-a`, valid an hour.
pub const AGENT_A: Client = Client::fixed("agent-a", Some("agent-a-secret"));
/// Client credentials for agent-b: JWT access tokens with `sub` `agent-b`.
pub const AGENT_B: Client = Client::fixed("agent-b", Some("agent-b-secret"));
/// Client credentials for agent-c: JWT access tokens with `sub` `agent-c`.
pub const AGENT_C: Client = Client::fixed("agent-c", Some("agent-c-secret"));
/// Client credentials for agent-a with opaque access tokens (introspection gives `sub`
/// `agent-a`, `client_id` `agent-a-opaque`).
pub const AGENT_A_OPAQUE: Client = Client::fixed("agent-a-opaque", Some("agent-a-opaque-secret"));
/// Client credentials for agent-b with opaque access tokens.
pub const AGENT_B_OPAQUE: Client = Client::fixed("agent-b-opaque", Some("agent-b-opaque-secret"));
/// Client credentials for agent-a: JWT access tokens that expire after [`SHORT_TTL_SECS`].
pub const AGENT_A_EXPIRING: Client =
    Client::fixed("agent-a-expiring", Some("agent-a-expiring-secret"));
/// Client credentials for agent-a: opaque access tokens that expire after [`SHORT_TTL_SECS`].
pub const AGENT_A_EXPIRING_OPAQUE: Client = Client::fixed(
    "agent-a-expiring-opaque",
    Some("agent-a-expiring-opaque-secret"),
);
/// mcpbus as a resource server: introspects any token (RFC 7662); requests none.
pub const RESOURCE_SERVER: Client = Client::fixed("mcpbus-rs", Some("mcpbus-rs-secret"));
/// A public native client for the authorization code flow with PKCE (and refresh tokens);
/// redirect URIs `http://127.0.0.1/callback`, `http://localhost/callback`,
/// `http://[::1]/callback`, any port.
pub const PUBLIC_CLIENT: Client = Client::fixed("mcp-public", None);

/// An access token as the token endpoint returned it.
#[derive(Clone, Debug)]
pub struct Token {
    /// `access_token`: a JWT or an opaque string, depending on the client.
    pub access_token: String,
    /// `expires_in` (seconds).
    pub expires_in: u64,
    /// `scope`, as granted.
    pub scope: Option<String>,
    /// `refresh_token` (authorization code flow only).
    pub refresh_token: Option<String>,
    /// The client it was issued to (which may revoke it).
    pub client: Client,
    /// The whole token response.
    pub response: Value,
}

impl Token {
    fn from_response(response: Value, client: &Client) -> Token {
        let text = |name: &str| response[name].as_str().map(str::to_string);
        Token {
            access_token: text("access_token")
                .unwrap_or_else(|| panic!("no access_token in {response}")),
            expires_in: response["expires_in"].as_u64().unwrap_or_default(),
            scope: text("scope"),
            refresh_token: text("refresh_token"),
            client: client.clone(),
            response,
        }
    }

    /// `Bearer TOKEN`, for an `Authorization` header.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.access_token)
    }

    /// Whether the access token is a JWT (else it is opaque).
    pub fn is_jwt(&self) -> bool {
        decode_jwt(&self.access_token).is_some()
    }

    /// The JWT's header; panics if the token is opaque.
    pub fn header(&self) -> Value {
        self.decoded().0
    }

    /// The JWT's claims (not verified); panics if the token is opaque.
    pub fn claims(&self) -> Value {
        self.decoded().1
    }

    /// The `kid` of the JWT's header; panics if there is none.
    pub fn kid(&self) -> String {
        let header = self.header();
        header["kid"]
            .as_str()
            .unwrap_or_else(|| panic!("no kid in {header}"))
            .to_string()
    }

    fn decoded(&self) -> (Value, Value) {
        decode_jwt(&self.access_token)
            .unwrap_or_else(|| panic!("not a JWT: {:?}", self.access_token))
    }
}

/// How to start an [`AuthServer`].
#[derive(Clone, Debug, Default)]
pub struct AuthServerOptions {
    /// A path for the issuer (`/tenant-b`: the issuer is `http://127.0.0.1:PORT/tenant-b`, with
    /// RFC 8414 metadata at `/.well-known/oauth-authorization-server/tenant-b`).
    pub issuer_path: Option<String>,
    /// Sign with the key of another server ([`AuthServer::keys_file`]): its tokens then carry a
    /// signature the other's JWKS verifies, for "right key, wrong issuer" tests.
    pub keys_file: Option<PathBuf>,
}

/// A running `tests/auth/provider.mjs`; killed, and its directory removed, when dropped.
#[derive(Debug)]
pub struct AuthServer {
    port: u16,
    issuer: String,
    keys_file: PathBuf,
    dir: PathBuf,
    log: Arc<Mutex<String>>,
    guard: ChildGuard,
}

impl AuthServer {
    /// Starts one with an issuer without path, signing with a key of its own.
    pub fn start() -> AuthServer {
        Self::start_with(AuthServerOptions::default())
    }

    /// Starts one as `options` says; waits until it listens.
    pub fn start_with(options: AuthServerOptions) -> AuthServer {
        let dir = repo_root().join("tests/auth");
        pinned_npm_package(&dir, "oidc-provider");
        let node = node();
        // Fails saying how to install Node when it does not run.
        node_version(&node);
        let tmp = private_dir();
        let keys_file = options.keys_file.unwrap_or_else(|| tmp.join("jwks.json"));
        let mut cmd = Command::new(node);
        cmd.arg(dir.join("provider.mjs"))
            .arg("--keys-file")
            .arg(&keys_file)
            .arg("--exit-with-stdin")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(path) = &options.issuer_path {
            cmd.arg("--issuer-path").arg(path);
        }
        let mut guard = ChildGuard::spawn(&mut cmd, "tests/auth/provider.mjs");
        let lines = line_channel(guard.child.stdout.take().expect("piped stdout"));
        let log = collect_log(guard.child.stderr.take().expect("piped stderr"));
        let ready = wait_ready(&mut guard, &lines, &log);
        AuthServer {
            port: port_of(&ready),
            issuer: ready["issuer"].as_str().expect("issuer").to_string(),
            keys_file,
            dir: tmp,
            log,
            guard,
        }
    }

    /// The issuer identifier (`iss` of its tokens).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Its loopback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The RFC 8414 metadata URL: `/.well-known/oauth-authorization-server` inserted before the
    /// issuer's path.
    pub fn metadata_url(&self) -> String {
        let path = &self.issuer[self.base_url().len()..];
        format!(
            "{}/.well-known/oauth-authorization-server{path}",
            self.base_url()
        )
    }

    /// The OpenID Connect discovery URL: the issuer + `/.well-known/openid-configuration`.
    pub fn openid_configuration_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// The authorization server metadata (fetched from [`metadata_url`](Self::metadata_url)).
    pub fn metadata(&self) -> Value {
        self.get_json(&self.metadata_url())
    }

    /// The OpenID Connect discovery document (the same metadata).
    pub fn openid_configuration(&self) -> Value {
        self.get_json(&self.openid_configuration_url())
    }

    /// `jwks_uri` (the issuer + `/jwks`, as the metadata says).
    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.issuer)
    }

    /// The public keys served now.
    pub fn jwks(&self) -> Value {
        self.get_json(&self.jwks_uri())
    }

    /// The `kid`s served now.
    pub fn kids(&self) -> Vec<String> {
        let jwks = self.jwks();
        let keys = jwks["keys"].as_array().cloned().unwrap_or_default();
        keys.iter()
            .filter_map(|k| k["kid"].as_str().map(str::to_string))
            .collect()
    }

    /// The token endpoint.
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.issuer)
    }

    /// The authorization endpoint.
    pub fn authorization_endpoint(&self) -> String {
        format!("{}/auth", self.issuer)
    }

    /// The RFC 7662 introspection endpoint.
    pub fn introspection_endpoint(&self) -> String {
        format!("{}/token/introspection", self.issuer)
    }

    /// The RFC 7009 revocation endpoint.
    pub fn revocation_endpoint(&self) -> String {
        format!("{}/token/revocation", self.issuer)
    }

    /// The RFC 7591 registration endpoint.
    pub fn registration_endpoint(&self) -> String {
        format!("{}/reg", self.issuer)
    }

    /// The file holding its private signing key, to start another server that signs with the
    /// same key ([`AuthServerOptions::keys_file`]). Rewritten by [`rotate_keys`](Self::rotate_keys).
    pub fn keys_file(&self) -> &Path {
        &self.keys_file
    }

    /// Kills it at once (SIGKILL), e.g. to test a resource server whose authorization server is
    /// down; every later request to it fails.
    pub fn kill(&mut self) {
        let _ = self.guard.child.kill();
        let _ = self.guard.child.wait();
    }

    /// Everything it wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("the log lock").clone()
    }

    /// One form POST to the token endpoint as `client`; the answer as it is (for tests of
    /// refusals). `client_id` is added for a public client.
    pub fn token_request(&self, client: &Client, form: &[(&str, &str)]) -> Answer {
        self.post_form(&self.token_endpoint(), client, form)
    }

    /// A client-credentials token of `client` for `resource` with `scopes`; panics unless
    /// issued.
    pub fn client_credentials(&self, client: &Client, scopes: &[&str], resource: &str) -> Token {
        let scope = scopes.join(" ");
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", scope.as_str()),
            ("resource", resource),
        ];
        self.token(client, &form)
    }

    /// A JWT of agent-a ([`AGENT_A_EXPIRING`]) that expires after [`SHORT_TTL_SECS`].
    pub fn expiring_token(&self, scopes: &[&str], resource: &str) -> Token {
        self.client_credentials(&AGENT_A_EXPIRING, scopes, resource)
    }

    /// An opaque token of agent-a ([`AGENT_A_OPAQUE`]), for introspection.
    pub fn opaque_token(&self, scopes: &[&str], resource: &str) -> Token {
        self.client_credentials(&AGENT_A_OPAQUE, scopes, resource)
    }

    /// The authorization code flow with PKCE for [`PUBLIC_CLIENT`], logged in as `login_hint`:
    /// a JWT with `sub` = `login_hint`, and a refresh token.
    pub fn authorization_code(&self, login_hint: &str, scopes: &[&str], resource: &str) -> Token {
        self.authorization_code_as(
            &PUBLIC_CLIENT,
            PUBLIC_REDIRECT_URI,
            login_hint,
            scopes,
            resource,
        )
    }

    /// The authorization code flow with PKCE for any client (a registered one, say): authorize,
    /// follow the redirects to `redirect_uri`, check `state` and `iss`, redeem the code.
    pub fn authorization_code_as(
        &self,
        client: &Client,
        redirect_uri: &str,
        login_hint: &str,
        scopes: &[&str],
        resource: &str,
    ) -> Token {
        let (verifier, challenge) = pkce_pair();
        let state = unique_token();
        let scope = scopes.join(" ");
        let query = form_encode(&[
            ("response_type", "code"),
            ("client_id", &client.id),
            ("redirect_uri", redirect_uri),
            ("scope", &scope),
            ("resource", resource),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("state", &state),
            ("login_hint", login_hint),
        ]);
        let url = format!("{}?{query}", self.authorization_endpoint());
        let back = self.follow_authorization(&url, redirect_uri);
        assert_eq!(query_param(&back, "state"), Some(state), "state of {back}");
        assert_eq!(
            query_param(&back, "iss").as_deref(),
            Some(self.issuer()),
            "iss of {back}"
        );
        let code =
            query_param(&back, "code").unwrap_or_else(|| panic!("no code in the redirect {back}"));
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier.as_str()),
            ("resource", resource),
        ];
        self.token(client, &form)
    }

    /// Follows the redirects of an authorization request `url` (one an SDK client built, say)
    /// through the auto-approving login, without cookies, until one leads to `redirect_uri`; that
    /// URL (with `code` and `state`, or `error`). Never requests `redirect_uri` itself; panics on
    /// an answer that is not a redirect, or on one that leaves this server otherwise.
    pub fn follow_authorization(&self, url: &str, redirect_uri: &str) -> String {
        let mut url = url.to_string();
        for _ in 0..MAX_REDIRECTS {
            assert!(
                url.starts_with(&self.base_url()),
                "the authorization flow left the server for {url}"
            );
            let answer = http_call(Method::GET, &url, &[], b"");
            let location = answer.header("location").unwrap_or_else(|| {
                panic!(
                    "GET {url}: {} without Location: {}",
                    answer.status,
                    answer.text()
                )
            });
            url = match location.strip_prefix('/') {
                Some(path) => format!("{}/{path}", self.base_url()),
                None => location.to_string(),
            };
            if url.starts_with(redirect_uri) {
                return url;
            }
        }
        panic!("no redirect to {redirect_uri} after {MAX_REDIRECTS} redirects (at {url})")
    }

    /// A new access token (and refresh token) from `token`'s refresh token, for `resource`.
    pub fn refresh(&self, token: &Token, resource: &str) -> Token {
        let refresh = token.refresh_token.as_deref().expect("a refresh token");
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("resource", resource),
        ];
        self.token(&token.client, &form)
    }

    /// Registers a client (RFC 7591) with `metadata`, as an SDK client does; the client and the
    /// whole registration response. Panics unless created.
    pub fn register_client(&self, metadata: &Value) -> (Client, Value) {
        let body = metadata.to_string();
        let headers = [("content-type", "application/json")];
        let answer = http_call(
            Method::POST,
            &self.registration_endpoint(),
            &headers,
            body.as_bytes(),
        );
        assert_eq!(
            answer.status,
            201,
            "registration refused: {}",
            answer.text()
        );
        let response = answer.json();
        let id = response["client_id"].as_str().expect("client_id");
        let secret = response["client_secret"].as_str().map(str::to_string);
        (Client::new(id, secret), response)
    }

    /// RFC 7662 introspection of `token` as [`RESOURCE_SERVER`]: `{"active": true, ...}` or
    /// `{"active": false}`.
    pub fn introspect(&self, token: &str) -> Value {
        let answer = self.post_form(
            &self.introspection_endpoint(),
            &RESOURCE_SERVER,
            &[("token", token)],
        );
        assert_eq!(answer.status, 200, "introspection: {}", answer.text());
        answer.json()
    }

    /// Revokes `token` (RFC 7009) as the client it was issued to.
    pub fn revoke(&self, token: &Token) {
        let form = [
            ("token", token.access_token.as_str()),
            ("token_type_hint", "access_token"),
        ];
        let answer = self.post_form(&self.revocation_endpoint(), &token.client, &form);
        assert_eq!(answer.status, 200, "revocation: {}", answer.text());
    }

    /// Replaces the signing key (`POST /admin/rotate-keys`): a new `kid` signs every token from
    /// now on and the old key is no longer in the JWKS; port, issuer and issued opaque tokens
    /// stay. Returns the new `kid`.
    pub fn rotate_keys(&self) -> String {
        let url = format!("{}/admin/rotate-keys", self.base_url());
        let answer = http_call(Method::POST, &url, &[], b"");
        assert_eq!(answer.status, 200, "rotate-keys: {}", answer.text());
        answer.json()["kid"].as_str().expect("kid").to_string()
    }

    /// A token from the token endpoint; panics with the refusal unless it is a 200.
    fn token(&self, client: &Client, form: &[(&str, &str)]) -> Token {
        let answer = self.token_request(client, form);
        assert_eq!(
            answer.status,
            200,
            "the token endpoint refused {form:?} for {}: {}\nserver log:\n{}",
            client.id,
            answer.text(),
            self.log()
        );
        Token::from_response(answer.json(), client)
    }

    fn post_form(&self, url: &str, client: &Client, form: &[(&str, &str)]) -> Answer {
        let (authorization, client_field) = client.authenticate();
        let mut fields = form.to_vec();
        fields.extend(client_field);
        let body = form_encode(&fields);
        let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
        if let Some(value) = &authorization {
            headers.push(("authorization", value));
        }
        http_call(Method::POST, url, &headers, body.as_bytes())
    }

    fn get_json(&self, url: &str) -> Value {
        let answer = http_call(Method::GET, url, &[], b"");
        assert_eq!(answer.status, 200, "GET {url}: {}", answer.text());
        answer.json()
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One request on a thread of its own (so that it works inside an async test too).
fn http_call(method: Method, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    thread::scope(|s| {
        s.spawn(|| block_on(HttpClient::new(url).call(method, headers, body)))
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// A fresh directory under the system's temporary directory.
fn private_dir() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "mcpbus-oidc-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// The lines of `stderr`, gathered on a thread.
fn collect_log(stderr: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let log = Arc::new(Mutex::new(String::new()));
    let lines = line_channel(stderr);
    let sink = log.clone();
    thread::spawn(move || {
        for line in lines {
            let mut log = sink.lock().expect("the log lock");
            log.push_str(&line);
            log.push('\n');
        }
    });
    log
}

/// The JSON line the server prints once listening.
fn wait_ready(
    guard: &mut ChildGuard,
    lines: &mpsc::Receiver<String>,
    log: &Mutex<String>,
) -> Value {
    let deadline = Instant::now() + START_TIMEOUT;
    let log = || log.lock().expect("the log lock").clone();
    loop {
        match lines.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => {
                return serde_json::from_str(&line).unwrap_or_else(|e| {
                    panic!(
                        "provider.mjs printed {line:?}, not its JSON line ({e}):\n{}",
                        log()
                    )
                });
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = guard.wait_timeout(Duration::from_secs(5));
                panic!(
                    "provider.mjs exited ({status:?}) before listening:\n{}",
                    log()
                );
            }
            Err(mpsc::RecvTimeoutError::Timeout) => assert!(
                Instant::now() < deadline,
                "provider.mjs did not listen within {START_TIMEOUT:?}:\n{}",
                log()
            ),
        }
    }
}

fn port_of(ready: &Value) -> u16 {
    ready["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or_else(|| panic!("no port in {ready}"))
}

/// The metadata a dynamically registered public client sends (what the MCP SDKs send), for
/// [`AuthServer::register_client`].
pub fn public_client_metadata(redirect_uri: &str) -> Value {
    json!({
        "client_name": "mcpbus test client",
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "scope": SCOPES.join(" "),
    })
}
