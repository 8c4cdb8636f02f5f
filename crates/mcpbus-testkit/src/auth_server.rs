//! A small OAuth authorization server on loopback for the resource-server tests: its RFC 8414
//! (or OpenID Connect) metadata, its key set, and RFC 7662 introspection, with keys made for the
//! test (ES256 keys generated at start, and one fixed RSA key, since ring cannot generate RSA
//! keys) and tokens signed on demand. It runs on a thread of its own, so that sync and async
//! tests alike can use it, and counts what it was asked, so that a test can check caching.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use ring::rand::SystemRandom;
use ring::rsa::PublicKeyComponents;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use serde_json::{Value, json};

/// The client id the resource server introspects as.
pub const INTROSPECTION_CLIENT: &str = "mcpbus-resource-server";
/// Its client secret.
pub const INTROSPECTION_SECRET: &str = "introspection-secret-for-tests";

/// Where the fake server publishes its metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataAt {
    /// `/.well-known/oauth-authorization-server` (RFC 8414).
    OAuth,
    /// `/.well-known/openid-configuration` only (OpenID Connect Discovery).
    OpenId,
}

/// A signing key of the fake server.
enum SigningKey {
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
}

struct State {
    /// Keys by kid, in the order they were made; only `published` ones are in the key set.
    keys: Vec<(String, SigningKey, bool)>,
    /// Opaque tokens and their introspection answers.
    opaque: HashMap<String, Value>,
}

/// Counts of what the fake server answered.
#[derive(Debug, Default)]
pub struct Hits {
    /// Metadata documents served.
    pub metadata: AtomicUsize,
    /// Key sets served.
    pub jwks: AtomicUsize,
    /// Introspection requests answered.
    pub introspection: AtomicUsize,
}

/// The fake authorization server; stopped when dropped.
pub struct AuthServer {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    /// What it was asked.
    pub hits: Arc<Hits>,
    /// While set, every request is answered `503`.
    failing: Arc<AtomicBool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl std::fmt::Debug for AuthServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthServer")
            .field("addr", &self.addr)
            .finish()
    }
}

/// The RSA key of the fake server (2048 bits, PKCS#8, generated for these tests only).
const RSA_PKCS8: &[&str] = &[
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC0uczSMUM1ZHA2VEjaVkPuhY7b1+cOFh82z9ZH0f9D44hK",
    "xZjjEKj0kpUFsNXVX0xOOP508I33PI8razagC39PP96frGxqeXkSdAb0+Xb8GI8tOGhE9NGAl/7LTMl8FsMdZos49oWWgCVz",
    "7MCMVXTnDHmmiaSR2DbBF1NMpS19rkwq+Kq8Sl9wLAZFQagkr56/7EnpP/NIR7QXC9o0WFZymklspRl6Unbdnk0v16/An86D",
    "SkkIf49WIcIiBI5vTL73NBw5jg17NdQMD4ikAz10njtYMOgmL7wmZpJx2OXwGN2YZ6P1OHh1u5B/flB+swVk4ZQld02Ru9/y",
    "AU3NY0+zAgMBAAECggEAWQwphzHdtzufbK2X3fjebPLi4qDdiJvO0n+Syf2HRMiiWZFGFS+ayDNHeS/aFNHpc6tyeWUj1jvB",
    "IXgoyLARkRdb1porK0ViKf0Ahok6ntltBq+B9OQaLD34Pey+ZEWE6wIhPDZ/uRm4Gof/kcXznXqQoEW20GPUCs027o9+vCsm",
    "5LKvNJqmVGOI6kGYkuf7Plw2SSRt9AFwjNB1qPdQ4tZO7N1bCH3/dpn3L3EQFv8OS5hQjDeCYuHwE9liJFZAtRvpPM++p+co",
    "Wgk9VnJFzUJYcXBHmrKQpU88poVHyvoW1WGa9rPOU/FYZih+FZCQkal6umN+DuFfxhMpU5WheQKBgQDew4P0pNaZW0sXp0vI",
    "EdGAA0rxHjMK7QuKXLYdJTaBTjKjzYBJ2meMTgD2Z+sxp/QtN0FUYsZ4iWpnpeKtTiN7cCekARTkfiBDk6r5jHPpIYp45HPx",
    "vZxD1yLCJ0YlJRRL5nNHE3w508jKOCpeklTvqcf/16zlrOem5de6EdYFaQKBgQDPsKP/UHVGzwIZevF/HOlmbdUZJ29ky5u0",
    "SJ9oWvUnHDzay79K6SyQB2Vi6kflS7pouyhocr81X8AP/DjKcD/krj4jbV8eG0dXQwnBUCTAEh2i0GRvxWm7PrFbKQT7Zq5I",
    "3eYTABWvh7rTUNqfzYwNllSaPy2RJKPn3xLbWar8uwKBgFgSpv43md0CGjtc2npciR76rkuMbBPayqBGrX3yc41GFIFsw1bv",
    "sdboFDtXtMZqKAEkgoDRmLSZZ+dYz7lDVoX8Pr/56X+5Who9rPCDFmTK7QuFD045cCnmSgjHLFWNRmwHzfYA/zGByTYiZKYF",
    "Zu1mi/tcEzCvXts+rj8TxDFZAoGBAIpdJtS4OHlk/gQVqP/DNidcMqTgZdDj6KaR30k5l6tnn48wQA/bCiomE0BzzlQPQG/3",
    "h/MVxxb65EyB/x+26ooiHxmhCsZW7A9RhRU5nFItf3rxlIf2H/tzx9pwmHYYMTIwStALtWbMaQXRDuV5nb2Lkm90eZoBrASU",
    "0844jbZzAoGAOS7FKjjcAF2paUn5DR8ep0+48gOJDMDZSXtChRkFV7O9+ITZsa70/FKcbbTNqEtN3qhu8hIGAJ4akDpuWgIR",
    "asYdPDIEZxGbO/MUxWFv7mpPtXw1JXC6cCIlfrK+eC04J/p8gfiIb6dciU+E+kHfHYOhfKxUNHos+51o1/L3kqQ=",
];

impl AuthServer {
    /// Starts a server on a free loopback port publishing its metadata at `metadata`, with one
    /// ES256 key (`es-1`) and one RS256 key (`rs-1`).
    pub fn start(metadata: MetadataAt) -> AuthServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the bound address");
        let rsa = STANDARD
            .decode(RSA_PKCS8.concat())
            .expect("the RSA test key is base64");
        let rsa = RsaKeyPair::from_pkcs8(&rsa).expect("the RSA test key");
        let state = Arc::new(Mutex::new(State {
            keys: vec![
                ("es-1".into(), SigningKey::Es256(new_ec_key()), true),
                ("rs-1".into(), SigningKey::Rs256(rsa), true),
            ],
            opaque: HashMap::new(),
        }));
        let hits = Arc::new(Hits::default());
        let failing = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let app = App {
            issuer: format!("http://{addr}"),
            metadata,
            state: state.clone(),
            hits: hits.clone(),
            failing: failing.clone(),
        };
        std::thread::spawn(move || run(listener, app, stopped));
        AuthServer {
            addr,
            state,
            hits,
            failing,
            stop: Some(stop),
        }
    }

    /// The issuer identifier, `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Makes a new ES256 key `kid`; it signs at once, and is in the key set only once
    /// [`publish`](Self::publish)ed (as when an authorization server rotates keys).
    pub fn add_key(&self, kid: &str) {
        let key = SigningKey::Es256(new_ec_key());
        lock(&self.state).keys.push((kid.into(), key, false));
    }

    /// Puts key `kid` in the key set.
    pub fn publish(&self, kid: &str) {
        for (k, _, published) in &mut lock(&self.state).keys {
            if k == kid {
                *published = true;
            }
        }
    }

    /// While `failing`, every request is answered `503`.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// The usual claims of an access token: this issuer, `aud`, `sub`, `scope`, valid for five
    /// minutes.
    pub fn claims(&self, aud: &str, sub: &str, scope: &str) -> Value {
        let now = unix_now();
        json!({"iss": self.issuer(), "aud": aud, "sub": sub, "scope": scope,
            "iat": now, "exp": now + 300, "client_id": "test-client"})
    }

    /// An ES256 access token with [`claims`](Self::claims).
    pub fn token(&self, aud: &str, sub: &str, scope: &str) -> String {
        self.sign("es-1", &self.claims(aud, sub, scope))
    }

    /// `claims` signed with key `kid` (its algorithm: ES256 or RS256).
    pub fn sign(&self, kid: &str, claims: &Value) -> String {
        let alg = match self.key_alg(kid) {
            Some(alg) => alg,
            None => panic!("no key {kid:?}"),
        };
        self.sign_with_header(
            kid,
            &json!({"alg": alg, "kid": kid, "typ": "at+jwt"}),
            claims,
        )
    }

    /// `claims` under `header` as written, signed with key `kid` (a test may put any `alg` or
    /// `kid` in the header).
    pub fn sign_with_header(&self, kid: &str, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64(&header.to_string()), b64(&claims.to_string()));
        let state = lock(&self.state);
        let Some((_, key, _)) = state.keys.iter().find(|(k, _, _)| k == kid) else {
            panic!("no key {kid:?}");
        };
        let rng = SystemRandom::new();
        let signature = match key {
            SigningKey::Es256(pair) => pair
                .sign(&rng, input.as_bytes())
                .expect("an ES256 signature")
                .as_ref()
                .to_vec(),
            SigningKey::Rs256(pair) => {
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)
                    .expect("an RS256 signature");
                sig
            }
        };
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// Registers an opaque token whose introspection answers `active: true` with `claims`.
    pub fn opaque(&self, token: &str, claims: &Value) {
        let mut answer = claims.clone();
        answer["active"] = json!(true);
        lock(&self.state).opaque.insert(token.into(), answer);
    }

    fn key_alg(&self, kid: &str) -> Option<&'static str> {
        let state = lock(&self.state);
        state
            .keys
            .iter()
            .find(|(k, _, _)| k == kid)
            .map(|(_, key, _)| match key {
                SigningKey::Es256(_) => "ES256",
                SigningKey::Rs256(_) => "RS256",
            })
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn b64(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

fn new_ec_key() -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("a P-256 key");
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .expect("the P-256 key just made")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the serving thread answers with.
#[derive(Clone)]
struct App {
    issuer: String,
    metadata: MetadataAt,
    state: Arc<Mutex<State>>,
    hits: Arc<Hits>,
    failing: Arc<AtomicBool>,
}

fn run(listener: std::net::TcpListener, app: App, stopped: tokio::sync::oneshot::Receiver<()>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the fake authorization server");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
        let accept = async {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let app = app.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let app = app.clone();
                        async move { Ok::<_, std::convert::Infallible>(app.answer(request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        };
        tokio::select! {
            _ = accept => {}
            _ = stopped => {}
        }
    });
}

impl App {
    async fn answer(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        if self.failing.load(Ordering::SeqCst) {
            return reply(StatusCode::SERVICE_UNAVAILABLE, json!({"error": "down"}));
        }
        let path = request.uri().path().to_owned();
        let metadata_path = match self.metadata {
            MetadataAt::OAuth => "/.well-known/oauth-authorization-server",
            MetadataAt::OpenId => "/.well-known/openid-configuration",
        };
        match (request.method(), path.as_str()) {
            (&Method::GET, p) if p == metadata_path => {
                self.hits.metadata.fetch_add(1, Ordering::SeqCst);
                reply(StatusCode::OK, self.metadata_document())
            }
            (&Method::GET, "/jwks") => {
                self.hits.jwks.fetch_add(1, Ordering::SeqCst);
                reply(StatusCode::OK, self.key_set())
            }
            (&Method::POST, "/introspect") => self.introspect(request).await,
            _ => reply(StatusCode::NOT_FOUND, json!({"error": "not_found"})),
        }
    }

    fn metadata_document(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}/jwks", self.issuer),
            "introspection_endpoint": format!("{}/introspect", self.issuer),
            "authorization_endpoint": format!("{}/authorize", self.issuer),
            "token_endpoint": format!("{}/token", self.issuer),
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
        })
    }

    fn key_set(&self) -> Value {
        let state = lock(&self.state);
        let keys: Vec<Value> = state
            .keys
            .iter()
            .filter(|(_, _, published)| *published)
            .map(|(kid, key, _)| match key {
                SigningKey::Es256(pair) => {
                    let point = pair.public_key().as_ref();
                    json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
                        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                        "y": URL_SAFE_NO_PAD.encode(&point[33..])})
                }
                SigningKey::Rs256(pair) => {
                    let public = PublicKeyComponents::<Vec<u8>>::from(pair.public());
                    json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                        "n": URL_SAFE_NO_PAD.encode(&public.n),
                        "e": URL_SAFE_NO_PAD.encode(&public.e)})
                }
            })
            .collect();
        json!({ "keys": keys })
    }

    async fn introspect(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        self.hits.introspection.fetch_add(1, Ordering::SeqCst);
        let expected = format!(
            "Basic {}",
            STANDARD.encode(format!("{INTROSPECTION_CLIENT}:{INTROSPECTION_SECRET}"))
        );
        let authorized = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .is_some_and(|v| v.as_bytes() == expected.as_bytes());
        if !authorized {
            return reply(StatusCode::UNAUTHORIZED, json!({"error": "invalid_client"}));
        }
        let body = match request.into_body().collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => return reply(StatusCode::BAD_REQUEST, json!({"error": "invalid_request"})),
        };
        let token = String::from_utf8_lossy(&body)
            .split('&')
            .find_map(|pair| pair.strip_prefix("token=").map(form_decode))
            .unwrap_or_default();
        let answer = lock(&self.state)
            .opaque
            .get(&token)
            .cloned()
            .unwrap_or_else(|| json!({"active": false}));
        reply(StatusCode::OK, answer)
    }
}

/// Undoes `application/x-www-form-urlencoded` encoding.
fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let byte = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match byte {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
