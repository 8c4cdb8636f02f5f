//! Table test of every topic/pattern edge case listed in docs/protocol.md 2.3.
#![allow(clippy::unwrap_used)]

use mcpbus_proto::topic::{DeclaredPattern, MAX_TOPIC_BYTES, Topic, TopicError, TopicPattern};

/// (pattern, topic, expected match). Every pattern and topic here is valid.
const MATCH_TABLE: &[(&str, &str, bool)] = &[
    // docs/protocol.md 2.3: `#` matches zero or more trailing segments: `a/#` matches `a`, `a/`,
    // `a/b`, `a/b/c`.
    ("a/#", "a", true),
    ("a/#", "a/", true),
    ("a/#", "a/b", true),
    ("a/#", "a/b/c", true),
    ("a/#", "a//", true),
    ("a/#", "b", false),
    ("a/#", "ab", false),
    ("a/#", "/a", false),
    ("a/b/#", "a", false),
    ("a/b/#", "a/b", true),
    // docs/protocol.md 2.3: a bare `#` matches every topic, single-segment ones included.
    ("#", "a", true),
    ("#", "build", true),
    ("#", "a/b/c/d/e/f/g/h/i/j", true),
    ("#", "/", true),
    ("#", "a/", true),
    ("#", "$SYS/x", true),
    // docs/protocol.md 2.3: `+` matches exactly one non-empty segment.
    ("a/+/c", "a/x/c", true),
    ("a/+/c", "a//c", false),
    ("a/+/c", "a/x/y/c", false),
    ("a/+/c", "a/c", false),
    ("+", "a", true),
    ("+", "a/", false),
    ("+", "/", false),
    ("+/+", "a/b", true),
    ("+/+", "a/", false),
    ("+/#", "a", true),
    ("+/#", "/a", false),
    // docs/protocol.md 2.3: `+/status` matches one-level prefixes only.
    ("+/status", "build/status", true),
    ("+/status", "deploy/status", true),
    ("+/status", "build/sub/status", false),
    ("+/status", "/status", false),
    ("build/+", "build/status", true),
    ("build/+", "build/log", true),
    ("build/+", "build", false),
    ("build/status", "build/status", true),
    ("build/status", "build/statuses", false),
    // docs/protocol.md 2.3: `+` and `#` are wildcards only as whole segments; `a+b` is literal.
    ("a+b", "a+b", true),
    ("a+b", "axb", false),
    ("a+b", "ab", false),
    ("a#", "a#", true),
    ("a#", "a", false),
    ("a/b#", "a/b#", true),
    ("a/b#", "a/b/c", false),
    ("++", "++", true),
    ("++", "x", false),
    // docs/protocol.md 2.3: literal segments, including empty ones, match exactly.
    ("a/", "a/", true),
    ("a/", "a", false),
    ("/a", "/a", true),
    ("a//b", "a//b", true),
    ("a//b", "a/x/b", false),
    // docs/protocol.md 2.3: no MQTT `$` special case.
    ("+/x", "$SYS/x", true),
    // docs/protocol.md 2.3: topics and patterns are UTF-8; unicode segments compare exactly.
    ("übung/+", "übung/ß", true),
    ("übung/+", "ubung/ß", false),
    ("日本/#", "日本/東京/渋谷", true),
    ("+/🚀", "launch/🚀", true),
    ("+/🚀", "launch/🚁", false),
    // docs/protocol.md 2.3: 8 segments is the maximum for a pattern; topics may be deeper.
    ("a/b/c/d/e/f/g/h", "a/b/c/d/e/f/g/h", true),
    ("+/+/+/+/+/+/+/+", "a/b/c/d/e/f/g/h", true),
    ("+/+/+/+/+/+/+/+", "a/b/c/d/e/f/g/h/i", false),
    ("a/b/c/d/e/f/g/#", "a/b/c/d/e/f/g/h/i/j", true),
];

#[test]
fn match_table() {
    for &(pattern, topic, expected) in MATCH_TABLE {
        let p = TopicPattern::new(pattern).unwrap();
        Topic::new(topic).unwrap();
        assert_eq!(
            p.matches(topic),
            expected,
            "pattern {pattern:?} vs topic {topic:?}"
        );
        // A declared pattern without placeholders matches exactly like a subscription pattern.
        let d = DeclaredPattern::new(pattern).unwrap();
        assert_eq!(
            d.matches_topic(topic),
            expected,
            "declared {pattern:?} vs {topic:?}"
        );
    }
}

/// (pattern, expected validation result) for subscription patterns.
fn pattern_validity_table() -> Vec<(String, Result<(), TopicError>)> {
    vec![
        // docs/protocol.md 2.3: patterns are non-empty.
        (String::new(), Err(TopicError::Empty)),
        // docs/protocol.md 2.3: `#` is only valid as the last segment.
        ("a/#/b".into(), Err(TopicError::HashNotLast)),
        ("#/a".into(), Err(TopicError::HashNotLast)),
        ("#/#".into(), Err(TopicError::HashNotLast)),
        ("a/#".into(), Ok(())),
        ("#".into(), Ok(())),
        // docs/protocol.md 2.3: at most 8 segments; 9 is rejected.
        ("a/b/c/d/e/f/g/h".into(), Ok(())),
        (
            "a/b/c/d/e/f/g/h/i".into(),
            Err(TopicError::TooManySegments { count: 9 }),
        ),
        (
            "+/+/+/+/+/+/+/+/#".into(),
            Err(TopicError::TooManySegments { count: 9 }),
        ),
        ("///////".into(), Ok(())),
        (
            "////////".into(),
            Err(TopicError::TooManySegments { count: 9 }),
        ),
        // docs/protocol.md 2.3: at most 1024 bytes.
        ("a".repeat(MAX_TOPIC_BYTES), Ok(())),
        (
            "a".repeat(MAX_TOPIC_BYTES + 1),
            Err(TopicError::TooLong { len: 1025 }),
        ),
        // 1024 bytes made of 2-byte characters (512 of them) is fine; one more byte is not.
        ("é".repeat(512), Ok(())),
        (
            format!("{}x", "é".repeat(512)),
            Err(TopicError::TooLong { len: 1025 }),
        ),
        // docs/protocol.md 2.3: mixed segments are literals, not errors.
        ("a+b/c#".into(), Ok(())),
    ]
}

#[test]
fn pattern_validity() {
    for (pattern, expected) in pattern_validity_table() {
        let got = TopicPattern::new(&pattern).map(|_| ());
        assert_eq!(got, expected, "pattern {pattern:?}");
    }
}

/// (topic, expected validation result) for concrete topics.
fn topic_validity_table() -> Vec<(String, Result<(), TopicError>)> {
    vec![
        // docs/protocol.md 2.3: topics are non-empty and at most 1024 bytes.
        (String::new(), Err(TopicError::Empty)),
        ("t".repeat(MAX_TOPIC_BYTES), Ok(())),
        (
            "t".repeat(MAX_TOPIC_BYTES + 1),
            Err(TopicError::TooLong { len: 1025 }),
        ),
        // A concrete topic may not hold a wildcard as a whole segment.
        ("+".into(), Err(TopicError::WildcardInTopic)),
        ("#".into(), Err(TopicError::WildcardInTopic)),
        ("a/+/b".into(), Err(TopicError::WildcardInTopic)),
        ("a/#".into(), Err(TopicError::WildcardInTopic)),
        // ...but mixed segments are fine, as are empty segments and deep topics.
        ("a+b/c#".into(), Ok(())),
        ("a/".into(), Ok(())),
        ("/".into(), Ok(())),
        ("a/b/c/d/e/f/g/h/i/j/k".into(), Ok(())),
        // docs/protocol.md 2.3: UTF-8.
        ("übung/日本/🚀".into(), Ok(())),
    ]
}

#[test]
fn topic_validity() {
    for (topic, expected) in topic_validity_table() {
        let got = Topic::new(&topic).map(|_| ());
        assert_eq!(got, expected, "topic {topic:?}");
    }
}

#[test]
fn long_pattern_and_topic_match() {
    // docs/protocol.md 2.3: a 1024-byte pattern matches the identical 1024-byte topic.
    let s = format!("{}/{}", "x".repeat(511), "y".repeat(512));
    assert_eq!(s.len(), MAX_TOPIC_BYTES);
    let p = TopicPattern::new(&s).unwrap();
    assert!(p.matches(Topic::new(&s).unwrap().as_str()));
    let plus = TopicPattern::new(&format!("{}/+", "x".repeat(511))).unwrap();
    assert!(plus.matches(&s));
}
