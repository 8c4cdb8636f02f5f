#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use super::*;
use crate::server::Identity;

fn pat(s: &str) -> TopicPattern {
    TopicPattern::new(s).unwrap()
}

fn user(subject: &str) -> Caller {
    Caller::authenticated(Arc::new(Identity::named(subject)))
}

fn with_scopes(subject: &str, scopes: &[&str]) -> Caller {
    let identity = Identity::named(subject).with_scopes(scopes.iter().copied());
    Caller::authenticated(Arc::new(identity))
}

fn inbox_rules() -> AccessRules {
    AccessRules::new([
        AccessRule::allow(Who::scopes(["inbox"]))
            .actions([Action::Subscribe])
            .topics(["agents/{agent_id}/inbox"]),
        AccessRule::allow(Who::authenticated())
            .actions([Action::Subscribe, Action::Publish])
            .topics(["build/#"]),
        AccessRule::deny(Who::subjects(["mallory"]))
            .named("no mallory")
            .actions([Action::Subscribe])
            .topics(["build/secret"]),
    ])
    .unwrap()
}

#[test]
fn no_rules_allow_everything() {
    let rules = AccessRules::default();
    assert!(rules.is_empty());
    let anyone = Caller::anonymous();
    assert!(rules.check_subscribe(&anyone, &pat("#")).is_ok());
    assert!(rules.check_publish(&anyone, "a/b").is_ok());
    assert!(rules.check_webhook(&anyone, &pat("a/+")).is_ok());
    assert_eq!(rules.reach(&anyone, &pat("#")), Reach::All);
}

#[test]
fn placeholders_bind_to_the_caller_and_wildcards_need_a_whole_grant() {
    let rules = inbox_rules();
    let alice = with_scopes("alice", &["inbox"]);
    assert!(
        rules
            .check_subscribe(&alice, &pat("agents/alice/inbox"))
            .is_ok()
    );
    let denied = rules
        .check_subscribe(&alice, &pat("agents/bob/inbox"))
        .unwrap_err();
    assert_eq!(
        denied.to_string(),
        "not allowed to subscribe to agents/bob/inbox"
    );
    assert!(
        rules
            .check_subscribe(&alice, &pat("agents/+/inbox"))
            .is_err()
    );
    assert!(rules.check_subscribe(&alice, &pat("agents/#")).is_err());
    // Without the scope the inbox rule does not apply; build/# still does.
    let plain = user("alice");
    assert!(
        rules
            .check_subscribe(&plain, &pat("agents/alice/inbox"))
            .is_err()
    );
    assert!(rules.check_subscribe(&plain, &pat("build/+")).is_ok());
    assert!(
        rules
            .check_publish(&plain, "build/x/y/z/1/2/3/4/5/6")
            .is_ok()
    );
    assert!(rules.check_publish(&plain, "agents/alice/inbox").is_err());
    // Anonymous callers are granted nothing here.
    assert!(
        rules
            .check_subscribe(&Caller::anonymous(), &pat("build/x"))
            .is_err()
    );
}

#[test]
fn deny_wins_and_blocks_every_overlapping_pattern() {
    let rules = inbox_rules();
    let mallory = user("mallory");
    assert!(rules.check_subscribe(&mallory, &pat("build/web")).is_ok());
    assert!(
        rules
            .check_subscribe(&mallory, &pat("build/secret"))
            .is_err()
    );
    assert!(rules.check_subscribe(&mallory, &pat("build/+")).is_err());
    assert!(rules.check_subscribe(&mallory, &pat("build/#")).is_err());
    assert!(
        rules.check_publish(&mallory, "build/secret").is_ok(),
        "subscribe only"
    );
}

#[test]
fn a_value_that_would_widen_a_pattern_fills_nothing() {
    let rules = AccessRules::new([
        AccessRule::allow(Who::anyone())
            .actions([Action::Subscribe])
            .topics(["agents/{agent_id}/#", "clients/{client_id}"]),
        AccessRule::deny(Who::anyone())
            .actions([Action::Subscribe])
            .topics(["private/{subject}"]),
    ])
    .unwrap();
    for bad in ["+", "#", "a/b", "", "x+y"] {
        let caller = user("u").with_agent_id(bad);
        assert!(
            rules
                .check_subscribe(&caller, &pat("agents/+/inbox"))
                .is_err(),
            "{bad:?}"
        );
        assert!(
            rules.check_subscribe(&caller, &pat("agents/#")).is_err(),
            "{bad:?}"
        );
    }
    let ok = user("u");
    assert!(rules.check_subscribe(&ok, &pat("agents/u/x")).is_ok());
    // No client id: the rule grants nothing.
    assert!(rules.check_subscribe(&ok, &pat("clients/u")).is_err());
    // An anonymous caller has no subject: the deny covers `private/+` for it.
    let anonymous = Caller::anonymous().with_agent_id("me");
    assert!(
        rules
            .check_subscribe(&anonymous, &pat("agents/me/x"))
            .is_ok()
    );
    assert!(
        rules
            .check_subscribe(&anonymous, &pat("private/+"))
            .is_err()
    );
    assert!(
        rules
            .check_subscribe(&anonymous, &pat("private/u"))
            .is_err()
    );
    assert!(
        rules.check_subscribe(&ok, &pat("private/v")).is_err(),
        "no grant"
    );
}

#[test]
fn who_matches_any_criterion() {
    let mut identity = Identity::named("svc").with_scopes(["a", "b"]);
    identity.client_id = Some("ci".into());
    let svc = Caller::authenticated(Arc::new(identity));
    assert!(Who::scopes(["a", "b"]).matches(&svc));
    assert!(!Who::scopes(["a", "c"]).matches(&svc));
    assert!(Who::client_ids(["ci"]).matches(&svc));
    assert!(Who::subjects(["svc"]).matches(&svc));
    assert!(!Who::anonymous().matches(&svc));
    assert!(Who::anonymous().matches(&Caller::anonymous()));
    assert!(!Who::authenticated().matches(&Caller::anonymous()));
    let mixed = Who {
        subjects: vec!["nobody".into()],
        anonymous: true,
        ..Who::default()
    };
    assert!(mixed.matches(&Caller::anonymous()) && !mixed.matches(&svc));
}

#[test]
fn webhooks_need_both_grants() {
    let rules = AccessRules::new([
        AccessRule::allow(Who::anyone())
            .actions([Action::Subscribe])
            .topics(["a/#"]),
        AccessRule::allow(Who::anyone())
            .actions([Action::Webhook])
            .topics(["a/hooks/+", "b/#"]),
    ])
    .unwrap();
    let c = Caller::anonymous();
    assert!(rules.check_webhook(&c, &pat("a/hooks/x")).is_ok());
    let e = rules.check_webhook(&c, &pat("a/other")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "not allowed to register a webhook for a/other"
    );
    let e = rules.check_webhook(&c, &pat("b/x")).unwrap_err();
    assert_eq!(e.action, Action::Subscribe);
}

#[test]
fn a_privileged_caller_is_bound_by_deny_rules_only() {
    let rules = AccessRules::new([AccessRule::deny(Who::subjects(["publish-token"]))
        .actions([Action::Publish])
        .topics(["admin/#"])])
    .unwrap();
    let token = user("publish-token").privileged();
    assert!(rules.check_publish(&token, "build/x").is_ok());
    assert!(rules.check_publish(&token, "admin/x").is_err());
    assert!(rules.check_publish(&user("x"), "build/x").is_err());
}

#[test]
fn reach_tells_all_part_and_nothing() {
    let rules = inbox_rules();
    let alice = with_scopes("alice", &["inbox"]);
    let reach = |p: &str| rules.reach(&alice, &pat(p));
    assert_eq!(reach("agents/alice/inbox"), Reach::All);
    assert_eq!(reach("agents/+/inbox"), Reach::Part);
    assert_eq!(reach("alerts/+"), Reach::Nothing);
    let mallory = user("mallory");
    assert_eq!(rules.reach(&mallory, &pat("build/+")), Reach::Part);
    assert_eq!(rules.reach(&mallory, &pat("build/secret")), Reach::Nothing);
    assert!(rules.may_read(&mallory, "build/web"));
    assert!(!rules.may_read(&mallory, "build/secret"));
}

#[test]
fn invalid_rules_are_refused_with_their_number() {
    let ok = || {
        AccessRule::allow(Who::anyone())
            .actions([Action::Subscribe])
            .topics(["a"])
    };
    let err = |rule: AccessRule| AccessRules::new([ok(), rule]).unwrap_err().to_string();
    assert!(err(AccessRule::allow(Who::default())).starts_with("rule 2: `who` is empty"));
    assert!(err(AccessRule::allow(Who::anyone()).topics(["a"])).contains("no actions"));
    let no_topics = AccessRule::allow(Who::anyone()).actions([Action::Publish]);
    assert_eq!(err(no_topics), "rule 2: no topics");
    let bad = ok().topics(["a/#/b"]);
    assert!(
        err(bad).contains("\"a/#/b\": the '#' wildcard"),
        "{}",
        err(ok().topics(["a/#/b"]))
    );
    let unknown = ok().topics(["t/{tenant}"]);
    assert!(err(unknown).contains("unknown placeholder {tenant}"));
    let partial = ok().topics(["t/x{agent_id}"]);
    assert!(err(partial).contains("placeholder must be a whole segment"));
    assert_eq!(
        "publsh".parse::<Action>().unwrap_err().to_string(),
        "unknown action \"publsh\": expected subscribe, publish or webhook"
    );
}

#[test]
fn rules_read_from_a_configuration() {
    let rules: Vec<AccessRule> = serde_json::from_value(serde_json::json!([
        {
            "who": {"scopes": ["events:read"]},
            "actions": ["subscribe", "webhook"],
            "topics": ["agents/{agent_id}/inbox"]
        },
        {
            "name": "read-only guests",
            "effect": "deny",
            "who": {"anonymous": true},
            "actions": ["publish"],
            "topics": ["#"]
        }
    ]))
    .unwrap();
    assert_eq!(rules[0].effect, Effect::Allow);
    assert_eq!(rules[1].who, Who::anonymous());
    assert_eq!(AccessRules::new(rules).unwrap().len(), 2);
    let bad = serde_json::json!([{"who": {"anyone": true}, "actions": ["read"], "topics": ["#"]}]);
    let message = serde_json::from_value::<Vec<AccessRule>>(bad)
        .unwrap_err()
        .to_string();
    assert!(message.contains("unknown variant `read`"), "{message}");
}

/// Every string of 1..=max segments drawn from `alphabet`, joined with `/`.
fn joined(alphabet: &[&str], max: usize) -> Vec<String> {
    let mut level: Vec<String> = alphabet.iter().map(|s| s.to_string()).collect();
    let mut all = level.clone();
    for _ in 1..max {
        level = level
            .iter()
            .flat_map(|p| alphabet.iter().map(move |s| format!("{p}/{s}")))
            .collect();
        all.extend(level.iter().cloned());
    }
    all
}

#[test]
fn meet_matches_exactly_the_topics_both_patterns_match() {
    let topics = joined(&["a", "b", "", "c"], 4);
    let pats: Vec<TopicPattern> = joined(&["a", "", "+", "#"], 3)
        .iter()
        .filter_map(|s| TopicPattern::new(s).ok())
        .collect();
    for a in &pats {
        for b in &pats {
            let both: Vec<&String> = topics
                .iter()
                .filter(|t| a.matches(t) && b.matches(t))
                .collect();
            match meet(a, b) {
                None => assert!(both.is_empty(), "{a} {b}"),
                Some(m) => {
                    let by_meet: Vec<&String> = topics.iter().filter(|t| m.matches(t)).collect();
                    assert_eq!(by_meet, both, "{a} meet {b} = {m}");
                }
            }
        }
    }
}
