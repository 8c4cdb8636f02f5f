//! The `[metrics]` and `[dashboard]` sections of `mcpbus serve`'s configuration: what they say
//! and how they are checked, apart from the routes that serve them (`metrics_http.rs`,
//! `dashboard.rs`), so that the configuration reads without the HTTP side (the fuzz target of
//! the configuration compiles these files as they are).

use std::sync::Arc;

use serde::Deserialize;

/// `[metrics]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MetricsSection {
    /// Whether `GET <path>` serves the metrics (default: yes).
    #[serde(default = "metrics_enabled")]
    pub enabled: bool,
    /// Where (default `/metrics`).
    #[serde(default = "metrics_path")]
    pub path: String,
}

fn metrics_enabled() -> bool {
    true
}

fn metrics_path() -> String {
    "/metrics".to_string()
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            enabled: metrics_enabled(),
            path: metrics_path(),
        }
    }
}

/// Why `[metrics] path` cannot be served.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MetricsConfigError {
    /// Not an absolute path.
    #[error("[metrics] path {0:?}: must start with /")]
    NotAbsolute(String),
    /// Taken by another route.
    #[error("[metrics] path {0:?}: already served (the MCP endpoint, /publish or /healthz)")]
    Taken(String),
}

impl MetricsSection {
    /// The path to serve, or `None` when disabled; `mcp_path` is the MCP endpoint's.
    pub(crate) fn route(&self, mcp_path: &str) -> Result<Option<&str>, MetricsConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        let path = self.path.as_str();
        if !path.starts_with('/') {
            return Err(MetricsConfigError::NotAbsolute(path.to_owned()));
        }
        if path == mcp_path || path == "/publish" || path == "/healthz" {
            return Err(MetricsConfigError::Taken(path.to_owned()));
        }
        Ok(Some(path))
    }
}

/// `[dashboard]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DashboardSection {
    /// Whether to serve it; default: only when listening on a loopback address.
    pub enabled: Option<bool>,
    /// Where (default `/dashboard`).
    #[serde(default = "dashboard_path")]
    pub path: String,
}

fn dashboard_path() -> String {
    "/dashboard".to_string()
}

impl Default for DashboardSection {
    fn default() -> Self {
        DashboardSection {
            enabled: None,
            path: dashboard_path(),
        }
    }
}

/// Why `[dashboard]` cannot be served.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DashboardConfigError {
    /// Not a plain absolute path.
    #[error(
        "[dashboard] path {0:?}: must start with /, not end with /, and use only letters, \
         digits, '/', '-', '_' and '.'"
    )]
    BadPath(String),
    /// Taken by another route.
    #[error(
        "[dashboard] path {0:?}: already served (the MCP endpoint, /publish, /healthz or /metrics)"
    )]
    Taken(String),
    /// Enabled beyond loopback with nothing to log in with.
    #[error(
        "[dashboard] enabled on a listener that is not loopback, but there is no token to log \
         in with: set [publish] token (or MCPBUS_PUBLISH_TOKEN) or [auth] tokens, or drop \
         [dashboard] enabled = true"
    )]
    NoToken,
}

/// Who may read the dashboard.
#[derive(Clone)]
pub(crate) enum Gate {
    /// Anyone who reaches the listener (loopback).
    Open,
    /// Holders of one of these tokens.
    Tokens(Arc<[Arc<str>]>),
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Gate::Open => f.write_str("Open"),
            // Never the secrets themselves.
            Gate::Tokens(t) => write!(f, "Tokens({})", t.len()),
        }
    }
}

/// The cookie that carries a login.
pub(crate) const COOKIE: &str = "mcpbus_dashboard";
/// How long a login lasts in the browser (12 hours).
pub(crate) const COOKIE_MAX_AGE_SECS: u64 = 12 * 3600;

impl DashboardSection {
    /// Where and behind which gate to serve the dashboard, or `None` when it is off.
    /// `loopback`: whether the listener is on a loopback address; `taken`: the other routes'
    /// paths; `tokens`: the credentials configured (publish token, `[auth]` tokens).
    pub(crate) fn plan(
        &self,
        loopback: bool,
        taken: &[&str],
        tokens: Vec<Arc<str>>,
    ) -> Result<Option<(String, Gate)>, DashboardConfigError> {
        if !self.enabled.unwrap_or(loopback) {
            return Ok(None);
        }
        let path = self.path.as_str();
        let plain = path.len() > 1
            && path.starts_with('/')
            && !path.ends_with('/')
            && !path.contains("//")
            && path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b));
        if !plain {
            return Err(DashboardConfigError::BadPath(path.to_owned()));
        }
        let prefix = format!("{path}/");
        if taken
            .iter()
            .any(|t| *t == path || t.starts_with(&prefix) || path.starts_with(&format!("{t}/")))
        {
            return Err(DashboardConfigError::Taken(path.to_owned()));
        }
        if loopback {
            return Ok(Some((path.to_owned(), Gate::Open)));
        }
        if tokens.is_empty() {
            return Err(DashboardConfigError::NoToken);
        }
        Ok(Some((path.to_owned(), Gate::Tokens(tokens.into()))))
    }
}
