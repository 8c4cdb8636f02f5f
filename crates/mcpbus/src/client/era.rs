//! Which era of MCP a client speaks, and how it finds out (docs/client.md).
//!
//! The 2026-07-28 revision drops the `initialize` handshake; a client that speaks both eras
//! learns the server's by probing with `server/discover` as the specification's
//! transport pages describe: a `DiscoverResult`, or a JSON-RPC error only a modern server sends
//! (`-32020`, `-32021`, `-32022`, or on HTTP `-32601` under a `404`), means modern; any other
//! answer, or none in time, means the handshake era.

use std::fmt;
use std::time::Duration;

use http::StatusCode;
use mcpbus_proto::error_codes;
use mcpbus_proto::jsonrpc::{ErrorObject, Message, Request, RequestId};
use mcpbus_proto::mcp::{self, Implementation, InitializeResult, methods};
use mcpbus_proto::modern::{self, DiscoverResult, RequestMeta, ResultMeta};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::service::{Peer, RequestOptions};
use crate::transport::{HttpHandle, Probe};

/// The era of MCP a [`Client`](super::Client) speaks with its server.
///
/// Set with [`ClientBuilder::era`](super::ClientBuilder::era); [`Client::era`](super::Client::era)
/// tells which one a connected client speaks (never `Auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Era {
    /// Find out when connecting (the default). A client built without an event handler probes
    /// with `server/discover` first and falls back to `initialize` when the server is not
    /// modern, as the specification describes. A client built with
    /// [`on_event`](super::ClientBuilder::on_event) wants the topic events extension, which
    /// exists only in the handshake era: it sends `initialize` first and probes
    /// `server/discover` only when the server refuses it (a modern-only server).
    #[default]
    Auto,
    /// MCP 2026-07-28 and later: no handshake, `_meta` on every request. Connecting fails when
    /// the server does not speak it.
    Modern,
    /// MCP 2025-11-25 and earlier: the `initialize` handshake and a session.
    Legacy,
}

impl Era {
    /// `"auto"`, `"modern"` or `"legacy"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Era::Auto => "auto",
            Era::Modern => "modern",
            Era::Legacy => "legacy",
        }
    }
}

impl fmt::Display for Era {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Era {
    type Err = String;

    /// Reads `auto`, `modern` or `legacy`.
    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text {
            "auto" => Ok(Era::Auto),
            "modern" => Ok(Era::Modern),
            "legacy" => Ok(Era::Legacy),
            other => Err(format!(
                "unknown era {other:?} (expected auto, modern or legacy)"
            )),
        }
    }
}

/// How many times a probe is sent again with a revision the server named in `-32022`.
const MAX_PROBES: usize = 3;

/// What a probe found out.
#[derive(Debug)]
pub(super) enum Verdict {
    /// The server speaks 2026-07-28.
    Modern(Box<Discovered>),
    /// The server is of the handshake era, for this reason.
    Legacy(String),
    /// A modern server refused the probe in a way no retry fixes.
    Refused(ErrorObject),
}

/// A modern server, as the probe found it.
#[derive(Debug)]
pub(super) struct Discovered {
    /// The revision both speak.
    pub(super) version: String,
    /// What `server/discover` said (a bare one when the server has no `server/discover`).
    pub(super) discover: DiscoverResult,
    /// Who the server is and what it does, in the handshake era's shape.
    pub(super) description: InitializeResult,
}

/// What one probe's answer says.
enum Reading {
    Discovered(Value),
    Retry(String),
    Verdict(Verdict),
}

/// Probes a server with `server/discover`, over the service loop or, on HTTP, with a POST of
/// its own (its status matters).
pub(super) struct Prober<'a> {
    pub(super) peer: &'a Peer,
    pub(super) http: Option<&'a HttpHandle>,
    /// Metadata of the probe; its revision is the one asked for first.
    pub(super) meta: RequestMeta,
    pub(super) timeout: Duration,
}

impl Prober<'_> {
    /// Probes, sending the probe again (bounded) with a revision a `-32022` offers.
    pub(super) async fn probe(mut self) -> Result<Verdict> {
        for attempt in 1..=MAX_PROBES {
            let params = json!({"_meta": self.meta.to_map()});
            let reading = match self.http {
                Some(http) => self.over_http(http, params, attempt).await?,
                None => self.over_peer(params).await?,
            };
            match reading {
                Reading::Discovered(raw) => return Ok(self.discovered(raw)),
                Reading::Retry(version) => {
                    tracing::debug!(
                        version,
                        "the server asked for another revision; probing again"
                    );
                    self.meta.protocol_version = version;
                }
                Reading::Verdict(verdict) => return Ok(verdict),
            }
        }
        Ok(Verdict::Refused(ErrorObject::unsupported_protocol_version(
            modern::SUPPORTED_PROTOCOL_VERSIONS.iter().copied(),
            self.meta.protocol_version,
        )))
    }

    async fn over_peer(&self, params: Value) -> Result<Reading> {
        let opts = RequestOptions {
            timeout: Some(self.timeout),
            ..RequestOptions::default()
        };
        match self
            .peer
            .request_with(methods::SERVER_DISCOVER, Some(params), opts)
            .await
        {
            Ok(result) => Ok(Reading::Discovered(result)),
            Err(Error::Remote(e)) => Ok(self.read_error(e, None)),
            Err(Error::Timeout(waited)) => Ok(Reading::Verdict(Verdict::Legacy(format!(
                "no answer to server/discover within {waited:?}"
            )))),
            Err(other) => Err(other),
        }
    }

    async fn over_http(&self, http: &HttpHandle, params: Value, attempt: usize) -> Result<Reading> {
        let id = RequestId::String(format!("mcpbus-discover-{attempt}").into());
        let request = Request {
            id,
            method: methods::SERVER_DISCOVER.to_owned(),
            params: Some(params),
        };
        let (status, message) = match http.probe(request, self.timeout).await? {
            Probe::TimedOut => {
                let why = format!("no answer to server/discover within {:?}", self.timeout);
                return Ok(Reading::Verdict(Verdict::Legacy(why)));
            }
            Probe::Answered { status, message } => (status, message),
        };
        Ok(match message {
            Some(Message::Response(r)) if status.is_success() => Reading::Discovered(r.result),
            Some(Message::Error(e)) => self.read_error(e.error, Some(status)),
            _ => Reading::Verdict(Verdict::Legacy(format!(
                "server/discover got HTTP {status} without a 2026-07-28 answer"
            ))),
        })
    }

    /// A JSON-RPC error to the probe: modern when only a modern server sends it.
    fn read_error(&self, e: ErrorObject, status: Option<StatusCode>) -> Reading {
        match e.code {
            error_codes::UNSUPPORTED_PROTOCOL_VERSION => {
                let supported = e
                    .unsupported_protocol_version_data()
                    .map(|d| d.supported)
                    .unwrap_or_default();
                match pick_modern(&supported, &self.meta.protocol_version) {
                    Some(version) => Reading::Retry(version),
                    None if supported
                        .iter()
                        .any(|v| mcp::is_supported_protocol_version(v)) =>
                    {
                        Reading::Verdict(Verdict::Legacy(format!(
                            "the server speaks {supported:?}, of which this client shares only \
                             handshake-era revisions"
                        )))
                    }
                    None => Reading::Verdict(Verdict::Refused(e)),
                }
            }
            error_codes::HEADER_MISMATCH | error_codes::MISSING_REQUIRED_CLIENT_CAPABILITY => {
                Reading::Verdict(Verdict::Refused(e))
            }
            // Only a modern endpoint answers an unknown method with 404 and a JSON-RPC error:
            // a modern server without `server/discover`.
            error_codes::METHOD_NOT_FOUND if status == Some(StatusCode::NOT_FOUND) => {
                let bare =
                    json!({"supportedVersions": [self.meta.protocol_version], "capabilities": {}});
                Reading::Discovered(bare)
            }
            code => Reading::Verdict(Verdict::Legacy(format!(
                "server/discover was answered with error {code}: {}",
                e.message
            ))),
        }
    }

    /// A `server/discover` result: modern at a revision both speak, if it reads as one.
    fn discovered(&self, raw: Value) -> Verdict {
        let discover = match serde_json::from_value::<DiscoverResult>(raw.clone()) {
            Ok(d) if !d.supported_versions.is_empty() => d,
            _ => {
                return Verdict::Legacy(
                    "the answer to server/discover is no DiscoverResult".to_owned(),
                );
            }
        };
        let Some(version) = pick_modern(&discover.supported_versions, &self.meta.protocol_version)
        else {
            if discover
                .supported_versions
                .iter()
                .any(|v| mcp::is_supported_protocol_version(v))
            {
                return Verdict::Legacy(format!(
                    "the server speaks {:?}, of which this client shares only handshake-era \
                     revisions",
                    discover.supported_versions
                ));
            }
            return Verdict::Refused(ErrorObject::unsupported_protocol_version(
                discover.supported_versions.clone(),
                self.meta.protocol_version.clone(),
            ));
        };
        let description = describe(&version, &discover, &raw);
        Verdict::Modern(Box::new(Discovered {
            version,
            discover,
            description,
        }))
    }
}

/// The revision to speak among the `offered` ones: `preferred` if offered, else the newest
/// modern revision this crate speaks.
fn pick_modern(offered: &[String], preferred: &str) -> Option<String> {
    if offered.iter().any(|v| v == preferred) && modern::is_supported_protocol_version(preferred) {
        return Some(preferred.to_owned());
    }
    modern::SUPPORTED_PROTOCOL_VERSIONS
        .iter()
        .find(|v| offered.iter().any(|o| o == *v))
        .map(|v| (*v).to_owned())
}

/// The server as the handshake era describes it, from its `server/discover` result: the
/// revision, the capabilities (their handshake-era shape), who it is (`_meta` `serverInfo`, or a
/// `serverInfo` member as drafts of the revision had it) and its instructions.
fn describe(version: &str, discover: &DiscoverResult, raw: &Value) -> InitializeResult {
    let capabilities = serde_json::to_value(&discover.capabilities)
        .and_then(serde_json::from_value)
        .unwrap_or_default();
    let server_info = discover
        .meta
        .as_ref()
        .and_then(|m: &ResultMeta| m.server_info.clone())
        .or_else(|| serde_json::from_value(raw.get("serverInfo")?.clone()).ok())
        .unwrap_or_else(|| Implementation::new("unnamed-server", ""));
    let mut description = InitializeResult::new(version, capabilities, server_info);
    description.instructions = discover.instructions.clone();
    description
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eras_read_and_print() {
        for era in [Era::Auto, Era::Modern, Era::Legacy] {
            assert_eq!(era.to_string().parse::<Era>(), Ok(era));
        }
        assert!("new".parse::<Era>().is_err());
        assert_eq!(Era::default(), Era::Auto);
    }

    #[test]
    fn the_preferred_revision_wins_when_offered() {
        let offered = vec!["2027-01-01".to_owned(), "2026-07-28".to_owned()];
        assert_eq!(
            pick_modern(&offered, "2026-07-28").as_deref(),
            Some("2026-07-28")
        );
        assert_eq!(
            pick_modern(&offered, "1999-01-01").as_deref(),
            Some("2026-07-28")
        );
        assert_eq!(pick_modern(&["2025-11-25".to_owned()], "2026-07-28"), None);
    }

    #[test]
    fn a_description_reads_server_info_from_meta_or_body() {
        let raw = json!({"supportedVersions": ["2026-07-28"], "capabilities": {"tools": {"listChanged": true}},
                         "serverInfo": {"name": "body", "version": "1"}, "instructions": "hi"});
        let discover: DiscoverResult = serde_json::from_value(raw.clone()).expect("discover");
        let d = describe("2026-07-28", &discover, &raw);
        assert_eq!(d.server_info.name, "body");
        assert_eq!(d.instructions.as_deref(), Some("hi"));
        assert_eq!(
            d.capabilities.tools.and_then(|t| t.list_changed),
            Some(true)
        );
        let raw = json!({"supportedVersions": ["2026-07-28"], "capabilities": {},
                         "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "meta", "version": "2"}}});
        let discover: DiscoverResult = serde_json::from_value(raw.clone()).expect("discover");
        assert_eq!(
            describe("2026-07-28", &discover, &raw).server_info.name,
            "meta"
        );
    }
}
