//! Reference models of the topic rules of docs/protocol.md 2.3: validation and matching,
//! written as directly from the text as possible (count the segments, then compare them one by
//! one) rather than as the library's single walk.

use mcpbus_proto::topic::{MAX_PATTERN_SEGMENTS, MAX_TOPIC_BYTES, TopicError};

/// Whether a segment is a well-formed `{name}` placeholder: braces around one or more ASCII
/// letters, digits or `_`.
pub fn is_placeholder(seg: &str) -> bool {
    seg.len() >= 3
        && seg.starts_with('{')
        && seg.ends_with('}')
        && seg[1..seg.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The error a concrete topic deserves, or `None` when it is valid.
pub fn topic_error(s: &str) -> Option<TopicError> {
    if s.is_empty() {
        return Some(TopicError::Empty);
    }
    if s.len() > MAX_TOPIC_BYTES {
        return Some(TopicError::TooLong { len: s.len() });
    }
    let segs: Vec<&str> = s.split('/').collect();
    segs.iter()
        .any(|seg| *seg == "+" || *seg == "#")
        .then_some(TopicError::WildcardInTopic)
}

/// The error a subscription pattern deserves, or `None` when it is valid.
pub fn pattern_error(s: &str) -> Option<TopicError> {
    if s.is_empty() {
        return Some(TopicError::Empty);
    }
    if s.len() > MAX_TOPIC_BYTES {
        return Some(TopicError::TooLong { len: s.len() });
    }
    let segs: Vec<&str> = s.split('/').collect();
    if segs.len() > MAX_PATTERN_SEGMENTS {
        return Some(TopicError::TooManySegments { count: segs.len() });
    }
    let hash_positions = segs.iter().filter(|seg| **seg == "#").count();
    let hash_last = segs.last() == Some(&"#");
    if hash_positions > usize::from(hash_last) {
        return Some(TopicError::HashNotLast);
    }
    None
}

/// The error a server-declared pattern deserves, or `None` when it is valid.
pub fn declared_error(s: &str) -> Option<TopicError> {
    if let Some(e) = pattern_error(s) {
        return Some(e);
    }
    let mut names = std::collections::BTreeSet::new();
    for seg in s.split('/') {
        let braces = seg.contains('{') || seg.contains('}');
        if braces && !(is_placeholder(seg) && names.insert(seg)) {
            return Some(TopicError::BadPlaceholder);
        }
    }
    None
}

/// One pattern segment as the rules read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part<'a> {
    /// Matches exactly this segment (possibly empty).
    Literal(&'a str),
    /// `+` or a placeholder: exactly one non-empty segment.
    One,
}

/// A valid pattern as its fixed parts and whether it ends in `#`.
pub fn split_pattern(pattern: &str, placeholders: bool) -> (Vec<Part<'_>>, bool) {
    let mut segs: Vec<&str> = pattern.split('/').collect();
    let open = segs.last() == Some(&"#");
    if open {
        segs.pop();
    }
    let parts = segs
        .into_iter()
        .map(|seg| {
            if seg == "+" || (placeholders && is_placeholder(seg)) {
                Part::One
            } else {
                Part::Literal(seg)
            }
        })
        .collect();
    (parts, open)
}

/// Whether a topic has the right number of segments for the pattern, and each fixed part
/// accepts the segment at its position.
fn parts_match(parts: &[Part<'_>], open: bool, topic: &str) -> bool {
    let segs: Vec<&str> = topic.split('/').collect();
    let count_ok = if open {
        segs.len() >= parts.len()
    } else {
        segs.len() == parts.len()
    };
    count_ok
        && parts.iter().zip(&segs).all(|(part, seg)| match part {
            Part::Literal(lit) => lit == seg,
            Part::One => !seg.is_empty(),
        })
}

/// Whether a valid subscription pattern matches `topic`.
pub fn pattern_matches(pattern: &str, topic: &str) -> bool {
    let (parts, open) = split_pattern(pattern, false);
    parts_match(&parts, open, topic)
}

/// Whether a valid declared pattern covers `topic` (placeholders act like `+`).
pub fn declared_matches(pattern: &str, topic: &str) -> bool {
    let (parts, open) = split_pattern(pattern, true);
    parts_match(&parts, open, topic)
}

/// A topic matching both patterns when one exists: each position takes the literal one side
/// imposes, or `x` where both sides take any non-empty segment; past one side's `#`, the other
/// side's remaining parts are instantiated the same way.
pub fn overlap_witness(declared: &str, sub: &str) -> Option<String> {
    let (a, a_open) = split_pattern(declared, true);
    let (b, b_open) = split_pattern(sub, false);
    let mut out = Vec::new();
    for i in 0..a.len().max(b.len()) {
        let seg = match (a.get(i), b.get(i)) {
            (Some(Part::Literal(x)), Some(Part::Literal(y))) if x == y => *x,
            (Some(Part::Literal(_)), Some(Part::Literal(_))) => return None,
            (Some(Part::Literal(x)), Some(Part::One))
            | (Some(Part::One), Some(Part::Literal(x))) => {
                if x.is_empty() {
                    return None;
                }
                *x
            }
            (Some(Part::One), Some(Part::One)) => "x",
            (Some(Part::Literal(x)), None) if b_open => *x,
            (None, Some(Part::Literal(y))) if a_open => *y,
            (Some(Part::One), None) if b_open => "x",
            (None, Some(Part::One)) if a_open => "x",
            _ => return None,
        };
        out.push(seg);
    }
    // Two bare `#`: any topic at all, but the empty string is not one.
    Some(if out.is_empty() {
        "x".into()
    } else {
        out.join("/")
    })
}
