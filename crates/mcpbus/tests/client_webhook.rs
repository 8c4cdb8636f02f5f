//! The SEP-3415 webhook receiver (`mcpbus::client::WebhookReceiver`), fed deliveries signed here
//! as the SEP's Standard Webhooks profile says: a verification challenge is echoed and binds its
//! subscription id to the secret that verifies it, events reach the handler once (a retry with a
//! new timestamp and signature is acknowledged and dropped), gaps and terminations come through,
//! and forged, stale, malformed or not-yet-routable deliveries are refused with the status the
//! SEP asks for. One delivery goes through the axum router over real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use mcpbus::client::{SubscriptionEvent, WebhookReceiver};
use mcpbus::proto::error_codes;
use mcpbus_testkit::HttpClient;
use serde_json::{Value, json};
use sha2::Sha256;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// What the server side would send: the headers of a delivery signed with `secret`.
fn signed(secret: &str, subscription: &str, webhook_id: &str, at: u64, body: &str) -> HeaderMap {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{webhook_id}.{at}.{body}").as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: String| {
        headers.insert(name, HeaderValue::from_str(&value).unwrap());
    };
    put("webhook-id", webhook_id.into());
    put("webhook-timestamp", at.to_string());
    put("webhook-signature", format!("v1,{signature}"));
    put("x-mcp-subscription-id", subscription.into());
    put("content-type", "application/json".into());
    headers
}

fn event_body(event_id: &str, cursor: &str) -> String {
    json!({"eventId": event_id, "name": "alerts/+", "timestamp": "2026-02-19T16:00:00Z",
           "data": {"topic": "alerts/disk", "payload": {"full": true}}, "cursor": cursor})
    .to_string()
}

type Got = Arc<Mutex<Vec<(String, SubscriptionEvent)>>>;

fn receiver() -> (WebhookReceiver, Got) {
    let got: Got = Arc::default();
    let sink = got.clone();
    let receiver = WebhookReceiver::new(move |id, event| {
        sink.lock().unwrap().push((id.to_owned(), event));
    });
    (receiver, got)
}

#[test]
fn a_challenge_binds_the_secret_and_events_come_once() {
    let (receiver, got) = receiver();
    let secret = WebhookReceiver::generate_secret().unwrap();
    let other = WebhookReceiver::generate_secret().unwrap();
    receiver.add_secret(&other).unwrap();
    receiver.add_secret(&secret).unwrap();

    // The first subscribe's challenge names an id the receiver has not been told.
    let body = json!({"type": "verification", "challenge": "nonce-1"}).to_string();
    let headers = signed(&secret, "sub_a", "msg_verification_1", now(), &body);
    let answer = receiver.receive(&headers, body.as_bytes());
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.headers()["content-type"], "application/json");
    let echoed: Value = serde_json::from_str(answer.body()).unwrap();
    assert_eq!(echoed, json!({"challenge": "nonce-1"}));
    assert!(got.lock().unwrap().is_empty(), "not passed on");

    // An event, then the same event retried (new timestamp and signature): handled once.
    let body = event_body("evt_1", "7");
    for at in [now(), now() + 1] {
        let headers = signed(&secret, "sub_a", "evt_1", at, &body);
        assert_eq!(receiver.receive(&headers, body.as_bytes()).status(), 200);
    }
    // A gap and the end.
    let gap = json!({"type": "gap", "cursor": "12"}).to_string();
    let headers = signed(&secret, "sub_a", "msg_gap_1", now(), &gap);
    assert_eq!(receiver.receive(&headers, gap.as_bytes()).status(), 200);
    let end = json!({"type": "terminated", "error":
        {"code": -32024, "message": "Forbidden", "data": {"reason": "Access revoked"}}})
    .to_string();
    let headers = signed(&secret, "sub_a", "msg_terminated_1", now(), &end);
    assert_eq!(receiver.receive(&headers, end.as_bytes()).status(), 200);

    let got = got.lock().unwrap();
    assert_eq!(got.len(), 3, "{got:?}");
    let (id, SubscriptionEvent::Event(e)) = &got[0] else {
        panic!("an event first: {got:?}");
    };
    assert_eq!(id, "sub_a");
    assert_eq!(e.event_id, "evt_1");
    assert_eq!(e.topic, "alerts/disk");
    assert_eq!(e.payload, json!({"full": true}));
    assert_eq!(got[0].1.cursor(), Some("7"));
    assert_eq!(
        got[1].1,
        SubscriptionEvent::Gap {
            cursor: Some("12".into())
        }
    );
    assert!(
        matches!(&got[2].1, SubscriptionEvent::Terminated(e) if e.code == error_codes::FORBIDDEN)
    );
}

#[test]
fn forged_stale_malformed_and_unroutable_deliveries_are_refused() {
    let (receiver, got) = receiver();
    let secret = WebhookReceiver::generate_secret().unwrap();
    receiver.bind("sub_a", &secret).unwrap();
    let body = event_body("evt_1", "7");

    // Another secret's signature, for a known subscription: forged.
    let forged = WebhookReceiver::generate_secret().unwrap();
    let headers = signed(&forged, "sub_a", "evt_1", now(), &body);
    assert_eq!(receiver.receive(&headers, body.as_bytes()).status(), 401);
    // The body changed after signing.
    let headers = signed(&secret, "sub_a", "evt_1", now(), &body);
    let tampered = body.replace("\"7\"", "\"8\"");
    assert_eq!(
        receiver.receive(&headers, tampered.as_bytes()).status(),
        401
    );
    // Six minutes old.
    let headers = signed(&secret, "sub_a", "evt_1", now() - 360, &body);
    assert_eq!(receiver.receive(&headers, body.as_bytes()).status(), 400);
    // No signature.
    let mut headers = signed(&secret, "sub_a", "evt_1", now(), &body);
    headers.remove("webhook-signature");
    assert_eq!(receiver.receive(&headers, body.as_bytes()).status(), 400);
    // Signed, but not a webhook body.
    let headers = signed(&secret, "sub_a", "evt_2", now(), "[1]");
    assert_eq!(receiver.receive(&headers, b"[1]").status(), 400);
    // A subscription no secret here verifies yet: retryable.
    let headers = signed(&forged, "sub_b", "evt_1", now(), &body);
    assert_eq!(receiver.receive(&headers, body.as_bytes()).status(), 503);
    assert!(got.lock().unwrap().is_empty());

    // While a secret rotates, either of two signatures verifies.
    let mut headers = signed(&secret, "sub_a", "evt_1", now(), &body);
    let mine = headers["webhook-signature"].to_str().unwrap().to_owned();
    let theirs = signed(&forged, "sub_a", "evt_1", now(), &body)["webhook-signature"]
        .to_str()
        .unwrap()
        .to_owned();
    headers.insert(
        "webhook-signature",
        HeaderValue::from_str(&format!("{theirs} {mine}")).unwrap(),
    );
    assert_eq!(receiver.receive(&headers, body.as_bytes()).status(), 200);
    assert_eq!(got.lock().unwrap().len(), 1);
    // A secret that is not one is refused when registered.
    assert!(receiver.add_secret("whsec_short").is_err());
    assert!(receiver.bind("sub_c", "plain").is_err());
}

#[tokio::test]
async fn the_router_receives_deliveries_over_http() {
    let (receiver, got) = receiver();
    let secret = WebhookReceiver::generate_secret().unwrap();
    receiver.add_secret(&secret).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, receiver.router("/hooks")).await;
    });
    let body = event_body("evt_9", "3");
    let headers = signed(&secret, "sub_z", "evt_9", now(), &body);
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
        .collect();
    let answer = HttpClient::new(url)
        .call(Method::POST, &pairs, body.as_bytes())
        .await;
    assert_eq!(answer.status, 200);
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "sub_z");
}
