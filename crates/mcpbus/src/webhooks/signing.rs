//! The Standard Webhooks signature of SEP-3415 (docs/protocol.md 3.6.3): secrets are the
//! client's `whsec_` values, a signature is `v1,<base64 HMAC-SHA256 over "id.timestamp.body">`.

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use mcpbus_proto::events_ext::webhook::SECRET_PREFIX;
use sha2::Sha256;

/// Standard base64, padded or not (Standard Webhooks libraries accept both).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A client's signing secret: `whsec_` followed by the base64 of 24 to 64 bytes (SEP-3415;
/// the server never makes one). Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

/// Why a `delivery.secret` is refused (InvalidParams).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSecret {
    /// It does not start with `whsec_`.
    #[error("delivery.secret must start with \"whsec_\"")]
    Prefix,
    /// What follows is not base64.
    #[error("delivery.secret is not whsec_ followed by base64")]
    Base64,
    /// It decodes to fewer than 24 or more than 64 bytes.
    #[error("delivery.secret decodes to {0} bytes; 24 to 64 are required")]
    Length(usize),
}

impl WebhookSecret {
    /// Reads a `whsec_` secret.
    pub fn parse(value: &str) -> Result<Self, InvalidSecret> {
        let encoded = value
            .strip_prefix(SECRET_PREFIX)
            .ok_or(InvalidSecret::Prefix)?;
        let key = LENIENT.decode(encoded).map_err(|_| InvalidSecret::Base64)?;
        if !(24..=64).contains(&key.len()) {
            return Err(InvalidSecret::Length(key.len()));
        }
        Ok(WebhookSecret { key })
    }

    /// The secret as the client gave it (`whsec_` and padded base64), for a
    /// [`WebhookStore`](super::WebhookStore) that keeps it for other replicas to sign with.
    pub fn to_whsec(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.key))
    }

    /// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header: one signature per secret, space-separated (several while a
/// secret rotates; a receiver accepts the delivery if any verifies).
pub fn signature_header<'a>(
    secrets: impl IntoIterator<Item = &'a WebhookSecret>,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .into_iter()
        .map(|s| s.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Compares two strings in time that depends on their lengths only.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_checked() {
        let ok = format!("whsec_{}", STANDARD.encode([7u8; 24]));
        assert!(WebhookSecret::parse(&ok).is_ok());
        let unpadded = format!("whsec_{}", STANDARD.encode([7u8; 32]).trim_end_matches('='));
        assert!(WebhookSecret::parse(&unpadded).is_ok());
        let parsed = WebhookSecret::parse(&unpadded).unwrap();
        assert_eq!(WebhookSecret::parse(&parsed.to_whsec()).unwrap(), parsed);
        assert_eq!(
            WebhookSecret::parse("s3cret").unwrap_err(),
            InvalidSecret::Prefix
        );
        assert_eq!(
            WebhookSecret::parse("whsec_!!").unwrap_err(),
            InvalidSecret::Base64
        );
        let short = format!("whsec_{}", STANDARD.encode([7u8; 23]));
        assert_eq!(
            WebhookSecret::parse(&short).unwrap_err(),
            InvalidSecret::Length(23)
        );
        let long = format!("whsec_{}", STANDARD.encode([7u8; 65]));
        assert!(WebhookSecret::parse(&long).is_err());
    }

    #[test]
    fn signature_matches_the_standard_webhooks_test_vector() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn rotation_signs_with_every_secret() {
        let a = WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode([1u8; 24]))).unwrap();
        let b = WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode([2u8; 24]))).unwrap();
        let header = signature_header([&a, &b], "id", 1, b"{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts, [a.sign("id", 1, b"{}"), b.sign("id", 1, b"{}")]);
    }
}
