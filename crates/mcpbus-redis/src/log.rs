//! The shared event log: events and subscription changes as entries of one Redis Stream that
//! every replica reads in order, and retained values as keys with native expiry.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use mcpbus::events::{
    Appended, EventLog, LogFeed, LogPage, NewEvent, ReadError, ReadFrom, RetainedValue,
};
use mcpbus::{BackendError, BackendErrorKind};
use mcpbus_proto::events::RetainedEvent;
use mcpbus_proto::topic::TopicPattern;
use serde_json::Value;

use crate::{Inner, backend_error, history, scripts};

pub(crate) struct RedisEventLog(pub(crate) Arc<Inner>);

impl RedisEventLog {
    async fn change(
        &self,
        session: &str,
        op: &str,
        patterns: &[TopicPattern],
    ) -> Result<(), BackendError> {
        let list: Vec<&str> = patterns.iter().map(TopicPattern::as_str).collect();
        let json = serde_json::to_string(&list).map_err(|e| {
            BackendError::new(BackendErrorKind::Invalid, "subscription not recorded", e)
        })?;
        let mut conn = self.0.conn();
        let id: Option<String> = redis::Script::new(&scripts::SUBSCRIBE)
            .key(self.0.keys.log())
            .key(self.0.keys.session(session))
            .arg(session)
            .arg(op)
            .arg(json)
            .arg(self.0.config.log_max_len)
            .invoke_async(&mut conn)
            .await
            .map_err(backend_error)?;
        match id {
            Some(_) => Ok(()),
            None => Err(BackendError::msg(
                BackendErrorKind::Invalid,
                format!("session {session} is not in the shared session store (ended or expired)"),
            )),
        }
    }
}

impl EventLog for RedisEventLog {
    fn attach(&self, feed: LogFeed) {
        if self.0.feed.set(feed).is_err() {
            tracing::warn!("a Redis backend feeds one hub; a second one is ignored");
        }
    }

    fn append(&self, event: NewEvent) -> BoxFuture<'_, Result<Appended, BackendError>> {
        async move {
            let topic = event.params.topic.as_str();
            let first = topic.split('/').next().unwrap_or_default();
            let keys = &self.0.keys;
            let mut conn = self.0.conn();
            let cursor: String = redis::Script::new(scripts::PUBLISH)
                .key(keys.log())
                .key(keys.retained(topic))
                .key(keys.retained_segments())
                .key(keys.retained_topics(first))
                .arg(topic)
                .arg(event.json.as_ref())
                .arg(if event.params.retained { "1" } else { "0" })
                .arg(
                    event
                        .expires_at
                        .map(|at| at.timestamp_millis().to_string())
                        .unwrap_or_default(),
                )
                .arg(self.0.config.log_max_len)
                .arg(first)
                .invoke_async(&mut conn)
                .await
                .map_err(backend_error)?;
            // Every replica's log reader (this one's included) delivers it.
            Ok(Appended {
                cursor: cursor.into(),
                delivered: 0,
            })
        }
        .boxed()
    }

    fn subscription<'a>(
        &'a self,
        subscriber: &'a str,
        patterns: &'a [TopicPattern],
        added: bool,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        self.change(subscriber, if added { "a" } else { "r" }, patterns)
            .boxed()
    }

    /// Every replica of the deployment reads this log.
    fn is_shared(&self) -> bool {
        true
    }

    fn retained<'a>(
        &'a self,
        pattern: &'a TopicPattern,
    ) -> BoxFuture<'a, Result<Vec<RetainedEvent>, BackendError>> {
        async move {
            let values = self.retained_with_ids(pattern).await?;
            Ok(values.into_iter().map(|v| v.event).collect())
        }
        .boxed()
    }

    fn retained_values<'a>(
        &'a self,
        pattern: &'a TopicPattern,
    ) -> BoxFuture<'a, Result<Vec<RetainedValue>, BackendError>> {
        self.retained_with_ids(pattern).boxed()
    }

    fn head(&self) -> BoxFuture<'_, Result<Arc<str>, BackendError>> {
        async move {
            let top = crate::tailer::log_top(&self.0)
                .await
                .map_err(backend_error)?;
            Ok(top.into())
        }
        .boxed()
    }

    /// The stream's length (`XLEN`): events and subscription changes of every replica.
    fn length(&self) -> BoxFuture<'_, Result<Option<u64>, BackendError>> {
        async move {
            let mut conn = self.0.conn();
            let n: u64 = redis::cmd("XLEN")
                .arg(self.0.keys.log())
                .query_async(&mut conn)
                .await
                .map_err(backend_error)?;
            Ok(Some(n))
        }
        .boxed()
    }

    fn read_after<'a>(
        &'a self,
        from: ReadFrom<'a>,
        max: usize,
    ) -> BoxFuture<'a, Result<LogPage, ReadError>> {
        history::read_after(&self.0, from, max).boxed()
    }
}

/// A stored retained value: the event's params, with its log id in `_meta["mcpbus/cursor"]`
/// (values stored by an older version have none).
fn retained_value(raw: &[u8]) -> Result<RetainedValue, serde_json::Error> {
    let value: Value = serde_json::from_slice(raw)?;
    let cursor = value
        .get("_meta")
        .and_then(|m| m.get("mcpbus/cursor"))
        .and_then(Value::as_str)
        .map(history::published_at);
    let mut event: RetainedEvent = serde_json::from_value(value)?;
    event.retained = true;
    Ok(RetainedValue {
        event,
        published_at: cursor,
    })
}

impl RedisEventLog {
    /// Every unexpired retained value whose topic matches `pattern`, ordered by topic.
    async fn retained_with_ids(
        &self,
        pattern: &TopicPattern,
    ) -> Result<Vec<RetainedValue>, BackendError> {
        let keys = &self.0.keys;
        let mut conn = self.0.conn();
        // Only the index of the pattern's first segment is read (all of them for a
        // wildcard there): never a scan of the keyspace.
        let first = pattern.as_str().split('/').next().unwrap_or_default();
        let segments: Vec<String> = if first == "+" || first == "#" {
            redis::cmd("SMEMBERS")
                .arg(keys.retained_segments())
                .query_async(&mut conn)
                .await
                .map_err(backend_error)?
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
        let members: Vec<Vec<String>> = pipe.query_async(&mut conn).await.map_err(backend_error)?;
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
            .map_err(backend_error)?;
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for (topic, value) in topics.into_iter().zip(values) {
            match value.map(|v| retained_value(&v)) {
                Some(Ok(value)) => out.push(value),
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
}
