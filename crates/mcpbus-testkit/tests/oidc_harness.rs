//! The authorization server of the OAuth tests (`tests/auth/provider.mjs`, panva's
//! `oidc-provider`, driven by `mcpbus_testkit::oidc::AuthServer`) does what the tests rely on:
//! JWT access tokens with the documented claims, signed by a key its metadata's `jwks_uri`
//! serves; opaque tokens that introspect active until revoked or expired; the authorization
//! code flow completing by itself as `login_hint`; dynamic registration; a key rotation that
//! replaces the served key; other issuers.
//!
//! Node comes from `MCPBUS_NODE`, else `conformance/.node/bin/node`, else `node` on PATH;
//! `oidc-provider` from `npm ci` in `tests/auth`. `bash scripts/test.sh` installs both. Without
//! them these tests fail saying how to fix it (they never pass silently), like the other Node
//! tests.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcpbus_testkit::oidc::{
    AGENT_A, AGENT_A_EXPIRING_OPAQUE, AGENT_B, AuthServer, AuthServerOptions, Client,
    DENYING_ACCOUNT, PUBLIC_REDIRECT_URI, SCOPES, SHORT_TTL_SECS, Token, public_client_metadata,
};
use serde_json::{Value, json};

/// The resource server the tokens are for (nothing listens there: tokens only name it).
const RESOURCE: &str = "http://127.0.0.1:9/mcp";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn b64(part: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(part).unwrap()
}

/// Whether `token`'s RS256 signature verifies with the key of its `kid` in `jwks`.
fn signature_verifies(token: &Token, jwks: &Value) -> bool {
    let kid = token.kid();
    let Some(key) = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
    else {
        return false;
    };
    assert_eq!(key["kty"], "RSA", "{key}");
    let (n, e) = (
        b64(key["n"].as_str().unwrap()),
        b64(key["e"].as_str().unwrap()),
    );
    let (input, signature) = token.access_token.rsplit_once('.').unwrap();
    ring::signature::RsaPublicKeyComponents { n: &n, e: &e }
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            input.as_bytes(),
            &b64(signature),
        )
        .is_ok()
}

#[test]
fn client_credentials_jwts_carry_the_documented_claims_and_a_served_key() {
    let auth = AuthServer::start();
    let metadata = auth.metadata();
    assert_eq!(metadata["issuer"], auth.issuer(), "{metadata}");
    assert_eq!(metadata["jwks_uri"], auth.jwks_uri());
    assert_eq!(metadata["token_endpoint"], auth.token_endpoint());
    assert_eq!(
        metadata["authorization_endpoint"],
        auth.authorization_endpoint()
    );
    assert_eq!(
        metadata["introspection_endpoint"],
        auth.introspection_endpoint()
    );
    assert_eq!(metadata["revocation_endpoint"], auth.revocation_endpoint());
    assert_eq!(
        metadata["registration_endpoint"],
        auth.registration_endpoint()
    );
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        json!(["S256"])
    );
    for scope in SCOPES {
        assert!(
            metadata["scopes_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(scope))
        );
    }
    let openid = auth.openid_configuration();
    assert_eq!(openid["issuer"], auth.issuer());

    let token = auth.client_credentials(&AGENT_A, &["mcp", "events:subscribe"], RESOURCE);
    let (header, claims) = (token.header(), token.claims());
    assert_eq!(header["alg"], "RS256", "{header}");
    assert_eq!(header["typ"], "at+jwt", "{header}");
    assert_eq!(claims["iss"], auth.issuer(), "{claims}");
    assert_eq!(claims["aud"], RESOURCE, "{claims}");
    assert_eq!(claims["sub"], "agent-a", "{claims}");
    assert_eq!(claims["agent_id"], "agent-a", "{claims}");
    assert_eq!(claims["client_id"], "agent-a", "{claims}");
    assert_eq!(claims["scope"], "mcp events:subscribe", "{claims}");
    assert_eq!(token.scope.as_deref(), Some("mcp events:subscribe"));
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert_eq!(exp - iat, 3600, "{claims}");
    assert!(exp > now() + 3500, "{claims}");
    assert!(auth.kids().contains(&token.kid()));
    assert!(signature_verifies(&token, &auth.jwks()));

    let b = auth.client_credentials(&AGENT_B, &["events:publish"], RESOURCE);
    assert_eq!(b.claims()["sub"], "agent-b");
    assert_eq!(b.claims()["scope"], "events:publish");
}

#[test]
fn refusals_are_oauth_errors() {
    let auth = AuthServer::start();
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "mcp"),
        ("resource", "https://example.com/mcp"),
    ];
    let answer = auth.token_request(&AGENT_A, &form);
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(answer.json()["error"], "invalid_target");

    let wrong = Client::new("agent-a", Some("not-the-secret".into()));
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "mcp"),
        ("resource", RESOURCE),
    ];
    let answer = auth.token_request(&wrong, &form);
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert_eq!(answer.json()["error"], "invalid_client");
}

#[test]
fn opaque_tokens_introspect_active_until_revoked() {
    let auth = AuthServer::start();
    let token = auth.opaque_token(&["mcp", "events:webhook"], RESOURCE);
    assert!(!token.is_jwt(), "{}", token.access_token);
    let seen = auth.introspect(&token.access_token);
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["sub"], "agent-a", "{seen}");
    assert_eq!(seen["client_id"], "agent-a-opaque", "{seen}");
    assert_eq!(seen["aud"], RESOURCE, "{seen}");
    assert_eq!(seen["iss"], auth.issuer(), "{seen}");
    assert_eq!(seen["scope"], "mcp events:webhook", "{seen}");
    assert_eq!(seen["token_type"], "Bearer", "{seen}");

    auth.revoke(&token);
    assert_eq!(
        auth.introspect(&token.access_token),
        json!({"active": false})
    );
    assert_eq!(auth.introspect("no-such-token"), json!({"active": false}));
}

#[test]
fn expiring_tokens_expire_after_two_seconds() {
    let auth = AuthServer::start();
    let jwt = auth.expiring_token(&["mcp"], RESOURCE);
    let claims = jwt.claims();
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert_eq!(exp - iat, SHORT_TTL_SECS, "{claims}");
    assert!(exp <= now() + SHORT_TTL_SECS + 1, "{claims}");
    assert_eq!(claims["sub"], "agent-a", "{claims}");
    assert_eq!(claims["client_id"], "agent-a-expiring", "{claims}");
    assert_eq!(jwt.expires_in, SHORT_TTL_SECS);

    let opaque = auth.client_credentials(&AGENT_A_EXPIRING_OPAQUE, &["mcp"], RESOURCE);
    let seen = auth.introspect(&opaque.access_token);
    assert_eq!(seen["active"], true, "{seen}");
    let exp = seen["exp"].as_u64().unwrap();
    while now() <= exp {
        thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(auth.introspect(&opaque.access_token)["active"], false);
}

#[test]
fn the_code_flow_logs_in_as_the_login_hint_without_a_form() {
    let auth = AuthServer::start();
    let token = auth.authorization_code("agent-b", &["mcp", "events:subscribe"], RESOURCE);
    let claims = token.claims();
    assert_eq!(claims["sub"], "agent-b", "{claims}");
    assert_eq!(claims["client_id"], "mcp-public", "{claims}");
    assert_eq!(claims["aud"], RESOURCE, "{claims}");
    assert_eq!(claims["iss"], auth.issuer(), "{claims}");
    assert_eq!(claims["scope"], "mcp events:subscribe", "{claims}");
    assert!(token.refresh_token.is_some(), "{}", token.response);

    let refreshed = auth.refresh(&token, RESOURCE);
    assert_eq!(refreshed.claims()["sub"], "agent-b");
    assert_ne!(refreshed.access_token, token.access_token);

    // No cookies are kept: the next request logs in afresh, as its own login_hint.
    let other = auth.authorization_code("agent-c", &["mcp"], RESOURCE);
    assert_eq!(other.claims()["sub"], "agent-c");

    let url = format!(
        "{}?response_type=code&client_id=mcp-public&redirect_uri={}&scope=mcp&resource={}\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256\
         &state=s1&login_hint={DENYING_ACCOUNT}",
        auth.authorization_endpoint(),
        "http%3A%2F%2F127.0.0.1%2Fcallback",
        "http%3A%2F%2F127.0.0.1%3A9%2Fmcp",
    );
    let back = auth.follow_authorization(&url, PUBLIC_REDIRECT_URI);
    assert!(back.contains("error=access_denied"), "{back}");
    assert!(back.contains("state=s1"), "{back}");
}

#[test]
fn a_dynamically_registered_client_runs_the_code_flow() {
    let auth = AuthServer::start();
    let redirect = "http://127.0.0.1:43210/callback";
    let (client, registration) = auth.register_client(&public_client_metadata(redirect));
    assert_eq!(registration["token_endpoint_auth_method"], "none");
    assert!(client.secret.is_none());
    let token = auth.authorization_code_as(&client, redirect, "agent-a", &["mcp"], RESOURCE);
    assert_eq!(token.claims()["sub"], "agent-a");
    assert_eq!(token.claims()["client_id"], client.id.as_ref());

    let mut confidential = public_client_metadata(redirect);
    confidential["token_endpoint_auth_method"] = json!("client_secret_basic");
    let (client, _) = auth.register_client(&confidential);
    assert!(client.secret.is_some());
    let token = auth.authorization_code_as(&client, redirect, "agent-b", &["mcp"], RESOURCE);
    assert_eq!(token.claims()["sub"], "agent-b");
}

#[test]
fn a_key_rotation_replaces_the_served_key() {
    let auth = AuthServer::start();
    let (issuer, port) = (auth.issuer().to_string(), auth.port());
    let before = auth.client_credentials(&AGENT_A, &["mcp"], RESOURCE);
    let opaque = auth.opaque_token(&["mcp"], RESOURCE);
    let old = before.kid();
    assert_eq!(auth.kids(), vec![old.clone()]);

    let new = auth.rotate_keys();
    assert_ne!(new, old);
    assert_eq!(auth.kids(), vec![new.clone()]);
    let jwks = auth.jwks();
    assert!(!signature_verifies(&before, &jwks), "the old key is gone");
    let after = auth.client_credentials(&AGENT_A, &["mcp"], RESOURCE);
    assert_eq!(after.kid(), new);
    assert!(signature_verifies(&after, &jwks));
    assert_eq!((auth.issuer(), auth.port()), (issuer.as_str(), port));
    assert_eq!(after.claims()["iss"], issuer);
    // What was issued before stays: the storage outlives the key.
    assert_eq!(auth.introspect(&opaque.access_token)["active"], true);
    let code = auth.authorization_code("agent-a", &["mcp"], RESOURCE);
    assert_eq!(code.kid(), new);
}

#[test]
fn other_servers_are_other_issuers() {
    let first = AuthServer::start();
    let second = AuthServer::start();
    assert_ne!(first.issuer(), second.issuer());

    // An issuer with a path: RFC 8414 metadata has the well-known part inserted before it.
    let options = AuthServerOptions {
        issuer_path: Some("/tenant-b".into()),
        keys_file: Some(first.keys_file().to_path_buf()),
    };
    let tenant = AuthServer::start_with(options);
    assert_eq!(
        tenant.issuer(),
        format!("{}/tenant-b", tenant.base_url()).as_str()
    );
    assert!(
        tenant
            .metadata_url()
            .ends_with("/.well-known/oauth-authorization-server/tenant-b")
    );
    let metadata = tenant.metadata();
    assert_eq!(metadata["issuer"], tenant.issuer(), "{metadata}");
    assert_eq!(metadata["token_endpoint"], tenant.token_endpoint());
    assert_eq!(tenant.openid_configuration()["issuer"], tenant.issuer());

    // Signed with the first server's key, but another issuer's token.
    let token = tenant.client_credentials(&AGENT_A, &["mcp"], RESOURCE);
    assert_eq!(token.claims()["iss"], tenant.issuer());
    assert!(signature_verifies(&token, &first.jwks()));
    assert_ne!(token.claims()["iss"], first.issuer());
    let token = tenant.authorization_code("agent-a", &["mcp"], RESOURCE);
    assert_eq!(token.claims()["iss"], tenant.issuer());

    let other = second.client_credentials(&AGENT_A, &["mcp"], RESOURCE);
    assert!(!signature_verifies(&other, &first.jwks()));
}

/// The handle works from async tests too (each request runs on a thread of its own).
#[tokio::test]
async fn the_handle_works_inside_a_runtime() {
    let mut auth = AuthServer::start();
    let token = auth.client_credentials(&AGENT_A, &["mcp"], RESOURCE);
    assert_eq!(token.claims()["sub"], "agent-a");
    auth.kill();
    let answer = mcpbus_testkit::HttpClient::new(auth.jwks_uri())
        .try_call(http::Method::GET, &[], b"")
        .await;
    assert!(answer.is_err(), "{answer:?}");
}
