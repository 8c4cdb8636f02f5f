//! Who a request is (docs/auth.md): its bearer token, checked against the static tokens and
//! then the OAuth resource server; the answer to a request that is refused; and a
//! handshake-era session held to the subject that opened it, on every replica.

// The error side of these checks is the HTTP response itself.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::body::Body;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use mcpbus_proto::error_codes;

use super::session::HttpSession;
use super::{HttpInner, wire};
use crate::server::Identity;
use crate::server::auth::Authorization;
use crate::server::oauth::{ResourceServer, TokenError};

/// The identity a request's credential proves: `Ok(None)` for a request without one on a
/// server that serves such requests, `Err` with the answer for a refused one.
pub(super) async fn authenticate(
    http: &HttpInner,
    headers: &HeaderMap,
) -> Result<Option<Arc<Identity>>, Response<Body>> {
    let header = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    let tokens = http.server.bearer_tokens();
    let Some(oauth) = http.server.resource_server() else {
        // Static tokens only (docs/protocol.md 3.6.1): no header is served as before.
        return match tokens.authorize(header) {
            Authorization::Anonymous => Ok(None),
            Authorization::Principal(identity) => Ok(Some(identity)),
            Authorization::Refused => Err(unknown_token()),
        };
    };
    // OAuth: every request needs a credential, and the flow starts with this 401.
    let Some(token) = header.and_then(bearer_token) else {
        return Err(refusal(oauth, None));
    };
    if let Some(identity) = tokens.identity(token) {
        return Ok(Some(identity));
    }
    match oauth.verify(token).await {
        Ok(identity) => Ok(Some(Arc::new(identity))),
        Err(e) => {
            tracing::debug!(error = %e, "bearer token refused");
            Err(refusal(oauth, Some(&e)))
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case).
fn bearer_token(header: &[u8]) -> Option<&str> {
    let (scheme, token) = std::str::from_utf8(header).ok()?.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Refuses a request whose session belongs to another subject (or to a subject, when the
/// request proves none): a session is its initializer's, on every replica.
pub(super) fn check_owner(
    http: &HttpInner,
    session: &HttpSession,
    caller: Option<&Identity>,
) -> Result<(), Response<Body>> {
    let Some(owner) = &session.identity else {
        return Ok(());
    };
    match caller {
        Some(caller) if caller.subject == owner.subject => Ok(()),
        Some(_) => Err(wire::error(
            StatusCode::FORBIDDEN,
            error_codes::INVALID_REQUEST,
            "this session belongs to another subject: send the token of the subject that \
             initialized it, or initialize a session of your own",
        )),
        None => {
            let mut response = wire::error(
                StatusCode::UNAUTHORIZED,
                error_codes::INVALID_REQUEST,
                "this session belongs to an authenticated subject: send its bearer token",
            );
            let challenge = match http.server.resource_server() {
                Some(oauth) => oauth.challenge(None),
                None => "Bearer".to_owned(),
            };
            set_challenge(&mut response, &challenge);
            Err(response)
        }
    }
}

/// `401` for a credential the server does not accept, on a server with static tokens only.
fn unknown_token() -> Response<Body> {
    let mut response = wire::error(
        StatusCode::UNAUTHORIZED,
        error_codes::INVALID_REQUEST,
        "unknown bearer token",
    );
    set_challenge(&mut response, "Bearer");
    response
}

/// The answer to a request the resource server refuses: `401` (no token, or an invalid one) or
/// `403` (missing scopes) with the challenge, `503` when the authorization server could not be
/// asked. The body is a JSON-RPC error, as every error of the endpoint.
pub(super) fn refusal(oauth: &ResourceServer, error: Option<&TokenError>) -> Response<Body> {
    let Some(error) = error else {
        let mut response = wire::error(
            StatusCode::UNAUTHORIZED,
            error_codes::INVALID_REQUEST,
            "this server needs an OAuth access token (Authorization: Bearer); its metadata \
             names the authorization server",
        );
        set_challenge(&mut response, &oauth.challenge(None));
        return response;
    };
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        return wire::error(
            status,
            error_codes::INTERNAL_ERROR,
            format!("cannot verify the access token now: {error}"),
        );
    }
    let mut response = wire::error(status, error_codes::INVALID_REQUEST, error.to_string());
    set_challenge(&mut response, &oauth.challenge(Some(error)));
    response
}

fn set_challenge(response: &mut Response<Body>, challenge: &str) {
    let value =
        HeaderValue::from_str(challenge).unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_in_any_case() {
        assert_eq!(bearer_token(b"Bearer abc"), Some("abc"));
        assert_eq!(bearer_token(b"bearer  abc "), Some("abc"));
        assert_eq!(bearer_token(b"Basic abc"), None);
        assert_eq!(bearer_token(b"Bearer"), None);
        assert_eq!(bearer_token(b"\xff abc"), None);
    }
}
