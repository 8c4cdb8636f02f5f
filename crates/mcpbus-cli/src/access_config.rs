//! `[[access.rules]]`: the topic permissions of `mcpbus serve` (docs/auth.md, "Topic
//! permissions"), each rule as the library reads it:
//!
//! ```toml
//! [[access.rules]]
//! name = "own inbox"                    # optional, for the logs
//! effect = "allow"                      # or "deny"; default allow
//! who = { scopes = ["events:read"] }    # subjects, scopes, client_ids, authenticated,
//!                                       # anonymous, anyone
//! actions = ["subscribe", "webhook"]    # subscribe, publish, webhook
//! topics = ["agents/{agent_id}/inbox"]  # {agent_id}, {subject}, {client_id}, {session_id}
//! ```
//!
//! Unknown keys and actions are refused when the file is read (serde names them); an empty
//! `who`, a rule without actions or topics, a bad pattern or an unknown placeholder when the
//! server is built, naming the rule by its number.

use mcpbus::events::access::{AccessRule, AccessRuleError, AccessRules};
use serde::Deserialize;

/// `[access]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccessSection {
    /// The rules, in order (numbered from 1 in errors and logs). None: no permissions apply
    /// beyond the declared topics' own scoping.
    #[serde(default)]
    pub rules: Vec<AccessRule>,
}

/// Why `[[access.rules]]` cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("[[access.rules]] {0}")]
pub(crate) struct AccessConfigError(#[from] pub AccessRuleError);

impl AccessSection {
    /// The library's rules.
    pub(crate) fn to_rules(&self) -> Result<AccessRules, AccessConfigError> {
        Ok(AccessRules::new(self.rules.iter().cloned())?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn section(text: &str) -> Result<AccessSection, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn rules_are_read_and_checked() {
        let s = section(
            r##"
            [[rules]]
            who = { scopes = ["events:read"] }
            actions = ["subscribe", "webhook"]
            topics = ["agents/{agent_id}/inbox"]

            [[rules]]
            effect = "deny"
            who = { anonymous = true }
            actions = ["publish"]
            topics = ["#"]
            "##,
        )
        .unwrap();
        assert_eq!(s.to_rules().unwrap().len(), 2);
        assert!(AccessSection::default().to_rules().unwrap().is_empty());
    }

    #[test]
    fn mistakes_are_named_precisely() {
        let rule = |body: &str| format!("[[rules]]\n{body}\n");
        let parse_error = |body: &str| section(&rule(body)).unwrap_err().to_string();
        let base = "who = { anyone = true }\ntopics = [\"a\"]";
        let unknown_action = parse_error(&format!("{base}\nactions = [\"publsh\"]"));
        assert!(
            unknown_action.contains("unknown variant `publsh`, expected one of `subscribe`"),
            "{unknown_action}"
        );
        let unknown_who = parse_error("who = { subject = [\"x\"] }\nactions = []\ntopics = []");
        assert!(
            unknown_who.contains("unknown field `subject`"),
            "{unknown_who}"
        );
        let build_error = |body: &str| {
            section(&rule(body))
                .unwrap()
                .to_rules()
                .unwrap_err()
                .to_string()
        };
        let empty_who = build_error("who = {}\nactions = [\"subscribe\"]\ntopics = [\"a\"]");
        assert!(
            empty_who.starts_with("[[access.rules]] rule 1: `who` is empty"),
            "{empty_who}"
        );
        let bad =
            build_error("who = { anyone = true }\nactions = [\"subscribe\"]\ntopics = [\"a/#/b\"]");
        assert!(bad.contains("topic pattern \"a/#/b\""), "{bad}");
        let placeholder = build_error(
            "who = { anyone = true }\nactions = [\"subscribe\"]\ntopics = [\"t/{tenant}\"]",
        );
        assert!(
            placeholder.contains("unknown placeholder {tenant}"),
            "{placeholder}"
        );
    }
}
