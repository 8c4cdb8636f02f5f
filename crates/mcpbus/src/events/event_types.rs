//! Declared topics as SEP-3415 event types (docs/protocol.md 3.2): their descriptors in
//! `events/list`, a subscription's `(name, arguments)` resolved to a topic pattern, and the
//! occurrences a subscriber receives.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use mcpbus_proto::events_ext::{DeliveryMode, EventDescriptor, EventOccurrence};
use mcpbus_proto::jsonrpc::ErrorObject;
use mcpbus_proto::topic::TopicPattern;
use serde_json::{Map, Value, json};

use super::access::{Caller, Reach};
use super::delivery::LoggedEvent;
use super::log::RetainedValue;
use super::retained::parse_expires_at;
use super::topics::{AuthorizationRequest, DeclaredTopic, DeclaredTopics, Principal};

/// The placeholders bound to the caller's identity (docs/protocol.md 2.5).
const SCOPED: [&str; 2] = ["session_id", "agent_id"];

/// A subscription's arguments besides the placeholders (docs/protocol.md 3.2).
const ARG_TOPIC: &str = "topic";
const ARG_RETAINED: &str = "retained";

/// A SEP-3415 subscription resolved against the declared topics.
#[derive(Debug, Clone)]
pub(crate) struct EventSubscription {
    /// The event type's name, as occurrences carry it.
    pub(crate) name: Arc<str>,
    /// The topics the subscription receives.
    pub(crate) pattern: TopicPattern,
    /// Whether a subscription from now starts with the retained values.
    pub(crate) retained: bool,
}

impl EventSubscription {
    /// Whether a logged event belongs to this subscription (its topic matches, it has not
    /// expired, and it is not a server notice).
    pub(crate) fn wants(&self, event: &LoggedEvent, now: DateTime<Utc>) -> bool {
        &*event.topic != super::hub::NOTICE_TOPIC
            && self.pattern.matches(&event.topic)
            && !expired(&event.params, now)
    }
}

/// Whether serialized event params carry an `expiresAt` that has passed (docs/protocol.md 2.4).
fn expired(params: &[u8], now: DateTime<Utc>) -> bool {
    #[derive(serde::Deserialize)]
    struct Expiry {
        #[serde(rename = "expiresAt")]
        expires_at: Option<String>,
    }
    serde_json::from_slice::<Expiry>(params)
        .ok()
        .and_then(|e| e.expires_at)
        .and_then(|at| parse_expires_at(&at).ok())
        .is_some_and(|at| at <= now)
}

impl DeclaredTopic {
    /// The event type's name: the configured one, else the declared pattern verbatim.
    pub(crate) fn event_name(&self) -> &str {
        self.spec
            .event_name
            .as_deref()
            .unwrap_or(self.pattern.as_str())
    }

    /// The delivery modes served for this topic: the declared ones among poll, push and
    /// webhook, by default poll and push (the server builder adds webhook when it delivers
    /// webhooks, and removes it when it does not).
    pub(crate) fn modes(&self) -> Vec<DeliveryMode> {
        match &self.spec.delivery {
            None => vec![DeliveryMode::Poll, DeliveryMode::Push],
            Some(modes) => modes
                .iter()
                .filter(|m| {
                    matches!(
                        m,
                        DeliveryMode::Poll | DeliveryMode::Push | DeliveryMode::Webhook
                    )
                })
                .cloned()
                .collect(),
        }
    }

    /// The `events/list` descriptor.
    fn event_descriptor(&self) -> EventDescriptor {
        let declared = self.spec.descriptor();
        let mut meta = Map::new();
        meta.insert("mcpbus/pattern".into(), json!(declared.pattern));
        meta.insert("mcpbus/kind".into(), json!(declared.kind));
        if let Some(handle) = declared.suggested_handle {
            meta.insert("mcpbus/suggestedHandle".into(), json!(handle));
        }
        EventDescriptor {
            name: self.event_name().to_owned(),
            description: declared.description.clone(),
            delivery: self.modes(),
            input_schema: self.input_schema(),
            payload_schema: payload_schema(declared.schema.clone()),
            meta: Some(meta),
        }
    }

    /// The schema of a subscription's `arguments` (docs/protocol.md 3.2).
    fn input_schema(&self) -> Map<String, Value> {
        let pattern = self.pattern.as_str();
        let mut properties = Map::new();
        properties.insert(
            ARG_TOPIC.into(),
            json!({"type": "string", "description": format!(
                "A topic or pattern within {pattern} ('+' one segment, '#' the rest); \
                 default: every topic of the event type")}),
        );
        for name in self.pattern.placeholders() {
            let description = if SCOPED.contains(&name) {
                format!("The {{{name}}} segment: the caller's own id (bound by the server)")
            } else {
                format!("The {{{name}}} segment (default: any)")
            };
            properties.insert(
                name.into(),
                json!({"type": "string", "description": description}),
            );
        }
        properties.insert(
            ARG_RETAINED.into(),
            json!({"type": "boolean", "default": true, "description":
                "Whether a subscription from now (cursor null) starts with the current \
                 retained values of its topics"}),
        );
        let schema =
            json!({"type": "object", "properties": properties, "additionalProperties": false});
        schema.as_object().cloned().unwrap_or_default()
    }

    /// Whether subscribing needs a principal: a scoped placeholder or an authorizer.
    fn needs_principal(&self) -> bool {
        self.spec.has_authorizer() || self.pattern.placeholders().any(|p| SCOPED.contains(&p))
    }
}

/// The schema of an occurrence's `data`: the event as `events/emit` carries it, without its id.
fn payload_schema(payload: Option<Value>) -> Map<String, Value> {
    let schema = json!({
        "type": "object",
        "properties": {
            "topic": {"type": "string"},
            "payload": payload.unwrap_or_else(|| json!({})),
            "priority": {"type": "string", "enum": ["urgent", "high", "normal", "low"]},
            "source": {"type": "string"},
            "retained": {"type": "boolean"},
            "expiresAt": {"type": "string", "format": "date-time"}
        },
        "required": ["topic", "payload"]
    });
    schema.as_object().cloned().unwrap_or_default()
}

impl DeclaredTopics {
    /// The event types, in declaration order; a name declared twice is listed (and served) as
    /// its first declaration, and a topic with no delivery mode left is not listed.
    pub(crate) fn event_types(&self) -> Vec<EventDescriptor> {
        let mut seen = HashSet::new();
        self.iter()
            .filter(|t| seen.insert(t.event_name()) && !t.modes().is_empty())
            .map(DeclaredTopic::event_descriptor)
            .collect()
    }

    fn event_type(&self, name: &str) -> Option<&DeclaredTopic> {
        self.iter().find(|t| t.event_name() == name)
    }

    /// Resolves a SEP-3415 subscription (docs/protocol.md 3.2): the event type must exist
    /// (NotFound) and offer `mode` (Unsupported), the arguments must fit its input schema
    /// (InvalidParams), and the caller must be allowed every declared topic the subscription
    /// overlaps, and granted it by the topic permissions, `webhook` too for a webhook
    /// (Forbidden). Without a principal (a request without credentials), a scoped or authorized
    /// topic is Forbidden.
    pub(crate) fn subscribe_event(
        &self,
        name: &str,
        arguments: Option<&Map<String, Value>>,
        mode: DeliveryMode,
        principal: Option<&Principal>,
    ) -> Result<EventSubscription, ErrorObject> {
        let declared = self
            .event_type(name)
            .filter(|t| !t.modes().is_empty())
            .ok_or_else(|| ErrorObject::event_not_found(name))?;
        if !declared.modes().contains(&mode) {
            return Err(ErrorObject::unsupported("deliveryMode", mode.as_str()));
        }
        let args = Arguments::read(declared, arguments)?;
        let pattern = match &args.topic {
            Some(topic) => self.within(declared, topic, &args.placeholders)?,
            None => bind(declared, &args.placeholders, principal)?,
        };
        self.authorize(&pattern, principal)?;
        let caller = Caller::of(principal);
        let granted = match mode {
            DeliveryMode::Webhook => self.access().check_webhook(&caller, &pattern),
            _ => self.access().check_subscribe(&caller, &pattern),
        };
        granted.map_err(|denied| ErrorObject::forbidden(denied.to_string()))?;
        Ok(EventSubscription {
            name: declared.event_name().into(),
            pattern,
            retained: args.retained,
        })
    }

    /// Resolves a bare topic pattern (the tool bridge's): it must overlap a declared topic
    /// (NotFound otherwise), every declared topic it overlaps must allow the caller, and the
    /// topic permissions must grant it (Forbidden). A declared pattern with placeholders given
    /// verbatim (`agents/{agent_id}/inbox`) is bound as a subscription without arguments is:
    /// the caller's own id, or `+`.
    pub(crate) fn subscribe_pattern(
        &self,
        pattern: TopicPattern,
        principal: Option<&Principal>,
    ) -> Result<EventSubscription, ErrorObject> {
        let verbatim = self.iter().find(|t| t.pattern.as_str() == pattern.as_str());
        let pattern = match verbatim {
            Some(declared) => bind(declared, &BTreeMap::new(), principal)?,
            None => pattern,
        };
        let declared = self
            .iter()
            .find(|t| t.pattern.overlaps(&pattern))
            .ok_or_else(|| ErrorObject::event_not_found(pattern.as_str()))?;
        self.authorize(&pattern, principal)?;
        self.access()
            .check_subscribe(&Caller::of(principal), &pattern)
            .map_err(|denied| ErrorObject::forbidden(denied.to_string()))?;
        Ok(EventSubscription {
            name: declared.event_name().into(),
            pattern,
            retained: false,
        })
    }

    /// The declared topics as the bridges list them to the caller. With topic permissions, a
    /// topic is left out when the caller may subscribe to none of it (its placeholders bound
    /// as a subscription without arguments binds them), and marked `"access": "partial"` when
    /// only to some of it.
    pub(crate) fn listing(&self, principal: Option<&Principal>) -> Vec<Value> {
        let caller = Caller::of(principal);
        self.iter()
            .filter_map(|declared| {
                let mut listed = serde_json::to_value(declared.spec.descriptor()).ok()?;
                if self.access().is_empty() {
                    return Some(listed);
                }
                let pattern = bind(declared, &BTreeMap::new(), principal).ok()?;
                match self.access().reach(&caller, &pattern) {
                    Reach::All => {}
                    Reach::Part => {
                        listed
                            .as_object_mut()?
                            .insert("access".into(), json!("partial"));
                    }
                    Reach::Nothing => return None,
                }
                Some(listed)
            })
            .collect()
    }

    /// Checks a `topic` argument against its event type and the placeholder arguments.
    fn within(
        &self,
        declared: &DeclaredTopic,
        topic: &str,
        placeholders: &BTreeMap<String, String>,
    ) -> Result<TopicPattern, ErrorObject> {
        let pattern = TopicPattern::new(topic)
            .map_err(|e| ErrorObject::invalid_params(format_args!("topic {topic:?}: {e}")))?;
        if !declared.pattern.contains(&pattern) {
            if !self.iter().any(|t| t.pattern.overlaps(&pattern)) {
                return Err(ErrorObject::event_not_found(topic));
            }
            return Err(ErrorObject::invalid_params(format_args!(
                "topic {topic:?} does not lie within event type {:?} ({})",
                declared.event_name(),
                declared.pattern.as_str()
            )));
        }
        let bound = declared.pattern.bind(&pattern).unwrap_or_default();
        for (name, value) in placeholders {
            if bound.get(name) != Some(value) {
                return Err(ErrorObject::invalid_params(format_args!(
                    "argument {name:?} = {value:?} disagrees with topic {topic:?}"
                )));
            }
        }
        Ok(pattern)
    }

    /// Checks the caller against every declared topic the pattern overlaps (docs/protocol.md
    /// 2.5: each must allow it).
    pub(crate) fn authorize(
        &self,
        pattern: &TopicPattern,
        principal: Option<&Principal>,
    ) -> Result<(), ErrorObject> {
        for declared in self.iter() {
            let Some(params) = declared.pattern.bind(pattern) else {
                continue;
            };
            if !declared.needs_principal() {
                continue;
            }
            let Some(principal) = principal else {
                return Err(ErrorObject::forbidden(format!(
                    "{} is scoped to its subscriber, and this request has no authenticated \
                     principal (docs/protocol.md 3.2)",
                    declared.pattern.as_str()
                )));
            };
            let request = AuthorizationRequest {
                declared: declared.pattern.as_str(),
                pattern: pattern.as_str(),
                params: &params,
            };
            if !declared.spec.allows(principal, &request) {
                return Err(ErrorObject::forbidden(format!(
                    "not allowed to subscribe to {}",
                    pattern.as_str()
                )));
            }
        }
        Ok(())
    }
}

/// The pattern of a subscription without a `topic` argument: the declared pattern, each
/// placeholder replaced by its argument, by the caller's own id for a scoped one, or by `+`.
fn bind(
    declared: &DeclaredTopic,
    placeholders: &BTreeMap<String, String>,
    principal: Option<&Principal>,
) -> Result<TopicPattern, ErrorObject> {
    let segments: Vec<String> = declared
        .pattern
        .segments()
        .map(|seg| {
            let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
                return seg.to_owned();
            };
            if let Some(value) = placeholders.get(name) {
                return value.clone();
            }
            match (name, principal) {
                // An empty session id is a principal without a session (an authenticated
                // request of the 2026-07-28 era): its `{session_id}` stays unbound, and the
                // scope check refuses it.
                ("session_id", Some(p)) if !p.session_id.is_empty() => p.session_id.to_string(),
                ("agent_id", Some(p)) => p.agent_id.to_string(),
                _ => "+".to_owned(),
            }
        })
        .collect();
    let pattern = segments.join("/");
    TopicPattern::new(&pattern)
        .map_err(|e| ErrorObject::invalid_params(format_args!("topic {pattern:?}: {e}")))
}

/// A subscription's arguments, checked against the input schema.
struct Arguments {
    topic: Option<String>,
    placeholders: BTreeMap<String, String>,
    retained: bool,
}

impl Arguments {
    fn read(
        declared: &DeclaredTopic,
        arguments: Option<&Map<String, Value>>,
    ) -> Result<Self, ErrorObject> {
        let mut args = Arguments {
            topic: None,
            placeholders: BTreeMap::new(),
            retained: true,
        };
        let placeholders: Vec<&str> = declared.pattern.placeholders().collect();
        for (key, value) in arguments.into_iter().flatten() {
            let wrong = |expected: &str| {
                ErrorObject::invalid_params(format_args!("argument {key:?} must be {expected}"))
            };
            match (key.as_str(), value) {
                (ARG_TOPIC, Value::String(topic)) => args.topic = Some(topic.clone()),
                (ARG_TOPIC, _) => return Err(wrong("a string")),
                (ARG_RETAINED, Value::Bool(b)) => args.retained = *b,
                (ARG_RETAINED, _) => return Err(wrong("a boolean")),
                (name, Value::String(segment)) if placeholders.contains(&name) => {
                    if segment.is_empty()
                        || segment.contains('/')
                        || segment == "+"
                        || segment == "#"
                    {
                        return Err(wrong("one non-empty topic segment"));
                    }
                    args.placeholders.insert(name.to_owned(), segment.clone());
                }
                (name, _) if placeholders.contains(&name) => return Err(wrong("a string")),
                (other, _) => {
                    return Err(ErrorObject::invalid_params(format_args!(
                        "unknown argument {other:?} for event type {:?}",
                        declared.event_name()
                    )));
                }
            }
        }
        Ok(args)
    }
}

/// An RFC 3339 timestamp with milliseconds, as occurrences carry it.
fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The occurrence of a logged event under event type `name` (docs/protocol.md 3.2): `data` is
/// the event as `events/emit` carries it, without its id; `None` when the stored params do
/// not read (never written by this crate).
pub(crate) fn occurrence(
    name: &str,
    event: &LoggedEvent,
    cursor: Option<&str>,
) -> Option<EventOccurrence> {
    let Ok(Value::Object(mut data)) = serde_json::from_slice::<Value>(&event.params) else {
        tracing::warn!(cursor = %event.cursor, "unreadable event in the log skipped");
        return None;
    };
    Some(build(name, &mut data, event.published_at, cursor))
}

/// The occurrence of a retained value, delivered first to a subscription from now.
pub(crate) fn retained_occurrence(
    name: &str,
    value: &RetainedValue,
    cursor: Option<&str>,
) -> Option<EventOccurrence> {
    let Ok(Value::Object(mut data)) = serde_json::to_value(&value.event) else {
        return None;
    };
    let at = value.published_at.unwrap_or_else(Utc::now);
    Some(build(name, &mut data, at, cursor))
}

fn build(
    name: &str,
    data: &mut Map<String, Value>,
    at: DateTime<Utc>,
    cursor: Option<&str>,
) -> EventOccurrence {
    let event_id = match data.remove("eventId") {
        Some(Value::String(id)) => id,
        _ => String::new(),
    };
    data.remove("_meta");
    EventOccurrence {
        event_id,
        name: name.to_owned(),
        timestamp: timestamp(at),
        data: Value::Object(std::mem::take(data)),
        cursor: cursor.map(|c| Some(c.to_owned())),
        meta: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::events::TopicSpec;
    use mcpbus_proto::error_codes;

    fn declared() -> DeclaredTopics {
        DeclaredTopics::new(
            vec![
                TopicSpec::content("agents/#"),
                TopicSpec::signal("agents/{agent_id}/inbox"),
                TopicSpec::content("build/{project}/status").event_name("build.status"),
                TopicSpec::content("open/+").authorize(|_, _| Ok(true)),
            ],
            Default::default(),
        )
        .unwrap()
    }

    fn me() -> Principal {
        Principal {
            session_id: "s1".into(),
            agent_id: "me".into(),
            identity: None,
        }
    }

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn placeholders_are_bound_from_arguments_or_left_open() {
        let t = declared();
        let sub = t
            .subscribe_event("build.status", None, DeliveryMode::Poll, None)
            .unwrap();
        assert_eq!(sub.pattern.as_str(), "build/+/status");
        assert!(sub.retained);
        let a = args(json!({"project": "web", "retained": false}));
        let sub = t
            .subscribe_event("build.status", Some(&a), DeliveryMode::Push, None)
            .unwrap();
        assert_eq!(sub.pattern.as_str(), "build/web/status");
        assert!(!sub.retained);
        let a = args(json!({"topic": "build/web/status", "project": "api"}));
        let e = t
            .subscribe_event("build.status", Some(&a), DeliveryMode::Poll, None)
            .unwrap_err();
        assert_eq!(e.code, error_codes::INVALID_PARAMS, "{e}");
        let a = args(json!({"project": "a/b"}));
        assert!(
            t.subscribe_event("build.status", Some(&a), DeliveryMode::Poll, None)
                .is_err()
        );
    }

    #[test]
    fn scoped_topics_need_a_principal_even_through_a_broader_type() {
        let t = declared();
        let e = t
            .subscribe_event("agents/#", None, DeliveryMode::Poll, None)
            .unwrap_err();
        assert_eq!(e.code, error_codes::FORBIDDEN, "overlaps the scoped inbox");
        let a = args(json!({"topic": "agents/me/inbox"}));
        let sub = t
            .subscribe_event("agents/#", Some(&a), DeliveryMode::Poll, Some(&me()))
            .unwrap();
        assert_eq!(sub.pattern.as_str(), "agents/me/inbox");
        // A session subscribes to its own inbox by default, and never to another's.
        let sub = t
            .subscribe_event(
                "agents/{agent_id}/inbox",
                None,
                DeliveryMode::Push,
                Some(&me()),
            )
            .unwrap();
        assert_eq!(sub.pattern.as_str(), "agents/me/inbox");
        let a = args(json!({"agent_id": "you"}));
        let e = t
            .subscribe_event(
                "agents/{agent_id}/inbox",
                Some(&a),
                DeliveryMode::Push,
                Some(&me()),
            )
            .unwrap_err();
        assert_eq!(e.code, error_codes::FORBIDDEN);
        // An authorizer needs someone to authorize.
        let e = t
            .subscribe_event("open/+", None, DeliveryMode::Poll, None)
            .unwrap_err();
        assert_eq!(e.code, error_codes::FORBIDDEN);
        assert!(
            t.subscribe_event("open/+", None, DeliveryMode::Poll, Some(&me()))
                .is_ok()
        );
    }

    #[test]
    fn names_modes_and_listing() {
        let t = declared();
        let e = t
            .subscribe_event("agents/{agent_id}/inbox", None, DeliveryMode::Webhook, None)
            .unwrap_err();
        assert_eq!(e.code, error_codes::UNSUPPORTED);
        let e = t
            .subscribe_event("build/{project}/status", None, DeliveryMode::Poll, None)
            .unwrap_err();
        assert_eq!(
            e.code,
            error_codes::NOT_FOUND,
            "the configured name replaces the pattern"
        );
        let names: Vec<String> = t.event_types().into_iter().map(|d| d.name).collect();
        assert_eq!(
            names,
            [
                "agents/#",
                "agents/{agent_id}/inbox",
                "build.status",
                "open/+"
            ]
        );
    }

    #[test]
    fn occurrences_carry_the_event_without_its_id() {
        let event = LoggedEvent {
            cursor: "4".into(),
            topic: "build/web/status".into(),
            params: bytes::Bytes::from_static(
                br#"{"topic":"build/web/status","eventId":"e1","payload":{"ok":true},"retained":false}"#,
            ),
            published_at: Utc::now(),
        };
        let o = occurrence("build.status", &event, Some("4")).unwrap();
        assert_eq!(o.event_id, "e1");
        assert_eq!(o.cursor(), Some("4"));
        assert_eq!(
            o.data,
            json!({"topic": "build/web/status", "payload": {"ok": true}, "retained": false})
        );
        let sub = EventSubscription {
            name: "x".into(),
            pattern: TopicPattern::new("build/#").unwrap(),
            retained: true,
        };
        assert!(sub.wants(&event, Utc::now()));
        let expired = LoggedEvent {
            params: bytes::Bytes::from_static(
                br#"{"topic":"build/a","eventId":"e2","expiresAt":"2000-01-01T00:00:00Z"}"#,
            ),
            ..event
        };
        assert!(!sub.wants(&expired, Utc::now()));
    }
}
