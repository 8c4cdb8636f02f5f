//! Signed JWTs (RFC 7519) with ES256, for `private_key_jwt` client authentication (RFC 7523
//! section 2.2): the client proves who it is with a short-lived assertion signed by its key
//! instead of sending a secret.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::{Value, json};

use super::OAuthError;
use super::pkce::random_token;

/// The `client_assertion_type` of a JWT client assertion.
pub(crate) const JWT_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How long a client assertion is valid.
const ASSERTION_LIFETIME: u64 = 300;

/// A P-256 private key that signs JWTs with ES256 (the algorithm MCP's client credentials
/// extension names).
#[derive(Clone)]
pub struct SigningKey {
    pair: Arc<EcdsaKeyPair>,
    key_id: Option<String>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &"ES256")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads a PKCS#8 private key in PEM (`-----BEGIN PRIVATE KEY-----`); it must be a P-256
    /// key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<SigningKey, OAuthError> {
        use rustls::pki_types::PrivatePkcs8KeyDer;
        use rustls::pki_types::pem::PemObject;
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| {
            OAuthError::InvalidConfig(format!("the signing key is no PKCS#8 PEM key: {e}"))
        })?;
        SigningKey::from_pkcs8_der(der.secret_pkcs8_der())
    }

    /// Reads a DER-encoded PKCS#8 P-256 private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<SigningKey, OAuthError> {
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &SystemRandom::new())
                .map_err(|e| {
                OAuthError::InvalidConfig(format!(
                    "the signing key is not a usable P-256 (ES256) PKCS#8 key: {e}"
                ))
            })?;
        Ok(SigningKey {
            pair: Arc::new(pair),
            key_id: None,
        })
    }

    /// A fresh P-256 key, and its PKCS#8 document (to keep it).
    pub(crate) fn generate() -> Result<(SigningKey, Vec<u8>), OAuthError> {
        let rng = SystemRandom::new();
        let document = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| OAuthError::Crypto("generating a P-256 key failed".into()))?;
        let key = SigningKey::from_pkcs8_der(document.as_ref())?;
        Ok((key, document.as_ref().to_vec()))
    }

    /// The public key as a JWK (RFC 7517; `kty` `EC`, `crv` `P-256`).
    pub(crate) fn public_jwk(&self) -> Value {
        use ring::signature::KeyPair;
        // An uncompressed P-256 point: 0x04, then x and y (32 bytes each).
        let point = self.pair.public_key().as_ref();
        let (x, y) = point
            .get(1..)
            .unwrap_or_default()
            .split_at(point.len().saturating_sub(1) / 2);
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(x),
            "y": URL_SAFE_NO_PAD.encode(y),
        })
    }

    /// Names the key in the JWT header (`kid`), for servers that know several keys.
    pub fn with_key_id(mut self, key_id: impl Into<String>) -> Self {
        self.key_id = Some(key_id.into());
        self
    }

    /// `header.claims.signature`, the header completed with `alg` (and `kid`).
    pub(crate) fn sign(&self, mut header: Value, claims: &Value) -> Result<String, OAuthError> {
        header["alg"] = json!("ES256");
        if let Some(kid) = &self.key_id {
            header["kid"] = json!(kid);
        }
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .map_err(|_| OAuthError::Crypto("signing the JWT failed".into()))?;
        Ok(format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }

    /// A client assertion (RFC 7523 section 3): `iss` and `sub` the client id, `aud` the
    /// authorization server's issuer, valid for five minutes, with a random `jti`.
    pub(crate) fn client_assertion(
        &self,
        client_id: &str,
        audience: &str,
    ) -> Result<String, OAuthError> {
        let now = unix_now();
        let claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
            "jti": random_token(16)?,
        });
        self.sign(json!({"typ": "JWT"}), &claims)
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_FIXED, KeyPair, UnparsedPublicKey};

    fn generated() -> (SigningKey, Vec<u8>) {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = SigningKey::from_pkcs8_der(doc.as_ref()).unwrap();
        let public = key.pair.public_key().as_ref().to_vec();
        (key, public)
    }

    fn part(jwt: &str, i: usize) -> Value {
        let bytes = URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(i).unwrap())
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn client_assertions_verify_with_the_public_key() {
        let (key, public) = generated();
        let key = key.with_key_id("k1");
        let jwt = key
            .client_assertion("client", "https://as.example")
            .unwrap();
        let header = part(&jwt, 0);
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], "k1");
        let claims = part(&jwt, 1);
        assert_eq!(claims["iss"], "client");
        assert_eq!(claims["sub"], "client");
        assert_eq!(claims["aud"], "https://as.example");
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            300
        );
        let (input, signature) = jwt.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public)
            .verify(input.as_bytes(), &signature)
            .unwrap();
        assert!(!format!("{key:?}").contains("pair"));
    }

    #[test]
    fn generated_keys_publish_their_point_as_a_jwk() {
        let (key, pkcs8) = SigningKey::generate().unwrap();
        let again = SigningKey::from_pkcs8_der(&pkcs8).unwrap();
        let jwk = key.public_jwk();
        assert_eq!(jwk, again.public_jwk());
        assert_eq!(jwk["kty"], "EC");
        for c in ["x", "y"] {
            let bytes = URL_SAFE_NO_PAD.decode(jwk[c].as_str().unwrap()).unwrap();
            assert_eq!(bytes.len(), 32, "{c}");
        }
        assert!(jwk.get("d").is_none(), "no private part");
    }

    #[test]
    fn bad_keys_are_refused() {
        let e = SigningKey::from_pkcs8_pem("not a key").unwrap_err();
        assert!(e.to_string().contains("PKCS#8 PEM"), "{e}");
        let e = SigningKey::from_pkcs8_der(b"garbage").unwrap_err();
        assert!(e.to_string().contains("P-256"), "{e}");
    }
}
