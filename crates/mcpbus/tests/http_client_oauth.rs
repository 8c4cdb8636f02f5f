//! The HTTP client transport with OAuth (`HttpClientConfig::oauth`) against a small MCP resource
//! server and authorization server made for the test: the flow a `401` starts (discovery,
//! dynamic registration, authorization code with PKCE, token), step-up on `403
//! insufficient_scope`, refresh after the server revokes a token, tokens kept in a file store,
//! refusals the specification requires, and an authorization server over `https`.

#![allow(clippy::unwrap_used)] // tests unwrap to fail loudly

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mcpbus::client::oauth::{
    AuthorizationRequest, FileTokenStore, OAuthConfig, TokenStore, s256_challenge,
};
use mcpbus::client::{Client, Era};
use mcpbus::transport::{HttpClientConfig, HttpClientTransport};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(10);
const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// The resource server and the authorization server, and what they saw.
#[derive(Default)]
struct Mock {
    /// `http://127.0.0.1:PORT` of the resource server.
    origin: Mutex<String>,
    /// The authorization server's issuer (`…/as`).
    issuer: Mutex<String>,
    /// A `resource` to publish instead of the endpoint's.
    resource_override: Mutex<Option<String>>,
    /// Valid access tokens and their scopes.
    tokens: Mutex<HashMap<String, Vec<String>>>,
    refresh: Mutex<HashMap<String, Vec<String>>>,
    /// Codes issued.
    codes: Mutex<HashMap<String, Grant>>,
    /// What happened, in order.
    log: Mutex<Vec<String>>,
    issued: AtomicUsize,
    /// DPoP mode: the authorization server binds tokens, the resource server wants DPoP proofs
    /// carrying its nonce.
    dpop: AtomicBool,
}

impl Mock {
    fn log(&self, entry: impl Into<String>) {
        self.log.lock().unwrap().push(entry.into());
    }

    fn events(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn resource(&self) -> String {
        format!("{}/mcp", self.origin.lock().unwrap())
    }

    /// The authorization endpoint, played in-process: records the code's PKCE challenge,
    /// scopes and resource, and returns the callback.
    fn authorize(&self, request: &AuthorizationRequest) -> String {
        let url = url::Url::parse(&request.url).unwrap();
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["redirect_uri"], REDIRECT);
        assert_eq!(q["state"], request.state);
        let scopes: Vec<String> = q
            .get("scope")
            .map(|s| s.split(' ').map(str::to_owned).collect())
            .unwrap_or_default();
        self.log(format!("authorize {}", scopes.join(" ")));
        let code = format!("code-{}", self.issued.fetch_add(1, Ordering::SeqCst));
        let entry = (q["code_challenge"].clone(), scopes, q["resource"].clone());
        self.codes.lock().unwrap().insert(code.clone(), entry);
        let issuer = self.issuer.lock().unwrap().clone();
        let mut callback = url::Url::parse(REDIRECT).unwrap();
        callback
            .query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", &request.state)
            .append_pair("iss", &issuer);
        callback.to_string()
    }

    fn issue(&self, scopes: Vec<String>) -> Value {
        let n = self.issued.fetch_add(1, Ordering::SeqCst);
        let (access, refresh) = (format!("at-{n}"), format!("rt-{n}"));
        self.tokens
            .lock()
            .unwrap()
            .insert(access.clone(), scopes.clone());
        self.refresh
            .lock()
            .unwrap()
            .insert(refresh.clone(), scopes.clone());
        json!({"access_token": access, "token_type": "Bearer", "expires_in": 3600,
               "refresh_token": refresh, "scope": scopes.join(" ")})
    }

    fn revoke_all(&self) {
        self.tokens.lock().unwrap().clear();
    }
}

/// What an authorization code stands for: its PKCE challenge, scopes and resource.
type Grant = (String, Vec<String>, String);

type Shared = State<Arc<Mock>>;

async fn protected_resource(State(m): Shared) -> Response {
    let resource = m.resource_override.lock().unwrap().clone();
    axum::Json(json!({
        "resource": resource.unwrap_or_else(|| m.resource()),
        "authorization_servers": [m.issuer.lock().unwrap().clone()],
        "scopes_supported": ["read"],
    }))
    .into_response()
}

async fn as_metadata(State(m): Shared) -> Response {
    let issuer = m.issuer.lock().unwrap().clone();
    axum::Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "registration_endpoint": format!("{issuer}/register"),
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "authorization_response_iss_parameter_supported": true,
        "dpop_signing_alg_values_supported":
            if m.dpop.load(Ordering::SeqCst) { json!(["ES256"]) } else { Value::Null },
    }))
    .into_response()
}

/// The claims of a JWT (unverified: the library's own tests check signatures).
fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let part = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn register(State(m): Shared, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["redirect_uris"], json!([REDIRECT]));
    assert_eq!(body["application_type"], "native");
    m.log("register");
    let answer = json!({"client_id": "c1", "client_secret": "s1"});
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}

async fn token(State(m): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let basic = format!("Basic {}", base64_encode(b"c1:s1"));
    assert_eq!(headers["authorization"], basic.as_str());
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    assert_eq!(form["resource"], m.resource());
    let grant = form["grant_type"].as_str();
    m.log(format!("token {grant}"));
    let scopes = match grant {
        "authorization_code" => {
            let (challenge, scopes, resource) =
                m.codes.lock().unwrap().remove(&form["code"]).unwrap();
            assert_eq!(s256_challenge(&form["code_verifier"]), challenge);
            assert_eq!(resource, form["resource"]);
            assert_eq!(form["redirect_uri"], REDIRECT);
            scopes
        }
        "refresh_token" => match m.refresh.lock().unwrap().remove(&form["refresh_token"]) {
            Some(scopes) => scopes,
            None => {
                let refused = json!({"error": "invalid_grant"});
                return (StatusCode::BAD_REQUEST, axum::Json(refused)).into_response();
            }
        },
        other => panic!("unexpected grant {other}"),
    };
    let mut answer = m.issue(scopes);
    // Without a proof the token is a plain Bearer one, as RFC 9449 section 5 has it.
    if let Some(proof) = headers
        .get("dpop")
        .filter(|_| m.dpop.load(Ordering::SeqCst))
    {
        let proof = claims(proof.to_str().unwrap());
        assert_eq!(proof["htm"], "POST");
        assert_eq!(proof["htu"], format!("{}/token", m.issuer.lock().unwrap()));
        answer["token_type"] = json!("DPoP");
    }
    axum::Json(answer).into_response()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The MCP endpoint: every request needs a token with `read`; `tools/call` also `write`.
async fn mcp(State(m): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let message: Value = serde_json::from_slice(&body).unwrap();
    let method = message["method"].as_str().unwrap_or_default().to_owned();
    let prm = format!(
        "{}/.well-known/oauth-protected-resource/mcp",
        m.origin.lock().unwrap()
    );
    let dpop = m.dpop.load(Ordering::SeqCst);
    let scheme = if dpop { "DPoP" } else { "Bearer" };
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix(&format!("{scheme} ")));
    let scopes = bearer.and_then(|t| m.tokens.lock().unwrap().get(t).cloned());
    let Some(scopes) = scopes else {
        m.log(format!("401 {method}"));
        let challenge = format!(r#"{scheme} resource_metadata="{prm}", scope="read""#);
        return (StatusCode::UNAUTHORIZED, [("www-authenticate", challenge)]).into_response();
    };
    if dpop && let Some(refusal) = check_proof(&m, &headers, bearer.unwrap_or_default(), &method) {
        return refusal;
    }
    if method == "tools/call" && !scopes.iter().any(|s| s == "write") {
        m.log(format!("403 {method}"));
        let challenge = format!(
            r#"Bearer error="insufficient_scope", scope="write", resource_metadata="{prm}""#
        );
        return (StatusCode::FORBIDDEN, [("www-authenticate", challenge)]).into_response();
    }
    let result = match method.as_str() {
        "initialize" => json!({"protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                               "serverInfo": {"name": "mock", "version": "1"}}),
        "tools/list" => json!({"tools": [{"name": "t", "inputSchema": {"type": "object"}}]}),
        "tools/call" => json!({"content": [{"type": "text", "text": "ok"}]}),
        _ => return StatusCode::ACCEPTED.into_response(),
    };
    axum::Json(json!({"jsonrpc": "2.0", "id": message["id"], "result": result})).into_response()
}

/// Checks the DPoP proof of a request to the MCP endpoint; refuses once with the server's nonce
/// (RFC 9449 section 9) until the proof carries it.
fn check_proof(m: &Mock, headers: &HeaderMap, token: &str, method: &str) -> Option<Response> {
    use sha2::Digest;
    let proof = claims(headers["dpop"].to_str().unwrap());
    assert_eq!(proof["htm"], "POST");
    assert_eq!(proof["htu"], m.resource());
    let ath = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(token))
    };
    assert_eq!(proof["ath"], ath.as_str());
    if proof["nonce"] == "rs-nonce" {
        return None;
    }
    m.log(format!("nonce {method}"));
    let challenge = r#"DPoP error="use_dpop_nonce""#;
    let headers = [("www-authenticate", challenge), ("dpop-nonce", "rs-nonce")];
    Some((StatusCode::UNAUTHORIZED, headers).into_response())
}

fn routes(mock: Arc<Mock>) -> Router {
    Router::new()
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(protected_resource),
        )
        .route(
            "/.well-known/oauth-authorization-server/as",
            get(as_metadata),
        )
        .route("/as/register", post(register))
        .route("/as/token", post(token))
        .route("/mcp", post(mcp))
        .fallback(|uri: Uri| async move { (StatusCode::NOT_FOUND, uri.to_string()) })
        .with_state(mock)
}

/// Serves the mock on 127.0.0.1; the authorization server lives under `/as` of the same origin.
async fn start() -> Arc<Mock> {
    let mock = Arc::new(Mock::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    *mock.issuer.lock().unwrap() = format!("{origin}/as");
    *mock.origin.lock().unwrap() = origin;
    let app = routes(mock.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    mock
}

/// An authorization code configuration whose redirect handler is the mock's authorization
/// endpoint; counts the authorizations.
fn oauth(mock: &Arc<Mock>, count: &Arc<AtomicUsize>) -> OAuthConfig {
    let (mock, count) = (mock.clone(), count.clone());
    OAuthConfig::authorization_code(REDIRECT, move |request: AuthorizationRequest| {
        count.fetch_add(1, Ordering::SeqCst);
        let callback = mock.authorize(&request);
        async move { Ok(callback) }
    })
}

async fn connect(mock: &Mock, oauth: OAuthConfig) -> mcpbus::Result<Client> {
    let config = HttpClientConfig {
        open_get_stream: false,
        oauth: Some(oauth),
        ..HttpClientConfig::default()
    };
    let transport = HttpClientTransport::new(&mock.resource(), config)?;
    let connecting = Client::builder("oauth-test", "1")
        .era(Era::Legacy)
        .connect(transport);
    tokio::time::timeout(LIMIT, connecting).await.unwrap()
}

#[tokio::test]
async fn a_401_runs_the_flow_and_a_403_steps_up_with_the_union_of_scopes() {
    let mock = start().await;
    let count = Arc::new(AtomicUsize::new(0));
    let client = connect(&mock, oauth(&mock, &count)).await.unwrap();
    assert_eq!(client.list_tools().await.unwrap().len(), 1);
    let result = client.call_tool("t", json!({})).await.unwrap();
    assert_eq!(result.content[0].as_text(), Some("ok"));
    assert_eq!(
        mock.events(),
        [
            "401 initialize",
            "register",
            "authorize read",
            "token authorization_code",
            "403 tools/call",
            "authorize write read",
            "token authorization_code",
        ]
    );
    assert_eq!(count.load(Ordering::SeqCst), 2);
    client.close().await;
}

#[tokio::test]
async fn a_revoked_token_is_refreshed_without_asking_the_user_again() {
    let mock = start().await;
    let count = Arc::new(AtomicUsize::new(0));
    let client = connect(&mock, oauth(&mock, &count)).await.unwrap();
    // Once a request got through, notifications/initialized is behind us.
    client.list_tools().await.unwrap();
    mock.revoke_all();
    assert_eq!(client.list_tools().await.unwrap().len(), 1);
    let events = mock.events();
    assert_eq!(
        events[events.len() - 2..],
        ["401 tools/list", "token refresh_token"]
    );
    assert_eq!(count.load(Ordering::SeqCst), 1);
    // A refused refresh token falls back to a new authorization.
    mock.revoke_all();
    mock.refresh.lock().unwrap().clear();
    assert_eq!(client.list_tools().await.unwrap().len(), 1);
    let events = mock.events();
    assert_eq!(
        events[events.len() - 4..],
        [
            "401 tools/list",
            "token refresh_token",
            "authorize read",
            "token authorization_code"
        ]
    );
    assert_eq!(count.load(Ordering::SeqCst), 2);
    client.close().await;
}

#[tokio::test]
async fn a_file_store_keeps_the_registration_and_tokens_for_the_next_transport() {
    let mock = start().await;
    let dir = std::env::temp_dir().join(format!("mcpbus-oauth-test-{}", std::process::id()));
    let path = dir.join("tokens.json");
    let count = Arc::new(AtomicUsize::new(0));
    let config = oauth(&mock, &count).with_store(FileTokenStore::new(&path));
    connect(&mock, config.clone()).await.unwrap().close().await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let stored = FileTokenStore::new(&path)
        .load(&mock.resource())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.issuer.as_deref(),
        Some(mock.issuer.lock().unwrap().as_str())
    );
    assert_eq!(stored.client.unwrap().client_id, "c1");
    let client = connect(&mock, config).await.unwrap();
    client.list_tools().await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 1, "no second login");
    assert_eq!(mock.events().iter().filter(|e| *e == "register").count(), 1);
    client.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_flow_stops_where_the_specification_says_it_must() {
    let mock = start().await;
    let count = Arc::new(AtomicUsize::new(0));
    *mock.resource_override.lock().unwrap() = Some("http://127.0.0.1:1/elsewhere".into());
    let e = connect(&mock, oauth(&mock, &count)).await.unwrap_err();
    assert!(
        e.to_string().contains("does not cover the MCP server"),
        "{e}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 0);

    *mock.resource_override.lock().unwrap() = None;
    let issuer = mock.issuer.lock().unwrap().clone();
    let forged = OAuthConfig::authorization_code(REDIRECT, move |r: AuthorizationRequest| {
        let callback = format!("code=x&state={}x&iss={issuer}", r.state);
        async move { Ok(callback) }
    });
    let e = connect(&mock, forged).await.unwrap_err();
    assert!(e.to_string().contains("state does not match"), "{e}");
    let refused = OAuthConfig::authorization_code(REDIRECT, |_: AuthorizationRequest| async {
        Err("the user closed the browser".to_owned())
    });
    let e = connect(&mock, refused).await.unwrap_err();
    assert!(e.to_string().contains("the user closed the browser"), "{e}");
    assert!(!mock.events().iter().any(|e| e.starts_with("token")));
}

#[tokio::test]
async fn without_oauth_a_401_is_an_error_as_before() {
    let mock = start().await;
    let config = HttpClientConfig {
        open_get_stream: false,
        ..HttpClientConfig::default()
    };
    let transport = HttpClientTransport::new(&mock.resource(), config).unwrap();
    let e = Client::builder("plain", "1")
        .era(Era::Legacy)
        .connect(transport)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("401"), "{e}");
    assert_eq!(mock.events(), ["401 initialize"]);
}

/// Serves the mock's routes over TLS too (certificate for 127.0.0.1 from a CA made here), and
/// moves the authorization server there. Returns the CA certificate (DER).
async fn serve_authorization_server_over_tls(mock: &Arc<Mock>) -> Vec<u8> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use tower::ServiceExt;
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(leaf.der().to_vec())], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    *mock.issuer.lock().unwrap() = format!("https://{}/as", listener.local_addr().unwrap());
    let app = routes(mock.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return; // the client refused the certificate
                };
                let service = hyper::service::service_fn(move |req| app.clone().oneshot(req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    ca.der().to_vec()
}

#[tokio::test]
async fn an_https_authorization_server_is_reached_through_rustls() {
    let mock = start().await;
    let ca = serve_authorization_server_over_tls(&mock).await;
    let count = Arc::new(AtomicUsize::new(0));
    // Not trusted: the certificate is refused, and the error says so.
    let e = connect(&mock, oauth(&mock, &count)).await.unwrap_err();
    assert!(e.to_string().contains("TLS handshake failed"), "{e}");
    let mut trusting = oauth(&mock, &count);
    trusting.extra_root_certificates = vec![ca];
    let client = connect(&mock, trusting).await.unwrap();
    client.list_tools().await.unwrap();
    assert!(
        mock.events()
            .contains(&"token authorization_code".to_owned())
    );
    client.close().await;
}

#[tokio::test]
async fn dpop_bound_tokens_carry_a_proof_with_the_servers_nonce() {
    let mock = start().await;
    mock.dpop.store(true, Ordering::SeqCst);
    let count = Arc::new(AtomicUsize::new(0));
    let client = connect(&mock, oauth(&mock, &count)).await.unwrap();
    assert_eq!(client.list_tools().await.unwrap().len(), 1);
    assert_eq!(
        mock.events()[..5],
        [
            "401 initialize",
            "register",
            "authorize read",
            "token authorization_code",
            "nonce initialize"
        ]
    );
    assert_eq!(
        mock.events()
            .iter()
            .filter(|e| e.starts_with("nonce"))
            .count(),
        1
    );
    client.close().await;
    // With DPoP switched off the client gets a plain Bearer token, which this resource server
    // refuses: the request fails rather than loop.
    let mut plain = oauth(&mock, &count);
    plain.dpop = false;
    let e = connect(&mock, plain).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("401 Unauthorized to a token obtained"),
        "{e}"
    );
}
