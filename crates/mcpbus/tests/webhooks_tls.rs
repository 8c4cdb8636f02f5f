//! Webhook destinations (docs/protocol.md 3.6.5): `https` endpoints, a receiver on 127.0.0.1
//! serving TLS with a certificate from a CA made for the test that the server trusts through
//! `WebhookConfig::extra_root_certificates`; and origins allowed at runtime
//! (`Server::allow_webhook_origin`). Signatures are checked by the official Standard Webhooks
//! library, as in webhooks.rs.

#![allow(clippy::unwrap_used)] // tests unwrap to fail loudly

#[path = "webhooks_support/mod.rs"]
mod support;

use std::time::Duration;

use mcpbus::events::{Event, TopicSpec};
use mcpbus::proto::error_codes;
use mcpbus::server::Server;
use mcpbus::server::auth::BearerTokens;
use mcpbus::transport::http::{HttpConfig, serve_http};
use mcpbus::webhooks::{WebhookConfig, certificates_from_pem};
use mcpbus_testkit::{HttpClient, TestServer};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde_json::{Value, json};
use support::{Receiver, assert_all_verify, call_as, secret};

const ALICE: &str = "alice-token-0123456789abcdef";
const T: Duration = Duration::from_secs(10);

/// A CA (its certificate in PEM) and a leaf certificate and key it issued for `names`.
struct Pki {
    ca_pem: String,
    leaf_pem: String,
    leaf_key_pem: String,
}

fn pki(names: &[&str]) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let leaf = CertificateParams::new(names)
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        leaf_pem: leaf.pem(),
        leaf_key_pem: leaf_key.serialize_pem(),
    }
}

async fn start(trusted_ca: Option<&str>) -> (TestServer, HttpClient, Server) {
    start_allowing(trusted_ca, vec!["127.0.0.0/8".into()]).await
}

async fn start_allowing(
    trusted_ca: Option<&str>,
    allow_private: Vec<String>,
) -> (TestServer, HttpClient, Server) {
    let webhooks = WebhookConfig {
        allow_private,
        extra_root_certificates: trusted_ca
            .map(|pem| certificates_from_pem(pem.as_bytes()).unwrap())
            .unwrap_or_default(),
        ..WebhookConfig::default()
    };
    let server = Server::builder("webhooks-tls", "1")
        .topic(TopicSpec::content("build/+"))
        .webhooks(webhooks)
        .bearer_tokens(BearerTokens::new().with(ALICE, "alice").unwrap())
        .build()
        .unwrap();
    let served = server.clone();
    let ts =
        TestServer::start(|l, stop| serve_http(l, "/mcp", served, HttpConfig::default(), stop))
            .await;
    let raw = HttpClient::new(ts.url());
    (ts, raw, server)
}

async fn subscribe(raw: &HttpClient, url: &str, key: &str) -> Value {
    let params = json!({
        "name": "build/+",
        "arguments": {"retained": false},
        "delivery": {"mode": "webhook", "url": url, "secret": key},
        "ttlMs": 600_000
    });
    call_as(raw, Some(ALICE), "events/subscribe", params).await
}

#[tokio::test]
async fn an_https_endpoint_with_a_trusted_certificate_is_verified_and_delivered_to() {
    let pki = pki(&["127.0.0.1"]);
    let (_ts, raw, server) = start(Some(&pki.ca_pem)).await;
    let receiver = Receiver::start_tls(&pki.leaf_pem, &pki.leaf_key_pem).await;
    assert!(receiver.url.starts_with("https://127.0.0.1:"));
    let key = secret(7);
    let answer = subscribe(&raw, &receiver.url, &key).await;
    assert!(answer["result"]["id"].is_string(), "{answer}");
    let mut ids = Vec::new();
    for n in 0..3 {
        let event = Event::new(format!("build/{n}"), json!({"n": n}));
        ids.push(server.events().publish(event).await.unwrap().event_id);
    }
    let got = receiver.wait_for(4, T).await;
    assert!(got[0].is("verification"));
    assert_all_verify(&key, &got).await;
    let delivered: Vec<Value> = got[1..]
        .iter()
        .map(|r| r.json()["eventId"].clone())
        .collect();
    assert_eq!(delivered, ids);
}

#[tokio::test]
async fn an_untrusted_or_misnamed_certificate_is_a_tls_error_and_nothing_is_sent() {
    // Issued by a CA the server does not know.
    let stranger = pki(&["127.0.0.1"]);
    let (_ts, raw, server) = start(None).await;
    let receiver = Receiver::start_tls(&stranger.leaf_pem, &stranger.leaf_key_pem).await;
    let answer = subscribe(&raw, &receiver.url, &secret(8)).await;
    assert_eq!(
        answer["error"]["code"],
        error_codes::CALLBACK_ENDPOINT_ERROR,
        "{answer}"
    );
    assert_eq!(answer["error"]["data"]["reason"], "tls_error");

    // Issued by the trusted CA, but for another name than the URL's host.
    let misnamed = pki(&["hooks.example"]);
    let (_ts2, raw2, server2) = start(Some(&misnamed.ca_pem)).await;
    let receiver2 = Receiver::start_tls(&misnamed.leaf_pem, &misnamed.leaf_key_pem).await;
    let answer = subscribe(&raw2, &receiver2.url, &secret(9)).await;
    assert_eq!(answer["error"]["data"]["reason"], "tls_error", "{answer}");

    assert_eq!(
        server.webhook_subscriptions() + server2.webhook_subscriptions(),
        0
    );
    assert!(receiver.received().is_empty() && receiver2.received().is_empty());
}

#[tokio::test]
async fn an_origin_allowed_at_runtime_is_reached_and_no_other() {
    let (_ts, raw, server) = start_allowing(None, Vec::new()).await;
    let receiver = Receiver::start().await;
    let other = Receiver::start().await;
    let refused = subscribe(&raw, &receiver.url, &secret(3)).await;
    assert_eq!(
        refused["error"]["code"],
        error_codes::INVALID_PARAMS,
        "{refused}"
    );

    let origin = receiver.url.trim_end_matches("/hook");
    assert_eq!(
        server.allow_webhook_origin(&format!("{origin}/")).unwrap(),
        origin
    );
    let key = secret(4);
    let answer = subscribe(&raw, &receiver.url, &key).await;
    assert!(answer["result"]["id"].is_string(), "{answer}");
    let event = Event::new("build/1", json!({}));
    let id = server.events().publish(event).await.unwrap().event_id;
    let got = receiver.wait_for(2, T).await;
    assert_all_verify(&key, &got).await;
    assert_eq!(got[1].json()["eventId"], id);

    let still = subscribe(&raw, &other.url, &secret(5)).await;
    assert_eq!(
        still["error"]["code"],
        error_codes::INVALID_PARAMS,
        "{still}"
    );
    assert!(other.received().is_empty());
    assert!(server.allow_webhook_origin("http://h/path").is_err());
    let plain = Server::builder("x", "1").build().unwrap();
    assert!(plain.allow_webhook_origin(origin).is_err(), "no webhooks");
}

#[test]
fn root_certificates_are_read_from_pem_and_bad_ones_refused_at_build() {
    let pki = pki(&["127.0.0.1"]);
    let both = format!("{}{}", pki.ca_pem, pki.leaf_pem);
    assert_eq!(certificates_from_pem(both.as_bytes()).unwrap().len(), 2);
    assert!(certificates_from_pem(b"no pem here").is_err());
    let err = Server::builder("x", "1")
        .webhooks(WebhookConfig {
            extra_root_certificates: vec![b"not a certificate".to_vec()],
            ..WebhookConfig::default()
        })
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("root certificate 0"), "{err}");
}
