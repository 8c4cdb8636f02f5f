//! Webhook subscriptions on Redis (docs/protocol.md 3.6.8): they survive a restart, and with
//! three `mcpbus serve --redis` replicas 10,000 events published through two of them reach a
//! push stream and a webhook exactly once each, in log order, while the replica holding the
//! stream and then the replica delivering the webhook are killed (SIGKILL).
//!
//! The receiver runs here on 127.0.0.1, checks every signature, and records which events it
//! acknowledged: a delivery repeated after a takeover may only be the last one it acknowledged
//! (the event in flight when its replica died); de-duplicated by `webhook-id` (the `eventId`),
//! the deliveries are exactly the log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "webhook_replicas/support.rs"]
mod support;

use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use mcpbus_testkit::{RedisServer, ServeProcess};
use serde_json::json;
use support::{PushStream, Receiver, config_file, replica, subscribe, wait_until};

const EVENTS: usize = 10_000;

#[test]
fn a_subscription_survives_a_restart_and_resumes_after_its_watermark() {
    let redis = RedisServer::start(false);
    let dir = tempdir("restart");
    let config = config_file(&dir);
    let receiver = Receiver::start();
    let mut first = replica(&redis, &config, "restart");
    subscribe(&first, &receiver.url);
    receiver.open_gate();
    let before: Vec<String> = (0..5).map(|n| publish(&first, "alerts/r", n)).collect();
    wait_until("5 acknowledged", Duration::from_secs(20), || {
        receiver.acked().len() >= 5
    });
    first.guard.child.kill().unwrap();
    first.guard.child.wait().unwrap();

    // A new process on the same Redis: it takes the subscription up once the dead one's lease
    // lapses, and delivers what follows the stored watermark.
    let second = replica(&redis, &config, "restart");
    let after: Vec<String> = (5..10).map(|n| publish(&second, "alerts/r", n)).collect();
    wait_until("10 acknowledged", Duration::from_secs(20), || {
        receiver.acked().len() >= 10
    });
    let expected: Vec<String> = before.into_iter().chain(after).collect();
    assert_eq!(receiver.acked(), expected);
    let report = receiver.report();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    // Only the last event acknowledged before the kill may come again (had its watermark not
    // been written yet).
    assert!(report.repeated_acked.len() <= 1, "{report:?}");
}

#[test]
fn three_replicas_deliver_every_event_once_while_replicas_die() {
    let started = Instant::now();
    let redis = RedisServer::start(false);
    let dir = tempdir("three");
    let config = config_file(&dir);
    let mut a = replica(&redis, &config, "three");
    let b = replica(&redis, &config, "three");
    let mut c = replica(&redis, &config, "three");
    let receiver = Receiver::start();
    // The webhook's first delivery waits at the receiver until publishing ends, so that the
    // delivering replica is killed with most of the log still to deliver.
    subscribe(&b, &receiver.url);
    let push = PushStream::open(a.mcp_url(), "alerts/+");

    let publishers: Vec<_> = [(&b, "alerts/b"), (&c, "alerts/c")]
        .into_iter()
        .map(|(server, topic)| {
            let base = server.base_url();
            let topic = topic.to_owned();
            let counter = push.published.clone();
            thread::spawn(move || support::publish_many(&base, &topic, EVENTS / 2, &counter))
        })
        .collect();

    // A dies a third of the way: the stream reconnects to C with its last cursor.
    wait_until("a third published", Duration::from_secs(60), || {
        push.published.load(Ordering::SeqCst) >= EVENTS / 3
    });
    push.move_to(c.mcp_url());
    a.guard.child.kill().unwrap();
    let (by_b, by_c): (Vec<String>, Vec<String>) = {
        let mut done = publishers.into_iter().map(|p| p.join().unwrap());
        (done.next().unwrap(), done.next().unwrap())
    };
    receiver.open_gate();

    // The replica delivering the webhook dies with part of the log delivered.
    wait_until("4,000 acknowledged", Duration::from_secs(60), || {
        receiver.acked().len() >= 4_000
    });
    let holder = support::webhook_holder(&[&b, &c]);
    let mut holder = if holder == 0 {
        b
    } else {
        std::mem::replace(&mut c, b)
    };
    holder.guard.child.kill().unwrap();

    wait_until("every event pushed", Duration::from_secs(60), || {
        push.received().len() >= EVENTS
    });
    wait_until("every event acknowledged", Duration::from_secs(90), || {
        receiver.acked().len() >= EVENTS
    });
    thread::sleep(Duration::from_millis(500));
    let pushed = push.received();
    support::check_log_order(&pushed, &by_b, &by_c);
    let order: Vec<String> = pushed.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(
        receiver.acked(),
        order,
        "the webhook saw the log as the stream did"
    );
    let report = receiver.report();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(
        report.repeated_acked.len() <= 1,
        "only the event in flight at the kill may come again: {:?}",
        report.repeated_acked
    );
    assert!(push.reconnects() >= 1, "the stream moved to C");
    eprintln!(
        "{EVENTS} events; webhook deliveries {} (repeats of acknowledged {:?}); {:?} in all",
        report.deliveries.len(),
        report.repeated_acked,
        started.elapsed()
    );
    drop(c);
}

fn publish(server: &ServeProcess, topic: &str, n: u64) -> String {
    let r = server.publish(&json!({"topic": topic, "payload": {"n": n}}));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["eventId"].as_str().unwrap().to_owned()
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "mcpbus-webhook-replicas-{name}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
