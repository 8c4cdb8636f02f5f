//! Why authorization failed.

use std::time::Duration;

use http::{Method, StatusCode};

use super::challenge::ChallengeError;

/// A failure of the OAuth flow. The request that triggered the flow fails with it (the HTTP
/// transport quotes it in the JSON-RPC error the caller gets).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OAuthError {
    /// The configuration cannot work.
    #[error("invalid OAuth configuration: {0}")]
    InvalidConfig(String),
    /// A URL (configured or read from metadata) is unusable.
    #[error("invalid {what} {url:?}: {reason}")]
    InvalidUrl {
        /// Which URL.
        what: &'static str,
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server's `WWW-Authenticate` header is malformed.
    #[error(transparent)]
    Challenge(#[from] ChallengeError),
    /// The server answered `401` but asks for an authentication scheme other than Bearer.
    #[error("the server asks for {schemes:?} authentication, not Bearer (OAuth)")]
    NotBearer {
        /// The schemes of its challenges.
        schemes: Vec<String>,
    },
    /// A request to a metadata, registration or token endpoint got no answer.
    #[error("{method} {url} failed: {reason}")]
    Http {
        /// The request's method.
        method: Method,
        /// Where it went.
        url: String,
        /// Why it failed.
        reason: String,
    },
    /// An answer had a status the flow cannot use.
    #[error("{what}: HTTP {status} from {url}{}", quote(.body))]
    Status {
        /// What was asked for.
        what: &'static str,
        /// Where.
        url: String,
        /// The status.
        status: StatusCode,
        /// The start of the body.
        body: String,
    },
    /// An answer is not the JSON document expected.
    #[error("the answer of {url} is not the expected JSON: {reason}")]
    InvalidJson {
        /// Where it came from.
        url: String,
        /// What the JSON parser said.
        reason: String,
    },
    /// No metadata document was found at any of the well-known URIs.
    #[error("no {what} found (tried {})", .tried.join(", "))]
    MetadataNotFound {
        /// Which metadata.
        what: &'static str,
        /// Each URL tried, with its status.
        tried: Vec<String>,
    },
    /// The protected resource metadata names no authorization server.
    #[error("the protected resource metadata at {url} names no authorization server")]
    NoAuthorizationServer {
        /// Where the metadata came from.
        url: String,
    },
    /// The protected resource metadata is about another resource than the MCP endpoint.
    #[error(
        "the protected resource metadata is for {resource:?}, which does not cover the MCP \
         server {server}: refusing to authorize for it"
    )]
    ResourceMismatch {
        /// The `resource` of the metadata.
        resource: String,
        /// The MCP endpoint.
        server: String,
    },
    /// The authorization server metadata names another issuer than the one looked up
    /// (RFC 8414 section 3.3): it is not used.
    #[error(
        "the authorization server metadata at {url} is for issuer {found:?}, not {expected:?}: \
         refusing to use it"
    )]
    IssuerMismatch {
        /// The metadata URL.
        url: String,
        /// The issuer looked up.
        expected: String,
        /// The issuer in the document.
        found: String,
    },
    /// The authorization server metadata lacks an endpoint the grant needs.
    #[error("the metadata of authorization server {issuer} has no {endpoint}")]
    MissingEndpoint {
        /// The server.
        issuer: String,
        /// The missing field.
        endpoint: &'static str,
    },
    /// The authorization server does not advertise PKCE with `S256`.
    #[error(
        "authorization server {issuer} does not advertise PKCE with S256 \
         (code_challenge_methods_supported): refusing the authorization code grant"
    )]
    PkceUnsupported {
        /// The server.
        issuer: String,
    },
    /// The authorization server does not support the configured grant.
    #[error("authorization server {issuer} does not support the {grant} grant")]
    GrantUnsupported {
        /// The server.
        issuer: String,
        /// The grant type.
        grant: String,
    },
    /// No way to get a client id at the authorization server.
    #[error(
        "no client id for authorization server {issuer}: it offers neither dynamic \
         registration nor client ID metadata documents, and no client is pre-registered"
    )]
    NoRegistration {
        /// The server.
        issuer: String,
    },
    /// Pre-registered credentials belong to another authorization server.
    #[error(
        "the pre-registered client {client_id:?} belongs to authorization server {bound}, but \
         the MCP server now uses {issuer}"
    )]
    ClientIssuerMismatch {
        /// The client id.
        client_id: String,
        /// The issuer it was registered with.
        bound: String,
        /// The issuer the metadata names.
        issuer: String,
    },
    /// Dynamic client registration was refused.
    #[error("client registration at {url} refused (HTTP {status}){}", oauth_error(.error, .description))]
    Registration {
        /// The registration endpoint.
        url: String,
        /// The status.
        status: StatusCode,
        /// The OAuth error code, if any.
        error: Option<String>,
        /// Its description, or the start of the body.
        description: Option<String>,
    },
    /// The redirect handler failed.
    #[error("the authorization redirect failed: {0}")]
    Redirect(String),
    /// The redirect handler did not finish in time.
    #[error("the authorization was not completed within {0:?}")]
    RedirectTimeout(Duration),
    /// The callback cannot be read.
    #[error("invalid authorization callback: {0}")]
    Callback(String),
    /// The callback's `state` is not the one sent.
    #[error("the authorization callback's state does not match the request's (possible CSRF)")]
    StateMismatch,
    /// The callback's `iss` is not the authorization server's issuer (RFC 9207).
    #[error(
        "the authorization response comes from issuer {found:?}, not {expected:?} (RFC 9207): \
         its code is not used"
    )]
    IssMismatch {
        /// The issuer recorded before redirecting.
        expected: String,
        /// The callback's `iss`.
        found: String,
    },
    /// The authorization server advertises `iss` in responses but the callback has none.
    #[error(
        "authorization server {issuer} advertises the iss parameter but the authorization \
         response has none (RFC 9207): its code is not used"
    )]
    IssMissing {
        /// The server.
        issuer: String,
    },
    /// The authorization server answered the authorization request with an error.
    #[error("the authorization server refused: {error}{}", paren(.description))]
    AuthorizationDenied {
        /// The OAuth error code.
        error: String,
        /// Its description.
        description: Option<String>,
    },
    /// The token endpoint refused a request.
    #[error("the token request ({grant}) to {url} failed with HTTP {status}{}", oauth_error(.error, .description))]
    TokenEndpoint {
        /// The token endpoint.
        url: String,
        /// The grant type.
        grant: String,
        /// The status.
        status: StatusCode,
        /// The OAuth error code, if any.
        error: Option<String>,
        /// Its description, or the start of the body.
        description: Option<String>,
    },
    /// The token response is unusable.
    #[error("invalid token response: {0}")]
    InvalidTokenResponse(String),
    /// The server refuses a token obtained for this very request.
    #[error("the server answered HTTP {status} to a token obtained for this request")]
    Rejected {
        /// The status.
        status: StatusCode,
    },
    /// The server asks for scopes the token already holds.
    #[error("the server refuses the token for lack of scopes {scopes:?}, which it already holds")]
    ScopeRefused {
        /// The scopes challenged.
        scopes: Vec<String>,
    },
    /// Step-up authorization was tried as often as allowed.
    #[error("the server still asks for scopes {scopes:?} after {attempts} step-up authorizations")]
    StepUpExhausted {
        /// The scopes last challenged.
        scopes: Vec<String>,
        /// How many step-ups were made.
        attempts: u32,
    },
    /// The assertion source failed.
    #[error("no assertion for the JWT bearer grant: {0}")]
    Assertion(String),
    /// The token store failed.
    #[error("token store {path}: {reason}")]
    Store {
        /// Where it is.
        path: String,
        /// What failed.
        reason: String,
    },
    /// The OS random source failed.
    #[error("no random bytes for the OAuth flow: {0}")]
    Random(String),
    /// Signing failed.
    #[error("cryptography failed: {0}")]
    Crypto(String),
}

/// `": body"`, or nothing.
fn quote(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

/// `" (text)"`, or nothing.
fn paren(text: &Option<String>) -> String {
    text.as_ref().map(|t| format!(" ({t})")).unwrap_or_default()
}

/// `": error (description)"`, `": description"`, or nothing.
fn oauth_error(error: &Option<String>, description: &Option<String>) -> String {
    match (error, description) {
        (Some(e), d) => format!(": {e}{}", paren(d)),
        (None, Some(d)) if !d.is_empty() => format!(": {d}"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_problem() {
        let e = OAuthError::TokenEndpoint {
            url: "http://as/token".into(),
            grant: "authorization_code".into(),
            status: StatusCode::BAD_REQUEST,
            error: Some("invalid_grant".into()),
            description: Some("code expired".into()),
        };
        assert_eq!(
            e.to_string(),
            "the token request (authorization_code) to http://as/token failed with HTTP 400 Bad \
             Request: invalid_grant (code expired)"
        );
        let e = OAuthError::MetadataNotFound {
            what: "protected resource metadata",
            tried: vec![
                "http://h/a (404 Not Found)".into(),
                "http://h/b (404 Not Found)".into(),
            ],
        };
        assert!(
            e.to_string()
                .ends_with("(tried http://h/a (404 Not Found), http://h/b (404 Not Found))")
        );
        let e = OAuthError::Registration {
            url: "u".into(),
            status: StatusCode::FORBIDDEN,
            error: None,
            description: Some(String::new()),
        };
        assert_eq!(
            e.to_string(),
            "client registration at u refused (HTTP 403 Forbidden)"
        );
    }
}
