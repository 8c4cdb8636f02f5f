//! `mcpbus serve` with `[auth.oauth]` (docs/auth.md), driven from outside against the test
//! kit's authorization server on loopback: the MCP endpoint's challenge and metadata,
//! `POST /publish` with access tokens (and the shared publish token still), configuration
//! errors, and the refusal to serve beyond loopback without authentication. Every process
//! listens on 127.0.0.1 only (the refused address is never bound).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use mcpbus_testkit::jsonrpc::initialize_request;
use mcpbus_testkit::{AuthServer, MetadataAt, ServeProcess, TOKEN, fixture, run_bounded};
use serde_json::json;

const MCPBUS: &str = env!("CARGO_BIN_EXE_mcpbus");
/// The deployment's canonical URL in the configurations below.
const RESOURCE: &str = "http://localhost/mcp";

/// A configuration file in the temp directory, removed when dropped.
struct TempConfig(PathBuf);

impl TempConfig {
    fn new(name: &str, text: &str) -> TempConfig {
        let path =
            std::env::temp_dir().join(format!("mcpbus-oauth-{name}-{}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        TempConfig(path)
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The HTTP fixture (publish token included) with `extra` appended.
fn fixture_with(extra: &str) -> String {
    let mut text = std::fs::read_to_string(fixture("http.toml")).unwrap();
    text.push_str(extra);
    text
}

fn oauth_section(auth: &AuthServer) -> String {
    format!(
        "\n[auth.oauth]\nissuer = \"{}\"\nresource = \"{RESOURCE}\"\n\
         required_scopes = [\"mcp\"]\n",
        auth.issuer()
    )
}

#[test]
fn the_endpoint_challenges_and_publish_takes_access_tokens_with_the_publish_scope() {
    let auth = AuthServer::start(MetadataAt::OAuth);
    let config = TempConfig::new("serve", &fixture_with(&oauth_section(&auth)));
    let server = ServeProcess::start(MCPBUS, &config.0, "warn", &[]);

    let metadata = server.request("GET", "/.well-known/oauth-protected-resource/mcp", &[], b"");
    assert_eq!(metadata.status, 200, "{}", metadata.text());
    assert_eq!(metadata.json()["resource"], RESOURCE);
    assert_eq!(
        metadata.json()["authorization_servers"],
        json!([auth.issuer()])
    );
    let anonymous = server.post(None, &initialize_request("t"));
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.header("www-authenticate").unwrap(),
        "Bearer resource_metadata=\"http://localhost/.well-known/oauth-protected-resource/mcp\", \
         scope=\"mcp\""
    );

    let body = json!({"topic": "alerts/warning", "payload": "disk 91%"}).to_string();
    let publish = |token: Option<&str>| {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(auth) = &auth {
            headers.push(("Authorization", auth));
        }
        server.request("POST", "/publish", &headers, body.as_bytes())
    };
    let without_scope = publish(Some(&auth.token(RESOURCE, "alice", "mcp")));
    assert_eq!(without_scope.status, 403, "{}", without_scope.text());
    let challenge = without_scope.header("www-authenticate").unwrap();
    assert!(
        challenge.starts_with("Bearer error=\"insufficient_scope\"")
            && challenge.contains("scope=\"mcpbus:publish\""),
        "{challenge}"
    );
    let with_scope = publish(Some(&auth.token(RESOURCE, "alice", "mcpbus:publish")));
    assert_eq!(with_scope.status, 200, "{}", with_scope.text());
    assert!(with_scope.json()["eventId"].is_string());
    assert_eq!(
        publish(Some(TOKEN)).status,
        200,
        "the shared token still works"
    );
    let wrong_audience = publish(Some(&auth.token(
        "http://elsewhere/mcp",
        "a",
        "mcpbus:publish",
    )));
    assert_eq!(wrong_audience.status, 401);
    let none = publish(None);
    assert_eq!(none.status, 401);
    assert!(
        none.header("www-authenticate")
            .unwrap()
            .contains("scope=\"mcpbus:publish\""),
        "{none:?}"
    );
    assert_eq!(server.healthz()["eventsEmitted"], json!(2));
}

#[test]
fn bad_oauth_settings_stop_serve_with_their_name() {
    let auth = AuthServer::start(MetadataAt::OAuth);
    for (extra, needle) in [
        (
            "\n[auth.oauth]\nissuer = \"http://as.example\"\nresource = \"https://m.example/mcp\"\n"
                .to_owned(),
            "[auth.oauth] the issuer",
        ),
        (
            format!(
                "{}[auth.oauth.introspection]\nclient_id = \"rs\"\n\
                 client_secret_env = \"MCPBUS_TEST_UNSET_SECRET\"\n",
                oauth_section(&auth)
            ),
            "MCPBUS_TEST_UNSET_SECRET is not set",
        ),
        (
            format!("{}leeway = 3\n", oauth_section(&auth)),
            "unknown field `leeway`",
        ),
    ] {
        let config = TempConfig::new("bad", &fixture_with(&extra));
        let mut cmd = ServeProcess::command(MCPBUS, &config.0, "warn", &[]);
        cmd.env_remove("MCPBUS_TEST_UNSET_SECRET");
        let out = run_bounded(cmd, Duration::from_secs(30), "mcpbus serve");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{needle:?} in {stderr}");
    }
}

#[test]
fn serve_stays_on_loopback_without_authentication_unless_told() {
    let mut cmd = Command::new(MCPBUS);
    cmd.args(["serve", "--listen", "0.0.0.0:0"])
        .env_remove("MCPBUS_CONFIG")
        .env_remove("MCPBUS_REDIS");
    let out = run_bounded(cmd, Duration::from_secs(30), "mcpbus serve");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0")
            && stderr.contains("--allow-unauthenticated")
            && stderr.contains("[auth] allow_unauthenticated = true"),
        "{stderr}"
    );
    assert!(!stderr.contains("listening on"), "{stderr}");
}
