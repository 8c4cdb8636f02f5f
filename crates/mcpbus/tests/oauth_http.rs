//! The HTTP endpoint as an OAuth resource server (docs/auth.md), against a small authorization
//! server on loopback (`mcpbus_testkit::AuthServer`: metadata, keys, introspection, tokens
//! signed in the test): the metadata documents, the 401/403/503 answers and their challenges,
//! the identity reaching handlers in both eras, a session held to its subject, key rotation
//! under a rate limit, introspection, and webhooks of an OAuth identity. Nothing but 127.0.0.1
//! is ever contacted.

#![allow(clippy::unwrap_used)] // tests unwrap to fail loudly

#[path = "webhooks_support/mod.rs"]
mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use http::Method;
use mcpbus::events::{Event, TopicSpec};
use mcpbus::proto::error_codes;
use mcpbus::server::auth::BearerTokens;
use mcpbus::server::oauth::{IntrospectionConfig, ResourceServer, ResourceServerConfig};
use mcpbus::server::{Context, Json, NoArgs, Server};
use mcpbus::transport::http::{HttpConfig, serve_http};
use mcpbus::webhooks::WebhookConfig;
use mcpbus_testkit::jsonrpc::{initialize_request, initialized, subscribe_request, tool_call};
use mcpbus_testkit::modern::{answer_message, request};
use mcpbus_testkit::{
    Answer, AuthServer, HttpClient, INTROSPECTION_CLIENT, INTROSPECTION_SECRET, MetadataAt,
    TestServer, unix_now,
};
use serde_json::{Value, json};
use support::Receiver;

/// A static token served beside OAuth.
const STATIC: &str = "static-token-0123456789abcdef";

/// The server under test and what the tests need to reach it.
struct Bus {
    ts: TestServer,
    server: Server,
    /// `http://127.0.0.1:PORT/mcp`, the resource's canonical URL.
    resource: String,
}

impl Bus {
    fn client(&self) -> HttpClient {
        HttpClient::new(self.ts.url())
    }

    fn as_bearer(&self, token: &str) -> HttpClient {
        self.client().with_bearer(token)
    }

    /// The metadata URL `WWW-Authenticate` names.
    fn metadata_url(&self) -> String {
        format!(
            "http://{}/.well-known/oauth-protected-resource/mcp",
            self.ts.addr
        )
    }
}

/// The server: a `whoami` tool that shows the caller's identity, a scoped inbox topic,
/// webhooks, one static token, and OAuth as `tweak` adjusts it (required scope `mcp` unless
/// changed).
async fn start(auth: &AuthServer, tweak: impl FnOnce(&mut ResourceServerConfig)) -> Bus {
    let mut built = None;
    let ts = TestServer::start(|listener, stop| {
        let resource = format!("http://{}/mcp", listener.local_addr().unwrap());
        let server = build(auth, &resource, tweak);
        built = Some((server.clone(), resource));
        serve_http(listener, "/mcp", server, HttpConfig::default(), stop)
    })
    .await;
    let (server, resource) = built.unwrap();
    Bus {
        ts,
        server,
        resource,
    }
}

fn build(
    auth: &AuthServer,
    resource: &str,
    tweak: impl FnOnce(&mut ResourceServerConfig),
) -> Server {
    let mut config = ResourceServerConfig::new(resource, auth.issuer());
    config.required_scopes = vec!["mcp".into()];
    config.kept_claims = vec!["email".into()];
    tweak(&mut config);
    Server::builder("oauth", "1")
        .topic(TopicSpec::signal("agents/{agent_id}/inbox"))
        .webhooks(WebhookConfig {
            allow_private: vec!["127.0.0.0/8".into()],
            ..WebhookConfig::default()
        })
        .tool(
            "whoami",
            "The caller",
            |_: NoArgs, ctx: Context| async move {
                let identity = ctx.identity();
                Json(json!({
                    "subject": ctx.principal(),
                    "agentId": &*ctx.agent_id(),
                    "scopes": identity.as_ref().map(|i| i.scopes.clone()),
                    "clientId": identity.as_ref().and_then(|i| i.client_id.clone()),
                    "claims": identity.as_ref().map(|i| i.claims.clone()),
                }))
            },
        )
        .bearer_tokens(BearerTokens::new().with(STATIC, "robot").unwrap())
        .resource_server(ResourceServer::new(config).unwrap())
        .build()
        .unwrap()
}

/// The `whoami` result of a modern request with `token`.
async fn whoami_modern(bus: &Bus, token: &str) -> Value {
    let a = bus
        .as_bearer(token)
        .post_modern(&request(
            5,
            "tools/call",
            json!({"name": "whoami", "arguments": {}}),
            json!({}),
        ))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    answer_message(&a)["result"]["structuredContent"].clone()
}

/// Opens a handshake-era session with `token`; returns its id.
async fn open_session(bus: &Bus, token: &str) -> String {
    let client = bus.as_bearer(token);
    let a = client.post(None, &initialize_request("oauth-test")).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let session = a.header("mcp-session-id").unwrap().to_owned();
    assert_eq!(
        client.post(Some(&session), &initialized()).await.status,
        202
    );
    session
}

fn challenge(a: &Answer) -> String {
    a.header("www-authenticate")
        .unwrap_or_else(|| panic!("no challenge: {a:?}"))
        .to_owned()
}

#[tokio::test]
async fn the_metadata_is_served_at_both_well_known_paths() {
    let auth = AuthServer::start(MetadataAt::OAuth);
    let bus = start(&auth, |c| {
        c.scopes_supported = Some(vec!["mcp".into(), "events".into()]);
        c.resource_name = Some("bus".into());
    })
    .await;
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let client = HttpClient::new(format!("http://{}{path}", bus.ts.addr));
        let a = client.call(Method::GET, &[], b"").await;
        assert_eq!(a.status, 200, "{path}: {}", a.text());
        assert_eq!(a.header("content-type"), Some("application/json"));
        assert_eq!(a.header("access-control-allow-origin"), Some("*"));
        assert_eq!(
            a.json(),
            json!({"resource": bus.resource, "authorization_servers": [auth.issuer()],
                "bearer_methods_supported": ["header"], "scopes_supported": ["mcp", "events"],
                "resource_name": "bus"})
        );
    }
    let resource_server = bus.server.resource_server().unwrap();
    assert_eq!(resource_server.metadata_url(), bus.metadata_url());
}

#[tokio::test]
async fn a_request_without_a_token_gets_the_challenge_in_both_eras() {
    let auth = AuthServer::start(MetadataAt::OAuth);
    let bus = start(&auth, |_| {}).await;
    let expected = format!(
        "Bearer resource_metadata=\"{}\", scope=\"mcp\"",
        bus.metadata_url()
    );
    let handshake = bus.client().post(None, &initialize_request("t")).await;
    let modern = bus
        .client()
        .post_modern(&request(1, "server/discover", json!({}), json!({})))
        .await;
    let get = bus
        .client()
        .call(Method::GET, &[("accept", "text/event-stream")], b"")
        .await;
    for a in [&handshake, &modern, &get] {
        assert_eq!(a.status, 401, "{}", a.text());
        assert_eq!(challenge(a), expected);
        assert_eq!(a.json()["error"]["code"], error_codes::INVALID_REQUEST);
    }
    // A scheme other than Bearer is no credential either.
    let basic = bus
        .client()
        .with_bearer("x")
        .call(Method::POST, &[("authorization", "Basic YTpi")], b"{}")
        .await;
    assert_eq!((basic.status.as_u16(), challenge(&basic)), (401, expected));
}

#[tokio::test]
async fn tokens_that_prove_nothing_are_invalid_tokens() {
    let auth = AuthServer::start(MetadataAt::OAuth);
    let bus = start(&auth, |_| {}).await;
    let r = &bus.resource;
    let mut expired = auth.claims(r, "alice", "mcp");
    expired["exp"] = json!(unix_now() - 120);
    let mut early = auth.claims(r, "alice", "mcp");
    early["nbf"] = json!(unix_now() + 600);
    let mut foreign = auth.claims(r, "alice", "mcp");
    foreign["iss"] = json!("http://127.0.0.1:1");
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none"})),
        b64(&auth.claims(r, "alice", "mcp"))
    );
    let forged_kid = auth.sign_with_header(
        "es-1",
        &json!({"alg": "ES256", "kid": "rs-1"}),
        &auth.claims(r, "alice", "mcp"),
    );
    let cases = [
        (
            "garbage",
            "not-a-token".to_owned(),
            "not one this server knows",
        ),
        (
            "wrong audience",
            auth.token("http://127.0.0.1:1/mcp", "alice", "mcp"),
            "audience",
        ),
        ("wrong issuer", auth.sign("es-1", &foreign), "issued by"),
        ("expired", auth.sign("es-1", &expired), "expired"),
        ("not yet valid", auth.sign("es-1", &early), "not valid yet"),
        ("alg none", none, "not accepted"),
        ("another key's kid", forged_kid, "no key"),
    ];
    for (case, token, reason) in cases {
        let a = bus
            .as_bearer(&token)
            .post(None, &initialize_request("t"))
            .await;
        assert_eq!(a.status, 401, "{case}: {}", a.text());
        let c = challenge(&a);
        assert!(
            c.starts_with("Bearer error=\"invalid_token\", "),
            "{case}: {c}"
        );
        assert!(c.contains(&format!("resource_metadata=\"{}\"", bus.metadata_url())));
        assert!(c.contains(reason), "{case}: {c}");
        let message = a.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(reason), "{case}: {message}");
    }
}

#[tokio::test]
async fn a_token_without_the_required_scope_is_forbidden() {
    let auth = AuthServer::start(MetadataAt::OAuth);
    let bus = start(&auth, |c| {
        c.required_scopes = vec!["mcp".into(), "bus".into()]
    })
    .await;
    let token = auth.token(&bus.resource, "alice", "mcp other");
    let a = bus
        .as_bearer(&token)
        .post_modern(&request(1, "server/discover", json!({}), json!({})))
        .await;
    assert_eq!(a.status, 403, "{}", a.text());
    let c = challenge(&a);
    assert!(
        c.starts_with(&format!(
            "Bearer error=\"insufficient_scope\", resource_metadata=\"{}\", scope=\"mcp bus\"",
            bus.metadata_url()
        )),
        "{c}"
    );
    let ok = auth.token(&bus.resource, "alice", "bus mcp");
    assert_eq!(whoami_modern(&bus, &ok).await["subject"], "alice");
}

#[tokio::test]
async fn the_identity_reaches_handlers_in_both_eras() {
    let auth = AuthServer::start(MetadataAt::OAuth);
    let bus = start(&auth, |c| c.agent_id_claim = "agent".into()).await;
    let mut claims = auth.claims(&bus.resource, "alice", "mcp extra");
    claims["agent"] = json!("builder-7");
    claims["email"] = json!("alice@example.test");
    claims["secret_claim"] = json!("not kept");
    let token = auth.sign("es-1", &claims);
    let expected = json!({"subject": "alice", "agentId": "builder-7", "scopes": ["extra", "mcp"],
        "clientId": "test-client", "claims": {"email": "alice@example.test"}});
    assert_eq!(whoami_modern(&bus, &token).await, expected);

    let session = open_session(&bus, &token).await;
    let client = bus.as_bearer(&token);
    let a = client.post(Some(&session), &tool_call(2, "whoami")).await;
    assert_eq!(a.json()["result"]["structuredContent"], expected);
    // The session's agent is the token's: its inbox is builder-7's, and nobody else's.
    let mine = client
        .post(
            Some(&session),
            &subscribe_request(3, &["agents/builder-7/inbox"]),
        )
        .await;
    assert_eq!(
        mine.json()["result"]["subscribed"][0]["pattern"],
        "agents/builder-7/inbox",
        "{}",
        mine.text()
    );
    let theirs = client
        .post(
            Some(&session),
            &subscribe_request(4, &["agents/alice/inbox"]),
        )
        .await;
    assert_eq!(
        theirs.json()["result"]["rejected"][0]["reason"],
        "permission_denied",
        "{}",
        theirs.text()
    );

    // A token without the agent claim proves no agent: refused.
    let bare = auth.token(&bus.resource, "alice", "mcp");
    let a = bus
        .as_bearer(&bare)
        .post(None, &initialize_request("t"))
        .await;
    assert_eq!(a.status, 401);
    assert!(challenge(&a).contains("agent id"), "{}", challenge(&a));
}

#[tokio::test]
async fn a_session_belongs_to_the_subject_that_initialized_it() {
    let auth = AuthServer::start(MetadataAt::OAuth);
    let bus = start(&auth, |_| {}).await;
    let alice = auth.token(&bus.resource, "alice", "mcp");
    let session = open_session(&bus, &alice).await;
    // A fresh token of the same subject is fine (tokens are refreshed mid-session).
    let alice_again = auth.sign("rs-1", &auth.claims(&bus.resource, "alice", "mcp"));
    let a = bus
        .as_bearer(&alice_again)
        .post(Some(&session), &tool_call(2, "whoami"))
        .await;
    assert_eq!(a.json()["result"]["structuredContent"]["subject"], "alice");

    let bob = auth.token(&bus.resource, "bob", "mcp");
    let as_bob = bus.as_bearer(&bob);
    let post = as_bob.post(Some(&session), &tool_call(3, "whoami")).await;
    let get = as_bob.get_stream(&session, None).await.status();
    let delete = as_bob
        .call(Method::DELETE, &[("mcp-session-id", &session)], b"")
        .await;
    assert_eq!(post.status, 403, "{}", post.text());
    assert!(post.text().contains("another subject"), "{}", post.text());
    assert_eq!((get.as_u16(), delete.status.as_u16()), (403, 403));
    // The static token names another subject too.
    let robot = bus
        .as_bearer(STATIC)
        .post(Some(&session), &tool_call(4, "whoami"))
        .await;
    assert_eq!(robot.status, 403);

    let mut expired = auth.claims(&bus.resource, "alice", "mcp");
    expired["exp"] = json!(unix_now() - 120);
    let a = bus
        .as_bearer(&auth.sign("es-1", &expired))
        .post(Some(&session), &tool_call(5, "whoami"))
        .await;
    assert_eq!(a.status, 401);
    assert!(challenge(&a).contains("expired"));
    let a = bus
        .client()
        .post(Some(&session), &tool_call(6, "whoami"))
        .await;
    assert_eq!(a.status, 401);
    // Still alice's session.
    let a = bus
        .as_bearer(&alice)
        .post(Some(&session), &tool_call(7, "whoami"))
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
}

#[tokio::test]
async fn rs256_tokens_of_an_openid_provider_are_accepted() {
    let auth = AuthServer::start(MetadataAt::OpenId);
    let bus = start(&auth, |_| {}).await;
    let token = auth.sign("rs-1", &auth.claims(&bus.resource, "carol", "mcp"));
    assert_eq!(whoami_modern(&bus, &token).await["subject"], "carol");
    assert_eq!(auth.hits.metadata.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_unknown_key_id_refetches_the_keys_at_most_once_per_interval() {
    let auth = AuthServer::start(MetadataAt::OAuth);
    let bus = start(&auth, |c| c.jwks_min_refresh = Duration::from_millis(700)).await;
    let claims = auth.claims(&bus.resource, "alice", "mcp");
    whoami_modern(&bus, &auth.sign("es-1", &claims)).await;
    assert_eq!(auth.hits.jwks.load(Ordering::SeqCst), 1);
    // Cached: another token of a known key costs nothing.
    whoami_modern(&bus, &auth.sign("rs-1", &claims)).await;
    assert_eq!(auth.hits.jwks.load(Ordering::SeqCst), 1);

    // A new key, not published yet: one fetch, then refusals that fetch nothing.
    tokio::time::sleep(Duration::from_millis(750)).await;
    auth.add_key("es-2");
    let rotated = auth.sign("es-2", &claims);
    for _ in 0..4 {
        let a = bus
            .as_bearer(&rotated)
            .post(None, &initialize_request("t"))
            .await;
        assert_eq!(a.status, 401, "{}", a.text());
        assert!(challenge(&a).contains("es-2"), "{}", challenge(&a));
    }
    assert_eq!(auth.hits.jwks.load(Ordering::SeqCst), 2);
    // Published: accepted once the interval has passed.
    auth.publish("es-2");
    let a = bus
        .as_bearer(&rotated)
        .post(None, &initialize_request("t"))
        .await;
    assert_eq!(a.status, 401, "still within the interval");
    tokio::time::sleep(Duration::from_millis(750)).await;
    assert_eq!(whoami_modern(&bus, &rotated).await["subject"], "alice");
    assert_eq!(auth.hits.jwks.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn an_unreachable_authorization_server_is_503_never_an_accept() {
    let auth = AuthServer::start(MetadataAt::OAuth);
    let bus = start(&auth, |c| c.jwks_min_refresh = Duration::from_millis(300)).await;
    let token = auth.token(&bus.resource, "alice", "mcp");
    auth.set_failing(true);
    let a = bus
        .as_bearer(&token)
        .post(None, &initialize_request("t"))
        .await;
    assert_eq!(a.status, 503, "{}", a.text());
    assert!(a.header("www-authenticate").is_none());
    assert_eq!(a.json()["error"]["code"], error_codes::INTERNAL_ERROR);
    assert!(a.text().contains("cannot verify"), "{}", a.text());
    auth.set_failing(false);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(whoami_modern(&bus, &token).await["subject"], "alice");

    // An issuer nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let bus = start(&auth, |c| c.issuer = nowhere.clone()).await;
    let mut claims = auth.claims(&bus.resource, "alice", "mcp");
    claims["iss"] = json!(nowhere);
    let a = bus
        .as_bearer(&auth.sign("es-1", &claims))
        .post(None, &initialize_request("t"))
        .await;
    assert_eq!(a.status, 503, "{}", a.text());
}

#[tokio::test]
async fn opaque_tokens_are_introspected_and_the_answer_cached() {
    let auth = AuthServer::start(MetadataAt::OAuth);
    let bus = start(&auth, |c| {
        c.introspection = Some(IntrospectionConfig::new(
            INTROSPECTION_CLIENT,
            INTROSPECTION_SECRET,
        ));
    })
    .await;
    auth.opaque("opaque-alice", &auth.claims(&bus.resource, "alice", "mcp"));
    auth.opaque(
        "opaque-elsewhere",
        &auth.claims("http://127.0.0.1:1/mcp", "alice", "mcp"),
    );
    assert_eq!(
        whoami_modern(&bus, "opaque-alice").await["subject"],
        "alice"
    );
    assert_eq!(
        whoami_modern(&bus, "opaque-alice").await["subject"],
        "alice"
    );
    assert_eq!(auth.hits.introspection.load(Ordering::SeqCst), 1, "cached");
    for (token, reason) in [
        ("opaque-unknown", "not active"),
        ("opaque-elsewhere", "audience"),
    ] {
        let a = bus
            .as_bearer(token)
            .post(None, &initialize_request("t"))
            .await;
        assert_eq!(a.status, 401);
        assert!(challenge(&a).contains(reason), "{}", challenge(&a));
    }
    // JWTs are still checked with the keys, not introspected.
    whoami_modern(&bus, &auth.token(&bus.resource, "bob", "mcp")).await;
    assert_eq!(auth.hits.introspection.load(Ordering::SeqCst), 3);

    // Wrong client credentials are the deployment's fault: 503, not the caller's.
    let bus = start(&auth, |c| {
        c.introspection = Some(IntrospectionConfig::new(INTROSPECTION_CLIENT, "wrong"));
    })
    .await;
    let a = bus
        .as_bearer("opaque-alice")
        .post(None, &initialize_request("t"))
        .await;
    assert_eq!(a.status, 503, "{}", a.text());
}

#[tokio::test]
async fn static_tokens_keep_working_beside_oauth() {
    let auth = AuthServer::start(MetadataAt::OAuth);
    let bus = start(&auth, |_| {}).await;
    let who = whoami_modern(&bus, STATIC).await;
    assert_eq!(
        (&who["subject"], &who["agentId"]),
        (&json!("robot"), &json!("robot"))
    );
    let session = open_session(&bus, STATIC).await;
    let a = bus
        .as_bearer(STATIC)
        .post(Some(&session), &tool_call(2, "whoami"))
        .await;
    assert_eq!(a.json()["result"]["structuredContent"]["subject"], "robot");
    assert_eq!(auth.hits.jwks.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_oauth_identity_holds_webhooks_for_its_own_agent() {
    let auth = AuthServer::start(MetadataAt::OAuth);
    let bus = start(&auth, |c| c.agent_id_claim = "agent".into()).await;
    let receiver = Receiver::start().await;
    let mut claims = auth.claims(&bus.resource, "alice", "mcp");
    claims["agent"] = json!("builder-7");
    let token = auth.sign("es-1", &claims);
    let params = json!({
        "name": "agents/{agent_id}/inbox",
        "arguments": {"retained": false},
        "delivery": {"mode": "webhook", "url": receiver.url,
            "secret": support::secret(3)},
        "ttlMs": 600_000
    });
    let a = bus
        .as_bearer(&token)
        .post_modern(&request(1, "events/subscribe", params, json!({})))
        .await;
    let answer = answer_message(&a);
    assert!(answer["result"]["id"].is_string(), "{answer}");
    bus.server
        .events()
        .publish(Event::new("agents/builder-7/inbox", json!({"hi": 1})))
        .await
        .unwrap();
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(
        got[1].json()["data"]["payload"],
        json!({"hi": 1}),
        "{:?}",
        got[1]
    );
    bus.server.stop_webhooks();
}

fn b64(value: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}
