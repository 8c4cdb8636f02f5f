//! `mcpbus sub` against a server of MCP 2026-07-28: each topic pattern becomes a SEP-3415
//! subscription, pushed (`events/stream`) by default or polled (`--poll`), and every event is
//! printed as the same JSON line the handshake era prints, its cursor saved in the
//! `--cursor-file` once it is printed.
//!
//! A pattern is matched against the event types of `events/list` (mcpbus names each after its
//! declared topic pattern, `_meta["mcpbus/pattern"]`): a type of that very name is subscribed
//! to whole; else the first type whose pattern contains it, with the pattern as its `topic`
//! argument; else every type whose pattern lies within it, whole. A pattern none of these fits
//! is rejected (`unknown_topic`), as the handshake era's `events/subscribe` rejects it, and so is
//! a subscription the server refuses (`permission_denied` for Forbidden).

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcpbus::client::{Client, Delivery, SubscribeEvents, Subscription, SubscriptionEvent};
use mcpbus_proto::error_codes;
use mcpbus_proto::events_ext::{DeliveryMode, EventDescriptor};
use mcpbus_proto::topic::{DeclaredPattern, TopicPattern};
use serde_json::{Map, Value};

use crate::cursor_file::CursorFile;
use crate::sub::{SubError, print_json};

/// The SEP-3415 side of `sub`'s command line.
#[derive(Debug)]
pub(crate) struct Options {
    pub(crate) poll: bool,
    /// Long polls of this many seconds.
    pub(crate) long_poll: Option<u64>,
    pub(crate) cursors: Option<CursorFile>,
    /// Webhook delivery to a receiver `sub` runs, instead of push or poll.
    pub(crate) webhook: Option<crate::sub_webhook::Webhook>,
}

/// One subscription to start: an event type, its arguments, and the pattern it came from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pattern: String,
    pub(crate) name: String,
    pub(crate) arguments: Option<Map<String, Value>>,
    pub(crate) modes: Vec<DeliveryMode>,
}

impl Plan {
    /// The subscription's key in the cursor file.
    pub(crate) fn key(&self) -> String {
        match &self.arguments {
            Some(args) => format!("{} {}", self.name, Value::Object(args.clone())),
            None => self.name.clone(),
        }
    }
}

/// How many printed event ids are remembered: patterns that overlap subscribe to the same
/// events more than once, and each is printed once, as the handshake era delivers it once per
/// session.
const PRINTED_IDS: usize = 4096;

/// The event ids printed last, shared by every subscription of one `sub`.
#[derive(Debug, Default)]
pub(crate) struct Printed {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl Printed {
    /// Whether `id` is printed for the first time (and remembers it).
    fn first(&mut self, id: &str) -> bool {
        if !self.set.insert(id.to_owned()) {
            return false;
        }
        if self.order.len() == PRINTED_IDS
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.order.push_back(id.to_owned());
        true
    }
}

/// Subscribes to `patterns`, then prints events until a signal (exit 0), the connection's end
/// (`closed`), or the server ending every subscription.
pub(crate) async fn run(
    client: &Client,
    patterns: &[String],
    options: Options,
    closed: SubError,
) -> Result<(), SubError> {
    let types = match client.list_event_types().await {
        Ok(types) => types,
        Err(e) => {
            client.close().await;
            return Err(SubError::EventTypes(e));
        }
    };
    let shared = Shared {
        cursors: options.cursors.map(Arc::new),
        printed: Arc::default(),
        poll: options.poll,
        long_poll: options.long_poll,
    };
    let plans = plans(patterns, &types);
    if let Some(webhook) = options.webhook {
        return crate::sub_webhook::run(client, plans, &shared, webhook, closed).await;
    }
    let mut subscriptions = Vec::new();
    for (pattern, p) in &plans {
        match start(client, p, &shared).await {
            Ok(sub) => subscriptions.push(sub),
            Err(reason) => eprintln!("mcpbus: rejected {pattern:?}: {reason}"),
        }
    }
    if subscriptions.is_empty() {
        client.close().await;
        return Err(SubError::NothingAccepted);
    }
    wait(client, subscriptions, closed).await
}

/// The subscriptions the patterns stand for, each once, with the pattern each came from; the
/// patterns that stand for none are reported on stderr.
fn plans(patterns: &[String], types: &[EventDescriptor]) -> Vec<(String, Plan)> {
    let mut keys = HashSet::new();
    let mut all = Vec::new();
    for pattern in patterns {
        match plan(pattern, types) {
            // Two patterns standing for the same subscription make one.
            Ok(plans) => all.extend(
                plans
                    .into_iter()
                    .filter(|p| keys.insert(p.key()))
                    .map(|p| (pattern.clone(), p)),
            ),
            Err(reason) => eprintln!("mcpbus: rejected {pattern:?}: {reason}"),
        }
    }
    all
}

/// How `sub` ended.
enum End {
    Signal,
    Closed,
    AllEnded,
}

async fn wait(
    client: &Client,
    mut subscriptions: Vec<Subscription>,
    closed: SubError,
) -> Result<(), SubError> {
    let end = {
        let all_ended = async {
            for s in &mut subscriptions {
                let _ = s.finished().await;
            }
        };
        tokio::select! {
            _ = crate::http::shutdown_signal() => End::Signal,
            _ = client.closed() => End::Closed,
            _ = all_ended => End::AllEnded,
        }
    };
    // Stopped one by one: each hands over what it already read and saves its cursor.
    for s in subscriptions {
        s.stop().await;
    }
    client.close().await;
    match end {
        End::Signal => Ok(()),
        End::Closed => Err(closed),
        End::AllEnded => Err(SubError::AllEnded),
    }
}

/// What every subscription of one `sub` shares.
pub(crate) struct Shared {
    pub(crate) cursors: Option<Arc<CursorFile>>,
    pub(crate) printed: Arc<Mutex<Printed>>,
    poll: bool,
    long_poll: Option<u64>,
}

/// Starts one subscription; why not, in the words of `events/subscribe`'s rejections.
async fn start(client: &Client, plan: &Plan, shared: &Shared) -> Result<Subscription, String> {
    let key = plan.key();
    let cursors = &shared.cursors;
    let delivery = if shared.poll || !plan.modes.contains(&DeliveryMode::Push) {
        Delivery::Poll
    } else {
        Delivery::Push
    };
    let mut builder: SubscribeEvents = client
        .subscribe_events(&plan.name)
        .delivery(delivery)
        .cursor(cursors.as_ref().and_then(|c| c.get(&key)));
    if let Some(arguments) = &plan.arguments {
        builder = builder.arguments(arguments.clone());
    }
    if let Some(secs) = shared.long_poll {
        builder = builder.long_poll(Duration::from_secs(secs));
    }
    let saved = cursors.clone();
    let printed = shared.printed.clone();
    let handler = move |report: SubscriptionEvent| {
        report_to_user(&key, &report, &printed);
        if let (Some(file), Some(cursor)) = (&saved, report.cursor()) {
            file.set(&key, cursor);
        }
    };
    builder.start(handler).await.map_err(refusal)
}

/// Why the server refused a subscription, in the words of `events/subscribe`'s rejections.
pub(crate) fn refusal(e: mcpbus::Error) -> String {
    match e {
        mcpbus::Error::Remote(e) if e.code == error_codes::FORBIDDEN => {
            format!("permission_denied ({})", e.message)
        }
        mcpbus::Error::Remote(e) if e.code == error_codes::NOT_FOUND => {
            format!("unknown_topic ({})", e.message)
        }
        other => other.to_string(),
    }
}

/// Events on stdout; gaps, errors and the end on stderr.
pub(crate) fn report_to_user(key: &str, report: &SubscriptionEvent, printed: &Mutex<Printed>) {
    match report {
        SubscriptionEvent::Event(event) => {
            let first = printed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .first(&event.event_id);
            if first {
                print_json(event);
            }
        }
        SubscriptionEvent::Gap { cursor } => eprintln!(
            "mcpbus: {key}: events may have been missed: the server resumed later than the \
             cursor asked for (truncated), at {}",
            cursor.as_deref().unwrap_or("now")
        ),
        SubscriptionEvent::Error(e) => {
            eprintln!("mcpbus: {key}: the server reported an error: {e}")
        }
        SubscriptionEvent::Terminated(e) => {
            eprintln!("mcpbus: {key}: the server ended the subscription: {e}")
        }
        _ => {}
    }
}

/// The subscriptions a pattern stands for (see the module's documentation), or why none.
fn plan(pattern: &str, types: &[EventDescriptor]) -> Result<Vec<Plan>, String> {
    let whole = |t: &EventDescriptor| Plan {
        pattern: pattern.to_owned(),
        name: t.name.clone(),
        arguments: None,
        modes: t.delivery.clone(),
    };
    if let Some(t) = types.iter().find(|t| t.name == pattern) {
        return Ok(vec![whole(t)]);
    }
    let wanted = TopicPattern::new(pattern).map_err(|e| format!("invalid_pattern ({e})"))?;
    if let Some(t) = types
        .iter()
        .find(|t| declared(t).is_some_and(|d| d.contains(&wanted)))
    {
        let mut arguments = Map::new();
        arguments.insert("topic".into(), Value::String(pattern.to_owned()));
        return Ok(vec![Plan {
            arguments: Some(arguments),
            ..whole(t)
        }]);
    }
    let within: Vec<Plan> = DeclaredPattern::new(pattern)
        .map(|outer| {
            types
                .iter()
                .filter(|t| as_pattern(t).is_some_and(|p| outer.contains(&p)))
                .map(whole)
                .collect()
        })
        .unwrap_or_default();
    if within.is_empty() {
        return Err("unknown_topic (no event type of the server covers it)".into());
    }
    Ok(within)
}

/// The topic pattern an event type was declared with: `_meta["mcpbus/pattern"]`, else its name.
fn declared_text(t: &EventDescriptor) -> &str {
    t.meta
        .as_ref()
        .and_then(|m| m.get("mcpbus/pattern"))
        .and_then(Value::as_str)
        .unwrap_or(&t.name)
}

fn declared(t: &EventDescriptor) -> Option<DeclaredPattern> {
    DeclaredPattern::new(declared_text(t)).ok()
}

/// The event type's pattern as a subscription pattern, placeholders read as `+`.
fn as_pattern(t: &EventDescriptor) -> Option<TopicPattern> {
    declared(t)?;
    let text: Vec<&str> = declared_text(t)
        .split('/')
        .map(|s| if s.starts_with('{') { "+" } else { s })
        .collect();
    TopicPattern::new(&text.join("/")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn types() -> Vec<EventDescriptor> {
        let t = |name: &str, pattern: &str| {
            serde_json::from_value(json!({
                "name": name, "delivery": ["poll", "push"], "inputSchema": {}, "payloadSchema": {},
                "_meta": {"mcpbus/pattern": pattern}
            }))
            .ok()
        };
        [
            t("build/status", "build/status"),
            t("alerts/+", "alerts/+"),
            t("deploy.status", "deploy/{env}/status"),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    fn names(plans: &[Plan]) -> Vec<String> {
        plans.iter().map(Plan::key).collect()
    }

    #[test]
    fn patterns_become_whole_types_narrowed_types_or_every_type_within() {
        let types = types();
        let plan = |p: &str| plan(p, &types).map(|plans| names(&plans));
        assert_eq!(plan("alerts/+"), Ok(vec!["alerts/+".to_owned()]));
        assert_eq!(
            plan("alerts/critical"),
            Ok(vec![r#"alerts/+ {"topic":"alerts/critical"}"#.to_owned()])
        );
        assert_eq!(
            plan("deploy/prod/status"),
            Ok(vec![
                r#"deploy.status {"topic":"deploy/prod/status"}"#.to_owned()
            ])
        );
        assert_eq!(
            plan("#"),
            Ok(vec![
                "build/status".to_owned(),
                "alerts/+".to_owned(),
                "deploy.status".to_owned()
            ])
        );
        assert_eq!(
            plan("+/status"),
            Ok(vec!["build/status".to_owned()]),
            "deploy/{{env}}/status has three segments"
        );
        assert!(plan("nope/x").is_err_and(|r| r.starts_with("unknown_topic")));
        assert!(plan("a/#/b").is_err_and(|r| r.starts_with("invalid_pattern")));
    }
}
