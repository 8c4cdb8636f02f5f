//! The encodings an OAuth client needs, for [`crate::oidc`]: form and query strings (RFC 3986
//! percent-encoding), base64url, JWTs read without verification, and PKCE (RFC 7636, S256).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// `value` percent-encoded for a query or a form body: everything but RFC 3986's unreserved
/// characters is escaped (so a space is `%20`, which every form parser reads as a space).
pub(crate) fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `application/x-www-form-urlencoded` (and query string) of `pairs`, in order.
pub(crate) fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Undoes [`percent_encode`] and the form encoding's `+` for a space; `None` if an escape is
/// malformed or the result is not UTF-8.
fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The decoded query parameters of `url`, in order; panics on a malformed escape.
pub(crate) fn query_params(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let query = query.split('#').next().unwrap_or_default();
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_decode(s).unwrap_or_else(|| panic!("a malformed escape in {url:?}"))
            };
            (decode(k), decode(v))
        })
        .collect()
}

/// The value of query parameter `name` of `url`.
pub(crate) fn query_param(url: &str, name: &str) -> Option<String> {
    query_params(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The `Authorization: Basic` value of a client (RFC 6749 2.3.1: both parts form-encoded).
pub(crate) fn basic_auth(id: &str, secret: &str) -> String {
    let pair = format!("{}:{}", percent_encode(id), percent_encode(secret));
    format!("Basic {}", STANDARD.encode(pair))
}

/// base64url without padding.
pub(crate) fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The JSON of one base64url part of a JWT.
fn json_part(part: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The header and the claims of a JWS in compact form, read without checking the signature;
/// `None` if `token` is not one (an opaque token, say).
pub fn decode_jwt(token: &str) -> Option<(Value, Value)> {
    let mut parts = token.split('.');
    let (header, claims, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    Some((json_part(header)?, json_part(claims)?))
}

/// A value no other call in this process returns: the base64url SHA-256 of the time, the process
/// id and a counter (43 characters). Unpredictable enough for a test's PKCE verifier and state.
pub(crate) fn unique_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!(
        "{nanos}:{}:{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    base64url(&Sha256::digest(seed.as_bytes()))
}

/// A PKCE pair: (code_verifier, S256 code_challenge).
pub(crate) fn pkce_pair() -> (String, String) {
    let verifier = unique_token();
    let challenge = base64url(&Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_round_trips_through_query_parsing() {
        let url = format!(
            "http://127.0.0.1/cb?{}",
            form_encode(&[("scope", "mcp events:subscribe"), ("r", "http://a/b?c=d&e")])
        );
        assert_eq!(
            query_params(&url),
            vec![
                ("scope".to_string(), "mcp events:subscribe".to_string()),
                ("r".to_string(), "http://a/b?c=d&e".to_string()),
            ]
        );
        assert_eq!(query_param("http://x/?a=1+2", "a").as_deref(), Some("1 2"));
    }

    #[test]
    fn pkce_challenge_is_the_rfc_7636_s256_of_the_verifier() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            base64url(&Sha256::digest(verifier.as_bytes())),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let (v, c) = pkce_pair();
        assert_eq!(v.len(), 43);
        assert_ne!(v, c);
    }

    #[test]
    fn jwt_parts_decode_and_opaque_tokens_do_not() {
        let token = format!(
            "{}.{}.sig",
            base64url(br#"{"alg":"RS256","kid":"k1"}"#),
            base64url(br#"{"sub":"agent-a"}"#)
        );
        let (header, claims) = decode_jwt(&token).expect("a JWT");
        assert_eq!(header["kid"], "k1");
        assert_eq!(claims["sub"], "agent-a");
        assert!(decode_jwt("AvujXLYLsgeXkEweNuxmfn40iOGyyz3EIyZgBB1qXFI").is_none());
    }
}
