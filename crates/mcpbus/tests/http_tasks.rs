//! Tasks (the 2026-07-28 extension `io.modelcontextprotocol/tasks`, SEP-2663) over raw HTTP:
//! creation, polling, input through `tasks/update`, cancellation, errors, expiry, and two
//! servers sharing one task store as replicas do (docs/protocol.md 6.9).

#![allow(clippy::unwrap_used)] // tests unwrap to fail loudly

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mcpbus::proto::mcp::{ElicitAction, ElicitRequestFormParams, ElicitRequestParams};
use mcpbus::server::modern::ModernConfig;
use mcpbus::server::{Context, NoArgs, Server, ToolError, ToolSpec};
use mcpbus::tasks::{MemoryTaskStore, TaskConfig, TaskStart, TaskStore, TaskSupport};
use mcpbus::transport::http::{HttpConfig, serve_http};
use mcpbus_testkit::jsonrpc::tool_call;
use mcpbus_testkit::modern::{answer_message, request};
use mcpbus_testkit::{HttpClient, SseReader, TestServer};
use serde_json::{Value, json};

const TASKS: &str = "io.modelcontextprotocol/tasks";

/// A 2026-07-28 client of one server, declaring the tasks extension or not.
struct Modern {
    http: HttpClient,
    capabilities: Value,
}

impl Modern {
    fn new(url: String, tasks: bool) -> Self {
        let capabilities = if tasks {
            json!({"elicitation": {}, "extensions": {TASKS: {}}})
        } else {
            json!({"elicitation": {}})
        };
        Modern {
            http: HttpClient::new(url),
            capabilities,
        }
    }

    /// Sends `method` with `params` (plus this client's `_meta` and headers); the HTTP status
    /// and the JSON-RPC answer (the last message of an SSE answer).
    async fn send(&self, method: &str, params: Value) -> (u16, Value) {
        let message = request(7, method, params, self.capabilities.clone());
        let answer = self.http.post_modern(&message).await;
        let message = answer_message(&answer);
        assert_eq!(message["id"], 7, "{message}");
        (answer.status.as_u16(), message)
    }

    /// The result of `method`; panics on an error.
    async fn result(&self, method: &str, params: Value) -> Value {
        let (_, message) = self.send(method, params).await;
        message
            .get("result")
            .cloned()
            .unwrap_or_else(|| panic!("{method}: no result: {message}"))
    }

    /// The error of `method`; panics on a result.
    async fn error(&self, method: &str, params: Value) -> (u16, Value) {
        let (status, message) = self.send(method, params).await;
        let error = message.get("error").cloned();
        (
            status,
            error.unwrap_or_else(|| panic!("{method}: no error: {message}")),
        )
    }

    async fn call(&self, tool: &str, arguments: Value) -> Value {
        self.result("tools/call", json!({"name": tool, "arguments": arguments}))
            .await
    }

    async fn get(&self, task_id: &str) -> Value {
        self.result("tasks/get", json!({"taskId": task_id})).await
    }

    /// Polls `tasks/get` until the task has `status` (or is over), for up to 5 s.
    async fn wait_for(&self, task_id: &str, status: &str) -> Value {
        for _ in 0..250 {
            let task = self.get(task_id).await;
            let now = task["status"].as_str().unwrap().to_owned();
            if now == status || ["completed", "failed", "cancelled"].contains(&now.as_str()) {
                return task;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("task {task_id} never reached {status}");
    }
}

fn confirm_form() -> ElicitRequestParams {
    let Value::Object(schema) = json!({"type": "object",
        "properties": {"confirm": {"type": "boolean"}}, "required": ["confirm"]})
    else {
        unreachable!()
    };
    ElicitRequestParams::Form(ElicitRequestFormParams {
        message: "Really?".into(),
        requested_schema: schema,
        meta: None,
    })
}

/// The tools of these tests; `cancelled` records that `long` saw its cancellation.
fn server(config: TaskConfig, cancelled: Arc<AtomicBool>) -> Server {
    let spec = |name: &str, support| ToolSpec::new(name, "A test tool").task_support(support);
    Server::builder("tasks-test", "1")
        .modern(ModernConfig::default().tasks(config))
        .tool_with(spec("quick", TaskSupport::Optional), |_: NoArgs, _| async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            "quick result"
        })
        .tool_with(
            spec("long", TaskSupport::Optional),
            move |_: NoArgs, ctx: Context| {
                let cancelled = cancelled.clone();
                async move {
                    ctx.cancellation().cancelled().await;
                    cancelled.store(true, Ordering::SeqCst);
                    "never seen"
                }
            },
        )
        .tool_with(
            spec("confirm", TaskSupport::Optional),
            |_: NoArgs, ctx: Context| async move {
                let answer = ctx.input_key("ok").elicit(confirm_form()).await?;
                let ok = answer.action == ElicitAction::Accept;
                Ok::<_, ToolError>(format!("confirmed: {ok}, task {}", ctx.task_id().is_some()))
            },
        )
        .tool_with(
            spec("broken", TaskSupport::Required),
            |_: NoArgs, _| async {
                let error = mcpbus::proto::ErrorObject::internal("backend down");
                Err::<String, _>(ToolError::protocol(error))
            },
        )
        .tool_with(
            spec("gather", TaskSupport::Required).task_start(TaskStart::Handler),
            |_: NoArgs, ctx: Context| async move {
                let answer = ctx.input_key("first").elicit(confirm_form()).await?;
                let before = ctx.task_id().is_some();
                ctx.start_task().await?;
                Ok::<_, ToolError>(format!("{:?}, task before {before}", answer.action))
            },
        )
        .build()
        .unwrap()
}

async fn start(config: TaskConfig) -> (TestServer, Arc<AtomicBool>) {
    let cancelled = Arc::new(AtomicBool::new(false));
    let s = server(config, cancelled.clone());
    let ts = TestServer::start(|l, stop| serve_http(l, "/mcp", s, HttpConfig::default(), stop));
    (ts.await, cancelled)
}

fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap()
}

#[tokio::test]
async fn a_task_is_answered_at_once_and_polled_to_its_result() {
    let (ts, _) = start(TaskConfig::new()).await;
    let client = Modern::new(ts.url(), true);
    let discover = client.result("server/discover", json!({})).await;
    assert_eq!(discover["capabilities"]["extensions"][TASKS], json!({}));
    let created = client.call("quick", json!({})).await;
    assert_eq!(created["resultType"], "task");
    assert_eq!(created["status"], "working");
    assert_eq!(created["ttlMs"], 3_600_000);
    assert_eq!(created["pollIntervalMs"], 500);
    for forbidden in [
        "task",
        "result",
        "content",
        "inputRequests",
        "requestState",
        "ttl",
    ] {
        assert!(created.get(forbidden).is_none(), "{forbidden}: {created}");
    }
    let id = created["taskId"].as_str().unwrap();
    assert_eq!(id.len(), 32);
    let first = client.get(id).await;
    assert_eq!(first["resultType"], "complete");
    assert_eq!(first["taskId"], id);
    let done = client.wait_for(id, "completed").await;
    assert_eq!(done["status"], "completed");
    assert_eq!(text(&done["result"]), "quick result");
    assert!(done["lastUpdatedAt"].as_str() >= done["createdAt"].as_str());
    // Without the extension the same tool answers with its result.
    let plain = Modern::new(ts.url(), false);
    let result = plain.call("quick", json!({})).await;
    assert_eq!(result["resultType"], "complete");
    assert_eq!(text(&result), "quick result");
}

#[tokio::test]
async fn input_parks_the_task_until_tasks_update_answers_it() {
    let (ts, _) = start(TaskConfig::new()).await;
    let client = Modern::new(ts.url(), true);
    let id = client.call("confirm", json!({})).await["taskId"]
        .as_str()
        .unwrap()
        .to_owned();
    let waiting = client.wait_for(&id, "input_required").await;
    assert_eq!(waiting["status"], "input_required");
    assert_eq!(
        waiting["inputRequests"]["ok"]["method"],
        "elicitation/create"
    );
    assert!(waiting.get("requestState").is_none());
    // A malformed answer to an outstanding request is refused; unknown keys are ignored.
    let (_, e) = client
        .error(
            "tasks/update",
            json!({"taskId": id, "inputResponses": {"ok": {"confirm": true}}}),
        )
        .await;
    assert_eq!(e["code"], -32602, "{e}");
    let ack = client
        .result(
            "tasks/update",
            json!({"taskId": id, "inputResponses": {"nope": 1}}),
        )
        .await;
    assert_eq!(ack["resultType"], "complete");
    assert_eq!(client.get(&id).await["status"], "input_required");
    let answer = json!({"ok": {"action": "accept", "content": {"confirm": true}}});
    let ack = client
        .result(
            "tasks/update",
            json!({"taskId": id, "inputResponses": answer}),
        )
        .await;
    assert!(
        ack.get("taskId").is_none() && ack.get("status").is_none(),
        "{ack}"
    );
    let done = client.wait_for(&id, "completed").await;
    assert_eq!(text(&done["result"]), "confirmed: true, task true");
    assert!(done.get("inputRequests").is_none());
}

#[tokio::test]
async fn cancel_is_final_and_stops_the_handler() {
    let (ts, cancelled) = start(TaskConfig::new()).await;
    let client = Modern::new(ts.url(), true);
    let id = client.call("long", json!({})).await["taskId"]
        .as_str()
        .unwrap()
        .to_owned();
    let ack = client.result("tasks/cancel", json!({"taskId": id})).await;
    assert_eq!(ack["resultType"], "complete");
    assert!(ack.get("status").is_none(), "{ack}");
    assert_eq!(client.get(&id).await["status"], "cancelled");
    for _ in 0..100 {
        if cancelled.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        cancelled.load(Ordering::SeqCst),
        "the handler saw its cancellation"
    );
    // Terminal is final: cancelling again is acknowledged and changes nothing.
    client.result("tasks/cancel", json!({"taskId": id})).await;
    let still = client.get(&id).await;
    assert_eq!(still["status"], "cancelled");
    assert!(still.get("result").is_none() && still.get("error").is_none());
}

#[tokio::test]
async fn unknown_tampered_and_undeclared_requests_are_refused() {
    let (ts, _) = start(TaskConfig::new()).await;
    let client = Modern::new(ts.url(), true);
    let id = client.call("long", json!({})).await["taskId"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut tampered = id.clone().into_bytes();
    tampered[5] = if tampered[5] == b'a' { b'b' } else { b'a' };
    let tampered = String::from_utf8(tampered).unwrap();
    for method in ["tasks/get", "tasks/cancel"] {
        let (status, e) = client.error(method, json!({"taskId": tampered})).await;
        assert_eq!((status, e["code"].as_i64()), (200, Some(-32602)), "{e}");
        assert_eq!(e["data"]["taskId"], tampered.as_str());
    }
    let update = json!({"taskId": "no-such-task", "inputResponses": {}});
    assert_eq!(client.error("tasks/update", update).await.1["code"], -32602);
    // Without a taskId there is no Mcp-Name to mirror it either: the headers are refused.
    let (status, e) = client.error("tasks/get", json!({})).await;
    assert_eq!((status, e["code"].as_i64()), (400, Some(-32020)), "{e}");
    // A client that did not declare the extension cannot use its methods at all.
    let plain = Modern::new(ts.url(), false);
    let (status, e) = plain.error("tasks/get", json!({"taskId": id})).await;
    assert_eq!((status, e["code"].as_i64()), (400, Some(-32021)));
    assert_eq!(
        e["data"]["requiredCapabilities"]["extensions"][TASKS],
        json!({})
    );
    // The removed methods of the handshake era's tasks do not exist.
    for removed in ["tasks/result", "tasks/list"] {
        let (status, e) = client.error(removed, json!({"taskId": id})).await;
        assert_eq!((status, e["code"].as_i64()), (404, Some(-32601)));
    }
    client.result("tasks/cancel", json!({"taskId": id})).await;
}

#[tokio::test]
async fn required_tools_need_the_extension_and_errors_fail_the_task() {
    let (ts, _) = start(TaskConfig::new()).await;
    let plain = Modern::new(ts.url(), false);
    let (status, e) = plain
        .error("tools/call", json!({"name": "broken", "arguments": {}}))
        .await;
    assert_eq!((status, e["code"].as_i64()), (400, Some(-32021)), "{e}");
    assert_eq!(
        e["data"]["requiredCapabilities"]["extensions"][TASKS],
        json!({})
    );
    let client = Modern::new(ts.url(), true);
    let id = client.call("broken", json!({})).await["taskId"]
        .as_str()
        .unwrap()
        .to_owned();
    let failed = client.wait_for(&id, "failed").await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], -32603);
    assert_eq!(failed["error"]["message"], "Internal error: backend down");
    assert!(failed.get("result").is_none());
}

#[tokio::test]
async fn a_handler_gathers_input_before_it_starts_its_task() {
    let (ts, _) = start(TaskConfig::new()).await;
    let client = Modern::new(ts.url(), true);
    let round = client.call("gather", json!({})).await;
    assert_eq!(round["resultType"], "input_required");
    assert!(round.get("taskId").is_none());
    let state = round["requestState"].clone();
    let retry = json!({"name": "gather", "arguments": {}, "requestState": state,
        "inputResponses": {"first": {"action": "decline"}}});
    let created = client.result("tools/call", retry).await;
    assert_eq!(created["resultType"], "task", "{created}");
    assert!(created.get("requestState").is_none() && created.get("inputRequests").is_none());
    let done = client
        .wait_for(created["taskId"].as_str().unwrap(), "completed")
        .await;
    assert_eq!(text(&done["result"]), "Decline, task before false");
}

#[tokio::test]
async fn tasks_expire_after_their_ttl() {
    let config = TaskConfig::new().ttl(Some(Duration::from_secs(1)));
    let (ts, _) = start(config).await;
    let client = Modern::new(ts.url(), true);
    let created = client.call("quick", json!({})).await;
    assert_eq!(created["ttlMs"], 1000);
    let id = created["taskId"].as_str().unwrap();
    client.wait_for(id, "completed").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, e) = client.error("tasks/get", json!({"taskId": id})).await;
    assert_eq!(e["code"], -32602);
}

#[tokio::test]
async fn replicas_sharing_a_store_answer_for_each_others_tasks() {
    let store: Arc<dyn TaskStore> = Arc::new(MemoryTaskStore::default());
    let (a, _) = start(TaskConfig::new().store(store.clone())).await;
    let (b, _) = start(TaskConfig::new().store(store)).await;
    let (on_a, on_b) = (Modern::new(a.url(), true), Modern::new(b.url(), true));
    let id = on_a.call("confirm", json!({})).await["taskId"]
        .as_str()
        .unwrap()
        .to_owned();
    on_b.wait_for(&id, "input_required").await;
    let answer = json!({"ok": {"action": "accept", "content": {"confirm": true}}});
    on_b.result(
        "tasks/update",
        json!({"taskId": id, "inputResponses": answer}),
    )
    .await;
    let done = on_b.wait_for(&id, "completed").await;
    assert_eq!(text(&done["result"]), "confirmed: true, task true");
}

#[tokio::test]
async fn a_server_without_task_tools_offers_no_tasks() {
    let s = Server::builder("plain", "1")
        .tool("echo", "Echoes", |_: NoArgs, _| async { "echo" })
        .build()
        .unwrap();
    let ts =
        TestServer::start(|l, stop| serve_http(l, "/mcp", s, HttpConfig::default(), stop)).await;
    let client = Modern::new(ts.url(), true);
    let discover = client.result("server/discover", json!({})).await;
    assert!(
        discover["capabilities"].get("extensions").is_none(),
        "{discover}"
    );
    let result = client.call("echo", json!({})).await;
    assert_eq!(text(&result), "echo");
    let (status, e) = client.error("tasks/get", json!({"taskId": "x"})).await;
    assert_eq!((status, e["code"].as_i64()), (404, Some(-32601)));
}

#[tokio::test]
async fn a_handshake_session_runs_optional_tools_inline_and_refuses_required_ones() {
    let (ts, _) = start(TaskConfig::new()).await;
    let raw = HttpClient::new(ts.url());
    let session = raw.initialize().await;
    let answer = raw
        .post(Some(&session), &tool_call(2, "quick"))
        .await
        .json();
    assert_eq!(text(&answer["result"]), "quick result");
    let answer = raw
        .post(Some(&session), &tool_call(3, "broken"))
        .await
        .json();
    assert_eq!(answer["error"]["code"], -32601, "{answer}");
}

#[tokio::test]
async fn listen_streams_carry_the_state_of_the_tasks_they_watch() {
    let (ts, _) = start(TaskConfig::new()).await;
    let client = Modern::new(ts.url(), true);
    let id = client.call("confirm", json!({})).await["taskId"]
        .as_str()
        .unwrap()
        .to_owned();
    client.wait_for(&id, "input_required").await;
    let caps = json!({"extensions": {TASKS: {}}});
    let filter = json!({"notifications": {"taskIds": [id, "unknown-task"]}});
    let listen = request(9, "subscriptions/listen", filter.clone(), caps);
    let mut stream = SseReader::new(client.http.post_modern_stream(&listen).await);
    let t = Duration::from_secs(5);
    let (_, ack) = stream.next_message(t).await.unwrap();
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(ack["params"]["notifications"], json!({"taskIds": [id]}));
    // First the state as it is, then every change.
    let (_, now) = stream.next_message(t).await.unwrap();
    assert_eq!(now["method"], "notifications/tasks");
    assert_eq!(now["params"]["status"], "input_required");
    assert_eq!(
        now["params"]["inputRequests"]["ok"]["method"],
        "elicitation/create"
    );
    assert_eq!(
        now["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        9
    );
    let answer = json!({"ok": {"action": "accept", "content": {"confirm": true}}});
    client
        .result(
            "tasks/update",
            json!({"taskId": id, "inputResponses": answer}),
        )
        .await;
    let mut seen = Vec::new();
    while seen.last().is_none_or(|s| s != "completed") {
        let (_, note) = stream.next_message(t).await.expect("a task notification");
        assert_eq!(note["params"]["taskId"], id.as_str());
        seen.push(note["params"]["status"].as_str().unwrap().to_owned());
        if note["params"]["status"] == "completed" {
            assert_eq!(
                text(&note["params"]["result"]),
                "confirmed: true, task true"
            );
        }
    }
    // Each notification shows the task as it is when sent: a state that passes quickly may be
    // skipped, never shown out of order.
    assert!(
        seen == ["completed"] || seen == ["working", "completed"],
        "{seen:?}"
    );
    // Watching tasks needs the extension.
    let plain = request(10, "subscriptions/listen", filter, json!({}));
    let refused = answer_message(&client.http.post_modern(&plain).await);
    assert_eq!(refused["error"]["code"], -32021, "{refused}");
}
