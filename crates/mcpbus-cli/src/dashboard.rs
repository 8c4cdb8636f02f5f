//! The live dashboard of `mcpbus serve` (`[dashboard]`): a static page (hand-written HTML, CSS
//! and JS embedded in the binary, no build step) that reads a JSON snapshot and a live tail of
//! events (Server-Sent Events) under the same path.
//!
//! Exposure: on by default only when the listener is on a loopback address, where it is open
//! like the MCP endpoint and `/metrics`. Elsewhere it is off unless `[dashboard] enabled =
//! true`, and then every route but the static assets needs a credential: the `POST /publish`
//! bearer token or an `[auth]` token, either as `Authorization: Bearer <token>` (scripts), or
//! typed once into the login form, which sets an HttpOnly cookie holding a keyed hash of the
//! token (never the token itself). The cookie is the same on every replica with the same
//! tokens, and stops working when the token is removed from the configuration.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use sha2::Sha256;

use crate::dashboard_api::{self, Api};
pub(crate) use crate::http_sections::Gate;
use crate::http_sections::{COOKIE, COOKIE_MAX_AGE_SECS};

/// The value of the login cookie for `token`: a keyed hash, so that the browser never holds
/// the token itself and every replica with the same token accepts it.
fn cookie_value(token: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(b"mcpbus dashboard login v1");
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compares without an early exit, so that timing does not reveal how much of a guess matched.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Gate {
    /// Whether `token` is one of the gate's tokens.
    fn accepts_token(&self, token: &str) -> bool {
        match self {
            Gate::Open => true,
            Gate::Tokens(tokens) => tokens.iter().fold(false, |ok, t| {
                same_secret(t.as_bytes(), token.as_bytes()) | ok
            }),
        }
    }

    /// Whether a request with these headers may read the dashboard's data.
    pub(crate) fn admits(&self, headers: &HeaderMap) -> bool {
        let Gate::Tokens(tokens) = self else {
            return true;
        };
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        if let Some(token) = bearer {
            return self.accepts_token(token);
        }
        let Some(cookie) = cookie(headers, COOKIE) else {
            return false;
        };
        tokens.iter().fold(false, |ok, t| {
            same_secret(cookie_value(t).as_bytes(), cookie.as_bytes()) | ok
        })
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

const INDEX_HTML: &str = include_str!("dashboard/index.html");
const LOGIN_HTML: &str = include_str!("dashboard/login.html");
const APP_JS: &str = include_str!("dashboard/app.js");
const APP_CSS: &str = include_str!("dashboard/app.css");
const FAVICON: &str = include_str!("dashboard/favicon.svg");

/// Scripts and styles only from the dashboard's own files, data only from its own endpoints:
/// even a value that slipped into the DOM as markup could not run.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the page handlers share.
#[derive(Clone)]
struct Pages {
    base: Arc<str>,
    gate: Gate,
}

/// A page or asset, with the headers every dashboard answer carries.
fn asset(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// `{{BASE}}` in a page is the dashboard's path (plain characters only, see
/// [`DashboardSection::plan`], so it needs no escaping); `{{MESSAGE}}` a fixed text.
fn page(template: &str, base: &str, message: &str) -> String {
    template
        .replace("{{BASE}}", base)
        .replace("{{MESSAGE}}", message)
}

async fn index(State(p): State<Pages>, headers: HeaderMap) -> Response {
    if p.gate.admits(&headers) {
        asset(
            StatusCode::OK,
            "text/html; charset=utf-8",
            page(INDEX_HTML, &p.base, ""),
        )
    } else {
        login_page(&p, StatusCode::UNAUTHORIZED, "")
    }
}

fn login_page(p: &Pages, status: StatusCode, message: &str) -> Response {
    asset(
        status,
        "text/html; charset=utf-8",
        page(LOGIN_HTML, &p.base, message),
    )
}

/// `POST <path>/login` (`token=...`, a form): sets the login cookie and goes to the page.
async fn login(State(p): State<Pages>, headers: HeaderMap, body: Bytes) -> Response {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let token = std::str::from_utf8(&body)
        .ok()
        .filter(|_| form)
        .and_then(|b| dashboard_api::form_value(b, "token"));
    let Some(token) = token.filter(|t| !t.is_empty() && p.gate.accepts_token(t)) else {
        return login_page(&p, StatusCode::UNAUTHORIZED, "Wrong token.");
    };
    let mut r = StatusCode::SEE_OTHER.into_response();
    let cookie = format!(
        "{COOKIE}={}; Path={}; Max-Age={COOKIE_MAX_AGE_SECS}; HttpOnly; SameSite=Strict",
        cookie_value(&token),
        p.base
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&p.base) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// The dashboard's routes under `base`, behind `gate`.
pub(crate) fn routes(base: &str, gate: Gate, api: Api) -> axum::Router {
    let pages = Pages {
        base: base.into(),
        gate: gate.clone(),
    };
    let static_routes = axum::Router::new()
        .route(base, get(index))
        .route(&format!("{base}/login"), post(login))
        .route(
            &format!("{base}/app.js"),
            get(|| async {
                asset(
                    StatusCode::OK,
                    "text/javascript; charset=utf-8",
                    APP_JS.into(),
                )
            }),
        )
        .route(
            &format!("{base}/app.css"),
            get(|| async { asset(StatusCode::OK, "text/css; charset=utf-8", APP_CSS.into()) }),
        )
        .route(
            &format!("{base}/favicon.svg"),
            get(|| async { asset(StatusCode::OK, "image/svg+xml", FAVICON.into()) }),
        )
        .with_state(pages);
    static_routes.merge(dashboard_api::routes(base, gate, api))
}

/// Adds the dashboard to `app` when `[dashboard]` and the listener (`local`) call for it, and
/// returns its path then; `publish_token` is the `POST /publish` token, if any.
pub(crate) fn with_dashboard(
    app: axum::Router,
    config: &crate::config::Config,
    server: &mcpbus::server::Server,
    mcp: &mcpbus::transport::http::StreamableHttpService,
    local: std::net::SocketAddr,
    publish_token: Option<Arc<str>>,
) -> Result<(axum::Router, Option<String>), crate::config::ConfigError> {
    let mut tokens: Vec<Arc<str>> = publish_token.into_iter().collect();
    // The same tokens the MCP endpoint accepts ([auth]; checked when the server was built).
    tokens.extend(
        config
            .auth
            .tokens
            .iter()
            .filter_map(|e| std::env::var(&e.token_env).ok())
            .filter(|t| !t.is_empty())
            .map(Arc::from),
    );
    let mut taken = vec![config.http.path.as_str(), "/publish", "/healthz"];
    taken.extend(config.metrics.route(&config.http.path)?);
    let plan = config
        .dashboard
        .plan(local.ip().is_loopback(), &taken, tokens)?;
    let Some((path, gate)) = plan else {
        return Ok((app, None));
    };
    let mut id = [0u8; 4];
    // A failure leaves zeros: the id only tells replicas apart on the page.
    let _ = getrandom::fill(&mut id);
    let replica = dashboard_api::Replica {
        id: id.iter().map(|b| format!("{b:02x}")).collect(),
        listen: local.to_string(),
        started_at: chrono::Utc::now(),
        redis: config.redis.url.as_deref().map(dashboard_api::redact_url),
        redis_prefix: config.redis.prefix.clone(),
    };
    let mcp = mcp.clone();
    let api = Api::new(
        server.clone(),
        replica,
        Arc::new(move || mcp.session_count()),
    );
    let login = if matches!(gate, Gate::Open) {
        "open on loopback"
    } else {
        "token required"
    };
    tracing::info!(url = %format!("http://{local}{path}"), login, "dashboard");
    Ok((app.merge(routes(&path, gate, api)), Some(path)))
}

#[cfg(test)]
#[path = "dashboard_tests.rs"]
mod tests;
