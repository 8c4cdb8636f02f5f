//! Property test: `TopicTrie::matches` agrees with the naive `TopicPattern::matches` oracle.
//!
//! Patterns and topics are drawn from a tiny alphabet (`a`, `b`, the empty segment, plus `+` and
//! `#` for patterns) so that matches, near-misses and empty-segment corner cases are frequent.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use mcpbus::events::TopicTrie;
use mcpbus_proto::{Topic, TopicPattern};
use proptest::prelude::*;

/// A valid pattern: 1–8 segments from the alphabet, `#` only last.
fn pattern() -> impl Strategy<Value = TopicPattern> {
    let seg = prop_oneof![
        3 => Just("a"),
        2 => Just("b"),
        1 => Just(""),
        3 => Just("+"),
    ];
    (
        prop::collection::vec(seg, 1..=8),
        prop::bool::weighted(0.25),
    )
        .prop_filter_map("the empty pattern is invalid", |(mut segs, hash)| {
            if hash {
                // Replace the last segment with `#` (keeps 1–8 segments).
                if let Some(last) = segs.last_mut() {
                    *last = "#";
                }
            }
            TopicPattern::new(&segs.join("/")).ok()
        })
}

/// A concrete topic: 1–9 segments from the alphabet (no wildcards).
fn topic() -> impl Strategy<Value = String> {
    let seg = prop_oneof![3 => Just("a"), 2 => Just("b"), 1 => Just(""), 1 => Just("c")];
    prop::collection::vec(seg, 1..=9)
        .prop_map(|segs| segs.join("/"))
        .prop_filter("the empty topic is invalid", |t| Topic::new(t).is_ok())
}

/// Every subscriber with a live pattern matching `topic`, ascending, once each.
fn oracle(live: &BTreeSet<(TopicPattern, u8)>, topic: &str) -> Vec<u8> {
    let subs: BTreeSet<u8> = live
        .iter()
        .filter(|(p, _)| p.matches(topic))
        .map(|(_, s)| *s)
        .collect();
    subs.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn trie_matches_oracle(
        pairs in prop::collection::vec((pattern(), 0u8..12), 0..60),
        removals in prop::collection::vec(any::<prop::sample::Index>(), 0..30),
        topics in prop::collection::vec(topic(), 1..40),
    ) {
        let mut trie = TopicTrie::new();
        let mut live = BTreeSet::new();
        for (p, s) in &pairs {
            let fresh = live.insert((p.clone(), *s));
            prop_assert_eq!(trie.insert(p, *s), fresh);
        }
        // Remove some inserted pairs (possibly twice) and one never inserted.
        for index in removals.iter().filter(|_| !pairs.is_empty()) {
            let (p, s) = index.get(&pairs);
            let present = live.remove(&(p.clone(), *s));
            prop_assert_eq!(trie.remove(p, *s), present);
        }
        prop_assert!(!trie.remove(&TopicPattern::new("zz/+").unwrap(), 0));
        prop_assert_eq!(trie.len(), live.len());
        prop_assert_eq!(trie.is_empty(), live.is_empty());

        let mut out = Vec::new();
        for t in &topics {
            out.clear();
            trie.matches(t, &mut out);
            prop_assert_eq!(&out, &oracle(&live, t), "topic {:?}", t);
        }

        // Removing everything leaves an empty trie that matches nothing.
        for (p, s) in &live {
            prop_assert!(trie.remove(p, *s));
        }
        prop_assert!(trie.is_empty());
        for t in &topics {
            out.clear();
            trie.matches(t, &mut out);
            prop_assert!(out.is_empty());
        }
    }

    #[test]
    fn matches_appends_after_existing_content(
        pairs in prop::collection::vec((pattern(), 0u8..6), 1..20),
        t in topic(),
    ) {
        let mut trie = TopicTrie::new();
        let mut live = BTreeSet::new();
        for (p, s) in &pairs {
            trie.insert(p, *s);
            live.insert((p.clone(), *s));
        }
        let mut out = vec![200u8, 100, 200];
        trie.matches(&t, &mut out);
        let mut expected = vec![200u8, 100, 200];
        expected.extend(oracle(&live, &t));
        prop_assert_eq!(out, expected);
    }
}
