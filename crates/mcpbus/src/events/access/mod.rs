//! Topic permissions (docs/auth.md, "Topic permissions"): rules in the manner of an MQTT
//! broker's ACL, saying who may subscribe to, publish on, or register webhooks for which
//! topics. They apply on every path a topic is reached by, on top of the declared topics' own
//! scoping and authorizers (both must allow).
//!
//! - A rule names **who** (subjects, scopes all held, OAuth client ids, `authenticated`,
//!   `anonymous`, `anyone`: a caller meeting any of them), **actions** (`subscribe`, which also
//!   covers reading retained values and polling or streaming; `publish`; `webhook`), **topic
//!   patterns**, and an **effect** (allow or deny).
//! - Patterns may hold `{agent_id}`, `{subject}`, `{client_id}` and `{session_id}` as whole
//!   segments, filled from the caller. A value that is missing, empty, or holds `/`, `+` or `#`
//!   would widen the pattern: an allow rule then grants nothing, and a deny rule covers the
//!   segment as `+` (anything there).
//! - **Deny wins** over allow. With any rule configured, what no allow rule grants is refused.
//!   With no rule configured, nothing changes: every check passes.
//! - A subscription pattern is granted when it lies wholly within one allow rule's pattern
//!   ([`TopicPattern::contains`]: `agents/+/inbox` is not within `agents/alice/#`) and overlaps
//!   no deny rule's pattern. A publish checks its concrete topic.
//! - A webhook needs both `webhook` and `subscribe`.
//!
//! Refusals are logged (subject, action, topic, which rule; never a credential) and counted
//! (`mcpbus_access_denials_total`, by action).
//!
//! ```
//! use mcpbus::events::TopicSpec;
//! use mcpbus::events::access::{AccessRule, AccessRules, Action, Caller, Who};
//! use mcpbus::server::{Identity, Server};
//! use mcpbus_proto::TopicPattern;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rules = AccessRules::new([
//!     AccessRule::allow(Who::scopes(["inbox"]))
//!         .actions([Action::Subscribe, Action::Webhook])
//!         .topics(["agents/{agent_id}/inbox"]),
//!     AccessRule::deny(Who::anonymous())
//!         .actions([Action::Subscribe])
//!         .topics(["#"]),
//! ])?;
//! let alice = Identity::named("alice").with_scopes(["inbox"]);
//! let alice = Caller::authenticated(std::sync::Arc::new(alice));
//! let pattern = |p: &str| TopicPattern::new(p).unwrap();
//! assert!(rules.check_subscribe(&alice, &pattern("agents/alice/inbox")).is_ok());
//! let refused = rules.check_subscribe(&alice, &pattern("agents/+/inbox")).unwrap_err();
//! assert_eq!(refused.to_string(), "not allowed to subscribe to agents/+/inbox");
//!
//! let server = Server::builder("app", "1.0.0")
//!     .topic(TopicSpec::content("agents/{agent_id}/inbox"))
//!     .access_rules(rules)
//!     .build()?;
//! # let _ = server;
//! # Ok(()) }
//! ```

mod caller;
mod rule;

use std::sync::Arc;

use mcpbus_proto::topic::TopicPattern;

pub use caller::Caller;
pub(crate) use rule::CompiledRule;
pub use rule::{AccessRule, AccessRuleError, Action, Effect, Who};

use crate::metrics::Metrics;

/// The topic permissions of a server (`ServerBuilder::access_rules`); cheap to clone.
#[derive(Clone, Default)]
pub struct AccessRules {
    rules: Arc<[CompiledRule]>,
    metrics: Option<Metrics>,
}

impl std::fmt::Debug for AccessRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessRules")
            .field("rules", &self.rules.len())
            .finish()
    }
}

/// A refused action: what was asked, on which topic or pattern (never why, which would tell
/// the rules).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not allowed to {} {target}", action.verb())]
pub struct AccessDenied {
    /// The action refused.
    pub action: Action,
    /// The topic or pattern it was refused on.
    pub target: String,
}

/// How much of a pattern a caller may reach (the bridges' topic listings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// All of it.
    All,
    /// Some of its topics may be granted.
    Part,
    /// None of it.
    Nothing,
}

/// What is checked: a subscription pattern, or the concrete topic of a publish.
#[derive(Debug, Clone, Copy)]
enum Target<'a> {
    Pattern(&'a TopicPattern),
    Topic(&'a str),
}

impl Target<'_> {
    fn as_str(&self) -> &str {
        match self {
            Target::Pattern(p) => p.as_str(),
            Target::Topic(t) => t,
        }
    }

    /// Whether an allow rule's pattern grants all of it.
    fn within(&self, allowed: &TopicPattern) -> bool {
        match self {
            Target::Pattern(p) => allowed.contains(p),
            Target::Topic(t) => allowed.matches(t),
        }
    }

    /// Whether a deny rule's pattern touches any of it.
    fn touched_by(&self, denied: &TopicPattern) -> bool {
        match self {
            Target::Pattern(p) => denied.overlaps(p),
            Target::Topic(t) => denied.matches(t),
        }
    }
}

/// The topics two patterns both match, as one pattern (`None` when they share none): segment by
/// segment the narrower of the two, and after a `#` whatever the other has left.
fn meet(a: &TopicPattern, b: &TopicPattern) -> Option<TopicPattern> {
    if !a.overlaps(b) {
        return None;
    }
    let (mut a, mut b) = (a.segments(), b.segments());
    let mut out: Vec<&str> = Vec::new();
    loop {
        match (a.next(), b.next()) {
            (Some("#"), rest) => {
                out.extend(rest.into_iter().chain(b.by_ref()));
                break;
            }
            (rest, Some("#")) => {
                out.extend(rest.into_iter().chain(a.by_ref()));
                break;
            }
            (Some(x), Some(y)) => out.push(if x == "+" { y } else { x }),
            // Overlapping patterns end together unless a `#` ended one first.
            _ => break,
        }
    }
    TopicPattern::new(&out.join("/")).ok()
}

/// The outcome of the rules for one check.
enum Verdict<'r> {
    Allowed,
    /// Refused by this deny rule, or (`None`) granted by no allow rule.
    Refused(Option<&'r CompiledRule>),
}

impl AccessRules {
    /// Checks and parses `rules`, numbered from 1 in the order given (see the module
    /// documentation for what they mean). No rules: every check passes.
    pub fn new<I: IntoIterator<Item = AccessRule>>(rules: I) -> Result<Self, AccessRuleError> {
        let rules = rules
            .into_iter()
            .enumerate()
            .map(|(i, rule)| CompiledRule::compile(i + 1, rule))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AccessRules {
            rules: rules.into(),
            metrics: None,
        })
    }

    /// Whether no rule is configured (every check passes).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// How many rules there are.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// These rules, counting their refusals in `metrics`.
    pub(crate) fn counted_in(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Whether `caller` may subscribe to `pattern` (and read its retained values).
    pub fn check_subscribe(
        &self,
        caller: &Caller,
        pattern: &TopicPattern,
    ) -> Result<(), AccessDenied> {
        self.check(caller, Action::Subscribe, Target::Pattern(pattern))
    }

    /// Whether `caller` may hold a webhook subscription to `pattern`: it needs both
    /// `subscribe` and `webhook`.
    pub fn check_webhook(
        &self,
        caller: &Caller,
        pattern: &TopicPattern,
    ) -> Result<(), AccessDenied> {
        self.check_subscribe(caller, pattern)?;
        self.check(caller, Action::Webhook, Target::Pattern(pattern))
    }

    /// Whether `caller` may publish on the concrete `topic`.
    pub fn check_publish(&self, caller: &Caller, topic: &str) -> Result<(), AccessDenied> {
        self.check(caller, Action::Publish, Target::Topic(topic))
    }

    /// Whether `caller` may subscribe to the concrete `topic`, without logging or counting a
    /// refusal (to leave a value out of a listing, say).
    pub(crate) fn may_read(&self, caller: &Caller, topic: &str) -> bool {
        matches!(
            self.decide(caller, Action::Subscribe, Target::Topic(topic)),
            Verdict::Allowed
        )
    }

    /// How much of `pattern` `caller` may subscribe to (never logged or counted). `Part` is a
    /// hint: the topics an applicable allow rule shares with the pattern do not all lie within
    /// one deny rule.
    pub(crate) fn reach(&self, caller: &Caller, pattern: &TopicPattern) -> Reach {
        let target = Target::Pattern(pattern);
        if matches!(
            self.decide(caller, Action::Subscribe, target),
            Verdict::Allowed
        ) {
            return Reach::All;
        }
        let applicable: Vec<&CompiledRule> = self
            .rules
            .iter()
            .filter(|r| r.applies(caller, Action::Subscribe))
            .collect();
        let denied: Vec<TopicPattern> = applicable
            .iter()
            .filter(|r| r.effect == Effect::Deny)
            .flat_map(|r| r.topics.iter().map(|p| p.fill_for_deny(caller)))
            .collect();
        let granted = applicable
            .iter()
            .filter(|r| r.effect == Effect::Allow)
            .flat_map(|r| r.topics.iter().filter_map(|p| p.fill(caller)))
            .chain(caller.is_privileged().then(|| pattern.clone()));
        let mut some = granted
            .filter_map(|allowed| meet(&allowed, pattern))
            .filter(|both| !denied.iter().any(|d| d.contains(both)));
        if some.next().is_some() {
            Reach::Part
        } else {
            Reach::Nothing
        }
    }

    /// Checks, logging and counting a refusal.
    fn check(
        &self,
        caller: &Caller,
        action: Action,
        target: Target<'_>,
    ) -> Result<(), AccessDenied> {
        let Verdict::Refused(rule) = self.decide(caller, action, target) else {
            return Ok(());
        };
        let rule = match rule {
            Some(r) => match &r.name {
                Some(name) => format!("deny rule {} ({name})", r.number),
                None => format!("deny rule {}", r.number),
            },
            None => "no allow rule grants it".to_owned(),
        };
        tracing::info!(
            subject = caller.subject(),
            action = action.as_str(),
            topic = target.as_str(),
            rule,
            "topic access denied"
        );
        if let Some(metrics) = &self.metrics {
            metrics.count_access_denial(action.as_str());
        }
        Err(AccessDenied {
            action,
            target: target.as_str().to_owned(),
        })
    }

    /// The rules' answer: deny wins, then an allow that grants all of the target; nothing
    /// granted is refused (unless there is no rule at all).
    fn decide(&self, caller: &Caller, action: Action, target: Target<'_>) -> Verdict<'_> {
        if self.rules.is_empty() {
            return Verdict::Allowed;
        }
        let mut granted = caller.is_privileged();
        for rule in self.rules.iter().filter(|r| r.applies(caller, action)) {
            match rule.effect {
                Effect::Deny => {
                    let touched = rule
                        .topics
                        .iter()
                        .any(|p| target.touched_by(&p.fill_for_deny(caller)));
                    if touched {
                        return Verdict::Refused(Some(rule));
                    }
                }
                Effect::Allow if !granted => {
                    granted = rule
                        .topics
                        .iter()
                        .any(|p| p.fill(caller).is_some_and(|p| target.within(&p)));
                }
                Effect::Allow => {}
            }
        }
        if granted {
            Verdict::Allowed
        } else {
            Verdict::Refused(None)
        }
    }
}

#[cfg(test)]
mod tests;
