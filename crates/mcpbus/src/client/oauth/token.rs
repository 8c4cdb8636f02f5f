//! Token requests (RFC 6749 section 4, OAuth 2.1 section 4.3): one POST to the token endpoint
//! with the grant's parameters and the client authentication, read into [`Tokens`].

use serde::Deserialize;
use serde_json::Value;

use super::OAuthError;
use super::agent::Agent;
use super::challenge::split_scope;
use super::discovery::AuthorizationServerMetadata;
use super::jwt::unix_now;
use super::registration::ClientIdentity;
use super::store::Tokens;

/// A successful token response (RFC 6749 section 5.1).
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    token_type: String,
    /// A number per the RFC; some servers send a string.
    #[serde(default)]
    expires_in: Option<Value>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

/// One token request.
pub(crate) struct TokenRequest<'a> {
    /// The grant's parameters (`grant_type` first).
    pub(crate) form: Vec<(String, String)>,
    /// The scopes asked for, kept as the granted ones when the answer does not list any.
    pub(crate) scopes: &'a [String],
    /// The refresh token to keep when the answer brings no new one (refresh grant).
    pub(crate) previous_refresh: Option<String>,
}

impl TokenRequest<'_> {
    /// Adds a parameter.
    pub(crate) fn param(mut self, name: &str, value: impl Into<String>) -> Self {
        self.form.push((name.to_owned(), value.into()));
        self
    }
}

/// Sends `request` to the token endpoint of `meta`, authenticated as `client`.
pub(crate) async fn request_tokens(
    agent: &Agent,
    meta: &AuthorizationServerMetadata,
    client: &ClientIdentity,
    request: TokenRequest<'_>,
) -> Result<Tokens, OAuthError> {
    let url = meta.token_endpoint()?;
    let mut form = request.form;
    let mut headers = Vec::new();
    client.authenticate(&meta.issuer, &mut form, &mut headers)?;
    let grant = form.first().map(|(_, v)| v.clone()).unwrap_or_default();
    let answer = agent.post_form(&url, &form, headers).await?;
    if !answer.status.is_success() {
        let (error, description) = answer.oauth_error();
        return Err(OAuthError::TokenEndpoint {
            url: answer.url.clone(),
            grant,
            status: answer.status,
            error,
            description: description.or_else(|| Some(answer.quoted_body())),
        });
    }
    let token: TokenAnswer = answer.json()?;
    if !token.token_type.eq_ignore_ascii_case("bearer") {
        return Err(OAuthError::InvalidTokenResponse(format!(
            "token type {:?} is not supported (only Bearer)",
            token.token_type
        )));
    }
    if token.access_token.is_empty() {
        return Err(OAuthError::InvalidTokenResponse(
            "the access token is empty".into(),
        ));
    }
    let expires_in = token.expires_in.as_ref().and_then(|v| match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    });
    let scopes = match token.scope.as_deref() {
        Some(scope) => split_scope(scope),
        None => request.scopes.to_vec(),
    };
    Ok(Tokens {
        access_token: token.access_token,
        token_type: "Bearer".into(),
        refresh_token: token.refresh_token.or(request.previous_refresh),
        expires_at: expires_in.map(|s| unix_now().saturating_add(s)),
        scopes,
    })
}
