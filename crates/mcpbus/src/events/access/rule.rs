//! One topic permission as written ([`AccessRule`]: who, which actions, which topics, allow or
//! deny), and as checked: its topic patterns parsed once, their placeholders ready to be filled
//! from the caller.

use std::fmt;
use std::str::FromStr;

use mcpbus_proto::topic::{DeclaredPattern, TopicError, TopicPattern};
use serde::{Deserialize, Serialize};

use super::caller::Caller;

/// What a caller does with a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Receive a topic's events in any way: the handshake era's `events/subscribe`, SEP-3415
    /// polls and push streams, the tool bridge's `wait_for_events`, and reading retained values
    /// (subscribe results, `read_retained`, `mcpbus://retained/...` resources).
    Subscribe,
    /// Publish on a topic (the `publish` tool of `mcpbus serve`, its `POST /publish`, or any
    /// handler that asks
    /// [`Context::authorize_publish`](crate::server::Context::authorize_publish)).
    Publish,
    /// Register a SEP-3415 webhook subscription, and keep it delivered. A webhook receives
    /// events, so it needs [`Subscribe`](Self::Subscribe) on the same topics as well.
    Webhook,
}

impl Action {
    /// Every action, in the order of the documentation.
    pub const ALL: [Action; 3] = [Action::Subscribe, Action::Publish, Action::Webhook];

    /// The action's name in a configuration (`subscribe`, `publish`, `webhook`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Subscribe => "subscribe",
            Action::Publish => "publish",
            Action::Webhook => "webhook",
        }
    }

    /// How a refusal names the action: "not allowed to {verb} {topic}".
    pub(crate) fn verb(self) -> &'static str {
        match self {
            Action::Subscribe => "subscribe to",
            Action::Publish => "publish on",
            Action::Webhook => "register a webhook for",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = AccessRuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| AccessRuleError::UnknownAction(s.to_owned()))
    }
}

/// Whether a rule grants or refuses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Grants the actions on the topics.
    #[default]
    Allow,
    /// Refuses them, whatever any other rule grants.
    Deny,
}

/// Whom a rule applies to: a caller that meets **any** of the criteria given. At least one
/// must be given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Who {
    /// Callers authenticated as one of these subjects ([`Identity::subject`]).
    ///
    /// [`Identity::subject`]: crate::server::Identity::subject
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    /// Callers whose credential grants **every one** of these scopes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Callers whose credential was issued to one of these OAuth clients.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_ids: Vec<String>,
    /// Every authenticated caller.
    #[serde(default, skip_serializing_if = "is_false")]
    pub authenticated: bool,
    /// Every caller without a credential.
    #[serde(default, skip_serializing_if = "is_false")]
    pub anonymous: bool,
    /// Every caller.
    #[serde(default, skip_serializing_if = "is_false")]
    pub anyone: bool,
}

fn is_false(b: &bool) -> bool {
    !b
}

impl Who {
    /// Every caller.
    pub fn anyone() -> Self {
        Who {
            anyone: true,
            ..Who::default()
        }
    }

    /// Every authenticated caller.
    pub fn authenticated() -> Self {
        Who {
            authenticated: true,
            ..Who::default()
        }
    }

    /// Every caller without a credential.
    pub fn anonymous() -> Self {
        Who {
            anonymous: true,
            ..Who::default()
        }
    }

    /// Callers authenticated as one of `subjects`.
    pub fn subjects<I: IntoIterator<Item = S>, S: Into<String>>(subjects: I) -> Self {
        Who {
            subjects: subjects.into_iter().map(Into::into).collect(),
            ..Who::default()
        }
    }

    /// Callers holding every one of `scopes`.
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        Who {
            scopes: scopes.into_iter().map(Into::into).collect(),
            ..Who::default()
        }
    }

    /// Callers whose credential was issued to one of `client_ids`.
    pub fn client_ids<I: IntoIterator<Item = S>, S: Into<String>>(client_ids: I) -> Self {
        Who {
            client_ids: client_ids.into_iter().map(Into::into).collect(),
            ..Who::default()
        }
    }

    /// Whether no criterion is given (such a rule would apply to nobody: refused).
    pub fn is_empty(&self) -> bool {
        self.subjects.is_empty()
            && self.scopes.is_empty()
            && self.client_ids.is_empty()
            && !self.authenticated
            && !self.anonymous
            && !self.anyone
    }

    /// Whether `caller` meets any of the criteria.
    pub(crate) fn matches(&self, caller: &Caller) -> bool {
        if self.anyone {
            return true;
        }
        let Some(identity) = caller.identity() else {
            return self.anonymous;
        };
        self.authenticated
            || self.subjects.iter().any(|s| **s == *identity.subject)
            || (!self.scopes.is_empty() && self.scopes.iter().all(|s| identity.has_scope(s)))
            || identity
                .client_id
                .as_deref()
                .is_some_and(|c| self.client_ids.iter().any(|id| id == c))
    }
}

/// One topic permission: `effect` (allow or deny) of `actions` on `topics`, for the callers
/// `who` names.
///
/// A topic pattern is a subscription pattern (`+` one segment, `#` the rest) whose segments may
/// also be one of the placeholders `{agent_id}`, `{subject}`, `{client_id}` and `{session_id}`,
/// filled from the caller (see the module documentation for when one cannot be).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    /// A name for the logs (the rule's position is logged besides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Allow (the default) or deny.
    #[serde(default)]
    pub effect: Effect,
    /// Whom the rule applies to.
    pub who: Who,
    /// What the rule allows or denies.
    pub actions: Vec<Action>,
    /// The topic patterns the rule covers.
    pub topics: Vec<String>,
}

impl AccessRule {
    /// A rule granting nothing yet to `who`: add [`actions`](Self::actions) and
    /// [`topics`](Self::topics).
    pub fn allow(who: Who) -> Self {
        AccessRule {
            name: None,
            effect: Effect::Allow,
            who,
            actions: Vec::new(),
            topics: Vec::new(),
        }
    }

    /// A rule refusing (once given actions and topics) to `who`, whatever others grant.
    pub fn deny(who: Who) -> Self {
        AccessRule {
            effect: Effect::Deny,
            ..Self::allow(who)
        }
    }

    /// Names the rule in the logs.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Adds actions the rule covers.
    pub fn actions(mut self, actions: impl IntoIterator<Item = Action>) -> Self {
        self.actions.extend(actions);
        self
    }

    /// Adds topic patterns the rule covers.
    pub fn topics<I: IntoIterator<Item = S>, S: Into<String>>(mut self, topics: I) -> Self {
        self.topics.extend(topics.into_iter().map(Into::into));
        self
    }
}

/// Why a rule is refused. Rules are numbered from 1, in the order given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessRuleError {
    /// An action name that is none of `subscribe`, `publish`, `webhook`.
    #[error("unknown action {0:?}: expected subscribe, publish or webhook")]
    UnknownAction(String),
    /// A rule whose `who` names nobody.
    #[error(
        "rule {rule}: `who` is empty; give subjects, scopes, client_ids, or one of \
         authenticated, anonymous, anyone"
    )]
    EmptyWho {
        /// The rule's number.
        rule: usize,
    },
    /// A rule without actions.
    #[error("rule {rule}: no actions; give some of subscribe, publish, webhook")]
    NoActions {
        /// The rule's number.
        rule: usize,
    },
    /// A rule without topics.
    #[error("rule {rule}: no topics")]
    NoTopics {
        /// The rule's number.
        rule: usize,
    },
    /// A topic pattern that is not valid.
    #[error("rule {rule}: topic pattern {pattern:?}: {source}")]
    BadPattern {
        /// The rule's number.
        rule: usize,
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        source: TopicError,
    },
    /// A placeholder the rules cannot fill.
    #[error(
        "rule {rule}: topic pattern {pattern:?}: unknown placeholder {{{name}}}; expected \
         {{agent_id}}, {{subject}}, {{client_id}} or {{session_id}}"
    )]
    UnknownPlaceholder {
        /// The rule's number.
        rule: usize,
        /// The pattern.
        pattern: String,
        /// The placeholder's name.
        name: String,
    },
}

/// What a placeholder is filled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Var {
    AgentId,
    Subject,
    ClientId,
    SessionId,
}

impl Var {
    fn parse(name: &str) -> Option<Var> {
        Some(match name {
            "agent_id" => Var::AgentId,
            "subject" => Var::Subject,
            "client_id" => Var::ClientId,
            "session_id" => Var::SessionId,
            _ => return None,
        })
    }
}

/// One segment of a rule's topic pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// A literal segment, `+` or `#`, as written.
    Text(String),
    /// A placeholder.
    Var(Var),
}

/// A rule's topic pattern, parsed: filled from a caller, it is a [`TopicPattern`].
#[derive(Debug, Clone)]
pub(crate) struct RulePattern {
    segments: Vec<Segment>,
    /// Every placeholder as `+`: what a deny rule covers when a placeholder cannot be filled.
    widened: TopicPattern,
    /// The pattern itself, when it has no placeholder.
    fixed: Option<TopicPattern>,
}

impl RulePattern {
    /// Parses `text` (rule number `rule`, for errors).
    fn parse(rule: usize, text: &str) -> Result<Self, AccessRuleError> {
        let bad = |source| AccessRuleError::BadPattern {
            rule,
            pattern: text.to_owned(),
            source,
        };
        // A declared pattern has exactly the syntax wanted: whole-segment `{name}`s, once each.
        // Once valid, any segment with a brace is a whole `{name}`.
        let declared = DeclaredPattern::new(text).map_err(bad)?;
        let mut segments = Vec::new();
        for seg in declared.segments() {
            let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
                segments.push(Segment::Text(seg.to_owned()));
                continue;
            };
            let var = Var::parse(name).ok_or_else(|| AccessRuleError::UnknownPlaceholder {
                rule,
                pattern: text.to_owned(),
                name: name.to_owned(),
            })?;
            segments.push(Segment::Var(var));
        }
        let widened = join(&segments, |_| Some("+")).unwrap_or_default();
        let widened = TopicPattern::new(&widened).map_err(bad)?;
        let fixed = segments
            .iter()
            .all(|s| matches!(s, Segment::Text(_)))
            .then(|| widened.clone());
        Ok(RulePattern {
            segments,
            widened,
            fixed,
        })
    }

    /// The pattern for `caller`, or `None` when a placeholder cannot be filled: the caller has
    /// no such value, or its value is empty or holds `/`, `+` or `#` (which would widen the
    /// pattern), or the result is not a valid pattern.
    pub(crate) fn fill(&self, caller: &Caller) -> Option<TopicPattern> {
        if let Some(fixed) = &self.fixed {
            return Some(fixed.clone());
        }
        let text = join(&self.segments, |var| {
            caller
                .value(var)
                .filter(|v| !v.is_empty() && !v.contains(['/', '+', '#']))
        })?;
        TopicPattern::new(&text).ok()
    }

    /// What a deny rule covers for `caller`: the filled pattern, or, when it cannot be filled,
    /// the pattern with `+` at each placeholder (a deny never narrows for want of a value).
    pub(crate) fn fill_for_deny(&self, caller: &Caller) -> TopicPattern {
        self.fill(caller).unwrap_or_else(|| self.widened.clone())
    }
}

/// The segments joined with `/`, each placeholder replaced by `value`; `None` when one has
/// none.
fn join<'a>(segments: &'a [Segment], value: impl Fn(Var) -> Option<&'a str>) -> Option<String> {
    let mut out = String::new();
    for (i, seg) in segments.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        match seg {
            Segment::Text(text) => out.push_str(text),
            Segment::Var(var) => out.push_str(value(*var)?),
        }
    }
    Some(out)
}

/// A rule ready to be checked.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    /// The rule's number (from 1).
    pub(crate) number: usize,
    pub(crate) name: Option<String>,
    pub(crate) effect: Effect,
    pub(crate) who: Who,
    pub(crate) actions: Vec<Action>,
    pub(crate) topics: Vec<RulePattern>,
}

impl CompiledRule {
    /// Checks rule number `number` and parses its patterns.
    pub(crate) fn compile(number: usize, rule: AccessRule) -> Result<Self, AccessRuleError> {
        if rule.who.is_empty() {
            return Err(AccessRuleError::EmptyWho { rule: number });
        }
        if rule.actions.is_empty() {
            return Err(AccessRuleError::NoActions { rule: number });
        }
        if rule.topics.is_empty() {
            return Err(AccessRuleError::NoTopics { rule: number });
        }
        let topics = rule
            .topics
            .iter()
            .map(|t| RulePattern::parse(number, t))
            .collect::<Result<_, _>>()?;
        Ok(CompiledRule {
            number,
            name: rule.name,
            effect: rule.effect,
            who: rule.who,
            actions: rule.actions,
            topics,
        })
    }

    /// Whether the rule speaks of `action` for `caller`.
    pub(crate) fn applies(&self, caller: &Caller, action: Action) -> bool {
        self.actions.contains(&action) && self.who.matches(caller)
    }
}
