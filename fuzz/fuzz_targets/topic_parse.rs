//! Topic and pattern parsing and matching (`mcpbus_proto::topic`).
//!
//! The input is text, one candidate per line; every line is tried as a topic, a subscription
//! pattern and a declared pattern. Properties:
//! - each is accepted exactly when the rules of docs/protocol.md 2.3 (restated in
//!   `mcpbus_fuzz::naive`) accept it, and refused with exactly the error they name otherwise;
//! - an accepted value re-renders identically (`as_str`, `Display`, `segments`, serde) and
//!   parses back equal;
//! - for every pair, `TopicPattern::matches` and `DeclaredPattern::matches_topic` agree with the
//!   naive matcher on every line as a topic;
//! - `overlaps` holds exactly when a witness topic exists (checked with the naive matcher),
//!   agrees with any line matching both, and `bind` is `Some` exactly then, with a value for
//!   every placeholder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpbus_fuzz::naive;
use mcpbus_proto::topic::{DeclaredPattern, Topic, TopicPattern};
use serde::Serialize;
use serde::de::DeserializeOwned;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<&str> = text.split('\n').take(12).collect();
    let mut patterns = Vec::new();
    let mut declared = Vec::new();
    for line in &lines {
        check_topic(line);
        patterns.extend(check_pattern(line));
        declared.extend(check_declared(line));
    }
    for p in &patterns {
        for t in &lines {
            assert_eq!(
                p.matches(t),
                naive::pattern_matches(p.as_str(), t),
                "{p} vs {t:?}"
            );
        }
    }
    for d in &declared {
        for t in &lines {
            let expected = naive::declared_matches(d.as_str(), t);
            assert_eq!(d.matches_topic(t), expected, "{d} vs {t:?}");
        }
        for p in &patterns {
            check_overlap(d, p, &lines);
        }
    }
});

/// The value renders as the text it was parsed from and survives serde.
fn renders<T>(value: &T, text: &str)
where
    T: std::fmt::Display + AsRef<str> + Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    assert_eq!(value.as_ref(), text);
    assert_eq!(value.to_string(), text);
    let json = serde_json::to_string(value).expect("serializes");
    assert_eq!(
        json,
        serde_json::to_string(text).expect("a string serializes")
    );
    let back: T = serde_json::from_str(&json).expect("parses back");
    assert_eq!(&back, value);
}

fn check_topic(line: &str) {
    match (Topic::new(line), naive::topic_error(line)) {
        (Ok(t), None) => {
            renders(&t, line);
            assert!(t.segments().eq(line.split('/')));
            assert_eq!(line.parse::<Topic>().ok(), Some(t));
        }
        (Err(e), Some(expected)) => {
            assert_eq!(e, expected, "topic {line:?}");
            let via_serde = serde_json::from_value::<Topic>(line.into()).expect_err("refused");
            assert!(via_serde.to_string().contains(&e.to_string()));
        }
        (got, expected) => panic!("topic {line:?}: got {got:?}, rules say {expected:?}"),
    }
}

fn check_pattern(line: &str) -> Option<TopicPattern> {
    match (TopicPattern::new(line), naive::pattern_error(line)) {
        (Ok(p), None) => {
            renders(&p, line);
            assert!(p.segments().eq(line.split('/')));
            let literal = !line.split('/').any(|s| s == "+" || s == "#");
            assert_eq!(p.is_literal(), literal);
            Some(p)
        }
        (Err(e), Some(expected)) => {
            assert_eq!(e, expected, "pattern {line:?}");
            None
        }
        (got, expected) => panic!("pattern {line:?}: got {got:?}, rules say {expected:?}"),
    }
}

fn check_declared(line: &str) -> Option<DeclaredPattern> {
    match (DeclaredPattern::new(line), naive::declared_error(line)) {
        (Ok(d), None) => {
            renders(&d, line);
            let names: Vec<&str> = line
                .split('/')
                .filter(|s| naive::is_placeholder(s))
                .map(|s| &s[1..s.len() - 1])
                .collect();
            assert!(d.placeholders().eq(names));
            Some(d)
        }
        (Err(e), Some(expected)) => {
            assert_eq!(e, expected, "declared {line:?}");
            None
        }
        (got, expected) => panic!("declared {line:?}: got {got:?}, rules say {expected:?}"),
    }
}

fn check_overlap(d: &DeclaredPattern, p: &TopicPattern, lines: &[&str]) {
    let witness = naive::overlap_witness(d.as_str(), p.as_str());
    if let Some(w) = &witness {
        assert!(
            naive::declared_matches(d.as_str(), w),
            "witness {w:?} of {d}"
        );
        assert!(
            naive::pattern_matches(p.as_str(), w),
            "witness {w:?} of {p}"
        );
    }
    let overlaps = d.overlaps(p);
    assert_eq!(
        overlaps,
        witness.is_some(),
        "{d} overlaps {p}? witness {witness:?}"
    );
    for t in lines {
        if naive::declared_matches(d.as_str(), t) && naive::pattern_matches(p.as_str(), t) {
            assert!(overlaps, "{d} and {p} both match {t:?}");
        }
    }
    let bound = d.bind(p);
    assert_eq!(bound.is_some(), overlaps, "{d} bind {p}");
    if let Some(bound) = bound {
        let subs: Vec<&str> = p.segments().collect();
        let hash_at = subs.iter().position(|s| *s == "#");
        for (i, seg) in d.segments().enumerate() {
            if !naive::is_placeholder(seg) {
                continue;
            }
            let expected = match hash_at {
                Some(h) if h <= i => "#",
                _ => subs[i],
            };
            assert_eq!(bound[&seg[1..seg.len() - 1]], expected, "{d} bind {p}");
        }
        assert_eq!(bound.len(), d.placeholders().count());
    }
}
