//! A subscription trie: which subscribers have a pattern matching a topic.
//!
//! Each trie level is one topic segment. A node holds its literal children in a hash map, a
//! separate child for `+`, the subscribers whose pattern ends in `#` at this level, and the
//! subscribers whose pattern ends exactly here. Matching a topic walks its segments once, without
//! allocating, and follows at most two children per level (the literal one and `+`), so its cost
//! depends on the topic and on how many patterns match it, not on how many patterns exist.
//!
//! Patterns have at most [`MAX_PATTERN_SEGMENTS`](mcpbus_proto::topic::MAX_PATTERN_SEGMENTS)
//! segments, so the trie, and the recursion over it, is at most that deep whatever the topic.

use std::collections::HashMap;
use std::hash::Hash;

use mcpbus_proto::TopicPattern;

/// One trie level.
#[derive(Debug)]
struct Node<S> {
    /// Children for literal segments (the empty segment included).
    children: HashMap<Box<str>, Node<S>>,
    /// The child for a `+` segment.
    plus: Option<Box<Node<S>>>,
    /// Subscribers whose pattern is this node's path followed by `#` (sorted, unique).
    hash_subs: Vec<S>,
    /// Subscribers whose pattern ends exactly at this node (sorted, unique).
    subs: Vec<S>,
}

impl<S> Default for Node<S> {
    fn default() -> Self {
        Node {
            children: HashMap::new(),
            plus: None,
            hash_subs: Vec::new(),
            subs: Vec::new(),
        }
    }
}

impl<S> Node<S> {
    fn is_empty(&self) -> bool {
        self.children.is_empty()
            && self.plus.is_none()
            && self.hash_subs.is_empty()
            && self.subs.is_empty()
    }
}

/// Adds `sub` to a sorted set; true if it was not there.
fn set_insert<S: Ord>(set: &mut Vec<S>, sub: S) -> bool {
    match set.binary_search(&sub) {
        Ok(_) => false,
        Err(at) => {
            set.insert(at, sub);
            true
        }
    }
}

/// Removes `sub` from a sorted set; true if it was there.
fn set_remove<S: Ord>(set: &mut Vec<S>, sub: &S) -> bool {
    match set.binary_search(sub) {
        Ok(at) => {
            set.remove(at);
            true
        }
        Err(_) => false,
    }
}

/// A set of (pattern, subscriber) pairs that finds, for a concrete topic, every subscriber with
/// at least one matching pattern.
///
/// `S` is a small subscriber key (a session key, say). Matching follows docs/protocol.md 2.3 exactly
/// like [`TopicPattern::matches`]: `+` matches one non-empty segment, `#` zero or more trailing
/// segments.
#[derive(Debug)]
pub struct TopicTrie<S> {
    root: Node<S>,
    len: usize,
}

impl<S> Default for TopicTrie<S> {
    fn default() -> Self {
        TopicTrie {
            root: Node::default(),
            len: 0,
        }
    }
}

impl<S: Copy + Eq + Ord + Hash> TopicTrie<S> {
    /// An empty trie.
    pub fn new() -> Self {
        Self::default()
    }

    /// Subscribes `sub` to `pattern`; true if the pair was not already present.
    pub fn insert(&mut self, pattern: &TopicPattern, sub: S) -> bool {
        let mut node = &mut self.root;
        for seg in pattern.segments() {
            node = match seg {
                // `#` is always the last segment of a valid pattern.
                "#" => {
                    let added = set_insert(&mut node.hash_subs, sub);
                    self.len += usize::from(added);
                    return added;
                }
                "+" => node.plus.get_or_insert_with(Box::default),
                literal => node.children.entry(Box::from(literal)).or_default(),
            };
        }
        let added = set_insert(&mut node.subs, sub);
        self.len += usize::from(added);
        added
    }

    /// Unsubscribes `sub` from `pattern`; true if the pair was present. Nodes left empty are
    /// freed.
    pub fn remove(&mut self, pattern: &TopicPattern, sub: S) -> bool {
        let removed = Self::remove_in(&mut self.root, pattern.segments(), &sub);
        self.len -= usize::from(removed);
        removed
    }

    /// Removes the pair below `node`, then prunes the child it went through if now empty.
    fn remove_in<'p>(node: &mut Node<S>, mut segs: impl Iterator<Item = &'p str>, sub: &S) -> bool {
        match segs.next() {
            None => set_remove(&mut node.subs, sub),
            Some("#") => set_remove(&mut node.hash_subs, sub),
            Some("+") => {
                let Some(child) = node.plus.as_deref_mut() else {
                    return false;
                };
                let removed = Self::remove_in(child, segs, sub);
                if child.is_empty() {
                    node.plus = None;
                }
                removed
            }
            Some(literal) => {
                let Some(child) = node.children.get_mut(literal) else {
                    return false;
                };
                let removed = Self::remove_in(child, segs, sub);
                if child.is_empty() {
                    node.children.remove(literal);
                }
                removed
            }
        }
    }

    /// Appends to `out` every subscriber with at least one pattern matching `topic`, each exactly
    /// once (in ascending order). What `out` held before is left untouched.
    pub fn matches(&self, topic: &str, out: &mut Vec<S>) {
        let start = out.len();
        Self::collect(&self.root, Some(topic), out);
        let found = &mut out[start..];
        if found.len() > 1 {
            found.sort_unstable();
            let mut kept = start + 1;
            for read in start + 1..out.len() {
                if out[read] != out[kept - 1] {
                    out[kept] = out[read];
                    kept += 1;
                }
            }
            out.truncate(kept);
        }
    }

    /// Collects the subscribers matching below `node`, the topic having as many segments as
    /// the node's depth plus those in `rest` (`None`: the topic ends at this node).
    fn collect(node: &Node<S>, rest: Option<&str>, out: &mut Vec<S>) {
        // `#` here matches zero or more further segments: every topic that reached this node.
        out.extend_from_slice(&node.hash_subs);
        let Some(rest) = rest else {
            out.extend_from_slice(&node.subs);
            return;
        };
        let (seg, next) = match rest.split_once('/') {
            Some((seg, next)) => (seg, Some(next)),
            None => (rest, None),
        };
        if let Some(child) = node.children.get(seg) {
            Self::collect(child, next, out);
        }
        if !seg.is_empty()
            && let Some(plus) = node.plus.as_deref()
        {
            Self::collect(plus, next, out);
        }
    }

    /// The number of (pattern, subscriber) pairs.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the trie holds no pair.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pat(s: &str) -> TopicPattern {
        TopicPattern::new(s).unwrap()
    }

    fn matching(trie: &TopicTrie<u64>, topic: &str) -> Vec<u64> {
        let mut out = Vec::new();
        trie.matches(topic, &mut out);
        out
    }

    #[test]
    fn literal_plus_and_hash() {
        let mut t = TopicTrie::new();
        assert!(t.insert(&pat("build/status"), 1));
        assert!(t.insert(&pat("build/+"), 2));
        assert!(t.insert(&pat("+/status"), 3));
        assert!(t.insert(&pat("build/#"), 4));
        assert!(t.insert(&pat("#"), 5));
        assert_eq!(t.len(), 5);
        assert_eq!(matching(&t, "build/status"), [1, 2, 3, 4, 5]);
        assert_eq!(matching(&t, "build/log"), [2, 4, 5]);
        assert_eq!(matching(&t, "build"), [4, 5]);
        assert_eq!(matching(&t, "build/"), [4, 5]);
        assert_eq!(matching(&t, "build/sub/status"), [4, 5]);
        assert_eq!(matching(&t, "deploy/status"), [3, 5]);
        assert_eq!(matching(&t, "x"), [5]);
    }

    #[test]
    fn plus_never_matches_empty_segment() {
        let mut t = TopicTrie::new();
        t.insert(&pat("a/+/c"), 1);
        t.insert(&pat("+"), 2);
        t.insert(&pat("+/#"), 3);
        assert_eq!(matching(&t, "a/x/c"), [1, 3]);
        assert_eq!(matching(&t, "a//c"), [3]);
        assert_eq!(matching(&t, "a/x/y/c"), [3]);
        assert_eq!(matching(&t, "/x"), Vec::<u64>::new());
        assert_eq!(matching(&t, "x"), [2, 3]);
    }

    #[test]
    fn empty_literal_segments() {
        let mut t = TopicTrie::new();
        t.insert(&pat("a/"), 1);
        t.insert(&pat("a//b"), 2);
        t.insert(&pat("/"), 3);
        assert_eq!(matching(&t, "a/"), [1]);
        assert_eq!(matching(&t, "a//b"), [2]);
        assert_eq!(matching(&t, "/"), [3]);
        assert!(matching(&t, "a").is_empty());
    }

    #[test]
    fn each_subscriber_once_and_out_preserved() {
        let mut t = TopicTrie::new();
        for p in ["a/b", "a/+", "a/#", "#", "+/b"] {
            t.insert(&pat(p), 7);
        }
        t.insert(&pat("a/b"), 3);
        let mut out = vec![9, 9, 1];
        t.matches("a/b", &mut out);
        assert_eq!(out, [9, 9, 1, 3, 7]);
    }

    #[test]
    fn insert_is_idempotent_and_remove_prunes() {
        let mut t = TopicTrie::new();
        assert!(t.insert(&pat("a/+/c/#"), 1));
        assert!(!t.insert(&pat("a/+/c/#"), 1));
        assert!(t.insert(&pat("a/+/c/#"), 2));
        assert!(t.insert(&pat("a/b"), 1));
        assert_eq!(t.len(), 3);
        assert!(!t.remove(&pat("a/+/c"), 1));
        assert!(!t.remove(&pat("x/y"), 1));
        assert!(!t.remove(&pat("a/b"), 2));
        assert!(t.remove(&pat("a/+/c/#"), 1));
        assert!(!t.remove(&pat("a/+/c/#"), 1));
        assert_eq!(matching(&t, "a/x/c/d"), [2]);
        assert!(t.remove(&pat("a/+/c/#"), 2));
        assert!(t.remove(&pat("a/b"), 1));
        assert!(t.is_empty());
        assert!(t.root.is_empty(), "all nodes pruned: {:?}", t.root);
    }

    #[test]
    fn deep_topics_do_not_recurse_deeply() {
        let mut t = TopicTrie::new();
        t.insert(&pat("x/x/x/x/x/x/x/#"), 1);
        t.insert(&pat("#"), 2);
        let deep = vec!["x"; 512].join("/");
        assert_eq!(matching(&t, &deep), [1, 2]);
        let long_segment = "y".repeat(1024);
        assert_eq!(matching(&t, &long_segment), [2]);
    }

    #[test]
    fn unicode_segments() {
        let mut t = TopicTrie::new();
        t.insert(&pat("übung/+"), 1);
        t.insert(&pat("日本/#"), 2);
        assert_eq!(matching(&t, "übung/ß"), [1]);
        assert_eq!(matching(&t, "日本/東京/渋谷"), [2]);
    }
}
