//! What the Streamable HTTP endpoint must answer, from the table of docs/http.md, computed
//! before the request is sent.
//!
//! Header checks are classified by hand-written rules: a value is *good* (clearly allowed),
//! *bad* (clearly refused) or *unsure* (odd spellings whose treatment the docs leave open). A
//! bad value fixes the status; an unsure one tolerates its check's status and otherwise lets
//! the request go on to the next check.

use std::collections::HashSet;

use futures::FutureExt;
use http::{HeaderMap, Method, header};
use mcpbus::store::{EventStore, MemoryEventStore, StoreError};
use mcpbus_proto::headers::{LAST_EVENT_ID, PROTOCOL_VERSION, SESSION_ID};
use mcpbus_proto::jsonrpc::{Message, RequestId, parse_message};
use mcpbus_proto::mcp::{SUPPORTED_PROTOCOL_VERSIONS, methods};

use super::script::Setup;

/// The store's name of a session's standalone (GET) stream.
pub const STANDALONE: &str = "get";

/// What the harness knows about the server's sessions.
#[derive(Debug, Default)]
pub struct Model {
    /// Sessions that are open.
    pub live: HashSet<String>,
    /// Open sessions whose standalone stream is held by a response the harness keeps.
    pub standalone: HashSet<String>,
    /// Every session id the server gave out, in order (for `$sN`).
    pub sessions: Vec<String>,
    /// Every event id seen, in order (for `$eN`).
    pub events: Vec<String>,
}

/// Where a request that passes every check ends up.
#[derive(Debug, Clone, PartialEq)]
pub enum Then {
    /// An error status.
    Status(u16),
    /// 400 whose JSON-RPC error has this code (the body is not one message).
    BadMessage(i64),
    /// 200: the answer to request `id`; `opens` when it is an `initialize` opening a session.
    Answer {
        /// The request's id.
        id: RequestId,
        /// Opens a session (initialize without `Mcp-Session-Id`, not stateless).
        opens: bool,
        /// An SSE answer may end before the answer (see `post`).
        may_end_early: bool,
    },
    /// 202, no body.
    Accepted,
    /// 200 with an SSE stream of `session`; `standalone` when it holds the standalone stream.
    Stream {
        /// The session.
        session: String,
        /// It is (or takes over) the standalone stream.
        standalone: bool,
    },
    /// 410: the events after `Last-Event-ID` on the standalone stream are gone; the stream it
    /// would have taken over is released.
    Gone {
        /// The session.
        session: String,
        /// The id named the standalone stream.
        standalone: bool,
    },
    /// 200: the session ended.
    Deleted(String),
    /// 405 with `Allow`.
    MethodNotAllowed,
    /// A 2026-07-28 message (docs/protocol.md 6.2): answered on its own, with no session;
    /// 200 (its answer, JSON or SSE), 202 (a notification), 400 or 404 (an error carrying the
    /// request's id, `id`), or 503 (too many in flight).
    Modern {
        /// The request's id (`None` for a notification or a response).
        id: Option<RequestId>,
    },
}

/// The statuses a request may get: `then`, or one of `tolerated` from unsure header checks.
#[derive(Debug, Clone)]
pub struct Expectation {
    /// Statuses an unsure check may answer with.
    pub tolerated: Vec<u16>,
    /// The answer when no unsure check refuses.
    pub then: Then,
}

/// One check's verdict.
enum Verdict {
    Pass,
    Fail,
    Unsure,
}

/// Runs checks in order; the first failing one decides.
struct Checks {
    tolerated: Vec<u16>,
}

impl Checks {
    fn check(&mut self, verdict: Verdict, status: u16) -> Result<(), Expectation> {
        match verdict {
            Verdict::Pass => Ok(()),
            Verdict::Unsure => {
                self.tolerated.push(status);
                Ok(())
            }
            Verdict::Fail => Err(self.done(Then::Status(status))),
        }
    }

    fn done(&self, then: Then) -> Expectation {
        Expectation {
            tolerated: self.tolerated.clone(),
            then,
        }
    }
}

/// A header's value when present and visible ASCII (what a server can read at all).
fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn is_port(s: &str) -> bool {
    (1..=5).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// A `Host` (or an origin's authority): good when a loopback name with an optional port, bad
/// when another plain host name (letters, digits, dots, dashes) with an optional port.
fn classify_host(host: &str) -> Verdict {
    let lower = host.to_ascii_lowercase();
    let (name, port) = match lower.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((inner, port)) => (format!("[{inner}]"), port),
            None => return Verdict::Unsure,
        },
        None => match lower.split_once(':') {
            Some((name, _)) => (name.to_owned(), &lower[name.len()..]),
            None => (lower.clone(), ""),
        },
    };
    let port_ok = port.is_empty() || port.strip_prefix(':').is_some_and(is_port);
    let plain = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let loopback = matches!(name.as_str(), "localhost" | "127.0.0.1" | "[::1]");
    match (loopback, plain, port_ok) {
        (true, _, true) => Verdict::Pass,
        (false, true, true) => Verdict::Fail,
        _ => Verdict::Unsure,
    }
}

/// An `Origin` under DNS-rebinding protection, not in the allow-list.
fn classify_origin(origin: &str) -> Verdict {
    match origin.split_once("://") {
        Some(("http" | "https", authority)) => classify_host(authority),
        Some((scheme, _)) if scheme.bytes().all(|b| b.is_ascii_alphanumeric()) => Verdict::Fail,
        None if !origin.contains(':') => Verdict::Fail,
        _ => Verdict::Unsure,
    }
}

/// Whether some `Accept` value lists `mime`, `type/*` or `*/*` (parameters ignored).
fn accepts(headers: &HeaderMap, mime: &str) -> bool {
    let family = format!("{}/*", mime.split('/').next().unwrap_or_default());
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|item| {
            item.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .any(|range| range == mime || range == family || range == "*/*")
}

fn version_verdict(headers: &HeaderMap) -> Verdict {
    match headers.get(PROTOCOL_VERSION) {
        None => Verdict::Pass,
        Some(v)
            if SUPPORTED_PROTOCOL_VERSIONS
                .iter()
                .any(|s| s.as_bytes() == v.as_bytes()) =>
        {
            Verdict::Pass
        }
        Some(_) => Verdict::Fail,
    }
}

/// The host and origin checks every method goes through first.
fn host_and_origin(
    setup: &Setup,
    headers: &HeaderMap,
    checks: &mut Checks,
) -> Result<(), Expectation> {
    if setup.protect {
        checks.check(classify_host(text(headers, "host").unwrap_or("")), 421)?;
    }
    let Some(origin) = text(headers, "origin") else {
        return Ok(());
    };
    let listed = setup.origins.iter().any(|o| o.eq_ignore_ascii_case(origin));
    let verdict = match (listed, setup.protect) {
        (true, _) => Verdict::Pass,
        (false, false) if setup.origins.is_empty() => Verdict::Pass,
        (false, false) => Verdict::Fail,
        (false, true) => classify_origin(origin),
    };
    checks.check(verdict, 403)
}

/// The expected answer to one request.
pub fn expect(
    setup: &Setup,
    model: &Model,
    store: &MemoryEventStore,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Expectation {
    let mut checks = Checks {
        tolerated: Vec::new(),
    };
    let outcome = host_and_origin(setup, headers, &mut checks).and_then(|()| match *method {
        Method::POST => post(setup, model, headers, body, &mut checks),
        // Without a session, GET and DELETE belong to no era (docs/protocol.md 5): 405.
        Method::GET | Method::DELETE if !headers.contains_key("mcp-session-id") => {
            Ok(checks.done(Then::MethodNotAllowed))
        }
        Method::GET if !setup.stateless => get(model, store, headers, &mut checks),
        Method::DELETE if !setup.stateless => {
            let session = session(model, headers, &mut checks)?;
            Ok(checks.done(Then::Deleted(session)))
        }
        _ => Ok(checks.done(Then::MethodNotAllowed)),
    });
    match outcome {
        Ok(e) | Err(e) => e,
    }
}

/// The live session a request names: 400 without the header, 404 when not live.
fn session(model: &Model, headers: &HeaderMap, checks: &mut Checks) -> Result<String, Expectation> {
    let Some(id) = text(headers, SESSION_ID) else {
        return Err(checks.done(Then::Status(400)));
    };
    if !model.live.contains(id) {
        return Err(checks.done(Then::Status(404)));
    }
    Ok(id.to_owned())
}

fn post(
    setup: &Setup,
    model: &Model,
    headers: &HeaderMap,
    body: &[u8],
    checks: &mut Checks,
) -> Result<Expectation, Expectation> {
    let both = accepts(headers, "application/json") && accepts(headers, "text/event-stream");
    checks.check(if both { Verdict::Pass } else { Verdict::Fail }, 406)?;
    let json = text(headers, "content-type")
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    checks.check(if json { Verdict::Pass } else { Verdict::Fail }, 415)?;
    let declared = text(headers, "content-length").and_then(|l| l.parse::<u64>().ok());
    let too_large =
        declared.is_some_and(|l| l > setup.max_body as u64) || body.len() > setup.max_body;
    checks.check(
        if too_large {
            Verdict::Fail
        } else {
            Verdict::Pass
        },
        413,
    )?;
    let message = match parse_message(body) {
        Ok(m) => m,
        Err(invalid) => return Err(checks.done(Then::BadMessage(invalid.error.code))),
    };
    if is_modern(headers, &message) {
        let id = match &message {
            Message::Request(r) => Some(r.id.clone()),
            _ => None,
        };
        return Ok(checks.done(Then::Modern { id }));
    }
    let initialize = matches!(&message, Message::Request(r) if r.method == methods::INITIALIZE);
    if !initialize {
        checks.check(version_verdict(headers), 400)?;
    }
    let opens = initialize && !setup.stateless && !headers.contains_key(SESSION_ID);
    if opens && model.live.len() >= setup.max_sessions {
        return Err(checks.done(Then::Status(503)));
    }
    if !setup.stateless && !opens {
        session(model, headers, checks)?;
    }
    Ok(checks.done(match message {
        Message::Request(r) => {
            let tool = match r.method.as_str() {
                methods::TOOLS_CALL => r.params.as_ref().and_then(|p| p.get("name")),
                _ => None,
            };
            // `close` ends its stream before answering, by design. Known issue (reported): a
            // POST stream whose reader falls behind the store's bound ends without the answer,
            // as `chatty`'s does when the store keeps fewer events than it sends (priming,
            // two progress notifications, answer).
            let may_end_early =
                tool == Some(&"close".into()) || (tool == Some(&"chatty".into()) && setup.keep < 3);
            Then::Answer {
                id: r.id,
                opens,
                may_end_early,
            }
        }
        _ => Then::Accepted,
    }))
}

/// Whether the server serves a POSTed message in the 2026-07-28 era: no session, and a modern
/// revision in its `_meta` or `MCP-Protocol-Version` header (or `server/discover`); an
/// `initialize` only when both name one (docs/protocol.md 6.2).
fn is_modern(headers: &HeaderMap, message: &Message) -> bool {
    if headers.contains_key(SESSION_ID) {
        return false;
    }
    let header_is_modern = headers
        .get("mcp-protocol-version")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !mcpbus_proto::mcp::is_supported_protocol_version(v));
    match message {
        Message::Request(r) if r.method == methods::INITIALIZE => {
            mcpbus_proto::modern::protocol_version_of(r.params.as_ref()).is_some()
                && header_is_modern
        }
        Message::Request(r) => {
            r.method == "server/discover"
                || mcpbus_proto::modern::protocol_version_of(r.params.as_ref()).is_some()
                || header_is_modern
        }
        _ => header_is_modern,
    }
}

fn get(
    model: &Model,
    store: &MemoryEventStore,
    headers: &HeaderMap,
    checks: &mut Checks,
) -> Result<Expectation, Expectation> {
    let sse = accepts(headers, "text/event-stream");
    checks.check(if sse { Verdict::Pass } else { Verdict::Fail }, 406)?;
    let session = session(model, headers, checks)?;
    checks.check(version_verdict(headers), 400)?;
    let Some(last) = text(headers, LAST_EVENT_ID) else {
        if model.standalone.contains(&session) {
            return Err(checks.done(Then::Status(409)));
        }
        return Ok(checks.done(Then::Stream {
            session,
            standalone: true,
        }));
    };
    let located = store
        .locate(&session, last)
        .now_or_never()
        .expect("in memory");
    let position = match located {
        Ok(p) => p,
        Err(StoreError::Malformed(_) | StoreError::Unknown(_)) => {
            return Err(checks.done(Then::Status(400)));
        }
        Err(e) => panic!("locate: {e}"),
    };
    let standalone = position.stream == STANDALONE;
    let read = store
        .read_after(&session, &position.stream, Some(last), 1)
        .now_or_never()
        .expect("in memory");
    match read {
        Ok(_) => Ok(checks.done(Then::Stream {
            session,
            standalone,
        })),
        // A POST stream whose id was trimmed resumes from the oldest message kept: its answer,
        // the newest, is still there (docs/protocol.md 4).
        Err(StoreError::Expired(_)) if !standalone => Ok(checks.done(Then::Stream {
            session,
            standalone,
        })),
        Err(StoreError::Expired(_)) => Err(checks.done(Then::Gone {
            session,
            standalone,
        })),
        Err(e) => panic!("read_after a located id: {e}"),
    }
}
