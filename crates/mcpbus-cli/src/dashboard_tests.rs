#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use mcpbus::events::Event;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::config::Config;
use crate::dashboard_api::{Api, Replica, form_value, percent_decode, redact_url, snapshot};
use crate::http_sections::{DashboardConfigError, DashboardSection};

const TAKEN: &[&str] = &["/mcp", "/publish", "/healthz", "/metrics"];
const TOKEN: &str = "dashboard-test-token";

fn section(toml_text: &str) -> DashboardSection {
    toml::from_str(toml_text).unwrap()
}

fn tokens() -> Vec<Arc<str>> {
    vec![Arc::from(TOKEN)]
}

#[test]
fn on_by_default_only_on_loopback() {
    let default = DashboardSection::default();
    let (path, gate) = default.plan(true, TAKEN, Vec::new()).unwrap().unwrap();
    assert_eq!(path, "/dashboard");
    assert!(matches!(gate, Gate::Open), "loopback is open, like /mcp");
    assert!(default.plan(false, TAKEN, tokens()).unwrap().is_none());
    let off = section("enabled = false");
    assert!(off.plan(true, TAKEN, Vec::new()).unwrap().is_none());
}

#[test]
fn beyond_loopback_it_needs_a_token() {
    let on = section("enabled = true\npath = \"/ops/bus\"");
    let err = on.plan(false, TAKEN, Vec::new()).unwrap_err();
    assert!(matches!(err, DashboardConfigError::NoToken));
    assert!(err.to_string().contains("[publish] token"), "{err}");
    let (path, gate) = on.plan(false, TAKEN, tokens()).unwrap().unwrap();
    assert_eq!(path, "/ops/bus");
    assert!(matches!(gate, Gate::Tokens(_)));
}

#[test]
fn the_path_must_be_plain_and_free() {
    for bad in ["dashboard", "/", "/dash/", "/a//b", "/d\"><script>", "/d?x"] {
        let s = section(&format!("path = {bad:?}"));
        assert!(
            matches!(
                s.plan(true, TAKEN, Vec::new()),
                Err(DashboardConfigError::BadPath(_))
            ),
            "{bad}"
        );
    }
    for taken in ["/mcp", "/metrics", "/healthz/x"] {
        let s = section(&format!("path = {taken:?}"));
        assert!(
            matches!(
                s.plan(true, TAKEN, Vec::new()),
                Err(DashboardConfigError::Taken(_))
            ),
            "{taken}"
        );
    }
}

#[test]
fn the_gate_takes_a_bearer_token_or_the_login_cookie() {
    let gate = Gate::Tokens(tokens().into());
    let mut h = HeaderMap::new();
    assert!(!gate.admits(&h));
    h.insert(header::AUTHORIZATION, "Bearer wrong".parse().unwrap());
    assert!(!gate.admits(&h));
    h.insert(
        header::AUTHORIZATION,
        format!("bearer {TOKEN}").parse().unwrap(),
    );
    assert!(gate.admits(&h));
    let mut h = HeaderMap::new();
    let cookie = format!("other=1; {COOKIE}={}", cookie_value(TOKEN));
    h.insert(header::COOKIE, cookie.parse().unwrap());
    assert!(gate.admits(&h));
    let mut h = HeaderMap::new();
    h.insert(header::COOKIE, format!("{COOKIE}={TOKEN}").parse().unwrap());
    assert!(!gate.admits(&h), "the cookie is not the token itself");
    assert!(Gate::Open.admits(&HeaderMap::new()));
}

#[test]
fn forms_urls_and_previews() {
    assert_eq!(percent_decode("a%2Fb+c").as_deref(), Some("a/b c"));
    assert_eq!(percent_decode("%zz"), None);
    assert_eq!(percent_decode("%2"), None);
    assert_eq!(
        form_value("x=1&topic=alerts%2F%2B", "topic").as_deref(),
        Some("alerts/+")
    );
    assert_eq!(form_value("x=1", "topic"), None);
    assert_eq!(
        redact_url("redis://user:secret@10.0.0.1:6379/2"),
        "redis://10.0.0.1:6379/2"
    );
    assert_eq!(redact_url("redis://h:1"), "redis://h:1");
}

fn api(config: &Config) -> Api {
    let server = crate::serve::build_server(config, None).unwrap();
    let replica = Replica {
        id: "0a0b0c0d".into(),
        listen: "127.0.0.1:1".into(),
        started_at: chrono::Utc::now(),
        redis: None,
        redis_prefix: None,
    };
    Api::new(server, replica, Arc::new(|| 7))
}

#[tokio::test]
async fn the_snapshot_has_topics_retained_values_counters_and_status() {
    let config = Config::load(None).unwrap();
    let api = api(&config);
    let hub = api.server.events();
    hub.publish(Event::new("build/status", json!({"ok": "<b>green</b>"})))
        .await
        .unwrap();
    hub.publish(Event::new("alerts/critical", json!("x".repeat(1000))))
        .await
        .unwrap();
    let snap = snapshot(&api).await;
    assert_eq!(snap["server"]["name"], "mcpbus");
    assert_eq!(snap["replica"]["id"], "0a0b0c0d");
    assert_eq!(snap["sessions"]["sessions"], 7);
    assert_eq!(snap["counters"]["published"], 2);
    assert_eq!(snap["counters"]["delivered"], 0);
    assert_eq!(snap["redis"]["configured"], false);
    assert_eq!(snap["redis"]["ok"], true);
    assert_eq!(snap["redis"]["logLength"], 2);
    let topics = snap["topics"].as_array().unwrap();
    assert_eq!(topics.len(), config.events.topics.len());
    let build = topics.iter().find(|t| t["pattern"] == "build/status");
    assert_eq!(build.unwrap()["published"], 1);
    assert_eq!(snap["retained"]["total"], 1);
    let value = &snap["retained"]["values"][0];
    assert_eq!(value["topic"], "build/status");
    // A preview string, escaped by the page (textContent), never interpreted.
    assert_eq!(value["payload"], r#"{"ok":"<b>green</b>"}"#);
}

async fn call(app: &axum::Router, request: Request<Body>) -> (StatusCode, HeaderMap, String) {
    let r = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = r.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&body).into(),
    )
}

fn get(uri: &str, header: Option<(header::HeaderName, String)>) -> Request<Body> {
    let mut b = Request::get(uri);
    if let Some((name, value)) = header {
        b = b.header(name, value);
    }
    b.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn behind_the_gate_the_data_needs_a_login() {
    let config = Config::load(None).unwrap();
    let app = routes("/dash", Gate::Tokens(tokens().into()), api(&config));
    let (status, _, body) = call(&app, get("/dash", None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("action=\"/dash/login\""), "{body}");
    let (status, _, _) = call(&app, get("/dash/api/snapshot", None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = call(&app, get("/dash/api/events", None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The static assets hold no data.
    let (status, headers, _) = call(&app, get("/dash/app.js", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );

    let bearer = Some((header::AUTHORIZATION, format!("Bearer {TOKEN}")));
    let (status, _, body) = call(&app, get("/dash/api/snapshot", bearer)).await;
    assert_eq!(status, StatusCode::OK);
    let snap: Value = serde_json::from_str(&body).unwrap();
    assert!(snap["topics"].is_array());

    let form = |token: &str| {
        Request::post("/dash/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("token={token}")))
            .unwrap()
    };
    let (status, headers, _) = call(&app, form("nope")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.get(header::SET_COOKIE).is_none());
    let (status, headers, _) = call(&app, form(TOKEN)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/dash");
    let set = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains(TOKEN));
    let cookie = set.split(';').next().unwrap().to_string();
    let (status, _, body) = call(&app, get("/dash", Some((header::COOKIE, cookie)))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("src=\"/dash/app.js\""), "{body}");
}

#[tokio::test]
async fn a_bad_tail_pattern_is_a_clear_error() {
    let config = Config::load(None).unwrap();
    let app = routes("/dashboard", Gate::Open, api(&config));
    let (status, _, body) = call(&app, get("/dashboard/api/events?topic=a%2F%23%2Fb", None)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("a/#/b"), "{body}");
}
