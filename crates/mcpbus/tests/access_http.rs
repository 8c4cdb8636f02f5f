//! Topic permissions (docs/auth.md) over the HTTP endpoint, in both eras, with static bearer
//! tokens carrying scopes: subscriptions, webhooks (at registration and when delivery is taken
//! up again after a restart with other rules), the tool and resource bridges, and a publish
//! that asks `Context::authorize_publish`. Only 127.0.0.1 is contacted.

#![allow(clippy::unwrap_used)] // tests unwrap to fail loudly

#[path = "webhooks_support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use mcpbus::events::access::{AccessRule, AccessRules, Action, Who};
use mcpbus::events::{Event, TopicSpec};
use mcpbus::proto::error_codes;
use mcpbus::server::auth::BearerTokens;
use mcpbus::server::{Context, EventTools, Identity, Server, ToolError};
use mcpbus::transport::http::{HttpConfig, serve_http};
use mcpbus::webhooks::{MemoryWebhookStore, WebhookConfig, WebhookStore};
use mcpbus_testkit::jsonrpc::initialize_request;
use mcpbus_testkit::{Answer, HttpClient, TestServer};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use support::{Receiver, call_as, secret};

/// Alice: her inbox, webhooks, publishing.
const ALICE: &str = "alice-token-0123456789abcdef";
/// Bob: his inbox, and a deny on `build/secret`.
const BOB: &str = "bob-token-0123456789abcdef";
/// Carol: authenticated, with no scope.
const CAROL: &str = "carol-token-0123456789abcdef";
const T: Duration = Duration::from_secs(10);

fn tokens() -> BearerTokens {
    let id =
        |name: &str, scopes: &[&str]| Identity::named(name).with_scopes(scopes.iter().copied());
    BearerTokens::new()
        .with_identity(ALICE, id("alice", &["inbox", "webhook", "publish"]))
        .unwrap()
        .with_identity(BOB, id("bob", &["inbox"]))
        .unwrap()
        .with_identity(CAROL, id("carol", &[]))
        .unwrap()
}

fn rules() -> Vec<AccessRule> {
    vec![
        AccessRule::allow(Who::scopes(["inbox"]))
            .actions([Action::Subscribe])
            .topics(["agents/{agent_id}/inbox"]),
        AccessRule::allow(Who::authenticated())
            .actions([Action::Subscribe])
            .topics(["build/#"]),
        AccessRule::allow(Who::scopes(["webhook"]))
            .actions([Action::Webhook])
            .topics(["agents/{agent_id}/inbox", "build/#"]),
        AccessRule::allow(Who::scopes(["publish"]))
            .actions([Action::Publish])
            .topics(["build/#", "agents/+/inbox"]),
        AccessRule::deny(Who::subjects(["bob"]))
            .actions([Action::Subscribe])
            .topics(["build/secret"]),
    ]
}

#[derive(Deserialize, JsonSchema)]
struct SendArgs {
    /// The topic.
    topic: String,
}

/// A publishing tool that asks the topic permissions first, as `mcpbus serve`'s does.
async fn send(args: SendArgs, ctx: Context) -> Result<String, ToolError> {
    ctx.authorize_publish(&args.topic)?;
    let report = ctx
        .events()
        .publish(Event::new(args.topic, json!("hi")))
        .await?;
    Ok(report.event_id)
}

fn server(rules: Vec<AccessRule>, store: Arc<dyn WebhookStore>) -> Server {
    let webhooks = WebhookConfig {
        allow_private: vec!["127.0.0.0/8".into()],
        store,
        lease_ttl: Duration::from_millis(500),
        ..WebhookConfig::default()
    };
    Server::builder("acl", "1")
        .topic(TopicSpec::content("agents/{agent_id}/inbox").retained(true))
        .topic(TopicSpec::content("build/+").retained(true))
        .webhooks(webhooks)
        .bearer_tokens(tokens())
        .access_rules(AccessRules::new(rules).unwrap())
        .event_tools(EventTools::default())
        .event_resources()
        .tool("send", "Publishes on a topic", send)
        .build()
        .unwrap()
}

async fn start(server: &Server) -> (TestServer, HttpClient) {
    let served = server.clone();
    let ts =
        TestServer::start(|l, stop| serve_http(l, "/mcp", served, HttpConfig::default(), stop))
            .await;
    let raw = HttpClient::new(ts.url());
    (ts, raw)
}

async fn started() -> (TestServer, HttpClient, Server) {
    let server = server(rules(), Arc::new(MemoryWebhookStore::new()));
    let (ts, raw) = start(&server).await;
    for (topic, value) in [
        ("build/web", "green"),
        ("build/secret", "hush"),
        ("agents/alice/inbox", "for alice"),
        ("agents/carol/inbox", "for carol"),
    ] {
        server
            .events()
            .publish(Event::new(topic, json!(value)).retained(true))
            .await
            .unwrap();
    }
    (ts, raw, server)
}

/// A handshake-era POST on `session` (none: an initialize) with `token`.
async fn legacy(
    raw: &HttpClient,
    session: Option<&str>,
    token: Option<&str>,
    body: &Value,
) -> Answer {
    raw.post_with_token(session, token, body).await
}

/// A handshake-era session opened with `token`.
async fn open(raw: &HttpClient, token: Option<&str>) -> String {
    let answer = legacy(raw, None, token, &initialize_request("acl-test")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let session = answer.header("mcp-session-id").unwrap().to_owned();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let answer = legacy(raw, Some(&session), token, &initialized).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text());
    session
}

async fn legacy_call(
    raw: &HttpClient,
    session: &str,
    token: Option<&str>,
    method: &str,
    params: Value,
) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
    let answer = legacy(raw, Some(session), token, &body).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    answer.json()
}

/// `events/subscribe` of the handshake era: (subscribed patterns, rejected pattern → reason).
async fn subscribe(
    raw: &HttpClient,
    token: Option<&str>,
    topics: &[&str],
) -> (Vec<String>, Vec<(String, String)>) {
    let session = open(raw, token).await;
    let answer = legacy_call(
        raw,
        &session,
        token,
        "events/subscribe",
        json!({ "topics": topics }),
    )
    .await;
    let result = &answer["result"];
    let subscribed = result["subscribed"].as_array().unwrap().iter();
    let rejected = result["rejected"].as_array().unwrap().iter();
    (
        subscribed
            .map(|s| s["pattern"].as_str().unwrap().to_owned())
            .collect(),
        rejected
            .map(|r| {
                (
                    r["pattern"].as_str().unwrap().to_owned(),
                    r["reason"].as_str().unwrap().to_owned(),
                )
            })
            .collect(),
    )
}

fn denied(pattern: &str) -> (String, String) {
    (pattern.to_owned(), "permission_denied".to_owned())
}

#[tokio::test]
async fn handshake_subscriptions_follow_the_rules() {
    let (_ts, raw, _server) = started().await;
    let (ok, refused) = subscribe(
        &raw,
        Some(ALICE),
        &[
            "agents/alice/inbox",
            "agents/bob/inbox",
            "agents/+/inbox",
            "build/+",
        ],
    )
    .await;
    assert_eq!(ok, ["agents/alice/inbox", "build/+"]);
    assert_eq!(
        refused,
        [denied("agents/bob/inbox"), denied("agents/+/inbox")]
    );

    // Carol's own inbox passes the declared scoping, but no rule grants it to her.
    let (ok, refused) = subscribe(&raw, Some(CAROL), &["agents/carol/inbox", "build/web"]).await;
    assert_eq!(
        (ok, refused),
        (
            vec!["build/web".to_owned()],
            vec![denied("agents/carol/inbox")]
        )
    );

    // Bob's deny wins over every pattern that touches build/secret.
    let (ok, refused) = subscribe(&raw, Some(BOB), &["build/web", "build/+", "build/secret"]).await;
    assert_eq!(ok, ["build/web"]);
    assert_eq!(refused, [denied("build/+"), denied("build/secret")]);

    // Without a token nothing is granted.
    let (ok, refused) = subscribe(&raw, None, &["build/web"]).await;
    assert_eq!((ok.len(), refused), (0, vec![denied("build/web")]));
}

#[tokio::test]
async fn a_session_opened_with_a_token_needs_it_on_every_request() {
    let (_ts, raw, _server) = started().await;
    let session = open(&raw, Some(ALICE)).await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let without = legacy(&raw, Some(&session), None, &ping).await;
    assert_eq!(
        without.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        without.text()
    );
    assert_eq!(without.header("www-authenticate"), Some("Bearer"));
    let other = legacy(&raw, Some(&session), Some(BOB), &ping).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN, "{}", other.text());
    assert_eq!(
        legacy(&raw, Some(&session), Some(ALICE), &ping)
            .await
            .status,
        StatusCode::OK
    );
    // A session opened without a token stays anonymous: a later token changes nothing.
    let anonymous = open(&raw, None).await;
    assert_eq!(
        legacy(&raw, Some(&anonymous), Some(BOB), &ping)
            .await
            .status,
        StatusCode::OK
    );
}

fn poll(name: &str, arguments: Value) -> Value {
    json!({"name": name, "arguments": arguments, "cursor": null})
}

fn forbidden(answer: &Value) -> String {
    assert_eq!(answer["error"]["code"], error_codes::FORBIDDEN, "{answer}");
    answer["error"]["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn modern_polls_streams_and_webhooks_follow_the_rules() {
    let (_ts, raw, _server) = started().await;
    let inbox = "agents/{agent_id}/inbox";
    let mine = call_as(&raw, Some(ALICE), "events/poll", poll(inbox, json!({}))).await;
    let events = mine["result"]["events"]
        .as_array()
        .unwrap_or_else(|| panic!("{mine}"));
    assert_eq!(events[0]["data"]["payload"], "for alice", "{mine}");
    let bobs = json!({"topic": "agents/bob/inbox"});
    forbidden(&call_as(&raw, Some(ALICE), "events/poll", poll(inbox, bobs)).await);
    let any = json!({"topic": "agents/+/inbox"});
    forbidden(&call_as(&raw, Some(ALICE), "events/poll", poll(inbox, any)).await);
    let carol = call_as(&raw, Some(CAROL), "events/poll", poll(inbox, json!({}))).await;
    assert_eq!(
        forbidden(&carol),
        "Forbidden: not allowed to subscribe to agents/carol/inbox"
    );
    let stream = call_as(&raw, Some(CAROL), "events/stream", poll(inbox, json!({}))).await;
    forbidden(&stream);
    let build = json!({"topic": "build/secret"});
    forbidden(&call_as(&raw, Some(BOB), "events/poll", poll("build/+", build)).await);
    forbidden(&call_as(&raw, None, "events/poll", poll("build/+", json!({}))).await);

    // A webhook needs the webhook grant besides subscribe.
    let receiver = Receiver::start().await;
    let hook = |name: &str| {
        json!({
            "name": name,
            "arguments": {"retained": false},
            "delivery": {"mode": "webhook", "url": receiver.url, "secret": secret(3)},
            "ttlMs": 600_000
        })
    };
    let refused = call_as(&raw, Some(CAROL), "events/subscribe", hook("build/+")).await;
    assert_eq!(
        forbidden(&refused),
        "Forbidden: not allowed to register a webhook for build/+"
    );
    let made = call_as(&raw, Some(ALICE), "events/subscribe", hook("build/+")).await;
    assert!(
        made["result"]["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("sub_")),
        "{made}"
    );
}

#[tokio::test]
async fn a_webhook_whose_grant_is_gone_after_a_restart_is_terminated() {
    let store: Arc<dyn WebhookStore> = Arc::new(MemoryWebhookStore::new());
    let first = server(rules(), store.clone());
    let (ts, raw) = start(&first).await;
    let receiver = Receiver::start().await;
    let params = json!({
        "name": "agents/{agent_id}/inbox",
        "arguments": {"retained": false},
        "delivery": {"mode": "webhook", "url": receiver.url, "secret": secret(4)},
        "ttlMs": 600_000
    });
    let made = call_as(&raw, Some(ALICE), "events/subscribe", params).await;
    assert!(made["result"]["id"].is_string(), "{made}");
    first
        .events()
        .publish(Event::new("agents/alice/inbox", json!(1)))
        .await
        .unwrap();
    let delivered = receiver.wait_for(2, T).await[1].json();
    assert_eq!(delivered["data"]["payload"], 1, "{delivered}");
    first.stop_webhooks();
    drop(ts);

    // The same subscriptions, and now a deny for Alice's webhooks.
    let mut changed = rules();
    changed.push(
        AccessRule::deny(Who::subjects(["alice"]))
            .actions([Action::Webhook])
            .topics(["agents/#"]),
    );
    let second = server(changed, store.clone());
    let _served = start(&second).await;
    let got = receiver.wait_for(3, T).await;
    let terminated = got[2].json();
    assert_eq!(terminated["type"], "terminated", "{terminated}");
    assert_eq!(terminated["error"]["code"], error_codes::FORBIDDEN);
    let message = terminated["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("not allowed to register a webhook for agents/alice/inbox"),
        "{message}"
    );
    assert!(store.ids().await.unwrap().is_empty());
}

/// A tool call's result, in the era `session` says (none: the 2026-07-28 era).
async fn tool(
    raw: &HttpClient,
    session: Option<&str>,
    token: &str,
    name: &str,
    args: Value,
) -> Value {
    let params = json!({"name": name, "arguments": args});
    let answer = match session {
        Some(s) => legacy_call(raw, s, Some(token), "tools/call", params).await,
        None => call_as(raw, Some(token), "tools/call", params).await,
    };
    answer["result"].clone()
}

#[tokio::test]
async fn the_tool_bridge_and_publishes_follow_the_rules_in_both_eras() {
    let (_ts, raw, _server) = started().await;
    let carol_session = open(&raw, Some(CAROL)).await;
    for session in [None, Some(carol_session.as_str())] {
        let read = json!({"topic": "agents/carol/inbox"});
        let refused = tool(&raw, session, CAROL, "read_retained", read).await;
        assert_eq!(refused["isError"], true, "{refused}");
        let text = refused["content"][0]["text"].as_str().unwrap();
        assert!(
            text.contains("not allowed to subscribe to agents/carol/inbox"),
            "{text}"
        );
        let wait = json!({"topic": "agents/carol/inbox", "timeout_ms": 10});
        assert_eq!(
            tool(&raw, session, CAROL, "wait_for_events", wait).await["isError"],
            true
        );
        let all = tool(&raw, session, CAROL, "read_retained", json!({})).await;
        let topics: Vec<&str> = all["structuredContent"]["retained"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["topic"].as_str().unwrap())
            .collect();
        assert_eq!(topics, ["build/secret", "build/web"], "{all}");
        let listed = tool(&raw, session, CAROL, "list_topics", json!({})).await;
        let patterns = &listed["structuredContent"]["topics"];
        assert_eq!(patterns.as_array().unwrap().len(), 1, "{listed}");
        assert_eq!(patterns[0]["pattern"], "build/+");
        let publish = tool(&raw, session, CAROL, "send", json!({"topic": "build/web"})).await;
        assert_eq!(
            publish["content"][0]["text"],
            "not allowed to publish on build/web"
        );
    }
    let listed = tool(&raw, None, BOB, "list_topics", json!({})).await;
    assert_eq!(
        listed["structuredContent"]["topics"][1]["access"], "partial",
        "{listed}"
    );
    let sent = tool(
        &raw,
        None,
        ALICE,
        "send",
        json!({"topic": "agents/bob/inbox"}),
    )
    .await;
    assert_ne!(sent["isError"], true, "{sent}");
}

#[tokio::test]
async fn retained_resources_follow_the_rules() {
    let (_ts, raw, _server) = started().await;
    let read = |uri: &str| json!({ "uri": uri });
    let carols = "mcpbus://retained/agents/carol/inbox";
    let refused = call_as(&raw, Some(CAROL), "resources/read", read(carols)).await;
    assert_eq!(
        forbidden(&refused),
        "Forbidden: not allowed to subscribe to agents/carol/inbox"
    );
    let alices = "mcpbus://retained/agents/alice/inbox";
    let mine = call_as(&raw, Some(ALICE), "resources/read", read(alices)).await;
    assert!(
        mine["result"]["contents"][0]["text"]
            .as_str()
            .unwrap()
            .contains("for alice"),
        "{mine}"
    );
    let everything = call_as(&raw, Some(BOB), "resources/read", read("mcpbus://retained")).await;
    let text = everything["result"]["contents"][0]["text"]
        .as_str()
        .unwrap();
    assert!(
        text.contains("build/web") && !text.contains("build/secret"),
        "{text}"
    );
    assert!(!text.contains("inbox"), "{text}");

    let session = open(&raw, Some(CAROL)).await;
    let subscribe = legacy_call(
        &raw,
        &session,
        Some(CAROL),
        "resources/subscribe",
        read(carols),
    )
    .await;
    assert_eq!(
        subscribe["error"]["code"],
        error_codes::FORBIDDEN,
        "{subscribe}"
    );
    let fine = legacy_call(
        &raw,
        &session,
        Some(CAROL),
        "resources/subscribe",
        read("mcpbus://retained/build/web"),
    )
    .await;
    assert!(fine.get("result").is_some(), "{fine}");
}
