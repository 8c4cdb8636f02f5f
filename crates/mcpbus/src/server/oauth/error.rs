//! Why a credential was not accepted, and what the HTTP endpoint answers for it (docs/auth.md).

/// Why a bearer token was not accepted. Each kind maps to one HTTP answer
/// ([`status`](Self::status)): `401` with `error="invalid_token"` for a token that proves
/// nothing, `403` with `error="insufficient_scope"` for a valid token without the scopes
/// needed, `503` when the authorization server cannot be asked (a token is never accepted
/// without being checked).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// This verifier does not handle tokens of this shape: the next one of the chain is asked
    /// (at the end of the chain it is an invalid token).
    #[error("the token is not one this server knows")]
    Unrecognized,
    /// Not a well-formed token (e.g. a JWT that does not decode, or a refused algorithm).
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The signature does not verify with any key of the authorization server, or no key of
    /// its key set fits the token.
    #[error("the token's signature does not verify: {0}")]
    BadSignature(String),
    /// The token expired.
    #[error("the token has expired")]
    Expired,
    /// The token is not valid yet (`nbf`).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// Issued by another authorization server than the configured one.
    #[error("the token was issued by '{found}', not by this server's authorization server")]
    WrongIssuer {
        /// The `iss` the token names (empty when it names none).
        found: String,
    },
    /// Issued for another resource (RFC 8707): no `aud` names this server.
    #[error("the token was not issued for this resource (audience)")]
    WrongAudience,
    /// The authorization server says the token is not active (RFC 7662): revoked, expired, or
    /// unknown to it.
    #[error("the token is not active")]
    Inactive,
    /// A claim the server needs is missing or unusable (e.g. no `sub`, or no agent id claim).
    #[error("{0}")]
    Claim(String),
    /// A valid token without every scope required.
    #[error("the token lacks the scopes required: {}", required.join(" "))]
    InsufficientScope {
        /// Every scope the request needs (the challenge's `scope`).
        required: Vec<String>,
    },
    /// The authorization server could not be asked (metadata, keys or introspection): the
    /// client may retry later.
    #[error("the authorization server could not be reached: {0}")]
    Unavailable(String),
}

/// At most 64 characters of a value a token chose (a `kid`, an `iss`, an `alg`), for a
/// message that may end up in a response header.
pub(crate) fn clip(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

impl TokenError {
    /// The HTTP status of the answer: 401, 403 or 503.
    pub fn status(&self) -> u16 {
        match self {
            TokenError::InsufficientScope { .. } => 403,
            TokenError::Unavailable(_) => 503,
            _ => 401,
        }
    }

    /// The RFC 6750 error code of the `WWW-Authenticate` challenge, if there is one (none for
    /// an unreachable authorization server).
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            TokenError::InsufficientScope { .. } => Some("insufficient_scope"),
            TokenError::Unavailable(_) => None,
            _ => Some("invalid_token"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_answer() {
        assert_eq!(TokenError::Expired.status(), 401);
        assert_eq!(TokenError::Expired.error_code(), Some("invalid_token"));
        let scope = TokenError::InsufficientScope {
            required: vec!["a".into(), "b".into()],
        };
        assert_eq!(
            (scope.status(), scope.error_code()),
            (403, Some("insufficient_scope"))
        );
        assert_eq!(
            scope.to_string(),
            "the token lacks the scopes required: a b"
        );
        assert_eq!(clip(&"x".repeat(70)), format!("{}...", "x".repeat(64)));
        assert_eq!(clip("short"), "short");
        let down = TokenError::Unavailable("x".into());
        assert_eq!((down.status(), down.error_code()), (503, None));
    }
}
