//! The text form of an HTTP fuzz input: a settings line, then requests.
//!
//! ```text
//! mode=auto stateless=0 protect=1 maxbody=600 sessions=3 keep=4 version=2025-11-25 origin=http://app.example
//! === POST
//! accept: application/json, text/event-stream
//! content-type: application/json
//! mcp-session-id: $s0
//!
//! {"jsonrpc":"2.0","id":2,"method":"ping"}
//! === GET
//! accept: text/event-stream
//! mcp-session-id: $s0
//! last-event-id: $e1
//! ```
//!
//! Each request starts with `=== METHOD`; header lines follow up to an empty line, the body is
//! the rest. Unknown settings are ignored. In header values and bodies, `$sN` stands for the
//! N-th session id the server gave out and `$eN` for the N-th event id seen, so the fuzzer
//! reaches live sessions and real resume points it cannot guess.

use mcpbus::transport::http::ResponseMode;

/// The most requests one input sends (after the harness's own `initialize`).
pub const MAX_REQUESTS: usize = 6;

/// The endpoint's settings and the session the harness opens first.
#[derive(Debug, Clone)]
pub struct Setup {
    /// `mode=auto|json|sse`.
    pub mode: ResponseMode,
    /// `stateless=1`.
    pub stateless: bool,
    /// `protect=0` turns DNS-rebinding protection off.
    pub protect: bool,
    /// `maxbody=N`: the POST body limit.
    pub max_body: usize,
    /// `sessions=N`: the session limit.
    pub max_sessions: usize,
    /// `keep=N`: events the store keeps per stream.
    pub keep: usize,
    /// `version=…`: the revision of the harness's `initialize` (2025-11-25 gets priming events).
    pub version: String,
    /// `origin=…` (repeatable): extra allowed origins.
    pub origins: Vec<String>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            mode: ResponseMode::Auto,
            stateless: false,
            protect: true,
            max_body: 600,
            max_sessions: 3,
            keep: 4,
            version: "2025-11-25".into(),
            origins: Vec::new(),
        }
    }
}

/// One request as written in the input (placeholders not yet replaced).
#[derive(Debug, Clone, Default)]
pub struct RawRequest {
    /// The method token.
    pub method: String,
    /// Header lines as `(name, value)`.
    pub headers: Vec<(String, String)>,
    /// The body text.
    pub body: String,
}

/// A whole input.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// The settings line.
    pub setup: Setup,
    /// The requests, at most [`MAX_REQUESTS`].
    pub requests: Vec<RawRequest>,
}

/// Reads an input; anything unexpected is read leniently, never refused.
pub fn parse(text: &str) -> Script {
    let mut lines = text.split('\n');
    let setup = parse_setup(lines.next().unwrap_or_default());
    let mut requests: Vec<RawRequest> = Vec::new();
    let mut in_body = false;
    let mut body_lines: Vec<&str> = Vec::new();
    for line in lines {
        if let Some(method) = line.strip_prefix("=== ") {
            if let Some(last) = requests.last_mut() {
                last.body = body_lines.join("\n");
            }
            if requests.len() == MAX_REQUESTS {
                return Script { setup, requests };
            }
            body_lines.clear();
            in_body = false;
            requests.push(RawRequest {
                method: method.trim_end_matches('\r').to_owned(),
                ..RawRequest::default()
            });
            continue;
        }
        let Some(request) = requests.last_mut() else {
            continue;
        };
        if in_body {
            body_lines.push(line);
        } else if line.is_empty() || line == "\r" {
            in_body = true;
        } else if let Some((name, value)) = line.split_once(':') {
            let value = value.strip_prefix(' ').unwrap_or(value);
            request
                .headers
                .push((name.to_owned(), value.trim_end_matches('\r').to_owned()));
        }
    }
    if let Some(last) = requests.last_mut() {
        last.body = body_lines.join("\n");
    }
    Script { setup, requests }
}

fn parse_setup(line: &str) -> Setup {
    let mut setup = Setup::default();
    for word in line.split_whitespace() {
        let Some((key, value)) = word.split_once('=') else {
            continue;
        };
        let number = value.parse::<usize>().ok();
        match key {
            "mode" => {
                setup.mode = match value {
                    "json" => ResponseMode::Json,
                    "sse" => ResponseMode::Sse,
                    _ => ResponseMode::Auto,
                }
            }
            "stateless" => setup.stateless = value == "1",
            "protect" => setup.protect = value != "0",
            // Room for the harness's own `initialize` (under 256 bytes).
            "maxbody" => setup.max_body = number.unwrap_or(600).clamp(256, 4096),
            "sessions" => setup.max_sessions = number.unwrap_or(3).clamp(1, 8),
            "keep" => setup.keep = number.unwrap_or(4).clamp(1, 64),
            "version" => setup.version = value.chars().take(32).collect(),
            "origin" => setup.origins.push(value.to_owned()),
            _ => {}
        }
    }
    setup
}

/// Replaces `$sN` and `$eN` with the N-th (modulo the count) session id or event id; left as
/// they are while none is known.
pub fn substitute(text: &str, sessions: &[String], events: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let list: &[String] = match after.as_bytes().first() {
            Some(b's') => sessions,
            Some(b'e') => events,
            _ => &[],
        };
        if !list.is_empty() {
            // The byte after `$` is ASCII here, so slicing past it is on a char boundary.
            let tail = &after[1..];
            let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
            if let Ok(n) = tail[..digits].parse::<usize>() {
                out.push_str(&list[n % list.len()]);
                rest = &tail[digits..];
                continue;
            }
        }
        out.push('$');
        rest = after;
    }
    out.push_str(rest);
    out
}
