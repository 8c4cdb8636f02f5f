//! What an access token's claims must say before the server believes them, shared by JWT
//! verification and introspection (docs/auth.md): the issuer exactly, an audience this server
//! accepts (RFC 8707), a lifetime that covers now (with a small leeway for clocks), a subject;
//! and how they become an [`Identity`] (scopes from `scope` or `scp`, the client from
//! `client_id` or `azp`, the agent id from the configured claim, the kept claims).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::error::{TokenError, clip};
use crate::server::Identity;

/// What the claims are checked against.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    /// The `iss` every token must name.
    pub(crate) issuer: String,
    /// The audiences accepted: a token must name at least one in `aud`.
    pub(crate) audiences: Vec<String>,
    /// How far `exp` and `nbf` may be off.
    pub(crate) leeway: Duration,
    /// The claim the agent id comes from.
    pub(crate) agent_id_claim: String,
    /// The claims copied into [`Identity::claims`].
    pub(crate) kept_claims: Vec<String>,
}

/// Where the claims come from: a JWT must name its issuer and its expiry; an introspection
/// answer may leave them out (the endpoint is the issuer's, and said the token is active).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Jwt,
    Introspection,
}

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The identity the claims prove, `now` being seconds since the Unix epoch.
pub(crate) fn identity(
    claims: &Map<String, Value>,
    policy: &Policy,
    source: Source,
    now: u64,
) -> Result<Identity, TokenError> {
    check_issuer(claims, policy, source)?;
    check_audience(claims, policy)?;
    check_lifetime(claims, policy, source, now)?;
    let subject = non_empty_string(claims, "sub")
        .ok_or_else(|| TokenError::Claim("the token names no subject ('sub')".into()))?;
    let agent_id = agent_id(claims, &policy.agent_id_claim)?;
    let client_id =
        non_empty_string(claims, "client_id").or_else(|| non_empty_string(claims, "azp"));
    let kept = policy
        .kept_claims
        .iter()
        .filter_map(|name| Some((name.clone(), claims.get(name)?.clone())))
        .collect();
    Ok(Identity {
        subject: Arc::from(subject),
        client_id: client_id.map(Arc::from),
        scopes: scopes(claims),
        agent_id: Arc::from(agent_id),
        claims: kept,
    })
}

fn check_issuer(
    claims: &Map<String, Value>,
    policy: &Policy,
    source: Source,
) -> Result<(), TokenError> {
    match claims.get("iss") {
        None if source == Source::Introspection => Ok(()),
        Some(Value::String(iss)) if *iss == policy.issuer => Ok(()),
        Some(Value::String(iss)) => Err(TokenError::WrongIssuer { found: clip(iss) }),
        _ => Err(TokenError::WrongIssuer {
            found: String::new(),
        }),
    }
}

fn check_audience(claims: &Map<String, Value>, policy: &Policy) -> Result<(), TokenError> {
    let accepted = |aud: &Value| {
        aud.as_str()
            .is_some_and(|a| policy.audiences.iter().any(|ours| ours == a))
    };
    let ok = match claims.get("aud") {
        Some(Value::Array(auds)) => auds.iter().any(accepted),
        Some(aud) => accepted(aud),
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(TokenError::WrongAudience)
    }
}

fn check_lifetime(
    claims: &Map<String, Value>,
    policy: &Policy,
    source: Source,
    now: u64,
) -> Result<(), TokenError> {
    let leeway = policy.leeway.as_secs();
    match numeric_date(claims, "exp")? {
        Some(exp) if now > exp.saturating_add(leeway) => return Err(TokenError::Expired),
        Some(_) => {}
        None if source == Source::Jwt => {
            return Err(TokenError::Claim("the token has no expiry ('exp')".into()));
        }
        None => {}
    }
    match numeric_date(claims, "nbf")? {
        Some(nbf) if now.saturating_add(leeway) < nbf => Err(TokenError::NotYetValid),
        _ => Ok(()),
    }
}

/// A NumericDate claim (seconds; a fraction is dropped), if present.
pub(crate) fn numeric_date(
    claims: &Map<String, Value>,
    name: &str,
) -> Result<Option<u64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) => Ok(Some(v)),
            None => match n.as_f64() {
                Some(f) if f >= 0.0 => Ok(Some(f as u64)),
                _ => Err(TokenError::Claim(format!(
                    "the token's '{name}' is negative"
                ))),
            },
        },
        Some(_) => Err(TokenError::Claim(format!(
            "the token's '{name}' is not a number of seconds"
        ))),
    }
}

/// The scopes granted: `scope` (space-separated, RFC 8693 / RFC 9068), or else `scp` (a list,
/// or a space-separated string, as some authorization servers write it).
pub(crate) fn scopes(claims: &Map<String, Value>) -> BTreeSet<String> {
    let split = |s: &str| -> BTreeSet<String> { s.split_whitespace().map(str::to_owned).collect() };
    match (claims.get("scope"), claims.get("scp")) {
        (Some(Value::String(s)), _) => split(s),
        (_, Some(Value::String(s))) => split(s),
        (_, Some(Value::Array(list))) => list
            .iter()
            .filter_map(Value::as_str)
            .flat_map(str::split_whitespace)
            .map(str::to_owned)
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// The agent id: the configured claim, a string that can stand for one topic segment.
fn agent_id(claims: &Map<String, Value>, claim: &str) -> Result<String, TokenError> {
    let id = non_empty_string(claims, claim).ok_or_else(|| {
        TokenError::Claim(format!(
            "the token has no '{claim}' claim to take the agent id from"
        ))
    })?;
    if id.contains(['/', '+', '#']) || id.chars().any(char::is_control) {
        return Err(TokenError::Claim(format!(
            "the token's '{claim}' cannot be an agent id: it must not contain '/', '+', '#' \
             or control characters"
        )));
    }
    Ok(id.to_owned())
}

fn non_empty_string<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy() -> Policy {
        Policy {
            issuer: "https://as.example".into(),
            audiences: vec!["https://mcp.example/mcp".into()],
            leeway: Duration::from_secs(30),
            agent_id_claim: "sub".into(),
            kept_claims: vec!["email".into()],
        }
    }

    fn claims(extra: Value) -> Map<String, Value> {
        let mut base = json!({"iss": "https://as.example", "aud": "https://mcp.example/mcp",
            "sub": "alice", "exp": 2_000, "scope": "a b"});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                base.as_object_mut().unwrap().remove(k);
            } else {
                base[k] = v.clone();
            }
        }
        base.as_object().unwrap().clone()
    }

    fn check(extra: Value, now: u64) -> Result<Identity, TokenError> {
        identity(&claims(extra), &policy(), Source::Jwt, now)
    }

    #[test]
    fn good_claims_make_an_identity() {
        let id = check(
            json!({"client_id": "cli", "email": "a@x", "other": 1}),
            1_000,
        )
        .unwrap();
        assert_eq!((&*id.subject, &*id.agent_id), ("alice", "alice"));
        assert_eq!(id.client_id.as_deref(), Some("cli"));
        assert!(id.has_scope("a") && id.has_scope("b"));
        assert_eq!(Value::Object(id.claims), json!({"email": "a@x"}));
        let azp = check(json!({"azp": "web"}), 1_000).unwrap();
        assert_eq!(azp.client_id.as_deref(), Some("web"));
    }

    #[test]
    fn issuer_and_audience_must_be_ours() {
        let wrong = check(json!({"iss": "https://as.example/"}), 1_000).unwrap_err();
        assert!(matches!(wrong, TokenError::WrongIssuer { .. }), "{wrong}");
        assert!(matches!(
            check(json!({"iss": null}), 1_000),
            Err(TokenError::WrongIssuer { .. })
        ));
        for aud in [
            json!("https://mcp.example"),
            json!([]),
            json!(null),
            json!(7),
        ] {
            assert_eq!(
                check(json!({"aud": aud}), 1_000).unwrap_err(),
                TokenError::WrongAudience
            );
        }
        let list = json!({"aud": ["other", "https://mcp.example/mcp"]});
        assert!(check(list, 1_000).is_ok());
    }

    #[test]
    fn lifetimes_have_a_small_leeway() {
        assert!(check(json!({}), 2_030).is_ok());
        assert_eq!(check(json!({}), 2_031).unwrap_err(), TokenError::Expired);
        assert!(check(json!({"nbf": 1_030}), 1_000).is_ok());
        assert_eq!(
            check(json!({"nbf": 1_031}), 1_000).unwrap_err(),
            TokenError::NotYetValid
        );
        assert!(matches!(
            check(json!({"exp": null}), 1_000),
            Err(TokenError::Claim(_))
        ));
        assert!(matches!(
            check(json!({"exp": "soon"}), 1_000),
            Err(TokenError::Claim(_))
        ));
        assert!(check(json!({"exp": 1_500.5}), 1_000).is_ok());
        // An introspection answer may leave out the issuer and the expiry.
        let bare = claims(json!({"iss": null, "exp": null}));
        assert!(identity(&bare, &policy(), Source::Introspection, 1_000).is_ok());
    }

    #[test]
    fn scopes_come_from_scope_or_scp() {
        let s = |v: Value| scopes(v.as_object().unwrap());
        assert_eq!(
            s(json!({"scope": " a  b "})),
            BTreeSet::from(["a".into(), "b".into()])
        );
        assert_eq!(s(json!({"scp": ["a", "b c"]})).len(), 3);
        assert_eq!(s(json!({"scp": "x y"})).len(), 2);
        assert_eq!(
            s(json!({"scope": "a", "scp": ["b"]})),
            BTreeSet::from(["a".into()])
        );
        assert!(s(json!({"scope": 3})).is_empty());
    }

    #[test]
    fn the_agent_id_comes_from_the_configured_claim() {
        let mut p = policy();
        p.agent_id_claim = "agent".into();
        let c = claims(json!({"agent": "builder-1"}));
        let id = identity(&c, &p, Source::Jwt, 1_000).unwrap();
        assert_eq!((&*id.subject, &*id.agent_id), ("alice", "builder-1"));
        let missing = identity(&claims(json!({})), &p, Source::Jwt, 1_000).unwrap_err();
        assert!(missing.to_string().contains("'agent'"), "{missing}");
        let slash = identity(&claims(json!({"agent": "a/b"})), &p, Source::Jwt, 1_000);
        assert!(matches!(slash, Err(TokenError::Claim(_))));
        assert!(matches!(
            check(json!({"sub": ""}), 1_000),
            Err(TokenError::Claim(_))
        ));
    }
}
