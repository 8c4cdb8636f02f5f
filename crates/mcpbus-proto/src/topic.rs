//! Topics, subscription patterns and server-declared patterns (docs/protocol.md 2.3 and 2.5).
//!
//! Three validated string types live here:
//!
//! - [`Topic`]: a concrete topic an event is emitted on (`build/42/status`).
//! - [`TopicPattern`]: what a client subscribes to; `+` matches exactly one **non-empty**
//!   segment, `#` (last segment only) matches zero or more trailing segments.
//! - [`DeclaredPattern`]: what a server declares; like a [`TopicPattern`] but it may also hold
//!   `{name}` placeholders, each a whole segment that matches like `+`.
//!
//! Segments are separated by `/`. Wildcards act only as whole segments: `a+b` is a literal.
//! Empty segments are allowed and literal (`a/` has the segments `a` and the empty string).
//! There is no MQTT `$` special case. Everything here is pure and allocation-light; the fast
//! many-pattern matcher lives in the `mcpbus` crate and uses [`TopicPattern::matches`] as its
//! oracle.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The maximum number of `/`-separated segments in a subscription or declared pattern.
pub const MAX_PATTERN_SEGMENTS: usize = 8;

/// The maximum length, in bytes of UTF-8, of a topic or pattern.
pub const MAX_TOPIC_BYTES: usize = 1024;

/// Why a string is not a valid [`Topic`], [`TopicPattern`] or [`DeclaredPattern`].
///
/// The messages are meant for users: they end up in JSON-RPC error messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// The string is empty.
    #[error("topic or pattern is empty")]
    Empty,
    /// The string is longer than [`MAX_TOPIC_BYTES`].
    #[error("topic or pattern is {len} bytes long; at most 1024 bytes are allowed")]
    TooLong {
        /// The length in bytes.
        len: usize,
    },
    /// The pattern has more than [`MAX_PATTERN_SEGMENTS`] segments.
    #[error("pattern has {count} segments; at most 8 are allowed")]
    TooManySegments {
        /// The number of segments found.
        count: usize,
    },
    /// A `#` wildcard is followed by further segments.
    #[error("the '#' wildcard is only valid as the last segment of a pattern")]
    HashNotLast,
    /// A concrete topic has a segment that is exactly `+` or `#`.
    #[error("a topic may not contain the wildcards '+' or '#' as a segment; use a pattern")]
    WildcardInTopic,
    /// A `{` or `}` in a declared pattern does not form a whole `{name}` segment with a name of
    /// ASCII letters, digits and `_`, or a placeholder name is used twice.
    #[error(
        "a placeholder must be a whole segment '{{name}}' whose name uses only ASCII letters, \
         digits and '_', and each name may appear once"
    )]
    BadPlaceholder,
}

/// Checks the rules shared by topics and patterns: non-empty and not too long.
fn check_length(s: &str) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if s.len() > MAX_TOPIC_BYTES {
        return Err(TopicError::TooLong { len: s.len() });
    }
    Ok(())
}

/// Checks the rules shared by subscription and declared patterns: length, segment count and
/// `#` only in last position.
fn check_pattern(s: &str) -> Result<(), TopicError> {
    check_length(s)?;
    let count = s.split('/').count();
    if count > MAX_PATTERN_SEGMENTS {
        return Err(TopicError::TooManySegments { count });
    }
    let mut segments = s.split('/').peekable();
    while let Some(seg) = segments.next() {
        if seg == "#" && segments.peek().is_some() {
            return Err(TopicError::HashNotLast);
        }
    }
    Ok(())
}

/// One pattern segment, classified for matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seg<'a> {
    /// A literal segment, matched exactly (may be empty).
    Lit(&'a str),
    /// `+` or a `{name}` placeholder: exactly one non-empty segment.
    One,
    /// `#`: zero or more trailing segments.
    Rest,
}

/// Classifies a segment of a subscription pattern.
fn sub_seg(s: &str) -> Seg<'_> {
    match s {
        "+" => Seg::One,
        "#" => Seg::Rest,
        lit => Seg::Lit(lit),
    }
}

/// Classifies a segment of a declared pattern (placeholders behave like `+`).
fn declared_seg(s: &str) -> Seg<'_> {
    if placeholder_name(s).is_some() {
        Seg::One
    } else {
        sub_seg(s)
    }
}

/// The name inside a `{name}` segment, if the segment is a well-formed placeholder.
fn placeholder_name(seg: &str) -> Option<&str> {
    let name = seg.strip_prefix('{')?.strip_suffix('}')?;
    let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    valid.then_some(name)
}

/// Whether a pattern, given as classified segments, matches a concrete topic.
fn match_segments<'p>(pattern: impl Iterator<Item = Seg<'p>>, topic: &str) -> bool {
    let mut topic_segs = topic.split('/');
    for seg in pattern {
        match seg {
            // `#` after i segments matches any topic that has at least those i segments,
            // which the loop has already consumed and checked.
            Seg::Rest => return true,
            Seg::One => match topic_segs.next() {
                Some(t) if !t.is_empty() => {}
                _ => return false,
            },
            Seg::Lit(lit) => {
                if topic_segs.next() != Some(lit) {
                    return false;
                }
            }
        }
    }
    topic_segs.next().is_none()
}

/// Whether some concrete topic matches both patterns.
///
/// Any valid pattern tail can be instantiated by some topic (literals as they are, `+` as `x`,
/// `#` as nothing), so as soon as one side reaches `#` the answer is yes.
fn overlap_segments<'a, 'b>(
    mut a: impl Iterator<Item = Seg<'a>>,
    mut b: impl Iterator<Item = Seg<'b>>,
) -> bool {
    loop {
        match (a.next(), b.next()) {
            (Some(Seg::Rest), _) | (_, Some(Seg::Rest)) => return true,
            (None, None) => return true,
            (None, Some(_)) | (Some(_), None) => return false,
            (Some(Seg::Lit(x)), Some(Seg::Lit(y))) => {
                if x != y {
                    return false;
                }
            }
            (Some(Seg::Lit(x)), Some(Seg::One)) | (Some(Seg::One), Some(Seg::Lit(x))) => {
                if x.is_empty() {
                    return false;
                }
            }
            (Some(Seg::One), Some(Seg::One)) => {}
        }
    }
}

/// Whether every topic the `inner` pattern matches is matched by the `outer` one.
///
/// A walk in step: the answer is decided at the first segment where `outer` is `#` (it takes
/// whatever `inner` has left, nothing included) or where the two differ in a way some topic
/// can tell apart.
fn contain_segments<'a, 'b>(
    mut outer: impl Iterator<Item = Seg<'a>>,
    mut inner: impl Iterator<Item = Seg<'b>>,
) -> bool {
    loop {
        match (outer.next(), inner.next()) {
            (Some(Seg::Rest), _) | (None, None) => return true,
            // The inner `#` also matches a topic that ends here, which `outer` (not `#`
            // here) does not.
            (Some(_), Some(Seg::Rest)) => return false,
            (None, Some(_)) | (Some(_), None) => return false,
            (Some(Seg::One), Some(Seg::One)) => {}
            // `+` never matches an empty segment, so it covers only non-empty literals.
            (Some(Seg::One), Some(Seg::Lit(lit))) if !lit.is_empty() => {}
            (Some(Seg::Lit(o)), Some(Seg::Lit(i))) if o == i => {}
            _ => return false,
        }
    }
}

/// Implements the string-like traits shared by the three validated types.
macro_rules! string_newtype {
    ($ty:ident, $what:literal) => {
        impl $ty {
            #[doc = concat!("The ", $what, " as a string slice.")]
            pub fn as_str(&self) -> &str {
                &self.0
            }

            #[doc = concat!("The `/`-separated segments of the ", $what, ", in order.")]
            pub fn segments(&self) -> std::str::Split<'_, char> {
                self.0.split('/')
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $ty {
            type Err = TopicError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = TopicError;

            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $ty {
            fn serialize<Se: Serializer>(&self, serializer: Se) -> Result<Se::Ok, Se::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                Self::new(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A validated concrete topic, such as `build/42/status`.
///
/// Rules (docs/protocol.md 2.3): non-empty, at most [`MAX_TOPIC_BYTES`] bytes, and no segment is
/// exactly `+` or `#`. Any number of segments is allowed, and segments may be empty (`a/` has the
/// segments `a` and ``). Cloning is cheap (shared string).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(Arc<str>);

impl Topic {
    /// Validates a concrete topic.
    pub fn new(topic: &str) -> Result<Self, TopicError> {
        check_length(topic)?;
        if topic.split('/').any(|seg| seg == "+" || seg == "#") {
            return Err(TopicError::WildcardInTopic);
        }
        Ok(Topic(Arc::from(topic)))
    }
}

string_newtype!(Topic, "topic");

/// A validated subscription pattern, such as `build/+/status` or `tenant1/#`.
///
/// Rules (docs/protocol.md 2.3): non-empty, at most [`MAX_TOPIC_BYTES`] bytes, at most
/// [`MAX_PATTERN_SEGMENTS`] segments, and `#` only as the last segment. `+` and `#` are wildcards
/// only as whole segments. Cloning is cheap (shared string).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPattern(Arc<str>);

impl TopicPattern {
    /// Validates a subscription pattern.
    pub fn new(pattern: &str) -> Result<Self, TopicError> {
        check_pattern(pattern)?;
        Ok(TopicPattern(Arc::from(pattern)))
    }

    /// Whether this pattern matches a concrete topic.
    ///
    /// `+` matches exactly one non-empty segment; `#` matches zero or more trailing segments
    /// (`a/#` matches `a`, `a/`, `a/b` and `a/b/c`; a bare `#` matches every topic); literal
    /// segments, including empty ones, match exactly. This is a straightforward segment walk,
    /// used as the reference behaviour for the many-pattern matcher.
    pub fn matches(&self, topic: &str) -> bool {
        match_segments(self.segments().map(sub_seg), topic)
    }

    /// Whether the pattern contains no wildcard, i.e. names exactly one topic.
    pub fn is_literal(&self) -> bool {
        !self.segments().any(|seg| seg == "+" || seg == "#")
    }

    /// Whether every topic `other` matches is also matched by this pattern (topic permissions:
    /// a subscription must lie within what a rule grants).
    ///
    /// ```
    /// # use mcpbus_proto::topic::TopicPattern;
    /// let p = |s| TopicPattern::new(s).unwrap();
    /// assert!(p("agents/alice/#").contains(&p("agents/alice/inbox")));
    /// assert!(p("agents/+/inbox").contains(&p("agents/alice/inbox")));
    /// assert!(!p("agents/alice/#").contains(&p("agents/+/inbox")), "matches agents/bob/inbox");
    /// assert!(!p("a/+").contains(&p("a/#")), "a/# matches a, which a/+ does not");
    /// ```
    pub fn contains(&self, other: &TopicPattern) -> bool {
        contain_segments(self.segments().map(sub_seg), other.segments().map(sub_seg))
    }

    /// Whether some concrete topic matches both patterns.
    ///
    /// ```
    /// # use mcpbus_proto::topic::TopicPattern;
    /// let p = |s| TopicPattern::new(s).unwrap();
    /// assert!(p("agents/+/inbox").overlaps(&p("agents/bob/#")));
    /// assert!(!p("agents/+/inbox").overlaps(&p("agents//inbox")), "+ is never empty");
    /// ```
    pub fn overlaps(&self, other: &TopicPattern) -> bool {
        overlap_segments(self.segments().map(sub_seg), other.segments().map(sub_seg))
    }
}

string_newtype!(TopicPattern, "pattern");

/// A topic pattern declared by a server, which may hold `{name}` placeholders.
///
/// Same rules as [`TopicPattern`] (length, at most [`MAX_PATTERN_SEGMENTS`] segments, `#` last),
/// plus: any `{` or `}` must be part of a whole segment `{name}` whose name is one or more ASCII
/// letters, digits or `_`, and each name appears at most once. For matching, a placeholder
/// behaves like `+`: exactly one non-empty segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeclaredPattern(Arc<str>);

impl DeclaredPattern {
    /// Validates a declared pattern.
    pub fn new(pattern: &str) -> Result<Self, TopicError> {
        check_pattern(pattern)?;
        let mut names: Vec<&str> = Vec::new();
        for seg in pattern.split('/') {
            if let Some(name) = placeholder_name(seg) {
                if names.contains(&name) {
                    return Err(TopicError::BadPlaceholder);
                }
                names.push(name);
            } else if seg.contains(['{', '}']) {
                return Err(TopicError::BadPlaceholder);
            }
        }
        Ok(DeclaredPattern(Arc::from(pattern)))
    }

    /// The placeholder names, in segment order (`agents/{agent_id}/inbox` yields `agent_id`).
    pub fn placeholders(&self) -> impl Iterator<Item = &str> {
        self.segments().filter_map(placeholder_name)
    }

    /// Whether an emitted concrete topic is covered by this declaration (placeholders match one
    /// non-empty segment, like `+`).
    pub fn matches_topic(&self, topic: &str) -> bool {
        match_segments(self.segments().map(declared_seg), topic)
    }

    /// Whether some concrete topic matches both this declaration and the subscription pattern.
    ///
    /// This is the "matches at least one declared pattern" test of docs/protocol.md 2.5: wildcards on
    /// either side may cover the other's segments. `+/status` overlaps `build/status`, `#`
    /// overlaps everything, `build/x` overlaps `build/+` and `build/{id}`, but `a/b/c` does not
    /// overlap `a/+` and `a//b` does not overlap `a/{id}/b` (placeholders are never empty).
    pub fn overlaps(&self, sub: &TopicPattern) -> bool {
        overlap_segments(
            self.segments().map(declared_seg),
            sub.segments().map(sub_seg),
        )
    }

    /// Whether every topic the subscription pattern matches is covered by this declaration
    /// (docs/protocol.md 3.2: a SEP-3415 subscription's `topic` must lie within its event type).
    ///
    /// ```
    /// # use mcpbus_proto::topic::{DeclaredPattern, TopicPattern};
    /// let declared = DeclaredPattern::new("build/{project}/#").unwrap();
    /// assert!(declared.contains(&TopicPattern::new("build/web/status").unwrap()));
    /// assert!(declared.contains(&TopicPattern::new("build/+").unwrap()));
    /// assert!(!declared.contains(&TopicPattern::new("build/#").unwrap()), "matches `build`");
    /// assert!(!declared.contains(&TopicPattern::new("deploy/web").unwrap()));
    /// ```
    pub fn contains(&self, sub: &TopicPattern) -> bool {
        contain_segments(
            self.segments().map(declared_seg),
            sub.segments().map(sub_seg),
        )
    }

    /// What the subscription pattern puts at each placeholder, or `None` when the two do not
    /// [overlap](Self::overlaps).
    ///
    /// For each placeholder name the value is the subscription's segment at the same index: the
    /// literal segment itself, `"+"` if the subscription has a `+` there, or `"#"` if the
    /// subscription's `#` is at or before that index. A server enforcing docs/protocol.md 2.5 scoping
    /// (`{session_id}`, `{agent_id}`) requires the bound value to equal the caller's own id, so
    /// `"+"` and `"#"` are rejected there. Placeholders after a declared `#` cannot exist (`#` is
    /// last), so every placeholder gets a value.
    ///
    /// ```
    /// # use mcpbus_proto::topic::{DeclaredPattern, TopicPattern};
    /// let declared = DeclaredPattern::new("agents/{agent_id}/inbox").unwrap();
    /// let sub = TopicPattern::new("agents/me/+").unwrap();
    /// let bound = declared.bind(&sub).unwrap();
    /// assert_eq!(bound["agent_id"], "me");
    /// let sub = TopicPattern::new("agents/#").unwrap();
    /// assert_eq!(declared.bind(&sub).unwrap()["agent_id"], "#");
    /// ```
    pub fn bind(&self, sub: &TopicPattern) -> Option<BTreeMap<String, String>> {
        if !self.overlaps(sub) {
            return None;
        }
        let mut bound = BTreeMap::new();
        let mut sub_segs = sub.segments();
        let mut after_hash = false;
        for seg in self.segments() {
            if seg == "#" {
                break;
            }
            let value = if after_hash {
                "#"
            } else {
                match sub_segs.next() {
                    Some("#") => {
                        after_hash = true;
                        "#"
                    }
                    Some(value) => value,
                    // Unreachable for overlapping patterns; stop rather than guess.
                    None => break,
                }
            };
            if let Some(name) = placeholder_name(seg) {
                bound.insert(name.to_owned(), value.to_owned());
            }
        }
        Some(bound)
    }
}

string_newtype!(DeclaredPattern, "declared pattern");

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pat(s: &str) -> TopicPattern {
        TopicPattern::new(s).unwrap()
    }

    fn decl(s: &str) -> DeclaredPattern {
        DeclaredPattern::new(s).unwrap()
    }

    #[test]
    fn topic_rules() {
        assert_eq!(Topic::new(""), Err(TopicError::Empty));
        assert_eq!(Topic::new("a/+/b"), Err(TopicError::WildcardInTopic));
        assert_eq!(Topic::new("#"), Err(TopicError::WildcardInTopic));
        assert_eq!(Topic::new("a/#"), Err(TopicError::WildcardInTopic));
        assert!(Topic::new("a+b/c#").is_ok());
        assert!(Topic::new("{x}").is_ok());
        let long = "a".repeat(MAX_TOPIC_BYTES);
        assert!(Topic::new(&long).is_ok());
        let too_long = "a".repeat(MAX_TOPIC_BYTES + 1);
        assert_eq!(
            Topic::new(&too_long),
            Err(TopicError::TooLong { len: 1025 })
        );
    }

    #[test]
    fn topic_segments_and_many_segments() {
        let t = Topic::new("a/").unwrap();
        assert_eq!(t.segments().collect::<Vec<_>>(), ["a", ""]);
        let deep = vec!["x"; 40].join("/");
        assert_eq!(Topic::new(&deep).unwrap().segments().count(), 40);
        assert_eq!(Topic::new("/").unwrap().segments().count(), 2);
    }

    #[test]
    fn pattern_rules() {
        assert_eq!(TopicPattern::new(""), Err(TopicError::Empty));
        assert_eq!(TopicPattern::new("a/#/b"), Err(TopicError::HashNotLast));
        assert_eq!(TopicPattern::new("#/#"), Err(TopicError::HashNotLast));
        assert!(TopicPattern::new("a/b/c/d/e/f/g/h").is_ok());
        assert_eq!(
            TopicPattern::new("a/b/c/d/e/f/g/h/i"),
            Err(TopicError::TooManySegments { count: 9 })
        );
        assert!(TopicPattern::new("a/b/c/d/e/f/g/#").is_ok());
        let too_long = "a".repeat(MAX_TOPIC_BYTES + 1);
        assert_eq!(
            TopicPattern::new(&too_long),
            Err(TopicError::TooLong { len: 1025 })
        );
        assert!(pat("a/+").segments().eq(["a", "+"]));
        assert!(pat("a/b").is_literal());
        assert!(!pat("a/+").is_literal());
        assert!(pat("a+b/c#").is_literal());
    }

    #[test]
    fn plus_matches_one_non_empty_segment() {
        let p = pat("a/+/c");
        assert!(p.matches("a/x/c"));
        assert!(!p.matches("a//c"));
        assert!(!p.matches("a/x/y/c"));
        assert!(!p.matches("a/c"));
        assert!(pat("+").matches("x"));
        assert!(!pat("+").matches("x/"));
        assert!(!pat("+").matches("/x"));
    }

    #[test]
    fn hash_matches_zero_or_more_trailing() {
        let p = pat("a/#");
        for t in ["a", "a/", "a/b", "a/b/c", "a//"] {
            assert!(p.matches(t), "{t}");
        }
        for t in ["b", "ab", "b/a", "/a"] {
            assert!(!p.matches(t), "{t}");
        }
        for t in ["x", "a/b/c", "/", "a+b", "+"] {
            assert!(pat("#").matches(t), "{t}");
        }
        assert!(pat("+/#").matches("x"));
        assert!(!pat("+/#").matches("/x"));
    }

    #[test]
    fn literals_match_exactly() {
        assert!(pat("a+b").matches("a+b"));
        assert!(!pat("a+b").matches("axb"));
        assert!(pat("a/").matches("a/"));
        assert!(!pat("a/").matches("a"));
        assert!(pat("/").matches("/"));
        assert!(!pat("a/b").matches("a/b/"));
        assert!(pat("$SYS/x").matches("$SYS/x"));
        assert!(pat("übung/ß").matches("übung/ß"));
    }

    #[test]
    fn display_fromstr_serde() {
        let p: TopicPattern = "a/+".parse().unwrap();
        assert_eq!(p.to_string(), "a/+");
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"a/+\"");
        let back: TopicPattern = serde_json::from_str("\"a/#\"").unwrap();
        assert_eq!(back.as_str(), "a/#");
        let err = serde_json::from_str::<TopicPattern>("\"a/#/b\"").unwrap_err();
        assert!(err.to_string().contains("last segment"), "{err}");
        assert!(serde_json::from_str::<Topic>("\"a/+\"").is_err());
        let t: Topic = serde_json::from_str("\"a/b\"").unwrap();
        assert_eq!(t.as_str(), "a/b");
        let d: DeclaredPattern = serde_json::from_str("\"a/{id}\"").unwrap();
        assert_eq!(serde_json::to_value(&d).unwrap(), "a/{id}");
        assert!(serde_json::from_str::<DeclaredPattern>("\"a/{id\"").is_err());
    }

    #[test]
    fn error_messages_are_readable() {
        assert_eq!(
            TopicError::TooManySegments { count: 9 }.to_string(),
            "pattern has 9 segments; at most 8 are allowed"
        );
        assert!(TopicError::BadPlaceholder.to_string().contains("'{name}'"));
    }

    #[test]
    fn declared_placeholder_rules() {
        assert!(DeclaredPattern::new("agents/{agent_id}/inbox").is_ok());
        assert!(DeclaredPattern::new("a/{A_1}/{b}").is_ok());
        for bad in [
            "a/{}",
            "a/{x",
            "a/x}",
            "a/b{x}",
            "a/{x}b",
            "a/{x-y}",
            "a/{x}/{x}",
            "{é}",
        ] {
            assert_eq!(
                DeclaredPattern::new(bad),
                Err(TopicError::BadPlaceholder),
                "{bad}"
            );
        }
        assert_eq!(DeclaredPattern::new(""), Err(TopicError::Empty));
        assert_eq!(
            DeclaredPattern::new("{a}/#/b"),
            Err(TopicError::HashNotLast)
        );
        assert_eq!(
            DeclaredPattern::new("1/2/3/4/5/6/7/8/9"),
            Err(TopicError::TooManySegments { count: 9 })
        );
        let d = decl("s/{session_id}/x/{agent_id}");
        assert_eq!(
            d.placeholders().collect::<Vec<_>>(),
            ["session_id", "agent_id"]
        );
    }

    #[test]
    fn declared_matches_topic() {
        let d = decl("agents/{agent_id}/inbox");
        assert!(d.matches_topic("agents/a1/inbox"));
        assert!(!d.matches_topic("agents//inbox"));
        assert!(!d.matches_topic("agents/a1/b/inbox"));
        assert!(decl("build/+").matches_topic("build/status"));
        assert!(decl("build/#").matches_topic("build"));
        assert!(!decl("build/{id}").matches_topic("build"));
    }

    #[test]
    fn overlaps() {
        assert!(decl("build/status").overlaps(&pat("+/status")));
        assert!(!decl("build/sub/status").overlaps(&pat("+/status")));
        for d in ["a", "a/b/c", "{x}/y", "x/#", "/"] {
            assert!(decl(d).overlaps(&pat("#")), "{d}");
        }
        assert!(decl("build/+").overlaps(&pat("build/x")));
        assert!(decl("build/{id}").overlaps(&pat("build/x")));
        assert!(!decl("a/+").overlaps(&pat("a/b/c")));
        assert!(!decl("a/{id}").overlaps(&pat("a/b/c")));
        assert!(decl("a/#").overlaps(&pat("a/b/c")));
        assert!(decl("a/#").overlaps(&pat("a")));
        assert!(decl("a").overlaps(&pat("a/#")));
        assert!(!decl("a/{id}/b").overlaps(&pat("a//b")));
        assert!(!decl("a/{id}").overlaps(&pat("a")));
        assert!(decl("a/{id}").overlaps(&pat("a/#")));
        assert!(!decl("a/b").overlaps(&pat("a/c")));
        assert!(decl("a/+/c").overlaps(&pat("a/b/+")));
        assert!(decl("+").overlaps(&pat("+")));
        assert!(!decl("{x}/{y}").overlaps(&pat("+")));
    }

    #[test]
    fn bind_values() {
        let d = decl("app/sessions/{session_id}/messages");
        let bound = d.bind(&pat("app/sessions/abc/messages")).unwrap();
        assert_eq!(bound.len(), 1);
        assert_eq!(bound["session_id"], "abc");
        assert_eq!(
            d.bind(&pat("app/sessions/+/messages")).unwrap()["session_id"],
            "+"
        );
        assert_eq!(d.bind(&pat("app/sessions/#")).unwrap()["session_id"], "#");
        assert_eq!(d.bind(&pat("app/#")).unwrap()["session_id"], "#");
        assert_eq!(d.bind(&pat("#")).unwrap()["session_id"], "#");
        assert_eq!(d.bind(&pat("+/+/me/#")).unwrap()["session_id"], "me");
        assert_eq!(d.bind(&pat("app/other/x/messages")), None);
        assert_eq!(d.bind(&pat("app/sessions/abc")), None);

        let two = decl("t/{tenant}/{agent_id}/#");
        let b = two.bind(&pat("t/acme/+/x/y")).unwrap();
        assert_eq!(b["tenant"], "acme");
        assert_eq!(b["agent_id"], "+");
        let b = two.bind(&pat("t/acme/#")).unwrap();
        assert_eq!(b["agent_id"], "#");

        assert_eq!(decl("a/b").bind(&pat("a/b")).unwrap().len(), 0);
    }
    /// Every string made of 1..=max segments drawn from `alphabet`.
    fn all_joined(alphabet: &[&str], max: usize) -> Vec<String> {
        let mut out: Vec<Vec<&str>> = vec![vec![]];
        let mut all = Vec::new();
        for _ in 0..max {
            out = out
                .iter()
                .flat_map(|prefix| {
                    alphabet.iter().map(move |seg| {
                        let mut v = prefix.clone();
                        v.push(*seg);
                        v
                    })
                })
                .collect();
            all.extend(out.iter().map(|v| v.join("/")));
        }
        all
    }

    #[test]
    fn overlaps_agrees_with_brute_force() {
        // With patterns of at most 3 segments, a witness topic (if any) needs at most 3
        // segments drawn from literals of the patterns and one extra non-empty value.
        let topics = all_joined(&["a", "b", ""], 4);
        let subs: Vec<TopicPattern> = all_joined(&["a", "b", "", "+", "#"], 3)
            .iter()
            .filter_map(|s| TopicPattern::new(s).ok())
            .collect();
        let decls: Vec<DeclaredPattern> = all_joined(&["a", "", "+", "#", "{p}"], 3)
            .iter()
            .filter_map(|s| DeclaredPattern::new(s).ok())
            .collect();
        assert_eq!((subs.len(), decls.len()), (104, 92));
        for d in &decls {
            for s in &subs {
                let brute = topics.iter().any(|t| d.matches_topic(t) && s.matches(t));
                assert_eq!(d.overlaps(s), brute, "declared {d} vs sub {s}");
                assert_eq!(d.bind(s).is_some(), brute, "declared {d} vs sub {s}");
                if let Some(b) = d.bind(s) {
                    assert_eq!(b.len(), d.placeholders().count(), "{d} vs {s}");
                }
            }
        }
    }

    #[test]
    fn pattern_containment_and_overlap_agree_with_brute_force() {
        // Two patterns of at most 3 segments over {a, b, ""} are told apart, if at all, by a
        // topic of at most 4 segments over those literals and one more non-empty value.
        let topics = all_joined(&["a", "b", "", "c"], 4);
        let pats: Vec<TopicPattern> = all_joined(&["a", "b", "", "+", "#"], 3)
            .iter()
            .filter_map(|s| TopicPattern::new(s).ok())
            .collect();
        for outer in &pats {
            for inner in &pats {
                let matched = topics.iter().filter(|t| inner.matches(t));
                let contained = matched.clone().all(|t| outer.matches(t));
                let overlap = topics.iter().any(|t| inner.matches(t) && outer.matches(t));
                assert_eq!(outer.contains(inner), contained, "{outer} contains {inner}");
                assert_eq!(outer.overlaps(inner), overlap, "{outer} overlaps {inner}");
            }
        }
    }

    #[test]
    fn containment_of_subscriptions_in_declarations() {
        let d = decl("a/{x}/c");
        assert!(d.contains(&pat("a/b/c")));
        assert!(d.contains(&pat("a/+/c")));
        assert!(!d.contains(&pat("a//c")), "a placeholder is never empty");
        assert!(!d.contains(&pat("a/#")));
        assert!(!d.contains(&pat("a/b")));
        assert!(!d.contains(&pat("a/b/c/d")));
        assert!(!d.contains(&pat("+/b/c")));
        let d = decl("a/#");
        assert!(d.contains(&pat("a")));
        assert!(d.contains(&pat("a/#")));
        assert!(d.contains(&pat("a/+/x/#")));
        assert!(!d.contains(&pat("#")));
        assert!(decl("#").contains(&pat("#")));
    }
}
