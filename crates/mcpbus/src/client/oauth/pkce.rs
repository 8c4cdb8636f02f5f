//! PKCE (RFC 7636) with the `S256` method, and the random values of an authorization request.
//!
//! Secrets come from the OS random source only: unlike the crate's other random ids, a code
//! verifier or a `state` guessed from the clock would defeat its purpose, so a failing source
//! is an error rather than a fallback.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::OAuthError;

/// A PKCE code verifier that breaks RFC 7636 section 4.1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    /// Fewer than 43 or more than 128 characters.
    #[error("a PKCE code verifier has 43 to 128 characters, this one has {0}")]
    Length(usize),
    /// A character outside `[A-Za-z0-9-._~]`.
    #[error("a PKCE code verifier may only hold A-Z a-z 0-9 - . _ ~, not {0:?}")]
    Character(char),
}

/// A code verifier and its `S256` challenge.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Pkce {
    /// Sent with the token request; kept secret until then.
    pub(crate) verifier: String,
    /// `BASE64URL(SHA256(verifier))`, sent with the authorization request.
    pub(crate) challenge: String,
}

impl std::fmt::Debug for Pkce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkce")
            .field("challenge", &self.challenge)
            .finish_non_exhaustive()
    }
}

impl Pkce {
    /// A fresh verifier of 32 random bytes (43 characters), and its challenge.
    pub(crate) fn generate() -> Result<Pkce, OAuthError> {
        Pkce::from_verifier(random_token(32)?).map_err(|e| OAuthError::Random(e.to_string()))
    }

    /// The pair for a given verifier, which must satisfy RFC 7636 section 4.1.
    pub(crate) fn from_verifier(verifier: String) -> Result<Pkce, PkceError> {
        validate_verifier(&verifier)?;
        let challenge = s256_challenge(&verifier);
        Ok(Pkce {
            verifier,
            challenge,
        })
    }
}

/// Checks a code verifier against RFC 7636 section 4.1.
pub fn validate_verifier(verifier: &str) -> Result<(), PkceError> {
    if let Some(bad) = verifier
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-._~".contains(*c)))
    {
        return Err(PkceError::Character(bad));
    }
    if !(43..=128).contains(&verifier.len()) {
        return Err(PkceError::Length(verifier.len()));
    }
    Ok(())
}

/// The `S256` code challenge of `verifier`: `BASE64URL(SHA256(ASCII(verifier)))`.
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// `n` bytes from the OS random source, base64url-encoded without padding.
pub(crate) fn random_token(n: usize) -> Result<String, OAuthError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| OAuthError::Random(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            s256_challenge(verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let pkce = Pkce::from_verifier(verifier.to_owned()).unwrap();
        assert_eq!(
            pkce.challenge,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(
            !format!("{pkce:?}").contains(verifier),
            "the verifier stays out of logs"
        );
    }

    #[test]
    fn generated_verifiers_are_valid_and_distinct() {
        let a = Pkce::generate().unwrap();
        let b = Pkce::generate().unwrap();
        assert_eq!(a.verifier.len(), 43);
        validate_verifier(&a.verifier).unwrap();
        assert_ne!(a.verifier, b.verifier);
        assert_eq!(a.challenge, s256_challenge(&a.verifier));
        assert_eq!(random_token(16).unwrap().len(), 22);
    }

    #[test]
    fn bad_verifiers_are_refused_with_the_reason() {
        assert_eq!(validate_verifier("short"), Err(PkceError::Length(5)));
        assert_eq!(
            validate_verifier(&"a".repeat(129)),
            Err(PkceError::Length(129))
        );
        let with_space = format!("{} x", "a".repeat(50));
        assert_eq!(
            validate_verifier(&with_space),
            Err(PkceError::Character(' '))
        );
        let e = Pkce::from_verifier("a+b".repeat(20)).unwrap_err();
        assert!(e.to_string().contains("'+'"), "{e}");
        validate_verifier(&"a-._~Z9".repeat(7)).unwrap();
    }
}
