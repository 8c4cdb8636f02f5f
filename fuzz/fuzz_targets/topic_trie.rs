//! The subscription trie (`mcpbus::events::TopicTrie`) against a naive model.
//!
//! The input is text, one operation per line: `+S PATTERN` subscribes `S` (the byte after `+`,
//! taken modulo 8) to a pattern, `-S PATTERN` unsubscribes, `?TOPIC` queries. Lines whose
//! pattern is invalid are skipped. The model is a set of (pattern, subscriber) pairs and the
//! naive matcher of `mcpbus_fuzz::naive`. Properties: `insert` and `remove` return whether the
//! pair was absent / present; `len` and `is_empty` follow the set; `matches` appends, after
//! what the output vector held, every subscriber with a matching pattern exactly once in
//! ascending order; removing every pair at the end leaves a trie that matches nothing.
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use mcpbus::events::TopicTrie;
use mcpbus_fuzz::naive;
use mcpbus_proto::TopicPattern;

/// What the output vector holds before each query: `matches` must leave it alone.
const PREFIX: [u8; 2] = [200, 100];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut trie = TopicTrie::new();
    let mut live: BTreeSet<(String, u8)> = BTreeSet::new();
    let mut topics = Vec::new();
    for line in text.lines().take(64) {
        let mut chars = line.chars();
        match chars.next() {
            Some(op @ ('+' | '-')) => {
                let sub = chars.next().map_or(0, |c| (c as u32 % 8) as u8);
                let Ok(pattern) =
                    TopicPattern::new(chars.as_str().strip_prefix(' ').unwrap_or(chars.as_str()))
                else {
                    continue;
                };
                let key = (pattern.as_str().to_owned(), sub);
                if op == '+' {
                    assert_eq!(trie.insert(&pattern, sub), live.insert(key), "+{pattern}");
                } else {
                    assert_eq!(trie.remove(&pattern, sub), live.remove(&key), "-{pattern}");
                }
                assert_eq!(trie.len(), live.len());
                assert_eq!(trie.is_empty(), live.is_empty());
            }
            Some('?') => {
                let topic = chars.as_str();
                query(&trie, &live, topic);
                topics.push(topic.to_owned());
            }
            _ => {}
        }
    }
    for (pattern, sub) in std::mem::take(&mut live) {
        let pattern = TopicPattern::new(&pattern).expect("was valid");
        assert!(trie.remove(&pattern, sub), "{pattern} {sub}");
    }
    assert_eq!(trie.len(), 0);
    assert!(trie.is_empty());
    for topic in &topics {
        query(&trie, &live, topic);
    }
});

fn query(trie: &TopicTrie<u8>, live: &BTreeSet<(String, u8)>, topic: &str) {
    let expected: BTreeSet<u8> = live
        .iter()
        .filter(|(p, _)| naive::pattern_matches(p, topic))
        .map(|(_, s)| *s)
        .collect();
    let mut out = PREFIX.to_vec();
    trie.matches(topic, &mut out);
    assert_eq!(out[..PREFIX.len()], PREFIX, "{topic:?}");
    let found: Vec<u8> = out[PREFIX.len()..].to_vec();
    assert_eq!(
        found,
        expected.into_iter().collect::<Vec<_>>(),
        "topic {topic:?}, pairs {live:?}"
    );
}
