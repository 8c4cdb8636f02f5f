//! The metrics registry: counters by declared topic, the exposition's syntax, and the numbers
//! a server reports after publishing to its subscribers.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::events::{Event, EventHub, EventSink, TopicSpec};

/// Checks one line of the OpenMetrics text format: a `# TYPE`, `# HELP`, `# UNIT` or `# EOF`
/// line, or a sample `name{label="value",...} number`.
fn assert_valid_line(line: &str) {
    if let Some(rest) = line.strip_prefix("# ") {
        let mut parts = rest.splitn(3, ' ');
        let keyword = parts.next().unwrap();
        if keyword == "EOF" {
            return;
        }
        assert!(
            ["TYPE", "HELP", "UNIT"].contains(&keyword),
            "unknown comment: {line}"
        );
        let name = parts.next().unwrap_or_default();
        assert!(valid_name(name), "bad metric name in {line}");
        return;
    }
    let (series, value) = line.rsplit_once(' ').unwrap();
    assert!(
        value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
        "bad value in {line}"
    );
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, Some(rest.strip_suffix('}').unwrap())),
        None => (series, None),
    };
    assert!(valid_name(name), "bad metric name in {line}");
    if let Some(labels) = labels {
        for pair in split_labels(labels) {
            let (key, quoted) = pair.split_once('=').unwrap();
            assert!(valid_name(key), "bad label name in {line}");
            assert!(
                quoted.len() >= 2 && quoted.starts_with('"') && quoted.ends_with('"'),
                "unquoted label value in {line}"
            );
        }
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Splits `a="x",b="y,z"` at the commas outside quotes.
fn split_labels(labels: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in labels.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&labels[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&labels[start..]);
    out
}

/// The value of the sample written exactly as `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

#[test]
fn every_line_is_valid_exposition_and_ends_with_eof() {
    let metrics = Metrics::new();
    let topic = metrics.topic("agents/{id}/inbox");
    topic.published.inc();
    topic.delivered.inc_by(3);
    metrics.observe_http("mcp", 200, Duration::from_millis(2));
    metrics.observe_log("append", Duration::from_micros(300), false);
    metrics.observe_webhook(true);
    metrics.count_log_error("read");
    let text = metrics.encode();
    for line in text.lines() {
        assert_valid_line(line);
    }
    assert_eq!(text.lines().last(), Some("# EOF"));
    assert_eq!(
        sample(
            &text,
            r#"mcpbus_events_delivered_total{topic="agents/{id}/inbox"}"#
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"mcpbus_http_responses_total{route="mcp",status="200"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"mcpbus_log_errors_total{operation="append"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"mcpbus_log_errors_total{operation="read"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"mcpbus_webhook_deliveries_total{result="ok"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"mcpbus_http_request_duration_seconds_count{route="mcp"}"#
        ),
        Some(1.0)
    );
}

#[test]
fn one_topic_label_is_one_counter() {
    let metrics = Metrics::new();
    metrics.topic("a/+").published.inc();
    metrics.topic("a/+").published.inc();
    let text = metrics.encode();
    assert_eq!(
        sample(&text, r#"mcpbus_events_published_total{topic="a/+"}"#),
        Some(2.0)
    );
}

struct Collect(std::sync::Mutex<usize>);

impl EventSink for Collect {
    fn deliver(&self, _frame: &Bytes, _cursor: &str) -> bool {
        *self.0.lock().unwrap() += 1;
        true
    }
}

#[tokio::test]
async fn a_hub_counts_by_declared_pattern_not_by_concrete_topic() {
    let hub = EventHub::new(
        vec![TopicSpec::content("jobs/+"), TopicSpec::content("other")],
        None,
    )
    .unwrap();
    let principal = crate::events::Principal {
        session_id: "s".into(),
        agent_id: "s".into(),
        identity: None,
    };
    let sinks: Vec<Arc<Collect>> = (0..3)
        .map(|i| {
            let sink = Arc::new(Collect(std::sync::Mutex::new(0)));
            let id: Arc<str> = format!("s{i}").into();
            hub.attach(id.clone(), sink.clone());
            sink
        })
        .collect();
    for i in 0..3 {
        let p = crate::events::Principal {
            session_id: format!("s{i}").into(),
            ..principal.clone()
        };
        hub.subscribe(&p, vec!["jobs/#".into()]).await.unwrap();
    }
    for n in 0..4 {
        hub.publish(Event::new(format!("jobs/{n}"), n.into()))
            .await
            .unwrap();
    }
    // A watch only wakes a reader: not a delivery.
    let _watch = hub.watch(mcpbus_proto::topic::TopicPattern::new("#").unwrap(), 8);
    hub.publish(Event::new("other", 0.into())).await.unwrap();
    let text = hub.metrics().encode();
    assert_eq!(
        sample(&text, r#"mcpbus_events_published_total{topic="jobs/+"}"#),
        Some(4.0)
    );
    assert_eq!(
        sample(&text, r#"mcpbus_events_delivered_total{topic="jobs/+"}"#),
        Some(12.0)
    );
    assert_eq!(
        sample(&text, r#"mcpbus_events_published_total{topic="other"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"mcpbus_events_delivered_total{topic="other"}"#),
        Some(0.0)
    );
    assert!(!text.contains("jobs/0"), "a concrete topic became a label");
    assert!(sinks.iter().all(|s| *s.0.lock().unwrap() == 4));
}

#[tokio::test]
async fn a_server_scrape_reads_its_gauges() {
    let server = Server::builder("m", "1")
        .topic(TopicSpec::content("t").retained(true))
        .build()
        .unwrap();
    server
        .events()
        .publish(Event::new("t", 1.into()))
        .await
        .unwrap();
    let text = server.metrics_text().await;
    for line in text.lines() {
        assert_valid_line(line);
    }
    assert_eq!(sample(&text, "mcpbus_retained_values"), Some(1.0));
    assert_eq!(sample(&text, "mcpbus_log_length"), Some(1.0));
    assert_eq!(
        sample(&text, r#"mcpbus_sessions{era="2025-11-25"}"#),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"mcpbus_streams{era="2026-07-28",method="subscriptions/listen"}"#
        ),
        Some(0.0)
    );
}
