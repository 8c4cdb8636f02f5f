//! Retained values: the last retained event of each concrete topic (docs/protocol.md 2.4).
//!
//! A new subscription receives, in its subscribe result, every unexpired retained value whose
//! topic matches. Expired values are never returned and are purged when met. The store is a
//! plain struct; a server shares it behind a mutex.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use mcpbus_proto::TopicPattern;
use mcpbus_proto::events::{EventParams, RetainedEvent};

use super::log::RetainedValue;

/// An `expiresAt` value that is neither RFC 3339 nor a naive ISO 8601 date-time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp {value:?}: expected RFC 3339 such as 2026-04-08T12:00:00Z")]
pub(crate) struct InvalidTimestamp {
    /// The rejected text.
    pub value: String,
}

/// Parses an `expiresAt` timestamp.
///
/// Accepts RFC 3339 (`2026-04-08T12:00:00Z`, `2026-04-08T14:00:00+02:00`, fractional seconds,
/// lower-case `t`/`z` or a space between date and time) and, like the reference
/// implementation, ISO 8601 without an offset (`2026-04-08T12:00:00`, `2026-04-08T12:00`,
/// `2026-04-08`), which is taken as UTC.
pub(crate) fn parse_expires_at(s: &str) -> Result<DateTime<Utc>, InvalidTimestamp> {
    let text = s.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    const NAIVE_FORMATS: [&str; 4] = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ];
    for format in NAIVE_FORMATS {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(naive.and_utc());
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    Err(InvalidTimestamp {
        value: s.to_owned(),
    })
}

/// One stored value.
#[derive(Debug, Clone)]
struct Entry {
    event: RetainedEvent,
    expires: Option<DateTime<Utc>>,
    published: Option<DateTime<Utc>>,
}

impl Entry {
    fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires.is_some_and(|at| at <= now)
    }

    /// The stored value as delivered: `retained: true`.
    fn value(&self) -> RetainedValue {
        let mut event = self.event.clone();
        event.retained = true;
        RetainedValue {
            event,
            published_at: self.published,
        }
    }
}

/// The last retained event per concrete topic, with optional expiry.
///
/// Not synchronised: wrap it in a mutex to share it. Expiry is checked against the `now` the
/// caller passes, so tests control time; a value is expired from the instant its expiry time is
/// reached.
#[derive(Debug, Default)]
pub(crate) struct RetainedStore {
    entries: HashMap<String, Entry>,
}

impl RetainedStore {
    // The server only sets and reads values (expired ones are purged as they are met); the
    // helpers marked `cfg(test)` let the tests look inside.
    /// An empty store.
    #[cfg(test)]
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Stores `params` as the retained value of its topic, replacing any previous one.
    ///
    /// `expires` is the parsed `expiresAt` (see [`parse_expires_at`]); `None` never expires.
    #[cfg(test)]
    pub(crate) fn set(&mut self, params: EventParams, expires: Option<DateTime<Utc>>) {
        self.set_at(params, expires, None);
    }

    /// Like `set`, remembering when the event was published (the `timestamp` a SEP-3415
    /// subscription receives it with, docs/protocol.md 3.2).
    pub(crate) fn set_at(
        &mut self,
        params: EventParams,
        expires: Option<DateTime<Utc>>,
        published: Option<DateTime<Utc>>,
    ) {
        let event = RetainedEvent::from_params(&params);
        self.entries.insert(
            params.topic,
            Entry {
                event,
                expires,
                published,
            },
        );
    }

    /// Forgets the retained value of `topic`; true if there was one (expired or not).
    #[cfg(test)]
    pub(crate) fn remove(&mut self, topic: &str) -> bool {
        self.entries.remove(topic).is_some()
    }

    /// The unexpired retained value of `topic` (with `retained: true`); an expired one is
    /// purged.
    #[cfg(test)]
    pub(crate) fn get(&mut self, topic: &str, now: DateTime<Utc>) -> Option<RetainedEvent> {
        self.get_value(topic, now).map(|v| v.event)
    }

    fn get_value(&mut self, topic: &str, now: DateTime<Utc>) -> Option<RetainedValue> {
        let entry = self.entries.get(topic)?;
        if entry.expired(now) {
            self.entries.remove(topic);
            return None;
        }
        Some(entry.value())
    }

    /// Every unexpired retained value whose topic matches `pattern`, ordered by topic, each with
    /// `retained: true`. Expired values met on the way are purged.
    #[cfg(test)]
    pub(crate) fn matching(
        &mut self,
        pattern: &TopicPattern,
        now: DateTime<Utc>,
    ) -> Vec<RetainedEvent> {
        self.matching_values(pattern, now)
            .into_iter()
            .map(|v| v.event)
            .collect()
    }

    /// Like `matching`, with the publish times.
    pub(crate) fn matching_values(
        &mut self,
        pattern: &TopicPattern,
        now: DateTime<Utc>,
    ) -> Vec<RetainedValue> {
        if pattern.is_literal() {
            // One exact topic: a hash lookup instead of a scan.
            return self.get_value(pattern.as_str(), now).into_iter().collect();
        }
        let mut found = Vec::new();
        let mut saw_expired = false;
        for (topic, entry) in &self.entries {
            if !pattern.matches(topic) {
                continue;
            }
            if entry.expired(now) {
                saw_expired = true;
                continue;
            }
            found.push(entry.value());
        }
        if saw_expired {
            self.entries
                .retain(|topic, entry| !(entry.expired(now) && pattern.matches(topic)));
        }
        found.sort_by(|a, b| a.event.topic.cmp(&b.event.topic));
        found
    }

    /// Drops every value expired at `now`; returns how many were dropped.
    pub(crate) fn purge_expired(&mut self, now: DateTime<Utc>) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, entry| !entry.expired(now));
        before - self.entries.len()
    }

    /// The number of stored values, expired ones not yet purged included.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the store holds no value.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use serde_json::json;

    fn at(s: &str) -> DateTime<Utc> {
        parse_expires_at(s).unwrap()
    }

    fn event(topic: &str, id: &str) -> EventParams {
        EventParams::new(topic, id, json!({"id": id}))
    }

    fn pat(s: &str) -> TopicPattern {
        TopicPattern::new(s).unwrap()
    }

    #[test]
    fn parses_rfc3339_and_naive_iso() {
        let noon = Utc.with_ymd_and_hms(2026, 4, 8, 12, 0, 0).unwrap();
        assert_eq!(at("2026-04-08T12:00:00Z"), noon);
        assert_eq!(at("2026-04-08t12:00:00z"), noon);
        assert_eq!(at("2026-04-08 12:00:00Z"), noon);
        assert_eq!(at("2026-04-08T14:00:00+02:00"), noon);
        assert_eq!(at("2026-04-08T07:30:00-04:30"), noon);
        assert_eq!(at("2026-04-08T12:00:00"), noon);
        assert_eq!(at("2026-04-08 12:00:00"), noon);
        assert_eq!(at("2026-04-08T12:00"), noon);
        assert_eq!(at(" 2026-04-08T12:00:00Z "), noon);
        assert_eq!(at("2026-04-08"), noon - Duration::hours(12));
        let frac = at("2026-04-08T12:00:00.250Z");
        assert_eq!(frac - noon, Duration::milliseconds(250));
        assert_eq!(
            at("2026-04-08T12:00:00.123456"),
            noon + Duration::microseconds(123_456)
        );
        for bad in [
            "",
            "soon",
            "2026-13-01T00:00:00Z",
            "2026-04-08T25:00:00",
            "1712577600",
        ] {
            let err = parse_expires_at(bad).unwrap_err();
            assert_eq!(err.value, bad);
            assert!(err.to_string().contains("RFC 3339"));
        }
    }

    #[test]
    fn set_replaces_and_get_marks_retained() {
        let now = at("2026-04-08T12:00:00Z");
        let mut store = RetainedStore::new();
        store.set(event("cfg/current", "1"), None);
        store.set(event("cfg/current", "2"), None);
        assert_eq!(store.len(), 1);
        let got = store.get("cfg/current", now).unwrap();
        assert_eq!(got.event_id, "2");
        assert!(got.retained);
        assert_eq!(got.payload, json!({"id": "2"}));
        assert!(store.get("cfg/other", now).is_none());
        assert!(store.remove("cfg/current"));
        assert!(!store.remove("cfg/current"));
        assert!(store.is_empty());
    }

    #[test]
    fn keeps_priority_source_and_expiry_text() {
        let mut params = event("a", "1");
        params.source = Some("ci".into());
        params.expires_at = Some("2030-01-01T00:00:00Z".into());
        params.priority = Some(mcpbus_proto::events::EventPriority::High);
        let expires = Some(at("2030-01-01T00:00:00Z"));
        let mut store = RetainedStore::new();
        store.set(params, expires);
        let got = store.get("a", at("2026-01-01T00:00:00Z")).unwrap();
        assert_eq!(got.source.as_deref(), Some("ci"));
        assert_eq!(got.expires_at.as_deref(), Some("2030-01-01T00:00:00Z"));
        assert_eq!(
            got.priority,
            Some(mcpbus_proto::events::EventPriority::High)
        );
    }

    #[test]
    fn matching_by_pattern() {
        let now = at("2026-04-08T12:00:00Z");
        let mut store = RetainedStore::new();
        for topic in [
            "build/status",
            "build/log",
            "build/sub/status",
            "deploy/status",
        ] {
            store.set(event(topic, topic), None);
        }
        let topics = |v: Vec<RetainedEvent>| v.into_iter().map(|e| e.topic).collect::<Vec<_>>();
        assert_eq!(
            topics(store.matching(&pat("+/status"), now)),
            ["build/status", "deploy/status"]
        );
        assert_eq!(
            topics(store.matching(&pat("build/#"), now)),
            ["build/log", "build/status", "build/sub/status"]
        );
        assert_eq!(
            topics(store.matching(&pat("build/log"), now)),
            ["build/log"]
        );
        assert!(store.matching(&pat("nothing/#"), now).is_empty());
        assert!(store.matching(&pat("#"), now).iter().all(|e| e.retained));
        assert_eq!(store.matching(&pat("#"), now).len(), 4);
    }

    #[test]
    fn expired_values_are_never_returned_and_are_purged() {
        let now = at("2026-04-08T12:00:00Z");
        let mut store = RetainedStore::new();
        store.set(event("a/old", "old"), Some(now - Duration::seconds(1)));
        store.set(event("a/edge", "edge"), Some(now));
        store.set(event("a/fresh", "fresh"), Some(now + Duration::hours(1)));
        store.set(event("a/forever", "forever"), None);
        store.set(event("b/old", "b-old"), Some(now - Duration::hours(1)));
        assert_eq!(store.len(), 5);

        // `matching` returns only live values and purges the expired ones it met (not `b/old`).
        let live: Vec<_> = store
            .matching(&pat("a/+"), now)
            .into_iter()
            .map(|e| e.event_id)
            .collect();
        assert_eq!(live, ["forever", "fresh"]);
        assert_eq!(store.len(), 3);

        // `get` purges an expired value it is asked for.
        assert!(store.get("b/old", now).is_none());
        assert_eq!(store.len(), 2);

        // Later, the fresh value expires too and `purge_expired` drops it.
        let later = now + Duration::hours(2);
        assert!(store.get("a/forever", later).is_some());
        assert_eq!(store.purge_expired(later), 1);
        assert_eq!(store.purge_expired(later), 0);
        assert_eq!(store.len(), 1);
        assert!(store.matching(&pat("#"), later).len() == 1);
    }

    #[test]
    fn literal_pattern_lookup_purges_expired() {
        let now = at("2026-04-08T12:00:00Z");
        let mut store = RetainedStore::new();
        store.set(event("x", "1"), Some(now - Duration::seconds(5)));
        assert!(store.matching(&pat("x"), now).is_empty());
        assert!(store.is_empty());
    }
}
