//! The Redis task store against a real `redis-server` on a free loopback port: the store's
//! contract, then two replicas that each answer for the other's tasks (docs/protocol.md 6.9).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mcpbus::server::modern::ModernConfig;
use mcpbus::server::{Context, NoArgs, Server, ToolError, ToolSpec};
use mcpbus::tasks::{TaskConfig, TaskStore, TaskSupport};
use mcpbus::transport::http::{HttpConfig, serve_http};
use mcpbus_proto::mcp::{ElicitAction, ElicitRequestFormParams, ElicitRequestParams};
use mcpbus_redis::{RedisBackend, RedisConfig};
use mcpbus_testkit::modern::{answer_message, request};
use mcpbus_testkit::{HttpClient, RedisServer, TestServer};
use serde_json::{Value, json};

const TASKS: &str = "io.modelcontextprotocol/tasks";

async fn backend(redis: &RedisServer) -> RedisBackend {
    let mut config = RedisConfig::new(redis.url()).prefix("tasks");
    config.poll_interval = Duration::from_millis(50);
    RedisBackend::connect(config).await.expect("connects")
}

/// A server whose tools run as tasks kept in `store`; `stopped` records that `forever` saw
/// its cancellation.
fn server(store: Arc<dyn TaskStore>, stopped: Arc<AtomicBool>) -> Server {
    let tasks = TaskConfig::new()
        .store(store)
        .ttl(Some(Duration::from_secs(60)));
    let spec = |name: &str| ToolSpec::new(name, "A task").task_support(TaskSupport::Optional);
    Server::builder("replica", "1")
        .modern(ModernConfig::default().tasks(tasks))
        .tool_with(spec("confirm"), |_: NoArgs, ctx: Context| async move {
            let Value::Object(schema) = json!({"type": "object",
                "properties": {"ok": {"type": "boolean"}}})
            else {
                unreachable!()
            };
            let form = ElicitRequestParams::Form(ElicitRequestFormParams {
                message: "Sure?".into(),
                requested_schema: schema,
                meta: None,
            });
            let answer = ctx.input_key("sure").elicit(form).await?;
            Ok::<_, ToolError>(format!(
                "accepted: {}",
                answer.action == ElicitAction::Accept
            ))
        })
        .tool_with(spec("forever"), move |_: NoArgs, ctx: Context| {
            let stopped = stopped.clone();
            async move {
                ctx.cancellation().cancelled().await;
                stopped.store(true, Ordering::SeqCst);
                "cancelled"
            }
        })
        .build()
        .unwrap()
}

async fn replica(redis: &RedisServer, stopped: Arc<AtomicBool>) -> TestServer {
    let s = server(backend(redis).await.task_store(), stopped);
    TestServer::start(|l, stop| serve_http(l, "/mcp", s, HttpConfig::default(), stop)).await
}

/// The result of a modern request declaring the tasks extension.
async fn result(client: &HttpClient, method: &str, params: Value) -> Value {
    let caps = json!({"elicitation": {}, "extensions": {TASKS: {}}});
    let answer = client.post_modern(&request(1, method, params, caps)).await;
    let message = answer_message(&answer);
    message
        .get("result")
        .cloned()
        .unwrap_or_else(|| panic!("{method}: {message}"))
}

/// Polls `tasks/get` on `client` until the task has `status`, for up to 5 s.
async fn wait_for(client: &HttpClient, task_id: &str, status: &str) -> Value {
    for _ in 0..100 {
        let task = result(client, "tasks/get", json!({"taskId": task_id})).await;
        if task["status"] == status {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("task {task_id} never reached {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_creates_once_swaps_by_version_and_wakes_waiters() {
    let redis = RedisServer::start(false);
    let store = backend(&redis).await.task_store();
    // Tasks are made by the server; one runs to get a record to store by hand.
    let s = server(store.clone(), Arc::default());
    let ts =
        TestServer::start(|l, stop| serve_http(l, "/mcp", s, HttpConfig::default(), stop)).await;
    let client = HttpClient::new(ts.url());
    let created = result(
        &client,
        "tools/call",
        json!({"name": "forever", "arguments": {}}),
    )
    .await;
    let id = created["taskId"].as_str().unwrap();
    let record = store
        .load(id)
        .await
        .unwrap()
        .expect("stored before the answer");
    assert_eq!(record.version, 1);
    assert!(store.create(&record).await.is_err(), "ids are unique");
    assert!(store.load("unknown").await.unwrap().is_none());
    let mut next = record.clone();
    next.version = 2;
    next.status_message = Some("changed".into());
    let waiter = tokio::spawn({
        let store = store.clone();
        let id = id.to_owned();
        async move { store.changed(&id, 1).await }
    });
    assert!(!store.replace(&next, 5).await.unwrap(), "stale version");
    assert!(store.replace(&next, 1).await.unwrap());
    tokio::time::timeout(Duration::from_secs(1), waiter)
        .await
        .expect("a write here wakes at once")
        .unwrap();
    let loaded = store.load(id).await.unwrap().unwrap();
    assert_eq!(loaded.status_message.as_deref(), Some("changed"));
    result(&client, "tasks/cancel", json!({"taskId": id})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_answer_and_cancel_each_others_tasks() {
    let redis = RedisServer::start(false);
    let stopped = Arc::new(AtomicBool::new(false));
    let a = replica(&redis, stopped.clone()).await;
    let b = replica(&redis, Arc::default()).await;
    let (on_a, on_b) = (HttpClient::new(a.url()), HttpClient::new(b.url()));
    // Created on A, read and answered on B; A's handler goes on with B's answer.
    let created = result(
        &on_a,
        "tools/call",
        json!({"name": "confirm", "arguments": {}}),
    )
    .await;
    let id = created["taskId"].as_str().unwrap().to_owned();
    let waiting = wait_for(&on_b, &id, "input_required").await;
    assert_eq!(
        waiting["inputRequests"]["sure"]["method"],
        "elicitation/create"
    );
    let answers = json!({"sure": {"action": "accept", "content": {"ok": true}}});
    let ack = result(
        &on_b,
        "tasks/update",
        json!({"taskId": id, "inputResponses": answers}),
    )
    .await;
    assert_eq!(ack["resultType"], "complete");
    let done = wait_for(&on_b, &id, "completed").await;
    assert_eq!(done["result"]["content"][0]["text"], "accepted: true");
    assert_eq!(wait_for(&on_a, &id, "completed").await, done);
    // Cancelled on B, a task running on A stops there.
    let created = result(
        &on_a,
        "tools/call",
        json!({"name": "forever", "arguments": {}}),
    )
    .await;
    let id = created["taskId"].as_str().unwrap().to_owned();
    result(&on_b, "tasks/cancel", json!({"taskId": id})).await;
    let cancelled = wait_for(&on_a, &id, "cancelled").await;
    assert!(cancelled.get("result").is_none(), "{cancelled}");
    for _ in 0..100 {
        if stopped.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        stopped.load(Ordering::SeqCst),
        "A's handler saw the cancellation"
    );
}
