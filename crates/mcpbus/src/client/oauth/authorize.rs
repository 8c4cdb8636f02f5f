//! The authorization code grant's front channel: the authorization URL (with PKCE, `state` and
//! the RFC 8707 `resource`), the application's [`RedirectHandler`] that takes the user there
//! and brings back the callback, and the validation of that callback (`iss` per RFC 9207,
//! `state`, errors) before its code may go to a token endpoint.

use std::future::Future;

use futures::future::BoxFuture;
use url::Url;

use super::OAuthError;
use super::discovery::AuthorizationServerMetadata;

/// What a [`RedirectHandler`] is asked to do: send the user to `url` and bring back where the
/// authorization server redirected to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    /// The authorization URL to open (in a browser, usually).
    pub url: String,
    /// The redirect URI it names; the server sends the user agent there with the result.
    pub redirect_uri: String,
    /// The `state` the callback must carry (checked by the client; given for handlers that
    /// wait for several callbacks on one listener).
    pub state: String,
}

/// Takes the user through authorization: given the authorization URL, returns the callback:
/// the whole URL the authorization server redirected to (`http://127.0.0.1:PORT/cb?code=…`),
/// or just its query (`code=…&state=…`). An `Err` stops the flow with that message.
///
/// Closures `Fn(AuthorizationRequest) -> impl Future<Output = Result<String, String>>`
/// implement it.
pub trait RedirectHandler: Send + Sync + 'static {
    /// Runs one authorization.
    fn authorize(
        &self,
        request: AuthorizationRequest,
    ) -> BoxFuture<'static, Result<String, String>>;
}

impl<F, Fut> RedirectHandler for F
where
    F: Fn(AuthorizationRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, String>> + Send + 'static,
{
    fn authorize(
        &self,
        request: AuthorizationRequest,
    ) -> BoxFuture<'static, Result<String, String>> {
        Box::pin(self(request))
    }
}

/// The parameters of one authorization request.
pub(crate) struct AuthorizationParams<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) redirect_uri: &'a str,
    pub(crate) code_challenge: &'a str,
    pub(crate) state: &'a str,
    pub(crate) scopes: &'a [String],
    pub(crate) resource: &'a str,
}

/// The authorization URL: the endpoint with the request's parameters added to its own query.
pub(crate) fn authorization_url(endpoint: &Url, params: &AuthorizationParams<'_>) -> Url {
    let mut url = endpoint.clone();
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", params.client_id)
            .append_pair("redirect_uri", params.redirect_uri)
            .append_pair("code_challenge", params.code_challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", params.state);
        if !params.scopes.is_empty() {
            query.append_pair("scope", &params.scopes.join(" "));
        }
        query.append_pair("resource", params.resource);
    }
    url
}

/// The parameters of a callback, from a whole URL or from its query alone.
fn callback_params(callback: &str) -> Result<Vec<(String, String)>, OAuthError> {
    let callback = callback.trim();
    // A whole URL starts with a scheme; a query may hold `://` only inside its values.
    let is_url = callback.find("://").is_some_and(|i| {
        let scheme = &callback[..i];
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    let query = if is_url {
        let url = Url::parse(callback).map_err(|e| {
            OAuthError::Callback(format!("the callback {callback:?} is no URL: {e}"))
        })?;
        url.query().unwrap_or("").to_owned()
    } else {
        callback.trim_start_matches('?').to_owned()
    };
    Ok(url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect())
}

/// Validates a callback and returns its authorization code. In order: the `iss` parameter
/// against the issuer recorded before redirecting (RFC 9207 section 2.4: simple string
/// comparison; a missing `iss` is refused only when the server advertises it), then `state`,
/// then an error response, then the code.
pub(crate) fn read_callback(
    callback: &str,
    state: &str,
    meta: &AuthorizationServerMetadata,
) -> Result<String, OAuthError> {
    let params = callback_params(callback)?;
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match get("iss") {
        Some(iss) if iss != meta.issuer => {
            return Err(OAuthError::IssMismatch {
                expected: meta.issuer.clone(),
                found: iss.to_owned(),
            });
        }
        None if meta.authorization_response_iss_parameter_supported => {
            return Err(OAuthError::IssMissing {
                issuer: meta.issuer.clone(),
            });
        }
        _ => {}
    }
    if get("state") != Some(state) {
        return Err(OAuthError::StateMismatch);
    }
    if let Some(error) = get("error") {
        return Err(OAuthError::AuthorizationDenied {
            error: error.to_owned(),
            description: get("error_description").map(str::to_owned),
        });
    }
    match get("code") {
        Some(code) if !code.is_empty() => Ok(code.to_owned()),
        _ => Err(OAuthError::Callback(
            "the callback carries neither a code nor an error".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(iss_supported: bool) -> AuthorizationServerMetadata {
        AuthorizationServerMetadata {
            issuer: "http://localhost:3001".into(),
            authorization_response_iss_parameter_supported: iss_supported,
            ..Default::default()
        }
    }

    #[test]
    fn the_authorization_url_keeps_the_endpoint_query() {
        let endpoint = Url::parse("https://as.example/authorize?tenant=a").unwrap();
        let scopes = ["mcp:read".to_owned(), "mcp:write".to_owned()];
        let url = authorization_url(
            &endpoint,
            &AuthorizationParams {
                client_id: "https://client.example/meta.json",
                redirect_uri: "http://127.0.0.1:9/cb",
                code_challenge: "abc",
                state: "xyz",
                scopes: &scopes,
                resource: "http://localhost:3000/mcp",
            },
        );
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("tenant"), Some("a"));
        assert_eq!(get("response_type"), Some("code"));
        assert_eq!(get("code_challenge_method"), Some("S256"));
        assert_eq!(get("scope"), Some("mcp:read mcp:write"));
        assert_eq!(get("resource"), Some("http://localhost:3000/mcp"));
        assert_eq!(get("client_id"), Some("https://client.example/meta.json"));
        let none = authorization_url(
            &endpoint,
            &AuthorizationParams {
                scopes: &[],
                client_id: "c",
                redirect_uri: "r",
                code_challenge: "c",
                state: "s",
                resource: "r",
            },
        );
        assert!(!none.as_str().contains("scope="));
    }

    #[test]
    fn callbacks_are_validated_in_order() {
        let ok = "http://127.0.0.1:1/cb?code=c1&state=s&iss=http%3A%2F%2Flocalhost%3A3001";
        assert_eq!(read_callback(ok, "s", &meta(true)).unwrap(), "c1");
        assert_eq!(
            read_callback("?code=c2&state=s", "s", &meta(false)).unwrap(),
            "c2"
        );
        assert_eq!(
            read_callback("code=c3&state=s", "s", &meta(false)).unwrap(),
            "c3"
        );
        let e = read_callback("code=c&state=s", "s", &meta(true)).unwrap_err();
        assert!(matches!(e, OAuthError::IssMissing { .. }), "{e}");
        let e = read_callback(
            "code=c&state=s&iss=https://evil.example.com",
            "s",
            &meta(false),
        )
        .unwrap_err();
        assert!(matches!(e, OAuthError::IssMismatch { .. }), "{e}");
        let normalized = "code=c&state=s&iss=http%3A%2F%2Flocalhost%3A3001%2F";
        let e = read_callback(normalized, "s", &meta(true)).unwrap_err();
        assert!(matches!(e, OAuthError::IssMismatch { .. }), "{e}");
        let e = read_callback("code=c&state=other", "s", &meta(false)).unwrap_err();
        assert!(matches!(e, OAuthError::StateMismatch), "{e}");
        let e = read_callback(
            "error=access_denied&error_description=no&state=s",
            "s",
            &meta(false),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the authorization server refused: access_denied (no)"
        );
        let e = read_callback("state=s", "s", &meta(false)).unwrap_err();
        assert!(e.to_string().contains("neither a code"), "{e}");
        let e = read_callback("http://[bad", "s", &meta(false)).unwrap_err();
        assert!(e.to_string().contains("no URL"), "{e}");
    }
}
