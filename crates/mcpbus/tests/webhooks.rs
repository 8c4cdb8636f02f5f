//! Webhook delivery of SEP-3415 (docs/protocol.md 3.6) against a real receiver on loopback,
//! every signature checked by the official Standard Webhooks library (Python's
//! `standardwebhooks`, through tests/interop/verify_webhooks.py; set MCPBUS_PYTHON, as
//! scripts/test.sh does). Nothing but 127.0.0.1 is ever contacted.

#![allow(clippy::unwrap_used)] // tests unwrap to fail loudly

#[path = "webhooks_support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mcpbus::events::{Event, MemoryEventLog, TopicSpec};
use mcpbus::proto::error_codes;
use mcpbus::server::Server;
use mcpbus::server::auth::BearerTokens;
use mcpbus::transport::http::{HttpConfig, serve_http};
use mcpbus::webhooks::{RetryPolicy, WebhookConfig};
use mcpbus_testkit::{HttpClient, TestServer};
use serde_json::{Value, json};
use support::{Receiver, assert_all_verify, call_as, post_as, secret, verify};

const ALICE: &str = "alice-token-0123456789abcdef";
const BOB: &str = "bob-token-0123456789abcdef";
const T: Duration = Duration::from_secs(10);

fn config() -> WebhookConfig {
    WebhookConfig {
        allow_private: vec!["127.0.0.0/8".into()],
        retry: RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(1100),
            max_backoff: Duration::from_millis(1100),
            max_window: Duration::from_secs(60),
        },
        ..WebhookConfig::default()
    }
}

fn tokens() -> BearerTokens {
    BearerTokens::new()
        .with(ALICE, "alice")
        .unwrap()
        .with(BOB, "bob")
        .unwrap()
}

async fn start(
    webhooks: WebhookConfig,
    revoked: Arc<AtomicBool>,
) -> (TestServer, HttpClient, Server) {
    start_with_history(webhooks, revoked, mcpbus::events::DEFAULT_HISTORY).await
}

async fn start_with_history(
    webhooks: WebhookConfig,
    revoked: Arc<AtomicBool>,
    history: usize,
) -> (TestServer, HttpClient, Server) {
    let server = Server::builder("webhooks", "1")
        .event_log(Arc::new(MemoryEventLog::with_history(history)))
        .topic(TopicSpec::content("build/+").retained(true))
        .topic(TopicSpec::signal("agents/{agent_id}/inbox"))
        .topic(
            TopicSpec::content("vip/news")
                .authorize(move |_, _| Ok(!revoked.load(Ordering::SeqCst))),
        )
        .webhooks(webhooks)
        .bearer_tokens(tokens())
        .build()
        .unwrap();
    let served = server.clone();
    let ts =
        TestServer::start(|l, stop| serve_http(l, "/mcp", served, HttpConfig::default(), stop))
            .await;
    let raw = HttpClient::new(ts.url());
    (ts, raw, server)
}

async fn publish(server: &Server, topic: &str, payload: Value) -> String {
    server
        .events()
        .publish(Event::new(topic, payload))
        .await
        .unwrap()
        .event_id
}

fn subscribe_params(name: &str, url: &str, secret: &str) -> Value {
    json!({
        "name": name,
        "arguments": {"retained": false},
        "delivery": {"mode": "webhook", "url": url, "secret": secret},
        "ttlMs": 600_000
    })
}

/// `events/subscribe` as Alice, for webhook delivery of `pattern` to `url` signed with `key`.
async fn subscribe_alice(raw: &HttpClient, pattern: &str, url: &str, key: &str) -> Value {
    call_as(
        raw,
        Some(ALICE),
        "events/subscribe",
        subscribe_params(pattern, url, key),
    )
    .await
}

#[tokio::test]
async fn deliveries_are_signed_verified_in_order_and_end_with_unsubscribe() {
    let (_ts, raw, server) = start(config(), Arc::default()).await;
    let receiver = Receiver::start().await;
    let key = secret(1);
    let list = call_as(&raw, None, "events/list", json!({})).await;
    assert_eq!(
        list["result"]["events"][0]["delivery"],
        json!(["poll", "push", "webhook"])
    );

    let params = subscribe_params("build/+", &receiver.url, &key);
    let answer = call_as(&raw, Some(ALICE), "events/subscribe", params.clone()).await;
    let result = &answer["result"];
    let id = result["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("sub_"), "{answer}");
    assert_eq!(result["truncated"], false);
    assert!(result["refreshBefore"].as_str().unwrap().ends_with('Z'));
    assert!(result.get("deliveryStatus").is_none(), "only on a refresh");
    let start = result["cursor"].as_str().unwrap().to_owned();

    // The challenge came first, signed like any delivery, before the subscription existed.
    let verification = receiver.wait_for(1, T).await.remove(0);
    assert!(verification.is("verification"));
    assert!(
        verification
            .header("webhook-id")
            .starts_with("msg_verification_")
    );
    assert_eq!(verification.header("x-mcp-subscription-id"), id);

    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(publish(&server, &format!("build/p{n}"), json!({"n": n})).await);
    }
    let got = receiver.wait_for(4, T).await;
    assert_all_verify(&key, &got).await;
    let events: Vec<Value> = got[1..].iter().map(support::Received::json).collect();
    for (n, (event, delivery)) in events.iter().zip(&got[1..]).enumerate() {
        assert_eq!(event["eventId"], ids[n]);
        assert_eq!(delivery.header("webhook-id"), ids[n]);
        assert_eq!(delivery.header("x-mcp-subscription-id"), id);
        assert_eq!(delivery.header("content-type"), "application/json");
        assert_eq!(event["name"], "build/+");
        assert_eq!(event["data"]["topic"], format!("build/p{n}"));
        assert_eq!(event["data"]["payload"], json!({"n": n}));
    }
    // Each payload's cursor is the watermark when it was sent: the first is where the
    // subscription started, later ones the previous event, acknowledged by then.
    assert_eq!(events[0]["cursor"], start.as_str());
    let cursors: Vec<u64> = events
        .iter()
        .map(|e| e["cursor"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "{cursors:?}");

    // A refresh: same id, a delivery status, the watermark past the acknowledged events.
    let refresh = call_as(&raw, Some(ALICE), "events/subscribe", params.clone()).await;
    let refreshed = &refresh["result"];
    assert_eq!(refreshed["id"], id.as_str());
    assert_eq!(refreshed["deliveryStatus"]["active"], true);
    assert_eq!(refreshed["deliveryStatus"]["lastError"], Value::Null);
    assert!(refreshed["deliveryStatus"]["lastDeliveryAt"].is_string());
    let watermark: u64 = refreshed["cursor"].as_str().unwrap().parse().unwrap();
    assert!(watermark > cursors[2], "{refresh}");
    assert_eq!(
        receiver.received().len(),
        4,
        "a refresh is not verified again"
    );

    // Another principal's subscription to the same URL is another subscription, verified anew.
    let bob = call_as(&raw, Some(BOB), "events/subscribe", params.clone()).await;
    assert_ne!(bob["result"]["id"], id.as_str());
    assert!(receiver.wait_for(5, T).await[4].is("verification"));
    assert_eq!(server.webhook_subscriptions(), 2);

    let unsubscribe = json!({"name": "build/+", "arguments": {"retained": false}, "delivery": {"url": receiver.url}});
    let done = call_as(&raw, Some(ALICE), "events/unsubscribe", unsubscribe.clone()).await;
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    let again = call_as(&raw, Some(ALICE), "events/unsubscribe", unsubscribe.clone()).await;
    assert_eq!(again["error"]["code"], error_codes::NOT_FOUND);
    assert_eq!(again["error"]["data"]["kind"], "subscription");
    call_as(&raw, Some(BOB), "events/unsubscribe", unsubscribe).await;
    assert_eq!(server.webhook_subscriptions(), 0);
    publish(&server, "build/late", json!({})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 5, "nothing after unsubscribe");
}

#[tokio::test]
async fn a_receiver_that_fails_the_challenge_gets_nothing() {
    let (_ts, raw, server) = start(config(), Arc::default()).await;
    let receiver = Receiver::start().await;
    receiver.refuse_challenges();
    let key = secret(2);
    let answer = subscribe_alice(&raw, "build/+", &receiver.url, &key).await;
    assert_eq!(
        answer["error"]["code"],
        error_codes::CALLBACK_ENDPOINT_ERROR,
        "{answer}"
    );
    assert_eq!(answer["error"]["data"]["reason"], "challenge_failed");
    assert_eq!(server.webhook_subscriptions(), 0);
    publish(&server, "build/x", json!({})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = receiver.received();
    assert_eq!(got.len(), 1, "the challenge only: {got:?}");
    assert!(got[0].is("verification"));
    assert_all_verify(&key, &got).await;
}

#[tokio::test]
async fn verifications_to_one_host_are_rate_limited() {
    let webhooks = WebhookConfig {
        max_verifications_per_host: 1,
        ..config()
    };
    let (_ts, raw, server) = start(webhooks, Arc::default()).await;
    let receiver = Receiver::start().await;
    let params = subscribe_params("build/+", &receiver.url, &secret(13));
    assert!(
        call_as(&raw, Some(ALICE), "events/subscribe", params.clone()).await["result"].is_object()
    );
    let bob = call_as(&raw, Some(BOB), "events/subscribe", params.clone()).await;
    assert_eq!(
        bob["error"]["code"],
        error_codes::RESOURCE_EXHAUSTED,
        "{bob}"
    );
    assert_eq!(bob["error"]["data"]["limit"], "verifications");
    // A refresh needs no verification.
    assert!(call_as(&raw, Some(ALICE), "events/subscribe", params).await["result"].is_object());
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(server.webhook_subscriptions(), 1);
}

#[tokio::test]
async fn failed_deliveries_are_retried_each_time_with_a_fresh_timestamp_and_signature() {
    let (_ts, raw, server) = start(config(), Arc::default()).await;
    let receiver = Receiver::start().await;
    receiver.answer_with(&[500, 500, 500]);
    let key = secret(3);
    subscribe_alice(&raw, "build/+", &receiver.url, &key).await;
    let id = publish(&server, "build/retry", json!({})).await;
    let got = receiver.wait_for(5, Duration::from_secs(20)).await;
    let attempts = &got[1..];
    assert_eq!(attempts.len(), 4);
    assert!(attempts.iter().all(|a| a.header("webhook-id") == id));
    assert!(
        attempts.iter().all(|a| a.body == attempts[0].body),
        "the same body each time"
    );
    let stamps: Vec<i64> = attempts
        .iter()
        .map(|a| a.header("webhook-timestamp").parse().unwrap())
        .collect();
    assert!(
        stamps.windows(2).all(|w| w[0] < w[1]),
        "fresh timestamps: {stamps:?}"
    );
    let signatures: Vec<&str> = attempts
        .iter()
        .map(|a| a.header("webhook-signature"))
        .collect();
    assert!(
        signatures.windows(2).all(|w| w[0] != w[1]),
        "fresh signatures: {signatures:?}"
    );
    assert_all_verify(&key, &got).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        receiver.received().len(),
        5,
        "delivered on the 4th attempt, not again"
    );
    let refresh = subscribe_alice(&raw, "build/+", &receiver.url, &key).await;
    assert_eq!(
        refresh["result"]["deliveryStatus"]["lastError"],
        Value::Null,
        "{refresh}"
    );
}

#[tokio::test]
async fn gone_ends_the_subscription_without_retry() {
    let (_ts, raw, server) = start(config(), Arc::default()).await;
    let receiver = Receiver::start().await;
    receiver.answer_with(&[410]);
    let key = secret(4);
    subscribe_alice(&raw, "build/+", &receiver.url, &key).await;
    assert_eq!(server.webhook_subscriptions(), 1);
    let first = publish(&server, "build/a", json!({})).await;
    let got = receiver.wait_for(2, T).await;
    assert_eq!(got[1].header("webhook-id"), first);
    assert_all_verify(&key, &got).await;
    // The endpoint is gone: no retry, no later event, no subscription.
    publish(&server, "build/b", json!({})).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got_later = receiver.received();
    assert_eq!(got_later.len(), 2, "nothing after a 410: {got_later:#?}");
    assert_eq!(server.webhook_subscriptions(), 0);
    // Subscribing again starts over (a new verification, then delivery).
    let again = subscribe_alice(&raw, "build/+", &receiver.url, &key).await;
    // A fresh subscription, not a refresh: it has no delivery history to report.
    assert!(again["result"]["id"].is_string(), "{again}");
    assert!(again["result"].get("deliveryStatus").is_none(), "{again}");
    assert_eq!(server.webhook_subscriptions(), 1);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let mut webhooks = config();
    webhooks.retry.max_attempts = 1;
    let (_ts, raw, server) = start(webhooks, Arc::default()).await;
    let receiver = Receiver::start().await;
    receiver.answer_with(&[307]);
    let key = secret(15);
    let params = subscribe_params("build/+", &receiver.url, &key);
    call_as(&raw, Some(ALICE), "events/subscribe", params.clone()).await;
    publish(&server, "build/moved", json!({})).await;
    receiver.wait_for(2, T).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.received().len(),
        2,
        "the redirect was not followed"
    );
    let refresh = call_as(&raw, Some(ALICE), "events/subscribe", params).await;
    assert_eq!(
        refresh["result"]["deliveryStatus"]["lastError"], "http_4xx",
        "{refresh}"
    );
}

#[tokio::test]
async fn a_slow_endpoint_times_out() {
    let mut webhooks = config();
    webhooks.retry.max_attempts = 1;
    webhooks.timeout = Duration::from_millis(300);
    let (_ts, raw, server) = start(webhooks, Arc::default()).await;
    let receiver = Receiver::start().await;
    receiver.answer_slowly(1);
    let key = secret(16);
    let params = subscribe_params("build/+", &receiver.url, &key);
    call_as(&raw, Some(ALICE), "events/subscribe", params.clone()).await;
    publish(&server, "build/slow", json!({})).await;
    receiver.wait_for(2, T).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let refresh = call_as(&raw, Some(ALICE), "events/subscribe", params).await;
    assert_eq!(
        refresh["result"]["deliveryStatus"]["lastError"], "timeout",
        "{refresh}"
    );
}

#[tokio::test]
async fn repeated_failures_suspend_delivery_until_a_refresh() {
    let mut webhooks = config();
    webhooks.suspend_min_attempts = 2;
    webhooks.retry.max_attempts = 1;
    let (_ts, raw, server) = start(webhooks, Arc::default()).await;
    let receiver = Receiver::start().await;
    receiver.answer_with(&[500, 500]);
    let key = secret(14);
    let params = subscribe_params("build/+", &receiver.url, &key);
    call_as(&raw, Some(ALICE), "events/subscribe", params.clone()).await;
    publish(&server, "build/a", json!(1)).await;
    publish(&server, "build/b", json!(2)).await;
    receiver.wait_for(3, T).await;
    let held = publish(&server, "build/c", json!(3)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.received().len(),
        3,
        "suspended: nothing more is sent"
    );
    let refresh = call_as(&raw, Some(ALICE), "events/subscribe", params).await;
    let status = &refresh["result"]["deliveryStatus"];
    assert_eq!(status["active"], false, "{refresh}");
    assert_eq!(status["lastError"], "http_5xx");
    assert!(status["failedSince"].is_string());
    // The refresh resumed delivery.
    let got = receiver.wait_for(4, T).await;
    assert_eq!(got[3].header("webhook-id"), held);
    assert_all_verify(&key, &got).await;
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allowed() {
    let (_ts, raw, server) = start(WebhookConfig::default(), Arc::default()).await;
    let receiver = Receiver::start().await;
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let key = secret(5);
    for (url, says) in [
        (receiver.url.clone(), "must be https"),
        (
            format!("https://127.0.0.1:{port}/hook"),
            "not a public address",
        ),
        (
            format!("https://localhost:{port}/hook"),
            "not a public address",
        ),
        (format!("https://[::1]:{port}/hook"), "not a public address"),
    ] {
        let answer = call_as(
            &raw,
            Some(ALICE),
            "events/subscribe",
            subscribe_params("build/+", &url, &key),
        )
        .await;
        assert_eq!(
            answer["error"]["code"],
            error_codes::INVALID_PARAMS,
            "{url}: {answer}"
        );
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{url}: {message}");
    }
    assert!(receiver.received().is_empty(), "nothing was contacted");
    assert_eq!(server.webhook_subscriptions(), 0);
}

#[tokio::test]
async fn webhooks_need_an_authenticated_principal_and_bad_input_is_refused() {
    let (_ts, raw, _server) = start(config(), Arc::default()).await;
    let receiver = Receiver::start().await;
    let params = subscribe_params("build/+", &receiver.url, &secret(6));
    let anonymous = call_as(&raw, None, "events/subscribe", params.clone()).await;
    assert_eq!(
        anonymous["error"]["code"],
        error_codes::FORBIDDEN,
        "{anonymous}"
    );
    let unknown = post_as(
        &raw,
        Some("not-a-known-token-at-all"),
        &mcpbus_testkit::modern::request(1, "events/list", json!({}), json!({})),
    )
    .await;
    assert_eq!(unknown.status, 401);
    assert_eq!(unknown.header("www-authenticate"), Some("Bearer"));
    // Without a token everything else works as before.
    let list = call_as(&raw, None, "events/list", json!({})).await;
    assert!(list["result"]["events"].is_array());

    let mut bad = params.clone();
    bad["delivery"]["secret"] = json!("whsec_dG9vIHNob3J0");
    let answer = call_as(&raw, Some(ALICE), "events/subscribe", bad).await;
    assert_eq!(
        answer["error"]["code"],
        error_codes::INVALID_PARAMS,
        "{answer}"
    );
    let mut bad = params.clone();
    bad["delivery"]["secret"] = json!("hunter2");
    let answer = call_as(&raw, Some(ALICE), "events/subscribe", bad).await;
    assert_eq!(answer["error"]["code"], error_codes::INVALID_PARAMS);
    let mut bad = params.clone();
    bad["name"] = json!("no/such/type");
    let answer = call_as(&raw, Some(ALICE), "events/subscribe", bad).await;
    assert_eq!(answer["error"]["code"], error_codes::NOT_FOUND);
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn a_principal_subscribes_to_its_own_scoped_topic_and_only_that() {
    let (_ts, raw, server) = start(config(), Arc::default()).await;
    let receiver = Receiver::start().await;
    let key = secret(7);
    let mine = subscribe_params("agents/{agent_id}/inbox", &receiver.url, &key);
    let answer = call_as(&raw, Some(ALICE), "events/subscribe", mine.clone()).await;
    assert!(answer["result"]["id"].is_string(), "{answer}");
    let mut theirs = mine.clone();
    theirs["arguments"]["agent_id"] = json!("bob");
    let answer = call_as(&raw, Some(ALICE), "events/subscribe", theirs).await;
    assert_eq!(answer["error"]["code"], error_codes::FORBIDDEN, "{answer}");
    // Polls of the modern era see the same principal.
    let poll = json!({"name": "agents/{agent_id}/inbox", "cursor": null});
    assert!(call_as(&raw, Some(ALICE), "events/poll", poll.clone()).await["result"].is_object());
    assert_eq!(
        call_as(&raw, None, "events/poll", poll).await["error"]["code"],
        error_codes::FORBIDDEN
    );

    publish(&server, "agents/bob/inbox", json!({"for": "bob"})).await;
    let id = publish(&server, "agents/alice/inbox", json!({"for": "alice"})).await;
    let got = receiver.wait_for(2, T).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 2);
    assert_eq!(got[1].header("webhook-id"), id);
    assert_all_verify(&key, &got).await;
}

#[tokio::test]
async fn a_revoked_authorization_terminates_the_subscription() {
    let revoked = Arc::new(AtomicBool::new(false));
    let (_ts, raw, server) = start(config(), revoked.clone()).await;
    let receiver = Receiver::start().await;
    let key = secret(8);
    subscribe_alice(&raw, "vip/news", &receiver.url, &key).await;
    publish(&server, "vip/news", json!(1)).await;
    receiver.wait_for(2, T).await;
    revoked.store(true, Ordering::SeqCst);
    publish(&server, "vip/news", json!(2)).await;
    let got = receiver.wait_for(3, T).await;
    let terminated = got[2].json();
    assert_eq!(terminated["type"], "terminated", "{terminated}");
    assert_eq!(terminated["error"]["code"], error_codes::FORBIDDEN);
    assert!(got[2].header("webhook-id").starts_with("msg_terminated_"));
    assert_all_verify(&key, &got).await;
    assert_eq!(server.webhook_subscriptions(), 0);
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_old_one_for_a_grace_period() {
    let (_ts, raw, server) = start(config(), Arc::default()).await;
    let receiver = Receiver::start().await;
    let (old, new) = (secret(9), secret(10));
    call_as(
        &raw,
        Some(ALICE),
        "events/subscribe",
        subscribe_params("build/+", &receiver.url, &old),
    )
    .await;
    call_as(
        &raw,
        Some(ALICE),
        "events/subscribe",
        subscribe_params("build/+", &receiver.url, &new),
    )
    .await;
    publish(&server, "build/rotated", json!({})).await;
    let got = receiver.wait_for(2, T).await;
    assert_eq!(got[1].header("webhook-signature").split(' ').count(), 2);
    assert_eq!(verify(&old, &got[1..]).await, ["ok"]);
    assert_eq!(verify(&new, &got[1..]).await, ["ok"]);
    // The library does check: a secret that signed nothing is refused.
    let refused = verify(&secret(99), &got[1..]).await;
    assert!(refused[0].contains("No matching signature"), "{refused:?}");
}

#[tokio::test]
async fn a_subscription_that_falls_behind_the_log_hears_of_the_gap() {
    let (_ts, raw, server) = start_with_history(config(), Arc::default(), 3).await;
    let receiver = Receiver::start().await;
    receiver.answer_with(&[500]);
    let key = secret(12);
    subscribe_alice(&raw, "build/+", &receiver.url, &key).await;
    publish(&server, "build/first", json!(0)).await;
    receiver.wait_for(2, T).await;
    // While the first event waits for its retry, the log (3 events kept) moves on.
    let mut ids = Vec::new();
    for n in 1..=7 {
        ids.push(publish(&server, "build/more", json!(n)).await);
    }
    let got = receiver.wait_for(7, T).await;
    assert_eq!(
        got[2].header("webhook-id"),
        got[1].header("webhook-id"),
        "the retry"
    );
    let gap = got[3].json();
    assert_eq!(gap["type"], "gap", "{gap}");
    assert!(gap["cursor"].is_string());
    assert!(got[3].header("webhook-id").starts_with("msg_gap_"));
    let delivered: Vec<&str> = got[4..].iter().map(|g| g.header("webhook-id")).collect();
    assert_eq!(
        delivered,
        ids[4..].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(
        got[4].json()["cursor"],
        gap["cursor"],
        "the watermark moved to the gap's cursor"
    );
    assert_all_verify(&key, &got).await;
}

#[tokio::test]
async fn retained_values_come_first_from_now() {
    let (_ts, raw, server) = start(config(), Arc::default()).await;
    let receiver = Receiver::start().await;
    let key = secret(11);
    server
        .events()
        .publish(Event::new("build/kept", json!({"v": 1})).retained(true))
        .await
        .unwrap();
    let mut params = subscribe_params("build/+", &receiver.url, &key);
    params["arguments"] = json!({});
    call_as(&raw, Some(ALICE), "events/subscribe", params).await;
    let got = receiver.wait_for(2, T).await;
    assert_eq!(got[1].json()["data"]["payload"], json!({"v": 1}));
    assert_all_verify(&key, &got).await;
}
