//! DPoP (RFC 9449, MCP's SEP-1932 extension): sender-constrained tokens. The client holds a
//! P-256 key; each token request and each request to the MCP server carries a fresh proof JWT
//! signed with it (`typ` `dpop+jwt`, the public key in `jwk`, the method `htm` and URL `htu`,
//! a unique `jti`, `iat`, the server's `nonce` when it asked for one, and for the MCP server the
//! access token's hash `ath`), and the token is presented as `Authorization: DPoP <token>`.
//!
//! DPoP is used when [`OAuthConfig::dpop`](super::OAuthConfig::dpop) allows it, the
//! authorization server lists ES256 in `dpop_signing_alg_values_supported`, and the MCP server
//! takes DPoP (it challenged with the `DPoP` scheme, or its metadata lists DPoP algorithms or
//! requires bound tokens). The key is kept with the tokens in the token store: a token bound to
//! a lost key is worthless.

use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use super::OAuthError;
use super::jwt::{SigningKey, unix_now};
use super::pkce::random_token;
use crate::util::lock;

/// The one proof algorithm this client signs with.
const ALG: &str = "ES256";

/// The DPoP key of a transport and the last nonces its servers gave.
pub(crate) struct Dpop {
    key: SigningKey,
    jwk: Value,
    /// The PKCS#8 document of the key, base64url, as the token store keeps it.
    stored: String,
    /// The authorization server's last nonce (RFC 9449 section 8).
    as_nonce: Mutex<Option<String>>,
    /// The MCP server's last nonce (RFC 9449 section 9).
    rs_nonce: Mutex<Option<String>>,
}

impl std::fmt::Debug for Dpop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dpop")
            .field("jwk", &self.jwk)
            .finish_non_exhaustive()
    }
}

impl Dpop {
    /// A fresh key.
    pub(crate) fn generate() -> Result<Dpop, OAuthError> {
        let (key, pkcs8) = SigningKey::generate()?;
        Ok(Dpop::with(key, URL_SAFE_NO_PAD.encode(pkcs8)))
    }

    /// The key the token store kept.
    pub(crate) fn from_stored(stored: &str) -> Result<Dpop, OAuthError> {
        let der = URL_SAFE_NO_PAD.decode(stored).map_err(|e| {
            OAuthError::Crypto(format!("the stored DPoP key is not base64url: {e}"))
        })?;
        Ok(Dpop::with(
            SigningKey::from_pkcs8_der(&der)?,
            stored.to_owned(),
        ))
    }

    fn with(key: SigningKey, stored: String) -> Dpop {
        Dpop {
            jwk: key.public_jwk(),
            key,
            stored,
            as_nonce: Mutex::default(),
            rs_nonce: Mutex::default(),
        }
    }

    /// The key as the token store keeps it.
    pub(crate) fn stored(&self) -> &str {
        &self.stored
    }

    /// Whether a server's list of DPoP algorithms includes the one this client signs with.
    pub(crate) fn supported(algorithms: Option<&[String]>) -> bool {
        algorithms.is_some_and(|algs| algs.iter().any(|a| a == ALG))
    }

    /// A proof for `method` on `url`: for a token request (`access_token` none, the
    /// authorization server's nonce) or a request to the MCP server (with `ath`, its nonce).
    pub(crate) fn proof(
        &self,
        method: &str,
        url: &Url,
        access_token: Option<&str>,
    ) -> Result<String, OAuthError> {
        let nonce = match access_token {
            Some(_) => lock(&self.rs_nonce).clone(),
            None => lock(&self.as_nonce).clone(),
        };
        let mut claims = json!({
            "jti": random_token(16)?,
            "htm": method,
            "htu": htu(url),
            "iat": unix_now(),
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        if let Some(token) = access_token {
            claims["ath"] = json!(URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes())));
        }
        let header = json!({"typ": "dpop+jwt", "jwk": self.jwk});
        self.key.sign(header, &claims)
    }

    /// Records a nonce the authorization server gave.
    pub(crate) fn set_as_nonce(&self, nonce: &str) {
        *lock(&self.as_nonce) = Some(nonce.to_owned());
    }

    /// Records a nonce the MCP server gave; returns whether it is a new one.
    pub(crate) fn set_rs_nonce(&self, nonce: &str) -> bool {
        let mut current = lock(&self.rs_nonce);
        let new = current.as_deref() != Some(nonce);
        *current = Some(nonce.to_owned());
        new
    }
}

/// The `htu` of a request to `url`: the URL without query and fragment (RFC 9449 section 4.2).
fn htu(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(jwt: &str, i: usize) -> Value {
        let bytes = URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(i).unwrap())
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn proofs_carry_what_rfc_9449_asks() {
        let dpop = Dpop::generate().unwrap();
        let url = Url::parse("http://localhost:3000/mcp?x=1#f").unwrap();
        let first = dpop.proof("POST", &url, Some("tok")).unwrap();
        let second = dpop.proof("POST", &url, Some("tok")).unwrap();
        let header = part(&first, 0);
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["jwk"]["crv"], "P-256");
        let claims = part(&first, 1);
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["htu"], "http://localhost:3000/mcp");
        assert_eq!(
            claims["ath"],
            URL_SAFE_NO_PAD.encode(Sha256::digest(b"tok")).as_str()
        );
        assert!(claims.get("nonce").is_none());
        assert_ne!(
            claims["jti"],
            part(&second, 1)["jti"],
            "a fresh jti each time"
        );
        assert!(dpop.set_rs_nonce("n1") && !dpop.set_rs_nonce("n1"));
        assert_eq!(
            part(&dpop.proof("GET", &url, Some("t")).unwrap(), 1)["nonce"],
            "n1"
        );
        let token_request = part(&dpop.proof("POST", &url, None).unwrap(), 1);
        assert!(token_request.get("nonce").is_none() && token_request.get("ath").is_none());
        dpop.set_as_nonce("a1");
        assert_eq!(
            part(&dpop.proof("POST", &url, None).unwrap(), 1)["nonce"],
            "a1"
        );
        let kept = Dpop::from_stored(dpop.stored()).unwrap();
        assert_eq!(kept.jwk, dpop.jwk);
        assert!(Dpop::from_stored("%%%").is_err());
        assert!(Dpop::supported(Some(&["RS256".into(), "ES256".into()])));
        assert!(!Dpop::supported(Some(&["RS256".into()])) && !Dpop::supported(None));
    }
}
