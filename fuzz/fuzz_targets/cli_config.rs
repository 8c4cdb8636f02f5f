//! The TOML configuration of `mcpbus serve` (crates/mcpbus-cli/src/config.rs).
//!
//! The CLI is a binary crate, so its config module (and the section modules it reads:
//! `modern_config`, `webhooks_config`, `priority`, `http_sections`, `access_config`,
//! `oauth_config`) is
//! compiled into this target as it is, through `#[path]` (they need only `mcpbus`,
//! `mcpbus-proto`, `serde`, `serde_json`, `toml` and `thiserror`). The input is the text of a
//! configuration file. Properties:
//! - `Config::parse` gives a config or `ConfigError::Parse`, naming the file when given one;
//! - text it accepts is valid TOML, and the same document rendered again by `toml` parses to
//!   the same config;
//! - `topic_specs` gives one spec per `[[events.topics]]` entry with the same pattern, or a
//!   `Schema` error;
//! - a server built from those specs builds exactly when every pattern is a valid declared
//!   pattern (else `BuildError::Topic` naming the first bad one), and advertises the topics in
//!   order;
//! - `[[access.rules]]` give rules, one per entry, or an error naming a rule that exists, with
//!   an empty `who`, no actions, no topics, or a pattern that is bad or has an unknown
//!   placeholder (`access_config`).
#![no_main]

#[allow(dead_code)] // Only the parsing side is exercised here.
#[path = "../../crates/mcpbus-cli/src/config.rs"]
mod config;
// The sections config.rs reads through modules of their own.
#[allow(dead_code)]
#[path = "../../crates/mcpbus-cli/src/modern_config.rs"]
mod modern_config;
#[allow(dead_code)]
#[path = "../../crates/mcpbus-cli/src/priority.rs"]
mod priority;
#[allow(dead_code)]
#[path = "../../crates/mcpbus-cli/src/webhooks_config.rs"]
mod webhooks_config;
#[allow(dead_code)]
#[path = "../../crates/mcpbus-cli/src/http_sections.rs"]
mod http_sections;
#[allow(dead_code)]
#[path = "../../crates/mcpbus-cli/src/access_config.rs"]
mod access_config;
#[allow(dead_code)]
#[path = "../../crates/mcpbus-cli/src/oauth_config.rs"]
mod oauth_config;

use std::path::Path;

use config::{Config, ConfigError};
use libfuzzer_sys::fuzz_target;
use mcpbus::server::{BuildError, Server};
use mcpbus_proto::topic::DeclaredPattern;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = Config::parse(text, None);
    let named = Config::parse(text, Some(Path::new("fuzz.toml")));
    let config = match (parsed, named) {
        (Ok(config), Ok(_)) => config,
        (Err(ConfigError::Parse { origin, .. }), Err(ConfigError::Parse { origin: o2, .. })) => {
            assert_eq!((origin.as_str(), o2.as_str()), ("", " in fuzz.toml"));
            return;
        }
        (a, b) => panic!("parse gave {a:?} and {b:?}"),
    };
    reparse(text, &config);
    check_topics(&config);
    check_access(&config);
});

/// The document rendered again by `toml` gives the same configuration.
fn reparse(text: &str, config: &Config) {
    let table: toml::Table = toml::from_str(text).expect("a parsed config is valid TOML");
    let Ok(rendered) = toml::to_string(&table) else {
        return;
    };
    let again = Config::parse(&rendered, None)
        .unwrap_or_else(|e| panic!("re-rendered config {rendered:?} is refused: {e}"));
    assert_eq!(format!("{again:?}"), format!("{config:?}"), "{rendered}");
}

/// The rules build, one per entry, or the error names one of them and says what is wrong.
fn check_access(config: &Config) {
    use mcpbus::events::access::AccessRuleError as E;
    let entries = &config.access.rules;
    let rule = match config.access.to_rules() {
        Ok(rules) => {
            assert_eq!(rules.len(), entries.len());
            return;
        }
        Err(access_config::AccessConfigError(e)) => match e {
            E::EmptyWho { rule } => {
                assert!(entries[rule - 1].who.is_empty());
                rule
            }
            E::NoActions { rule } => {
                assert!(entries[rule - 1].actions.is_empty());
                rule
            }
            E::NoTopics { rule } => {
                assert!(entries[rule - 1].topics.is_empty());
                rule
            }
            E::BadPattern { rule, pattern, .. } | E::UnknownPlaceholder { rule, pattern, .. } => {
                assert!(entries[rule - 1].topics.contains(&pattern));
                rule
            }
            other => panic!("[[access.rules]]: {other:?}"),
        },
    };
    // Every earlier rule was fine.
    let earlier = entries[..rule - 1].iter().cloned();
    assert!(mcpbus::events::access::AccessRules::new(earlier).is_ok());
}

fn check_topics(config: &Config) {
    let specs = match config.topic_specs() {
        Ok(specs) => specs,
        Err(ConfigError::Schema { .. }) => return,
        Err(e) => panic!("topic_specs: {e:?}"),
    };
    assert_eq!(specs.len(), config.events.topics.len());
    for (spec, topic) in specs.iter().zip(&config.events.topics) {
        assert_eq!(spec.descriptor().pattern, topic.pattern);
        assert_eq!(spec.descriptor().kind, topic.kind);
    }
    let first_bad = config
        .events
        .topics
        .iter()
        .find(|t| DeclaredPattern::new(&t.pattern).is_err());
    let descriptors: Vec<_> = specs.iter().map(|s| s.descriptor().clone()).collect();
    let mut builder = Server::builder(&config.server.name, "0");
    for spec in specs {
        builder = builder.topic(spec);
    }
    match (builder.build(), first_bad) {
        (Ok(server), None) => assert_eq!(server.events().descriptors(), descriptors),
        (Err(BuildError::Topic { pattern, source }), Some(bad)) => {
            assert_eq!(pattern, bad.pattern);
            assert_eq!(Err(source), DeclaredPattern::new(&bad.pattern));
        }
        (got, bad) => panic!("build: {:?}, first invalid pattern {bad:?}", got.err()),
    }
}
