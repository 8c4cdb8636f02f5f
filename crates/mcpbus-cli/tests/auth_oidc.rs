//! Identity and access end to end (docs/auth.md): `mcpbus serve` as the resource server of a
//! real authorization server, panva's `oidc-provider` on loopback
//! (`mcpbus_testkit::oidc::AuthServer`, tests/auth/README.md), with topic permissions: each agent
//! reads its own inbox with `events:subscribe`, and publishing needs `events:publish`.
//!
//! Checked in both eras (a handshake-era session's `events/subscribe`, a 2026-07-28
//! `events/poll`): agent A reads `agents/agent-a/inbox` and not agent B's; `POST /publish` is
//! `403` without the publish scope and, with it, delivers to agent A's poll and to its session's
//! GET stream; expired, wrong-audience and
//! wrong-issuer tokens are `401` with the metadata pointer; an opaque token is accepted through
//! introspection until it is revoked; a signing-key rotation is picked up without a restart.
//!
//! Needs Node and `oidc-provider` (`bash scripts/test.sh` installs them; the harness says how
//! when they are missing).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

#[path = "auth_oidc/support.rs"]
mod support;

use mcpbus_testkit::jsonrpc::{initialize_request, subscribe_request};
use mcpbus_testkit::oidc::{
    AGENT_A, AGENT_B, AuthServer, AuthServerOptions, SCOPES, SHORT_TTL_SECS,
};
use serde_json::json;
use support::{
    agent_of, assert_invalid_token, inbox, legacy, metadata_url, modern, next_emit, open_session,
    open_stream, poll_inbox, polled_events, publish, single, subscribe, subscribed_and_rejected,
    wait_until_expired, whoami,
};

const SUBSCRIBER: [&str; 2] = ["mcp", "events:subscribe"];

#[test]
fn agent_a_reads_its_own_inbox_and_not_agent_bs_in_both_eras() {
    let auth = AuthServer::start();
    let (server, _config) = single("inbox", &auth);
    let resource = server.mcp_url();
    let a = auth.client_credentials(&AGENT_A, &SUBSCRIBER, &resource);
    let a = a.access_token.as_str();
    assert_eq!(agent_of(&server, a), "agent-a", "the agent id is the sub");

    // The handshake era: one session opened with agent A's token.
    let session = open_session(&server, a);
    let both = [inbox("agent-a"), inbox("agent-b")];
    let topics: Vec<&str> = both.iter().map(String::as_str).collect();
    let (subscribed, rejected) = subscribed_and_rejected(&subscribe(&server, &session, a, &topics));
    assert_eq!(subscribed, [inbox("agent-a")]);
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].0, inbox("agent-b"));

    // 2026-07-28: every request carries its token.
    let own = poll_inbox(&server, a, "agent-a", None);
    assert!(own["result"]["cursor"].is_string(), "{own}");
    let other = poll_inbox(&server, a, "agent-b", None);
    assert_eq!(other["error"]["code"], -32024, "{other}");

    // The same agent without events:subscribe: the rules refuse its own inbox too.
    let bare = auth.client_credentials(&AGENT_A, &["mcp"], &resource);
    let bare = bare.access_token.as_str();
    let refused = poll_inbox(&server, bare, "agent-a", None);
    assert_eq!(refused["error"]["code"], -32024, "{refused}");
    assert_eq!(
        refused["error"]["message"],
        "Forbidden: not allowed to subscribe to agents/agent-a/inbox"
    );
    let session = open_session(&server, bare);
    let result = subscribe(&server, &session, bare, &[&inbox("agent-a")]);
    let (subscribed, rejected) = subscribed_and_rejected(&result);
    assert!(subscribed.is_empty(), "{result}");
    assert_eq!(
        rejected,
        [(inbox("agent-a"), "permission_denied".to_owned())]
    );
}

#[test]
fn publishing_needs_the_publish_scope_and_agent_a_receives() {
    let auth = AuthServer::start();
    let (server, _config) = single("publish", &auth);
    let resource = server.mcp_url();
    let a = auth.client_credentials(&AGENT_A, &SUBSCRIBER, &resource);
    let a = a.access_token.as_str();
    let start = poll_inbox(&server, a, "agent-a", None);
    let cursor = start["result"]["cursor"].as_str().unwrap().to_owned();
    let session = open_session(&server, a);
    let (subscribed, _) =
        subscribed_and_rejected(&subscribe(&server, &session, a, &[&inbox("agent-a")]));
    assert_eq!(subscribed, [inbox("agent-a")]);
    let stream = open_stream(&server, &session, a);

    let payload = json!({"text": "hello from agent-b"});
    let reader = auth.client_credentials(&AGENT_B, &["mcp"], &resource);
    let refused = publish(&server, &reader.access_token, &inbox("agent-a"), &payload);
    assert_eq!(refused.status, 403, "{}", refused.text());
    let challenge = refused.header("www-authenticate").unwrap();
    assert!(
        challenge.starts_with("Bearer error=\"insufficient_scope\"")
            && challenge.contains("scope=\"events:publish\""),
        "{challenge}"
    );

    let writer = auth.client_credentials(&AGENT_B, &["mcp", "events:publish"], &resource);
    let sent = publish(&server, &writer.access_token, &inbox("agent-a"), &payload);
    assert_eq!(sent.status, 200, "{}", sent.text());
    let event_id = sent.json()["eventId"].as_str().unwrap().to_owned();

    let got = poll_inbox(&server, a, "agent-a", Some(&cursor));
    let (events, ids) = polled_events(&got);
    assert_eq!(ids, [event_id.as_str()], "{got}");
    assert_eq!(events[0]["data"]["payload"], payload, "{got}");
    let emitted = next_emit(&stream);
    assert_eq!(emitted["eventId"], event_id.as_str(), "{emitted}");
    assert_eq!(emitted["payload"], payload, "{emitted}");
    // The rules grant publishing on inboxes only.
    let elsewhere = publish(&server, &writer.access_token, "alerts/warning", &payload);
    assert_eq!(elsewhere.status, 403, "{}", elsewhere.text());
    assert_eq!(
        elsewhere.json()["error"],
        "not allowed to publish on alerts/warning"
    );
}

#[test]
fn expired_wrong_audience_and_wrong_issuer_tokens_get_401_with_the_metadata_pointer() {
    let auth = AuthServer::start();
    let (server, _config) = single("bad-tokens", &auth);
    let resource = server.mcp_url();
    let expiring = auth.expiring_token(&SUBSCRIBER, &resource);
    assert_eq!(expiring.expires_in, SHORT_TTL_SECS);
    assert_eq!(agent_of(&server, &expiring.access_token), "agent-a");

    let elsewhere = format!("http://127.0.0.1:{}/other", server.port);
    let wrong_audience = auth.client_credentials(&AGENT_A, &SUBSCRIBER, &elsewhere);
    // Another issuer signing with the same key: only `iss` is wrong.
    let other = AuthServer::start_with(AuthServerOptions {
        issuer_path: Some("/other-tenant".into()),
        keys_file: Some(auth.keys_file().to_path_buf()),
    });
    let wrong_issuer = other.client_credentials(&AGENT_A, &SUBSCRIBER, &resource);
    let good = auth.client_credentials(&AGENT_A, &SUBSCRIBER, &resource);
    assert_eq!(wrong_issuer.kid(), good.kid(), "the same signing key");
    assert_ne!(wrong_issuer.claims()["iss"], good.claims()["iss"]);
    wait_until_expired(&expiring);

    for (what, token) in [
        ("expired", &expiring),
        ("wrong audience", &wrong_audience),
        ("wrong issuer", &wrong_issuer),
    ] {
        let t = token.access_token.as_str();
        let init = initialize_request("bad");
        assert_invalid_token(&legacy(&server, None, Some(t), &init), &resource, what);
        assert_invalid_token(&whoami(&server, t), &resource, what);
        let sent = publish(&server, t, &inbox("agent-a"), &json!(1));
        assert_invalid_token(&sent, &resource, what);
    }
    // Without any token: the plain challenge, still pointing at the metadata.
    let anonymous = modern(&server, None, "tools/list", json!({}));
    assert_eq!(anonymous.status, 401);
    let challenge = anonymous.header("www-authenticate").unwrap();
    assert!(challenge.contains(&metadata_url(&resource)), "{challenge}");
    assert_eq!(agent_of(&server, &good.access_token), "agent-a");
}

#[test]
fn an_opaque_token_is_accepted_through_introspection_until_revoked() {
    let auth = AuthServer::start();
    let (server, _config) = single("opaque", &auth);
    let resource = server.mcp_url();
    let token = auth.opaque_token(&SUBSCRIBER, &resource);
    assert!(!token.is_jwt());
    let opaque = token.access_token.as_str();
    assert_eq!(agent_of(&server, opaque), "agent-a");
    let own = poll_inbox(&server, opaque, "agent-a", None);
    assert!(own["result"]["cursor"].is_string(), "{own}");
    let session = open_session(&server, opaque);

    auth.revoke(&token);
    assert_eq!(auth.introspect(opaque)["active"], false);
    assert_invalid_token(&whoami(&server, opaque), &resource, "revoked");
    let subscribe = subscribe_request(3, &["agents/agent-a/inbox"]);
    let on_session = legacy(&server, Some(&session), Some(opaque), &subscribe);
    assert_invalid_token(&on_session, &resource, "revoked, on its session");
}

#[test]
fn a_key_rotation_is_picked_up_without_a_restart() {
    let auth = AuthServer::start();
    let (server, _config) = single("rotation", &auth);
    let resource = server.mcp_url();
    let before = auth.client_credentials(&AGENT_A, &SCOPES, &resource);
    assert_eq!(agent_of(&server, &before.access_token), "agent-a");

    let kid = auth.rotate_keys();
    let after = auth.client_credentials(&AGENT_B, &SCOPES, &resource);
    assert_eq!(after.kid(), kid);
    assert_ne!(after.kid(), before.kid());
    assert_eq!(agent_of(&server, &after.access_token), "agent-b");
    let sent = publish(
        &server,
        &after.access_token,
        &inbox("agent-a"),
        &json!("signed anew"),
    );
    assert_eq!(sent.status, 200, "{}", sent.text());
    // The old key left the provider's key set, and mcpbus's with the fetch the new key caused.
    assert_invalid_token(&whoami(&server, &before.access_token), &resource, "old key");
}
