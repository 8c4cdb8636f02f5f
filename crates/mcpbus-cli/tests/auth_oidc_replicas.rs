//! Identity and access end to end with three `mcpbus serve --redis` replicas on one
//! `redis-server` (docs/auth.md, docs/deployment.md), resource servers of a real authorization
//! server (`oidc-provider` on loopback, `mcpbus_testkit::oidc::AuthServer`), each token presented
//! to whichever replica: agent A reads its own inbox and not agent B's in both eras;
//! `POST /publish` needs the publish scope, and agent A receives through other replicas (a poll,
//! its session's GET stream); bad
//! tokens (expired, wrong audience, wrong issuer, a revoked opaque one) are `401` everywhere; a
//! key rotation is picked up by every replica; a handshake-era
//! session opened with agent A's token refuses agent B's on another replica.
//!
//! The replicas share one public URL (`RESOURCE`, as behind a load balancer): the tokens' audience.
//! Needs Node and `oidc-provider`, and redis-server (`bash scripts/test.sh` installs them).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

#[path = "auth_oidc/support.rs"]
mod support;

use mcpbus_testkit::jsonrpc::{initialize_request, subscribe_request};
use mcpbus_testkit::oidc::{AGENT_A, AGENT_B, AuthServer, AuthServerOptions, SCOPES};
use mcpbus_testkit::{RedisServer, ServeProcess};
use serde_json::json;
use support::{
    TempConfig, agent_of, assert_invalid_token, free_port, inbox, legacy, next_emit, open_session,
    open_stream, poll_inbox, polled_events, publish, serve, subscribe, subscribed_and_rejected,
    wait_until_expired, whoami,
};

/// The deployment's public URL, in front of the three replicas.
const RESOURCE: &str = "http://localhost/mcp";
const SUBSCRIBER: [&str; 2] = ["mcp", "events:subscribe"];

/// Three replicas of one deployment sharing `redis`.
fn replicas(auth: &AuthServer, redis: &RedisServer, name: &str) -> (Vec<ServeProcess>, TempConfig) {
    let config = TempConfig::oidc(name, auth, RESOURCE);
    let url = redis.url();
    let shared = ["--redis", url.as_str(), "--redis-prefix", name];
    let replicas = (0..3)
        .map(|_| serve(&config, free_port(), &shared))
        .collect();
    (replicas, config)
}

#[test]
fn inboxes_publishing_and_sessions_hold_across_replicas() {
    let auth = AuthServer::start();
    let redis = RedisServer::start(false);
    let (r, _config) = replicas(&auth, &redis, "oidc-access");
    let a = auth.client_credentials(&AGENT_A, &SUBSCRIBER, RESOURCE);
    let a = a.access_token.as_str();
    let b = auth.client_credentials(&AGENT_B, &SUBSCRIBER, RESOURCE);
    let b = b.access_token.as_str();

    // A session opened on replica 0 with agent A's token, used on replicas 1 and 2.
    let session = open_session(&r[0], a);
    let both = [inbox("agent-a"), inbox("agent-b")];
    let topics: Vec<&str> = both.iter().map(String::as_str).collect();
    let others = legacy(
        &r[1],
        Some(&session),
        Some(b),
        &subscribe_request(2, &topics),
    );
    assert_eq!(
        others.status,
        403,
        "agent B on A's session: {}",
        others.text()
    );
    let (subscribed, rejected) = subscribed_and_rejected(&subscribe(&r[2], &session, a, &topics));
    assert_eq!(subscribed, [inbox("agent-a")]);
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].0, inbox("agent-b"));

    // 2026-07-28, each request to another replica.
    let start = poll_inbox(&r[1], a, "agent-a", None);
    let cursor = start["result"]["cursor"].as_str().unwrap().to_owned();
    let other = poll_inbox(&r[2], a, "agent-b", None);
    assert_eq!(other["error"]["code"], -32024, "{other}");

    let stream = open_stream(&r[1], &session, a);
    let payload = json!({"text": "across replicas"});
    let refused = publish(&r[2], b, &inbox("agent-a"), &payload);
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(
        refused
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer error=\"insufficient_scope\""),
        "{refused:?}"
    );
    let writer = auth.client_credentials(&AGENT_B, &["mcp", "events:publish"], RESOURCE);
    let sent = publish(&r[2], &writer.access_token, &inbox("agent-a"), &payload);
    assert_eq!(sent.status, 200, "{}", sent.text());
    let event_id = sent.json()["eventId"].as_str().unwrap().to_owned();
    let got = poll_inbox(&r[0], a, "agent-a", Some(&cursor));
    let (_, ids) = polled_events(&got);
    assert_eq!(ids, [event_id.as_str()], "{got}");
    let emitted = next_emit(&stream);
    assert_eq!(emitted["eventId"], event_id.as_str(), "{emitted}");

    // A session opened on replica 1 with agent B's token is B's on replica 0 too.
    let b_session = open_session(&r[1], b);
    let mine = [inbox("agent-b")];
    let topics: Vec<&str> = mine.iter().map(String::as_str).collect();
    let as_a = legacy(
        &r[0],
        Some(&b_session),
        Some(a),
        &subscribe_request(3, &topics),
    );
    assert_eq!(as_a.status, 403, "agent A on B's session: {}", as_a.text());
    let (subscribed, _) = subscribed_and_rejected(&subscribe(&r[0], &b_session, b, &topics));
    assert_eq!(subscribed, [inbox("agent-b")]);
}

#[test]
fn bad_tokens_are_refused_and_a_rotation_is_seen_by_every_replica() {
    let auth = AuthServer::start();
    let redis = RedisServer::start(false);
    let (r, _config) = replicas(&auth, &redis, "oidc-tokens");
    let expiring = auth.expiring_token(&SUBSCRIBER, RESOURCE);
    let wrong_audience = auth.client_credentials(&AGENT_A, &SUBSCRIBER, "http://127.0.0.1/x");
    let other = AuthServer::start_with(AuthServerOptions {
        issuer_path: Some("/other-tenant".into()),
        keys_file: Some(auth.keys_file().to_path_buf()),
    });
    let wrong_issuer = other.client_credentials(&AGENT_A, &SUBSCRIBER, RESOURCE);
    let before = auth.client_credentials(&AGENT_A, &SCOPES, RESOURCE);
    let opaque = auth.opaque_token(&SUBSCRIBER, RESOURCE);
    assert!(!opaque.is_jwt());
    for replica in &r {
        assert_eq!(agent_of(replica, &before.access_token), "agent-a");
        // Each replica asks the provider's introspection endpoint itself.
        assert_eq!(agent_of(replica, &opaque.access_token), "agent-a");
    }
    wait_until_expired(&expiring);
    auth.revoke(&opaque);
    for (i, replica) in r.iter().enumerate() {
        for (what, token) in [
            ("expired", &expiring),
            ("wrong audience", &wrong_audience),
            ("wrong issuer", &wrong_issuer),
            ("revoked", &opaque),
        ] {
            let t = token.access_token.as_str();
            let what = format!("{what} on replica {i}");
            assert_invalid_token(&whoami(replica, t), RESOURCE, &what);
            let init = initialize_request("bad");
            assert_invalid_token(&legacy(replica, None, Some(t), &init), RESOURCE, &what);
        }
    }

    let kid = auth.rotate_keys();
    let after = auth.client_credentials(&AGENT_B, &SCOPES, RESOURCE);
    assert_eq!(after.kid(), kid);
    for (i, replica) in r.iter().enumerate() {
        assert_eq!(
            agent_of(replica, &after.access_token),
            "agent-b",
            "replica {i}"
        );
        let sent = publish(replica, &after.access_token, &inbox("agent-a"), &json!(i));
        assert_eq!(sent.status, 200, "replica {i}: {}", sent.text());
    }
}
