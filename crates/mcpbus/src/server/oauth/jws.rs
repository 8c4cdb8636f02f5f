//! JWT access tokens (RFC 7519, signed as RFC 7515 compact JWS): read, and their signature
//! checked with a public key of the authorization server (RFC 7517 JWK). Only asymmetric
//! algorithms are accepted (RS*, PS*, ES256, ES384): `none` and every HMAC algorithm are
//! refused before any key is looked at, so a token can never be "signed" with a public key
//! used as a shared secret, and a key is used only with the algorithm family of its type (and
//! with its own `alg`, when the key set gives one). The cryptography is ring's.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::{Map, Value};

use super::error::{TokenError, clip};

/// A signature algorithm accepted for access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
}

impl Alg {
    /// The algorithm a JOSE header names, if accepted.
    pub(crate) fn parse(name: &str) -> Result<Alg, TokenError> {
        Ok(match name {
            "RS256" => Alg::Rs256,
            "RS384" => Alg::Rs384,
            "RS512" => Alg::Rs512,
            "PS256" => Alg::Ps256,
            "PS384" => Alg::Ps384,
            "PS512" => Alg::Ps512,
            "ES256" => Alg::Es256,
            "ES384" => Alg::Es384,
            other => {
                return Err(TokenError::Malformed(format!(
                    "the signature algorithm '{}' is not accepted (RS256, RS384, RS512, \
                     PS256, PS384, PS512, ES256 or ES384)",
                    clip(other)
                )));
            }
        })
    }

    /// The JOSE name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
        }
    }
}

/// An elliptic curve of an EC key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
}

/// The public part of a signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PublicKey {
    /// Modulus and exponent, big-endian.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// An uncompressed point (`04 || x || y`).
    Ec { curve: Curve, point: Vec<u8> },
}

/// One key of the authorization server's key set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Jwk {
    pub(crate) kid: Option<String>,
    /// The only algorithm the key may be used with, when the key set says so.
    pub(crate) alg: Option<String>,
    pub(crate) key: PublicKey,
}

impl Jwk {
    /// Reads one JWK: `Ok(None)` for a key that can never verify a token here (another type,
    /// an encryption key), `Err` for a signing key that is malformed.
    pub(crate) fn parse(jwk: &Map<String, Value>) -> Result<Option<Jwk>, String> {
        let text = |name: &str| jwk.get(name).and_then(Value::as_str);
        if text("use").is_some_and(|u| u != "sig") {
            return Ok(None);
        }
        let bytes = |name: &str| -> Result<Vec<u8>, String> {
            let value = text(name).ok_or_else(|| format!("the key has no {name:?}"))?;
            URL_SAFE_NO_PAD
                .decode(value)
                .map_err(|_| format!("the key's {name:?} is not base64url"))
        };
        let key = match text("kty") {
            Some("RSA") => PublicKey::Rsa {
                n: strip_zeros(bytes("n")?),
                e: strip_zeros(bytes("e")?),
            },
            Some("EC") => {
                let (curve, len) = match text("crv") {
                    Some("P-256") => (Curve::P256, 32),
                    Some("P-384") => (Curve::P384, 48),
                    _ => return Ok(None),
                };
                let (x, y) = (bytes("x")?, bytes("y")?);
                if x.len() != len || y.len() != len {
                    return Err("the EC key's coordinates have the wrong length".into());
                }
                let mut point = vec![4u8];
                point.extend(x);
                point.extend(y);
                PublicKey::Ec { curve, point }
            }
            _ => return Ok(None),
        };
        Ok(Some(Jwk {
            kid: text("kid").map(str::to_owned),
            alg: text("alg").map(str::to_owned),
            key,
        }))
    }

    /// Whether the key may verify a signature of `alg`: its type fits the algorithm family,
    /// and its own `alg`, if given, is the same.
    pub(crate) fn fits(&self, alg: Alg) -> bool {
        let family = match (&self.key, alg) {
            (PublicKey::Rsa { .. }, Alg::Rs256 | Alg::Rs384 | Alg::Rs512) => true,
            (PublicKey::Rsa { .. }, Alg::Ps256 | Alg::Ps384 | Alg::Ps512) => true,
            (PublicKey::Ec { curve, .. }, Alg::Es256) => *curve == Curve::P256,
            (PublicKey::Ec { curve, .. }, Alg::Es384) => *curve == Curve::P384,
            _ => false,
        };
        family && self.alg.as_deref().is_none_or(|a| a == alg.name())
    }
}

fn strip_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros);
    bytes
}

/// A JWT read but not verified yet.
#[derive(Debug)]
pub(crate) struct Jws<'a> {
    pub(crate) alg: Alg,
    pub(crate) kid: Option<String>,
    pub(crate) claims: Map<String, Value>,
    /// `header.payload`, what the signature covers.
    signing_input: &'a str,
    signature: Vec<u8>,
}

/// Whether `token` has the shape of a compact JWS (three base64url parts, the first a JSON
/// object): only such tokens go to the JWT verifier; others are opaque.
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let header = parts.next().unwrap_or_default();
    parts.count() == 2
        && URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
            .is_some_and(|h| h.is_object())
}

/// Reads a compact JWS: its header (an accepted `alg`, no `crit`), its claims (a JSON object)
/// and its signature.
pub(crate) fn parse(token: &str) -> Result<Jws<'_>, TokenError> {
    let malformed = |what: &str| TokenError::Malformed(what.to_owned());
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("a JWT has three parts separated by '.'"));
    };
    let object = |part: &str, what: &str| -> Result<Map<String, Value>, TokenError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| malformed(&format!("the JWT {what} is not base64url")))?;
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(malformed(&format!("the JWT {what} is not a JSON object"))),
        }
    };
    let head = object(header, "header")?;
    if head.contains_key("crit") {
        return Err(malformed("the JWT header has critical extensions ('crit')"));
    }
    let alg = match head.get("alg") {
        Some(Value::String(alg)) => Alg::parse(alg)?,
        _ => return Err(malformed("the JWT header names no algorithm")),
    };
    let kid = match head.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(malformed("the JWT header's kid is not a string")),
    };
    let claims = object(payload, "payload")?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| malformed("the JWT signature is not base64url"))?;
    Ok(Jws {
        alg,
        kid,
        claims,
        signing_input: &token[..header.len() + 1 + payload.len()],
        signature,
    })
}

impl Jws<'_> {
    /// Whether the signature verifies with `key` (which must [fit](Jwk::fits) the algorithm).
    pub(crate) fn verifies_with(&self, key: &Jwk) -> bool {
        if !key.fits(self.alg) {
            return false;
        }
        let message = self.signing_input.as_bytes();
        match &key.key {
            PublicKey::Rsa { n, e } => {
                let params: &signature::RsaParameters = match self.alg {
                    Alg::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    Alg::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    Alg::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    Alg::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
                    Alg::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
                    Alg::Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
                    Alg::Es256 | Alg::Es384 => return false,
                };
                RsaPublicKeyComponents { n, e }
                    .verify(params, message, &self.signature)
                    .is_ok()
            }
            PublicKey::Ec { point, .. } => {
                let algorithm: &signature::EcdsaVerificationAlgorithm = match self.alg {
                    Alg::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
                    Alg::Es384 => &signature::ECDSA_P384_SHA384_FIXED,
                    _ => return false,
                };
                UnparsedPublicKey::new(algorithm, point)
                    .verify(message, &self.signature)
                    .is_ok()
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;

    fn b64(v: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(v)
    }

    /// A P-256 key pair and its JWK.
    fn ec_key(kid: &str) -> (EcdsaKeyPair, Jwk) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = pair.public_key().as_ref();
        let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid,
            "x": b64(&point[1..33]), "y": b64(&point[33..])});
        let jwk = Jwk::parse(jwk.as_object().unwrap()).unwrap().unwrap();
        (pair, jwk)
    }

    fn sign(pair: &EcdsaKeyPair, header: Value, claims: Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", b64(sig.as_ref()))
    }

    #[test]
    fn an_es256_token_verifies_with_its_key_only() {
        let (pair, jwk) = ec_key("k1");
        let (_, other) = ec_key("k2");
        let token = sign(
            &pair,
            json!({"alg": "ES256", "kid": "k1"}),
            json!({"sub": "a"}),
        );
        assert!(looks_like_jwt(&token));
        let jws = parse(&token).unwrap();
        assert_eq!((jws.alg, jws.kid.as_deref()), (Alg::Es256, Some("k1")));
        assert_eq!(jws.claims["sub"], "a");
        assert!(jws.verifies_with(&jwk));
        assert!(!jws.verifies_with(&other));
        // A key whose own alg is another one is never used.
        let pinned = Jwk {
            alg: Some("ES384".into()),
            ..jwk.clone()
        };
        assert!(!jws.verifies_with(&pinned));
        // One byte of the payload changed: the signature no longer verifies.
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = b64(json!({"sub": "b"}).to_string().as_bytes());
        let forged = parts.join(".");
        assert!(!parse(&forged).unwrap().verifies_with(&jwk));
    }

    #[test]
    fn none_and_hmac_are_refused_before_any_key() {
        for alg in ["none", "HS256", "HS512", "EdDSA", ""] {
            let header = b64(json!({"alg": alg}).to_string().as_bytes());
            let token = format!("{header}.{}.", b64(b"{}"));
            let err = parse(&token).unwrap_err();
            assert!(matches!(err, TokenError::Malformed(_)), "{alg}: {err}");
        }
    }

    #[test]
    fn malformed_tokens_are_refused_with_a_reason() {
        let head = b64(br#"{"alg":"RS256"}"#);
        let claims = b64(b"{}");
        for (token, reason) in [
            ("abc".to_owned(), "three parts"),
            (format!("{head}.{claims}"), "three parts"),
            (format!("{head}.{claims}.x.y"), "three parts"),
            (format!("!!.{claims}.sig"), "header is not base64url"),
            (format!("{}.{claims}.sig", b64(b"[1]")), "not a JSON object"),
            (
                format!("{head}.{}.sig", b64(b"\"s\"")),
                "payload is not a JSON",
            ),
            (format!("{head}.{claims}.s+g"), "signature is not base64url"),
            (format!("{}.{claims}.", b64(b"{}")), "names no algorithm"),
            (
                format!("{}.{claims}.", b64(br#"{"alg":"RS256","crit":["x"]}"#)),
                "crit",
            ),
            (
                format!("{}.{claims}.", b64(br#"{"alg":"RS256","kid":1}"#)),
                "kid",
            ),
        ] {
            let err = parse(&token).unwrap_err().to_string();
            assert!(err.contains(reason), "{token}: {err}");
        }
        assert!(!looks_like_jwt("opaque-token-value"));
        assert!(!looks_like_jwt("a.b.c"));
    }

    #[test]
    fn keys_fit_their_algorithm_family() {
        let rsa = Jwk::parse(
            json!({"kty": "RSA", "n": b64(&[0, 1, 2]), "e": b64(&[1, 0, 1]), "alg": "RS256"})
                .as_object()
                .unwrap(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            rsa.key,
            PublicKey::Rsa {
                n: vec![1, 2],
                e: vec![1, 0, 1]
            }
        );
        assert!(rsa.fits(Alg::Rs256));
        assert!(!rsa.fits(Alg::Ps256), "pinned to RS256");
        assert!(!rsa.fits(Alg::Es256));
        let (_, ec) = ec_key("k");
        assert!(ec.fits(Alg::Es256) && !ec.fits(Alg::Es384) && !ec.fits(Alg::Rs256));
        let skip = |v: Value| Jwk::parse(v.as_object().unwrap()).unwrap().is_none();
        assert!(skip(json!({"kty": "oct", "k": "c2VjcmV0"})));
        assert!(skip(
            json!({"kty": "RSA", "use": "enc", "n": "AQ", "e": "AQAB"})
        ));
        assert!(skip(json!({"kty": "EC", "crv": "P-521", "x": "", "y": ""})));
        let bad = json!({"kty": "EC", "crv": "P-256", "x": "AQ", "y": "AQ"});
        assert!(Jwk::parse(bad.as_object().unwrap()).is_err());
    }
}
