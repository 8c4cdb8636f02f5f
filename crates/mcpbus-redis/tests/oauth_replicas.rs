//! Two replicas sharing a real Redis, both OAuth resource servers of one deployment
//! (docs/auth.md): a session initialized on one with an access token stays its subject's on the
//! other, which refuses another subject's token and a request without one. The authorization
//! server is the test kit's, on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mcpbus::server::oauth::{ResourceServer, ResourceServerConfig};
use mcpbus::server::{Context, Json, NoArgs, Server};
use mcpbus::transport::http::{HttpConfig, serve_http};
use mcpbus_redis::{RedisBackend, RedisConfig};
use mcpbus_testkit::jsonrpc::{initialize_request, initialized, tool_call};
use mcpbus_testkit::{AuthServer, HttpClient, MetadataAt, RedisServer, TestServer};
use serde_json::json;

/// The deployment's canonical URL, the audience of its tokens, whichever replica is asked.
const RESOURCE: &str = "http://localhost/mcp";

async fn replica(redis: &RedisServer, auth: &AuthServer) -> TestServer {
    let backend = RedisBackend::connect(RedisConfig::new(redis.url()).prefix("oauth"))
        .await
        .unwrap();
    let oauth = ResourceServer::new(ResourceServerConfig::new(RESOURCE, auth.issuer())).unwrap();
    let server = Server::builder("replica", "1")
        .event_log(backend.event_log())
        .tool(
            "whoami",
            "The caller",
            |_: NoArgs, ctx: Context| async move {
                Json(json!({"subject": ctx.principal(), "agentId": &*ctx.agent_id()}))
            },
        )
        .resource_server(oauth)
        .build()
        .unwrap();
    let config = HttpConfig {
        event_store: Some(backend.event_store()),
        session_store: Some(backend.session_store()),
        ..HttpConfig::default()
    };
    TestServer::start(|l, stop| serve_http(l, "/mcp", server, config, stop)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_stays_its_subjects_on_every_replica() {
    let redis = RedisServer::start(false);
    let auth = AuthServer::start(MetadataAt::OAuth);
    let (replica_a, replica_b) = (replica(&redis, &auth).await, replica(&redis, &auth).await);
    let alice = auth.token(RESOURCE, "alice", "");
    let bob = auth.token(RESOURCE, "bob", "");
    let a = HttpClient::new(replica_a.url()).with_bearer(&alice);
    let r = a.post(None, &initialize_request("t")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let session = r.header("mcp-session-id").unwrap().to_string();
    assert_eq!(a.post(Some(&session), &initialized()).await.status, 202);

    let b = HttpClient::new(replica_b.url());
    let as_bob = b
        .with_bearer(&bob)
        .post(Some(&session), &tool_call(2, "whoami"))
        .await;
    assert_eq!(as_bob.status, 403, "{}", as_bob.text());
    let anonymous = b.post(Some(&session), &tool_call(3, "whoami")).await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());
    let as_alice = b
        .with_bearer(&alice)
        .post(Some(&session), &tool_call(4, "whoami"))
        .await;
    assert_eq!(as_alice.status, 200, "{}", as_alice.text());
    assert_eq!(
        as_alice.json()["result"]["structuredContent"],
        json!({"subject": "alice", "agentId": "alice"})
    );
}
