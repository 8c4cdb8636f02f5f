//! Two `mcpbus serve --redis` replicas serving the 2026-07-28 era (docs/protocol.md 6): a
//! listen stream held by one replica hears a change made on the other, an `input_required`
//! round started on one replica completes on the other (they share the requestState key), and
//! a task created on one is followed and answered on the other (they share the task store).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use mcpbus_testkit::modern::{answer_message, request};
use mcpbus_testkit::{HttpClient, RedisServer, ServeProcess, SseReader, block_on, fixture};
use serde_json::{Value, json};

const KEY: &str = "a shared secret of the test deployment";

fn replica(redis: &RedisServer, key: Option<&str>) -> ServeProcess {
    let mut cmd = ServeProcess::command(
        env!("CARGO_BIN_EXE_mcpbus"),
        &fixture("confirm.toml"),
        "info",
        &["--redis", &redis.url(), "--redis-prefix", "modern"],
    );
    cmd.env_remove("MCPBUS_STATE_KEY");
    if let Some(key) = key {
        cmd.env("MCPBUS_STATE_KEY", key);
    }
    ServeProcess::spawn(cmd)
}

fn urgent_publish(id: i64, extra: Value) -> Value {
    let mut params = json!({"name": "publish", "arguments": {
        "topic": "alerts/critical", "payload": {"disk": "full"}, "priority": "urgent"
    }});
    if let (Some(p), Some(extra)) = (params.as_object_mut(), extra.as_object()) {
        p.extend(extra.clone());
    }
    request(id, "tools/call", params, json!({"elicitation": {}}))
}

/// Opens a listen stream on a thread of its own; its messages arrive on the channel.
fn listen(url: String, message: Value) -> mpsc::Receiver<Value> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        block_on(async move {
            let response = HttpClient::new(url).post_modern_stream(&message).await;
            assert_eq!(response.status(), 200);
            let mut stream = SseReader::new(response);
            while let Some((_, m)) = stream.next_message(Duration::from_secs(30)).await {
                if tx.send(m).is_err() {
                    return;
                }
            }
        })
    });
    rx
}

#[test]
fn a_listen_stream_on_one_replica_hears_a_change_made_on_the_other() {
    let redis = RedisServer::start(false);
    let (a, b) = (replica(&redis, Some(KEY)), replica(&redis, Some(KEY)));
    let filter = json!({"notifications": {"resourceSubscriptions": ["mcpbus://retained"]}});
    let stream = listen(
        a.mcp_url(),
        request(7, "subscriptions/listen", filter, json!({})),
    );
    let ack = stream.recv_timeout(Duration::from_secs(5)).expect("an ack");
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(
        ack["params"]["notifications"]["resourceSubscriptions"],
        json!(["mcpbus://retained"])
    );
    // A retained event published through replica B changes mcpbus://retained.
    let r = b.publish(&json!({"topic": "build/status", "payload": {"state": "green"}}));
    assert_eq!(r.status, 200, "{}", r.text());
    let update = stream
        .recv_timeout(Duration::from_secs(10))
        .expect("resources/updated from the other replica");
    assert_eq!(update["method"], "notifications/resources/updated");
    assert_eq!(update["params"]["uri"], "mcpbus://retained");
    assert_eq!(
        update["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        7
    );
}

#[test]
fn an_input_required_round_started_on_one_replica_completes_on_the_other() {
    let redis = RedisServer::start(false);
    let (a, b) = (replica(&redis, Some(KEY)), replica(&redis, Some(KEY)));
    let stranger = replica(&redis, Some("another deployment's secret key"));
    block_on(async {
        let first = HttpClient::new(a.mcp_url())
            .post_modern(&urgent_publish(1, json!({})))
            .await;
        let first = answer_message(&first);
        let result = &first["result"];
        assert_eq!(result["resultType"], "input_required", "{first}");
        let ask = &result["inputRequests"]["confirm_publish"];
        assert_eq!(ask["method"], "elicitation/create", "{first}");
        let state = result["requestState"]
            .as_str()
            .expect("a requestState")
            .to_string();
        let answer = json!({"confirm_publish": {"action": "accept", "content": {"publish": true}}});
        let retry = urgent_publish(2, json!({"inputResponses": answer, "requestState": state}));
        // A replica with another key refuses the state, naming why.
        let refused = answer_message(
            &HttpClient::new(stranger.mcp_url())
                .post_modern(&retry)
                .await,
        );
        assert_eq!(refused["error"]["code"], -32602, "{refused}");
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap()
                .contains("requestState"),
            "{refused}"
        );
        // A tampered state is refused too.
        let mut tampered = retry.clone();
        tampered["params"]["requestState"] = json!(format!("{state}x"));
        let refused = answer_message(&HttpClient::new(b.mcp_url()).post_modern(&tampered).await);
        assert_eq!(refused["error"]["code"], -32602, "{refused}");
        // Replica B, which shares the key, finishes the call.
        let done = answer_message(&HttpClient::new(b.mcp_url()).post_modern(&retry).await);
        assert_eq!(done["result"]["resultType"], "complete", "{done}");
        assert_ne!(done["result"]["isError"], json!(true), "{done}");
        let report: Value =
            serde_json::from_str(done["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
        assert!(report["eventId"].is_string(), "{done}");
    });
}

const TASKS: &str = "io.modelcontextprotocol/tasks";

#[test]
fn a_task_created_on_one_replica_is_followed_and_answered_on_the_other() {
    let redis = RedisServer::start(false);
    let (a, b) = (replica(&redis, Some(KEY)), replica(&redis, Some(KEY)));
    let caps = json!({"elicitation": {}, "extensions": {TASKS: {}}});
    block_on(async {
        // An urgent publish needs the user's confirmation: as a task, it waits for it.
        let params = json!({"name": "publish", "arguments": {
            "topic": "alerts/critical", "payload": {"disk": "full"}, "priority": "urgent"}});
        let created = HttpClient::new(a.mcp_url())
            .post_modern(&request(1, "tools/call", params, caps.clone()))
            .await;
        let created = answer_message(&created);
        assert_eq!(created["result"]["resultType"], "task", "{created}");
        let id = created["result"]["taskId"].as_str().unwrap().to_string();
        let on_b = HttpClient::new(b.mcp_url());
        let get = |n: i64| request(n, "tasks/get", json!({"taskId": id}), caps.clone());
        let mut task = Value::Null;
        for n in 2..200 {
            task = answer_message(&on_b.post_modern(&get(n)).await)["result"].clone();
            if task["status"] == "input_required" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(task["status"], "input_required", "{task}");
        let ask = &task["inputRequests"]["confirm_publish"];
        assert_eq!(ask["method"], "elicitation/create", "{task}");
        // Replica B answers the question the task on A asked.
        let answers =
            json!({"confirm_publish": {"action": "accept", "content": {"publish": true}}});
        let update = request(
            300,
            "tasks/update",
            json!({"taskId": id, "inputResponses": answers}),
            caps.clone(),
        );
        let updated = answer_message(&on_b.post_modern(&update).await);
        assert!(updated.get("error").is_none(), "{updated}");
        for n in 301..500 {
            task = answer_message(&on_b.post_modern(&get(n)).await)["result"].clone();
            if task["status"] == "completed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(task["status"], "completed", "{task}");
        let report = task["result"]["structuredContent"].clone();
        assert!(report["eventId"].is_string(), "{task}");
    });
}
