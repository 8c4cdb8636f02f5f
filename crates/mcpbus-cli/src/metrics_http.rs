//! `GET /metrics` of `mcpbus serve` (Prometheus), and the HTTP answers it counts: every answer
//! of the listener, by route and status, with the time until its head was ready.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header;
use mcpbus::server::Server;

/// What the counting layer needs: the server (its registry) and the paths to name routes by.
#[derive(Clone)]
pub(crate) struct Routes {
    pub server: Server,
    pub mcp_path: String,
    pub metrics_path: Option<String>,
    /// The dashboard's path, when it is served (its pages and data count as `dashboard`).
    pub dashboard_path: Option<String>,
}

impl Routes {
    /// The `route` label of a request path: a fixed, small set (never the raw path, which a
    /// client chooses).
    fn label(&self, path: &str) -> &'static str {
        if path == self.mcp_path {
            "mcp"
        } else if self.metrics_path.as_deref() == Some(path) {
            "metrics"
        } else if self.dashboard_path.as_deref().is_some_and(|d| {
            path.strip_prefix(d)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        }) {
            "dashboard"
        } else {
            match path {
                "/publish" => "publish",
                "/healthz" => "healthz",
                _ => "other",
            }
        }
    }
}

/// Counts every answer by route and status, and times it (up to its head: a stream is timed
/// to its start, not its end).
pub(crate) async fn count(State(routes): State<Routes>, request: Request, next: Next) -> Response {
    let route = routes.label(request.uri().path());
    let started = Instant::now();
    let response = next.run(request).await;
    routes
        .server
        .metrics()
        .observe_http(route, response.status().as_u16(), started.elapsed());
    response
}

/// `GET /metrics`: the registry in the OpenMetrics text format.
pub(crate) async fn metrics(State(routes): State<Routes>) -> Response {
    let text = routes.server.metrics_text().await;
    (
        [(header::CONTENT_TYPE, mcpbus::metrics::CONTENT_TYPE)],
        text,
    )
        .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::http_sections::{MetricsConfigError, MetricsSection};

    #[test]
    fn the_path_must_be_absolute_and_free() {
        let mut section = MetricsSection::default();
        assert_eq!(section.route("/mcp").ok().flatten(), Some("/metrics"));
        section.path = "metrics".into();
        assert!(matches!(
            section.route("/mcp"),
            Err(MetricsConfigError::NotAbsolute(_))
        ));
        section.path = "/healthz".into();
        assert!(matches!(
            section.route("/mcp"),
            Err(MetricsConfigError::Taken(_))
        ));
        section.enabled = false;
        assert_eq!(section.route("/mcp").ok().flatten(), None);
    }

    #[tokio::test]
    async fn the_dashboard_has_a_route_label_of_its_own() {
        let config = crate::config::Config::load(None).unwrap();
        let routes = Routes {
            server: crate::serve::build_server(&config, None).unwrap(),
            mcp_path: "/mcp".into(),
            metrics_path: Some("/metrics".into()),
            dashboard_path: Some("/dash".into()),
        };
        assert_eq!(routes.label("/dash"), "dashboard");
        assert_eq!(routes.label("/dash/api/events"), "dashboard");
        assert_eq!(routes.label("/dashboard"), "other");
        assert_eq!(routes.label("/metrics"), "metrics");
    }
}
