//! Property tests of the topic permissions (`mcpbus::events::access`) against a brute-force
//! reference: rules, a caller and a subscription pattern or a publish topic are drawn from a
//! tiny alphabet, and the answer must be what enumerating every topic they could tell apart
//! says.
//!
//! - A subscription is granted when some allow rule's pattern matches every topic the
//!   subscription matches, and no deny rule's pattern matches a topic the subscription matches.
//! - A publish is granted when some allow rule's pattern matches its topic and no deny rule's
//!   does.
//! - Placeholders hold the caller's agent id; a value that is empty or holds `/`, `+` or `#`
//!   fills no allow rule, and makes a deny rule cover the segment as `+`.
//!
//! Patterns use the literals `a`, `b` and the empty segment; agent ids are `a`, `c` or an
//! unusable value. Any other non-empty segment (`d`) behaves like every other, so topics of up
//! to one segment more than the longest pattern, over `a`, `b`, ``, `c`, `d`, decide every
//! question.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use mcpbus::events::access::{AccessRule, AccessRules, Action, Caller, Effect, Who};
use mcpbus::server::Identity;
use mcpbus_proto::TopicPattern;
use proptest::prelude::*;

/// A rule pattern: 1–3 segments, `#` only last, maybe an `{agent_id}`.
fn rule_pattern() -> impl Strategy<Value = String> {
    let seg = prop_oneof![
        3 => Just("a"),
        2 => Just("b"),
        1 => Just(""),
        3 => Just("+"),
        2 => Just("{agent_id}"),
    ];
    (prop::collection::vec(seg, 1..=3), prop::bool::weighted(0.3))
        .prop_map(|(mut segs, hash)| {
            if hash && let Some(last) = segs.last_mut() {
                *last = "#";
            }
            // A placeholder may appear once per pattern.
            let mut seen = false;
            let segs: Vec<&str> = segs
                .into_iter()
                .map(|s| match s {
                    "{agent_id}" if seen => "+",
                    "{agent_id}" => {
                        seen = true;
                        s
                    }
                    s => s,
                })
                .collect();
            segs.join("/")
        })
        .prop_filter("the empty pattern is invalid", |p| !p.is_empty())
}

/// A subscription pattern: 1–3 segments from the alphabet, `#` only last.
fn sub_pattern() -> impl Strategy<Value = TopicPattern> {
    let seg =
        prop_oneof![3 => Just("a"), 2 => Just("b"), 1 => Just(""), 1 => Just("c"), 3 => Just("+")];
    (prop::collection::vec(seg, 1..=3), prop::bool::weighted(0.3)).prop_filter_map(
        "valid pattern",
        |(mut segs, hash)| {
            if hash && let Some(last) = segs.last_mut() {
                *last = "#";
            }
            TopicPattern::new(&segs.join("/")).ok()
        },
    )
}

#[derive(Debug, Clone)]
struct RuleSpec {
    deny: bool,
    /// Whether the rule applies to the caller (`alice`) or to someone else.
    mine: bool,
    subscribe: bool,
    topics: Vec<String>,
}

fn rule() -> impl Strategy<Value = RuleSpec> {
    (
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.8),
        any::<bool>(),
        prop::collection::vec(rule_pattern(), 1..=2),
    )
        .prop_map(|(deny, mine, subscribe, topics)| RuleSpec {
            deny,
            mine,
            subscribe,
            topics,
        })
}

fn to_rule(spec: &RuleSpec) -> AccessRule {
    let who = Who::subjects([if spec.mine { "alice" } else { "bob" }]);
    let rule = if spec.deny {
        AccessRule::deny(who)
    } else {
        AccessRule::allow(who)
    };
    let action = if spec.subscribe {
        Action::Subscribe
    } else {
        Action::Publish
    };
    rule.actions([action]).topics(spec.topics.iter().cloned())
}

/// Every topic that can tell the patterns apart.
fn universe() -> Vec<String> {
    let alphabet = ["a", "b", "", "c", "d"];
    let mut level: Vec<String> = alphabet.iter().map(|s| s.to_string()).collect();
    let mut all = level.clone();
    for _ in 1..4 {
        level = level
            .iter()
            .flat_map(|p| alphabet.iter().map(move |s| format!("{p}/{s}")))
            .collect();
        all.extend(level.iter().cloned());
    }
    // The empty string is no topic (`/` is: two empty segments).
    all.retain(|t| !t.is_empty());
    all
}

/// A rule's pattern for the caller: `None` for an allow rule whose placeholder cannot be
/// filled; `+` there for a deny rule.
fn filled(pattern: &str, agent: &str, deny: bool) -> Option<TopicPattern> {
    let usable = !agent.is_empty() && !agent.contains(['/', '+', '#']);
    let value = match (usable, deny) {
        (true, _) => agent,
        (false, true) => "+",
        (false, false) if pattern.contains("{agent_id}") => return None,
        (false, false) => "",
    };
    TopicPattern::new(&pattern.replace("{agent_id}", value)).ok()
}

/// The reference: which topics of the universe the target matches, against every rule that
/// applies.
fn reference(specs: &[RuleSpec], agent: &str, action_subscribe: bool, target: &[&String]) -> bool {
    if specs.is_empty() {
        return true;
    }
    let applicable = specs
        .iter()
        .filter(|s| s.mine && s.subscribe == action_subscribe);
    let mut granted = false;
    for spec in applicable {
        for pattern in spec
            .topics
            .iter()
            .filter_map(|p| filled(p, agent, spec.deny))
        {
            if spec.deny && target.iter().any(|t| pattern.matches(t)) {
                return false;
            }
            if !spec.deny && target.iter().all(|t| pattern.matches(t)) {
                granted = true;
            }
        }
    }
    granted
}

fn caller(agent: &str) -> Caller {
    Caller::authenticated(Arc::new(Identity::named("alice"))).with_agent_id(agent)
}

fn agent_id() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("a"),
        Just("c"),
        Just(""),
        Just("+"),
        Just("x/y"),
        Just("c#")
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(768))]

    #[test]
    fn subscriptions_agree_with_the_reference(
        specs in prop::collection::vec(rule(), 0..4),
        agent in agent_id(),
        sub in sub_pattern(),
    ) {
        let rules = AccessRules::new(specs.iter().map(to_rule)).unwrap();
        let universe = universe();
        let matched: Vec<&String> = universe.iter().filter(|t| sub.matches(t)).collect();
        let expected = reference(&specs, agent, true, &matched);
        let got = rules.check_subscribe(&caller(agent), &sub);
        prop_assert_eq!(got.is_ok(), expected, "{:?} as {:?} on {}", specs, agent, sub);
        if let Err(denied) = got {
            prop_assert_eq!(denied.action, Action::Subscribe);
            prop_assert_eq!(denied.target, sub.to_string());
        }
    }

    #[test]
    fn publishes_agree_with_the_reference(
        specs in prop::collection::vec(rule(), 0..4),
        agent in agent_id(),
        topic in prop::sample::select(universe()),
    ) {
        let rules = AccessRules::new(specs.iter().map(to_rule)).unwrap();
        let expected = reference(&specs, agent, false, &[&topic]);
        let got = rules.check_publish(&caller(agent), &topic).is_ok();
        prop_assert_eq!(got, expected, "{:?} as {:?} on {:?}", specs, agent, topic);
    }

    /// A granted wildcard subscription grants each topic it matches, as a subscription of its
    /// own; a refused one leaves at least one of them, or a deny, to blame.
    #[test]
    fn a_granted_pattern_grants_each_of_its_topics(
        specs in prop::collection::vec(rule(), 1..4),
        agent in agent_id(),
        sub in sub_pattern(),
    ) {
        let rules = AccessRules::new(specs.iter().map(to_rule)).unwrap();
        let who = caller(agent);
        if rules.check_subscribe(&who, &sub).is_ok() {
            for t in universe().iter().filter(|t| sub.matches(t)) {
                let one = TopicPattern::new(t).unwrap();
                prop_assert!(rules.check_subscribe(&who, &one).is_ok(), "{} then {}", sub, t);
            }
        }
        let only_denies = specs.iter().all(|s| s.deny);
        prop_assert!(!(only_denies && rules.check_subscribe(&who, &sub).is_ok()));
    }
}

#[test]
fn effects_have_their_documented_names() {
    assert_eq!(serde_json::to_value(Effect::Deny).unwrap(), "deny");
    assert_eq!(Action::Webhook.to_string(), "webhook");
}
