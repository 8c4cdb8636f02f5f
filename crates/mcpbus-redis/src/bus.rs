//! The shared event bus: the log, subscriptions as log entries, retained values.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use mcpbus::cluster::{BusEvent, ClusterError, EventBus};
use mcpbus_proto::events::RetainedEvent;
use mcpbus_proto::topic::TopicPattern;

use crate::{Inner, cluster_error, scripts};

pub(crate) struct RedisEventBus(pub(crate) Arc<Inner>);

impl RedisEventBus {
    async fn change(
        &self,
        session: &str,
        op: &str,
        patterns: &[TopicPattern],
    ) -> Result<(), ClusterError> {
        let list: Vec<&str> = patterns.iter().map(TopicPattern::as_str).collect();
        let json =
            serde_json::to_string(&list).map_err(|e| ClusterError::Backend(e.to_string()))?;
        let mut conn = self.0.conn.clone();
        let id: Option<String> = redis::Script::new(&scripts::SUBSCRIBE)
            .key(self.0.keys.log())
            .key(self.0.keys.session(session))
            .arg(session)
            .arg(op)
            .arg(json)
            .arg(self.0.config.log_max_len)
            .invoke_async(&mut conn)
            .await
            .map_err(cluster_error)?;
        match id {
            Some(_) => Ok(()),
            None => Err(ClusterError::Backend(format!(
                "session {session} is not in the shared session store (ended or expired)"
            ))),
        }
    }
}

impl EventBus for RedisEventBus {
    fn publish<'a>(&'a self, event: &'a BusEvent) -> BoxFuture<'a, Result<String, ClusterError>> {
        async move {
            let first = event.topic.split('/').next().unwrap_or_default();
            let keys = &self.0.keys;
            let mut conn = self.0.conn.clone();
            redis::Script::new(scripts::PUBLISH)
                .key(keys.log())
                .key(keys.retained(&event.topic))
                .key(keys.retained_segments())
                .key(keys.retained_topics(first))
                .arg(&event.topic)
                .arg(event.params.as_ref())
                .arg(if event.retained { "1" } else { "0" })
                .arg(
                    event
                        .expires_at_ms
                        .map(|ms| ms.to_string())
                        .unwrap_or_default(),
                )
                .arg(self.0.config.log_max_len)
                .arg(first)
                .invoke_async(&mut conn)
                .await
                .map_err(cluster_error)
        }
        .boxed()
    }

    fn subscribe<'a>(
        &'a self,
        session: &'a str,
        patterns: &'a [TopicPattern],
    ) -> BoxFuture<'a, Result<(), ClusterError>> {
        self.change(session, "a", patterns).boxed()
    }

    fn unsubscribe<'a>(
        &'a self,
        session: &'a str,
        patterns: &'a [TopicPattern],
    ) -> BoxFuture<'a, Result<(), ClusterError>> {
        self.change(session, "r", patterns).boxed()
    }

    fn retained<'a>(
        &'a self,
        pattern: &'a TopicPattern,
    ) -> BoxFuture<'a, Result<Vec<RetainedEvent>, ClusterError>> {
        async move {
            let keys = &self.0.keys;
            let mut conn = self.0.conn.clone();
            // Only the index of the pattern's first segment is read (all of them for a
            // wildcard there): never a scan of the keyspace.
            let first = pattern.as_str().split('/').next().unwrap_or_default();
            let segments: Vec<String> = if first == "+" || first == "#" {
                redis::cmd("SMEMBERS")
                    .arg(keys.retained_segments())
                    .query_async(&mut conn)
                    .await
                    .map_err(cluster_error)?
            } else {
                vec![first.to_string()]
            };
            if segments.is_empty() {
                return Ok(Vec::new());
            }
            // Every segment's index in one round trip.
            let mut pipe = redis::pipe();
            for segment in &segments {
                pipe.cmd("SMEMBERS").arg(keys.retained_topics(segment));
            }
            let members: Vec<Vec<String>> =
                pipe.query_async(&mut conn).await.map_err(cluster_error)?;
            let mut topics: Vec<String> = members
                .into_iter()
                .flatten()
                .filter(|t| pattern.matches(t))
                .collect();
            if topics.is_empty() {
                return Ok(Vec::new());
            }
            topics.sort();
            let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                .arg(topics.iter().map(|t| keys.retained(t)).collect::<Vec<_>>())
                .query_async(&mut conn)
                .await
                .map_err(cluster_error)?;
            let mut out = Vec::new();
            let mut gone = Vec::new();
            for (topic, value) in topics.into_iter().zip(values) {
                match value.map(|v| serde_json::from_slice::<RetainedEvent>(&v)) {
                    Some(Ok(mut event)) => {
                        event.retained = true;
                        out.push(event);
                    }
                    Some(Err(e)) => {
                        tracing::warn!(topic, error = %e, "unreadable retained value skipped")
                    }
                    // Expired: drop it from the index too.
                    None => gone.push(topic),
                }
            }
            if !gone.is_empty() {
                let mut pipe = redis::pipe();
                for topic in &gone {
                    let first = topic.split('/').next().unwrap_or_default();
                    pipe.cmd("SREM")
                        .arg(keys.retained_topics(first))
                        .arg(topic)
                        .ignore();
                }
                let _: Result<(), _> = pipe.query_async(&mut conn).await;
            }
            Ok(out)
        }
        .boxed()
    }
}
